"""HTTP routes of analytics; tenancy comes from the bearer token's organisation (`Analytics`).

Answers go out through `conditional_json` (pydantic's JSON serialiser straight to bytes, with
an ETag), as the receipts API's do; `response_model` still documents them. FastAPI's own path
turned the model into Python dicts and then encoded them with `json`: a month-by-month report
of a hundred groups spent more on that than on its query.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from server.analytics import service
from server.analytics.repository import AnalyticsRepository, DateRange, Group
from server.analytics.schemas import SpendReport, Summary
from server.api.deps import DbSession, Organization
from server.api.etag import conditional_json

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


async def analytics_repository(
    session: DbSession, organization: Organization
) -> AnalyticsRepository:
    """No I/O, so `async`: no thread-pool hop (see `server.api.deps`)."""
    return AnalyticsRepository(session, organization)


Analytics = Annotated[AnalyticsRepository, Depends(analytics_repository)]


@router.get("/spend", response_model=SpendReport)
def spend(
    *,
    request: Request,
    repo: Analytics,
    group: Annotated[Group, Query(description="What to sum by.")] = "month",
    date_from: Annotated[
        dt.date | None, Query(alias="from", description="Receipt date on or after.")
    ] = None,
    date_to: Annotated[
        dt.date | None, Query(alias="to", description="Receipt date on or before.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Most groups (not for month).")] = 50,
) -> Response:
    """Spend per month, category, merchant or device, per currency; a receipt without a
    printed date counts on its capture date. With an ETag (`If-None-Match` gives 304)."""
    report = service.spend(repo, group, DateRange(date_from, date_to), limit)
    return conditional_json(request, report)


@router.get("/summary", response_model=Summary)
def summary(
    *,
    request: Request,
    repo: Analytics,
    as_of: Annotated[dt.date | None, Query(description="Today (UTC) unless given.")] = None,
    months: Annotated[int, Query(ge=1, le=36, description="Months of tax totals.")] = 12,
) -> Response:
    """The month so far against the same days of last month; tax totals per month. With an
    ETag (`If-None-Match` gives 304)."""
    report = service.summary(repo, as_of or dt.datetime.now(dt.UTC).date(), months)
    return conditional_json(request, report)
