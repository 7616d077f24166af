"""Roles on the fleet API, checked route by route from the app's own route table.

Every fleet route that changes something must refuse a viewer's and a member's token with 403
``insufficient_role``; every read must let a viewer in. The lists come from the router, so a
new route is covered (or fails here) without anyone remembering to add it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from server.accounts.roles import Role
from server.organizations import service as orgs
from tests.server.conftest import Db, Tenant

PREFIX = "/api/v1/fleet"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: Routes the scanners call without a token (the claim code or a signed link is the proof).
PUBLIC = {("POST", f"{PREFIX}/claim"), ("GET", f"{PREFIX}/releases/{{release_id}}/artifact")}


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI >= 0.16x includes routers lazily
            yield from _api_routes(route.original_router.routes)
        elif hasattr(route, "routes"):
            yield from _api_routes(route.routes)


def fleet_routes(client: TestClient) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for route in _api_routes(client.app.routes):  # type: ignore[attr-defined]
        if route.path.startswith(PREFIX):
            out.extend((m, route.path) for m in sorted(route.methods or ()))
    return out


def concrete(path: str, device_id: str) -> str:
    path = path.replace("{device_id}", device_id)
    return re.sub(r"\{[a-z_]+\}", lambda _m: str(uuid.uuid4()), path)


def token(db: Db, tenant: Tenant, role: Role) -> dict[str, str]:
    with db.sessions.begin() as session:
        issued = orgs.create_token(session, tenant.name, f"{role.value} token", role)
    return {"Authorization": f"Bearer {issued.token}"}


def test_the_route_table_has_writes_reads_and_only_the_known_public_routes(client: TestClient):
    routes = fleet_routes(client)
    writes = [r for r in routes if r[0] in WRITE_METHODS]
    # the writes the issue names are all there
    for expected in [
        ("POST", f"{PREFIX}/claim-codes"),
        ("POST", f"{PREFIX}/devices/{{device_id}}/revoke"),
        ("POST", f"{PREFIX}/devices/{{device_id}}/rotate"),
        ("DELETE", f"{PREFIX}/devices/{{device_id}}"),
        ("PUT", f"{PREFIX}/devices/{{device_id}}/config"),
        ("POST", f"{PREFIX}/devices/{{device_id}}/commands"),
        ("POST", f"{PREFIX}/releases"),
        ("POST", f"{PREFIX}/rollouts"),
    ]:
        assert expected in writes
    assert set(routes) >= PUBLIC
    # a route without a token answers 401 unless it is one of the scanners' public routes
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        r = client.request(method, concrete(path, "scanner-1"))
        assert r.status_code == 401, (method, path, r.status_code, r.text)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER])
def test_every_fleet_write_refuses_a_role_below_admin(
    client: TestClient, db: Db, tenant: Tenant, role: Role
):
    headers = token(db, tenant, role)
    writes = [r for r in fleet_routes(client) if r[0] in WRITE_METHODS and r not in PUBLIC]
    assert len(writes) >= 10
    for method, path in writes:
        r = client.request(method, concrete(path, tenant.device_id), headers=headers, json={})
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        error = r.json()["error"]
        assert error["code"] == "insufficient_role", (method, path, error)
        assert "admin" in error["message"] and role.value in error["message"]
    # nothing was changed on the way
    device = client.get(f"{PREFIX}/devices/{tenant.device_id}", headers=headers).json()
    assert device["config"]["desired_version"] == 0 and device["state"] != "revoked"


def test_every_fleet_read_lets_a_viewer_in(client: TestClient, db: Db, tenant: Tenant):
    headers = token(db, tenant, Role.VIEWER)
    reads = [r for r in fleet_routes(client) if r[0] == "GET" and r not in PUBLIC]
    assert len(reads) >= 8
    for _method, path in reads:
        r = client.get(concrete(path, tenant.device_id), headers=headers)
        # unknown rollout/command ids are 404, everything else answers
        assert r.status_code in (200, 404), (path, r.status_code, r.text)
        if r.status_code == 404:
            assert r.json()["error"]["code"] != "insufficient_role"
            assert "{" in path.replace("{device_id}", "")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OWNER])
def test_admins_and_owners_may_change_the_fleet(
    client: TestClient, db: Db, tenant: Tenant, role: Role
):
    headers = token(db, tenant, role)
    r = client.post(f"{PREFIX}/claim-codes", headers=headers, json={"label": "till 2"})
    assert r.status_code == 201, r.text
    assert r.json()["label"] == "till 2" and len(r.json()["code"]) >= 16
    r = client.put(
        f"{PREFIX}/devices/{tenant.device_id}/config",
        headers=headers,
        json={"settings": {"beep": False}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["desired_version"] == 1


def test_a_claim_code_made_through_the_api_enrols_a_scanner(
    client: TestClient, db: Db, tenant: Tenant
):
    headers = token(db, tenant, Role.ADMIN)
    bad = client.post(f"{PREFIX}/claim-codes", headers=headers, json={"ttl_s": 5})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    code = client.post(f"{PREFIX}/claim-codes", headers=headers, json={}).json()["code"]
    r = client.post(f"{PREFIX}/claim", json={"claim_code": code, "device_id": "till-new"})
    assert r.status_code == 200, r.text
    ids = [d["device_id"] for d in client.get(f"{PREFIX}/devices", headers=headers).json()["items"]]
    assert "till-new" in ids


def test_rotate_through_the_api_gives_a_new_password_scoped_to_the_organisation(
    client: TestClient, db: Db, tenant: Tenant
):
    from tests.server.conftest import make_tenant

    other = make_tenant(db, "Other", "other-1")
    headers = token(db, tenant, Role.ADMIN)
    first = client.post(f"{PREFIX}/devices/{tenant.device_id}/rotate", headers=headers)
    second = client.post(f"{PREFIX}/devices/{tenant.device_id}/rotate", headers=headers)
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["password"] != second.json()["password"]
    assert first.json()["username"] == tenant.device_id
    foreign = client.post(f"{PREFIX}/devices/{other.device_id}/rotate", headers=headers)
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "device_not_found"


def test_cli_issues_tokens_with_a_role_and_refuses_unknown_ones(db: Db, tenant: Tenant):
    from click.testing import CliRunner

    from server.cli import admin

    env = {"RM_DATABASE_URL": db.url}
    runner = CliRunner()
    bad = runner.invoke(admin, ["create-token", tenant.name, "--role", "boss"], env=env)
    assert bad.exit_code != 0 and "choose one of owner, admin, member, viewer" in bad.output
    ok = runner.invoke(admin, ["create-token", tenant.name, "--role", "viewer"], env=env)
    assert ok.exit_code == 0, ok.output
    with db.sessions() as session:
        holder = orgs.holder_of_token(session, ok.output.strip())
    assert holder is not None and holder.role is Role.VIEWER
