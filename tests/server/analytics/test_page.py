"""The analytics page through HTTP on both databases: charts with exact sums, a date range,
a corrected category moving spend, and tenancy."""

from __future__ import annotations

import re

from tests.server.analytics.conftest import AnalyticsSite
from tests.server.dashboard.conftest import csrf


def bar(html: str, chart: str, key: str) -> str:
    """The value drawn on bar `key` of chart `chart`."""
    section = html[html.index(f'id="{chart}"') :]
    section = section[: section.index("</section>")]
    match = re.search(
        rf'<g class="bar" data-key="{re.escape(key)}">.*?<text class="value"[^>]*>([^<]*)</text>',
        section,
        re.S,
    )
    assert match, f"no bar {key!r} in {chart}"
    return match.group(1)


def test_page_needs_a_session_and_is_linked_from_the_navigation(analytics_site: AnalyticsSite):
    site = analytics_site
    resp = site.client.get("/app/analytics", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/app/login")
    site.login("owner@acme.test")
    assert 'href="/app/analytics"' in site.client.get("/app/receipts").text


def test_page_draws_spend_by_month_category_merchant_device_and_taxes(
    analytics_site: AnalyticsSite,
):
    site = analytics_site
    site.login("owner@acme.test")
    resp = site.client.get("/app/analytics")
    assert resp.status_code == 200
    html = resp.text
    assert bar(html, "by-month", "2024-05") == "12.80 EUR"
    assert bar(html, "by-month", "2024-06") == "64.33 EUR"
    assert bar(html, "by-category", "Groceries") == "12.80 EUR"
    assert bar(html, "by-category", "(none)") == "3.33 EUR"
    assert bar(html, "by-merchant", "Fuel Station") == "61.00 EUR"
    assert bar(html, "by-device", "scanner-1") == "15.93 EUR"
    assert bar(html, "tax-by-month", "2024-05") == "2.11 EUR"
    assert bar(html, "tax-by-month", "2024-06") == "10.20 EUR"
    # the largest bar of a chart is full width; the others in proportion
    assert re.search(r'data-key="2024-06">.*?class="fill"[^>]*width="100.0%"', html, re.S)
    assert re.search(r'data-key="2024-05">.*?class="fill"[^>]*width="19.9%"', html, re.S)
    taxes = html[html.index('id="taxes"') :]
    assert "10.17 EUR" in taxes and "20 %" in taxes and "(unnamed)" in taxes
    assert "<script src=" not in html.replace('<script src="/app/static/app.js"', "")
    assert "Month so far" in html


def test_a_date_range_and_bad_dates(analytics_site: AnalyticsSite):
    site = analytics_site
    site.login("owner@acme.test")
    html = site.client.get("/app/analytics?from=2024-06-01&to=2024-06-30").text
    assert bar(html, "by-month", "2024-06") == "64.33 EUR"
    assert 'data-key="2024-05"' not in html
    bad = site.client.get("/app/analytics?from=soon&to=2024-05-31").text
    assert "is not a date" in bad
    assert bar(bad, "by-month", "2024-05") == "12.80 EUR"
    backwards = site.client.get("/app/analytics?from=2024-06-01&to=2024-05-01").text
    assert "From is after To" in backwards and 'data-key="2024-06"' in backwards


def test_a_corrected_category_and_total_move_the_spend(analytics_site: AnalyticsSite):
    site = analytics_site
    site.login("owner@acme.test")
    fuel = next(m for _, m in site.messages if m.receipt.fields.merchant and
                m.receipt.fields.merchant.value == "Fuel Station")  # fmt: skip
    token = csrf(site.client.get(f"/app/receipts/{fuel.receipt_id}").text)
    resp = site.client.post(
        f"/app/receipts/{fuel.receipt_id}",
        data={"csrf_token": token, "f_category": "Groceries", "f_total": "60.99"},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    html = site.client.get("/app/analytics").text
    assert bar(html, "by-category", "Groceries") == "73.79 EUR"
    assert 'data-key="Fuel"' not in html
    assert bar(html, "by-month", "2024-06") == "64.32 EUR"
    api = site.api("/api/v1/analytics/spend?group=category")
    first = api["groups"][0]
    assert (first["label"], first["total"]) == ("Groceries", "73.79")


def test_each_organisation_sees_only_its_own_on_the_page(analytics_site: AnalyticsSite):
    site = analytics_site
    site.login("owner@globex.test")
    html = site.client.get("/app/analytics").text
    assert bar(html, "by-month", "2024-05") == "1000.00 EUR"
    assert "2024-06" not in html and "scanner-1" not in html and "Fuel" not in html
    assert bar(html, "tax-by-month", "2024-05") == "166.67 EUR"
