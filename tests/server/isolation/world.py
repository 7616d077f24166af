"""Two organisations with data of every kind, made through the real paths (API, ingest,
dashboard, services), their credentials, and a snapshot of every row one of them owns.

`Org.ids` maps each path-parameter name the API and the dashboard use to a real id of that
organisation; the isolation tests substitute them. A new kind of id needs an entry here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import or_, select, update

from models.protocol import CommandResult, ConfigReported, StatusMessage, Telemetry, device_topic
from provisioning.ca import CertificateAuthority
from provisioning.release import SelfTestCase, build_release
from provisioning.signing import generate_signing_key
from server.accounts import service as accounts
from server.accounts.audit import Actor
from server.accounts.roles import Role
from server.api.app import create_app
from server.db.base import Base
from server.db.models import Organization
from server.fleet import enrolment
from server.fleet.publisher import MemoryPublisher
from server.fleet.runtime import FleetRuntime
from server.fleet.settings import FleetSettings
from server.images.local import LocalImageStore
from server.settings import Settings
from server.webhooks.repository import DeliveryQueue
from tests.server.conftest import Db, ingest, make_tenant
from tests.server.dashboard.seed import PASSWORD, add_user, read_receipt
from tests.server.helpers import image_topic, jpeg_bytes, receipt_topic

NOW = dt.datetime.now(dt.UTC)


@dataclass
class Org:
    """One organisation of the world: its name, ids by parameter name, credentials."""

    name: str
    slug: str
    org_id: uuid.UUID
    ids: dict[str, str] = field(default_factory=dict)
    #: credential name -> headers for /api/v1 (the session's carry its CSRF token)
    api_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    owner_cookie: str = ""
    owner_csrf: str = ""
    #: strings that only this organisation's data contains (for leak scans)
    markers: set[str] = field(default_factory=set)


@dataclass
class World:
    db: Db
    app: FastAPI
    client: TestClient
    store: LocalImageStore
    a: Org
    b: Org


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def sign_in(app: FastAPI, email: str) -> tuple[str, str]:
    """A dashboard session of `email`: (rm_session cookie, its CSRF token)."""
    with TestClient(app) as c:
        token = _csrf(c.get("/app/login").text)
        r = c.post(
            "/app/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/app/team"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        cookie = c.cookies["rm_session"]
        return cookie, _csrf(c.get("/app/team").text)


def _csr(device_id: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.headers.get("content-type", "").startswith("application/json") else r


def build_app(db: Db, store: LocalImageStore, tmp: Path, ca: CertificateAuthority) -> FastAPI:
    runtime = FleetRuntime(
        settings=FleetSettings(releases_dir=tmp / "releases", public_url="https://rm.test"),
        sessions=db.sessions,
        publisher=MemoryPublisher(),
        ca=ca,
        url_key=b"k" * 32,
    )
    settings = Settings.model_validate(
        {
            "database_url": db.url,
            "secret_key": SecretStr("i" * 40),
            "image_store": {"type": "local", "root": str(store.root)},
            "rate_limits": {"enabled": False},
        }
    )
    return create_app(settings, engine=db.engine, images=store, fleet=runtime)


def populate(db: Db, store: LocalImageStore, app: FastAPI, name: str, tmp: Path) -> Org:
    """An Enterprise organisation with one of everything; returns its ids and credentials."""
    slug = name.lower()
    till, spare = f"{slug}-till-1", f"{slug}-till-2"
    tenant = make_tenant(db, name, till, spare, plan="enterprise")
    with db.sessions() as session:
        org_id = session.scalar(select(Organization.id).where(Organization.name == name))
    assert org_id is not None
    org = Org(name, slug, org_id)
    admin = {"Authorization": f"Bearer {tenant.token}"}
    c = TestClient(app)

    # people: an owner (signed in), a viewer, an invitation, a password reset
    owner_id = add_user(db, name, f"owner@{slug}.test")
    viewer_id = add_user(db, name, f"viewer@{slug}.test", Role.VIEWER)
    keys = app.state.account_keys
    with db.sessions.begin() as session:
        owner = session.get(accounts.User, owner_id)
        assert owner is not None
        _inv, invitation_token = accounts.invite(
            session, owner, f"new@{slug}.test", Role.MEMBER, keys
        )
        viewer = session.get(accounts.User, viewer_id)
        assert viewer is not None
        reset_token = accounts.issue_password_reset(session, viewer, Actor.system("test"), keys)
    org.owner_cookie, org.owner_csrf = sign_in(app, f"owner@{slug}.test")
    with db.sessions.begin() as session:
        operator = enrolment_token(session, name)

    # API keys (read and read-write) made by the operator token
    made = {
        scope: _ok(
            c.post(
                "/api/v1/api-keys",
                json={"name": f"{slug} {scope}", "scope": scope},
                headers={"Authorization": f"Bearer {operator}"},
            ),
            201,
        )
        for scope in ("read", "read-write")
    }

    # a webhook, registered before the receipts so they produce deliveries
    hook = _ok(
        c.post(
            "/api/v1/webhooks",
            json={"url": f"https://{slug}.example.com/hook", "description": f"{slug} hook"},
            headers=admin,
        ),
        201,
    )

    # receipts with images, read on the till
    image = jpeg_bytes(len(slug) * 20)  # an image of its own (the same bytes would be shared)
    messages = [
        read_receipt(f"{name} Only Merchant", "12.50", dt.date(2024, 5, 17), image=image),
        read_receipt(f"{name} Bakery", "4.80", dt.date(2024, 5, 20), needs_review=True),
    ]
    ingest(db, store, [(receipt_topic(till), m.to_json()) for m in messages])
    ingest(db, store, [(image_topic(till, messages[0].receipt_id), image)])
    receipt_id = str(messages[0].receipt_id)

    # a correction, through the dashboard
    with TestClient(app, cookies={"rm_session": org.owner_cookie}) as web:
        page = web.get(f"/app/receipts/{receipt_id}")
        assert page.status_code == 200, page.text
        r = web.post(
            f"/app/receipts/{receipt_id}",
            data={"csrf_token": _csrf(page.text), "f_total": "13.50"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text

    # a webhook attempt (the delivery of receipt.created failed once)
    with db.sessions.begin() as session:
        queue = DeliveryQueue(session)
        for claimed in queue.claim(NOW + dt.timedelta(hours=1), NOW + dt.timedelta(hours=2), 100):
            if claimed.organization_id == org_id:
                queue.record(
                    claimed,
                    status_code=500,
                    error=None,
                    duration_ms=7,
                    next_attempt_at=NOW + dt.timedelta(hours=3),
                    now=NOW,
                )

    # the fleet: a claimed scanner (broker account, certificate), a spare claim code,
    # heartbeats, configuration desired and reported, a command with its result
    with db.sessions.begin() as session:
        code = enrolment.create_claim_code(session, name, ttl=dt.timedelta(days=1)).code
    claimed_id = f"{slug}-claimed"
    _ok(
        c.post(
            "/api/v1/fleet/claim",
            json={"claim_code": code, "device_id": claimed_id, "csr_pem": _csr(claimed_id)},
        )
    )
    _ok(c.post("/api/v1/fleet/claim-codes", json={"label": f"{slug} spare"}, headers=admin), 201)
    status = StatusMessage(state="online", agent_version="1.2.0", model_versions={"ocr": "7"})
    beat = Telemetry(interval_s=30, outbox_depth=2, last_read_ms=850.0, cpu_temp_c=51.5)
    ingest(
        db,
        store,
        [
            (device_topic(till, "status"), status.to_json()),
            (device_topic(till, "telemetry"), beat.to_json()),
        ],
    )
    _ok(
        c.put(
            f"/api/v1/fleet/devices/{till}/config",
            json={"settings": {"ocr_threads": 2}},
            headers=admin,
        )
    )
    command = _ok(
        c.post(f"/api/v1/fleet/devices/{till}/commands", json={"name": "reboot"}, headers=admin),
        201,
    )
    ingest(
        db,
        store,
        [
            (
                device_topic(till, "config/reported"),
                ConfigReported(version=1, settings={"ocr_threads": 2}).to_json(),
            ),
            (
                device_topic(till, f"cmd/{command['command_id']}/result"),
                CommandResult(command_id=command["command_id"], status="succeeded").to_json(),
            ),
        ],
    )

    # a release and a rollout over the scanners
    src = tmp / f"{slug}-release"
    src.mkdir()
    (src / "pipeline.yaml").write_text("engine: test\n")
    (src / "sample.jpg").write_bytes(b"jpeg")
    built = build_release(
        src,
        tmp / f"{slug}.tar.gz",
        release=f"{slug}-models-1",
        kind="models",
        selftest=[SelfTestCase(image="sample.jpg", expect={"total": "1.00"})],
        key=generate_signing_key(),
    )
    release = _ok(
        c.post(
            "/api/v1/fleet/releases",
            headers=admin,
            data={"signature": built.signature},
            files={"manifest": built.manifest, "artifact": built.artifact_path.read_bytes()},
        ),
        201,
    )
    rollout = _ok(
        c.post(
            "/api/v1/fleet/rollouts",
            json={"release_id": release["id"], "canary_percent": 50, "waves": [100]},
            headers=admin,
        ),
        201,
    )

    # an uploaded photo, account codes
    upload = _ok(
        c.post(
            "/api/v1/uploads",
            files={"file": (f"{slug}.jpg", jpeg_bytes(9, (400, 600)), "image/jpeg")},
            headers=admin,
        ),
        202,
    )["uploads"][0]
    _ok(
        c.put(
            "/api/v1/exports/account-codes",
            json={
                "default_account_code": "4000",
                "mappings": [{"category": f"{slug} food", "account_code": "4100"}],
            },
            headers=admin,
        )
    )

    org.ids = {
        "receipt_id": receipt_id,
        "device_id": till,
        "command_id": str(command["command_id"]),
        "release_id": str(release["id"]),
        "rollout_id": str(rollout["id"]),
        "key_id": str(made["read"]["id"]),
        "upload_id": str(upload["id"]),
        "webhook_id": str(hook["id"]),
        "user_id": str(viewer_id),
        "token": invitation_token,
        "reset_token": reset_token,
    }
    org.api_headers = {
        "api key (read-write)": {"Authorization": f"Bearer {made['read-write']['secret']}"},
        "api key (read)": {"Authorization": f"Bearer {made['read']['secret']}"},
        "operator token (owner)": {"Authorization": f"Bearer {operator}"},
        "dashboard session (owner)": {
            "Cookie": f"rm_session={org.owner_cookie}",
            "X-CSRF-Token": org.owner_csrf,
        },
    }
    org.markers = {
        slug,
        *(v for k, v in org.ids.items() if k not in ("token", "reset_token")),
        claimed_id,
        spare,
        str(org_id),
        str(messages[1].receipt_id),
        hashlib.sha256(image).hexdigest(),
    }
    c.close()
    return org


def enrolment_token(session: Any, name: str) -> str:
    """An operator token with the owner role (what billing holds)."""
    from server.organizations import service as orgs

    return orgs.create_token(session, name, "owner token", Role.OWNER).token


def restore_plan(db: Db, org: Org) -> None:
    """Put the organisation back on Enterprise (a generated `PUT /organization/plan` may have
    moved it: its own plan, which it may change)."""
    with db.sessions.begin() as session:
        session.execute(
            update(Organization).where(Organization.id == org.org_id).values(plan="enterprise")
        )


# --------------------------------------------------------------------------- snapshots


def snapshot(db: Db, org_id: uuid.UUID) -> dict[str, list[tuple[str, ...]]]:
    """Every row the organisation owns, in every table: rows with its `organization_id`, and
    rows that point (by foreign key) at one of its rows, whatever organisation they claim;
    tables that belong to no organisation are taken whole."""
    out: dict[str, list[tuple[str, ...]]] = {}
    owned: dict[str, set[Any]] = {}
    with db.sessions() as session:
        for table in Base.metadata.sorted_tables:
            conds: list[Any] = []
            if table.name == "organizations":
                conds.append(table.c.id == org_id)
            if "organization_id" in table.c:
                conds.append(table.c.organization_id == org_id)
            for fk in table.foreign_keys:
                target = fk.column.table.name
                if target != table.name and owned.get(target):
                    conds.append(fk.parent.in_(owned[target]))
            has_links = "organization_id" in table.c or bool(table.foreign_keys)
            q = select(table)
            if conds:
                q = q.where(or_(*conds))
            elif has_links:
                out[table.name] = []
                owned[table.name] = set()
                continue
            rows = session.execute(q).all()
            out[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
            if "id" in table.c:
                owned[table.name] = {row._mapping["id"] for row in rows}
    return out


def image_files(store: LocalImageStore) -> dict[str, str]:
    """Every file of the image store with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(store.root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.root.rglob("*"))
        if p.is_file()
    }
