"""End-to-end delivery: the outbox forgets a scan when the server acknowledges it, not on PUBACK,
and sends again what no ack answered, so a message the broker lost after its PUBACK is not lost."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

from edge_agent.outbox import Outbox, OutboxConfig, OutMessage
from models.protocol import DeliveryAck, RefusedDelivery
from tests.edge_agent.helpers import Subscriber
from tests.edge_agent.test_mqtt import make_link, receipt_scan


def scan(rid: str) -> list[OutMessage]:
    return [
        OutMessage("rm/v1/dev/d/receipt", b'{"receipt_id": "%s"}' % rid.encode(), 1, "receipt"),
        OutMessage(f"rm/v1/dev/d/image/{rid}", b"jpeg", 1, "image"),
    ]


def test_sent_rows_wait_for_the_server_and_fall_due_again(tmp_path: Path) -> None:
    box = Outbox(OutboxConfig(path=tmp_path / "o.db", resend_after_s=0.2))
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    box.add_scan(a, scan(a))
    box.add_scan(b, scan(b))
    rows = box.due(limit=10)
    assert len(rows) == 4
    assert box.due(limit=10, exclude={r.id for r in rows[:2]}) == rows[2:]
    for row in rows:
        box.mark_sent(row.id)  # the broker's PUBACKs
    assert box.due(limit=10) == []
    assert box.stats().depth == 4
    assert box.stats().unacked == 4

    assert box.acknowledge(DeliveryAck(receipts=[uuid.UUID(a)], images=[uuid.UUID(a)])) == 2
    assert {r.receipt_id for r in box.pending(limit=10)} == {b}
    time.sleep(0.25)
    assert [r.receipt_id for r in box.due(limit=10)] == [b, b]  # no ack came: due again
    for row in box.due(limit=10):
        box.mark_sent(row.id)
    time.sleep(0.25)
    assert box.due(limit=10) == []  # the second wait is twice as long
    box.resend_all()  # a reconnect
    assert len(box.due(limit=10)) == 2


def test_a_refused_message_is_dropped_and_a_duplicate_ack_is_harmless(tmp_path: Path) -> None:
    box = Outbox(OutboxConfig(path=tmp_path / "o.db"))
    rid = str(uuid.uuid4())
    box.add_scan(rid, scan(rid))
    refused = RefusedDelivery(
        receipt_id=uuid.UUID(rid), kind="receipt", code="invalid_payload", reason="bad"
    )
    assert box.acknowledge(DeliveryAck(refused=[refused])) == 1
    assert [r.kind for r in box.pending(limit=10)] == ["image"]
    assert box.acknowledge(DeliveryAck(refused=[refused])) == 0


def test_broker_ack_mode_forgets_on_puback(tmp_path: Path) -> None:
    box = Outbox(OutboxConfig(path=tmp_path / "o.db", delivery="broker_ack"))
    rid = str(uuid.uuid4())
    box.add_scan(rid, scan(rid))
    for row in box.due(limit=10):
        box.mark_sent(row.id)
    assert box.stats().depth == 0


def test_an_outbox_from_before_delivery_acks_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, receipt_id TEXT NOT NULL,"
        " kind TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL,"
        " size INTEGER NOT NULL, created_at REAL NOT NULL)"
    )
    db.execute(
        "INSERT INTO messages (receipt_id, kind, topic, payload, qos, size, created_at)"
        " VALUES ('r', 'receipt', 't', x'7b7d', 1, 2, 0)"
    )
    db.commit()
    db.close()
    box = Outbox(OutboxConfig(path=path))
    assert [r.receipt_id for r in box.due(limit=10)] == ["r"]


def test_a_message_lost_after_its_puback_is_sent_again(mosquitto, tmp_path: Path) -> None:
    """The broker acknowledges, but no server ever sees the message (as when Mosquitto loses a
    shared subscription over a restart): the scan stays, is sent again, and goes once acked."""
    deaf = Subscriber(mosquitto.host, mosquitto.port, acks=False)
    link, outbox = make_link(mosquitto, tmp_path)
    outbox.config = outbox.config.model_copy(update={"resend_after_s": 0.3})
    rid = receipt_scan(outbox)
    link.start()
    try:
        assert deaf.wait_for(lambda: link.published >= 2)
        assert outbox.stats().depth == 2
        assert deaf.wait_for(lambda: len(deaf.on("/receipt")) >= 2), "sent again"
        server = Subscriber(mosquitto.host, mosquitto.port)  # now somebody acknowledges
        try:
            assert server.wait_for(lambda: outbox.stats().depth == 0)
            assert rid in server.receipt_ids()
        finally:
            server.close()
    finally:
        link.stop()
        deaf.close()
