"""Everything of one organisation as a streamed ZIP (format ``receipt-manager-org-export/1``).

    manifest.json              what is inside: tables with row counts, images, what was left out
    data/<table>.jsonl         every row of the organisation in every table, one JSON object per
                               line (receipts with their documents, corrections, devices, users,
                               audit log, webhooks and their deliveries, ...)
    line_items.csv             one row per line item of every receipt (as the items export)
    images/<sha256>.<ext>      every image of its receipts, from the image store

Left out: credential columns (password and token hashes, webhook secrets, CSRF tokens; see
`tables.secret_column`) and the tables of sign-in sessions and reset links. The rows are read
in one snapshot (REPEATABLE READ on PostgreSQL, a read transaction on SQLite) while the ZIP is
written into the response piece by piece, so memory stays at one batch and one image.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.datarights.tables import EXPORT_SKIPPED, ScopedTable, scoped_tables, secret_column
from server.exports.repository import AccountCodeRepository
from server.exports.service import IMAGE_EXTENSIONS, ZipSink, stream_csv
from server.images.base import ImageNotFoundError, ImageStore
from server.receipts.repository import ReceiptFilter, ReceiptRepository

FORMAT = "receipt-manager-org-export/1"
_BATCH = 500


def json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def _snapshot(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _now_tuple() -> tuple[int, int, int, int, int, int]:
    now = dt.datetime.now(dt.UTC)
    return (now.year, now.month, now.day, now.hour, now.minute, now.second)


def _entry(zf: zipfile.ZipFile, name: str, *, stored: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_now_tuple())
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    return info


def _table_rows(
    session: Session, scoped: ScopedTable, org: uuid.UUID
) -> Iterator[list[dict[str, Any]]]:
    table = scoped.table
    columns = [c for c in table.c if not secret_column(c.name)]
    result = session.execute(
        select(*columns).where(scoped.where(org)).execution_options(yield_per=_BATCH)
    )
    for part in result.partitions(_BATCH):
        yield [{k: json_value(v) for k, v in row._mapping.items()} for row in part]


def stream_organization(
    sessions: sessionmaker[Session], store: ImageStore, organization_id: uuid.UUID
) -> Iterator[bytes]:
    """The ZIP of everything the organisation has, as chunks of bytes (see the module doc)."""
    sink = ZipSink()
    tables: dict[str, int] = {}
    excluded_columns: dict[str, list[str]] = {}
    images: dict[str, str] = {}
    missing: list[str] = []
    with (
        sessions() as session,
        session.begin(),
        zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf,
    ):
        _snapshot(session)
        org_name = None
        for scoped in scoped_tables():
            name = scoped.table.name
            if name in EXPORT_SKIPPED:
                continue
            hidden = [c.name for c in scoped.table.c if secret_column(c.name)]
            if hidden:
                excluded_columns[name] = hidden
            count = 0
            with zf.open(_entry(zf, f"data/{name}.jsonl"), "w") as out:
                for batch in _table_rows(session, scoped, organization_id):
                    for row in batch:
                        out.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
                        if name == "organizations":
                            org_name = row.get("name")
                        if name == "receipt_images" and row["sha256"] not in images:
                            images[row["sha256"]] = row.get("content_type") or ""
                    count += len(batch)
                    yield sink.take()
            tables[name] = count
        with tempfile.SpooledTemporaryFile(1 << 20) as items:
            repo = ReceiptRepository(session, organization_id)
            codes = AccountCodeRepository(session, organization_id).mapping()
            for chunk in stream_csv(repo, ReceiptFilter(), codes, "items"):
                items.write(chunk)
            items.seek(0)
            with zf.open(_entry(zf, "line_items.csv"), "w") as out:
                while chunk := items.read(1 << 16):
                    out.write(chunk)
                    yield sink.take()
        for sha256, content_type in images.items():
            try:
                data = store.get(sha256)
            except ImageNotFoundError:
                missing.append(sha256)
                continue
            ext = IMAGE_EXTENSIONS.get(content_type, "bin")
            zf.writestr(_entry(zf, f"images/{sha256}.{ext}", stored=True), data)
            yield sink.take()
        manifest = {
            "format": FORMAT,
            "generated_at": dt.datetime.now(dt.UTC).isoformat(),
            "organization": {"id": str(organization_id), "name": org_name},
            "tables": tables,
            "images": len(images) - len(missing),
            "images_missing": missing,
            "left_out": {
                "tables": sorted(EXPORT_SKIPPED),
                "columns": excluded_columns,
                "why": "credentials and secrets (hashes, signing secrets, session tokens)",
            },
        }
        zf.writestr(_entry(zf, "manifest.json"), json.dumps(manifest, indent=2, ensure_ascii=False))
    yield sink.take()
