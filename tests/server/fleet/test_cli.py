"""`receipts provision` end to end on SQLite: CA, claim codes with QR, boot folders, devices,
rotation and revocation mirrored into the broker's files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from models.cli import main
from provisioning import bootconfig as bc
from provisioning.claims import normalize_code
from provisioning.mosquitto import verify_password


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RM_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("RM_FLEET__CA_DIR", str(tmp_path / "ca"))
    monkeypatch.setenv("RM_FLEET__BROKER_AUTH_DIR", str(tmp_path / "auth"))
    runner = CliRunner()

    def _run(*args: str, ok: bool = True):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return _run


def test_provisioning_commands(run, tmp_path: Path):
    run("provision", "init-ca")
    assert "already holds a CA" in run("provision", "init-ca", ok=False).output
    run("admin", "create-org", "Acme")

    out = run("provision", "claim-code", "Acme", "--ttl", "2h", "--qr", str(tmp_path / "c.png"))
    code = out.stdout.strip().splitlines()[0]
    assert normalize_code(code)
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run("provision", "claim-code", "Nope", ok=False).exit_code == 1
    assert run("provision", "claim-code", "Acme", "--ttl", "soon", ok=False).exit_code == 2

    service = run("provision", "service-account").stdout.strip()
    passwords = (tmp_path / "auth" / "passwords").read_text()
    assert passwords.startswith("_ingest:") and service not in passwords
    assert verify_password(service, passwords.split(":", 1)[1].strip())

    claim = tmp_path / "boot-claim"
    run(
        "provision",
        "boot-folder",
        str(claim),
        "--device-id",
        "till-1",
        "--org",
        "Acme",
        "--broker-host",
        "mqtt.example",
        "--server-url",
        "https://api.example",
    )
    assert sorted(p.name for p in claim.iterdir()) == ["agent.yaml", "ca.pem", "claim.json"]

    run("admin", "add-device", "Acme", "till-2")
    creds = tmp_path / "boot-creds"
    run(
        "provision",
        "boot-folder",
        str(creds),
        "--device-id",
        "till-2",
        "--credentials",
        "--broker-host",
        "mqtt.example",
    )
    agent = yaml.safe_load((creds / bc.AGENT_FILE).read_text())
    assert agent["broker"]["username"] == "till-2"
    assert (creds / bc.KEY_FILE).exists() and (creds / bc.CERT_FILE).exists()
    password = (creds / bc.PASSWORD_FILE).read_text().strip()
    assert "till-2:" in (tmp_path / "auth" / "passwords").read_text()

    listed = run("provision", "list-devices").stdout
    assert "till-2" in listed and "account=active" in listed

    rotated = run("provision", "rotate", "till-2").stdout.strip()
    assert rotated != password
    line = next(
        x
        for x in (tmp_path / "auth" / "passwords").read_text().splitlines()
        if x.startswith("till-2:")
    )
    assert verify_password(rotated, line.split(":", 1)[1])

    run("provision", "revoke", "till-2")
    assert "till-2:" not in (tmp_path / "auth" / "passwords").read_text()
    assert (tmp_path / "auth" / "crl.pem").read_bytes().startswith(b"-----BEGIN X509 CRL-----")
    assert "revoked" in run("provision", "list-devices", "--org", "Acme").stdout
    assert "already up to date" in run("provision", "sync-broker").stdout
    assert "no device" in run("provision", "revoke", "till-9", ok=False).output
    assert "0 devices brought up to date" in run("provision", "republish").stdout
