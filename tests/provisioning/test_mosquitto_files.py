"""Mosquitto's password hash (against the real mosquitto_passwd), password file and ACL text."""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from provisioning.credentials import (
    BrokerAccount,
    DeviceCredentials,
    Role,
    new_device_account,
    new_ingest_account,
)
from provisioning.mosquitto import (
    BrokerAuth,
    MosquittoError,
    hash_password,
    render_acl,
    render_password_file,
    verify_password,
)


def _mosquitto_passwd(path: Path, user: str, password: str) -> str:
    binary = shutil.which("mosquitto_passwd")
    assert binary, "mosquitto_passwd (Debian package mosquitto) is needed"
    subprocess.run([binary, "-b", "-c", str(path), user, password], check=True)
    line = path.read_text().strip()
    name, _, hashed = line.partition(":")
    assert name == user
    return hashed


@pytest.mark.parametrize("password", ["secret", "pässwörd ✓", "x" * 200, "a:b$c"])
def test_hash_matches_mosquitto_passwd_exactly(tmp_path: Path, password: str) -> None:
    theirs = _mosquitto_passwd(tmp_path / "pw", "dev", password)
    _, seven, iterations, salt, _digest = theirs.split("$")
    assert seven == "7"
    ours = hash_password(password, salt=base64.b64decode(salt), iterations=int(iterations))
    assert ours == theirs
    assert verify_password(password, theirs)
    assert not verify_password(password + "x", theirs)


def test_our_hash_has_mosquitto_passwd_shape_and_fresh_salt() -> None:
    a, b = hash_password("secret"), hash_password("secret")
    assert a != b
    parts = a.split("$")
    assert parts[:3] == ["", "7", "101"]
    assert len(base64.b64decode(parts[3])) == 12
    assert len(base64.b64decode(parts[4])) == 64
    assert verify_password("secret", a)


def test_bad_hash_and_empty_password_are_clear_errors() -> None:
    with pytest.raises(MosquittoError, match="not a Mosquitto"):
        verify_password("x", "$6$abc$def")
    with pytest.raises(MosquittoError, match="empty"):
        hash_password("")


def test_password_file_is_sorted_and_refuses_duplicates() -> None:
    b, _ = new_device_account("dev-b")
    a, _ = new_device_account("dev-a")
    text = render_password_file([b, a])
    assert [line.split(":")[0] for line in text.splitlines()] == ["dev-a", "dev-b"]
    with pytest.raises(MosquittoError, match="appears twice"):
        render_password_file([a, a])


def test_acl_gives_devices_only_protocol_topics_and_ingest_its_own_rules() -> None:
    ingest, _ = new_ingest_account()
    acl = render_acl([ingest])
    rules = [line for line in acl.splitlines() if line and not line.startswith("#")]
    assert "pattern write rm/v1/dev/%u/receipt" in rules
    assert "pattern read rm/v1/dev/%u/cmd/+" in rules
    assert not any(line.endswith("#") for line in rules)  # no wildcard subtree for anyone
    assert "user _ingest" in rules
    assert "topic write rm/v1/dev/+/config/desired" in rules
    assert "topic read rm/v1/dev/+/telemetry" in rules


def test_accounts_validate_usernames_and_hashes() -> None:
    with pytest.raises(ValueError, match="invalid device id"):
        BrokerAccount("dev/a", hash_password("x"), Role.DEVICE)
    with pytest.raises(ValueError, match="service username"):
        BrokerAccount("ingest", hash_password("x"), Role.INGEST)  # could be a device id
    with pytest.raises(ValueError, match=r"\$7\$"):
        BrokerAccount("dev-a", "plaintext", Role.DEVICE)


def test_credentials_never_show_the_password_in_repr() -> None:
    account, creds = new_device_account("dev-a")
    assert creds.password not in repr(creds)
    assert verify_password(creds.password, account.password_hash)
    assert len(creds.password) >= 40
    assert isinstance(creds, DeviceCredentials)


def test_broker_auth_writes_files_with_mode(tmp_path: Path) -> None:
    a, _ = new_device_account("dev-a")
    auth = BrokerAuth(tmp_path / "auth", file_mode=0o600)
    auth.apply([a])
    assert stat.S_IMODE(auth.password_file.stat().st_mode) == 0o600
    assert auth.password_file.read_text().startswith("dev-a:$7$")
    assert f"acl_file {auth.acl_file}" in auth.config_lines()
    with pytest.raises(MosquittoError, match="not a PEM"):
        auth.apply([a], crl_pem=b"nope")
