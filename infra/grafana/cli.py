"""`receipts grafana`: write the dashboards as JSON (`build`) and provision Grafana (`sync`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit, urlunsplit

import click

from infra.grafana.dashboards import DASHBOARD_DIR, write_all


def _redacted(url: str) -> str:
    """`url` without the password it may carry."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@click.group("grafana")
def grafana() -> None:
    """Grafana dashboards as code and their provisioning."""


@grafana.command("build")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DASHBOARD_DIR,
    show_default=True,
    help="Folder to write the dashboard JSON into.",
)
def build(out: Path) -> None:
    """Regenerate the dashboard JSON files from infra/grafana/dashboards.py."""
    for path in write_all(out):
        click.echo(str(path))


@grafana.command("sync")
@click.option(
    "--url",
    envvar="GRAFANA_URL",
    required=True,
    help="Grafana base URL; http://user:password@host:3000 for basic auth [GRAFANA_URL].",
)
@click.option(
    "--token",
    envvar="GRAFANA_TOKEN",
    default=None,
    help="Service-account token with the Admin role [GRAFANA_TOKEN]; else the URL's user.",
)
@click.option(
    "--prometheus-url",
    envvar="RM_GRAFANA_PROMETHEUS_URL",
    default="http://prometheus:9090",
    show_default=True,
    help="Prometheus as Grafana reaches it [RM_GRAFANA_PROMETHEUS_URL].",
)
@click.option(
    "--pg-host",
    envvar="RM_GRAFANA_PG_HOST",
    default="postgres:5432",
    show_default=True,
    help="PostgreSQL host:port as Grafana reaches it [RM_GRAFANA_PG_HOST].",
)
@click.option(
    "--pg-database", envvar="RM_GRAFANA_PG_DATABASE", default="receipts", show_default=True
)
@click.option(
    "--pg-user",
    envvar="RM_GRAFANA_PG_USER",
    default="grafana_reader",
    show_default=True,
    help="A read-only role (infra/README.md shows the grants).",
)
@click.option(
    "--pg-password",
    envvar="RM_GRAFANA_PG_PASSWORD",
    default=None,
    help="Sent only when given; Grafana keeps the stored one otherwise [RM_GRAFANA_PG_PASSWORD].",
)
@click.option(
    "--pg-sslmode",
    envvar="RM_GRAFANA_PG_SSLMODE",
    type=click.Choice(["disable", "require", "verify-ca", "verify-full"]),
    default="require",
    show_default=True,
)
@click.option(
    "--dashboards",
    "dashboard_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=DASHBOARD_DIR,
    show_default=True,
    help="Folder of dashboard JSON to upload.",
)
def sync_command(
    *,
    url: str,
    token: str | None,
    prometheus_url: str,
    pg_host: str,
    pg_database: str,
    pg_user: str,
    pg_password: str | None,
    pg_sslmode: str,
    dashboard_dir: Path,
) -> None:
    """Create or update the data sources, folder and dashboards in Grafana."""
    from grafana_client.api import GrafanaApi
    from grafana_client.client import GrafanaClientError, GrafanaException

    from infra.grafana.sync import GrafanaUnhealthyError, SyncConfig, load_dashboards, sync

    config = SyncConfig(
        prometheus_url=prometheus_url,
        postgres_host=pg_host,
        postgres_database=pg_database,
        postgres_user=pg_user,
        postgres_password=pg_password,
        postgres_sslmode=cast(
            Literal["disable", "require", "verify-ca", "verify-full"], pg_sslmode
        ),
    )
    api = GrafanaApi.from_url(url, credential=token, timeout=30.0)
    try:
        report = sync(api, config, load_dashboards(dashboard_dir))
    except GrafanaClientError as exc:
        if exc.status_code in (401, 403):
            raise click.ClickException(
                f"Grafana at {_redacted(url)} refused the token ({exc.status_code}): give "
                "--token / GRAFANA_TOKEN a service-account token with the Admin role"
            ) from exc
        raise click.ClickException(f"Grafana refused a request: {exc.message}") from exc
    except (GrafanaException, GrafanaUnhealthyError) as exc:
        raise click.ClickException(f"Grafana at {_redacted(url)} is not usable: {exc}") from exc
    click.echo(f"Grafana {report.grafana_version} at {_redacted(url)}")
    for line in report.lines():
        click.echo(line)
