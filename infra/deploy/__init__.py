"""Blue-green deployment of the API behind Debian's nginx: `receipts deploy ...`."""
