"""The owner's "Your data" page: download, and delete behind password and typed name."""

from __future__ import annotations

import io
import json
import zipfile

from sqlalchemy import func, select

from server.db.models import Organization
from tests.server.dashboard.conftest import csrf
from tests.server.dashboard.seed import PASSWORD, add_user
from tests.server.datarights.conftest import World


def _login(world: World, email: str) -> None:
    c = world.client
    token = csrf(c.get("/app/login").text)
    r = c.post(
        "/app/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/app/data"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _orgs(world: World) -> int:
    with world.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Organization)) or 0)


def test_an_owner_downloads_then_deletes_after_confirming(world: World):
    _login(world, "owner@acme.test")
    c = world.client
    page = c.get("/app/data")
    assert page.status_code == 200 and "Delete Acme" in page.text
    export = c.get("/app/data/export.zip")
    assert export.status_code == 200
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(export.content)).read("manifest.json"))
    assert manifest["organization"]["name"] == "Acme"

    token = csrf(c.get("/app/data/delete").text)
    for form in (
        {"confirm": "Acme", "password": "wrong password"},
        {"confirm": "acme", "password": PASSWORD},
        {"confirm": "Acme", "password": PASSWORD, "csrf_token": "forged"},
    ):
        r = c.post("/app/data/delete", data={"csrf_token": token, **form})
        assert r.status_code in (400, 403), form
        assert _orgs(world) == 2, form
    done = c.post(
        "/app/data/delete", data={"csrf_token": token, "confirm": "Acme", "password": PASSWORD}
    )
    assert done.status_code == 200 and "Acme is deleted" in done.text
    assert _orgs(world) == 1
    assert c.get("/app/receipts", follow_redirects=False).status_code == 303  # signed out


def test_only_an_owner_sees_the_page(world: World):
    from server.accounts.roles import Role

    add_user(world.db, "Acme", "admin@acme.test", Role.ADMIN)
    _login(world, "admin@acme.test")
    assert world.client.get("/app/data").status_code == 403
    assert world.client.get("/app/data/export.zip").status_code == 403
    assert "/app/data" not in world.client.get("/app/receipts").text
