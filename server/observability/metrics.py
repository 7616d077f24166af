"""Prometheus metrics of the server, named as infra/metrics.md says (the alerts use the names).

Each process has its own `CollectorRegistry` (no shared in-memory state between processes):
the API process builds one in `create_app` (`ApiMetrics`, served on `/metrics`), each ingest
worker its own (`IngestMetrics`, served by `serve_metrics` on its metrics port). Values that
live in the database (pool, fleet) are read at scrape time by custom collectors.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event, select
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.logs import request_id
from server.db.models import Device
from server.fleet.rollout_repository import rollout_gauges
from server.observability.jobs import JobQueueCollector
from server.plans.quota import QUOTA_HELD
from server.webhooks.metrics import WebhookBacklogCollector

logger = logging.getLogger(__name__)

#: Default buckets (infra/metrics.md): 0.5 and 1 are bounds the alerts compare to.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_SIZE_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000)
LAG_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)

#: Paths not measured (scrapes would dominate the request rate).
UNMEASURED_PATHS = frozenset({"/metrics"})

#: Fleet states: stale after this many missed heartbeats, offline after OFFLINE_AFTER_S.
STALE_AFTER_BEATS = 3
OFFLINE_AFTER_S = 600.0
DEFAULT_HEARTBEAT_S = 60.0


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


# --------------------------------------------------------------------------- database


class PoolCollector(Collector):
    """`rm_db_pool_connections{state}` and `rm_db_pool_size` of an engine, read at scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        pool: Any = self.engine.pool
        conns = GaugeMetricFamily(
            "rm_db_pool_connections", "Connections of the SQLAlchemy pool", labels=["state"]
        )
        size = GaugeMetricFamily("rm_db_pool_size", "Configured pool size")
        if all(hasattr(pool, a) for a in ("checkedout", "checkedin", "overflow", "size")):
            conns.add_metric(["checked_out"], pool.checkedout())
            conns.add_metric(["idle"], pool.checkedin())
            conns.add_metric(["overflow"], max(pool.overflow(), 0))
            size.add_metric([], pool.size())
        yield conns
        yield size


def count_connection_errors(engine: Engine, counter: Counter) -> None:
    """Increment `counter` whenever `engine` fails to open (or loses) a connection."""

    def _on_error(context: ExceptionContext) -> None:
        if context.connection is None or context.is_disconnect:
            counter.inc()

    event.listen(engine, "handle_error", _on_error)


@dataclass
class DatabaseMetrics:
    connection_errors: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry, engine: Engine) -> DatabaseMetrics:
        registry.register(PoolCollector(engine))
        errors = Counter(
            "rm_db_connection_errors",
            "Failed attempts to open a database connection",
            registry=registry,
        )
        count_connection_errors(engine, errors)
        return cls(errors)


# --------------------------------------------------------------------------- fleet


@dataclass(frozen=True)
class DeviceSnapshot:
    device_id: str
    online: bool
    last_seen: dt.datetime | None
    agent_version: str | None
    model_versions: dict[str, Any] | None
    telemetry: dict[str, Any] | None


def device_state(d: DeviceSnapshot, now: dt.datetime) -> str:
    """online, stale (no heartbeat for 3 intervals) or offline (last will, or 10 min silent)."""
    if not d.online or d.last_seen is None:
        return "offline"
    last_seen = d.last_seen if d.last_seen.tzinfo else d.last_seen.replace(tzinfo=dt.UTC)
    silent = (now - last_seen).total_seconds()
    if silent > OFFLINE_AFTER_S:
        return "offline"
    interval = (d.telemetry or {}).get("interval_s") or DEFAULT_HEARTBEAT_S
    if silent > STALE_AFTER_BEATS * float(interval):
        return "stale"
    return "online"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


#: Every state a rollout can be in (server/fleet/rollouts.py); the gauge is 1 for the current one.
ROLLOUT_STATES = ("pending", "running", "halted", "completed", "aborted")


class FleetCollector(Collector):
    """Fleet gauges from the devices and rollouts tables, queried at most once per `cache_s`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cache_s: float = 5.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.sessions = sessions
        self.cache_s = cache_s
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: list[DeviceSnapshot] | None = None
        self._cached_rollouts: tuple[list[Any], list[Any]] = ([], [])
        self._cached_at = 0.0

    def _devices(self) -> list[DeviceSnapshot] | None:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached_at < self.cache_s:
                return self._cached
            try:
                with self.sessions() as session:
                    rows = session.execute(
                        select(
                            Device.device_id,
                            Device.online,
                            Device.last_seen_at,
                            Device.agent_version,
                            Device.model_versions,
                            Device.telemetry,
                        ).where(Device.removed_at.is_(None))
                    ).all()
                    self._cached_rollouts = rollout_gauges(session)
            except SQLAlchemyError as exc:
                logger.warning("fleet metrics: devices not readable: %s", exc)
                return None
            self._cached = [DeviceSnapshot(*row) for row in rows]
            self._cached_at = time.monotonic()
            return self._cached

    def describe(self) -> Iterable[Metric]:
        return ()  # names are not known without a query; none collide with other collectors

    def collect(self) -> Iterator[Metric]:
        devices = self._devices()
        if devices is None:
            return
        now = self.clock()
        states = GaugeMetricFamily("rm_fleet_devices", "Devices by state", labels=["state"])
        seen = GaugeMetricFamily(
            "rm_device_last_seen_timestamp_seconds",
            "Unix time of the last message from the device",
            labels=["device_id"],
        )
        outbox = GaugeMetricFamily(
            "rm_device_outbox_depth", "Receipts waiting in the outbox", labels=["device_id"]
        )
        inference = GaugeMetricFamily(
            "rm_device_inference_seconds",
            "Last reported read-pipeline time per receipt",
            labels=["device_id"],
        )
        temperature = GaugeMetricFamily(
            "rm_device_cpu_temperature_celsius",
            "Last reported CPU temperature",
            labels=["device_id"],
        )
        info = GaugeMetricFamily(
            "rm_device_info",
            "Versions in force (always 1)",
            labels=["device_id", "agent_version", "model_version"],
        )
        counts = dict.fromkeys(("online", "stale", "offline"), 0)
        for d in devices:
            counts[device_state(d, now)] += 1
            if d.last_seen is not None:
                last = d.last_seen if d.last_seen.tzinfo else d.last_seen.replace(tzinfo=dt.UTC)
                seen.add_metric([d.device_id], last.timestamp())
            t = d.telemetry or {}
            if (depth := _number(t.get("outbox_depth"))) is not None:
                outbox.add_metric([d.device_id], depth)
            if (read_ms := _number(t.get("last_read_ms"))) is not None:
                inference.add_metric([d.device_id], read_ms / 1000)
            if (temp := _number(t.get("cpu_temp_c"))) is not None:
                temperature.add_metric([d.device_id], temp)
            models = ",".join(f"{k}={v}" for k, v in sorted((d.model_versions or {}).items()))
            info.add_metric([d.device_id, d.agent_version or "", models], 1)
        for state, n in counts.items():
            states.add_metric([state], n)
        yield from (states, seen, outbox, inference, temperature, info)
        yield from self._rollout_metrics()

    def _rollout_metrics(self) -> Iterator[Metric]:
        rollout_states, device_counts = self._cached_rollouts
        state = GaugeMetricFamily(
            "rm_ota_rollout_state",
            "1 for the rollout's current state, 0 for the others",
            labels=["rollout", "state"],
        )
        for rollout_id, current in rollout_states:
            for name in ROLLOUT_STATES:
                state.add_metric([str(rollout_id), name], 1 if name == current else 0)
        devices = GaugeMetricFamily(
            "rm_ota_rollout_devices", "Devices in a rollout by status", labels=["rollout", "status"]
        )
        for rollout_id, status, n in device_counts:
            devices.add_metric([str(rollout_id), status], n)
        yield from (state, devices)


# --------------------------------------------------------------------------- HTTP (API)


class ApiMetrics:
    """The API process's registry: HTTP, quota, database pool, fleet, process."""

    def __init__(self, engine: Engine, sessions: sessionmaker[Session]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "rm_http_requests",
            "Requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "rm_http_request_duration_seconds",
            "Time from request to response",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "rm_http_requests_in_progress",
            "Requests being handled now",
            ["method"],
            registry=self.registry,
        )
        self.quota_rejections = Counter(
            "rm_quota_rejections",
            "Requests refused by a quota or rate limit",
            ["reason"],
            registry=self.registry,
        )
        self.database = DatabaseMetrics.register(self.registry, engine)
        self.fleet = FleetCollector(sessions)
        self.registry.register(self.fleet)
        self.registry.register(JobQueueCollector(sessions))  # queue depth, from the jobs table
        self.registry.register(WebhookBacklogCollector(sessions))
        self.registry.register(QUOTA_HELD)  # receipts held over a monthly quota (uploads)

    async def endpoint(self, _request: Request) -> Response:
        body, content_type = exposition(self.registry)
        return Response(body, media_type=content_type)


def route_template(scope: Scope) -> str:
    """The matched route's path template, or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str):
        return str(scope.get("root_path", "")) + path
    return "unmatched"


class MetricsMiddleware:
    """Times every request by route template and sets `request_id` (X-Request-ID) for logs."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _header(scope, b"x-request-id") or _new_request_id()
        token = request_id.set(rid)
        method = scope["method"]
        measured = scope["path"] not in UNMEASURED_PATHS
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        started = time.perf_counter()
        if measured:
            self.metrics.in_progress.labels(method).inc()
        try:
            await self.app(scope, receive, _send)
        finally:
            request_id.reset(token)
            if measured:
                route = route_template(scope)
                self.metrics.in_progress.labels(method).dec()
                self.metrics.duration.labels(method, route).observe(time.perf_counter() - started)
                self.metrics.requests.labels(method, route, str(status)).inc()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text = bytes(value).decode("latin-1")[:100]
            return text if text.isprintable() else None
    return None


def _new_request_id() -> str:
    import uuid

    return uuid.uuid4().hex


# --------------------------------------------------------------------------- ingest


#: Topic kinds as the `kind` label names them.
_KINDS = {"config/reported": "config", "cmd_result": "cmd_result"}


class IngestMetrics:
    """An ingest worker's registry: messages, dead letters, batches, lag, broker, pool."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "rm_ingest_messages",
            "Messages handled",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "rm_ingest_dead_letters",
            "Messages parked in dead_letters, by refusal code",
            ["code"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "rm_ingest_batch_size",
            "Messages per committed transaction",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.lag = Histogram(
            "rm_ingest_lag_seconds",
            "From captured_at on the scanner to commit on the server",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.batch_failures = Counter(
            "rm_ingest_batch_failures",
            "Batches rolled back and retried (database errors)",
            registry=self.registry,
        )
        self.broker_connected = Gauge(
            "rm_ingest_broker_connected",
            "1 while the worker is connected to the broker",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "rm_ingest_queue_depth",
            "Messages delivered by the broker and waiting for a batch",
            registry=self.registry,
        )
        self.registry.register(QUOTA_HELD)  # receipts held over a monthly quota

    def add_database(self, engine: Engine) -> None:
        """Also export `engine`'s pool and connection errors (done once per process)."""
        DatabaseMetrics.register(self.registry, engine)

    def observe_batch(
        self,
        kinds: Iterable[str],
        refused: Iterable[tuple[str, str]],
        duplicates: int,
        captured: Iterable[dt.datetime],
        committed_at: dt.datetime,
    ) -> None:
        """Account one committed batch: topic kinds of its messages, (kind, code) refusals."""
        totals: dict[str, int] = {}
        for kind in kinds:
            totals[kind] = totals.get(kind, 0) + 1
        self.batch_size.observe(sum(totals.values()))
        for kind, code in refused:
            totals[kind] -= 1
            self.messages.labels(kind, "dead_letter").inc()
            self.dead_letters.labels(code).inc()
        if duplicates:
            totals["receipt"] = totals.get("receipt", 0) - duplicates
            self.messages.labels("receipt", "duplicate").inc(duplicates)
        for kind, n in totals.items():
            if n > 0:
                self.messages.labels(kind, "stored").inc(n)
        for captured_at in captured:
            at = captured_at if captured_at.tzinfo else captured_at.replace(tzinfo=dt.UTC)
            self.lag.observe(max((committed_at - at).total_seconds(), 0.0))


def topic_kind(topic: str) -> str:
    """The `kind` label of a topic: receipt, image, status, telemetry, config, cmd_result."""
    from models.protocol import ProtocolError, parse_topic

    try:
        kind = parse_topic(topic).kind
    except ProtocolError:
        return "invalid"
    return _KINDS.get(kind, kind)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    """Serve `registry` on http://host:port/metrics in a thread; returns a function to stop."""
    server, thread = start_http_server(port, addr=host, registry=registry)

    def _stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return _stop
