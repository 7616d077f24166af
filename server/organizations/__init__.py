"""Organisations, their API tokens and their registered devices."""
