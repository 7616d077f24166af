"""Blue-green on loopback: two real `receipts server` colours behind a real nginx, PostgreSQL,
and a load generator running through every switch."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from infra.deploy import nginx
from infra.deploy.bluegreen import BlueGreen, DeployConfig
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.organizations import service as orgs
from tests.conftest import free_tcp_port, wait_for_port

pytestmark = pytest.mark.postgres

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass
class Nginx:
    prefix: Path
    port: int
    upstream: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return [
            NGINX,
            "-p",
            str(self.prefix),
            "-c",
            str(self.prefix / "nginx.conf"),
            "-e",
            str(self.prefix / "error.log"),
        ]

    def access_log(self) -> list[list[str]]:
        return [line.split() for line in (self.prefix / "access.log").read_text().splitlines()]


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Nginx]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed (infra/scripts/bootstrap.sh installs it)")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    ng = Nginx(prefix, free_tcp_port(), prefix / "upstream.conf")
    nginx.write_upstream(ng.upstream, free_tcp_port())  # nothing live yet
    conf = nginx.standalone_config(prefix, ng.port, ng.upstream, as_root=os.geteuid() == 0)
    (prefix / "nginx.conf").write_text(conf)
    ng.proc = subprocess.Popen(ng.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", ng.port)
    yield ng
    ng.proc.terminate()
    ng.proc.wait(10)


@dataclass
class Load:
    """GETs through nginx in a thread, bounded in count and time; records every outcome.

    Like a browser (and as RFC 9112 section 9.3.1 allows for idempotent requests), a GET whose
    reused keep-alive connection is closed before any answer is sent again once on a new
    connection: nginx's graceful reload closes its idle client connections, and a request sent
    in that instant meets the close. Such retries are counted (`retried`); any other error, a
    5xx or a second failure is recorded as the outcome.
    """

    url: str
    token: str
    max_requests: int = 20000
    max_s: float = 90.0
    results: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    retried: list[float] = field(default_factory=list)

    def run(self) -> None:
        deadline = time.monotonic() + self.max_s
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as client:
            while (
                not self.stop.is_set()
                and time.monotonic() < deadline
                and len(self.results) < self.max_requests
            ):
                try:
                    try:
                        outcome = str(client.get("/api/v1/receipts").status_code)
                    except httpx.RemoteProtocolError:  # the keep-alive race: once more
                        self.retried.append(time.monotonic())
                        outcome = str(client.get("/api/v1/receipts").status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                self.results.append((time.monotonic(), outcome))
                time.sleep(0.005)

    def between(self, start: float, end: float) -> list[str]:
        return [o for t, o in self.results if start <= t <= end]


def test_switches_without_a_failed_request_and_rolls_back_a_bad_release(
    pg_url: str, proxy: Nginx, tmp_path: Path
) -> None:
    migrate(pg_url)
    engine = create_db_engine(pg_url)
    with session_factory(engine).begin() as session:
        orgs.create_organization(session, "Acme")
        token = orgs.create_token(session, "Acme").token
    engine.dispose()

    ports = {"blue": free_tcp_port(), "green": free_tcp_port()}
    config = DeployConfig(
        state_dir=tmp_path / "deploy",
        upstream_file=proxy.upstream,
        ports=ports,
        nginx=proxy.command,
        env={
            "RM_DATABASE_URL": pg_url,
            "RM_IMAGE_STORE__ROOT": str(tmp_path / "images"),
            "RM_OBSERVABILITY__LOG_FORMAT": "json",
        },
        ready_timeout_s=60,
        watch_s=3,
        max_error_ratio=0.01,
        min_requests=10,
        drain_s=1,
        stop_timeout_s=10,
    )
    bg = BlueGreen(config)
    first = bg.release()
    assert (first.outcome, first.live) == ("switched", "blue")

    load = Load(f"http://127.0.0.1:{proxy.port}", token)
    thread = threading.Thread(target=load.run, daemon=True)
    thread.start()
    try:
        time.sleep(1)
        t0 = time.monotonic()
        second = bg.release()
        t1 = time.monotonic()
        assert (second.outcome, second.live) == ("switched", "green"), second
        assert second.requests >= 10 and second.errors == 0
        time.sleep(0.5)

        bad_cmd = f"{shlex.quote(sys.executable)} -m tests.infra.deploy.bad_release {{port}}"
        t2 = time.monotonic()
        third = bg.release(bad_cmd)
        t3 = time.monotonic()
        time.sleep(1)
    finally:
        load.stop.set()
        thread.join(10)
        for colour in ("blue", "green"):
            bg.stop(colour)

    # the good switch: every request through nginx answered 200, old blue then stopped
    during_switch = load.between(t0, t1)
    assert len(during_switch) > 50
    assert set(during_switch) == {"200"}, sorted(set(during_switch))
    # at most a couple of keep-alive races per switch (one per nginx reload), never a failure
    assert len([t for t in load.retried if t0 <= t <= t1]) <= 2, load.retried
    # the bad release failed the watch and was rolled back on its own, within the window
    assert (third.outcome, third.live) == ("rolled_back", "green"), third
    assert third.errors >= 10 and third.errors / third.requests > 0.01
    assert t3 - t2 < 3 + 1 + 30  # watch + drain + start, not the whole load
    during_bad = load.between(t2, t3)
    assert "500" in during_bad
    after = load.between(t3, t3 + 1)
    assert after and set(after) == {"200"}
    assert bg.live() == "green" and nginx.upstream_port(proxy.upstream) == ports["green"]
    # traffic reached both colours and the bad one, per nginx's own access log
    upstreams = {row[4] for row in proxy.access_log()}
    assert {f"127.0.0.1:{ports['blue']}", f"127.0.0.1:{ports['green']}"} <= upstreams
    statuses = [row[1] for row in proxy.access_log()]
    assert statuses.count("500") == during_bad.count("500")
