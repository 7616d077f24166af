"""Reading one image and queueing the result: reader -> receipt (+ image) messages -> outbox.

`Scanner.scan(capture, image)` is the one path by which a receipt enters the outbox, whether the
image came from the scanning thread, a ``rescan`` command or the held button:

- a still already stored (its `Capture.key` is in the outbox) is settled ``done`` and not read
  again, so a restart between storing and settling never makes a second receipt;
- one read at a time, under `lock`; the reader in force is swapped under the same lock
  (`activate`, and the agent's `apply_config`), so a read never sees half a swap;
- a release on probation hears how each read went (`Updater.on_scan`); when a failed read rolls
  it back, the image is read again with the reader it restored, so the receipt is not lost;
- the capture is settled ``done`` once stored, ``failed`` with the reason when reading failed,
  ``retry`` when the outbox refused it (full); the LED shows READING meanwhile and the buzzer
  says ok, rescan (quality gate) or error.

`receipt_messages` (pure) builds what is queued: the receipt JSON and, when images are uploaded
and the outbox has room for them, the rectified image, whose sha256 the receipt carries.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_agent import __version__
from edge_agent.capture import Capture
from edge_agent.capture.base import utcnow
from edge_agent.config import AgentConfig
from edge_agent.outbox import Outbox, OutboxFull, OutMessage
from edge_agent.reader import Reader
from edge_agent.signals import DeviceSignals
from firmware.gpio import LedState
from models.imageio import MIME_TYPES, encode_image
from models.protocol import (
    MAX_IMAGE_BYTES,
    MAX_RECEIPT_BYTES,
    ImageRef,
    ReceiptMessage,
    device_topic,
)
from models.receipt import Receipt

if TYPE_CHECKING:
    from edge_agent.ota.updater import Updater

log = logging.getLogger(__name__)


class Scanner:
    """Reads images with the reader in force and stores the results; see the module docstring."""

    def __init__(
        self,
        device_id: str,
        *,
        config: Callable[[], AgentConfig],
        outbox: Outbox,
        notify: Callable[[], None],
        signals: DeviceSignals,
        led_state: Callable[[], LedState],
        reader: Reader,
        models_dir: Path | None,
        updater: Updater | None,
    ) -> None:
        self.device_id = device_id
        self._config = config
        self.outbox = outbox
        self._notify = notify
        self.signals = signals
        self._led_state = led_state
        self.reader = reader
        self.models_dir = models_dir
        self.updater = updater
        self.lock = threading.RLock()  # one read at a time; the reader is swapped under it
        self.scans_total = 0
        self.scans_failed = 0
        self.scans_refused = 0
        self.last_read_ms: float | None = None
        self.model_versions: dict[str, str] = {}
        self._last: tuple[Capture, np.ndarray] | None = None

    def activate(self, reader: Reader, models_dir: Path | None) -> Reader:
        """Read with `reader` (built from `models_dir`) from now on; returns the one it replaces."""
        with self.lock:
            previous, self.reader, self.models_dir = self.reader, reader, models_dir
        return previous

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
        with self.lock:
            self._last = (capture, image)
            self.signals.show(LedState.READING)
            try:
                return self._scan(capture, image)
            finally:
                self.signals.show(self._led_state())

    def rescan_last(self) -> dict[str, Any]:
        """Read the last image again as a new receipt; raises LookupError when there is none."""
        last = self._last
        if last is None:
            raise LookupError("no image kept: nothing was scanned since the agent started")
        capture, image = last
        source = capture.source.removeprefix("rescan of ")
        again = Capture(image=image, source=f"rescan of {source}", captured_at=utcnow())
        receipt_id = self.scan(again, image)
        if receipt_id is None:
            raise LookupError(f"reading {capture.source} again failed (see the log)")
        return {"receipt_id": receipt_id, "source": source}

    def _read(self, image: np.ndarray) -> Any:
        """Read with the current reader; a release on probation hears how it went."""
        try:
            result = self.reader.read(image)
        except Exception:
            if self.updater is None or not self.updater.on_scan(False):
                raise
            log.warning("the new release failed to read; reading again with the one before")
            result = self.reader.read(image)
        else:
            if self.updater is not None:
                self.updater.on_scan(True)
        return result

    def _scan(self, capture: Capture, image: np.ndarray) -> str | None:
        receipt_id = uuid.uuid4()
        started = time.perf_counter()
        try:
            result = self._read(image)
            read_ms = (time.perf_counter() - started) * 1000
            config = self._config()
            messages = receipt_messages(
                self.device_id,
                config,
                receipt_id,
                capture,
                receipt=result.receipt,
                rectified=result.rectified,
                with_image=config.upload_images and self.outbox.admission() == "ok",
            )
        except Exception as exc:
            self.scans_failed += 1
            log.exception("scan of %s failed (receipt %s not stored)", capture.source, receipt_id)
            capture.settle("failed", f"reading failed: {type(exc).__name__}: {exc}")
            self.signals.beep("error")
            return None
        try:
            stored = self.outbox.add_scan(str(receipt_id), messages, source_key=capture.key)
        except OutboxFull as exc:
            self.scans_refused += 1
            log.error("scan of %s refused: %s", capture.source, exc)
            capture.settle("retry", str(exc))
            self.signals.beep("error")
            return None
        capture.settle("done")
        self._notify()
        self.scans_total += 1
        self.last_read_ms = read_ms
        self.model_versions = dict(result.receipt.model_versions) or self.model_versions
        self.signals.beep("ok" if result.receipt.quality.accepted else "rescan")
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


def receipt_messages(
    device_id: str,
    config: AgentConfig,
    receipt_id: uuid.UUID,
    capture: Capture,
    *,
    receipt: Receipt,
    rectified: np.ndarray,
    with_image: bool,
) -> list[OutMessage]:
    """The receipt message, then the image message when `with_image` and it fits the limit."""
    image_msg: OutMessage | None = None
    ref: ImageRef | None = None
    if with_image:
        data = encode_image(rectified, config.image_format, config.image_quality)
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
                content_type=MIME_TYPES[config.image_format],
                size_bytes=len(data),
                width=w,
                height=h,
            )
            topic = device_topic(device_id, f"image/{receipt_id}")
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
    messages = [OutMessage(device_topic(device_id, "receipt"), payload, 1, "receipt")]
    return messages + ([image_msg] if image_msg else [])
