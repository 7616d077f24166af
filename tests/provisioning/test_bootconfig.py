"""Boot folders for SD cards, validated by the agent's own config loader."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from edge_agent.config import load_config
from provisioning.bootconfig import (
    BootConfig,
    BootConfigError,
    install_credentials,
    write_boot_folder,
)
from provisioning.ca import CertificateAuthority
from provisioning.claims import generate_code
from provisioning.credentials import new_device_account


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("test CA")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_credentials_mode_writes_a_config_the_agent_loads(ca, tmp_path: Path) -> None:
    _, creds = new_device_account("scanner-01")
    cert = ca.issue_device("scanner-01")
    boot = BootConfig(
        device_id="scanner-01",
        broker_host="broker.example.com",
        ca_cert_pem=ca.cert_pem,
        credentials=creds,
        client_cert_pem=cert.cert_pem,
        client_key_pem=cert.key_pem,
        agent={"telemetry": {"interval_s": 30}, "upload_images": False},
    )
    folder = tmp_path / "bootfs" / "receipts"
    written = write_boot_folder(folder, boot)
    assert {p.name for p in written} == {
        "ca.pem",
        "broker-password",
        "device.pem",
        "device.key",
        "agent.yaml",
    }
    assert _mode(folder / "device.key") == 0o600
    assert _mode(folder / "broker-password") == 0o600
    config = load_config(folder / "agent.yaml")
    assert config.device_id == "scanner-01"
    assert config.broker.host == "broker.example.com"
    assert config.broker.port == 8883
    assert config.broker.username == "scanner-01"
    assert config.broker.password() == creds.password
    assert config.broker.tls is not None
    assert config.broker.tls.ca_file == folder / "ca.pem"
    assert config.broker.tls.cert_file == folder / "device.pem"
    assert config.source.type == "picamera2"
    assert config.telemetry.interval_s == 30
    assert config.upload_images is False
    assert creds.password not in (folder / "agent.yaml").read_text()


def test_claim_mode_then_install_credentials(ca, tmp_path: Path) -> None:
    code = generate_code()
    boot = BootConfig(
        device_id="scanner-02",
        broker_host="10.0.0.5",
        ca_cert_pem=ca.cert_pem,
        server_url="https://receipts.example.com",
        claim_code=code.lower(),
        source={"type": "folder", "path": "inbox"},
    )
    write_boot_folder(tmp_path, boot)
    claim = json.loads((tmp_path / "claim.json").read_text())
    assert claim == {
        "server_url": "https://receipts.example.com",
        "claim_code": code.replace("-", ""),
        "device_id": "scanner-02",
    }
    before = load_config(tmp_path / "agent.yaml")
    assert before.broker.username is None
    # ... first boot redeems the code, the server answers with credentials:
    _, creds = new_device_account("scanner-02")
    cert = ca.issue_device("scanner-02")
    install_credentials(tmp_path, creds, cert.cert_pem, cert.key_pem)
    after = load_config(tmp_path / "agent.yaml")
    assert after.broker.password() == creds.password
    assert after.broker.tls is not None and after.broker.tls.key_file == tmp_path / "device.key"
    assert not (tmp_path / "claim.json").exists()


def test_credentials_for_another_device_are_refused(tmp_path: Path) -> None:
    _, creds = new_device_account("scanner-09")
    with pytest.raises(BootConfigError, match="not for device"):
        write_boot_folder(tmp_path, BootConfig("scanner-01", "h", credentials=creds))
    boot = BootConfig("scanner-01", "h", server_url="https://x", claim_code=generate_code())
    write_boot_folder(tmp_path, boot)
    with pytest.raises(BootConfigError, match="for 'scanner-01'"):
        install_credentials(tmp_path, creds)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "either a claim code or"),
        ({"claim_code": "ABCD"}, "https://"),
        ({"claim_code": "ABCD", "server_url": "https://x"}, "claim code:"),
        ({"claim_code": generate_code(), "server_url": "http://x"}, "https://"),
        (
            {"claim_code": generate_code(), "server_url": "https://x", "agent": {"broker": {}}},
            "through BootConfig",
        ),
    ],
)
def test_bad_boot_configs_say_what_to_change(tmp_path: Path, kwargs, message: str) -> None:
    with pytest.raises(BootConfigError, match=message):
        write_boot_folder(tmp_path, BootConfig("scanner-01", "h", **kwargs))


def test_invalid_agent_settings_are_caught_by_the_agents_parser(tmp_path: Path) -> None:
    boot = BootConfig(
        "scanner-01",
        "h",
        server_url="https://x",
        claim_code=generate_code(),
        agent={"telemetry": {"interval_s": 0}, "no_such_key": 1},
    )
    with pytest.raises(BootConfigError) as err:
        write_boot_folder(tmp_path, boot)
    assert "telemetry.interval_s" in str(err.value)
    assert "no_such_key: unknown key" in str(err.value)
    assert not (tmp_path / "agent.yaml").exists()


def test_written_yaml_is_plain_and_commented(tmp_path: Path) -> None:
    boot = BootConfig("scanner-01", "h", server_url="https://x", claim_code=generate_code())
    write_boot_folder(tmp_path, boot)
    text = (tmp_path / "agent.yaml").read_text()
    assert text.startswith("# Written by provisioning.bootconfig")
    assert yaml.safe_load(text)["broker"] == {"host": "h", "port": 8883, "tls": {}}
