"""`receipts webhooks`: the webhook delivery worker as a process of its own."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import click

logger = logging.getLogger(__name__)


@click.command("webhooks")
@click.option("--once", is_flag=True, help="Send what is due now, then exit (cron, tests).")
def webhooks(once: bool) -> None:
    """Migrate the database, then deliver webhook events until stopped (any number of these
    may run against PostgreSQL; run one against SQLite)."""
    from server.cli import load_settings
    from server.db.engine import create_db_engine, session_factory
    from server.db.migrate import migrate
    from server.webhooks.worker import WebhookWorker

    settings = load_settings()
    migrate(settings.database_url)
    engine = create_db_engine(settings.database_url)
    hooks = settings.webhooks
    allow_private = hooks.private_allowed(settings.environment)
    worker = WebhookWorker(hooks, session_factory(engine), allow_private=allow_private)
    if once:
        sent = 0
        while n := worker.run_once():
            sent += n
        worker.close()
        click.echo(f"{sent} delivery attempts made")
        return

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping webhook delivery", signum)
        worker.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if hooks.metrics_port:
        from server.observability.metrics import serve_metrics

        serve_metrics(worker.metrics.registry, hooks.metrics_host, hooks.metrics_port)
        logger.info("metrics on http://%s:%d/metrics", hooks.metrics_host, hooks.metrics_port)
    logger.info(
        "delivering webhooks (timeout %g s, %d attempts, private addresses %s)",
        hooks.timeout_s,
        hooks.max_attempts,
        "allowed" if allow_private else "refused",
    )
    worker.run()
    engine.dispose()
