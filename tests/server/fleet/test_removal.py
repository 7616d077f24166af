"""Removing a scanner: credentials and fleet rows gone, receipts and images kept, audited.

The broker cut-off on a real Mosquitto is in test_broker.py; this is the registry's side on
both databases.
"""

from __future__ import annotations

import csv
import io
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from models.protocol import Telemetry, device_topic
from server.accounts.models import AuditEntry
from server.fleet import enrolment
from server.fleet.publisher import MemoryPublisher
from server.fleet.repository import RegistryRepository
from server.images.local import LocalImageStore
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.fleet.conftest import auth, new_claim_code
from tests.server.helpers import image_topic, jpeg_bytes, receipt_message, receipt_topic

FLEET = "/api/v1/fleet"


def _scanner_with_history(
    client: TestClient, db: Db, store: LocalImageStore, tenant: Tenant
) -> uuid.UUID:
    """scanner-1 enrolled, with a receipt and its image, telemetry, a config and a command."""
    with db.sessions.begin() as session:
        enrolment.rotate(session, tenant.device_id, None)
    image = jpeg_bytes(7)
    msg = receipt_message(image=image)
    result = ingest(
        db,
        store,
        [
            (receipt_topic(tenant.device_id), msg.to_json()),
            (image_topic(tenant.device_id, msg.receipt_id), image),
            (
                device_topic(tenant.device_id, "telemetry"),
                Telemetry(interval_s=30, outbox_depth=0).to_json(),
            ),
        ],
    )
    assert (result.receipts, result.images, result.telemetry) == (1, 1, 1), result
    h = auth(tenant)
    r = client.put(f"{FLEET}/devices/{tenant.device_id}/config", headers=h, json={"settings": {}})
    assert r.status_code == 200, r.text
    r = client.post(
        f"{FLEET}/devices/{tenant.device_id}/commands", headers=h, json={"name": "rescan_last"}
    )
    assert r.status_code == 201, r.text
    return msg.receipt_id


def test_removing_a_scanner_keeps_its_receipts_and_forgets_its_credentials(
    client: TestClient, db: Db, store: LocalImageStore, tenant: Tenant, publisher: MemoryPublisher
):
    receipt_id = _scanner_with_history(client, db, store, tenant)
    h = auth(tenant)
    with db.sessions() as session:
        assert tenant.device_id in [
            a.username for a in RegistryRepository(session).active_accounts()
        ]

    r = client.delete(f"{FLEET}/devices/{tenant.device_id}", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["device_id"] == tenant.device_id and body["receipts_kept"] == 1
    assert body["deleted"]["broker_accounts"] == 1
    assert body["deleted"]["device_configs"] == 1
    assert body["deleted"]["device_commands"] == 1
    assert body["deleted"]["device_telemetry"] == 1

    # gone from the fleet and from the broker's accounts
    gone = client.get(f"{FLEET}/devices/{tenant.device_id}", headers=h)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "device_not_found"
    assert client.get(f"{FLEET}/devices", headers=h).json()["items"] == []
    assert client.get(f"{FLEET}/overview", headers=h).json()["devices"]["total"] == 0
    with db.sessions() as session:
        assert tenant.device_id not in [
            a.username for a in RegistryRepository(session).active_accounts()
        ]
    # the retained desired configuration is cleared at the broker
    assert (device_topic(tenant.device_id, "config/desired"), b"", 1, True) in publisher.messages
    again = client.delete(f"{FLEET}/devices/{tenant.device_id}", headers=h)
    assert again.status_code == 404 and again.json()["error"]["code"] == "device_not_found"
    revoke = client.post(f"{FLEET}/devices/{tenant.device_id}/revoke", headers=h)
    assert revoke.status_code == 404

    # the receipt stays readable, with its image, filterable by the scanner, and exportable
    listed = client.get("/api/v1/receipts", headers=h).json()["items"]
    assert [(x["id"], x["device_id"]) for x in listed] == [(str(receipt_id), tenant.device_id)]
    image = client.get(f"/api/v1/receipts/{receipt_id}/image", headers=h)
    assert image.status_code == 200 and image.content == jpeg_bytes(7)
    by_device = client.get(
        "/api/v1/receipts", headers=h, params={"device": tenant.device_id}
    ).json()["items"]
    assert len(by_device) == 1
    export = client.get("/api/v1/exports/receipts.csv", headers=h)
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["receipt_id"] for r in rows] == [str(receipt_id)]

    # audited, with who did it
    with db.sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "device.removed")
        ).all()
    assert len(entries) == 1
    entry = entries[0]
    assert entry.entity_id == tenant.device_id and entry.actor.startswith("api-token:")
    assert entry.after is not None and entry.after["receipts_kept"] == 1


def test_a_removed_scanner_can_be_enrolled_again_only_by_its_organisation(
    client: TestClient, db: Db, store: LocalImageStore, tenant: Tenant
):
    receipt_id = _scanner_with_history(client, db, store, tenant)
    other = make_tenant(db, "Other")
    h = auth(tenant)
    assert client.delete(f"{FLEET}/devices/{tenant.device_id}", headers=h).status_code == 200

    taken = client.post(
        f"{FLEET}/claim",
        json={"claim_code": new_claim_code(db, other.name), "device_id": tenant.device_id},
    )
    assert taken.status_code == 409 and taken.json()["code"] == "device_taken"

    back = client.post(
        f"{FLEET}/claim",
        json={"claim_code": new_claim_code(db, tenant.name), "device_id": tenant.device_id},
    )
    assert back.status_code == 200, back.text
    device = client.get(f"{FLEET}/devices/{tenant.device_id}", headers=h)
    assert device.status_code == 200 and device.json()["config"]["desired_version"] == 0
    listed = client.get("/api/v1/receipts", headers=h).json()["items"]
    assert [x["id"] for x in listed] == [str(receipt_id)]


def test_an_organisation_cannot_remove_another_ones_scanner(
    client: TestClient, db: Db, tenant: Tenant
):
    other = make_tenant(db, "Other", "other-1")
    r = client.delete(f"{FLEET}/devices/{other.device_id}", headers=auth(tenant))
    assert r.status_code == 404 and r.json()["error"]["code"] == "device_not_found"
    assert client.get(f"{FLEET}/devices/{other.device_id}", headers=auth(other)).status_code == 200
