"""The deployment's certificate authority: server and device certificates, revocation lists.

One EC P-256 CA per deployment (P-256 is what every TLS stack, Mosquitto/OpenSSL included,
accepts). It signs

- the broker's and the HTTPS server's certificate (`issue_server`: DNS names and IP addresses
  as subject alternative names, extended key usage serverAuth);
- one client certificate per scanner (`issue_device`, or `sign_device_csr` when the scanner
  made its own key): subject CN = the device id, extended key usage clientAuth;
- a certificate revocation list (`build_crl`) from the revocations the server's registry keeps.

The CA never stores state beyond its own key and certificate: issued serials and revocations
belong to the caller's registry. Files are PEM; private keys are written with mode 0600.
Errors are `CaError` with a sentence that says what to do.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from models.protocol import validate_device_id

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"

#: Default lifetimes. Scanners live for years in a shop; rotate their credentials instead.
CA_DAYS = 3650
SERVER_DAYS = 825
DEVICE_DAYS = 3650

_CLOCK_SKEW = dt.timedelta(minutes=5)


class CaError(ValueError):
    """The CA can't do what was asked; the message says why and what to do."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM of a private key."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


def write_public(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a non-secret file atomically (certificates, CRLs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and, when the CA made the key, its private key."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey | None

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        if self.private_key is None:
            raise CaError("this certificate was signed from a CSR: its key stays on the device")
        return key_pem(self.private_key)

    def save(self, cert_path: Path, key_path: Path | None = None) -> None:
        """Write the certificate (0644) and, if given a path, the key (0600)."""
        write_public(cert_path, self.cert_pem)
        if key_path is not None:
            write_private(key_path, self.key_pem)


@dataclass(frozen=True)
class Revocation:
    """One revoked certificate, as the registry stores it."""

    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.cessation_of_operation


class CertificateAuthority:
    """An EC P-256 CA: its key and self-signed certificate."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if certificate.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
            raise CaError("the CA certificate and key do not belong together")
        self.certificate = certificate
        self._key = key

    # ------------------------------------------------------------------ create, load, save

    @classmethod
    def create(cls, name: str = "Receipt Manager CA", days: int = CA_DAYS) -> CertificateAuthority:
        """A new CA with a fresh key, valid for `days`."""
        if not name.strip():
            raise CaError("give the CA a name (its certificate's common name)")
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Load `ca.pem` and `ca.key` from `directory`."""
        cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except FileNotFoundError as exc:
            raise CaError(
                f"no CA in {directory}: {exc.filename} is missing (create one first)"
            ) from exc
        except ValueError as exc:
            raise CaError(f"the CA files in {directory} are not valid PEM: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaError(f"{key_path} is not an EC private key")
        return cls(cert, key)

    def save(self, directory: Path) -> None:
        """Write `ca.pem` (0644) and `ca.key` (0600) into `directory`."""
        write_public(directory / CA_CERT_FILE, self.cert_pem)
        write_private(directory / CA_KEY_FILE, key_pem(self._key))

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    # ------------------------------------------------------------------ issue

    def issue_server(self, hostnames: Sequence[str], days: int = SERVER_DAYS) -> IssuedCertificate:
        """A server certificate for the broker or the HTTPS API; `hostnames` may hold IPs."""
        if not hostnames:
            raise CaError("give at least one host name or IP address for the server certificate")
        names: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                if not host or any(c.isspace() for c in host) or "/" in host:
                    raise CaError(
                        f"invalid host name {host!r} for the server certificate"
                    ) from None
                names.append(x509.DNSName(host))
        key = _new_key()
        cert = self._sign(
            subject_cn=hostnames[0],
            public_key=key.public_key(),
            days=days,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            san=names,
        )
        return IssuedCertificate(cert, key)

    def issue_device(self, device_id: str, days: int = DEVICE_DAYS) -> IssuedCertificate:
        """A client certificate and key for a scanner: CN = `device_id`."""
        key = _new_key()
        cert = self._sign_device(device_id, key.public_key(), days)
        return IssuedCertificate(cert, key)

    def sign_device_csr(
        self, device_id: str, csr_pem: bytes, days: int = DEVICE_DAYS
    ) -> IssuedCertificate:
        """Sign a scanner's own key (its CSR); the subject is set to `device_id` whatever it asked.

        The key never leaves the device. Only EC P-256 keys are accepted.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise CaError(f"the certificate request is not a valid PEM CSR: {exc}") from exc
        if not csr.is_signature_valid:
            raise CaError("the certificate request's signature is invalid")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise CaError("the certificate request must carry an EC P-256 key")
        return IssuedCertificate(self._sign_device(device_id, public_key, days), None)

    def _sign_device(
        self, device_id: str, public_key: ec.EllipticCurvePublicKey, days: int
    ) -> x509.Certificate:
        try:
            validate_device_id(device_id)
        except ValueError as exc:
            raise CaError(str(exc)) from exc
        return self._sign(
            subject_cn=device_id,
            public_key=public_key,
            days=days,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            san=None,
        )

    def _sign(
        self,
        *,
        subject_cn: str,
        public_key: ec.EllipticCurvePublicKey,
        days: int,
        usage: x509.ObjectIdentifier,
        san: list[x509.GeneralName] | None,
    ) -> x509.Certificate:
        if days < 1:
            raise CaError(f"a certificate must be valid for at least one day (got {days})")
        now = _now()
        not_after = min(now + dt.timedelta(days=days), self.certificate.not_valid_after_utc)
        ca_ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value),
                critical=False,
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(self._key, hashes.SHA256())

    # ------------------------------------------------------------------ verify, revoke

    def device_id_of(self, cert_pem: bytes, at: dt.datetime | None = None) -> str:
        """The device id of a client certificate this CA signed and that is valid `at` (now).

        Does not consult revocations: check the serial against the registry too.
        """
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise CaError(f"not a PEM certificate: {exc}") from exc
        try:
            cert.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CaError("the certificate was not issued by this CA") from exc
        when = at or _now()
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            raise CaError(
                f"the certificate is not valid at {when.isoformat()} "
                f"(valid {cert.not_valid_before_utc.isoformat()} to "
                f"{cert.not_valid_after_utc.isoformat()})"
            )
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(cns) != 1:
            raise CaError("the certificate has no single common name")
        return validate_device_id(str(cns[0].value))

    def build_crl(self, revoked: Iterable[Revocation], next_update_days: int = 30) -> bytes:
        """A signed CRL (PEM) listing `revoked`; publish it again before `next_update_days`."""
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - _CLOCK_SKEW)
            .next_update(now + dt.timedelta(days=next_update_days))
        )
        for entry in revoked:
            item = (
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(entry.revoked_at)
                .add_extension(x509.CRLReason(entry.reason), critical=False)
                .build()
            )
            builder = builder.add_revoked_certificate(item)
        crl = builder.sign(self._key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.PEM)
