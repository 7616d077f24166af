"""Uploading a receipt photo from a phone in real headless Chromium: the page sends it, the job
worker (running beside the server, as in `receipts demo`) reads it with Tesseract, and the read
receipt appears on the page without a reload; a text file is refused with a clear message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
from playwright.sync_api import Browser, expect
from pydantic import SecretStr

from models.imageio import encode_image
from models.synth import generate_receipt
from server.api.app import create_app
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.images.local import LocalImageStore, LocalImageStoreConfig
from server.jobs.handlers import build_job_worker
from server.jobs.settings import JobsSettings
from server.settings import Settings
from tests.browser.conftest import OWNER, overflow, phone_context, serve
from tests.server.conftest import Db, make_tenant
from tests.server.dashboard.seed import PASSWORD, add_user
from tests.server.uploads.test_uploads import assert_read_as


@pytest.fixture
def upload_site(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'receipts.db'}"
    migrate(url)
    engine = create_db_engine(url)
    db = Db(url, engine, session_factory(engine))
    store = LocalImageStore(LocalImageStoreConfig(root=tmp_path / "images"))
    make_tenant(db, "Acme")
    add_user(db, "Acme", OWNER)
    settings = Settings(
        database_url=url,
        secret_key=SecretStr("u" * 40),
        jobs=JobsSettings(poll_interval_s=0.2),
    )
    app = create_app(settings, engine=engine, images=store)
    worker = build_job_worker(settings, db.sessions, store)
    worker.start()
    try:
        with serve(app) as base:
            yield base
    finally:
        worker.stop()
        engine.dispose()


def test_a_phone_uploads_a_photo_and_sees_it_read_without_a_reload(
    upload_site: str, chromium: Any, artifacts: Path, tmp_path: Path
) -> None:
    sample = generate_receipt(0)
    photo = tmp_path / "IMG_2041.jpg"
    photo.write_bytes(encode_image(cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR), "jpeg", 90))
    notes = tmp_path / "notes.txt"
    notes.write_text("milk 1.20\n")
    truth = sample.label.fields
    assert truth is not None

    browser: Browser = chromium
    context = phone_context(browser)
    page = context.new_page()
    try:
        page.goto(upload_site + "/app/login")
        page.get_by_label("E-mail").fill(OWNER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/app/receipts$"))
        page.get_by_role("link", name="Upload").click()
        expect(page.locator("#camera")).to_have_attribute("capture", "environment")
        expect(page.locator("#camera")).to_have_attribute("accept", "image/*")
        assert overflow(page) <= 0, f"the upload page is {overflow(page)} px wider than a phone"

        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        page.locator("#files").set_input_files([str(photo), str(notes)])
        page.get_by_role("button", name="Upload").click()

        rejected = page.locator("#uploads li", has_text="notes.txt")
        expect(rejected.get_by_role("alert")).to_contain_text("not an image")
        row = page.locator("#uploads li", has_text="IMG_2041.jpg")
        expect(row.locator(".state")).to_have_text("done", timeout=90_000)
        assert_read_as(row.locator(".receipt-link").inner_text(), str(truth.merchant))
        expect(row.locator(".date")).to_have_text(str(truth.date))
        expect(row.locator(".total")).to_contain_text(str(truth.total))
        assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
        assert overflow(page) <= 0
        page.screenshot(path=artifacts / "20-phone-upload.png", full_page=True)

        row.locator(".receipt-link").click()
        page.wait_for_url(re.compile(r"/app/receipts/[0-9a-f-]+$"))
        assert_read_as(page.get_by_role("heading", level=1).inner_text(), str(truth.merchant))
        expect(page.get_by_text("Uploaded photo")).to_be_visible()
        image_ok = page.locator("#receipt-image").evaluate(
            "img => img.complete && img.naturalWidth"
        )
        assert image_ok > 0
        page.get_by_role("link", name="← Receipts").click()
        expect(page.locator("#receipts tbody tr")).to_have_count(1)
        expect(page.locator("#receipts tbody tr")).to_contain_text("phone upload")
    finally:
        context.close()
