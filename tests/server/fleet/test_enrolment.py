"""Claims through the API on both databases: once only, expiry, errors, certificates, tenancy."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import select

from provisioning.ca import CertificateAuthority
from provisioning.claims import ClaimRecord, hash_code
from provisioning.mosquitto import verify_password
from server.fleet import enrolment
from server.fleet.models import BrokerAccount, ClaimCode, DeviceCertificate
from server.fleet.repository import RegistryRepository, SqlClaimStore
from server.fleet.runtime import FleetRuntime
from server.images.local import LocalImageStore
from tests.server.conftest import Db, make_tenant
from tests.server.fleet.conftest import (
    api_client,
    auth,
    device_csr,
    make_runtime,
    new_claim_code,
)

CLAIM = "/api/v1/fleet/claim"


def claim(client: TestClient, code: str, device_id: str = "till-1", csr: str | None = None):
    return client.post(CLAIM, json={"claim_code": code, "device_id": device_id, "csr_pem": csr})


def test_claim_works_once_and_binds_the_device_to_the_codes_organisation(
    db: Db, client: TestClient, ca: CertificateAuthority
):
    acme = make_tenant(db, "Acme")
    make_tenant(db, "Other")
    code = new_claim_code(db, "Acme", label="shop 2")
    _key, csr = device_csr()

    r = claim(client, code.lower().replace("-", " "), csr=csr)  # typed sloppily: still the code
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["device_id"] == body["username"] == "till-1"
    cert = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    assert ca.device_id_of(body["certificate_pem"].encode()) == "till-1"

    again = claim(client, code, device_id="till-2")
    assert again.status_code == 409
    assert again.json() == {"code": "used", "detail": "this claim code has already been used"}

    with db.sessions() as session:
        account = session.scalar(select(BrokerAccount).where(BrokerAccount.username == "till-1"))
        assert account is not None and account.role == "device"
        assert body["password"] not in account.password_hash  # only the hash is stored
        assert verify_password(body["password"], account.password_hash)
        stored = session.scalar(select(DeviceCertificate))
        assert stored is not None and int(stored.serial, 16) == cert.serial_number
        row = session.scalar(select(ClaimCode))
        assert row is not None and row.device_id == "till-1" and row.used_at is not None
        assert code.replace("-", "") not in (row.code_hash, row.label)

    devices = client.get("/api/v1/fleet/devices", headers=auth(acme)).json()["items"]
    assert [d["device_id"] for d in devices] == ["till-1"]
    assert devices[0]["state"] == "offline"


def test_claim_refusals_have_stable_codes(db: Db, client: TestClient, runtime: FleetRuntime):
    make_tenant(db, "Acme")
    good = new_claim_code(db, "Acme")
    typo = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert claim(client, typo).json()["code"] == "checksum"
    assert claim(client, "ABC").status_code == 400
    assert claim(client, "ABC").json()["code"] == "malformed"
    other = new_claim_code(db, "Acme")
    with db.sessions.begin() as session:  # forget it: the code is well-formed but unknown
        session.delete(
            session.scalar(select(ClaimCode).where(ClaimCode.code_hash == hash_code(other)))
        )
    r = claim(client, other)
    assert (r.status_code, r.json()["code"]) == (404, "unknown")
    r = claim(client, good, device_id="no/slashes")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_device_id")
    r = claim(client, good, csr="-----BEGIN CERTIFICATE REQUEST-----\nnope\n")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_csr")
    assert claim(client, good).status_code == 200  # the refused attempts did not use it up


def test_code_expires(db: Db, store: LocalImageStore, publisher):
    make_tenant(db, "Acme")
    now = [dt.datetime(2030, 1, 1, tzinfo=dt.UTC)]
    runtime = make_runtime(db, publisher, clock=lambda: now[0])
    with db.sessions.begin() as session:
        code = enrolment.create_claim_code(
            session, "Acme", ttl=dt.timedelta(hours=1), clock=lambda: now[0]
        ).code
    now[0] += dt.timedelta(hours=1, seconds=1)
    with api_client(db, store, runtime) as client:
        r = claim(client, code)
    assert r.status_code == 410
    assert r.json()["code"] == "expired"


def test_a_device_of_another_organisation_is_not_taken_over(db: Db, client: TestClient):
    make_tenant(db, "Acme", "till-1")
    make_tenant(db, "Rival")
    r = claim(client, new_claim_code(db, "Rival"))
    assert (r.status_code, r.json()["code"]) == (409, "device_taken")
    # the same organisation may re-enrol its own (re-flashed) scanner: new password
    first = claim(client, new_claim_code(db, "Acme")).json()["password"]
    second = claim(client, new_claim_code(db, "Acme")).json()["password"]
    assert first != second
    with db.sessions() as session:
        account = RegistryRepository(session).account("till-1")
        assert account is not None and verify_password(second, account.password_hash)
        assert not verify_password(first, account.password_hash)


def test_mark_used_is_an_atomic_compare_and_set(db: Db):
    org = make_tenant(db, "Acme")
    del org
    now = dt.datetime.now(dt.UTC)
    with db.sessions.begin() as session:
        org_id = RegistryRepository(session).organization_by_name("Acme").id  # type: ignore[union-attr]
        SqlClaimStore(session).add(
            ClaimRecord("ab" * 32, str(org_id), now, now + dt.timedelta(hours=1))
        )
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        with db.sessions.begin() as session:
            wins.append(SqlClaimStore(session).mark_used("ab" * 32, f"dev-{i}", now))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


@pytest.mark.parametrize("with_ca", [True, False])
def test_claim_without_csr_or_without_ca_gives_no_certificate(
    db: Db, store: LocalImageStore, publisher, ca: CertificateAuthority, with_ca: bool
):
    make_tenant(db, "Acme")
    runtime = make_runtime(db, publisher, ca if with_ca else None)
    with api_client(db, store, runtime) as client:
        r = claim(client, new_claim_code(db, "Acme"), csr=None if with_ca else device_csr()[1])
    assert r.status_code == 200
    assert r.json()["certificate_pem"] is None


def test_owner_revokes_a_device_and_only_their_own(db: Db, client: TestClient):
    acme = make_tenant(db, "Acme")
    rival = make_tenant(db, "Rival", "rival-1")
    assert claim(client, new_claim_code(db, "Acme"), csr=device_csr()[1]).status_code == 200
    r = client.post("/api/v1/fleet/devices/rival-1/revoke", headers=auth(acme))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "device_not_found")
    r = client.post("/api/v1/fleet/devices/till-1/revoke", headers=auth(acme))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "revoked"
    with db.sessions() as session:
        registry = RegistryRepository(session)
        assert [a.username for a in registry.active_accounts()] == []
        assert len(registry.revocations(dt.datetime.now(dt.UTC))) == 1
    # a revoked device gets neither configuration nor commands
    r = client.put("/api/v1/fleet/devices/till-1/config", json={"settings": {}}, headers=auth(acme))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "device_revoked")
    assert (
        client.get("/api/v1/fleet/devices", headers=auth(rival)).json()["items"][0]["device_id"]
        == "rival-1"
    )
