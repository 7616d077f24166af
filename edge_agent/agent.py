"""The agent: source -> trigger -> reader -> outbox -> MQTT link, with counters for telemetry.

`Agent(config, reader=...)` wires the parts; `run()` blocks until `stop()` (from a signal
handler or another thread) and then shuts down cleanly: the source is closed, the link says
``offline`` and disconnects, the outbox is closed. Scans already stored stay in the outbox and
are delivered by the next run.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np

from edge_agent import __version__
from edge_agent.capture import Capture, Source, build_source
from edge_agent.config import AgentConfig
from edge_agent.mqtt import CommandHandler, MqttLink
from edge_agent.outbox import Outbox, OutboxFull, OutMessage
from edge_agent.reader import Reader
from edge_agent.telemetry import cpu_temperature_c, disk_free_bytes
from edge_agent.trigger import PlacementTrigger
from models.imageio import MIME_TYPES, encode_image
from models.protocol import (
    MAX_IMAGE_BYTES,
    MAX_RECEIPT_BYTES,
    ImageRef,
    ReceiptMessage,
    StatusMessage,
    Telemetry,
    device_topic,
)
from models.receipt import Receipt

log = logging.getLogger(__name__)


def _default_reader(config: AgentConfig) -> Reader:
    from models.pipeline import build_pipeline

    reader: Reader = build_pipeline(config.pipeline)
    return reader


class Agent:
    """One scanner: reads what its source captures and delivers it through the outbox."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        reader: Reader | None = None,
        source: Source | None = None,
        handler: CommandHandler | None = None,
    ) -> None:
        self.config = config
        self.device_id = config.device_id
        self.source = source if source is not None else build_source(config.source)
        self.reader = reader if reader is not None else _default_reader(config)
        self.trigger = PlacementTrigger(config.trigger) if self.source.live else None
        self.outbox = Outbox(config.outbox)
        self.link = MqttLink(
            config.device_id,
            config.broker,
            self.outbox,
            status=self._status,
            telemetry=self.telemetry,
            telemetry_interval_s=config.telemetry.interval_s,
            handler=handler,
        )
        self.scans_total = 0
        self.scans_failed = 0
        self.scans_refused = 0
        self.last_read_ms: float | None = None
        self.model_versions: dict[str, str] = {}
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._refusing = False

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> None:
        """Scan and deliver until `stop()`."""
        log.info(
            "agent %s %s starting: source %s, broker %s:%d",
            self.device_id,
            __version__,
            self.config.source.type,
            self.config.broker.host,
            self.config.broker.port,
        )
        self.link.start()
        try:
            self._loop(self.source.captures(self._stop))
        finally:
            self.source.close()
            self.link.stop()
            self.outbox.close()
            log.info("agent %s stopped", self.device_id)

    def stop(self) -> None:
        """Ask `run()` to finish (safe from signal handlers and other threads)."""
        self._stop.set()

    def _loop(self, captures: Iterator[Capture]) -> None:
        while not self._stop.is_set():
            if self.trigger is None and not self._accepting():
                self._stop.wait(1.0)
                continue
            capture = next(captures, None)
            if capture is None:
                if not self._stop.is_set():
                    log.info("source has no more images; delivering until stopped")
                    self._stop.wait()
                return
            image = capture.image
            if self.trigger is not None:
                still = self.trigger.update(capture.image)
                if still is None:
                    continue
                image = still
            self.scan(capture, image)

    def _accepting(self) -> bool:
        full = self.outbox.admission() == "full"
        if full and not self._refusing:
            log.error("outbox full: not taking new scans until it drains (files stay in place)")
        elif not full and self._refusing:
            log.info("outbox has room again: scanning resumed")
        self._refusing = full
        return not full

    # ------------------------------------------------------------------ one scan

    def scan(self, capture: Capture, image: np.ndarray) -> str | None:
        """Read one image and store it in the outbox; returns the receipt id, None if not stored."""
        if capture.key is not None:
            earlier = self.outbox.scanned(capture.key)
            if earlier is not None:
                log.info(
                    "%s was already stored as receipt %s; not read again", capture.source, earlier
                )
                capture.settle("done")
                return earlier
        receipt_id = uuid.uuid4()
        started = time.perf_counter()
        try:
            result = self.reader.read(image)
            read_ms = (time.perf_counter() - started) * 1000
            messages = self._messages(receipt_id, capture, result.receipt, result.rectified)
        except Exception as exc:
            self.scans_failed += 1
            log.exception("scan of %s failed (receipt %s not stored)", capture.source, receipt_id)
            capture.settle("failed", f"reading failed: {type(exc).__name__}: {exc}")
            return None
        try:
            stored = self.outbox.add_scan(str(receipt_id), messages, source_key=capture.key)
        except OutboxFull as exc:
            self.scans_refused += 1
            log.error("scan of %s refused: %s", capture.source, exc)
            capture.settle("retry", str(exc))
            return None
        capture.settle("done")
        self.link.notify()
        self.scans_total += 1
        self.last_read_ms = read_ms
        self.model_versions = dict(result.receipt.model_versions) or self.model_versions
        total = result.receipt.fields.total
        log.info(
            "scan %s: receipt %s stored (%d lines, total %s, read %.0f ms, %s, %s)",
            capture.source,
            receipt_id,
            len(result.receipt.lines),
            total.value if total else "-",
            read_ms,
            "with image" if len(stored) > 1 else "no image",
            "needs review" if result.receipt.needs_review else "ok",
        )
        return str(receipt_id)

    def _messages(
        self, receipt_id: uuid.UUID, capture: Capture, receipt: Receipt, rectified: np.ndarray
    ) -> list[OutMessage]:
        image_msg: OutMessage | None = None
        ref: ImageRef | None = None
        if self.config.upload_images and self.outbox.admission() == "ok":
            data = encode_image(rectified, self.config.image_format, self.config.image_quality)
            if len(data) > MAX_IMAGE_BYTES:
                log.warning(
                    "receipt %s: image of %d bytes exceeds %d, not sent",
                    receipt_id,
                    len(data),
                    MAX_IMAGE_BYTES,
                )
            else:
                h, w = rectified.shape[:2]
                ref = ImageRef(
                    sha256=hashlib.sha256(data).hexdigest(),
                    content_type=MIME_TYPES[self.config.image_format],
                    size_bytes=len(data),
                    width=w,
                    height=h,
                )
                topic = device_topic(self.device_id, f"image/{receipt_id}")
                image_msg = OutMessage(topic, data, qos=1, kind="image")
        payload = ReceiptMessage(
            receipt_id=receipt_id,
            captured_at=capture.captured_at,
            source=capture.source,
            agent_version=__version__,
            image=ref,
            receipt=receipt,
        ).to_json()
        if len(payload) > MAX_RECEIPT_BYTES:
            raise ValueError(f"receipt JSON of {len(payload)} bytes exceeds {MAX_RECEIPT_BYTES}")
        messages = [OutMessage(device_topic(self.device_id, "receipt"), payload, 1, "receipt")]
        return messages + ([image_msg] if image_msg else [])

    # ------------------------------------------------------------------ reporting

    def _status(self) -> StatusMessage:
        return StatusMessage(
            state="online", agent_version=__version__, model_versions=self.model_versions
        )

    def telemetry(self) -> Telemetry:
        stats = self.outbox.stats()
        camera = self.source.state
        if self.trigger is not None:
            camera = f"{camera}, trigger {self.trigger.state}"
        return Telemetry(
            interval_s=self.config.telemetry.interval_s,
            uptime_s=time.monotonic() - self._started,
            outbox_depth=stats.depth,
            outbox_bytes=stats.bytes,
            scans_total=self.scans_total,
            scans_failed=self.scans_failed + self.scans_refused,
            last_read_ms=self.last_read_ms,
            cpu_temp_c=cpu_temperature_c(),
            disk_free_bytes=disk_free_bytes(self.config.outbox.path.parent),
            camera_state=camera,
            connected_since=self.link.connected_since,
        )
