"""Webhooks: signed events to the URLs an organisation registered, delivered from an outbox.

- `outbox`: events written in the transaction of the change (receipt created or corrected);
- `worker`: the delivery worker (claims with SKIP LOCKED, retries with backoff, records attempts);
- `signing`: the signature scheme and `verify_signature` for receivers;
- `urls`: http(s) only, private addresses refused outside development (SSRF);
- `service`, `endpoints`, `schemas`: `/api/v1/webhooks`.
"""
