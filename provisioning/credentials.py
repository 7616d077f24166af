"""Broker accounts: a random password per scanner, stored only as Mosquitto's hash.

The registry (the server's database) keeps a `BrokerAccount` per device and per server
service; the plaintext password exists once, in the `DeviceCredentials` handed to the scanner
at enrolment (claim) or rotation, and is never stored. Device usernames are the device ids
(the ACL pattern ``rm/v1/dev/%u/#`` relies on it); service usernames start with ``_`` so that
no device id can ever equal one.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from models.protocol import validate_device_id
from provisioning.mosquitto import hash_password

#: 32 random bytes, URL-safe base64: 43 characters, no ':' (the password file's separator).
PASSWORD_BYTES = 32
INGEST_USERNAME = "_ingest"

_SERVICE_NAME = re.compile(r"^_[a-z0-9][a-z0-9-]{0,62}$")


class Role(StrEnum):
    """What an account may do at the broker (see `provisioning.mosquitto.render_acl`)."""

    DEVICE = "device"  # its own rm/v1/dev/{id}/ subtree only
    INGEST = "ingest"  # reads every device's uplink, writes config/desired and cmd/+


@dataclass(frozen=True)
class BrokerAccount:
    """What the registry stores for one broker user: no plaintext."""

    username: str
    password_hash: str
    role: Role

    def __post_init__(self) -> None:
        if self.role is Role.DEVICE:
            validate_device_id(self.username)
        elif not _SERVICE_NAME.match(self.username):
            raise ValueError(
                f"invalid service username {self.username!r}: use '_' then lower-case letters, "
                "digits or '-' (a leading '_' keeps it apart from device ids)"
            )
        if not self.password_hash.startswith("$7$"):
            raise ValueError(
                f"account {self.username!r}: password_hash must be a Mosquitto '$7$' PBKDF2 hash"
            )


@dataclass(frozen=True)
class DeviceCredentials:
    """The plaintext given to a scanner once; write it to its password file and forget it."""

    username: str
    password: str

    def __repr__(self) -> str:  # keep passwords out of logs and tracebacks
        return f"DeviceCredentials(username={self.username!r}, password='***')"


def generate_password() -> str:
    """A fresh random broker password (256 bits)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def new_account(username: str, role: Role) -> tuple[BrokerAccount, DeviceCredentials]:
    """A new account with a random password: store the first, hand out the second."""
    password = generate_password()
    account = BrokerAccount(username=username, password_hash=hash_password(password), role=role)
    return account, DeviceCredentials(username=username, password=password)


def new_device_account(device_id: str) -> tuple[BrokerAccount, DeviceCredentials]:
    """Enrol or rotate a scanner: its username is its device id."""
    return new_account(validate_device_id(device_id), Role.DEVICE)


def new_ingest_account(username: str = INGEST_USERNAME) -> tuple[BrokerAccount, DeviceCredentials]:
    """The server's ingest/fleet service account."""
    return new_account(username, Role.INGEST)
