"""HTTP routes of analytics; tenancy comes from the bearer token's organisation (`Analytics`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from server.analytics import service
from server.analytics.repository import AnalyticsRepository, DateRange, Group
from server.analytics.schemas import SpendReport, Summary
from server.api.deps import DbSession, Organization

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


def analytics_repository(session: DbSession, organization: Organization) -> AnalyticsRepository:
    return AnalyticsRepository(session, organization)


Analytics = Annotated[AnalyticsRepository, Depends(analytics_repository)]


@router.get("/spend", response_model=SpendReport)
def spend(
    *,
    repo: Analytics,
    group: Annotated[Group, Query(description="What to sum by.")] = "month",
    date_from: Annotated[
        dt.date | None, Query(alias="from", description="Receipt date on or after.")
    ] = None,
    date_to: Annotated[
        dt.date | None, Query(alias="to", description="Receipt date on or before.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Most groups (not for month).")] = 50,
) -> SpendReport:
    """Spend per month, category, merchant or device, per currency; a receipt without a
    printed date counts on its capture date."""
    return service.spend(repo, group, DateRange(date_from, date_to), limit)


@router.get("/summary", response_model=Summary)
def summary(
    *,
    repo: Analytics,
    as_of: Annotated[dt.date | None, Query(description="Today (UTC) unless given.")] = None,
    months: Annotated[int, Query(ge=1, le=36, description="Months of tax totals.")] = 12,
) -> Summary:
    """The month so far against the same days of last month; tax totals per month."""
    return service.summary(repo, as_of or dt.datetime.now(dt.UTC).date(), months)
