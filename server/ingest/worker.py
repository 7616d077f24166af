"""The ingest worker: queue of delivered messages -> batches -> one transaction -> acks.

Runs as its own process (`receipts ingest`) or in a thread of another program (`start`/`stop`).
A message is acknowledged to the broker only after the transaction holding it commits; a
database failure rolls back, acks nothing and retries with backoff, and a crash leaves every
unacked message in the broker's persistent session to be delivered again (writes are idempotent).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models.logs import log_context
from models.protocol import device_topic
from server.images.base import ImageStore
from server.ingest import mqtt
from server.ingest.interpret import Incoming, Refused
from server.ingest.repository import IngestRepository
from server.ingest.service import BatchResult, ingest_batch
from server.observability.metrics import IngestMetrics, topic_kind
from server.plans.quota import release_due
from server.settings import IngestSettings, MqttSettings

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "internal_error"


@dataclass
class WorkerStats:
    """Running totals since start (for logs, tests and the benchmark)."""

    batches: int = 0
    messages: int = 0
    receipts: int = 0
    duplicates: int = 0
    images: int = 0
    refused: int = 0
    retries: int = 0


class IngestWorker:
    """Subscribes, batches, writes, acks. `start()`/`stop()` for threads, `run()` for a process."""

    def __init__(
        self,
        mqtt_settings: MqttSettings,
        ingest: IngestSettings,
        sessions: sessionmaker[Session],
        store: ImageStore,
    ) -> None:
        self.mqtt_settings = mqtt_settings
        self.ingest = ingest
        self.sessions = sessions
        self.store = store
        self.stats = WorkerStats()
        self._queue: queue.Queue[Incoming] = queue.Queue()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._generation = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._client = mqtt.build_client(mqtt_settings, ingest)
        mqtt.install_callbacks(
            self._client,
            mqtt_settings,
            ingest,
            on_message=self._on_message,
            on_connected=self._on_connected,
            on_subscribed=self._on_subscribed,
        )
        self.metrics = IngestMetrics()
        self.metrics.broker_connected.set_function(lambda: float(self._client.is_connected()))
        self.metrics.queue_depth.set_function(self._queue.qsize)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background and start writing batches; returns at once."""
        if self._thread is not None:
            raise RuntimeError("this ingest worker is already started")
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run_batches, name="ingest-batches", daemon=True
        )
        self._thread.start()
        mqtt.connect_async(self._client, self.mqtt_settings, self.ingest)
        self._client.loop_start()

    def wait_subscribed(self, timeout: float | None = None) -> bool:
        """Block until the subscriptions are in place (or `timeout` s); True if they are."""
        return self._subscribed.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand, then disconnect; queued messages stay unacked (redelivered)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._client.disconnect()
        self._client.loop_stop()
        logger.info(
            "ingest stopped: %d messages, %d receipts, %d duplicates, %d images, %d refused",
            self.stats.messages,
            self.stats.receipts,
            self.stats.duplicates,
            self.stats.images,
            self.stats.refused,
        )

    def request_stop(self) -> None:
        """Ask `run()` to return (safe from a signal handler)."""
        self._stopping.set()

    def run(self) -> None:
        """Run until `stop()` is called from another thread or a signal handler."""
        self.start()
        try:
            while not self._stopping.wait(1.0):
                pass
        finally:
            self.stop()

    # ------------------------------------------------------------------ broker callbacks

    def _on_connected(self) -> None:
        with self._lock:
            self._generation += 1

    def _on_subscribed(self, ok: bool) -> None:
        if ok:
            self._subscribed.set()

    def _on_message(self, topic: str, payload: bytes, qos: int, mid: int) -> None:
        now = dt.datetime.now(dt.UTC)
        self._queue.put(Incoming(topic, payload, now, qos, mid, self._generation))

    # ------------------------------------------------------------------ batches

    def _run_batches(self) -> None:
        next_release = time.monotonic()
        while not self._stopping.is_set():
            batch = self._collect()
            if batch:
                self._write_with_retry(batch)
            interval = self.ingest.quota_release_interval_s
            if interval > 0 and time.monotonic() >= next_release:
                next_release = time.monotonic() + interval
                self._release_held()

    def _release_held(self) -> None:
        """Release receipts held over a monthly quota that now fit (a new month, an upgrade
        made elsewhere); every worker may do it, the organisation's row lock serialises them."""
        try:
            with self.sessions.begin() as session:
                released = release_due(session)
        except SQLAlchemyError as exc:
            logger.warning("releasing held receipts failed (%s); trying again later", exc)
            return
        if released:
            logger.info("released %d receipts held over monthly quotas", released)

    def _collect(self) -> list[Incoming]:
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.ingest.batch_max_wait_ms / 1000
        while len(batch) < self.ingest.batch_size:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    batch.append(self._queue.get(timeout=remaining))
                else:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write_with_retry(self, batch: list[Incoming]) -> None:
        delay = 0.5
        while True:
            try:
                result = self._write(batch)
            except (SQLAlchemyError, OSError) as exc:
                self.stats.retries += 1
                self.metrics.batch_failures.inc()
                logger.warning(
                    "batch of %d messages not written, nothing acked (%s: %s); retrying in %.1f s",
                    len(batch),
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                    delay,
                )
                if self._stopping.wait(delay):
                    return  # unacked: the broker delivers them again next session
                delay = min(delay * 2, self.ingest.retry_max_backoff_s)
                continue
            except Exception:
                logger.exception("unexpected error writing a batch; isolating the culprit")
                if len(batch) > 1:
                    for msg in batch:
                        self._write_with_retry([msg])
                    return
                result = self._park_internal_error(batch[0])
            self._send_delivery_acks(result)
            self._ack(batch)
            self._account(batch, result)
            return

    def _send_delivery_acks(self, result: BatchResult) -> None:
        """Tell each scanner what is now committed (after the commit, before the broker acks)."""
        for device_id, ack in result.acks.items():
            self._client.publish(device_topic(device_id, "ack"), ack.to_json(), qos=1)

    def _write(self, batch: list[Incoming]) -> BatchResult:
        started = time.perf_counter()
        with self.sessions.begin() as session:
            result = ingest_batch(
                session,
                self.store,
                batch,
                self.ingest.dead_letter_payload_limit,
                self.ingest.telemetry_history,
            )
        logger.debug(
            "committed %d messages (%d receipts) in %.1f ms",
            len(batch),
            result.receipts,
            (time.perf_counter() - started) * 1000,
        )
        return result

    def _park_internal_error(self, msg: Incoming) -> BatchResult:
        refused = Refused(
            msg.topic,
            None,
            INTERNAL_ERROR,
            "the server failed on this message; see its log",
            msg.payload,
            msg.received_at,
        )
        with self.sessions.begin() as session:
            IngestRepository(session).insert_dead_letters(
                [
                    {
                        "topic": msg.topic,
                        "device_id": None,
                        "code": INTERNAL_ERROR,
                        "reason": refused.reason,
                        "payload": msg.payload[: self.ingest.dead_letter_payload_limit],
                        "payload_size": len(msg.payload),
                        "received_at": msg.received_at,
                    }
                ]
            )
        return BatchResult(refused=[refused])

    def _ack(self, batch: list[Incoming]) -> None:
        for msg in batch:
            if msg.qos > 0 and msg.generation == self._generation:
                self._client.ack(msg.mid, msg.qos)

    def _account(self, batch: list[Incoming], result: BatchResult) -> None:
        s = self.stats
        s.batches += 1
        s.messages += len(batch)
        s.receipts += result.receipts
        s.duplicates += result.duplicates
        s.images += result.images
        s.refused += len(result.refused)
        self.metrics.observe_batch(
            (topic_kind(m.topic) for m in batch),
            ((topic_kind(r.topic), r.code) for r in result.refused),
            result.duplicates,
            result.captured,
            dt.datetime.now(dt.UTC),
        )
        for r in result.refused:
            with log_context(device_id=r.device_id):
                logger.warning(
                    "refused message on %s (device %s): %s: %s",
                    r.topic,
                    r.device_id,
                    r.code,
                    r.reason,
                )
