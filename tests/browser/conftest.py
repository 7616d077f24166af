"""Browser tests: the real app served by uvicorn on a free port, driven by Debian's Chromium.

Playwright drives /usr/bin/chromium (never `playwright install`); screenshots go to
`test-artifacts/browser/`. Receipts are written through the real ingest path.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr

from server.api.app import create_app
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.images.local import LocalImageStore, LocalImageStoreConfig
from server.settings import Settings
from tests.conftest import free_tcp_port, wait_for_port
from tests.server.conftest import Db, make_tenant
from tests.server.dashboard.seed import (
    add_image,
    add_user,
    ingest_receipts,
    jpeg_bytes,
    standard_receipts,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
OWNER = "owner@acme.test"


@dataclass
class LiveSite:
    base_url: str
    db: Db
    receipt_ids: list[str]


#: The phone every mobile test uses: an iPhone-sized viewport in CSS pixels.
PHONE_WIDTH = 390
PHONE_HEIGHT = 844


def phone_context(browser: Any) -> Any:
    """A fresh browser context that looks like a phone (viewport, 2x pixels, touch)."""
    return browser.new_context(
        viewport={"width": PHONE_WIDTH, "height": PHONE_HEIGHT},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )


def overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the phone's screen (0 or less: it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth")) - PHONE_WIDTH


@pytest.fixture(scope="module")
def live_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'receipts.db'}"
    migrate(url)
    engine = create_db_engine(url)
    db = Db(url, engine, session_factory(engine))
    store = LocalImageStore(LocalImageStoreConfig(root=tmp / "images"))
    make_tenant(db, "Acme", "scanner-1")
    receipts = standard_receipts()
    ingest_receipts(db, store, "scanner-1", receipts)
    for i, m in enumerate(receipts):
        add_image(db, store, "scanner-1", m, jpeg_bytes(40 * i, (200, 300)))
    add_user(db, "Acme", OWNER)
    app = create_app(
        Settings(database_url=url, secret_key=SecretStr("b" * 40)), engine=engine, images=store
    )
    with serve(app) as base:
        yield LiveSite(base, db, [str(m.receipt_id) for m in receipts])
    engine.dispose()


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port in a thread; yields its base URL."""
    port = free_tcp_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port("127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (infra/scripts/bootstrap.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")  # once per run: every module's screenshots are kept
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS
