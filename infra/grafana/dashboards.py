"""The Grafana dashboards as code: ops (server, ingest, database), fleet and business.

`build_all()` returns the dashboard models; `python -m infra.grafana.dashboards` writes them to
`infra/grafana/dashboards/*.json` (the files `receipts grafana sync` uploads and a test keeps in
step with this module). PromQL uses only the metrics of `infra/metrics.md`; the business
dashboard queries the server's PostgreSQL tables (`receipts`, `organizations`, `devices`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Json = dict[str, Any]

PROMETHEUS_UID = "rm-prometheus"
POSTGRES_UID = "rm-postgres"
FOLDER_UID = "receipts"
FOLDER_TITLE = "Receipt Manager"
DASHBOARD_DIR = Path(__file__).parent / "dashboards"

_PROM = {"type": "prometheus", "uid": PROMETHEUS_UID}
_PG = {"type": "grafana-postgresql-datasource", "uid": POSTGRES_UID}


class _Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping to a new row."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def place(self, panel: Json, width: int, height: int) -> Json:
        if self.x + width > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["id"] = self.next_id
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": width, "h": height}
        self.next_id += 1
        self.x += width
        self.row_height = max(self.row_height, height)
        return panel

    def row(self, title: str) -> Json:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel = {"type": "row", "title": title, "collapsed": False, "panels": []}
        placed = self.place(panel, 24, 1)
        self.x, self.y, self.row_height = 0, self.y + 1, 0
        return placed


def _prom_targets(*queries: tuple[str, str]) -> list[Json]:
    return [
        {"datasource": _PROM, "refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
        for i, (expr, legend) in enumerate(queries)
    ]


def _panel(kind: str, title: str, targets: list[Json], unit: str, datasource: Json) -> Json:
    return {
        "type": kind,
        "title": title,
        "datasource": datasource,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }


def timeseries(title: str, *queries: tuple[str, str], unit: str = "short") -> Json:
    return _panel("timeseries", title, _prom_targets(*queries), unit, _PROM)


def stat(title: str, *queries: tuple[str, str], unit: str = "short") -> Json:
    return _panel("stat", title, _prom_targets(*queries), unit, _PROM)


def prom_table(title: str, expr: str) -> Json:
    panel = _panel("table", title, _prom_targets((expr, "")), "short", _PROM)
    panel["targets"][0] |= {"instant": True, "format": "table"}
    return panel


def sql(kind: str, title: str, query: str, unit: str = "short", fmt: str = "time_series") -> Json:
    target = {"datasource": _PG, "refId": "A", "rawQuery": True, "rawSql": query, "format": fmt}
    return _panel(kind, title, [target], unit, _PG)


def dashboard(uid: str, title: str, tags: list[str], panels: list[Json], **extra: Any) -> Json:
    return {
        "uid": uid,
        "title": title,
        "tags": ["receipts", *tags],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "1m",
        "time": {"from": extra.pop("time_from", "now-6h"), "to": "now"},
        "templating": {"list": extra.pop("variables", [])},
        "annotations": {"list": []},
        "panels": panels,
    }


RATE = "$__rate_interval"


def ops() -> Json:
    g = _Layout()
    panels = [
        g.row("Server (API)"),
        g.place(stat("Targets up", ('sum by (job) (up{job=~"receipts-.*"})', "{{job}}")), 6, 4),
        g.place(
            stat(
                "5xx ratio (5 m)",
                (
                    'sum(rate(rm_http_requests_total{status=~"5.."}[5m]))'
                    " / sum(rate(rm_http_requests_total[5m]))",
                    "errors",
                ),
                unit="percentunit",
            ),
            6,
            4,
        ),
        g.place(stat("In flight", ("sum(rm_http_requests_in_progress)", "requests")), 6, 4),
        g.place(
            stat(
                "Quota rejections (1 h)",
                ("sum(increase(rm_quota_rejections_total[1h]))", "rejected"),
            ),
            6,
            4,
        ),
        g.place(
            timeseries(
                "Requests by route",
                (f"sum by (route) (rate(rm_http_requests_total[{RATE}]))", "{{route}}"),
                unit="reqps",
            ),
            12,
            8,
        ),
        g.place(
            timeseries(
                "Errors by route and status",
                (
                    "sum by (route, status) "
                    f'(rate(rm_http_requests_total{{status=~"5.."}}[{RATE}]))',
                    "{{route}} {{status}}",
                ),
                unit="reqps",
            ),
            12,
            8,
        ),
        g.place(
            timeseries(
                "Response time p95 by route (alert: 500 ms)",
                (
                    "histogram_quantile(0.95, sum by (route, le) "
                    f"(rate(rm_http_request_duration_seconds_bucket[{RATE}])))",
                    "{{route}}",
                ),
                unit="s",
            ),
            12,
            8,
        ),
        g.place(
            timeseries(
                "Mean response time (alert: 1 s for 15 min)",
                (
                    f"sum(rate(rm_http_request_duration_seconds_sum[{RATE}]))"
                    f" / sum(rate(rm_http_request_duration_seconds_count[{RATE}]))",
                    "mean",
                ),
                unit="s",
            ),
            12,
            8,
        ),
        g.row("Ingest"),
        g.place(
            timeseries(
                "Messages by kind and outcome",
                (
                    f"sum by (kind, outcome) (rate(rm_ingest_messages_total[{RATE}]))",
                    "{{kind}} {{outcome}}",
                ),
                unit="ops",
            ),
            12,
            8,
        ),
        g.place(
            timeseries(
                "Capture-to-commit lag",
                (
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate(rm_ingest_lag_seconds_bucket[{RATE}])))",
                    "p50",
                ),
                (
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(rm_ingest_lag_seconds_bucket[{RATE}])))",
                    "p95",
                ),
                unit="s",
            ),
            12,
            8,
        ),
        g.place(
            timeseries(
                "Batch size",
                (
                    f"sum(rate(rm_ingest_batch_size_sum[{RATE}]))"
                    f" / sum(rate(rm_ingest_batch_size_count[{RATE}]))",
                    "mean",
                ),
            ),
            8,
            8,
        ),
        g.place(
            timeseries(
                "Dead letters by code",
                (f"sum by (code) (increase(rm_ingest_dead_letters_total[{RATE}]))", "{{code}}"),
            ),
            8,
            8,
        ),
        g.place(
            timeseries(
                "Broker connection and failed batches",
                ("rm_ingest_broker_connected", "{{instance}} connected"),
                (
                    f"sum by (instance) (increase(rm_ingest_batch_failures_total[{RATE}]))",
                    "{{instance}} failed batches",
                ),
            ),
            8,
            8,
        ),
        g.row("Database and hosts"),
        g.place(
            timeseries(
                "Connection pool",
                ("sum by (state) (rm_db_pool_connections)", "{{state}}"),
                ("sum(rm_db_pool_size)", "pool size"),
            ),
            8,
            8,
        ),
        g.place(
            timeseries(
                "Connection failures",
                (
                    f"sum by (job) (increase(rm_db_connection_errors_total[{RATE}]))",
                    "{{job}}",
                ),
            ),
            8,
            8,
        ),
        g.place(
            timeseries(
                "Background jobs",
                ("sum by (queue) (rm_jobs_queued)", "{{queue}} queued"),
                (
                    f'sum by (queue) (rate(rm_jobs_total{{outcome="failed"}}[{RATE}]))',
                    "{{queue}} failed/s",
                ),
            ),
            8,
            8,
        ),
        g.place(
            timeseries(
                "CPU busy (alert: 80 %)",
                (
                    f'1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[{RATE}]))',
                    "{{instance}}",
                ),
                unit="percentunit",
            ),
            12,
            8,
        ),
        g.place(
            timeseries(
                "Memory used (alert: 85 %)",
                (
                    "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
                    "{{instance}}",
                ),
                unit="percentunit",
            ),
            12,
            8,
        ),
    ]
    return dashboard("rm-ops", "Receipts: operations", ["ops"], panels)


def fleet() -> Json:
    g = _Layout()
    panels = [
        g.row("Devices"),
        g.place(stat("Devices by state", ("sum by (state) (rm_fleet_devices)", "{{state}}")), 8, 5),
        g.place(stat("Receipts waiting on scanners", ("sum(rm_device_outbox_depth)", "")), 8, 5),
        g.place(
            stat("Hottest scanner", ("max(rm_device_cpu_temperature_celsius)", "")),
            8,
            5,
        ),
        g.place(
            timeseries("Devices by state", ("sum by (state) (rm_fleet_devices)", "{{state}}")),
            12,
            8,
        ),
        g.place(
            prom_table(
                "Silent for more than 5 minutes (seconds)",
                "time() - rm_device_last_seen_timestamp_seconds > 300",
            ),
            12,
            8,
        ),
        g.row("Versions"),
        g.place(
            timeseries(
                "Agent versions",
                ("count by (agent_version) (rm_device_info)", "{{agent_version}}"),
            ),
            12,
            8,
        ),
        g.place(
            timeseries(
                "Model versions",
                ("count by (model_version) (rm_device_info)", "{{model_version}}"),
            ),
            12,
            8,
        ),
        g.place(
            prom_table("Rollouts: current state", "rm_ota_rollout_state == 1"),
            12,
            8,
        ),
        g.place(
            timeseries(
                "Rollout progress",
                ("sum by (rollout, status) (rm_ota_rollout_devices)", "{{rollout}} {{status}}"),
            ),
            12,
            8,
        ),
        g.row("Queues and timings"),
        g.place(
            timeseries(
                "Outbox depth, 10 fullest scanners (alert: growing 15 min)",
                ("topk(10, rm_device_outbox_depth)", "{{device_id}}"),
            ),
            12,
            8,
        ),
        g.place(
            timeseries(
                "Read time per receipt across the fleet",
                ("quantile(0.5, rm_device_inference_seconds)", "median"),
                ("max(rm_device_inference_seconds)", "slowest"),
                unit="s",
            ),
            12,
            8,
        ),
        g.place(
            timeseries(
                "CPU temperature, 10 hottest",
                ("topk(10, rm_device_cpu_temperature_celsius)", "{{device_id}}"),
                unit="celsius",
            ),
            24,
            8,
        ),
    ]
    return dashboard("rm-fleet", "Receipts: fleet", ["fleet"], panels)


#: Grafana expands `$__timeFilter(col)` to a range on `col` and `$organization` to the chosen
#: organisations, quoted; the tests substitute the same to run these on PostgreSQL.
RECEIPTS_PER_DAY = """SELECT r.effective_date::timestamp AS time, count(*) AS receipts
FROM receipts r
WHERE $__timeFilter(r.effective_date) AND
      r.organization_id IN (SELECT id FROM organizations WHERE name IN ($organization))
GROUP BY 1
ORDER BY 1"""

SPEND_PER_DAY = """SELECT r.effective_date::timestamp AS time, r.currency AS metric,
       sum(r.total) AS spend
FROM receipts r
WHERE $__timeFilter(r.effective_date) AND
      r.organization_id IN (SELECT id FROM organizations WHERE name IN ($organization))
      AND r.total IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 2"""

NEEDS_REVIEW_PER_DAY = """SELECT r.effective_date::timestamp AS time,
       avg(CASE WHEN r.needs_review THEN 1.0 ELSE 0.0 END) AS needs_review
FROM receipts r
WHERE $__timeFilter(r.effective_date) AND
      r.organization_id IN (SELECT id FROM organizations WHERE name IN ($organization))
GROUP BY 1
ORDER BY 1"""

TOP_MERCHANTS = """SELECT coalesce(r.merchant, '(unread)') AS merchant, r.currency,
       count(*) AS receipts, sum(r.total) AS spend
FROM receipts r
WHERE $__timeFilter(r.effective_date) AND
      r.organization_id IN (SELECT id FROM organizations WHERE name IN ($organization))
GROUP BY 1, 2
ORDER BY spend DESC NULLS LAST, receipts DESC
LIMIT 20"""

RECEIPTS_BY_SCANNER = """SELECT d.device_id AS scanner, count(*) AS receipts,
       max(r.received_at) AS last_receipt
FROM receipts r JOIN devices d ON d.id = r.device_id
WHERE $__timeFilter(r.effective_date) AND
      r.organization_id IN (SELECT id FROM organizations WHERE name IN ($organization))
GROUP BY 1
ORDER BY 2 DESC"""

ORGANIZATIONS = "SELECT name FROM organizations ORDER BY name"

BUSINESS_QUERIES = {
    "receipts_per_day": RECEIPTS_PER_DAY,
    "spend_per_day": SPEND_PER_DAY,
    "needs_review_per_day": NEEDS_REVIEW_PER_DAY,
    "top_merchants": TOP_MERCHANTS,
    "receipts_by_scanner": RECEIPTS_BY_SCANNER,
    "organizations": ORGANIZATIONS,
}


def business() -> Json:
    g = _Layout()
    variable = {
        "name": "organization",
        "label": "Organisation",
        "type": "query",
        "datasource": _PG,
        "query": ORGANIZATIONS,
        "definition": ORGANIZATIONS,
        "multi": True,
        "includeAll": True,
        "current": {"text": "All", "value": "$__all"},
        "refresh": 1,
    }
    panels = [
        g.place(sql("barchart", "Receipts per day", RECEIPTS_PER_DAY), 12, 9),
        g.place(sql("timeseries", "Spend per day by currency", SPEND_PER_DAY), 12, 9),
        g.place(
            sql("timeseries", "Share needing review", NEEDS_REVIEW_PER_DAY, unit="percentunit"),
            12,
            8,
        ),
        g.place(sql("table", "Receipts by scanner", RECEIPTS_BY_SCANNER, fmt="table"), 12, 8),
        g.place(sql("table", "Top merchants", TOP_MERCHANTS, fmt="table"), 24, 10),
    ]
    return dashboard(
        "rm-business",
        "Receipts: business",
        ["business"],
        panels,
        time_from="now-30d",
        variables=[variable],
    )


def build_all() -> dict[str, Json]:
    """File stem -> dashboard model."""
    return {"ops": ops(), "fleet": fleet(), "business": business()}


def render(model: Json) -> str:
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path = DASHBOARD_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, model in build_all().items():
        path = directory / f"{stem}.json"
        path.write_text(render(model))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all():
        print(written)
