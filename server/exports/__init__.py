"""Exports of a filtered set of receipts for accountants: CSV, JSON, Xero, QuickBooks, ZIP."""
