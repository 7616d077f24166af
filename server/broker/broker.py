"""The embedded MQTT broker: sessions, subscriptions, retained messages and QoS 1 delivery.

Why our own: the embedded default must keep the guarantees the rest of the system relies on
(persistent sessions that queue while the ingest worker is away, unacknowledged QoS 1 messages
redelivered on reconnect, `$share/` subscriptions, retained status and last wills), and the
Python brokers we tried (amqtt 0.12) dropped messages queued for a reconnecting persistent
session. This one implements MQTT 3.1.1 (the level the agent and the ingest worker use when
`protocol: 3.1.1` is configured) for a single machine:

- QoS 0 and 1 end to end; an inbound QoS 2 publish is completed with PUBREC/PUBCOMP and delivered
  at QoS 1 (the subscriber side of this project never asks for more).
- Persistent sessions (clean session off) keep their subscriptions, their unacknowledged messages
  (resent with DUP on reconnect) and a queue of messages that arrived while they were away
  (`max_queued` per session; past it the oldest are dropped with a warning naming the client).
- Shared subscriptions `$share/{group}/{filter}`: each message goes to one member, round robin
  over connected members, or to a persistent member's queue when none is connected.
- State lives in memory: a broker restart loses queued messages. Production uses Mosquitto with
  persistence (infra/); this broker is for one-command demos and development.

All state is owned by the event loop's thread; `EmbeddedBroker` runs it in a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from server.broker import packets as p
from server.broker.topics import matches, split_shared, valid_filter

log = logging.getLogger(__name__)

#: (client_id, username, password) -> allowed. None allows everyone.
Authenticator = Callable[[str, str | None, bytes | None], bool]
#: (client_id, username, topic, "publish" | "subscribe") -> allowed. None allows everything.
Authorizer = Callable[[str, str | None, str, str], bool]


@dataclass
class _Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool = False


@dataclass(eq=False)
class _Session:
    client_id: str
    clean: bool
    subscriptions: dict[str, int] = field(default_factory=dict)
    inflight: OrderedDict[int, _Message] = field(default_factory=OrderedDict)
    queue: deque[_Message] = field(default_factory=deque)
    conn: _Connection | None = None
    next_id: int = 0

    def packet_id(self) -> int:
        while True:
            self.next_id = self.next_id % 65535 + 1
            if self.next_id not in self.inflight:
                return self.next_id


@dataclass(eq=False)
class _SharedGroup:
    members: dict[str, int] = field(default_factory=dict)  # client_id -> granted qos
    turn: int = 0


class _Connection:
    def __init__(self, broker: Broker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.broker = broker
        self.reader = reader
        self.writer = writer
        self.session: _Session | None = None
        self.username: str | None = None
        self.will: p.Will | None = None
        self.peer = writer.get_extra_info("peername")

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Broker:
    """An asyncio MQTT 3.1.1 broker. Use `serve()` inside a loop, or `EmbeddedBroker`."""

    def __init__(
        self,
        *,
        max_inflight: int = 100,
        max_queued: int = 100_000,
        authenticate: Authenticator | None = None,
        authorize: Authorizer | None = None,
    ) -> None:
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.authenticate = authenticate
        self.authorize = authorize
        self.sessions: dict[str, _Session] = {}
        self.shared: dict[tuple[str, str], _SharedGroup] = {}
        self.retained: dict[str, _Message] = {}

    async def serve(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._handle, host, port)

    # ----------------------------------------------------------------- connection lifecycle

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(self, reader, writer)
        graceful = False
        try:
            first = await asyncio.wait_for(p.read_packet(reader), timeout=10)
            if first.type != p.CONNECT:
                raise p.MalformedPacket("first packet is not CONNECT")
            keepalive = self._connect(conn, p.parse_connect(first.body))
            if conn.session is None:
                await writer.drain()
                return
            timeout = keepalive * 1.5 if keepalive else None
            while True:
                packet = await asyncio.wait_for(p.read_packet(reader), timeout=timeout)
                if packet.type == p.DISCONNECT:
                    graceful = True
                    return
                self._dispatch(conn, packet)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except p.MalformedPacket as exc:
            log.warning("mqtt client %s sent a malformed packet, disconnecting: %s", conn.peer, exc)
        finally:
            self._disconnected(conn, graceful=graceful)
            conn.close()

    def _connect(self, conn: _Connection, connect: p.Connect) -> int:
        if connect.level not in (3, 4):
            log.warning(
                "mqtt client %s asked for protocol level %s; this broker speaks 3.1.1 only",
                conn.peer,
                connect.level,
            )
            conn.send(p.connack(False, p.REFUSED_PROTOCOL_VERSION))
            return 0
        client_id = connect.client_id
        if not client_id:
            if not connect.clean_session:
                conn.send(p.connack(False, p.REFUSED_IDENTIFIER))
                return 0
            client_id = f"anon-{id(conn):x}"
        if self.authenticate and not self.authenticate(
            client_id, connect.username, connect.password
        ):
            log.warning("mqtt client %s (%s) refused: bad credentials", client_id, conn.peer)
            conn.send(p.connack(False, p.REFUSED_BAD_CREDENTIALS))
            return 0
        conn.username = connect.username
        conn.will = connect.will
        session = self.sessions.get(client_id)
        if session is not None and session.conn is not None:
            log.info("mqtt client %s connected again; closing its previous connection", client_id)
            old = session.conn
            self._disconnected(old, graceful=False)
            old.close()
        present = session is not None and not connect.clean_session
        if session is None or connect.clean_session:
            if session is not None:
                self._drop_session(session)
            session = _Session(client_id, connect.clean_session)
            self.sessions[client_id] = session
        session.clean = connect.clean_session
        session.conn = conn
        conn.session = session
        conn.send(p.connack(present, p.ACCEPTED))
        log.debug("mqtt client %s connected (session present: %s)", client_id, present)
        for packet_id, msg in session.inflight.items():
            conn.send(p.publish(p.Publish(msg.topic, msg.payload, 1, msg.retain, True, packet_id)))
        self._pump(session)
        return connect.keepalive

    def _disconnected(self, conn: _Connection, *, graceful: bool) -> None:
        session = conn.session
        if session is None or session.conn is not conn:
            return
        session.conn = None
        conn.session = None
        if not graceful and conn.will is not None:
            will = conn.will
            log.info("mqtt client %s went away; publishing its last will", session.client_id)
            self._route(_Message(will.topic, will.payload, min(will.qos, 1), will.retain))
        if session.clean:
            self._drop_session(session)

    def _drop_session(self, session: _Session) -> None:
        self.sessions.pop(session.client_id, None)
        for group in self.shared.values():
            group.members.pop(session.client_id, None)
        self.shared = {k: g for k, g in self.shared.items() if g.members}

    # ----------------------------------------------------------------------------- packets

    def _dispatch(self, conn: _Connection, packet: p.Packet) -> None:
        session = conn.session
        assert session is not None
        match packet.type:
            case p.PUBLISH:
                self._on_publish(conn, p.parse_publish(packet.flags, packet.body))
            case p.PUBACK:
                session.inflight.pop(p.parse_packet_id(packet.body), None)
                self._pump(session)
            case p.PUBREL:
                conn.send(p.ack(p.PUBCOMP, p.parse_packet_id(packet.body)))
            case p.PUBREC | p.PUBCOMP:
                pass  # never sent at QoS 2, so never expected
            case p.SUBSCRIBE:
                self._on_subscribe(conn, p.parse_subscribe(packet.body))
            case p.UNSUBSCRIBE:
                unsub = p.parse_unsubscribe(packet.body)
                for topic_filter in unsub.filters:
                    self._unsubscribe(session, topic_filter)
                conn.send(p.ack(p.UNSUBACK, unsub.packet_id))
            case p.PINGREQ:
                conn.send(p.PINGRESP_BYTES)
            case _:
                raise p.MalformedPacket(f"unexpected packet type {packet.type}")

    def _on_publish(self, conn: _Connection, pub: p.Publish) -> None:
        session = conn.session
        assert session is not None
        allowed = self.authorize is None or self.authorize(
            session.client_id, conn.username, pub.topic, "publish"
        )
        if not allowed:
            log.warning("mqtt client %s may not publish to %s", session.client_id, pub.topic)
        elif not pub.topic.startswith("$"):
            self._route(_Message(pub.topic, pub.payload, min(pub.qos, 1), pub.retain))
        # A refused publish is acknowledged all the same (3.1.1 has no way to say no).
        if pub.qos == 1 and pub.packet_id is not None:
            conn.send(p.ack(p.PUBACK, pub.packet_id))
        elif pub.qos == 2 and pub.packet_id is not None:
            conn.send(p.ack(p.PUBREC, pub.packet_id))

    def _on_subscribe(self, conn: _Connection, sub: p.Subscribe) -> None:
        session = conn.session
        assert session is not None
        codes = []
        for topic_filter, qos in sub.filters:
            try:
                group, plain = split_shared(topic_filter)
            except ValueError:
                codes.append(p.SUBACK_FAILURE)
                continue
            allowed = self.authorize is None or self.authorize(
                session.client_id, conn.username, plain, "subscribe"
            )
            if not valid_filter(plain) or not allowed:
                codes.append(p.SUBACK_FAILURE)
                continue
            granted = min(qos, 1)
            codes.append(granted)
            if group is None:
                session.subscriptions[plain] = granted
                for msg in list(self.retained.values()):
                    if matches(plain, msg.topic):
                        self._deliver(
                            session, _Message(msg.topic, msg.payload, min(msg.qos, granted), True)
                        )
            else:
                self.shared.setdefault((group, plain), _SharedGroup()).members[
                    session.client_id
                ] = granted
        conn.send(p.suback(sub.packet_id, codes))

    def _unsubscribe(self, session: _Session, topic_filter: str) -> None:
        try:
            group, plain = split_shared(topic_filter)
        except ValueError:
            return
        if group is None:
            session.subscriptions.pop(plain, None)
        elif (shared := self.shared.get((group, plain))) is not None:
            shared.members.pop(session.client_id, None)

    # ----------------------------------------------------------------------------- routing

    def _route(self, msg: _Message) -> None:
        if msg.retain:
            if msg.payload:
                self.retained[msg.topic] = msg
            else:
                self.retained.pop(msg.topic, None)
        for session in list(self.sessions.values()):
            granted = max(
                (q for f, q in session.subscriptions.items() if matches(f, msg.topic)), default=-1
            )
            if granted >= 0:
                # Retain is kept only for messages sent because of a new subscription (3.3.1.3).
                self._deliver(session, _Message(msg.topic, msg.payload, min(msg.qos, granted)))
        for (_, topic_filter), group in self.shared.items():
            if matches(topic_filter, msg.topic):
                self._deliver_shared(group, msg)

    def _deliver_shared(self, group: _SharedGroup, msg: _Message) -> None:
        members = list(group.members)
        connected = [c for c in members if (s := self.sessions.get(c)) and s.conn is not None]
        candidates = connected or [
            c for c in members if (s := self.sessions.get(c)) and not s.clean
        ]
        if not candidates:
            return
        client_id = candidates[group.turn % len(candidates)]
        group.turn += 1
        granted = group.members[client_id]
        self._deliver(
            self.sessions[client_id], _Message(msg.topic, msg.payload, min(msg.qos, granted))
        )

    def _deliver(self, session: _Session, msg: _Message) -> None:
        if msg.qos == 0:
            if session.conn is not None:
                session.conn.send(p.publish(p.Publish(msg.topic, msg.payload, 0, msg.retain)))
            return
        if len(session.queue) >= self.max_queued:
            session.queue.popleft()
            log.warning(
                "mqtt client %s has %s queued messages; dropping the oldest",
                session.client_id,
                self.max_queued,
            )
        session.queue.append(msg)
        self._pump(session)

    def _pump(self, session: _Session) -> None:
        conn = session.conn
        while conn is not None and session.queue and len(session.inflight) < self.max_inflight:
            msg = session.queue.popleft()
            packet_id = session.packet_id()
            session.inflight[packet_id] = msg
            conn.send(p.publish(p.Publish(msg.topic, msg.payload, 1, msg.retain, False, packet_id)))


class EmbeddedBroker:
    """A `Broker` served from a background thread: `start()` returns once it listens."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, **options: object) -> None:
        self.host = host
        self.port = port
        self._options = options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self.broker: Broker | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"embedded broker did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(
                f"embedded MQTT broker could not listen on {self.host}:{self.port}: {self._error}"
            ) from self._error
        log.info("embedded MQTT broker listening on %s:%s", self.host, self.port)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.broker = Broker(**self._options)  # type: ignore[arg-type]
        try:
            server = await self.broker.serve(self.host, self.port)
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        if self.port == 0:
            self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()
        # asyncio.run() cancels the connections' tasks, which close their sockets.

    def _request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    def stop(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                self._loop.call_soon_threadsafe(self._request_stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
