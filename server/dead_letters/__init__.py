"""Refused messages kept with their reason, for operators to inspect."""
