"""OTA end to end: a scanner process on the real pipeline, Mosquitto, a local HTTPS server.

The test plays the server: it publishes ``ota`` commands carrying signed manifests and serves
the artifacts over HTTPS with a certificate of the deployment's CA (provisioning.ca). Receipts
keep arriving in the scanner's folder the whole time. A release signed by another key is
refused, one whose models fail the self-test is rolled back, a good one is tested, put on
probation, and final after two real scans, and every receipt is read and delivered.
"""

from __future__ import annotations

import functools
import http.server
import os
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
import yaml

from edge_agent.ota.slots import SlotStore
from models.protocol import Command, StatusMessage
from provisioning.ca import CertificateAuthority
from provisioning.release import Release, SelfTestCase, build_release
from provisioning.signing import generate_signing_key, public_key_pem
from tests.edge_agent.fleethelpers import DEVICE, Server
from tests.edge_agent.test_agent import ROOT
from tests.models.synthetic import render_receipt

EXPECT = {"total": "14.64", "date": "2024-03-14"}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """An HTTPS file server on loopback: (base URL, folder it serves, CA file)."""
    ca = CertificateAuthority.create()
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    issued = ca.issue_server(["127.0.0.1"])
    issued.save(tmp_path / "server.pem", tmp_path / "server.key")
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/", folder, tmp_path / "ca.pem"
    httpd.shutdown()
    httpd.server_close()


def release(tmp: Path, www: Path, key, name: str, pipeline: str, samples: int = 1) -> Release:
    """A models release of `pipeline` whose self-test reads `samples` synthetic receipts."""
    src = tmp / "src" / name
    (src / "selftest").mkdir(parents=True)
    (src / "pipeline.yaml").write_text(pipeline)
    cases = []
    for i in range(1, samples + 1):
        assert cv2.imwrite(str(src / "selftest" / f"r{i}.png"), render_receipt())
        cases.append(SelfTestCase(image=f"selftest/r{i}.png", expect=EXPECT))
    return build_release(
        src, www / f"{name}.tar.gz", release=name, kind="models", selftest=cases, key=key
    )


class Feeder:
    """Puts receipts r0.jpg, r1.jpg... into the scanner's folder until stopped: one every
    `every_s` seconds, or with `backlog` whenever fewer than that many wait there (so the
    scanner is never idle, however fast or slow it reads)."""

    def __init__(self, inbox: Path, every_s: float = 1.5, backlog: int | None = None) -> None:
        self.inbox, self.every_s, self.backlog, self.count = inbox, every_s, backlog, 0
        self._stop = threading.Event()
        _, data = cv2.imencode(".jpg", render_receipt())
        self._data = data.tobytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.backlog is None or len(list(self.inbox.glob("r*.jpg"))) < self.backlog:
                tmp = self.inbox / f".r{self.count}.jpg"
                tmp.write_bytes(self._data)
                tmp.rename(self.inbox / f"r{self.count}.jpg")
                self.count += 1
            self._stop.wait(self.every_s if self.backlog is None else 0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.count


def ota(server: Server, rel: Release, base: str, **change) -> Command:
    args = rel.ota_args(base + rel.artifact_path.name).model_dump() | change
    return server.command("ota", args)


def test_ota_refuses_rolls_back_and_installs_while_scanning(
    mosquitto, tmp_path: Path, https, server: Server
) -> None:
    base, www, ca_file = https
    key = generate_signing_key()
    (tmp_path / "release-key.pem").write_bytes(public_key_pem(key))
    good = release(tmp_path, www, key, "models-2", "find_receipt: false\nocr: {type: tesseract}\n")
    broken = release(tmp_path, www, key, "models-3", "ocr: {type: tesseract, psm: 10}\n")
    forged = release(tmp_path, www, generate_signing_key(), "models-4", "find_receipt: false\n")

    config = {
        "device_id": DEVICE,
        "broker": {"port": mosquitto.port, "reconnect_min_s": 0.1, "keepalive": 5},
        "source": {"type": "folder", "path": "inbox", "poll_interval_s": 0.1, "settle_s": 0},
        "pipeline": {"find_receipt": False},
        "ota": {
            "dir": "ota",
            "public_keys": ["release-key.pem"],
            "ca_file": str(ca_file),
            "probation_scans": 2,
        },
    }
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "inbox").mkdir()
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "tests/edge_agent/run_agent.py",
                str(tmp_path / "agent.yaml"),
                "--pipeline",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    feeder: Feeder | None = None
    try:
        assert server.sub.wait_for(lambda: bool(server.reported()), 60), log.read_text()
        feeder = Feeder(tmp_path / "inbox")

        # 1. signed by a key the scanner does not trust: refused before any download
        refused = server.final(ota(server, forged, base))
        assert refused.status == "failed" and refused.output["reason"] == "bad_signature"

        # 2. a good signature, but its models read nothing: switched back after the self-test
        bad = ota(server, broken, base)
        rolled = server.final(bad, timeout=120)
        assert rolled.status == "failed", log.read_text()
        assert rolled.output["reason"] == "selftest" and rolled.output["rolled_back"]
        stages = [r.detail for r in server.results(bad) if r.status == "in_progress"]
        assert stages == ["download", "install", "selftest"]
        mismatch = rolled.output["selftest"]["cases"][0]["mismatches"]
        assert mismatch["total"]["expected"] == "14.64"

        # 3. the good release: tested, on probation, final after two real scans
        cmd = ota(server, good, base)
        done = server.final(cmd, timeout=180)
        assert done.status == "succeeded", (done, log.read_text()[-3000:])
        stages = [r.detail for r in server.results(cmd) if r.status == "in_progress"]
        assert stages == ["download", "install", "selftest", "probation"]
        assert done.output["scans_ok"] == 2 and done.output["selftest"]["passed"]

        diag = server.final(server.command("upload_diagnostics", {"log_lines": 0}))
        assert diag.output["releases"] == {"release.models": "models-2"}
        statuses = [StatusMessage.model_validate_json(m.payload) for m in server.sub.on("/status")]
        assert statuses[-1].model_versions["release.models"] == "models-2"
        fed = feeder.stop()
        feeder = None

        # scanning never stopped: every receipt put in the folder was read and delivered
        assert server.sub.wait_for(lambda: len(server.receipts()) == fed, 120), (
            f"{len(server.receipts())} of {fed}"
        )
        assert not list((tmp_path / "inbox" / "failed").glob("*.jpg"))
        totals = {r["receipt"]["fields"].get("total", {}).get("value") for r in server.receipts()}
        assert totals == {"14.64"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if feeder is not None:
            feeder.stop()
        if proc.poll() is None:
            proc.kill()
    store = SlotStore(tmp_path / "ota" / "models")
    current = store.current()
    assert current is not None and store.read_state() is None
    assert store.verify(current, [key.public_key()]).release == "models-2"
