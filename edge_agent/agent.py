"""The agent: source -> trigger -> reader -> outbox -> MQTT link, run and managed from the fleet.

`Agent(config, reader=...)` wires the parts; `run()` blocks until `stop()` (from a signal
handler or another thread) and then shuts down cleanly: the source is closed, the link says
``offline`` and disconnects, the outbox is closed. Scans already stored stay in the outbox and
are delivered by the next run. `exit_code` is 0, or `RESTART_EXIT_CODE` when a command asked
for a restart.

Fleet management plugs in around it: `FleetHandler` (desired config, commands) runs on its own
thread and calls back into the agent through the `FleetHost` methods below; the `Updater`
(OTA) settles interrupted updates before the reader is built and swaps readers through
`activate_reader`; `DeviceSignals` tells systemd the agent is ready and alive (the watchdog
is kicked each time the scanning thread checks its stop event, which every source does at
least once a second) and drives the optional LED, buzzer and button.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from edge_agent import __version__
from edge_agent.capture import Capture, Source, build_source
from edge_agent.capture.base import utcnow
from edge_agent.config import AgentConfig
from edge_agent.fleet.commands import FeedbackTestArgs
from edge_agent.fleet.config import RESTART_EXIT_CODE
from edge_agent.fleet.diagnostics import RingLogHandler, bounded
from edge_agent.fleet.handler import FleetHandler, SettingNotApplied
from edge_agent.fleet.shadow import ConfigShadow
from edge_agent.mqtt import CommandHandler, MqttLink
from edge_agent.outbox import Outbox, OutboxFull, OutMessage
from edge_agent.reader import Reader
from edge_agent.signals import DeviceSignals
from edge_agent.telemetry import cpu_temperature_c, disk_free_bytes
from edge_agent.trigger import PlacementTrigger
from firmware.gpio import LedState
from models.imageio import MIME_TYPES, encode_image
from models.pipeline import PipelineConfig
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

if TYPE_CHECKING:
    from edge_agent.ota.updater import Updater

log = logging.getLogger(__name__)

#: Builds the reader for a pipeline config (default: `models.pipeline.build_pipeline`).
ReaderFactory = Callable[[PipelineConfig], Reader]
#: Seconds between two signs of life (watchdog kick, LED state) from the scanning thread.
TICK_S = 0.5


def _build_pipeline(config: PipelineConfig) -> Reader:
    from models.pipeline import build_pipeline

    reader: Reader = build_pipeline(config)
    return reader


class _PulseEvent(threading.Event):
    """The agent's stop event: each check from the scanning thread is a sign of life."""

    def __init__(self, pulse: Callable[[], None]) -> None:
        super().__init__()
        self._pulse = pulse
        self.owner: int | None = None

    def is_set(self) -> bool:
        if threading.get_ident() == self.owner:
            self._pulse()
        return super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        if threading.get_ident() == self.owner:
            self._pulse()
        return super().wait(timeout)


class Agent:
    """One scanner: reads what its source captures and delivers it through the outbox."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        reader: Reader | None = None,
        reader_factory: ReaderFactory | None = None,
        source: Source | None = None,
        handler: CommandHandler | None = None,
        signals: DeviceSignals | None = None,
        ota_transport: Any = None,
        run_command: Callable[[list[str]], Any] | None = None,
    ) -> None:
        self.base_config = config
        self.device_id = config.device_id
        self.ring = RingLogHandler(config.fleet.diagnostics_log_lines)
        logging.getLogger().addHandler(self.ring)
        self.shadow = ConfigShadow(config, config.fleet.state_dir / "config.json")
        self.config = self.shadow.config
        self.source = source if source is not None else build_source(config.source)
        self.outbox = Outbox(config.outbox)
        self.fleet: FleetHandler | None = None
        if handler is None:
            self.fleet = FleetHandler(
                config.fleet, self.shadow, self, _LinkProxy(self), run=run_command
            )
        self.link = MqttLink(
            config.device_id,
            config.broker,
            self.outbox,
            status=self._status,
            telemetry=self.telemetry,
            telemetry_interval_s=self.config.telemetry.interval_s,
            handler=handler or self.fleet,
        )
        self.exit_code = 0
        self.scans_total = 0
        self.scans_failed = 0
        self.scans_refused = 0
        self.last_read_ms: float | None = None
        self.model_versions: dict[str, str] = {}
        self._started = time.monotonic()
        self._stop = _PulseEvent(self._tick)
        self._refusing = False
        self._quiet = False
        self._force = threading.Event()
        self._lock = threading.RLock()  # one read at a time; the reader is swapped under it
        self._last: tuple[Capture, np.ndarray] | None = None
        self._last_tick = 0.0
        self.signals = signals or DeviceSignals(
            self.config.gpio, on_scan=self.press, on_hold=self._rescan_in_background
        )
        self._factory: ReaderFactory = (
            (lambda _config: reader) if reader is not None else (reader_factory or _build_pipeline)
        )
        self.updater: Updater | None = None
        if self.fleet is not None and config.ota is not None:
            from edge_agent.ota.updater import Updater

            self.updater = Updater(config.ota, self, self.fleet.report, transport=ota_transport)
            self.fleet.updater = self.updater
        self.models_dir = self.updater.recover() if self.updater is not None else None
        self.reader = self.build_reader(self.models_dir)
        self.trigger = PlacementTrigger(self.config.trigger) if self.source.live else None

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
        self._stop.owner = threading.get_ident()
        if self.fleet is not None:
            self.fleet.start()
        self.link.start()
        self.signals.ready()
        try:
            self._loop(self.source.captures(self._stop))
        finally:
            self.source.close()
            if self.fleet is not None:
                self.fleet.stop()
            if self.updater is not None:
                self.updater.wait(5.0)
            self.link.stop()
            self.outbox.close()
            self.signals.close()
            logging.getLogger().removeHandler(self.ring)
            log.info("agent %s stopped", self.device_id)

    def stop(self) -> None:
        """Ask `run()` to finish (safe from signal handlers and other threads)."""
        self._stop.set()

    def request_restart(self) -> None:
        """Stop with `RESTART_EXIT_CODE`, for systemd to start the agent again."""
        log.warning("restart requested: stopping with exit status %d", RESTART_EXIT_CODE)
        self.exit_code = RESTART_EXIT_CODE
        self.stop()

    def _idle(self, seconds: float | None = None) -> None:
        """Wait `seconds` (None: until stopped) while staying visibly alive."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self._stop.is_set():
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return
            self._stop.wait(left)

    def _loop(self, captures: Iterator[Capture]) -> None:
        while not self._stop.is_set():
            if self._quiet_now() or (self.trigger is None and not self._accepting()):
                self._idle(1.0)
                continue
            capture = next(captures, None)
            if capture is None:
                if not self._stop.is_set():
                    log.info("source has no more images; delivering until stopped")
                    self._idle()
                return
            if self._quiet_now():  # quiet hours began while the source was waiting
                capture.settle("retry", "quiet hours")
                continue
            image = capture.image
            if self.trigger is not None:
                if self._force.is_set():  # the scan button: take this frame as it is
                    self._force.clear()
                    log.info("scan button: frame taken without waiting for the trigger")
                else:
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

    def _quiet_now(self) -> bool:
        hours = self.config.quiet_hours
        quiet = hours is not None and hours.active()
        if quiet != self._quiet:
            log.info("quiet hours %s", "begin: no scanning, no buzzer" if quiet else "over")
            self._quiet = self.signals.quiet = quiet
            if not quiet and self.trigger is not None:
                self.trigger.reset()  # the scene may have changed meanwhile
        return quiet

    def _tick(self) -> None:
        """Sign of life of the scanning thread: watchdog, LED state, OTA health."""
        now = time.monotonic()
        if now - self._last_tick < TICK_S:
            return
        self._last_tick = now
        self.signals.alive()
        self.signals.show(self._led_state())
        if self.updater is not None:
            self.updater.mark_healthy()

    def _led_state(self) -> LedState:
        if self._quiet:
            return LedState.OFF
        if self._refusing or self.source.state.startswith("error"):
            return LedState.ERROR
        return LedState.READY if self.link.connected else LedState.OFFLINE

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
        with self._lock:
            self._last = (capture, image)
            self.signals.show(LedState.READING)
            try:
                return self._scan(capture, image)
            finally:
                self.signals.show(self._led_state())

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
            messages = self._messages(receipt_id, capture, result.receipt, result.rectified)
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
        self.link.notify()
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

    def _messages(
        self, receipt_id: uuid.UUID, capture: Capture, receipt: Receipt, rectified: np.ndarray
    ) -> list[OutMessage]:
        config = self.config
        image_msg: OutMessage | None = None
        ref: ImageRef | None = None
        if config.upload_images and self.outbox.admission() == "ok":
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

    # ------------------------------------------------------------------ button

    def press(self) -> None:
        """The scan button: a live source takes its next frame as a scan."""
        if self.trigger is None:
            log.info("scan button: the %s source is not a camera; hold to rescan", self.source)
            return
        self._force.set()

    def _rescan_in_background(self) -> None:
        def run() -> None:
            try:
                log.info("button held: %s", self.rescan_last())
            except LookupError as exc:
                log.info("button held: %s", exc)

        threading.Thread(target=run, name="rescan", daemon=True).start()

    # ------------------------------------------------------------------ readers (OTA host)

    def pipeline_config(
        self, models_dir: Path | None, config: AgentConfig | None = None
    ) -> PipelineConfig:
        """The pipeline for `models_dir`: its ``pipeline.yaml`` over the config's pipeline."""
        base = (config or self.config).pipeline
        if models_dir is None or not (models_dir / "pipeline.yaml").is_file():
            return base
        path = models_dir / "pipeline.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of pipeline settings")
        merged = {**base.model_dump(), **_in_slot(data, models_dir), "threads": base.threads}
        return PipelineConfig.model_validate(merged, context={"base_dir": models_dir})

    def pipeline_json(self, models_dir: Path | None) -> str:
        return self.pipeline_config(models_dir).model_dump_json()

    def build_reader(self, models_dir: Path | None, config: AgentConfig | None = None) -> Reader:
        return self._factory(self.pipeline_config(models_dir, config))

    def activate_reader(self, reader: Reader, models_dir: Path | None) -> Reader:
        with self._lock:
            previous, self.reader, self.models_dir = self.reader, reader, models_dir
        log.info("reading with the %s models from now on", models_dir or "factory")
        if self.link.connected:  # the retained status names the releases in force
            self.link.publish_control("status", self._status().to_json(), retain=True)
        return previous

    # ------------------------------------------------------------------ fleet host

    def apply_config(self, config: AgentConfig) -> None:
        """Put an effective config in force (from `FleetHandler`)."""
        reader = None
        if self.pipeline_config(self.models_dir, config) != self.pipeline_config(self.models_dir):
            try:
                reader = self.build_reader(self.models_dir, config)
            except Exception as exc:
                reason = f"the pipeline can't be built: {exc}"
                raise SettingNotApplied("pipeline.threads", reason) from exc
        with self._lock:
            self.config = config
            if reader is not None:
                self.reader = reader
            if self.trigger is not None:
                self.trigger.config = config.trigger
        self.link.telemetry_interval_s = config.telemetry.interval_s

    def rescan_last(self) -> dict[str, Any]:
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

    def diagnostics(self, log_lines: int) -> dict[str, Any]:
        from edge_agent.fleet.diagnostics import snapshot

        lines = self.ring.lines()[-log_lines:] if log_lines else []
        return bounded(snapshot(self), lines)

    def feedback_test(self, args: FeedbackTestArgs) -> dict[str, Any]:
        return self.signals.feedback_test(args.states, args.beeps, args.step_s)

    def purge_outbox(self) -> dict[str, Any]:
        return self.outbox.purge()

    # ------------------------------------------------------------------ reporting

    def _status(self) -> StatusMessage:
        versions = dict(self.model_versions)
        if self.updater is not None:
            versions.update(self.updater.releases())
        return StatusMessage(state="online", agent_version=__version__, model_versions=versions)

    def telemetry(self) -> Telemetry:
        stats = self.outbox.stats()
        camera = self.source.state
        if self.trigger is not None:
            camera = f"{camera}, trigger {self.trigger.state}"
        if self._quiet:
            camera = f"{camera}, quiet hours"
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


def _in_slot(data: Any, slot: Path) -> Any:
    """A release's pipeline settings with relative paths (keys ending in _dir, _path or _file,
    e.g. ``ocr.model_dir: litert``) taken from its slot folder."""
    if isinstance(data, dict):
        return {
            k: (
                str(slot / v)
                if isinstance(v, str)
                and k.endswith(("_dir", "_path", "_file"))
                and not Path(v).is_absolute()
                else _in_slot(v, slot)
            )
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_in_slot(v, slot) for v in data]
    return data


class _LinkProxy:
    """Lets the fleet handler publish through a link created after it."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def publish_control(
        self,
        leaf: str,
        payload: bytes,
        *,
        retain: bool = False,
        on_ack: Callable[[], None] | None = None,
    ) -> None:
        self._agent.link.publish_control(leaf, payload, retain=retain, on_ack=on_ack)
