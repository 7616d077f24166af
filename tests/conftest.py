"""Fixtures shared by the whole suite: real services, started or found, never faked.

- `pg_url`: a fresh PostgreSQL database on the machine's server (RM_TEST_POSTGRES_URL, default
  postgresql://postgres@127.0.0.1:5432/postgres), created for the test session and dropped after.
- `sqlite_url`: a fresh SQLite file database (the embedded default).
- `mosquitto`: a private mosquitto started by the test with a generated config on a free port
  (persistence on, so a restart keeps sessions); `system_broker`: the one on 127.0.0.1:1883.
- `free_port`: a TCP port nobody listens on.
- `s3_endpoint`: a real S3-compatible server (moto's server mode) on loopback, per session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get(
    "RM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    return free_tcp_port()


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


# --------------------------------------------------------------------------- PostgreSQL


def _pg_admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def create_pg_database() -> str:
    """Create an empty database and return its SQLAlchemy URL."""
    name = f"rm_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg2://", 1)


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped after the test)."""
    try:
        url = create_pg_database()
    except Exception as exc:  # a missing server is a setup failure, said plainly
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    yield url
    drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'receipts.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using it runs twice: on the embedded SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'receipts.db'}"
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)


# --------------------------------------------------------------------------- Mosquitto


@dataclass
class Mosquitto:
    """A mosquitto process of the test's own, with a generated config."""

    workdir: Path
    port: int
    extra_config: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    host: str = "127.0.0.1"

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_inflight_messages 1000",
            "max_queued_messages 0",
            f"log_dest file {self.log_path}",
            "log_type all",
        ]
        if os.geteuid() == 0:
            # Run as root, mosquitto drops to the `mosquitto` user, which can't write the test's
            # private folder: no log, no persistence, and a restart would forget the sessions.
            lines.append("user root")
        auth_keys = ("allow_anonymous", "password_file")
        if not any(line.startswith(auth_keys) for line in self.extra_config):
            lines.append("allow_anonymous true")
        self.config_path.write_text("\n".join(lines + self.extra_config) + "\n")

    def start(self) -> None:
        self.write_config()
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.host, self.port)

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private broker for this test, on a free port, with persistence."""
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    broker = Mosquitto(workdir=workdir, port=free_tcp_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def system_broker() -> tuple[str, int]:
    """The machine's Mosquitto on 127.0.0.1:1883."""
    try:
        wait_for_port("127.0.0.1", 1883, timeout=3)
    except TimeoutError:
        pytest.fail("the machine's Mosquitto is not listening on 127.0.0.1:1883")
    return ("127.0.0.1", 1883)


# --------------------------------------------------------------------------- S3-compatible store


@dataclass
class S3Endpoint:
    """A real S3-compatible HTTP server (moto's server mode) on loopback."""

    url: str
    region: str = "us-east-1"
    access_key_id: str = "test-access-key"
    secret_access_key: str = "test-secret-key"  # moto accepts any

    def client(self) -> object:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def new_bucket(self) -> str:
        name = f"rm-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """moto's S3 server (`moto[server]`) in a thread, for the whole test session; each test
    makes its own bucket with `new_bucket()`."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_tcp_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_for_port("127.0.0.1", port)
    yield S3Endpoint(url=f"http://127.0.0.1:{port}")
    server.stop()
