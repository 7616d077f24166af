"""Receipts as the API serves them: listing with filters and cursors, one receipt, its image."""
