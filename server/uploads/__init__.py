"""Receipt photos uploaded from a phone or an API client, read on the server.

`POST /api/v1/uploads` (and the dashboard's upload page) validates each photo, stores it in the
image store and enqueues a `read_upload` job in the same transaction; a job worker reads it with
the scanner's pipeline (`models.pipeline`) and admits the receipt through
`server.receipts.intake.admit_receipts`. `GET /api/v1/uploads/{id}` tells how far it got.
"""
