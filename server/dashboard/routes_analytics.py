"""The analytics page: spend by month, category, merchant and device, taxes per period, and the
month so far against last month, drawn as inline SVG bar charts from `server.analytics`."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.analytics import service
from server.analytics.charts import Point, bar_chart
from server.analytics.repository import DateRange, Group, money
from server.dashboard.deps import PREFIX, Analytics, Viewer
from server.dashboard.pages import render
from server.dashboard.views import parse_list_query

router = APIRouter(prefix=PREFIX, include_in_schema=False)

TOP = 10
TITLES: dict[Group, str] = {
    "month": "Spend by month",
    "category": "Spend by category",
    "merchant": f"Spend by merchant (top {TOP})",
    "device": "Spend by scanner",
}


@router.get("/analytics")
def analytics_page(request: Request, who: Viewer, repo: Analytics) -> Response:
    query = parse_list_query({k: v for k, v in request.query_params.items() if k in ("from", "to")})
    rng = DateRange(query.filters.date_from, query.filters.date_to)
    errors = list(query.errors)
    if rng.start and rng.end and rng.start > rng.end:
        errors.append("From is after To; showing all dates")
        rng = DateRange()
    charts = []
    for group, title in TITLES.items():
        report = service.spend(repo, group, rng, TOP)
        points = [Point(g.label, g.currency, g.total, g.receipts) for g in report.groups]
        charts.append(bar_chart(f"by-{group}", title, points))
    taxes, partial = service.taxes(repo, rng)
    per_month: dict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
    for t in taxes:
        per_month[(t.period, t.currency)] += t.amount
    tax_chart = bar_chart(
        "tax-by-month",
        "Tax per month",
        [Point(month, cur, money(v)) for (month, cur), v in sorted(per_month.items())],
    )
    today = dt.datetime.now(dt.UTC).date()
    summary = service.summary(repo, today, months=1)
    compare = []
    for c in summary.change:
        compare += [
            Point(f"This month to {today:%-d %b}", c.currency, c.this_period),
            Point("Same days last month", c.currency, c.last_period),
        ]
    return render(
        request,
        "analytics.html",
        who,
        charts=charts,
        tax_chart=tax_chart,
        taxes=taxes,
        taxes_partial=partial,
        summary=summary,
        compare=bar_chart("month-so-far", "Month so far", compare),
        params={
            "from": request.query_params.get("from", ""),
            "to": request.query_params.get("to", ""),
        },
        errors=errors,
    )
