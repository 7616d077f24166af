"""The pure core of ingest: each message kind and each kind of bad input."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from models.protocol import MAX_RECEIPT_BYTES, StatusMessage, Telemetry, device_topic
from server.ingest.interpret import (
    DeviceRef,
    ImageArrived,
    Incoming,
    ReceiptRow,
    Refused,
    StatusSeen,
    TelemetrySeen,
    interpret,
)
from tests.server.helpers import image_topic, jpeg_bytes, receipt_message, receipt_topic

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
DEV = DeviceRef(uuid.uuid4(), "scanner-1", uuid.uuid4())
DEVICES = {DEV.device_id: DEV}


def run(topic: str, payload: bytes):
    return interpret(Incoming(topic, payload, NOW), DEVICES)


def test_receipt_becomes_a_row_with_its_fields():
    msg = receipt_message(merchant="Bakery", total="3.20", date=dt.date(2024, 5, 1))
    out = run(receipt_topic("scanner-1"), msg.to_json())
    assert isinstance(out, ReceiptRow)
    assert out.receipt_id == msg.receipt_id
    assert (out.merchant, str(out.total), out.currency) == ("Bakery", "3.20", "EUR")
    assert out.effective_date == dt.date(2024, 5, 1)
    assert out.document["receipt_id"] == str(msg.receipt_id)


def test_receipt_without_a_date_counts_on_its_capture_date():
    captured = dt.datetime(2024, 2, 3, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    msg = receipt_message(date=None, captured_at=captured)
    out = run(receipt_topic("scanner-1"), msg.to_json())
    assert isinstance(out, ReceiptRow)
    assert out.receipt_date is None
    assert out.effective_date == dt.date(2024, 2, 4)  # UTC


def test_status_and_telemetry():
    status = run(
        device_topic("scanner-1", "status"),
        StatusMessage(state="online", agent_version="1.2").to_json(),
    )
    assert isinstance(status, StatusSeen)
    assert status.online
    assert status.agent_version == "1.2"
    tele = run(
        device_topic("scanner-1", "telemetry"), Telemetry(interval_s=30, outbox_depth=4).to_json()
    )
    assert isinstance(tele, TelemetrySeen)
    assert tele.snapshot["outbox_depth"] == 4


def test_image_is_recognised():
    rid = uuid.uuid4()
    out = run(image_topic("scanner-1", rid), jpeg_bytes())
    assert isinstance(out, ImageArrived)
    assert (out.receipt_id, out.content_type) == (rid, "image/jpeg")


def _receipt_with_schema(schema: str) -> bytes:
    data = json.loads(receipt_message().to_json())
    data["schema"] = schema
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        (receipt_topic("scanner-1"), b"{not json", "malformed_json"),
        (receipt_topic("scanner-1"), b"[1, 2]", "malformed_json"),
        (receipt_topic("scanner-1"), _receipt_with_schema("2.0"), "unsupported_schema"),
        (receipt_topic("scanner-1"), b'{"schema": "1.0", "receipt_id": "x"}', "invalid_payload"),
        (receipt_topic("scanner-1"), b" " * (MAX_RECEIPT_BYTES + 1), "too_large"),
        (receipt_topic("intruder"), receipt_message().to_json(), "unknown_device"),
        (image_topic("scanner-1", uuid.uuid4()), b"GIF89a not ours", "invalid_image"),
        (image_topic("scanner-1", uuid.uuid4()), jpeg_bytes()[:200], "invalid_image"),
        ("rm/v1/dev/scanner-1/image/not-a-uuid", jpeg_bytes(), "bad_topic"),
        ("elsewhere/topic", b"{}", "bad_topic"),
        (device_topic("scanner-1", "config/desired"), b"{}", "unsupported_topic"),
        (device_topic("scanner-1", "config/reported"), b"{}", "invalid_payload"),
        (device_topic("scanner-1", "cmd/c1/result"), b'{"schema": "1.0"}', "invalid_payload"),
    ],
)
def test_bad_input_is_refused_with_its_code(topic: str, payload: bytes, code: str):
    out = run(topic, payload)
    assert isinstance(out, Refused)
    assert out.code == code
    assert out.reason
    assert out.payload == payload
