"""Delivery end to end: receipts ingested or corrected -> outbox rows -> a real HTTP receiver
that checks the signature; retries, giving up, timeouts, rollbacks, two workers."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from server.accounts.audit import Actor
from server.dashboard.corrections import correct_receipt
from server.dashboard.repository import ReceiptBrowser
from server.receipts.intake import admit_receipts
from server.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from server.webhooks.settings import WebhookSettings
from server.webhooks.worker import WebhookWorker, backoff_delay
from tests.conftest import free_tcp_port
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.helpers import receipt_message, receipt_topic
from tests.server.webhooks.conftest import FAST, drain, org_id, register
from tests.server.webhooks.receiver import running_receiver


def _deliveries(db: Db) -> list[WebhookDelivery]:
    with db.sessions() as s:
        return list(s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))


def _attempts(db: Db, delivery_id) -> list[WebhookAttempt]:
    with db.sessions() as s:
        return list(
            s.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.created_at)
            )
        )


def _count(db: Db, model) -> int:
    with db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _settled(db: Db) -> bool:
    return all(d.status != "pending" for d in _deliveries(db))


def test_a_new_receipt_is_delivered_signed_after_failed_attempts(
    db: Db, store, tenant: Tenant, make_worker
):
    with running_receiver(free_tcp_port(), script=[503, 500]) as receiver:
        endpoint = register(db, "Acme", receiver.url)
        receiver.secret = endpoint.secret
        msg = receipt_message(merchant="Bakery", total="7.20")
        ingest(db, store, [(receipt_topic(tenant.device_id), msg.to_json())])
        worker = make_worker()
        drain(worker, lambda: _settled(db))
        got = receiver.wait_for(3)

    assert [r.verified for r in got] == [True, True, True]
    assert len({r.event_id for r in got}) == 1  # one event id on every retry: receivers dedupe
    assert [r.attempt for r in got] == ["1", "2", "3"]
    body = got[-1].body
    assert body["type"] == "receipt.created" == got[-1].event_type
    assert body["id"] == got[-1].event_id
    assert body["data"]["receipt"]["id"] == str(msg.receipt_id)
    assert body["data"]["receipt"]["merchant"] == "Bakery"
    assert body["data"]["receipt"]["total"] == "7.20"
    assert body["data"]["receipt"]["device_id"] == tenant.device_id
    [delivery] = _deliveries(db)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert [a.status_code for a in _attempts(db, delivery.id)] == [503, 500, 200]
    assert all(a.duration_ms >= 0 for a in _attempts(db, delivery.id))
    samples = {
        s.labels["outcome"]: s.value
        for m in worker.metrics.registry.collect()
        if m.name == "rm_webhook_deliveries"
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert samples == {"delivered": 1.0, "retrying": 2.0, "failed": 0.0}


def test_a_delivery_is_marked_failed_after_the_last_attempt(db: Db, store, tenant, make_worker):
    settings = FAST.model_copy(update={"max_attempts": 3})
    with running_receiver(free_tcp_port(), default=500) as receiver:
        receiver.secret = register(db, "Acme", receiver.url).secret
        ingest(db, store, [(receipt_topic(tenant.device_id), receipt_message().to_json())])
        worker = make_worker(settings)
        drain(worker, lambda: _settled(db))
        assert len(receiver.received) == 3
    [delivery] = _deliveries(db)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.completed_at is not None
    assert worker.run_once() == 0  # never picked up again


def test_a_receiver_that_does_not_answer_times_out(db: Db, store, tenant, make_worker):
    settings = FAST.model_copy(update={"timeout_s": 0.3, "max_attempts": 1})
    with running_receiver(free_tcp_port(), hang_s=3.0) as receiver:
        receiver.secret = register(db, "Acme", receiver.url).secret
        ingest(db, store, [(receipt_topic(tenant.device_id), receipt_message().to_json())])
        worker = make_worker(settings)
        started = dt.datetime.now(dt.UTC)
        assert worker.run_once() == 1
        took = (dt.datetime.now(dt.UTC) - started).total_seconds()
    assert took < 2.0
    [delivery] = _deliveries(db)
    assert delivery.status == "failed"
    [attempt] = _attempts(db, delivery.id)
    assert attempt.status_code is None
    assert attempt.error is not None and attempt.error.startswith("timeout after 0.3 s")
    assert 250 <= attempt.duration_ms < 2000


def test_an_event_of_a_rolled_back_transaction_is_never_sent(db: Db, tenant, make_worker):
    with running_receiver(free_tcp_port()) as receiver:
        receiver.secret = register(db, "Acme", receiver.url).secret
        org = org_id(db, "Acme")
        seen = []

        def _fail_after_insert() -> None:
            with db.sessions.begin() as session:
                admit_receipts(session, [_row(db, org, tenant.device_id)])
                seen.append(session.scalar(select(func.count()).select_from(WebhookEvent)))
                raise RuntimeError("the batch failed after the insert")

        with pytest.raises(RuntimeError):
            _fail_after_insert()
        assert seen == [1]  # the event was written in the transaction...
        assert _count(db, WebhookEvent) == 0
        assert _count(db, WebhookDelivery) == 0
        worker = make_worker()
        assert worker.run_once() == 0
        # the same path, committed, is sent: the rollback is what kept the first one back
        with db.sessions.begin() as session:
            admit_receipts(session, [_row(db, org, tenant.device_id)])
        drain(worker, lambda: _settled(db))
        assert len(receiver.wait_for(1)) == 1


def _row(db: Db, org, device_id: str) -> dict:
    import uuid

    from server.db.models import Device

    with db.sessions() as s:
        device_pk = s.scalar(select(Device.id).where(Device.device_id == device_id))
    now = dt.datetime.now(dt.UTC)
    return {
        "id": uuid.uuid4(),
        "organization_id": org,
        "device_id": device_pk,
        "captured_at": now,
        "received_at": now,
        "merchant": "Rolled Back Ltd",
        "receipt_date": None,
        "effective_date": now.date(),
        "total": None,
        "currency": None,
        "needs_review": False,
        "image_sha256": None,
        "document": {"receipt": {}},
    }


def test_a_redelivered_receipt_is_announced_once_and_other_orgs_get_nothing(db: Db, store, tenant):
    make_tenant(db, "Globex", "globex-1")
    register(db, "Acme", "http://127.0.0.1:9/acme")
    register(db, "Acme", "http://127.0.0.1:9/acme-corrections", events=["receipt.corrected"])
    register(db, "Globex", "http://127.0.0.1:9/globex")
    msg = receipt_message()
    ingest(db, store, [(receipt_topic(tenant.device_id), msg.to_json())])
    ingest(db, store, [(receipt_topic(tenant.device_id), msg.to_json())])  # redelivered
    assert _count(db, WebhookEvent) == 1
    [delivery] = _deliveries(db)  # only the Acme endpoint subscribed to receipt.created
    assert delivery.organization_id == org_id(db, "Acme")


def test_a_correction_is_announced_with_what_changed(db: Db, store, tenant, make_worker):
    with running_receiver(free_tcp_port()) as receiver:
        receiver.secret = register(db, "Acme", receiver.url, events=["receipt.corrected"]).secret
        msg = receipt_message(merchant="Bakry", total="7.20")
        ingest(db, store, [(receipt_topic(tenant.device_id), msg.to_json())])
        assert _count(db, WebhookEvent) == 0  # not subscribed to receipt.created
        org = org_id(db, "Acme")
        with db.sessions.begin() as session:
            browser = ReceiptBrowser(session, org)
            record = browser.for_update(msg.receipt_id)
            assert record is not None
            correct_receipt(
                session, browser, record, {"merchant": "Bakery", "total": "7.20"}, Actor("a@b.c")
            )
        drain(make_worker(), lambda: _settled(db))
        [got] = receiver.wait_for(1)
    assert got.verified
    assert got.body["type"] == "receipt.corrected"
    assert got.body["data"]["changes"] == {"merchant": {"from": "Bakry", "to": "Bakery"}}
    assert got.body["data"]["receipt"]["merchant"] == "Bakery"


def test_private_addresses_are_refused_at_send_time_too(db: Db, store, tenant, make_worker):
    with running_receiver(free_tcp_port()) as receiver:
        receiver.secret = register(db, "Acme", receiver.url).secret  # allowed when registered
        ingest(db, store, [(receipt_topic(tenant.device_id), receipt_message().to_json())])
        worker = make_worker(FAST.model_copy(update={"max_attempts": 1}), allow_private=False)
        assert worker.run_once() == 1
        assert receiver.received == []
    [delivery] = _deliveries(db)
    assert delivery.status == "failed"
    assert delivery.last_error is not None and "refused" in delivery.last_error
    assert "127.0.0.1" in delivery.last_error


def test_backoff_doubles_with_jitter_up_to_the_cap():
    import random

    settings = WebhookSettings()
    rng = random.Random(1)
    delays = [backoff_delay(n, settings, rng) for n in range(1, 13)]
    assert 48 <= delays[0] <= 72
    assert 96 <= delays[1] <= 144
    assert all(d <= 12 * 3600 for d in delays)
    assert delays[-1] >= 12 * 3600 * 0.8
    assert sum(delays) > 24 * 3600  # twelve attempts span more than a day


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_workers_never_send_the_same_delivery(db: Db, store, tenant):
    with running_receiver(free_tcp_port()) as receiver:
        receiver.secret = register(db, "Acme", receiver.url).secret
        msgs = [receipt_message() for _ in range(40)]
        ingest(db, store, [(receipt_topic(tenant.device_id), m.to_json()) for m in msgs])
        settings = FAST.model_copy(update={"concurrency": 3})
        workers = [WebhookWorker(settings, db.sessions, allow_private=True) for _ in range(2)]
        sent = [0, 0]

        def _run(i: int) -> None:
            while not _settled(db):
                sent[i] += workers[i].run_once()

        threads = [threading.Thread(target=_run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for w in workers:
            w.close()
        got = receiver.wait_for(40)
    ids = [r.event_id for r in got]
    assert len(ids) == len(set(ids)) == 40  # each event exactly once
    assert sent[0] > 0 and sent[1] > 0  # both workers took part
    assert {d.status for d in _deliveries(db)} == {"succeeded"}
