"""Provision a Grafana instance over its HTTP API: data sources, folder, dashboards (upserts).

`sync(api, config, dashboards)` makes Grafana hold exactly what this repository describes and
reports what it did; running it again changes nothing. It talks to Grafana through
`grafana_client.GrafanaApi` (the maintained fork of grafana-api), so any Grafana with the HTTP
API (10.x, 11.x) and a service-account token with the Admin role works.

Requests, in order (the contract the tests replay):
1. `GET /api/health`: Grafana answers and its database is ok.
2. per data source: `GET /api/datasources/uid/{uid}`, then `POST /api/datasources` (404) or
   `PUT /api/datasources/uid/{uid}` (found).
3. `GET /api/folders/{uid}`, then `POST /api/folders` (404) or `PUT /api/folders/{uid}` if
   its title changed.
4. per dashboard: `GET /api/dashboards/uid/{uid}`, then `POST /api/dashboards/db` with
   `overwrite` unless Grafana already holds the same model in the same folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grafana_client.client import GrafanaClientError

from infra.grafana.dashboards import (
    DASHBOARD_DIR,
    FOLDER_TITLE,
    FOLDER_UID,
    POSTGRES_UID,
    PROMETHEUS_UID,
)

logger = logging.getLogger(__name__)

Json = dict[str, Any]
Action = Literal["created", "updated", "unchanged"]

#: Keys Grafana adds or manages itself; left out when comparing a stored dashboard to ours.
_GRAFANA_MANAGED = frozenset({"id", "version"})


class GrafanaUnhealthyError(RuntimeError):
    """Grafana answered /api/health, but says its database is not ok."""


@dataclass(frozen=True)
class SyncConfig:
    """Where the data sources point. The PostgreSQL user should be a read-only role."""

    prometheus_url: str
    postgres_host: str
    postgres_database: str
    postgres_user: str
    postgres_password: str | None = None
    postgres_sslmode: Literal["disable", "require", "verify-ca", "verify-full"] = "require"


@dataclass
class SyncReport:
    """What `sync` did, one line per object: (kind, name, action)."""

    grafana_version: str = ""
    actions: list[tuple[str, str, Action]] = field(default_factory=list)

    def add(self, kind: str, name: str, action: Action) -> None:
        logger.info("grafana %s %s: %s", kind, name, action)
        self.actions.append((kind, name, action))

    def lines(self) -> list[str]:
        return [f"{kind} {name}: {action}" for kind, name, action in self.actions]


def datasources(config: SyncConfig) -> list[Json]:
    """The Prometheus and PostgreSQL data sources the dashboards use (by uid)."""
    postgres: Json = {
        "uid": POSTGRES_UID,
        "name": "Receipts PostgreSQL",
        "type": "grafana-postgresql-datasource",
        "access": "proxy",
        "url": config.postgres_host,
        "user": config.postgres_user,
        "isDefault": False,
        "jsonData": {
            "database": config.postgres_database,
            "sslmode": config.postgres_sslmode,
            "postgresVersion": 1500,
            "timescaledb": False,
        },
    }
    if config.postgres_password is not None:
        # Write-only in Grafana: sent only when given, so a sync without it keeps the stored one.
        postgres["secureJsonData"] = {"password": config.postgres_password}
    prometheus: Json = {
        "uid": PROMETHEUS_UID,
        "name": "Receipts Prometheus",
        "type": "prometheus",
        "access": "proxy",
        "url": config.prometheus_url,
        "isDefault": True,
        "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
    }
    return [prometheus, postgres]


def load_dashboards(directory: Path = DASHBOARD_DIR) -> list[Json]:
    """The dashboard models stored as JSON in `directory`, by file name."""
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no dashboard JSON in {directory}")
    return [json.loads(p.read_text()) for p in paths]


def _status(exc: GrafanaClientError) -> int:
    return int(exc.status_code)


def _get_or_none(call: Any, *args: Any) -> Json | None:
    """The object a GET returns, or None when Grafana answers 404."""
    try:
        found: Json = call(*args)
    except GrafanaClientError as exc:
        if _status(exc) == 404:
            return None
        raise
    return found


def _same_dashboard(stored: Json, ours: Json) -> bool:
    model = stored.get("dashboard", {})
    folder = stored.get("meta", {}).get("folderUid")
    mine = {k: v for k, v in ours.items() if k not in _GRAFANA_MANAGED}
    theirs = {k: v for k, v in model.items() if k in mine}
    return folder == FOLDER_UID and theirs == mine


def sync(api: Any, config: SyncConfig, dashboards: list[Json]) -> SyncReport:
    """Upsert the data sources, the folder and `dashboards` into the Grafana behind `api`.

    `api` is a `grafana_client.GrafanaApi`. Raises `grafana_client.client.GrafanaException`
    subclasses on refusals (401: bad token, 403: the token's role is too weak).
    """
    report = SyncReport()
    # The documented health endpoint (no auth needed); grafana-client's own `health.check()`
    # reads /api/frontend/settings instead, which says nothing about Grafana's database.
    health: Json = api.client.GET("/health")
    if health.get("database") != "ok":
        raise GrafanaUnhealthyError(f"Grafana's database is not ok: {health}")
    report.grafana_version = str(health.get("version", ""))

    for source in datasources(config):
        uid = source["uid"]
        existing = _get_or_none(api.datasource.get_datasource_by_uid, uid)
        if existing is None:
            api.datasource.create_datasource(source)
            report.add("datasource", uid, "created")
        else:
            api.datasource.update_datasource_by_uid(uid, {**source, "id": existing["id"]})
            report.add("datasource", uid, "updated")

    folder = _get_or_none(api.folder.get_folder, FOLDER_UID)
    if folder is None:
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        report.add("folder", FOLDER_UID, "created")
    elif folder.get("title") != FOLDER_TITLE:
        api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        report.add("folder", FOLDER_UID, "updated")
    else:
        report.add("folder", FOLDER_UID, "unchanged")

    for model in dashboards:
        uid = model["uid"]
        stored = _get_or_none(api.dashboard.get_dashboard, uid)
        if stored is not None and _same_dashboard(stored, model):
            report.add("dashboard", uid, "unchanged")
            continue
        body = {
            "dashboard": {**model, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "receipts grafana sync",
        }
        api.dashboard.update_dashboard(body)
        report.add("dashboard", uid, "created" if stored is None else "updated")
    return report
