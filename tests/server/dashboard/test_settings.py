"""The settings page (plan, API keys) and held receipts in the receipt pages, over HTTP."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from server.accounts.models import AuditEntry
from server.accounts.roles import Role
from server.images.local import LocalImageStore
from server.plans.catalog import Plan
from server.plans.quota import held_message
from tests.server.api_keys.conftest import bearer, csrf, login, make_app_client
from tests.server.conftest import Db, ingest, make_tenant
from tests.server.dashboard.seed import PASSWORD, add_user
from tests.server.helpers import receipt_message, receipt_topic


def test_owner_makes_and_revokes_a_key_on_the_settings_page(db: Db, store: LocalImageStore):
    make_tenant(db, "Acme", "till-1", plan="enterprise")
    add_user(db, "Acme", "owner@acme.test")
    add_user(db, "Acme", "viewer@acme.test", Role.VIEWER)
    with make_app_client(db, store) as client:
        login(client, "owner@acme.test", PASSWORD)
        page = client.get("/app/settings")
        assert page.status_code == 200
        assert 'href="/app/settings"' in page.text and "Enterprise" in page.text
        token = csrf(page.text)

        # without the form's CSRF token nothing is made
        r = client.post("/app/settings/api-keys", data={"name": "ci", "scope": "read"})
        assert r.status_code == 403
        r = client.post(
            "/app/settings/api-keys",
            data={"name": "ci", "scope": "read", "expires_days": "30", "csrf_token": token},
        )
        assert r.status_code == 201, r.text
        secret = re.search(r'id="new-key"[^>]*value="([^"]+)"|value="(rmk_[^"]+)"', r.text)
        assert secret is not None
        key = secret.group(1) or secret.group(2)
        assert key.startswith("rmk_")
        assert "ci" in r.text and "read" in r.text

        # shown once: the page never shows it again; the key works, read-only
        again = client.get("/app/settings").text
        assert key not in again and key[:12] in again
        assert client.get("/api/v1/receipts", headers=bearer(key)).status_code == 200
        r = client.put("/api/v1/exports/account-codes", json={}, headers=bearer(key))
        assert r.status_code == 403 and r.json()["error"]["code"] == "read_only_key"

        key_id = re.search(r'data-id="([0-9a-f-]{36})"', again)
        assert key_id is not None
        r = client.post(
            f"/app/settings/api-keys/{key_id.group(1)}/revoke",
            data={"csrf_token": token},
            follow_redirects=True,
        )
        assert r.status_code == 200 and "revoked" in r.text
        assert client.get("/api/v1/receipts", headers=bearer(key)).status_code == 401
        with db.sessions() as s:
            actions = {a.action for a in s.scalars(select(AuditEntry))}
        assert {"api_key.created", "api_key.revoked"} <= actions

        # a viewer sees the plan, not the keys, and cannot make one
        client.cookies.clear()
        login(client, "viewer@acme.test", PASSWORD)
        page = client.get("/app/settings")
        assert "API keys" not in page.text and "Enterprise" in page.text
        r = client.post(
            "/app/settings/api-keys",
            data={"name": "x", "scope": "read", "csrf_token": csrf(page.text)},
        )
        assert r.status_code == 403


def test_lower_plans_are_told_keys_need_enterprise(db: Db, store: LocalImageStore):
    make_tenant(db, "Acme", "till-1")
    add_user(db, "Acme", "owner@acme.test")
    with make_app_client(db, store) as client:
        login(client, "owner@acme.test", PASSWORD)
        page = client.get("/app/settings")
        assert "API keys come with the Enterprise plan" in page.text
        r = client.post(
            "/app/settings/api-keys",
            data={"name": "x", "scope": "read", "expires_days": "0", "csrf_token": csrf(page.text)},
        )
        assert r.status_code == 403 and "Enterprise" in r.text


def test_held_receipts_are_shown_as_held_and_released_by_an_upgrade(db: Db, store: LocalImageStore):
    make_tenant(db, "Acme", "till-1")
    add_user(db, "Acme", "owner@acme.test")
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    msgs = [
        receipt_message(merchant=f"Shop {i}", captured_at=t0 + dt.timedelta(minutes=i))
        for i in range(51)
    ]
    ingest(db, store, [(receipt_topic("till-1"), m.to_json()) for m in msgs])
    note = held_message(Plan.STARTER)
    assert note.startswith("Monthly limit of 50 receipts on the Starter plan reached")
    with make_app_client(db, store) as client:
        login(client, "owner@acme.test", PASSWORD)
        listing = client.get("/app/receipts?sort=-captured").text
        assert note in listing and listing.count('class="badge held"') == 1
        held = msgs[-1].receipt_id
        page = client.get(f"/app/receipts/{held}").text
        assert 'id="held"' in page and note in page
        assert 'id="held"' not in client.get(f"/app/receipts/{msgs[0].receipt_id}").text

        settings = client.get("/app/settings")
        assert "50 of 50 receipts this month" in settings.text and "1 held" in settings.text
        r = client.post(
            "/app/settings/plan", data={"plan": "pro", "csrf_token": csrf(settings.text)}
        )
        assert r.status_code == 200 and "1 held receipts released" in r.text
        assert 'id="held"' not in client.get(f"/app/receipts/{held}").text
