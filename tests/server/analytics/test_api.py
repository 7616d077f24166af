"""The analytics API on SQLite and PostgreSQL: exact sums per group, ranges, the month so far
against last month, tax totals, and tenancy."""

from __future__ import annotations

from typing import Any

import pytest

from server.analytics.service import same_days_last_month
from tests.server.analytics.conftest import AnalyticsSite


def groups(body: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(g["label"], g["total"], g["receipts"]) for g in body["groups"]]


def test_spend_by_month_is_exact_and_counts_every_receipt(analytics_site: AnalyticsSite):
    body = analytics_site.api("/api/v1/analytics/spend?group=month")
    # 12.50 + 0.10 + 0.20 is 12.80 exactly (not 12.799999...), as text
    assert groups(body) == [("2024-05", "12.80", 3), ("2024-06", "64.33", 3)]
    assert {g["currency"] for g in body["groups"]} == {"EUR"}


def test_spend_by_category_merchant_and_device(analytics_site: AnalyticsSite):
    site = analytics_site
    by_category = site.api("/api/v1/analytics/spend?group=category")
    assert groups(by_category) == [
        ("Fuel", "61.00", 1),
        ("Groceries", "12.80", 3),
        ("(none)", "3.33", 2),
    ]
    assert by_category["groups"][2]["key"] is None
    by_merchant = site.api("/api/v1/analytics/spend?group=merchant")
    assert groups(by_merchant) == [
        ("Fuel Station", "61.00", 1),
        ("Corner Shop", "12.80", 3),
        ("(none)", "3.33", 1),
        ("Bakery", "0.00", 1),
    ]
    by_device = site.api("/api/v1/analytics/spend?group=device")
    assert groups(by_device) == [("scanner-2", "61.20", 2), ("scanner-1", "15.93", 4)]
    top = site.api("/api/v1/analytics/spend?group=merchant&limit=2")
    assert [g["label"] for g in top["groups"]] == ["Fuel Station", "Corner Shop"]


def test_spend_in_a_date_range_and_bad_parameters(analytics_site: AnalyticsSite):
    site = analytics_site
    body = site.api("/api/v1/analytics/spend?group=month&from=2024-05-18&to=2024-06-02")
    assert groups(body) == [("2024-05", "0.30", 2), ("2024-06", "61.00", 1)]
    assert body["date_from"] == "2024-05-18" and body["date_to"] == "2024-06-02"
    auth = {"Authorization": f"Bearer {site.acme.token}"}
    bad = site.client.get("/api/v1/analytics/spend?from=2024-06-01&to=2024-05-01", headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_range"
    assert site.client.get("/api/v1/analytics/spend?group=colour", headers=auth).status_code == 422


def test_summary_month_so_far_against_the_same_days_of_last_month(analytics_site: AnalyticsSite):
    body = analytics_site.api("/api/v1/analytics/summary?as_of=2024-06-17")
    this, last = body["month_so_far"], body["last_month_same_days"]
    assert (this["start"], this["end"], this["receipts"]) == ("2024-06-01", "2024-06-17", 3)
    assert this["spend"] == [{"currency": "EUR", "total": "64.33", "receipts": 3}]
    assert this["taxes"][0]["total"] == "10.20"
    assert (last["start"], last["end"], last["receipts"]) == ("2024-05-01", "2024-05-17", 1)
    assert last["spend"][0]["total"] == "12.50" and last["taxes"][0]["total"] == "2.08"
    assert body["change"] == [
        {"currency": "EUR", "this_period": "64.33", "last_period": "12.50", "percent": 414.6}
    ]
    taxes = [(t["period"], t["label"], t["rate"], t["amount"]) for t in body["taxes_by_month"]]
    assert taxes == [
        ("2024-05", "VAT", "5", "0.01"),
        ("2024-05", "VAT", "20", "2.10"),
        ("2024-06", None, None, "0.03"),
        ("2024-06", "VAT", "20", "10.17"),
    ]
    assert body["taxes_partial"] is False
    # months bounds the tax history: June only
    june = analytics_site.api("/api/v1/analytics/summary?as_of=2024-06-17&months=1")
    assert {t["period"] for t in june["taxes_by_month"]} == {"2024-06"}


@pytest.mark.parametrize(
    ("as_of", "start", "end"),
    [("2024-03-31", "2024-02-01", "2024-02-29"), ("2024-01-15", "2023-12-01", "2023-12-15")],
)
def test_same_days_of_last_month(as_of: str, start: str, end: str):
    import datetime as dt

    first, last = same_days_last_month(dt.date.fromisoformat(as_of))
    assert (first.isoformat(), last.isoformat()) == (start, end)


def test_each_organisation_sees_only_its_own(analytics_site: AnalyticsSite):
    site = analytics_site
    body = site.api("/api/v1/analytics/spend?group=merchant", site.globex)
    assert groups(body) == [("Corner Shop", "1000.00", 1)]
    summary = site.api("/api/v1/analytics/summary?as_of=2024-05-31", site.globex)
    assert summary["month_so_far"]["spend"][0]["total"] == "1000.00"
    assert [t["amount"] for t in summary["taxes_by_month"]] == ["166.67"]
    for path in ("/api/v1/analytics/spend", "/api/v1/analytics/summary"):
        assert site.client.get(path).status_code == 401
        bad = site.client.get(path, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
