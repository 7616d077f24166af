"""The owner's side in real headless Chromium: the scanners pages on a phone (nothing wider than
the screen), the receipts list's CSV export downloaded and read back, and the webhooks page
(register, secret shown once, test event, pause, delete)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from pydantic import SecretStr

from server.api.app import create_app
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.fleet.publisher import MemoryPublisher
from server.fleet.runtime import FleetRuntime
from server.fleet.settings import FleetSettings
from server.images.local import LocalImageStore, LocalImageStoreConfig
from server.settings import Settings
from tests.browser.conftest import OWNER, overflow, phone_context, serve
from tests.server.conftest import Db, ingest, make_tenant
from tests.server.dashboard.owner_site import heartbeat
from tests.server.dashboard.seed import PASSWORD, add_user, ingest_receipts, standard_receipts


@pytest.fixture(scope="module")
def owner_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("owner-pages")
    url = f"sqlite:///{tmp / 'receipts.db'}"
    migrate(url)
    engine = create_db_engine(url)
    db = Db(url, engine, session_factory(engine))
    store = LocalImageStore(LocalImageStoreConfig(root=tmp / "images"))
    make_tenant(db, "Acme", "front-counter-scanner-01", "back-office-02", plan="enterprise")
    add_user(db, "Acme", OWNER)
    ingest_receipts(db, store, "front-counter-scanner-01", standard_receipts())
    ingest(
        db,
        store,
        heartbeat("front-counter-scanner-01", outbox_depth=4, last_read_ms=1234.0, cpu_temp_c=61.0),
    )
    runtime = FleetRuntime(
        settings=FleetSettings(), sessions=db.sessions, publisher=MemoryPublisher()
    )
    app = create_app(
        Settings(database_url=url, secret_key=SecretStr("w" * 40)),
        engine=engine,
        images=store,
        fleet=runtime,
    )
    with serve(app) as base:
        yield base
    engine.dispose()


def sign_in(page: Page, base: str, path: str) -> None:
    page.goto(base + path)
    expect(page).to_have_url(re.compile(r"/app/login"))
    page.get_by_label("E-mail").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def test_scanners_on_a_phone(owner_live: str, chromium: Any, artifacts: Path) -> None:
    browser: Browser = chromium
    context = phone_context(browser)
    page = context.new_page()
    try:
        sign_in(page, owner_live, "/app/devices")
        expect(page.locator("#state-counts")).to_contain_text("1 online")
        row = page.locator('tr[data-device="front-counter-scanner-01"]')
        expect(row).to_have_attribute("data-state", "online")
        expect(row).to_contain_text("1234 ms")
        expect(row.locator(".outbox")).to_have_text("4")
        assert overflow(page) <= 0, f"the scanners list is {overflow(page)} px wider than a phone"
        page.screenshot(path=artifacts / "30-phone-scanners.png", full_page=True)

        row.get_by_role("link", name="front-counter-scanner-01").click()
        expect(page.locator("#device-state")).to_have_text("online")
        page.get_by_label("Command").select_option("rescan_last")
        page.get_by_role("button", name="Send").click()
        expect(page.locator(".notice")).to_contain_text("Command rescan_last sent")
        expect(page.locator("#command-list tr[data-status]").first).to_contain_text("rescan_last")
        assert overflow(page) <= 0, f"the scanner page is {overflow(page)} px wider than a phone"
        page.screenshot(path=artifacts / "31-phone-scanner.png", full_page=True)

        page.locator("#remove-link").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Remove scanner")
        assert overflow(page) <= 0
        page.screenshot(path=artifacts / "32-phone-remove-scanner.png", full_page=True)
    finally:
        context.close()


def test_export_the_filtered_list_as_csv(owner_live: str, chromium: Any, artifacts: Path) -> None:
    browser: Browser = chromium
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    try:
        sign_in(page, owner_live, "/app/receipts")
        page.get_by_label("Search").fill("fuel")
        page.get_by_role("button", name="Apply").click()
        expect(page.locator("#count")).to_contain_text("1 receipt")
        page.screenshot(path=artifacts / "33-receipts-export-link.png", full_page=True)
        with page.expect_download() as info:
            page.locator("#export-csv").click()
        download = info.value
        assert download.suggested_filename.startswith("receipts-")
        assert download.suggested_filename.endswith(".csv")
        text = Path(download.path()).read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [(r["merchant"], r["total"], r["device_id"]) for r in rows] == [
            ("Fuel Station", "61.00", "front-counter-scanner-01")
        ]
    finally:
        context.close()


def test_webhooks_page_flow(owner_live: str, chromium: Any, artifacts: Path) -> None:
    browser: Browser = chromium
    context = phone_context(browser)
    page = context.new_page()
    try:
        sign_in(page, owner_live, "/app/webhooks")
        page.get_by_label("URL").fill("https://books.example.com/receipts")
        page.get_by_label("Description").fill("bookkeeping")
        page.get_by_role("button", name="Add webhook").click()
        secret = page.locator("#new-secret")
        expect(secret).to_have_value(re.compile(r"^whsec_"))
        assert overflow(page) <= 0, f"the webhooks page is {overflow(page)} px wider than a phone"
        page.screenshot(path=artifacts / "34-phone-webhook-created.png", full_page=True)
        value = secret.input_value()

        hook = page.locator("section.webhook").first
        hook.get_by_role("button", name="Send a test event").click()
        expect(page.locator(".notice")).to_contain_text("test event is queued")
        expect(page.locator("section.webhook tr[data-status=pending]")).to_contain_text(
            "webhook.test"
        )
        assert value not in page.content()  # the secret was shown once
        page.screenshot(path=artifacts / "35-phone-webhook-delivery.png", full_page=True)

        page.locator("section.webhook").get_by_role("button", name="Pause").click()
        expect(page.locator("section.webhook")).to_have_attribute("data-active", "no")
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("section.webhook").get_by_role("button", name="Delete").click()
        expect(page.locator("#no-webhooks")).to_be_visible()
        page.screenshot(path=artifacts / "36-phone-webhook-deleted.png", full_page=True)
    finally:
        context.close()
