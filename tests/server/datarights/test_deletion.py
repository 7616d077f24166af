"""Deleting an organisation: nothing of it remains in any table, its images leave the store
(shared ones stay for the other organisation), the other organisation is untouched."""

from __future__ import annotations

import uuid

from sqlalchemy import MetaData, select, text

from server.accounts.models import User
from server.datarights.models import OrganizationDeletion
from server.db.models import Device, Receipt
from server.images.base import sha256_hex
from tests.server.datarights.conftest import ACME_ONLY, GLOBEX_ONLY, SHARED, World


def _acme_markers(world: World) -> set[str]:
    """Strings that only rows of Acme carry: its ids, its devices' and users' ids and names."""
    with world.db.sessions() as s:
        ids: set[uuid.UUID] = {world.acme}
        ids |= set(s.scalars(select(Device.id).where(Device.organization_id == world.acme)))
        ids |= set(s.scalars(select(User.id).where(User.organization_id == world.acme)))
        ids |= set(s.scalars(select(Receipt.id).where(Receipt.organization_id == world.acme)))
    markers = {str(i) for i in ids} | {i.hex for i in ids}
    return markers | {"scanner-1", "scanner-2", "owner@acme.test", world.webhook_secret}


def _every_value(world: World) -> dict[str, list[str]]:
    """Every value of every table of the database (reflected: tables no model knows too)."""
    meta = MetaData()
    meta.reflect(world.db.engine)
    out: dict[str, list[str]] = {}
    with world.db.engine.connect() as conn:
        for table in meta.sorted_tables:
            if table.name in ("alembic_version", OrganizationDeletion.__tablename__):
                continue
            rows = conn.execute(text(f'SELECT * FROM "{table.name}"'))
            out[table.name] = [str(v) for row in rows for v in row]
    return out


def test_deleting_an_organisation_leaves_nothing_of_it(world: World):
    from server.uploads.models import Upload

    photo = b"an uploaded photo of Acme, waiting for its job"
    with world.db.sessions.begin() as s:  # an upload whose photo no receipt refers to yet
        sha = world.store.put(photo)
        s.add(
            Upload(
                organization_id=world.acme,
                sha256=sha,
                content_type="image/jpeg",
                size_bytes=len(photo),
            )
        )
    markers = _acme_markers(world)
    before = _every_value(world)
    found = {t for t, values in before.items() for v in values for m in markers if m in v}
    assert {"receipts", "devices", "users", "webhook_endpoints", "dead_letters"} <= found

    wrong = world.client.post(
        "/api/v1/organization/delete", json={"confirm": "acme"}, headers=world.acme_owner
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "confirmation_mismatch")
    admin = world.client.post(
        "/api/v1/organization/delete", json={"confirm": "Acme"}, headers=world.acme_admin
    )
    assert (admin.status_code, admin.json()["error"]["code"]) == (403, "insufficient_role")
    sizes = {t: len(v) for t, v in before.items()}
    assert {t: len(v) for t, v in _every_value(world).items()} == sizes  # nothing was deleted

    done = world.client.post(
        "/api/v1/organization/delete", json={"confirm": "Acme"}, headers=world.acme_owner
    )
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["deleted_rows"]["receipts"] == 2
    assert report["deleted_rows"]["organizations"] == 1
    assert sorted(report["devices"]) == ["scanner-1", "scanner-2"]
    assert (report["images_deleted"], report["images_kept_shared"]) == (2, 1)

    after = _every_value(world)
    left = {(t, m) for t, values in after.items() for v in values for m in markers if m in v}
    assert left == set(), f"rows of the deleted organisation remain: {sorted(left)}"

    assert not world.store.exists(sha256_hex(ACME_ONLY))
    assert not world.store.exists(sha)  # the uploaded photo too
    assert world.store.exists(sha256_hex(SHARED))  # Globex's receipt still shows it
    assert world.store.exists(sha256_hex(GLOBEX_ONLY))

    gone = world.client.get("/api/v1/receipts", headers=world.acme_owner)
    assert gone.status_code == 401
    theirs = world.client.get("/api/v1/receipts", headers=world.globex_owner)
    assert theirs.status_code == 200 and len(theirs.json()["items"]) == 2
    image = world.client.get(
        f"/api/v1/receipts/{theirs.json()['items'][-1]['id']}/image", headers=world.globex_owner
    )
    assert image.status_code == 200
    assert len(after["webhook_endpoints"]) > 0  # Globex's hook stays

    with world.db.sessions() as s:
        [record] = s.scalars(select(OrganizationDeletion)).all()
    assert record.organization_id == world.acme
    assert record.images_deleted == 2 and record.counts["receipts"] == 2
    assert record.requested_by.startswith("api-token:")
    assert "acme.test" not in record.requested_by
