"""Admission of new receipts, whatever brought them: a scanner over MQTT or a photo upload.

Every rule about a *new* receipt lives behind this one function, so that a receipt is treated
the same way whichever way it came in: plan quotas (over-quota receipts are kept and held),
duplicate flags, webhook events and the query columns derived from the message (category, tax
total, tax lines: `server.receipts.derived`) hook in here, not in the ingest worker or the
upload job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from server.ingest.repository import IngestRepository
from server.plans.quota import hold_over_quota
from server.receipts.derived import query_columns, tax_rows
from server.receipts.duplicates import flag_duplicates
from server.webhooks.outbox import receipts_created


def admit_receipts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert new `receipts` rows (column -> value) in the caller's transaction; flushes.

    A row whose id is already stored is skipped (idempotent redelivery); the caller commits.
    """
    if rows:
        rows = [{**row, **query_columns(row["document"])} for row in rows]
        rows = hold_over_quota(session, rows)  # over the month's quota: stored, but held
        repo = IngestRepository(session)
        inserted = repo.insert_receipts(rows)
        repo.insert_receipt_taxes(
            [
                tax
                for r in rows
                if r["id"] in inserted
                for tax in tax_rows(r["id"], r["organization_id"], r["document"])
            ]
        )
        session.flush()
        flag_duplicates(session, inserted)  # same receipt seen before (needs both images)
        # webhook outbox: a held receipt is announced when it is released (server.plans.quota)
        receipts_created(
            session, [r for r in rows if r["id"] in inserted and r.get("held_reason") is None]
        )
