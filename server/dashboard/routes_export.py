"""The receipts list as a CSV download: `GET /app/export/receipts.csv` with the list's filters.

The rows are those the list shows for the same query string (search, dates, scanner, review,
totals, sort), in the columns of the API's ``/api/v1/exports/receipts.csv``
(`server.exports.service`). As in the API's export, receipts flagged as duplicates and receipts
held over the plan's quota are left out. The file streams: it reads one page at a time in a
session of its own (the request's session is committed before the body is sent).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from server.dashboard import views
from server.dashboard.deps import PREFIX, Viewer
from server.dashboard.repository import ReceiptBrowser
from server.exports import service as exports
from server.exports.repository import AccountCodeRepository
from server.receipts.repository import ReceiptRecord

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: Receipts read per page while streaming.
PAGE = 500


def _pages(
    sessions: sessionmaker[Session], organization_id: uuid.UUID, query: views.ListQuery
) -> Iterator[bytes]:
    with sessions() as session:
        browser = ReceiptBrowser(session, organization_id)
        codes = AccountCodeRepository(session, organization_id).mapping()

        def pages() -> Iterator[Sequence[ReceiptRecord]]:
            number = 1
            while True:
                page = browser.browse(query.filters, query.sort, number, PAGE)
                yield [
                    r
                    for r in page.records
                    if r.receipt.duplicate_of is None and r.receipt.held_at is None
                ]
                if number >= page.pages:
                    return
                number += 1
                session.expunge_all()

        yield from exports.csv_of_pages(pages(), codes, "receipts")


@router.get("/export/receipts.csv")
def export_list(request: Request, who: Viewer) -> Response:
    query = views.parse_list_query(dict(request.query_params))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    body = _pages(request.app.state.sessions, who.user.organization_id, query)
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="receipts-{stamp}.csv"',
            "Cache-Control": "private, no-store",
        },
    )
