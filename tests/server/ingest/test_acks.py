"""Delivery acks: what a committed batch tells each scanner its outbox may forget."""

from __future__ import annotations

import json
import uuid

from models.protocol import DeliveryAck, decode
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.helpers import image_topic, jpeg_bytes, receipt_message, receipt_topic


def test_committed_duplicate_and_refused_messages_are_acknowledged(
    db: Db, store, tenant: Tenant
) -> None:
    image = jpeg_bytes()
    first = receipt_message(image=image)
    bad_id = uuid.uuid4()
    bad = json.dumps({"schema": "1.0", "receipt_id": str(bad_id), "receipt": "not a receipt"})
    result = ingest(
        db,
        store,
        [
            (receipt_topic(tenant.device_id), first.to_json()),
            (image_topic(tenant.device_id, first.receipt_id), image),
            (receipt_topic(tenant.device_id), bad.encode()),
            (receipt_topic(tenant.device_id), b"{broken"),  # no id to name: not acked
        ],
    )
    ack = result.acks[tenant.device_id]
    assert ack.receipts == [first.receipt_id]
    assert ack.images == [first.receipt_id]
    assert [(r.receipt_id, r.kind, r.code) for r in ack.refused] == [
        (bad_id, "receipt", "invalid_payload")
    ]
    assert decode(DeliveryAck, ack.to_json()) == ack  # what goes on the wire

    again = ingest(db, store, [(receipt_topic(tenant.device_id), first.to_json())])
    assert again.duplicates == 1
    assert again.acks[tenant.device_id].receipts == [first.receipt_id]


def test_unknown_devices_are_not_acknowledged_so_they_send_again(db: Db, store) -> None:
    make_tenant(db, "Acme", "scanner-1")
    msg = receipt_message()
    result = ingest(db, store, [(receipt_topic("stranger"), msg.to_json())])
    assert [r.code for r in result.refused] == ["unknown_device"]
    assert result.acks == {}


def test_acks_are_per_device(db: Db, store) -> None:
    make_tenant(db, "Acme", "scanner-1", "scanner-2")
    a, b = receipt_message(), receipt_message()
    result = ingest(
        db,
        store,
        [(receipt_topic("scanner-1"), a.to_json()), (receipt_topic("scanner-2"), b.to_json())],
    )
    assert result.acks["scanner-1"].receipts == [a.receipt_id]
    assert result.acks["scanner-2"].receipts == [b.receipt_id]
