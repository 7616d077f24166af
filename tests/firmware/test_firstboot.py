"""First boot against a real HTTPS server that redeems codes with the provisioning core."""

from __future__ import annotations

import json
import ssl
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edge_agent.config import load_config
from firmware.firstboot import EXIT_REFUSED, run
from provisioning.bootconfig import BootConfig, write_boot_folder
from provisioning.ca import CertificateAuthority
from provisioning.claims import ClaimError, ClaimService, MemoryClaimStore
from provisioning.credentials import new_device_account
from provisioning.mosquitto import verify_password


@pytest.fixture
def server(tmp_path: Path):
    """The claim endpoint as the server will serve it, over TLS with the deployment's CA."""
    ca = CertificateAuthority.create("test CA")
    server_cert = ca.issue_server(["localhost"])
    server_cert.save(tmp_path / "srv.pem", tmp_path / "srv.key")
    claims = ClaimService(MemoryClaimStore())
    accounts = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                claims.redeem(body["claim_code"], body["device_id"])
            except ClaimError as exc:
                self._reply(409, {"code": exc.code, "detail": str(exc)})
                return
            account, creds = new_device_account(body["device_id"])
            accounts[creds.username] = account
            cert = ca.sign_device_csr(body["device_id"], body["csr_pem"].encode())
            self._reply(
                200,
                {
                    "device_id": creds.username,
                    "username": creds.username,
                    "password": creds.password,
                    "certificate_pem": cert.cert_pem.decode(),
                },
            )

        def _reply(self, status: int, payload: dict[str, object]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "srv.pem", tmp_path / "srv.key")
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"https://localhost:{httpd.server_address[1]}"
    yield ca, claims, accounts, url
    httpd.shutdown()
    httpd.server_close()


def _boot_folder(tmp_path: Path, ca, url: str, code: str, name: str = "boot") -> Path:
    boot = tmp_path / name
    write_boot_folder(
        boot,
        BootConfig(
            device_id="scanner-01",
            broker_host="broker.example.com",
            ca_cert_pem=ca.cert_pem,
            server_url=url,
            claim_code=code,
            source={"type": "folder", "path": "inbox"},
        ),
    )
    return boot


def test_first_boot_claims_and_installs_credentials(server, tmp_path: Path) -> None:
    ca, claims, accounts, url = server
    code = claims.create("org-1").code
    boot, data = _boot_folder(tmp_path, ca, url, code), tmp_path / "data"
    assert run(boot, data) == 0
    config = load_config(data / "agent.yaml")
    assert config.broker.username == "scanner-01"
    password = config.broker.password()
    assert password and verify_password(password, accounts["scanner-01"].password_hash)
    assert config.broker.tls is not None and config.broker.tls.cert_file is not None
    assert ca.device_id_of(config.broker.tls.cert_file.read_bytes()) == "scanner-01"
    assert stat.S_IMODE((data / "device.key").stat().st_mode) == 0o600
    assert list(boot.iterdir()) == []  # no secret left on the boot partition
    assert not (data / "claim.json").exists()


def test_a_used_code_is_refused_without_retry(server, tmp_path: Path) -> None:
    ca, claims, _accounts, url = server
    code = claims.create("org-1").code
    assert run(_boot_folder(tmp_path, ca, url, code, "one"), tmp_path / "d1") == 0
    again = _boot_folder(tmp_path, ca, url, code, "two")
    assert run(again, tmp_path / "d2") == EXIT_REFUSED
    assert (again / "agent.yaml").exists()  # kept, so the operator sees what was tried


def test_unreachable_server_is_a_retryable_failure(tmp_path: Path) -> None:
    ca = CertificateAuthority.create("test CA")
    from provisioning.claims import generate_code
    from tests.conftest import free_tcp_port

    boot = _boot_folder(tmp_path, ca, f"https://localhost:{free_tcp_port()}", generate_code())
    assert run(boot, tmp_path / "data") == 1
    assert (boot / "claim.json").exists()
