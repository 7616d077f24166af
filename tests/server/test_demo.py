"""`receipts demo`: the one-command system on embedded defaults (in-process broker, SQLite, local
image store, a folder scanner) reads its sample receipts and serves them through the API."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_tcp_port, wait_for_port

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "sroie-train" / "img"


@pytest.mark.e2e
def test_demo_reads_its_samples_and_serves_them(tmp_path: Path) -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"the demo's sample receipts come from {SAMPLES}")
    port, mqtt_port = free_tcp_port(), free_tcp_port()
    log = (tmp_path / "demo.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from models.cli import main; main()",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
            "--mqtt-port",
            str(mqtt_port),
            "--samples",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
    )
    try:
        token = None
        deadline = time.monotonic() + 60
        while token is None and time.monotonic() < deadline:
            assert proc.poll() is None, Path(log.name).read_text()
            match = re.search(r"^\s+API token\s+(\S+)$", Path(log.name).read_text(), re.MULTILINE)
            token = match.group(1) if match else None
            time.sleep(0.2)
        assert token, "the demo prints an API token"
        wait_for_port("127.0.0.1", port, timeout=30)
        items: list[dict[str, object]] = []
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                resp = client.get("/api/v1/receipts")
                assert resp.status_code == 200, resp.text
                items = resp.json()["items"]
                if len(items) == 2 and all(i["image_url"] for i in items):
                    break
                time.sleep(0.5)
        assert len(items) == 2, Path(log.name).read_text()[-3000:]
        # The dashboard: sign in as the demo owner the demo printed, see both receipts.
        text = Path(log.name).read_text()
        email = re.search(r"^\s+sign in as\s+(\S+)$", text, re.MULTILINE)
        password = re.search(r"^\s+password\s+(\S+)$", text, re.MULTILINE)
        assert email
        assert password
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True) as browser:
            login = browser.get("/")
            assert "Sign in" in login.text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert csrf
            listing = browser.post(
                "/app/login",
                data={
                    "csrf_token": csrf.group(1),
                    "next": "/app/receipts",
                    "email": email.group(1),
                    "password": password.group(1),
                },
            )
            assert listing.status_code == 200
            for item in items:
                assert f"/app/receipts/{item['id']}" in listing.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
