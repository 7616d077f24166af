"""API keys on both databases: lifecycle, hashing, plan gating, who may manage them, scopes."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from server.accounts.models import AuditEntry
from server.accounts.roles import Role
from server.db.models import ApiToken
from server.images.local import LocalImageStore
from tests.server.api_keys.conftest import (
    bearer,
    login,
    new_key,
    operator_token,
    org_with_owner_token,
)
from tests.server.conftest import Db
from tests.server.dashboard.seed import PASSWORD, add_user

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def test_key_lifecycle_secret_shown_once_and_only_hashed(db: Db, client: TestClient):
    owner = org_with_owner_token(db, "Acme", "enterprise")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    created = new_key(client, owner, "read-write", expires_at=later)
    secret = created["secret"]
    assert secret.startswith("rmk_") and len(secret) > 40
    assert created["status"] == "active" and created["scope"] == "read-write"
    assert secret.startswith(created["prefix"]) and len(created["prefix"]) < 16

    # the secret is nowhere in the database: only its SHA-256 (and a short prefix)
    with db.sessions() as s:
        row = s.get(ApiToken, uuid.UUID(created["id"]))
        assert row is not None
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert row.kind == "key" and row.last_used_at is None
        dump = " ".join(
            str(v) for r in s.execute(text("SELECT * FROM api_tokens")) for v in r
        ) + " ".join(str(a.after) for a in s.scalars(select(AuditEntry)))
    assert secret not in dump and secret[12:] not in dump

    # listing never shows it again
    listed = client.get("/api/v1/api-keys", headers=bearer(owner)).json()["items"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "secret" not in listed[0]

    # it works, and its use is noted
    r = client.get("/api/v1/receipts", headers=bearer(secret))
    assert r.status_code == 200, r.text
    listed = client.get("/api/v1/api-keys", headers=bearer(owner)).json()["items"]
    assert listed[0]["last_used_at"] is not None

    # revoked: refused at once; revoking again is harmless
    r = client.delete(f"/api/v1/api-keys/{created['id']}", headers=bearer(owner))
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert (
        client.delete(f"/api/v1/api-keys/{created['id']}", headers=bearer(owner)).status_code == 200
    )
    r = client.get("/api/v1/receipts", headers=bearer(secret))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"

    with db.sessions() as s:
        actions = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.created_at))]
    assert actions.count("api_key.created") == 1 and actions.count("api_key.revoked") == 1


def test_expired_key_is_refused(db: Db, client: TestClient):
    owner = org_with_owner_token(db, "Acme", "enterprise")
    created = new_key(client, owner)
    with db.sessions.begin() as s:
        row = s.get(ApiToken, uuid.UUID(created["id"]))
        assert row is not None
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    r = client.get("/api/v1/receipts", headers=bearer(created["secret"]))
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
    listed = client.get("/api/v1/api-keys", headers=bearer(owner)).json()["items"]
    assert listed[0]["status"] == "expired"


def test_bad_input_gets_clear_errors(db: Db, client: TestClient):
    owner = org_with_owner_token(db, "Acme", "enterprise")
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    cases = [
        ({"name": "x", "scope": "admin"}, 422, "invalid_request"),
        ({"name": "", "scope": "read"}, 422, "invalid_request"),
        ({"name": "x", "expires_at": past}, 422, "invalid_expiry"),
        ({"name": "x", "secret": "mine"}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        r = client.post("/api/v1/api-keys", json=body, headers=bearer(owner))
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
    r = client.delete(f"/api/v1/api-keys/{uuid.uuid4()}", headers=bearer(owner))
    assert r.status_code == 404 and r.json()["error"]["code"] == "api_key_not_found"


def test_keys_need_the_enterprise_plan(db: Db, client: TestClient):
    for plan in ("starter", "pro", "business"):
        owner = org_with_owner_token(db, f"Org-{plan}", plan)
        r = client.post("/api/v1/api-keys", json={"name": "ci"}, headers=bearer(owner))
        assert r.status_code == 403
        error = r.json()["error"]
        assert error["code"] == "plan_required"
        assert "Enterprise" in error["message"] and plan.capitalize() in error["message"]
        # the operator's own token keeps working on any plan
        assert client.get("/api/v1/receipts", headers=bearer(owner)).status_code == 200

    # a key made on Enterprise stops working when the organisation leaves it, and comes back
    owner = org_with_owner_token(db, "Big", "enterprise")
    key = new_key(client, owner)["secret"]
    assert client.get("/api/v1/receipts", headers=bearer(key)).status_code == 200
    r = client.put("/api/v1/organization/plan", json={"plan": "business"}, headers=bearer(owner))
    assert r.status_code == 200 and r.json()["previous"] == "enterprise"
    r = client.get("/api/v1/receipts", headers=bearer(key))
    assert r.status_code == 403 and r.json()["error"]["code"] == "plan_required"
    client.put("/api/v1/organization/plan", json={"plan": "enterprise"}, headers=bearer(owner))
    assert client.get("/api/v1/receipts", headers=bearer(key)).status_code == 200


def test_only_owners_and_admins_manage_keys_never_a_key(db: Db, client: TestClient):
    owner = org_with_owner_token(db, "Acme", "enterprise")
    key = new_key(client, owner, "read-write")["secret"]
    r = client.post("/api/v1/api-keys", json={"name": "more"}, headers=bearer(key))
    assert r.status_code == 403 and r.json()["error"]["code"] == "owner_or_admin_required"
    assert client.get("/api/v1/api-keys", headers=bearer(key)).status_code == 403
    member = operator_token(db, "Acme", Role.MEMBER)
    r = client.get("/api/v1/api-keys", headers=bearer(member))
    assert r.status_code == 403 and r.json()["error"]["code"] == "owner_or_admin_required"
    admin = operator_token(db, "Acme", Role.ADMIN)
    assert client.get("/api/v1/api-keys", headers=bearer(admin)).status_code == 200
    r = client.put("/api/v1/organization/plan", json={"plan": "pro"}, headers=bearer(admin))
    assert r.status_code == 403 and r.json()["error"]["code"] == "owner_required"
    assert client.get("/api/v1/api-keys").json()["error"]["code"] == "missing_token"

    # another organisation's keys are out of reach
    other = org_with_owner_token(db, "Globex", "enterprise")
    mine = new_key(client, owner)["id"]
    r = client.delete(f"/api/v1/api-keys/{mine}", headers=bearer(other))
    assert r.status_code == 404
    assert client.get("/api/v1/api-keys", headers=bearer(other)).json()["items"] == []


def test_a_signed_in_admin_manages_keys_with_the_csrf_header(
    db: Db, client: TestClient, store: LocalImageStore
):
    org_with_owner_token(db, "Acme", "enterprise")
    add_user(db, "Acme", "admin@acme.test", Role.ADMIN)
    add_user(db, "Acme", "member@acme.test", Role.MEMBER)
    login(client, "admin@acme.test", PASSWORD)
    page = client.get("/app/settings").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/api/v1/api-keys", json={"name": "script"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = client.post("/api/v1/api-keys", json={"name": "script"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    assert client.get("/api/v1/api-keys").status_code == 200
    with db.sessions() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "api_key.created"))
        assert entry is not None and entry.actor == "admin@acme.test"
    client.cookies.clear()
    login(client, "member@acme.test", PASSWORD)
    r = client.get("/api/v1/api-keys")
    assert r.status_code == 403 and r.json()["error"]["code"] == "owner_or_admin_required"


def write_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) of the app's OpenAPI that changes something under /api/v1, path
    parameters filled in."""
    out = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        concrete = re.sub(r"\{[^}]+\}", lambda _m: str(uuid.uuid4()), path)
        out += [(m.upper(), concrete) for m in operations if m.upper() in WRITE_METHODS]
    return out


def test_a_read_key_is_refused_on_every_write_route(db: Db, client: TestClient):
    owner = org_with_owner_token(db, "Acme", "enterprise")
    read = new_key(client, owner, "read")["secret"]
    write = new_key(client, owner, "read-write")["secret"]
    routes = write_routes(client)
    assert ("POST", "/api/v1/api-keys") in routes
    assert ("PUT", "/api/v1/organization/plan") in routes
    assert len(routes) >= 10
    routes.append(("POST", "/api/v1/no-such-route"))  # the guard is by prefix, not by route
    for method, path in routes:
        r = client.request(method, path, headers=bearer(read), json={})
        assert r.status_code == 403, (method, path, r.status_code)
        assert r.json()["error"]["code"] == "read_only_key", (method, path)
        # the same request with a read-write key is not refused for its scope
        r = client.request(method, path, headers=bearer(write), json={})
        assert r.status_code == 422 or r.json().get("error", {}).get("code") != "read_only_key"
    assert client.get("/api/v1/receipts", headers=bearer(read)).status_code == 200
