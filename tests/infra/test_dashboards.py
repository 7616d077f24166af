"""Dashboards as code: the JSON files match the generator, panels are well formed, every PromQL
query parses (promtool) and uses declared metrics, and the business SQL runs on the server's
real schema (PostgreSQL migrated by Alembic) with the right answers."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from infra.grafana import dashboards
from tests.infra.contract import undeclared

MODELS = dashboards.build_all()


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


def _promql() -> list[tuple[str, str]]:
    return [
        (f"{model['uid']}/{panel['title']}", target["expr"])
        for model in MODELS.values()
        for panel in _panels(model)
        for target in panel["targets"]
        if "expr" in target
    ]


def test_json_files_are_what_the_generator_writes() -> None:
    on_disk = sorted(p.stem for p in dashboards.DASHBOARD_DIR.glob("*.json"))
    assert on_disk == sorted(MODELS)
    for stem, model in MODELS.items():
        path = dashboards.DASHBOARD_DIR / f"{stem}.json"
        assert path.read_text() == dashboards.render(model), (
            f"{path} is stale: run `receipts grafana build`"
        )


def test_three_dashboards_with_unique_uids_and_panel_ids() -> None:
    uids = [m["uid"] for m in MODELS.values()]
    assert sorted(uids) == ["rm-business", "rm-fleet", "rm-ops"]
    for model in MODELS.values():
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids)), model["uid"]
        assert len(_panels(model)) >= 5, model["uid"]


def test_panels_fit_the_grid_without_overlapping() -> None:
    for model in MODELS.values():
        taken: set[tuple[int, int]] = set()
        for panel in model["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            cells = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & taken, f"{model['uid']}: {panel['title']} overlaps"
            taken |= cells


def test_panels_use_the_provisioned_data_sources() -> None:
    allowed = {dashboards.PROMETHEUS_UID, dashboards.POSTGRES_UID}
    for model in MODELS.values():
        for panel in _panels(model):
            assert panel["datasource"]["uid"] in allowed
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
    business = MODELS["business"]
    assert {p["datasource"]["uid"] for p in _panels(business)} == {dashboards.POSTGRES_UID}


def test_promql_uses_only_declared_metrics() -> None:
    for where, expr in _promql():
        assert undeclared(expr) == set(), where


def test_promql_parses(tmp_path: Path) -> None:
    """promtool parses every panel query (as a recording rule), Grafana's variables filled in."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install prometheus")
    rules = [
        {"record": f"panel:q{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, (_, expr) in enumerate(_promql())
    ]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # And the check can fail: a broken query is refused.
    rules.append({"record": "panel:broken", "expr": "sum by (route (rm_http_requests_total)"})
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    bad = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert bad.returncode != 0


# --------------------------------------------------------------------------- business SQL


def _grafana_expand(sql: str, orgs: list[str], start: dt.date, end: dt.date) -> str:
    """What Grafana's PostgreSQL data source sends for `$__timeFilter` and `$organization`."""
    sql = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        lambda m: (
            f"{m.group(1)} BETWEEN '{start.isoformat()}T00:00:00Z' "
            f"AND '{end.isoformat()}T23:59:59Z'"
        ),
        sql,
    )
    quoted = ",".join("'" + o.replace("'", "''") + "'" for o in orgs)
    return sql.replace("$organization", quoted)


@pytest.mark.postgres
def test_business_queries_on_the_server_schema(pg_url: str) -> None:
    from server.db.migrate import migrate
    from server.db.models import Device, Organization, Receipt

    migrate(pg_url)
    engine = create_engine(pg_url)
    day1, day2 = dt.date(2024, 5, 1), dt.date(2024, 5, 2)
    with Session(engine) as session:
        shop, other = Organization(name="Corner Shop"), Organization(name="Other Ltd")
        session.add_all([shop, other])
        session.flush()
        till = Device(device_id="till-1", organization_id=shop.id)
        elsewhere = Device(device_id="far-1", organization_id=other.id)
        session.add_all([till, elsewhere])
        session.flush()

        def receipt(device: Device, day: dt.date, total: str | None, **kw: Any) -> Receipt:
            return Receipt(
                id=uuid.uuid4(),
                organization_id=device.organization_id,
                device_id=device.id,
                captured_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
                effective_date=day,
                total=None if total is None else Decimal(total),
                currency="EUR",
                document={},
                **kw,
            )

        session.add_all(
            [
                receipt(till, day1, "10.50", merchant="Bakery"),
                receipt(till, day1, "4.25", merchant="Bakery", needs_review=True),
                receipt(till, day2, "20.00", merchant="Hardware"),
                receipt(till, day2, None),
                receipt(elsewhere, day1, "999.99", merchant="Not ours"),
            ]
        )
        session.commit()

    def run(name: str) -> list[tuple[Any, ...]]:
        sql = _grafana_expand(dashboards.BUSINESS_QUERIES[name], ["Corner Shop"], day1, day2)
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]

    try:
        assert run("receipts_per_day") == [
            (dt.datetime(2024, 5, 1), 2),
            (dt.datetime(2024, 5, 2), 2),
        ]
        assert run("spend_per_day") == [
            (dt.datetime(2024, 5, 1), "EUR", Decimal("14.75")),
            (dt.datetime(2024, 5, 2), "EUR", Decimal("20.00")),
        ]
        review = run("needs_review_per_day")
        assert [float(v) for _, v in review] == [0.5, 0.0]
        assert run("top_merchants")[0] == ("Hardware", "EUR", 1, Decimal("20.00"))
        assert {r[0] for r in run("top_merchants")} == {"Hardware", "Bakery", "(unread)"}
        assert [r[:2] for r in run("receipts_by_scanner")] == [("till-1", 4)]
        assert run("organizations") == [("Corner Shop",), ("Other Ltd",)]
    finally:
        engine.dispose()
