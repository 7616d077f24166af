"""An API app on a migrated database, organisations on chosen plans, operator tokens by role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from server.accounts.roles import Role
from server.api.app import create_app
from server.images.local import LocalImageStore
from server.organizations import service as orgs
from server.settings import Settings
from tests.server.conftest import Db, make_tenant


def make_app_client(db: Db, store: LocalImageStore, **settings: object) -> TestClient:
    config = Settings.model_validate(
        {
            "database_url": db.url,
            "secret_key": SecretStr("s" * 40),
            "image_store": {"type": "local", "root": str(store.root)},
            **settings,
        }
    )
    return TestClient(create_app(config, engine=db.engine, images=store))


@pytest.fixture
def client(db: Db, store: LocalImageStore, tmp_path: Path) -> Iterator[TestClient]:
    with make_app_client(db, store) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def operator_token(db: Db, org: str, role: Role = Role.OWNER) -> str:
    with db.sessions.begin() as session:
        return orgs.create_token(session, org, f"{role.value} token", role).token


def org_with_owner_token(db: Db, name: str, plan: str) -> str:
    make_tenant(db, name, f"{name.lower()}-till", plan=plan)
    return operator_token(db, name)


def new_key(
    client: TestClient, owner_token: str, scope: str = "read", **body: object
) -> dict[str, Any]:
    r = client.post(
        "/api/v1/api-keys",
        json={"name": f"{scope} key", "scope": scope, **body},
        headers=bearer(owner_token),
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def login(client: TestClient, email: str, password: str) -> None:
    token = csrf(client.get("/app/login").text)
    r = client.post(
        "/app/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/app/settings"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
