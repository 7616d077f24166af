"""The dashboard in real headless Chromium: sign in, find a receipt, correct its total and see
the list change; a phone-sized viewport that fixes and approves a receipt from the review queue."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import OWNER, LiveSite, overflow, phone_context
from tests.server.dashboard.seed import PASSWORD


def sign_in(page: Page, site: LiveSite) -> None:
    page.goto(site.base_url + "/")  # `/` leads to the dashboard, which asks to sign in
    expect(page).to_have_url(re.compile(r"/app/login"))
    page.get_by_label("E-mail").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/app/receipts$"))


def test_find_a_receipt_correct_its_total_and_see_the_list_change(
    live_site: LiveSite, chromium: Any, artifacts: Path
) -> None:
    browser: Browser = chromium
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(live_site.base_url + "/app/login")
        page.get_by_label("E-mail").fill(OWNER)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail or password")

        sign_in(page, live_site)
        expect(page.locator("#count")).to_have_text("3 receipts")
        page.screenshot(path=artifacts / "01-receipts.png", full_page=True)

        page.get_by_label("Search").fill("bakery")
        page.get_by_role("button", name="Apply").click()
        expect(page.locator("#count")).to_have_text("1 receipt")
        row = page.locator("#receipts tbody tr")
        expect(row.locator(".total")).to_contain_text("4.80")
        row.get_by_role("link", name="Bakery Bloom").click()

        expect(page.locator("svg.overlay polygon")).to_have_count(3)
        image_ok = page.locator("#receipt-image").evaluate(
            "img => img.complete && img.naturalWidth"
        )
        assert image_ok == 200
        page.screenshot(path=artifacts / "02-receipt.png", full_page=True)

        page.get_by_label("Total", exact=True).fill("5.25")
        page.get_by_role("button", name="Save corrections").click()
        expect(page.get_by_role("status")).to_have_text("Saved.")
        expect(page.get_by_text("corrected; read as 4.80")).to_be_visible()

        page.get_by_role("link", name="← Receipts").click()
        bakery = page.locator("#receipts tbody tr", has_text="Bakery Bloom")
        expect(bakery.locator(".total")).to_contain_text("5.25")
        page.screenshot(path=artifacts / "03-list-after-correction.png", full_page=True)
        # the amount filter sees the corrected total, not the one read
        page.goto(live_site.base_url + "/app/receipts?min=5&max=6")
        expect(page.locator("#count")).to_have_text("1 receipt")
    finally:
        context.close()


def test_phone_viewport_review_queue(live_site: LiveSite, chromium: Any, artifacts: Path) -> None:
    browser: Browser = chromium
    context = phone_context(browser)
    page = context.new_page()
    try:
        sign_in(page, live_site)
        assert overflow(page) <= 0, f"the list is {overflow(page)} px wider than a phone"
        page.screenshot(path=artifacts / "10-phone-receipts.png", full_page=True)

        page.get_by_role("link", name="Review").click()
        expect(page.locator("#waiting")).to_have_text("1 receipt waiting")
        item = page.locator(".review-item")
        expect(item).to_contain_text("total does not match the sum of the items")
        assert overflow(page) <= 0, f"the review queue is {overflow(page)} px wider than a phone"
        page.screenshot(path=artifacts / "11-phone-review.png", full_page=True)

        item.get_by_label("Total").fill("oops")
        item.get_by_role("button", name="Fix and approve").click()
        expect(page.locator(".review-item .error")).to_contain_text("is not an amount")
        page.locator(".review-item").get_by_label("Total").fill("59.90")
        page.locator(".review-item").get_by_role("button", name="Fix and approve").click()
        expect(page.locator("#waiting")).to_have_text("0 receipts waiting")
        page.screenshot(path=artifacts / "12-phone-review-done.png", full_page=True)
    finally:
        context.close()
