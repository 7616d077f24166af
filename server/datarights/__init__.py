"""Data rights of an organisation: export all of its data, delete all of it."""
