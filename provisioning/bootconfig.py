"""A scanner's boot folder: what an operator writes onto its SD card before the first boot.

`write_boot_folder(folder, boot)` writes, into e.g. ``/media/$USER/bootfs/receipts/``:

- ``agent.yaml``: the agent's config (keys of edge_agent/agent.example.yaml), validated with
  `edge_agent.config.parse_config` before anything is written; paths in it are relative, so
  the folder works wherever first boot copies it (``/var/lib/receipts`` on the data partition);
- ``ca.pem``: the deployment's CA, to verify the broker (and the HTTPS server);
- either ``claim.json`` (server URL + one-time claim code: first boot exchanges it for
  credentials, then calls `install_credentials`), or the credentials themselves:
  ``broker-password`` and, with a client certificate, ``device.pem`` + ``device.key`` (0600).

A boot partition is FAT: file modes don't survive there, which is why first boot moves the
folder to the data partition and deletes the secrets from the card's boot partition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models.protocol import validate_device_id
from provisioning.ca import write_private, write_public
from provisioning.claims import normalize_code
from provisioning.credentials import DeviceCredentials

AGENT_FILE = "agent.yaml"
CA_FILE = "ca.pem"
CLAIM_FILE = "claim.json"
PASSWORD_FILE = "broker-password"  # noqa: S105  (a file name)
CERT_FILE = "device.pem"
KEY_FILE = "device.key"


class BootConfigError(ValueError):
    """The boot folder can't be written as asked; the message says what to change."""


@dataclass(frozen=True)
class BootConfig:
    """What a scanner needs to know at first boot."""

    device_id: str
    broker_host: str
    broker_port: int = 8883
    ca_cert_pem: bytes | None = None  # None: trust the system CAs (a public broker)
    tls: bool = True
    #: claim mode: the HTTPS base URL of the server and a code from `ClaimService.create`
    server_url: str | None = None
    claim_code: str | None = None
    #: credentials mode: broker password, optionally a client certificate and key
    credentials: DeviceCredentials | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    #: the capture source section (default: the Pi camera)
    source: Mapping[str, Any] = field(default_factory=lambda: {"type": "picamera2"})
    #: other top-level agent settings (trigger, pipeline, outbox, telemetry, upload_images...)
    agent: Mapping[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        try:
            validate_device_id(self.device_id)
        except ValueError as exc:
            raise BootConfigError(str(exc)) from exc
        claim = self.claim_code is not None
        if claim == (self.credentials is not None):
            raise BootConfigError("give either a claim code or the device's credentials")
        if claim and not (self.server_url or "").startswith("https://"):
            raise BootConfigError("claim mode needs server_url, an https:// URL of the server")
        if (self.client_cert_pem is None) != (self.client_key_pem is None):
            raise BootConfigError("give both the client certificate and its key, or neither")
        if self.client_cert_pem is not None and not self.tls:
            raise BootConfigError("a client certificate needs tls=True")
        if self.credentials is not None and self.credentials.username != self.device_id:
            raise BootConfigError(
                f"the credentials are for {self.credentials.username!r}, "
                f"not for device {self.device_id!r}"
            )
        reserved = {"device_id", "broker", "source"} & set(self.agent)
        if reserved:
            raise BootConfigError(f"set {', '.join(sorted(reserved))} through BootConfig fields")


def render_agent_config(boot: BootConfig, *, with_credentials: bool) -> dict[str, Any]:
    """The agent YAML as data; credentials' file names only when `with_credentials`."""
    broker: dict[str, Any] = {"host": boot.broker_host, "port": boot.broker_port}
    if boot.tls:
        tls: dict[str, Any] = {}
        if boot.ca_cert_pem is not None:
            tls["ca_file"] = CA_FILE
        if with_credentials and boot.client_cert_pem is not None:
            tls["cert_file"], tls["key_file"] = CERT_FILE, KEY_FILE
        broker["tls"] = tls
    if with_credentials:
        broker["username"] = boot.device_id
        broker["password_file"] = PASSWORD_FILE
    return {
        "device_id": boot.device_id,
        "broker": broker,
        "source": dict(boot.source),
        **dict(boot.agent),
    }


def validate_agent_config(data: Mapping[str, Any], folder: Path) -> None:
    """Validate with the agent's own parser, as if loaded from `folder`/agent.yaml."""
    from edge_agent.config import ConfigError, parse_config

    try:
        parse_config(dict(data), base_dir=folder, origin=str(folder / AGENT_FILE))
    except ConfigError as exc:
        raise BootConfigError(str(exc)) from exc


def _dump(data: Mapping[str, Any]) -> str:
    header = "# Written by provisioning.bootconfig: the scanner's agent config.\n"
    return header + yaml.safe_dump(dict(data), sort_keys=False)


def write_boot_folder(folder: Path, boot: BootConfig) -> list[Path]:
    """Write the boot folder; returns the files written. Validates before writing the YAML."""
    boot.check()
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if boot.ca_cert_pem is not None:
        if b"-----BEGIN CERTIFICATE-----" not in boot.ca_cert_pem:
            raise BootConfigError("ca_cert_pem is not a PEM certificate")
        write_public(folder / CA_FILE, boot.ca_cert_pem)
        written.append(folder / CA_FILE)
    if boot.claim_code is not None:
        try:
            code = normalize_code(boot.claim_code)
        except ValueError as exc:
            raise BootConfigError(f"claim code: {exc}") from exc
        claim = {"server_url": boot.server_url, "claim_code": code, "device_id": boot.device_id}
        write_private(folder / CLAIM_FILE, (json.dumps(claim, indent=2) + "\n").encode())
        written.append(folder / CLAIM_FILE)
        data = render_agent_config(boot, with_credentials=False)
    else:
        assert boot.credentials is not None
        written += install_credentials(
            folder, boot.credentials, boot.client_cert_pem, boot.client_key_pem, write_yaml=False
        )
        data = render_agent_config(boot, with_credentials=True)
    validate_agent_config(data, folder)
    (folder / AGENT_FILE).write_text(_dump(data), encoding="utf-8")
    written.append(folder / AGENT_FILE)
    return written


def install_credentials(
    folder: Path,
    credentials: DeviceCredentials,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    *,
    write_yaml: bool = True,
) -> list[Path]:
    """Store credentials in a boot folder (after a claim) and point its agent.yaml at them.

    With `write_yaml`, the existing agent.yaml gains ``broker.username``,
    ``broker.password_file`` and, with a certificate, ``broker.tls.cert_file/key_file``; the
    result is validated before it replaces the file, and ``claim.json`` is deleted.
    """
    if (cert_pem is None) != (key_pem is None):
        raise BootConfigError("give both the client certificate and its key, or neither")
    write_private(folder / PASSWORD_FILE, (credentials.password + "\n").encode())
    written = [folder / PASSWORD_FILE]
    if cert_pem is not None and key_pem is not None:
        write_public(folder / CERT_FILE, cert_pem)
        write_private(folder / KEY_FILE, key_pem)
        written += [folder / CERT_FILE, folder / KEY_FILE]
    if not write_yaml:
        return written
    path = folder / AGENT_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BootConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("broker"), dict):
        raise BootConfigError(f"{path} has no broker section")
    if data.get("device_id") != credentials.username:
        raise BootConfigError(
            f"the credentials are for {credentials.username!r}, "
            f"but {path} is for {data.get('device_id')!r}"
        )
    broker = data["broker"]
    broker["username"] = credentials.username
    broker["password_file"] = PASSWORD_FILE
    broker.pop("password_env", None)
    if cert_pem is not None:
        tls = broker.setdefault("tls", {}) or {}
        tls["cert_file"], tls["key_file"] = CERT_FILE, KEY_FILE
        broker["tls"] = tls
    validate_agent_config(data, folder)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(_dump(data), encoding="utf-8")
    tmp.replace(path)
    (folder / CLAIM_FILE).unlink(missing_ok=True)
    return [*written, path]
