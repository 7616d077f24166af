"""`receipts webhooks --once`: the worker as a command, on the configured database."""

from __future__ import annotations

from click.testing import CliRunner

from server.webhooks.cli import webhooks
from tests.conftest import free_tcp_port
from tests.server.conftest import Db, Tenant, ingest
from tests.server.helpers import receipt_message, receipt_topic
from tests.server.webhooks.conftest import register
from tests.server.webhooks.receiver import running_receiver


def test_the_command_sends_what_is_due(db: Db, store, tenant: Tenant, monkeypatch):
    monkeypatch.setenv("RM_DATABASE_URL", db.url)
    monkeypatch.setenv("RM_OBSERVABILITY__LOG_FORMAT", "text")
    with running_receiver(free_tcp_port()) as receiver:
        receiver.secret = register(db, "Acme", receiver.url).secret
        ingest(db, store, [(receipt_topic(tenant.device_id), receipt_message().to_json())])
        result = CliRunner().invoke(webhooks, ["--once"])
        assert result.exit_code == 0, result.output
        assert "1 delivery attempts made" in result.output
        [got] = receiver.wait_for(1)
    assert got.verified and got.event_type == "receipt.created"
