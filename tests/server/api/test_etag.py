"""ETags of receipt reads: 304 for a matching If-None-Match, a new tag after a correction."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from server.accounts.audit import Actor
from server.dashboard.corrections import correct_receipt
from server.dashboard.repository import ReceiptBrowser
from server.db.models import Receipt
from server.images.local import LocalImageStore
from tests.server.api_keys.conftest import bearer, make_app_client
from tests.server.conftest import Db, Tenant, ingest
from tests.server.helpers import receipt_message, receipt_topic


def correct(db: Db, receipt_id: uuid.UUID, **typed: str) -> None:
    """A correction as the dashboard makes it (`correct_receipt`, the one path for edits)."""
    with db.sessions.begin() as session:
        org = session.scalar(select(Receipt.organization_id).where(Receipt.id == receipt_id))
        assert org is not None
        browser = ReceiptBrowser(session, org)
        record = browser.for_update(receipt_id)
        assert record is not None
        correct_receipt(session, browser, record, typed, Actor.system("test"))


def test_receipt_and_list_etags(db: Db, store: LocalImageStore, tenant: Tenant):
    msgs = [receipt_message(merchant="Corner Shop"), receipt_message(merchant="Bakery")]
    ingest(db, store, [(receipt_topic(tenant.device_id), m.to_json()) for m in msgs])
    rid = msgs[0].receipt_id
    auth = bearer(tenant.token)
    with make_app_client(db, store) as client:
        detail = client.get(f"/api/v1/receipts/{rid}", headers=auth)
        listing = client.get("/api/v1/receipts", headers=auth)
        tag, list_tag = detail.headers["ETag"], listing.headers["ETag"]
        assert tag.startswith('"') and tag.endswith('"') and tag != list_tag  # strong tags
        assert detail.json()["merchant"] == "Corner Shop"

        # unchanged: 304, no body, same tag (a list of tags, and the weak form, match too)
        for header in (tag, f'"nope", {tag}', f"W/{tag}", "*"):
            r = client.get(f"/api/v1/receipts/{rid}", headers={**auth, "If-None-Match": header})
            assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == tag
        r = client.get("/api/v1/receipts", headers={**auth, "If-None-Match": list_tag})
        assert r.status_code == 304
        r = client.get(f"/api/v1/receipts/{rid}", headers={**auth, "If-None-Match": '"other"'})
        assert r.status_code == 200 and r.headers["ETag"] == tag

        # a correction of a listed field changes both tags
        correct(db, rid, merchant="Corner Shop Ltd")
        r = client.get(f"/api/v1/receipts/{rid}", headers={**auth, "If-None-Match": tag})
        assert r.status_code == 200 and r.headers["ETag"] != tag
        assert r.json()["merchant"] == "Corner Shop Ltd"
        assert r.json()["corrections"][0]["new_value"] == "Corner Shop Ltd"
        tag = r.headers["ETag"]
        r = client.get("/api/v1/receipts", headers={**auth, "If-None-Match": list_tag})
        assert r.status_code == 200 and r.headers["ETag"] != list_tag

        # so does a correction of a field only the receipt's own page shows
        correct(db, rid, tip="1.50")
        r = client.get(f"/api/v1/receipts/{rid}", headers={**auth, "If-None-Match": tag})
        assert r.status_code == 200 and r.headers["ETag"] != tag
