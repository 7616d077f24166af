"""MQTT 3.1.1 packet encoding and decoding for the embedded broker (OASIS spec, sections 2-3)."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

#: CONNACK return codes.
ACCEPTED = 0
REFUSED_PROTOCOL_VERSION = 1
REFUSED_IDENTIFIER = 2
REFUSED_BAD_CREDENTIALS = 4
REFUSED_NOT_AUTHORIZED = 5

#: SUBACK return code for a refused filter.
SUBACK_FAILURE = 0x80

MAX_PACKET_BYTES = 16 << 20


class MalformedPacket(ValueError):
    """The peer sent bytes that are not valid MQTT 3.1.1; the connection is closed."""


@dataclass
class Packet:
    type: int
    flags: int
    body: bytes


@dataclass
class Will:
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass
class Connect:
    protocol_name: str
    level: int
    client_id: str
    clean_session: bool
    keepalive: int
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None


@dataclass
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None


@dataclass
class Subscribe:
    packet_id: int
    filters: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Unsubscribe:
    packet_id: int
    filters: list[str] = field(default_factory=list)


async def read_packet(reader: asyncio.StreamReader) -> Packet:
    """Read one packet; raises IncompleteReadError at end of stream, MalformedPacket on garbage."""
    first = await reader.readexactly(1)
    length, multiplier = 0, 1
    for _ in range(4):
        byte = (await reader.readexactly(1))[0]
        length += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            break
        multiplier *= 128
    else:
        raise MalformedPacket("remaining length is longer than four bytes")
    if length > MAX_PACKET_BYTES:
        raise MalformedPacket(f"packet of {length} bytes exceeds {MAX_PACKET_BYTES}")
    body = await reader.readexactly(length) if length else b""
    return Packet(first[0] >> 4, first[0] & 0x0F, body)


def encode(packet_type: int, flags: int, body: bytes) -> bytes:
    out = bytearray([(packet_type << 4) | flags])
    length = len(body)
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | 0x80 if length else byte)
        if not length:
            break
    return bytes(out) + body


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MalformedPacket("packet ends early")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("!H", self.take(2))[0])

    def binary(self) -> bytes:
        return self.take(self.u16())

    def string(self) -> str:
        try:
            return self.binary().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPacket("string is not UTF-8") from exc

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk

    def at_end(self) -> bool:
        return self.pos >= len(self.data)


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def parse_connect(body: bytes) -> Connect:
    cur = _Cursor(body)
    name = cur.string()
    level = cur.u8()
    flags = cur.u8()
    keepalive = cur.u16()
    if flags & 0x01:
        raise MalformedPacket("reserved CONNECT flag is set")
    connect = Connect(name, level, "", bool(flags & 0x02), keepalive)
    if name not in ("MQTT", "MQIsdp") or level not in (3, 4):
        return connect  # the caller refuses it with REFUSED_PROTOCOL_VERSION
    connect.client_id = cur.string()
    if flags & 0x04:
        topic = cur.string()
        payload = cur.binary()
        connect.will = Will(topic, payload, (flags >> 3) & 0x03, bool(flags & 0x20))
    if flags & 0x80:
        connect.username = cur.string()
    if flags & 0x40:
        connect.password = cur.binary()
    return connect


def parse_publish(flags: int, body: bytes) -> Publish:
    cur = _Cursor(body)
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    topic = cur.string()
    if not topic or "+" in topic or "#" in topic:
        raise MalformedPacket(f"invalid topic name {topic!r}")
    packet_id = cur.u16() if qos else None
    return Publish(topic, cur.rest(), qos, bool(flags & 0x01), bool(flags & 0x08), packet_id)


def parse_subscribe(body: bytes) -> Subscribe:
    cur = _Cursor(body)
    sub = Subscribe(cur.u16())
    while not cur.at_end():
        sub.filters.append((cur.string(), cur.u8() & 0x03))
    if not sub.filters:
        raise MalformedPacket("SUBSCRIBE without filters")
    return sub


def parse_unsubscribe(body: bytes) -> Unsubscribe:
    cur = _Cursor(body)
    unsub = Unsubscribe(cur.u16())
    while not cur.at_end():
        unsub.filters.append(cur.string())
    return unsub


def parse_packet_id(body: bytes) -> int:
    return _Cursor(body).u16()


def connack(session_present: bool, code: int) -> bytes:
    return encode(CONNACK, 0, bytes([1 if session_present and code == ACCEPTED else 0, code]))


def publish(msg: Publish) -> bytes:
    flags = (msg.qos << 1) | (0x08 if msg.dup else 0) | (0x01 if msg.retain else 0)
    body = _string(msg.topic)
    if msg.qos:
        assert msg.packet_id is not None
        body += struct.pack("!H", msg.packet_id)
    return encode(PUBLISH, flags, body + msg.payload)


def ack(packet_type: int, packet_id: int) -> bytes:
    return encode(packet_type, 0x02 if packet_type == PUBREL else 0, struct.pack("!H", packet_id))


def suback(packet_id: int, codes: list[int]) -> bytes:
    return encode(SUBACK, 0, struct.pack("!H", packet_id) + bytes(codes))


PINGRESP_BYTES = encode(PINGRESP, 0, b"")
