"""Webhook fixtures: fast retry settings, a worker on the test database, endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from server.accounts.audit import Actor
from server.db.models import Organization
from server.webhooks import service
from server.webhooks.repository import WebhookRepository
from server.webhooks.settings import WebhookSettings
from server.webhooks.worker import WebhookWorker
from tests.server.conftest import Db

FAST = WebhookSettings(
    timeout_s=2.0,
    max_attempts=5,
    backoff_min_s=0.01,
    backoff_max_s=0.05,
    lease_s=10.0,
    poll_interval_s=0.05,
)


def org_id(db: Db, name: str):
    from sqlalchemy import select

    with db.sessions() as session:
        return session.scalar(select(Organization.id).where(Organization.name == name))


def register(db: Db, org_name: str, url: str, events=("receipt.created", "receipt.corrected")):
    """An endpoint of the organisation, registered through the service; returns it."""
    with db.sessions.begin() as session:
        repo = WebhookRepository(session, org_id(db, org_name))
        return service.create(
            repo,
            url=url,
            events=list(events),
            description="test",
            active=True,
            policy=service.Policy(allow_private=True, max_endpoints=20),
            actor=Actor.system("test"),
        )


@pytest.fixture
def make_worker(db: Db) -> Iterator[Callable[..., WebhookWorker]]:
    workers: list[WebhookWorker] = []

    def _make(settings: WebhookSettings = FAST, *, allow_private: bool = True) -> WebhookWorker:
        worker = WebhookWorker(settings, db.sessions, allow_private=allow_private)
        workers.append(worker)
        return worker

    yield _make
    for w in workers:
        w.close()


def drain(worker: WebhookWorker, done: Callable[[], bool], timeout: float = 15.0) -> None:
    """Run rounds until `done()` (retries come due after the tiny backoff)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("deliveries did not finish in time")
        if not worker.run_once():
            time.sleep(0.02)
