"""Batches written to the real databases: idempotency, image linking, dead letters."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from server.db.models import DeadLetter, Device, Receipt, ReceiptImage
from server.images.local import LocalImageStore
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.helpers import image_topic, jpeg_bytes, receipt_message, receipt_topic


def count(db: Db, model) -> int:
    with db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_same_receipt_twice_is_one_row(db: Db, store: LocalImageStore, tenant: Tenant):
    payload = receipt_message().to_json()
    topic = receipt_topic(tenant.device_id)
    first = ingest(db, store, [(topic, payload), (topic, payload)])
    second = ingest(db, store, [(topic, payload)])
    assert (first.receipts, first.duplicates) == (1, 1)
    assert (second.receipts, second.duplicates) == (0, 1)
    assert count(db, Receipt) == 1


def test_image_links_whichever_arrives_first(db: Db, store: LocalImageStore, tenant: Tenant):
    img_a, img_b = jpeg_bytes(1), jpeg_bytes(2)
    before = receipt_message(image=img_a)
    after = receipt_message(image=img_b)
    ingest(db, store, [(image_topic(tenant.device_id, before.receipt_id), img_a)])
    ingest(db, store, [(receipt_topic(tenant.device_id), before.to_json())])
    ingest(db, store, [(receipt_topic(tenant.device_id), after.to_json())])
    ingest(db, store, [(image_topic(tenant.device_id, after.receipt_id), img_b)])
    with db.sessions() as s:
        rows = {i.receipt_id: i for i in s.scalars(select(ReceiptImage))}
    assert set(rows) == {before.receipt_id, after.receipt_id}
    assert store.get(rows[before.receipt_id].sha256) == img_a
    assert store.get(rows[after.receipt_id].sha256) == img_b


def test_bad_messages_land_in_dead_letters_truncated(
    db: Db, store: LocalImageStore, tenant: Tenant
):
    big = b"{" + b" " * 5000
    result = ingest(
        db,
        store,
        [
            (receipt_topic(tenant.device_id), big),
            (receipt_topic("stranger"), receipt_message().to_json()),
        ],
    )
    assert [r.code for r in result.refused] == ["malformed_json", "unknown_device"]
    with db.sessions() as s:
        letters = {d.code: d for d in s.scalars(select(DeadLetter))}
    assert letters["malformed_json"].payload_size == len(big)
    assert len(letters["malformed_json"].payload) == 1024
    assert letters["unknown_device"].device_id == "stranger"
    assert count(db, Receipt) == 0


def test_a_receipt_id_of_another_device_is_refused(db: Db, store: LocalImageStore):
    make_tenant(db, "A", "dev-a")
    make_tenant(db, "B", "dev-b")
    msg = receipt_message()
    ingest(db, store, [(receipt_topic("dev-a"), msg.to_json())])
    result = ingest(
        db,
        store,
        [
            (receipt_topic("dev-b"), msg.to_json()),
            (image_topic("dev-b", msg.receipt_id), jpeg_bytes()),
        ],
    )
    assert [r.code for r in result.refused] == ["conflicting_receipt_id"] * 2
    with db.sessions() as s:
        receipt = s.get(Receipt, msg.receipt_id)
        assert receipt is not None
        device = s.get(Device, receipt.device_id)
        assert device is not None
        assert device.device_id == "dev-a"
    assert count(db, ReceiptImage) == 0


def test_status_and_telemetry_update_the_device(db: Db, store: LocalImageStore, tenant: Tenant):
    from models.protocol import StatusMessage, Telemetry, device_topic

    ingest(
        db,
        store,
        [
            (device_topic(tenant.device_id, "status"), StatusMessage(state="online").to_json()),
            (device_topic(tenant.device_id, "telemetry"), Telemetry(interval_s=5).to_json()),
        ],
    )
    with db.sessions() as s:
        dev = s.scalar(select(Device).where(Device.device_id == tenant.device_id))
        assert dev is not None
        assert dev.online
        assert dev.last_seen_at is not None
        assert dev.telemetry is not None
        assert dev.telemetry["interval_s"] == 5
    ingest(
        db,
        store,
        [(device_topic(tenant.device_id, "status"), StatusMessage(state="offline").to_json())],
    )
    with db.sessions() as s:
        dev = s.scalar(select(Device).where(Device.device_id == tenant.device_id))
        assert dev is not None
        assert not dev.online


def test_unknown_ids_do_not_collide(db: Db, store: LocalImageStore, tenant: Tenant):
    msgs = [receipt_message() for _ in range(30)]
    result = ingest(db, store, [(receipt_topic(tenant.device_id), m.to_json()) for m in msgs])
    assert result.receipts == 30
    assert count(db, Receipt) == 30
    assert uuid.UUID(str(msgs[0].receipt_id))
