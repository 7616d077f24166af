"""Protocol v1: topics, versioning, validation, size limits and the exported JSON Schemas."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from models import protocol
from models.protocol import (
    ProtocolError,
    ReceiptMessage,
    Telemetry,
    decode,
    device_topic,
    parse_topic,
)
from models.receipt import DateField, MoneyField, OcrLine, Receipt, ReceiptFields, TextField


def make_receipt_message() -> ReceiptMessage:
    receipt = Receipt(
        fields=ReceiptFields(
            merchant=TextField(value="CORNER SHOP", confidence=0.9, lines=[0]),
            date=DateField(value=dt.date(2026, 11, 24), confidence=0.95, lines=[1]),
            total=MoneyField(value=Decimal("12.50"), confidence=0.8, lines=[2]),
        ),
        lines=[
            OcrLine(
                id=i, text=t, box=((0, i * 20), (100, i * 20), (100, i * 20 + 18), (0, i * 20 + 18))
            )
            for i, t in enumerate(["CORNER SHOP", "24/11/2026", "TOTAL 12.50"])
        ],
    )
    return ReceiptMessage(
        receipt_id=uuid.uuid4(),
        captured_at=dt.datetime.now(dt.UTC),
        receipt=receipt,
    )


def test_receipt_message_round_trip_keeps_money_exact() -> None:
    msg = make_receipt_message()
    wire = msg.to_json()
    data = json.loads(wire)
    assert data["schema"] == protocol.SCHEMA_VERSION
    assert data["receipt"]["fields"]["total"]["value"] == "12.50"  # a string, never a float
    back = decode(ReceiptMessage, wire, limit=protocol.MAX_RECEIPT_BYTES)
    assert back == msg


def test_newer_minor_is_accepted_and_unknown_keys_ignored() -> None:
    data = json.loads(make_receipt_message().to_json())
    data["schema"] = "1.7"
    data["something_new"] = {"x": 1}
    msg = decode(ReceiptMessage, json.dumps(data).encode(), limit=protocol.MAX_RECEIPT_BYTES)
    assert msg.schema_version == "1.7"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "malformed_json"),
        (b'{"receipt_id": "x"}', "invalid_payload"),
        (b'{"schema": "2.0", "receipt_id": "x"}', "unsupported_schema"),
        (b'{"schema": "1.0", "receipt_id": "not-a-uuid"}', "invalid_payload"),
        (b"x" * (protocol.MAX_RECEIPT_BYTES + 1), "too_large"),
    ],
)
def test_bad_payloads_are_refused_with_a_stable_code(payload: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(ReceiptMessage, payload, limit=protocol.MAX_RECEIPT_BYTES)
    assert info.value.code == code
    assert info.value.message


def test_naive_capture_time_is_refused() -> None:
    data = json.loads(make_receipt_message().to_json())
    data["captured_at"] = "2026-11-24T10:00:00"
    with pytest.raises(ProtocolError, match="time zone"):
        decode(ReceiptMessage, json.dumps(data).encode(), limit=protocol.MAX_RECEIPT_BYTES)


def test_card_number_never_kept_beyond_last_four() -> None:
    with pytest.raises(ValueError, match="four digits"):
        ReceiptFields(card_last4=TextField(value="4111111111111111", confidence=1.0))


@pytest.mark.parametrize(
    ("leaf", "kind", "ident"),
    [
        ("receipt", "receipt", None),
        ("status", "status", None),
        ("telemetry", "telemetry", None),
        ("config/desired", "config/desired", None),
        ("config/reported", "config/reported", None),
        ("image/abc", "image", "abc"),
        ("cmd/c1", "cmd", "c1"),
        ("cmd/c1/result", "cmd_result", "c1"),
        ("ack", "ack", None),
    ],
)
def test_topics_round_trip(leaf: str, kind: str, ident: str | None) -> None:
    parts = parse_topic(device_topic("scanner-01", leaf))
    assert (parts.device_id, parts.kind, parts.ident) == ("scanner-01", kind, ident)


@pytest.mark.parametrize(
    "topic", ["other/x", "rm/v1/dev/a/unknown", "rm/v1/dev/a/image/", "rm/v1/dev/$bad/receipt"]
)
def test_foreign_topics_are_refused(topic: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_topic(topic)
    assert info.value.code == "bad_topic"


@pytest.mark.parametrize("device_id", ["", "a/b", "+", "#", "x" * 65, "-lead"])
def test_device_ids_that_would_break_topics_are_refused(device_id: str) -> None:
    with pytest.raises(ValueError, match="invalid device id"):
        device_topic(device_id, "receipt")


def test_telemetry_needs_a_positive_interval() -> None:
    with pytest.raises(ProtocolError):
        decode(Telemetry, b'{"schema": "1.0", "interval_s": 0}')


def test_exported_json_schemas_match_the_code() -> None:
    """models/schemas/v1 is what other implementations read; keep it in step with the code."""
    expected = protocol.json_schemas()
    on_disk = {p.name: json.loads(p.read_text()) for p in protocol.SCHEMA_DIR.glob("*.json")}
    assert on_disk == expected, (
        "run: python -c 'from models.protocol import export_json_schemas as e; e()'"
    )
