"""Fleet fixtures: a fleet runtime (CA, publisher) and the API on both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from provisioning.ca import CertificateAuthority
from server.api.app import create_app
from server.fleet import enrolment
from server.fleet.publisher import MemoryPublisher, Publisher
from server.fleet.runtime import FleetRuntime
from server.fleet.settings import FleetSettings
from server.images.local import LocalImageStore
from server.settings import Settings
from tests.server.conftest import Db, Tenant


@pytest.fixture(scope="session")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("fleet test CA")


@pytest.fixture
def publisher() -> MemoryPublisher:
    return MemoryPublisher()


def make_runtime(
    db: Db, publisher: Publisher, ca: CertificateAuthority | None = None, **kw
) -> FleetRuntime:
    return FleetRuntime(
        settings=FleetSettings(), sessions=db.sessions, publisher=publisher, ca=ca, **kw
    )


@pytest.fixture
def runtime(db: Db, publisher: MemoryPublisher, ca: CertificateAuthority) -> FleetRuntime:
    return make_runtime(db, publisher, ca)


def api_client(db: Db, store: LocalImageStore, runtime: FleetRuntime) -> TestClient:
    settings = Settings(database_url=db.url, image_store={"type": "local", "root": str(store.root)})
    return TestClient(create_app(settings, engine=db.engine, images=store, fleet=runtime))


@pytest.fixture
def client(db: Db, store: LocalImageStore, runtime: FleetRuntime) -> Iterator[TestClient]:
    with api_client(db, store, runtime) as c:
        yield c


def auth(tenant: Tenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.token}"}


def new_claim_code(db: Db, org: str, ttl: dt.timedelta = dt.timedelta(days=1), **kw) -> str:
    with db.sessions.begin() as session:
        return enrolment.create_claim_code(session, org, ttl=ttl, **kw).code


def device_csr(device_id: str = "whatever") -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A scanner's own key and CSR, as firmware/firstboot.py makes them."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
