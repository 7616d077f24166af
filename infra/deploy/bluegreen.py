"""Blue-green releases of the API: start the idle colour, wait for /ready, switch nginx, watch
the error rate, roll back on its own or retire the old colour after a drain.

The two colours are two `receipts server` processes on two loopback ports behind one nginx.
`release()`:

1. starts the idle colour with the new code; `receipts server` migrates the database first, so
   migrations run before any traffic moves (they must stay compatible with the running colour,
   see infra/deploy/README.md);
2. waits until its `/ready` answers 200 (database reachable and at the code's revision); a
   colour that dies or stays unready is stopped and nothing is switched;
3. points nginx's upstream at it (`nginx -t`, then `nginx -s reload`: graceful);
4. watches its `/metrics` for `watch_s` seconds: if the share of 5xx answers exceeds
   `max_error_ratio` (over at least `min_requests` requests), switches back and stops it;
5. otherwise waits `drain_s` (the old nginx workers finish their requests) and stops the old
   colour with SIGTERM (uvicorn's graceful shutdown).

State (which colour is live, the processes' pids) is kept in `state_dir/state.json`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
from prometheus_client.parser import text_string_to_metric_families

from infra.deploy import nginx

logger = logging.getLogger(__name__)

Colour = Literal["blue", "green"]
COLOURS: tuple[Colour, Colour] = ("blue", "green")


def other(colour: Colour) -> Colour:
    return "green" if colour == "blue" else "blue"


def default_server_command() -> str:
    receipts = Path(sys.executable).with_name("receipts")
    return f"{shlex.quote(str(receipts))} server --host 127.0.0.1 --port {{port}}"


@dataclass
class DeployConfig:
    """Where the colours listen, how nginx is driven and how strict the watch is."""

    state_dir: Path
    upstream_file: Path
    ports: Mapping[str, int] = field(default_factory=lambda: {"blue": 8001, "green": 8002})
    nginx: Sequence[str] = ("nginx",)
    server_command: str = field(default_factory=default_server_command)
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 60.0
    watch_s: float = 60.0
    max_error_ratio: float = 0.01
    min_requests: int = 20
    drain_s: float = 10.0
    stop_timeout_s: float = 30.0


@dataclass
class ReleaseResult:
    outcome: Literal["switched", "rolled_back", "not_ready"]
    live: Colour | None
    requests: int = 0
    errors: int = 0
    detail: str = ""


class DeployError(RuntimeError):
    """The release could not be carried out; what is live is said in the message."""


class BlueGreen:
    def __init__(self, config: DeployConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.sleep = sleep
        self._procs: dict[int, subprocess.Popen[bytes]] = {}  # children of this process
        config.state_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ state

    @property
    def state_file(self) -> Path:
        return self.config.state_dir / "state.json"

    def state(self) -> dict[str, object]:
        if self.state_file.exists():
            data: dict[str, object] = json.loads(self.state_file.read_text())
            return data
        return {"live": None, "pids": {}}

    def live(self) -> Colour | None:
        live = self.state().get("live")
        return "blue" if live == "blue" else "green" if live == "green" else None

    def _save(self, live: Colour | None, pids: dict[str, int]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"live": live, "pids": pids}, indent=2))
        os.replace(tmp, self.state_file)

    def _pids(self) -> dict[str, int]:
        pids = self.state().get("pids") or {}
        assert isinstance(pids, dict)
        return {str(k): int(v) for k, v in pids.items()}

    def port(self, colour: Colour) -> int:
        return int(self.config.ports[colour])

    # ------------------------------------------------------------------ processes

    def start(self, colour: Colour, command: str | None = None) -> int:
        """Start `colour` (its log: state_dir/COLOUR.log); returns its pid."""
        argv = shlex.split((command or self.config.server_command).format(port=self.port(colour)))
        log = (self.config.state_dir / f"{colour}.log").open("ab")
        proc = subprocess.Popen(  # noqa: S603 (the operator's own command line)
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.config.env, "RM_DEPLOY_COLOUR": colour},
            start_new_session=True,
        )
        log.close()
        pids = self._pids()
        pids[colour] = proc.pid
        self._save(self.live(), pids)
        self._procs[proc.pid] = proc
        logger.info("started %s (pid %d) on port %d", colour, proc.pid, self.port(colour))
        return proc.pid

    def _alive(self, pid: int) -> bool:
        proc = self._procs.get(pid)
        if proc is not None:
            return proc.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, colour: Colour) -> None:
        """SIGTERM `colour` (graceful), SIGKILL after `stop_timeout_s`."""
        pids = self._pids()
        pid = pids.pop(colour, None)
        if pid is not None and self._alive(pid):
            logger.info("stopping %s (pid %d)", colour, pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + self.config.stop_timeout_s
            while self._alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self._alive(pid):
                logger.warning("%s (pid %d) ignored SIGTERM; killing it", colour, pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc = self._procs.pop(pid, None)
            if proc is not None:
                proc.wait(5)
        self._save(self.live(), pids)

    def wait_ready(self, colour: Colour) -> bool:
        """True once `colour` answers /ready with 200; False if it dies or times out."""
        url = f"http://127.0.0.1:{self.port(colour)}/ready"
        pid = self._pids().get(colour)
        deadline = time.monotonic() + self.config.ready_timeout_s
        while time.monotonic() < deadline:
            if pid is not None and not self._alive(pid):
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return True
            time.sleep(0.2)
        return False

    # ------------------------------------------------------------------ nginx

    def switch(self, colour: Colour) -> None:
        """Point nginx at `colour`; the previous file is restored if nginx refuses the new one."""
        upstream = self.config.upstream_file
        before = upstream.read_text() if upstream.exists() else None
        nginx.write_upstream(upstream, self.port(colour))
        try:
            nginx.run_nginx(["-t", "-q"], self.config.nginx)
            nginx.run_nginx(["-s", "reload"], self.config.nginx)
        except RuntimeError:
            if before is not None:
                upstream.write_text(before)
            raise
        self._save(colour, self._pids())
        logger.info("nginx now sends traffic to %s (port %d)", colour, self.port(colour))

    # ------------------------------------------------------------------ watch

    def counts(self, colour: Colour) -> tuple[int, int]:
        """(requests, 5xx answers) `colour` has served, from its /metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.port(colour)}/metrics", timeout=5).text
        total = errors = 0
        for family in text_string_to_metric_families(text):
            if family.name != "rm_http_requests":
                continue
            for s in family.samples:
                if s.name != "rm_http_requests_total" or s.labels.get("route") in ("/ready",):
                    continue
                total += int(s.value)
                if s.labels.get("status", "").startswith("5"):
                    errors += int(s.value)
        return total, errors

    def watch(self, colour: Colour) -> tuple[bool, int, int]:
        """Watch `colour` for `watch_s`; (healthy, requests, errors) since the watch began."""
        base_total, base_errors = self.counts(colour)
        deadline = time.monotonic() + self.config.watch_s
        total = errors = 0
        while True:
            try:
                now_total, now_errors = self.counts(colour)
            except httpx.HTTPError as exc:
                logger.warning("%s does not answer /metrics: %s", colour, exc)
                return False, total, errors
            total, errors = now_total - base_total, now_errors - base_errors
            if total >= self.config.min_requests and errors / total > self.config.max_error_ratio:
                return False, total, errors
            if time.monotonic() >= deadline:
                return True, total, errors
            self.sleep(0.5)

    # ------------------------------------------------------------------ release

    def release(self, command: str | None = None) -> ReleaseResult:
        """Start the idle colour with `command`, switch to it, watch it; roll back if bad."""
        old = self.live()
        new: Colour = other(old) if old else "blue"
        if self._pids().get(new) is not None:
            self.stop(new)  # a leftover of an interrupted release
        self.start(new, command)
        if not self.wait_ready(new):
            self.stop(new)
            detail = f"{new} never became ready; see {self.config.state_dir / new}.log"
            logger.error("release abandoned: %s; %s stays live", detail, old)
            return ReleaseResult("not_ready", old, detail=detail)
        self.switch(new)
        if old is None:
            return ReleaseResult("switched", new, detail="first release")
        healthy, total, errors = self.watch(new)
        if not healthy:
            logger.error(
                "%s failed the watch (%d errors in %d requests): rolling back to %s",
                new,
                errors,
                total,
                old,
            )
            self.switch(old)
            self.sleep(self.config.drain_s)
            self.stop(new)
            return ReleaseResult("rolled_back", old, total, errors, f"{new} answered 5xx")
        self.sleep(self.config.drain_s)
        self.stop(old)
        return ReleaseResult("switched", new, total, errors)

    def rollback(self) -> Colour:
        """Switch back to the other colour, which must still run (before its drain ended)."""
        live = self.live()
        if live is None:
            raise DeployError("nothing is live: nothing to roll back")
        target = other(live)
        pid = self._pids().get(target)
        if pid is None or not self._alive(pid):
            raise DeployError(f"{target} is not running; release the previous version instead")
        self.switch(target)
        return target
