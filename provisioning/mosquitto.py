"""Mosquitto authorisation from the registry: password file, pattern ACL, TLS listener, reload.

- `hash_password` writes the ``$7$`` PBKDF2-SHA512 format of ``mosquitto_passwd`` (Mosquitto
  2.x): ``$7$<iterations>$<base64 salt, 12 bytes>$<base64 hash, 64 bytes>``.
- `render_acl` gives every device, by the pattern ``rm/v1/dev/%u/...``, exactly the topics of
  protocol v1 in its own subtree, and the ingest service read on every device's uplink and
  write on ``config/desired``, ``cmd/+`` and ``ack``. Nobody gets anything else.
- `BrokerAuth.apply(accounts)` writes both files atomically and asks the broker to reload
  (SIGHUP through a `Reloader`). Revoking a device = applying the accounts without it.

Measured on Mosquitto 2.0 (tests/provisioning/test_broker.py): on SIGHUP the broker re-reads the
password file and ACL and *disconnects* every connected client whose username/password no
longer checks, so a revoked device is cut off at once, and its reconnects are refused. A device
that authenticates by certificate alone (``use_identity_as_username``) is not re-checked that
way; this deployment therefore always requires the password, with the client certificate as a
second factor on the TLS listener (`render_tls_listener`). The listener's CRL is re-read on
SIGHUP too: new TLS connections with a revoked certificate are refused from the reload on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from provisioning.credentials import BrokerAccount

log = logging.getLogger(__name__)

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default
SALT_BYTES = 12
HASH_BYTES = 64

PASSWORD_FILE = "passwords"  # noqa: S105  (a file name)
ACL_FILE = "acl"
CRL_FILE = "crl.pem"

#: What a device may publish under rm/v1/dev/{its id}/ (protocol v1).
DEVICE_PUBLISH = ("receipt", "image/+", "status", "telemetry", "config/reported", "cmd/+/result")
#: What a device may subscribe to (and receive) under its own subtree.
DEVICE_SUBSCRIBE = ("config/desired", "cmd/+", "ack")

_ROOT = "rm/v1/dev"


class MosquittoError(ValueError):
    """Bad input for a Mosquitto file, or a reload that failed; the message says which."""


# --------------------------------------------------------------------------- hashing


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """Mosquitto's ``$7$`` PBKDF2-SHA512 hash of `password` (as ``mosquitto_passwd`` writes)."""
    if not password:
        raise MosquittoError("the password is empty")
    if iterations < 1:
        raise MosquittoError(f"iterations must be at least 1 (got {iterations})")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches a ``$7$`` hash (constant-time comparison)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "7":
        raise MosquittoError("not a Mosquitto '$7$' PBKDF2-SHA512 hash")
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError as exc:
        raise MosquittoError(f"malformed '$7$' hash: {exc}") from exc
    got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, len(expected))
    return hmac.compare_digest(got, expected)


# --------------------------------------------------------------------------- files


def _check_username(username: str) -> None:
    bad = {":", "\n", "\r", "\0", "+", "#", "/"}
    if not username or any(c in bad for c in username) or username != username.strip():
        raise MosquittoError(
            f"username {username!r} can't be used with Mosquitto files: "
            "no ':', '+', '#', '/', line breaks or surrounding spaces"
        )


def render_password_file(accounts: Iterable[BrokerAccount]) -> str:
    """The password file: one ``username:$7$...`` line per account, sorted, no duplicates."""
    lines: dict[str, str] = {}
    for account in accounts:
        _check_username(account.username)
        if account.username in lines:
            raise MosquittoError(f"username {account.username!r} appears twice")
        lines[account.username] = f"{account.username}:{account.password_hash}"
    return "".join(lines[name] + "\n" for name in sorted(lines))


def render_acl(accounts: Iterable[BrokerAccount]) -> str:
    """The ACL file: device patterns for everyone, then each service account's own rules."""
    from provisioning.credentials import Role

    out = [
        "# Generated by provisioning.mosquitto: do not edit, regenerate from the registry.",
        "# Devices: only their own subtree, only the topics of protocol v1.",
    ]
    out += [f"pattern write {_ROOT}/%u/{leaf}" for leaf in DEVICE_PUBLISH]
    out += [f"pattern read {_ROOT}/%u/{leaf}" for leaf in DEVICE_SUBSCRIBE]
    for account in sorted(accounts, key=lambda a: a.username):
        _check_username(account.username)
        if account.role is Role.INGEST:
            out += ["", f"user {account.username}"]
            out += [f"topic read {_ROOT}/+/{leaf}" for leaf in DEVICE_PUBLISH]
            out += [f"topic write {_ROOT}/+/{leaf}" for leaf in DEVICE_SUBSCRIBE]
    return "\n".join(out) + "\n"


def render_tls_listener(
    *,
    port: int,
    ca_file: Path,
    cert_file: Path,
    key_file: Path,
    crl_file: Path | None = None,
    require_certificate: bool = True,
    bind_address: str | None = None,
) -> list[str]:
    """mosquitto.conf lines for a TLS listener with the deployment's CA.

    With `require_certificate`, a client must present a certificate the CA signed *and* its
    username/password (the password file is what revocation edits; see the module doc).
    """
    if not 1 <= port <= 65535:
        raise MosquittoError(f"port must be 1-65535 (got {port})")
    lines = [
        f"listener {port}" + (f" {bind_address}" if bind_address else ""),
        f"cafile {ca_file}",
        f"certfile {cert_file}",
        f"keyfile {key_file}",
        "tls_version tlsv1.2",
        f"require_certificate {'true' if require_certificate else 'false'}",
    ]
    if crl_file is not None:
        lines.append(f"crlfile {crl_file}")
    return lines


def _write_atomic(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


# --------------------------------------------------------------------------- reload


class Reloader(Protocol):
    """Asks the running broker to re-read its password file and ACL."""

    def reload(self) -> None: ...


@dataclass(frozen=True)
class SignalReloader:
    """SIGHUP to the broker's process: its pid, or the pid file mosquitto writes (pid_file)."""

    pid: int | None = None
    pid_file: Path | None = None

    def reload(self) -> None:
        pid = self.pid
        if pid is None:
            if self.pid_file is None:
                raise MosquittoError("SignalReloader needs a pid or a pid_file")
            try:
                pid = int(self.pid_file.read_text().strip())
            except (OSError, ValueError) as exc:
                raise MosquittoError(
                    f"cannot read the broker's pid from {self.pid_file}: {exc}"
                ) from exc
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as exc:
            raise MosquittoError(f"cannot signal the broker (pid {pid}): {exc}") from exc


@dataclass(frozen=True)
class CommandReloader:
    """Runs a command, e.g. ``systemctl reload mosquitto`` or ``docker kill -s HUP mosquitto``."""

    argv: Sequence[str]

    def reload(self) -> None:
        try:
            subprocess.run(list(self.argv), check=True, capture_output=True, timeout=30)  # noqa: S603
        except (OSError, subprocess.SubprocessError) as exc:
            raise MosquittoError(f"broker reload command {list(self.argv)} failed: {exc}") from exc


@dataclass(frozen=True)
class BrokerAuth:
    """The broker's auth files in `directory`, regenerated from the registry on every change."""

    directory: Path
    reloader: Reloader | None = None
    #: mosquitto must be able to read them: 0640 with group mosquitto, or 0600 if same user.
    file_mode: int = 0o640

    @property
    def password_file(self) -> Path:
        return self.directory / PASSWORD_FILE

    @property
    def acl_file(self) -> Path:
        return self.directory / ACL_FILE

    @property
    def crl_file(self) -> Path:
        """Where `apply` writes the CRL; name it in the TLS listener (`render_tls_listener`)."""
        return self.directory / CRL_FILE

    def config_lines(self) -> list[str]:
        """The mosquitto.conf lines that use these files."""
        return [
            "allow_anonymous false",
            f"password_file {self.password_file}",
            f"acl_file {self.acl_file}",
        ]

    def apply(self, accounts: Iterable[BrokerAccount], crl_pem: bytes | None = None) -> None:
        """Write the files (atomically) for exactly `accounts`, then reload the broker.

        To revoke a device, apply the accounts without it (and, if it has a client
        certificate, a CRL naming it: `CertificateAuthority.build_crl`): within the reload
        (milliseconds) the broker disconnects it and refuses it from then on.
        """
        accounts = list(accounts)
        passwords = render_password_file(accounts)
        acl = render_acl(accounts)
        self.directory.mkdir(parents=True, exist_ok=True)
        if crl_pem is not None:
            if b"-----BEGIN X509 CRL-----" not in crl_pem:
                raise MosquittoError("crl_pem is not a PEM certificate revocation list")
            _write_atomic(self.crl_file, crl_pem.decode("ascii"), self.file_mode)
        _write_atomic(self.acl_file, acl, self.file_mode)
        _write_atomic(self.password_file, passwords, self.file_mode)
        log.info("broker auth written: %d accounts in %s", len(accounts), self.directory)
        if self.reloader is not None:
            self.reloader.reload()
            log.info("broker asked to reload its auth files")
