"""Database writes of ingest: idempotent inserts (ON CONFLICT DO NOTHING) and device updates."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.db.base import Base
from server.db.models import DeadLetter, Device, Receipt, ReceiptImage, ReceiptTax
from server.ingest.interpret import DeviceRef


class IngestRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def devices(self, device_ids: Iterable[str]) -> dict[str, DeviceRef]:
        ids = set(device_ids)
        if not ids:
            return {}
        rows = self.session.execute(
            select(Device.id, Device.device_id, Device.organization_id).where(
                Device.device_id.in_(ids)
            )
        )
        return {r.device_id: DeviceRef(r.id, r.device_id, r.organization_id) for r in rows}

    def receipt_devices(self, receipt_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """Device (primary key) of each of `receipt_ids` already stored."""
        ids = set(receipt_ids)
        if not ids:
            return {}
        rows = self.session.execute(
            select(Receipt.id, Receipt.device_id).where(Receipt.id.in_(ids))
        )
        return {r.id: r.device_id for r in rows}

    def image_devices(self, receipt_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """Device (primary key) of each stored image among `receipt_ids`."""
        ids = set(receipt_ids)
        if not ids:
            return {}
        rows = self.session.execute(
            select(ReceiptImage.receipt_id, ReceiptImage.device_id).where(
                ReceiptImage.receipt_id.in_(ids)
            )
        )
        return {r.receipt_id: r.device_id for r in rows}

    def insert_receipts(self, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
        """Insert receipts, skipping ids already stored; returns the ids actually inserted."""
        if not rows:
            return set()
        stmt = _insert(self.session, Receipt).on_conflict_do_nothing(index_elements=["id"])
        return set(self.session.scalars(stmt.returning(Receipt.id), list(rows)))

    def insert_receipt_taxes(self, rows: Sequence[dict[str, Any]]) -> None:
        """Tax lines of receipts just inserted (`server.receipts.derived.tax_rows`)."""
        if rows:
            self.session.execute(insert(ReceiptTax), list(rows))

    def insert_images(self, rows: Sequence[dict[str, Any]]) -> None:
        self._insert_ignoring_conflicts(ReceiptImage, rows, "receipt_id")

    def insert_dead_letters(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.add_all(DeadLetter(**row) for row in rows)
            self.session.flush()

    def update_device(self, pk: uuid.UUID, *, seen_at: dt.datetime, **values: Any) -> None:
        self.session.execute(
            update(Device).where(Device.id == pk).values(last_seen_at=seen_at, **values)
        )

    def _insert_ignoring_conflicts(
        self, model: type[Base], rows: Sequence[dict[str, Any]], key: str
    ) -> None:
        if not rows:
            return
        stmt = _insert(self.session, model).on_conflict_do_nothing(index_elements=[key])
        self.session.execute(stmt, list(rows))


def _insert(session: Session, model: type[Base]) -> Any:
    """The dialect's INSERT of `model` (both have ON CONFLICT DO NOTHING)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert(model)
    if dialect == "sqlite":
        return sqlite_insert(model)
    raise RuntimeError(  # pragma: no cover - configuration error, said plainly
        f"database {dialect!r} is not supported: use PostgreSQL or SQLite"
    )
