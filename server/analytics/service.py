"""Analytics answers from the organisation-scoped `AnalyticsRepository`."""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

from server.analytics.repository import AnalyticsRepository, DateRange, Group, SpendRow, money
from server.analytics.schemas import (
    Amount,
    Change,
    Period,
    SpendGroup,
    SpendReport,
    Summary,
    TaxTotal,
)
from server.api.errors import ApiError

NONE_LABEL = "(none)"


def check_range(rng: DateRange) -> None:
    if rng.start and rng.end and rng.start > rng.end:
        raise ApiError(400, "bad_range", f"from {rng.start} is after to {rng.end}")


def spend(
    repo: AnalyticsRepository, group: Group, rng: DateRange, limit: int | None = None
) -> SpendReport:
    check_range(rng)
    rows = repo.spend(group, rng, None if group == "month" else limit)
    return SpendReport(
        group=group,
        date_from=rng.start,
        date_to=rng.end,
        groups=[
            SpendGroup(
                key=r.key,
                label=r.key or NONE_LABEL,
                currency=r.currency,
                total=r.total,
                receipts=r.receipts,
            )
            for r in rows
        ],
    )


def taxes(repo: AnalyticsRepository, rng: DateRange) -> tuple[list[TaxTotal], bool]:
    check_range(rng)
    read = repo.taxes(rng)
    rows = [
        TaxTotal(period=r.period, currency=r.currency, label=r.label, rate=r.rate, amount=r.amount)
        for r in read.rows
    ]
    return rows, read.truncated


def same_days_last_month(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """1st of last month to the same day of it (or its last day, if shorter)."""
    first = (as_of.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    days = calendar.monthrange(first.year, first.month)[1]
    return first, first.replace(day=min(as_of.day, days))


def _amounts(rows: list[SpendRow]) -> list[Amount]:
    return [Amount(currency=r.currency, total=r.total, receipts=r.receipts) for r in rows]


def _period(repo: AnalyticsRepository, start: dt.date, end: dt.date) -> Period:
    rng = DateRange(start, end)
    count, rows = repo.totals(rng)
    return Period(
        start=start,
        end=end,
        receipts=count,
        spend=_amounts(rows),
        taxes=_amounts(repo.tax_totals(rng)),
    )


def summary(repo: AnalyticsRepository, as_of: dt.date, months: int = 12) -> Summary:
    """This month so far against the same days of last month, and taxes of the last `months`."""
    this = _period(repo, as_of.replace(day=1), as_of)
    last = _period(repo, *same_days_last_month(as_of))
    before = {a.currency: a.total for a in last.spend}
    now = {a.currency: a.total for a in this.spend}
    change = []
    for currency in sorted(set(before) | set(now), key=lambda c: c or ""):
        a, b = now.get(currency, Decimal(0)), before.get(currency, Decimal(0))
        pct = None if b == 0 else round(float((a - b) / b * 100), 1)
        change.append(
            Change(currency=currency, this_period=money(a), last_period=money(b), percent=pct)
        )
    start = as_of.replace(day=1)
    for _ in range(months - 1):
        start = (start - dt.timedelta(days=1)).replace(day=1)
    by_month, partial = taxes(repo, DateRange(start, as_of))
    return Summary(
        as_of=as_of,
        month_so_far=this,
        last_month_same_days=last,
        change=change,
        taxes_by_month=by_month,
        taxes_partial=partial,
    )
