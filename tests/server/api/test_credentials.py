"""The per-process credential cache: how stale it may be, and what empties it at once.

The bound it promises (server/api/credentials.py): a change made through this process (any
write) is seen by the next request; one made elsewhere (another process, SQL) within the
cache's time-to-live; an expiry to the second."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from sqlalchemy import select

from server.accounts.roles import Role
from server.api.auth import Principal
from server.api.credentials import CredentialCache
from server.db.models import ApiToken
from server.images.local import LocalImageStore
from server.plans.catalog import Plan
from tests.server.api_keys.conftest import bearer, make_app_client, new_key, org_with_owner_token
from tests.server.conftest import Db

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def principal() -> Principal:
    return Principal(
        kind="key",
        organization_id=uuid.uuid4(),
        plan=Plan("enterprise"),
        role=Role.OWNER,
        scope="read",
        name="k",
        credential_id=uuid.uuid4(),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_live_for_the_ttl_and_never_past_the_credentials_expiry():
    clock = Clock()
    cache = CredentialCache(10, clock)
    p = principal()
    cache.put("h", p, None, cache.generation)
    clock.now = 9.9
    assert cache.get("h", NOW) is p
    clock.now = 10.0
    assert cache.get("h", NOW) is None

    cache.put("e", p, NOW + dt.timedelta(seconds=1), cache.generation)
    assert cache.get("e", NOW) is p
    assert cache.get("e", NOW + dt.timedelta(seconds=1)) is None  # expired: refused at once


def test_a_lookup_that_raced_a_write_is_not_kept_and_zero_turns_it_off():
    cache = CredentialCache(10)
    seen = cache.generation  # a lookup begins...
    cache.invalidate()  # ...a write (a revocation, say) finishes...
    cache.put("h", principal(), None, seen)  # ...the lookup's answer may predate it
    assert cache.get("h", NOW) is None

    off = CredentialCache(0)
    off.put("h", principal(), None, off.generation)
    assert off.get("h", NOW) is None


def test_a_revocation_elsewhere_takes_effect_within_the_ttl(db: Db, store: LocalImageStore):
    owner = org_with_owner_token(db, "Acme", "enterprise")
    with make_app_client(db, store, api={"credential_cache_s": 0.3}) as client:
        key = new_key(client, owner)
        assert client.get("/api/v1/receipts", headers=bearer(key["secret"])).status_code == 200
        with db.sessions.begin() as s:  # as another process or `receipts admin` would
            row = s.scalar(select(ApiToken).where(ApiToken.id == uuid.UUID(key["id"])))
            assert row is not None
            row.revoked_at = dt.datetime.now(dt.UTC)
        # still the cached answer (the documented bound), then refused once it is stale
        assert client.get("/api/v1/receipts", headers=bearer(key["secret"])).status_code == 200
        time.sleep(0.35)
        r = client.get("/api/v1/receipts", headers=bearer(key["secret"]))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_token")


def test_a_change_through_this_process_is_seen_by_the_next_request(db: Db, store: LocalImageStore):
    owner = org_with_owner_token(db, "Acme", "enterprise")
    with make_app_client(db, store, api={"credential_cache_s": 300}) as client:
        key = new_key(client, owner)
        assert client.get("/api/v1/receipts", headers=bearer(key["secret"])).status_code == 200
        # a plan without API keys, chosen through the API: the cached key is refused at once
        r = client.put("/api/v1/organization/plan", json={"plan": "pro"}, headers=bearer(owner))
        assert r.status_code == 200, r.text
        r = client.get("/api/v1/receipts", headers=bearer(key["secret"]))
        assert (r.status_code, r.json()["error"]["code"]) == (403, "plan_required")


def test_without_a_cache_every_request_asks_the_database(db: Db, store: LocalImageStore):
    owner = org_with_owner_token(db, "Acme", "enterprise")
    with make_app_client(db, store, api={"credential_cache_s": 0}) as client:
        key = new_key(client, owner)
        assert client.get("/api/v1/receipts", headers=bearer(key["secret"])).status_code == 200
        with db.sessions.begin() as s:
            row = s.scalar(select(ApiToken).where(ApiToken.id == uuid.UUID(key["id"])))
            assert row is not None
            row.revoked_at = dt.datetime.now(dt.UTC)
        assert client.get("/api/v1/receipts", headers=bearer(key["secret"])).status_code == 401
