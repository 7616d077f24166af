"""Evaluation of the read pipeline against labelled receipts (`receipts eval ...`)."""
