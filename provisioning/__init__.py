"""Device identity and enrolment: certificate authority, broker credentials and ACLs, claim codes.

Pure, reusable pieces the server (fleet service, `receipts provision`) and the scanner's first
boot call; each keeps its storage behind a small interface so the caller owns persistence:

- `provisioning.ca`: the deployment's certificate authority (server and device certificates, CRL).
- `provisioning.credentials`: per-device broker accounts (random password, Mosquitto hash).
- `provisioning.mosquitto`: Mosquitto's password file, pattern ACL, TLS listener and reload.
- `provisioning.claims`: one-time claim codes (checksum, hash-only storage, expiry, QR code).
- `provisioning.bootconfig`: a scanner's boot folder for its SD card.
"""
