"""The agent: source -> trigger -> reader -> outbox -> MQTT link, run and managed from the fleet.

`Agent(config, reader=...)` wires the parts; `run()` blocks until `stop()` (from a signal
handler or another thread) and then shuts down cleanly: the source is closed, the link says
``offline`` and disconnects, the outbox is closed. Scans already stored stay in the outbox and
are delivered by the next run. `exit_code` is 0, or `RESTART_EXIT_CODE` when a command asked
for a restart.

The parts, each in its own module:

- `edge_agent.scanloop.ScanLoop`: the scanning thread (quiet hours, outbox room, placement
  trigger, scan button); its checks of the stop event kick the systemd watchdog;
- `edge_agent.scanner.Scanner`: reads one image with the reader in force and queues the
  receipt (and image) in the outbox;
- `edge_agent.release_pipeline`: the pipeline a models release asks for, built into a reader;
- `edge_agent.mqtt.MqttLink`: delivery, status, telemetry (built here, `telemetry()`), commands.

Fleet management plugs in around them, and this class is its host: `FleetHandler` (desired
config, commands) runs on its own thread and calls back through the `FleetHost` methods below;
the `Updater` (OTA) settles interrupted updates before the reader is built and swaps readers
through the `UpdateHost` methods (`build_reader`, `activate_reader`); `DeviceSignals` tells
systemd the agent is ready and alive and drives the optional LED, buzzer and button.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent import __version__
from edge_agent.capture import Capture, Source, build_source
from edge_agent.config import AgentConfig
from edge_agent.fleet.commands import FeedbackTestArgs
from edge_agent.fleet.config import RESTART_EXIT_CODE
from edge_agent.fleet.diagnostics import RingLogHandler, bounded
from edge_agent.fleet.handler import FleetHandler, SettingNotApplied
from edge_agent.fleet.shadow import ConfigShadow
from edge_agent.mqtt import CommandHandler, MqttLink
from edge_agent.outbox import Outbox
from edge_agent.reader import Reader
from edge_agent.release_pipeline import ReaderFactory, build_pipeline_reader, pipeline_config
from edge_agent.scanloop import PulseEvent, ScanLoop
from edge_agent.scanner import Scanner
from edge_agent.signals import DeviceSignals
from edge_agent.telemetry import cpu_temperature_c, disk_free_bytes
from edge_agent.trigger import PlacementTrigger
from models.pipeline import PipelineConfig
from models.protocol import StatusMessage, Telemetry

if TYPE_CHECKING:
    import numpy as np

    from edge_agent.ota.updater import Updater

log = logging.getLogger(__name__)

__all__ = ["Agent", "ReaderFactory"]


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
        self._started = time.monotonic()
        self._stop = PulseEvent()  # before the updater: recovering may ask for a restart
        self.signals = signals or DeviceSignals(
            self.config.gpio, on_scan=self.press, on_hold=self._rescan_in_background
        )
        self._factory: ReaderFactory = (
            (lambda _config: reader)
            if reader is not None
            else (reader_factory or build_pipeline_reader)
        )
        self.updater: Updater | None = None
        if self.fleet is not None and config.ota is not None:
            from edge_agent.ota.updater import Updater

            self.updater = Updater(config.ota, self, self.fleet.report, transport=ota_transport)
            self.fleet.updater = self.updater
        models_dir = self.updater.recover() if self.updater is not None else None
        first_reader = self.build_reader(models_dir)
        self.trigger = PlacementTrigger(self.config.trigger) if self.source.live else None
        self.loop = ScanLoop(
            self._stop,
            config=lambda: self.config,
            source=self.source,
            outbox=self.outbox,
            link=self.link,
            signals=self.signals,
            trigger=self.trigger,
            updater=self.updater,
        )
        self.scanner = Scanner(
            self.device_id,
            config=lambda: self.config,
            outbox=self.outbox,
            notify=self.link.notify,
            signals=self.signals,
            led_state=self.loop.led_state,
            reader=first_reader,
            models_dir=models_dir,
            updater=self.updater,
        )

    @property
    def reader(self) -> Reader:
        """The reader in force."""
        return self.scanner.reader

    @property
    def models_dir(self) -> Path | None:
        """The models release the reader was built from (None: the factory models)."""
        return self.scanner.models_dir

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
        if self.fleet is not None:
            self.fleet.start()
        self.link.start()
        self.signals.ready()
        try:
            self.loop.run(self.scanner.scan)
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

    def scan(self, capture: Capture, image: np.ndarray) -> str | None:
        """Read one image and store it in the outbox; returns the receipt id, None if not stored."""
        return self.scanner.scan(capture, image)

    # ------------------------------------------------------------------ button

    def press(self) -> None:
        """The scan button: a live source takes its next frame as a scan."""
        self.loop.press()

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
        return pipeline_config((config or self.config).pipeline, models_dir)

    def pipeline_json(self, models_dir: Path | None) -> str:
        return self.pipeline_config(models_dir).model_dump_json()

    def build_reader(self, models_dir: Path | None, config: AgentConfig | None = None) -> Reader:
        return self._factory(self.pipeline_config(models_dir, config))

    def activate_reader(self, reader: Reader, models_dir: Path | None) -> Reader:
        previous = self.scanner.activate(reader, models_dir)
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
        with self.scanner.lock:
            self.config = config
            if reader is not None:
                self.scanner.reader = reader
            if self.trigger is not None:
                self.trigger.config = config.trigger
        self.link.telemetry_interval_s = config.telemetry.interval_s

    def rescan_last(self) -> dict[str, Any]:
        return self.scanner.rescan_last()

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
        versions = dict(self.scanner.model_versions)
        if self.updater is not None:
            versions.update(self.updater.releases())
        return StatusMessage(state="online", agent_version=__version__, model_versions=versions)

    def telemetry(self) -> Telemetry:
        """The heartbeat: outbox, scans, timings, temperature, disk, camera (and trigger) state."""
        stats = self.outbox.stats()
        scanner = self.scanner
        camera = self.source.state
        if self.trigger is not None:
            camera = f"{camera}, trigger {self.trigger.state}"
        if self.loop.quiet:
            camera = f"{camera}, quiet hours"
        return Telemetry(
            interval_s=self.config.telemetry.interval_s,
            uptime_s=time.monotonic() - self._started,
            outbox_depth=stats.depth,
            outbox_bytes=stats.bytes,
            scans_total=scanner.scans_total,
            scans_failed=scanner.scans_failed + scanner.scans_refused,
            last_read_ms=scanner.last_read_ms,
            cpu_temp_c=cpu_temperature_c(),
            disk_free_bytes=disk_free_bytes(self.config.outbox.path.parent),
            camera_state=camera,
            connected_since=self.link.connected_since,
        )


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
