"""`/api/v1/webhooks`: register (secret once), list, change, test, deliveries, delete; roles,
tenancy, refused URLs with stable codes; the backlog gauge on /metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from server.accounts.roles import Role
from server.api.app import create_app
from server.organizations import service as orgs
from server.settings import Settings
from server.webhooks.worker import WebhookWorker
from tests.conftest import free_tcp_port
from tests.server.conftest import Db, make_tenant
from tests.server.webhooks.conftest import FAST, drain
from tests.server.webhooks.receiver import running_receiver


def _token(db: Db, org: str, role: Role) -> dict[str, str]:
    with db.sessions.begin() as session:
        token = orgs.create_token(session, org, f"{role.value} token", role).token
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(db: Db, store) -> Iterator[TestClient]:
    make_tenant(db, "Acme", "scanner-1")
    make_tenant(db, "Globex", "globex-1")
    app = create_app(Settings(database_url=db.url), engine=db.engine, images=store)
    with TestClient(app) as c:
        yield c


def test_register_list_change_test_and_delete(db: Db, client: TestClient):
    admin = _token(db, "Acme", Role.ADMIN)
    with running_receiver(free_tcp_port()) as receiver:
        made = client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["receipt.created"], "description": "books"},
            headers=admin,
        )
        assert made.status_code == 201, made.text
        hook = made.json()
        assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 40
        receiver.secret = hook["secret"]
        listed = client.get("/api/v1/webhooks", headers=admin).json()
        assert [h["id"] for h in listed] == [hook["id"]]
        assert "secret" not in listed[0]  # shown once, never again

        changed = client.patch(
            f"/api/v1/webhooks/{hook['id']}",
            json={"events": ["receipt.created", "receipt.corrected"], "active": False},
            headers=admin,
        )
        assert changed.status_code == 200
        assert changed.json()["events"] == ["receipt.created", "receipt.corrected"]
        inactive = client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=admin)
        assert (inactive.status_code, inactive.json()["error"]["code"]) == (409, "webhook_inactive")
        client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": True}, headers=admin)

        queued = client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=admin)
        assert queued.status_code == 202
        worker = WebhookWorker(FAST, db.sessions, allow_private=True)
        try:
            drain(worker, lambda: bool(receiver.received))
        finally:
            worker.close()
        [got] = receiver.wait_for(1)
        assert got.verified and got.event_type == "webhook.test"
        assert got.event_id == queued.json()["event_id"]

    deliveries = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=admin).json()
    assert [(d["event_type"], d["status"], d["attempts"]) for d in deliveries] == [
        ("webhook.test", "succeeded", 1)
    ]
    assert deliveries[0]["history"][0]["status_code"] == 200

    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/webhooks", headers=admin).json() == []
    gone = client.get(f"/api/v1/webhooks/{hook['id']}", headers=admin)
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "webhook_not_found")


def test_roles_tenancy_and_refused_urls(db: Db, client: TestClient):
    admin = _token(db, "Acme", Role.ADMIN)
    viewer = _token(db, "Acme", Role.VIEWER)
    other = _token(db, "Globex", Role.OWNER)
    made = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=admin)
    hook_id = made.json()["id"]

    refused = client.get("/api/v1/webhooks", headers=viewer)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "insufficient_role")
    assert client.get("/api/v1/webhooks", headers=other).json() == []
    for method in ("get", "delete"):
        answer = getattr(client, method)(f"/api/v1/webhooks/{hook_id}", headers=other)
        assert answer.status_code == 404
    assert (
        client.patch(
            f"/api/v1/webhooks/{hook_id}", json={"active": False}, headers=other
        ).status_code
        == 404
    )

    for url, code in [
        ("ftp://example.com/x", "url_scheme_not_allowed"),
        ("https://u:p@example.com/x", "url_credentials_not_allowed"),
    ]:
        bad = client.post("/api/v1/webhooks", json={"url": url}, headers=admin)
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, code)
    bad_event = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["x"]}, headers=admin
    )
    assert (bad_event.status_code, bad_event.json()["error"]["code"]) == (422, "invalid_request")


def test_production_refuses_private_urls(db: Db, store):
    make_tenant(db, "Acme", "scanner-1")
    settings = Settings(database_url=db.url, webhooks={"allow_private_addresses": False})
    with TestClient(create_app(settings, engine=db.engine, images=store)) as c:
        admin = _token(db, "Acme", Role.ADMIN)
        for url in ("http://127.0.0.1:8000/x", "http://169.254.169.254/latest", "http://[::1]/"):
            bad = c.post("/api/v1/webhooks", json={"url": url}, headers=admin)
            assert (bad.status_code, bad.json()["error"]["code"]) == (422, "url_not_public"), url


def test_pending_deliveries_are_on_metrics(db: Db, store, client: TestClient):
    from tests.server.conftest import ingest
    from tests.server.helpers import receipt_message, receipt_topic

    admin = _token(db, "Acme", Role.ADMIN)
    client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=admin)
    ingest(db, store, [(receipt_topic("scanner-1"), receipt_message().to_json()) for _ in range(3)])
    text = client.get("/metrics").text
    assert "rm_webhook_deliveries_pending 3.0" in text
