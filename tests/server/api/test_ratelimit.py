"""Token buckets per credential: 429 with Retry-After and RateLimit-* headers, per key."""

from __future__ import annotations

from server.api.ratelimit import Bucket, RateLimiter
from server.images.local import LocalImageStore
from tests.server.api_keys.conftest import bearer, make_app_client, new_key, org_with_owner_token
from tests.server.conftest import Db


def test_bucket_refills_at_its_rate():
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    bucket = Bucket(per_minute=60, burst=2)  # one a second
    assert [limiter.take("k", bucket).allowed for _ in range(3)] == [True, True, False]
    refused = limiter.take("k", bucket)
    assert refused.retry_after_s == 1 and refused.remaining == 0
    assert refused.headers()["Retry-After"] == "1"
    now[0] = 1.0
    assert limiter.take("k", bucket).allowed
    assert not limiter.take("k", bucket).allowed
    assert limiter.take("other", bucket).allowed  # its own bucket
    now[0] = 100.0
    full = limiter.take("k", bucket)
    assert (full.allowed, full.remaining, full.reset_s) == (True, 1, 1)


def test_a_key_over_its_limit_gets_429_with_headers(db: Db, store: LocalImageStore):
    settings = {"rate_limits": {"api_keys": {"per_minute": 6, "burst": 3}}}
    with make_app_client(db, store, **settings) as client:
        owner = org_with_owner_token(db, "Acme", "enterprise")
        key = new_key(client, owner)["secret"]
        other = new_key(client, owner)["secret"]
        remaining = []
        for _ in range(3):
            r = client.get("/api/v1/receipts", headers=bearer(key))
            assert r.status_code == 200
            assert r.headers["RateLimit-Limit"] == "3"
            remaining.append(r.headers["RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        r = client.get("/api/v1/receipts", headers=bearer(key))
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["Retry-After"]) <= 10
        assert r.headers["RateLimit-Remaining"] == "0"
        assert 1 <= int(r.headers["RateLimit-Reset"]) <= 30
        # another key has its own bucket; the operator's token is not limited by default
        assert client.get("/api/v1/receipts", headers=bearer(other)).status_code == 200
        for _ in range(5):
            r = client.get("/api/v1/receipts", headers=bearer(owner))
            assert r.status_code == 200 and "RateLimit-Limit" not in r.headers
        metrics = client.get("/metrics").text
        assert 'rm_quota_rejections_total{reason="rate_limit"} 1.0' in metrics


def test_operator_tokens_can_be_limited_too(db: Db, store: LocalImageStore):
    settings = {"rate_limits": {"operator_tokens": {"per_minute": 60, "burst": 2}}}
    with make_app_client(db, store, **settings) as client:
        owner = org_with_owner_token(db, "Acme", "starter")
        auth = bearer(owner)
        codes = [client.get("/api/v1/receipts", headers=auth).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
