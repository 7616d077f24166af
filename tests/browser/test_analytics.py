"""Analytics in real headless Chromium: correct a receipt's total on its page and see the month's
spend change on the analytics page; the analytics page on a phone, screenshotted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from tests.browser.conftest import PHONE_WIDTH, LiveSite, overflow, phone_context
from tests.browser.test_dashboard import sign_in


def test_correct_a_total_and_see_the_month_change(
    live_site: LiveSite, chromium: Any, artifacts: Path
) -> None:
    browser: Browser = chromium
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, live_site)
        page.get_by_role("link", name="Analytics").click()
        may = page.locator('#by-month g.bar[data-key="2024-05"] .value')
        expect(may).to_have_text("17.30 EUR")  # 12.50 + 4.80
        expect(page.locator('#by-merchant g.bar[data-key="Bakery Bloom"] .value')).to_have_text(
            "4.80 EUR"
        )
        page.screenshot(path=artifacts / "20-analytics.png", full_page=True)

        page.get_by_role("link", name="Receipts").click()
        page.locator("#receipts tbody tr").get_by_role("link", name="Bakery Bloom").click()
        page.get_by_label("Total", exact=True).fill("5.25")
        page.get_by_role("button", name="Save corrections").click()
        expect(page.get_by_role("status")).to_have_text("Saved.")

        page.get_by_role("link", name="Analytics").click()
        expect(may).to_have_text("17.75 EUR")
        expect(page.locator('#by-merchant g.bar[data-key="Bakery Bloom"] .value')).to_have_text(
            "5.25 EUR"
        )
        page.screenshot(path=artifacts / "21-analytics-after-correction.png", full_page=True)
    finally:
        context.close()


def test_phone_viewport_analytics(live_site: LiveSite, chromium: Any, artifacts: Path) -> None:
    browser: Browser = chromium
    context = phone_context(browser)
    page = context.new_page()
    try:
        sign_in(page, live_site)
        page.goto(live_site.base_url + "/app/analytics")
        expect(page.locator("#by-month g.bar")).to_have_count(2)
        assert overflow(page) <= 0, f"analytics is {overflow(page)} px wider than a phone"
        # the charts fit the screen: no bar chart is wider than its card
        widths = page.locator("svg.chart").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().right)"
        )
        assert widths and max(widths) <= PHONE_WIDTH
        page.screenshot(path=artifacts / "22-phone-analytics.png", full_page=True)
    finally:
        context.close()
