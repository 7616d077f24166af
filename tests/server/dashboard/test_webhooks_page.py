"""The webhooks settings page: register (secret once), pause, test, deliveries, delete; roles."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select

from server.webhooks.models import WebhookDelivery, WebhookEndpoint
from server.webhooks.repository import DeliveryQueue
from tests.server.conftest import ingest
from tests.server.dashboard.owner_site import OwnerSite
from tests.server.helpers import receipt_message, receipt_topic


def test_owner_registers_pauses_tests_and_deletes_a_webhook(owner_site: OwnerSite):
    client = owner_site.client
    token = owner_site.login("owner@acme.test")
    page = client.get("/app/webhooks")
    assert page.status_code == 200 and 'id="no-webhooks"' in page.text
    assert client.post("/app/webhooks", data={"url": "https://hooks.test/a"}).status_code == 403
    bad = client.post(
        "/app/webhooks", data={"url": "ftp://x", "csrf_token": token, "event_receipt.created": "1"}
    )
    assert bad.status_code == 422 and 'class="error"' in bad.text
    none = client.post("/app/webhooks", data={"url": "https://hooks.test/a", "csrf_token": token})
    assert none.status_code == 422 and "at least one" in none.text

    made = client.post(
        "/app/webhooks",
        data={
            "url": "https://hooks.test/a",
            "description": "books",
            "csrf_token": token,
            "event_receipt.created": "1",
        },
    )
    assert made.status_code == 201, made.text
    secret = re.search(
        r'id="new-secret" onfocus="this.select\(\)"|value="(whsec_[^"]+)"', made.text
    )
    assert secret and secret.group(1)
    again = client.get("/app/webhooks").text
    assert secret.group(1) not in again and "https://hooks.test/a" in again
    with owner_site.db.sessions() as session:
        endpoint = session.scalar(select(WebhookEndpoint))
        assert endpoint is not None and endpoint.events == ["receipt.created"]
        hook_id = endpoint.id

    # a receipt produces a delivery; one failed attempt shows with its answer
    ingest(
        owner_site.db, owner_site.store, [(receipt_topic("till-1"), receipt_message().to_json())]
    )
    with owner_site.db.sessions.begin() as session:
        queue = DeliveryQueue(session)
        now = dt.datetime.now(dt.UTC)
        (claimed,) = queue.claim(now + dt.timedelta(minutes=5), now + dt.timedelta(minutes=6), 10)
        queue.record(
            claimed,
            status_code=503,
            error=None,
            duration_ms=12,
            next_attempt_at=now + dt.timedelta(hours=1),
            now=now,
        )
    html = client.get("/app/webhooks").text
    assert 'data-status="pending"' in html and "HTTP 503" in html
    assert re.search(r'data-label="Attempts" class="num">1<', html)

    r = client.post(
        f"/app/webhooks/{hook_id}/test", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    assert "test event is queued" in client.get(r.headers["location"]).text
    assert "webhook.test" in client.get("/app/webhooks").text

    r = client.post(
        f"/app/webhooks/{hook_id}/active",
        data={"active": "0", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "paused" in client.get(r.headers["location"]).text
    paused = client.post(f"/app/webhooks/{hook_id}/test", data={"csrf_token": token})
    assert paused.status_code == 409

    r = client.post(
        f"/app/webhooks/{hook_id}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    with owner_site.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_members_and_viewers_may_not_manage_webhooks(owner_site: OwnerSite):
    client = owner_site.client
    for email in ("member@acme.test", "viewer@acme.test"):
        token = owner_site.login(email)
        assert client.get("/app/webhooks").status_code == 403
        assert 'href="/app/webhooks"' not in client.get("/app/receipts").text
        r = client.post(
            "/app/webhooks",
            data={"url": "https://hooks.test/b", "csrf_token": token, "event_receipt.created": "1"},
        )
        assert r.status_code == 403
    token = owner_site.login("admin@acme.test")
    assert client.get("/app/webhooks").status_code == 200
    assert 'href="/app/webhooks"' in client.get("/app/settings").text
