"""The certificate authority: certificates OpenSSL accepts, key modes, CSR, revocation."""

from __future__ import annotations

import datetime as dt
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.ca import CaError, CertificateAuthority, Revocation


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("test CA")


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("openssl")
    assert binary, "openssl is needed to cross-check certificates"
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False)


def test_save_and_load_round_trip_with_private_key_mode(ca, tmp_path: Path) -> None:
    ca.save(tmp_path)
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    loaded = CertificateAuthority.load(tmp_path)
    assert loaded.cert_pem == ca.cert_pem
    device = loaded.issue_device("scanner-01")
    assert ca.device_id_of(device.cert_pem) == "scanner-01"


def test_load_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaError, match=r"ca\.pem is missing"):
        CertificateAuthority.load(tmp_path)


def test_mismatched_key_is_refused(ca, tmp_path: Path) -> None:
    ca.save(tmp_path)
    CertificateAuthority.create("other").save(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "ca.key", tmp_path / "ca.key")
    with pytest.raises(CaError, match="do not belong together"):
        CertificateAuthority.load(tmp_path)


def test_openssl_verifies_server_and_device_certificates(ca, tmp_path: Path) -> None:
    ca.save(tmp_path)
    server = ca.issue_server(["broker.example.com", "127.0.0.1"])
    server.save(tmp_path / "server.pem", tmp_path / "server.key")
    assert stat.S_IMODE((tmp_path / "server.key").stat().st_mode) == 0o600
    device = ca.issue_device("scanner-01")
    device.save(tmp_path / "dev.pem", tmp_path / "dev.key")
    ok = _openssl(
        "verify",
        "-CAfile",
        str(tmp_path / "ca.pem"),
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "broker.example.com",
        str(tmp_path / "server.pem"),
    )
    assert ok.returncode == 0, ok.stderr
    ip = _openssl(
        "verify",
        "-CAfile",
        str(tmp_path / "ca.pem"),
        "-verify_ip",
        "127.0.0.1",
        str(tmp_path / "server.pem"),
    )
    assert ip.returncode == 0, ip.stderr
    wrong_host = _openssl(
        "verify",
        "-CAfile",
        str(tmp_path / "ca.pem"),
        "-verify_hostname",
        "evil.example.com",
        str(tmp_path / "server.pem"),
    )
    assert wrong_host.returncode != 0
    client = _openssl(
        "verify",
        "-CAfile",
        str(tmp_path / "ca.pem"),
        "-purpose",
        "sslclient",
        str(tmp_path / "dev.pem"),
    )
    assert client.returncode == 0, client.stderr
    as_server = _openssl(
        "verify",
        "-CAfile",
        str(tmp_path / "ca.pem"),
        "-purpose",
        "sslserver",
        str(tmp_path / "dev.pem"),
    )
    assert as_server.returncode != 0  # a device certificate can't impersonate the broker


def test_device_certificate_subject_and_usage(ca) -> None:
    cert = ca.issue_device("scanner-07").certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "scanner-07"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


@pytest.mark.parametrize("bad", ["", "a/b", "scanner 1", "+", "#", "x" * 65])
def test_invalid_device_ids_are_refused(ca, bad: str) -> None:
    with pytest.raises(CaError, match="invalid device id"):
        ca.issue_device(bad)


def test_invalid_server_names_are_refused(ca) -> None:
    with pytest.raises(CaError, match="at least one"):
        ca.issue_server([])
    with pytest.raises(CaError, match="invalid host name"):
        ca.issue_server(["bad host"])


def test_csr_is_signed_with_the_device_id_not_the_requested_subject(ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "_ingest")]))
        .sign(key, hashes.SHA256())
    )
    issued = ca.sign_device_csr("scanner-02", csr.public_bytes(serialization.Encoding.PEM))
    assert ca.device_id_of(issued.cert_pem) == "scanner-02"
    assert issued.certificate.public_key().public_numbers() == key.public_key().public_numbers()
    with pytest.raises(CaError, match="key stays on the device"):
        _ = issued.key_pem
    with pytest.raises(CaError, match="not a valid PEM CSR"):
        ca.sign_device_csr("scanner-02", b"garbage")


def test_device_id_of_refuses_foreign_and_expired_certificates(ca) -> None:
    other = CertificateAuthority.create("other")
    with pytest.raises(CaError, match="not issued by this CA"):
        ca.device_id_of(other.issue_device("scanner-01").cert_pem)
    cert = ca.issue_device("scanner-01", days=1).cert_pem
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    with pytest.raises(CaError, match="not valid at"):
        ca.device_id_of(cert, at=later)


def test_crl_lists_revoked_serials_and_openssl_rejects_them(ca, tmp_path: Path) -> None:
    ca.save(tmp_path)
    revoked, kept = ca.issue_device("gone"), ca.issue_device("kept")
    revoked.save(tmp_path / "gone.pem")
    kept.save(tmp_path / "kept.pem")
    now = dt.datetime.now(dt.UTC)
    pem = ca.build_crl([Revocation(revoked.serial, now)])
    crl = x509.load_pem_x509_crl(pem)
    assert crl.is_signature_valid(ca.certificate.public_key())
    assert crl.get_revoked_certificate_by_serial_number(revoked.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(kept.serial) is None
    (tmp_path / "crl.pem").write_bytes(pem)
    args = [
        "verify",
        "-crl_check",
        "-CAfile",
        str(tmp_path / "ca.pem"),
        "-CRLfile",
        str(tmp_path / "crl.pem"),
    ]
    assert _openssl(*args, str(tmp_path / "kept.pem")).returncode == 0
    gone = _openssl(*args, str(tmp_path / "gone.pem"))
    assert gone.returncode != 0 and "revoked" in (gone.stdout + gone.stderr)
