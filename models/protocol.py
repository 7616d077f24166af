"""MQTT protocol v1: topics and payloads shared by the scanner agent and the server.

Every payload is a pydantic model with a `schema` version "MAJOR.MINOR". A receiver accepts any
minor version of the major it knows (unknown keys of a newer minor are ignored, so a device can
be ahead of the server by a minor release) and rejects another major with a `ProtocolError`
whose `code` is stable and whose message says what to do. The server never trusts identity in a
payload: the device is the topic's, the organisation the registry's.

Topics live under ``rm/v1/dev/{device_id}/`` (see ARCHITECTURE.md, "MQTT protocol v1"):

====================  =================  ==============  ======================
leaf                  direction          QoS / retain    model
====================  =================  ==============  ======================
receipt               device -> server   1               `ReceiptMessage`
image/{receipt_id}    device -> server   1               raw JPEG/WebP/PNG bytes
status                device -> server   1, retained     `StatusMessage`
telemetry             device -> server   0               `Telemetry`
config/desired        server -> device   1, retained     `ConfigDesired`
config/reported       device -> server   1, retained     `ConfigReported`
cmd/{command_id}      server -> device   1               `Command`
cmd/{id}/result       device -> server   1               `CommandResult`
ack                   server -> device   1               `DeliveryAck`
====================  =================  ==============  ======================

Delivery is acknowledged end to end, not only by the broker: the scanner keeps a receipt (and
its image) in its outbox after the broker's PUBACK until the server's `ack` says the receipt is
committed (or refused for good), and publishes it again when no `ack` comes. ARCHITECTURE.md
first had the outbox forget a receipt on PUBACK; that trusts the broker to hold every message
until the ingest worker takes it, and brokers do drop them: Mosquitto 2.0 does not restore a
persistent session's shared (`$share/...`) subscriptions when it restarts, nor keep them across
every reload, so a receipt published in that window was acknowledged and lost. Writes are
idempotent on `receipt_id`, so a second copy costs nothing.

The JSON Schemas of these models are exported to ``models/schemas/v1`` (`export_json_schemas`)
for implementers in other languages; a test keeps them in step with the code.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.receipt import ImageFormat, Receipt

PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 0
SCHEMA_VERSION = f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"
TOPIC_ROOT = "rm/v1/dev"

#: Largest receipt JSON accepted (a long receipt with boxes is ~100 KB).
MAX_RECEIPT_BYTES = 1 << 20
#: Largest image accepted on the image topic.
MAX_IMAGE_BYTES = 8 << 20
#: Largest payload of any other message.
MAX_MESSAGE_BYTES = 64 << 10

_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ProtocolError(ValueError):
    """A message that can't be accepted. `code` is stable; the message is for an operator.

    Codes: ``malformed_json``, ``unsupported_schema``, ``invalid_payload``, ``too_large``,
    ``bad_topic``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validate_device_id(device_id: str) -> str:
    """Return `device_id` if it is usable as one MQTT topic level, else raise ValueError."""
    if not _DEVICE_ID.match(device_id):
        raise ValueError(
            f"invalid device id {device_id!r}: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return device_id


def device_topic(device_id: str, leaf: str) -> str:
    """The full topic of `leaf` (e.g. "receipt", "cmd/<id>") for one device."""
    return f"{TOPIC_ROOT}/{validate_device_id(device_id)}/{leaf}"


def subscription(leaf: str, device_id: str = "+") -> str:
    """A subscription filter for `leaf` on one device or, by default, all devices."""
    return f"{TOPIC_ROOT}/{device_id}/{leaf}"


@dataclass(frozen=True)
class TopicParts:
    """A protocol topic taken apart.

    `kind` is one of receipt, image, status, telemetry, config/desired, config/reported, cmd,
    cmd_result; `ident` is the receipt id of an image or the command id of cmd and cmd_result.
    """

    device_id: str
    kind: str
    ident: str | None = None


def parse_topic(topic: str) -> TopicParts:
    """Split a protocol topic into device id, message kind and the id it carries, if any."""
    prefix = TOPIC_ROOT + "/"
    if not topic.startswith(prefix):
        raise ProtocolError("bad_topic", f"topic {topic!r} is not under {TOPIC_ROOT}/")
    parts = topic[len(prefix) :].split("/")
    device_id, rest = parts[0], parts[1:]
    if not _DEVICE_ID.match(device_id):
        raise ProtocolError("bad_topic", f"topic {topic!r} has an invalid device id")
    match rest:
        case ["receipt"] | ["status"] | ["telemetry"] | ["ack"]:
            return TopicParts(device_id, rest[0])
        case ["config", ("desired" | "reported") as which]:
            return TopicParts(device_id, f"config/{which}")
        case ["image", ident] if ident:
            return TopicParts(device_id, "image", ident)
        case ["cmd", ident] if ident:
            return TopicParts(device_id, "cmd", ident)
        case ["cmd", ident, "result"] if ident:
            return TopicParts(device_id, "cmd_result", ident)
    raise ProtocolError("bad_topic", f"topic {topic!r} is not a protocol v1 topic")


class Message(BaseModel):
    """Base of every payload: carries the schema version, ignores keys of newer minors."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: str = Field(
        default=SCHEMA_VERSION,
        alias="schema",
        description='Protocol version "MAJOR.MINOR"; receivers reject another major.',
    )

    @field_validator("schema_version")
    @classmethod
    def _known_major(cls, v: str) -> str:
        major, _, minor = v.partition(".")
        if not (major.isdigit() and minor.isdigit()):
            raise ValueError(f'schema must be "MAJOR.MINOR", got {v!r}')
        return v

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ImageRef(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: ImageFormat
    size_bytes: int = Field(ge=1, le=MAX_IMAGE_BYTES)
    width: int | None = None
    height: int | None = None


class ReceiptMessage(Message):
    """`receipt`: one read receipt. `receipt_id` is chosen by the device: the idempotency key."""

    receipt_id: uuid.UUID
    captured_at: dt.datetime
    source: str | None = Field(default=None, description="Capture source, e.g. a file name.")
    agent_version: str | None = None
    image: ImageRef | None = Field(
        default=None, description="The image sent on image/{receipt_id}, if it is sent."
    )
    receipt: Receipt

    @field_validator("captured_at")
    @classmethod
    def _aware(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("captured_at must carry a time zone (ISO 8601 with offset)")
        return v


class StatusMessage(Message):
    """`status` (retained): online with versions; the last will says offline."""

    state: Literal["online", "offline"]
    at: dt.datetime = Field(default_factory=_utcnow)
    agent_version: str | None = None
    model_versions: dict[str, str] = Field(default_factory=dict)


class Telemetry(Message):
    """`telemetry` (QoS 0): the heartbeat."""

    sent_at: dt.datetime = Field(default_factory=_utcnow)
    interval_s: float = Field(gt=0, description="Seconds until the next heartbeat.")
    uptime_s: float = 0.0
    outbox_depth: int = 0
    outbox_bytes: int = 0
    scans_total: int = 0
    scans_failed: int = 0
    last_read_ms: float | None = None
    cpu_temp_c: float | None = None
    disk_free_bytes: int | None = None
    camera_state: str | None = None
    connected_since: dt.datetime | None = None


class ConfigDesired(Message):
    """`config/desired` (retained): the configuration the server wants, version-numbered."""

    version: int = Field(ge=0)
    settings: dict[str, Any] = Field(default_factory=dict)


class ConfigReported(Message):
    """`config/reported` (retained): what the device applied, and what it refused and why."""

    version: int = Field(ge=0)
    settings: dict[str, Any] = Field(default_factory=dict)
    rejected: dict[str, str] = Field(default_factory=dict)


class Command(Message):
    """`cmd/{command_id}`: an instruction to one device; acting on it twice is harmless."""

    command_id: uuid.UUID
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    issued_at: dt.datetime = Field(default_factory=_utcnow)
    expires_at: dt.datetime | None = None


class CommandResult(Message):
    """`cmd/{command_id}/result`: the outcome of a command, or a progress report of a long one.

    ``in_progress`` reports a step of a long command (an OTA install: ``output.stage``);
    zero or more precede exactly one final status (succeeded, failed, rejected, expired), which
    never changes: a receiver keeps the first final result and lets it replace any progress.
    """

    command_id: uuid.UUID
    status: Literal["in_progress", "succeeded", "failed", "rejected", "expired"]
    detail: str = ""
    output: dict[str, Any] = Field(default_factory=dict)
    finished_at: dt.datetime = Field(default_factory=_utcnow)


class RefusedDelivery(BaseModel):
    """A message the server refused for good (it is kept in its dead letters with the reason)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    receipt_id: uuid.UUID
    kind: Literal["receipt", "image"]
    code: str
    reason: str = ""


class DeliveryAck(Message):
    """`ack`: receipts and images the server has committed, or refused for good.

    The scanner's outbox forgets a message only when it is listed here; it publishes anything
    not acknowledged again after a while, so a message lost between broker and server is not lost.
    """

    receipts: list[uuid.UUID] = Field(default_factory=list, description="Receipts committed.")
    images: list[uuid.UUID] = Field(
        default_factory=list, description="Receipt ids whose image is committed."
    )
    refused: list[RefusedDelivery] = Field(default_factory=list)


M = TypeVar("M", bound=Message)

#: Payload model per topic kind (images are raw bytes and have none).
MODELS: dict[str, type[Message]] = {
    "receipt": ReceiptMessage,
    "status": StatusMessage,
    "telemetry": Telemetry,
    "config/desired": ConfigDesired,
    "config/reported": ConfigReported,
    "cmd": Command,
    "cmd_result": CommandResult,
    "ack": DeliveryAck,
}


def size_limit(kind: str) -> int:
    """Largest payload accepted for a topic kind."""
    return {"receipt": MAX_RECEIPT_BYTES, "image": MAX_IMAGE_BYTES}.get(kind, MAX_MESSAGE_BYTES)


def decode(model: type[M], payload: bytes, *, limit: int | None = None) -> M:
    """Parse and validate one payload, or raise `ProtocolError` saying why it was refused."""
    limit = limit if limit is not None else MAX_MESSAGE_BYTES
    if len(payload) > limit:
        raise ProtocolError("too_large", f"payload of {len(payload)} bytes exceeds {limit} bytes")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("malformed_json", f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("malformed_json", "payload must be a JSON object")
    schema = data.get("schema")
    if not isinstance(schema, str):
        raise ProtocolError("invalid_payload", 'payload has no "schema" version string')
    major = schema.partition(".")[0]
    if major != str(PROTOCOL_MAJOR):
        raise ProtocolError(
            "unsupported_schema",
            f"schema {schema!r} is not supported: this side speaks {PROTOCOL_MAJOR}.x; "
            "upgrade the older side",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError("invalid_payload", _summarise(exc)) from exc


def _summarise(exc: ValidationError, limit: int = 5) -> str:
    errors = exc.errors()
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:limit]
    ]
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


SCHEMA_DIR = Path(__file__).parent / "schemas" / f"v{PROTOCOL_MAJOR}"


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of each payload, keyed by file name."""
    return {
        f"{kind.replace('/', '_')}.schema.json": model.model_json_schema(by_alias=True)
        for kind, model in MODELS.items()
    }


def export_json_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write the JSON Schemas to `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
