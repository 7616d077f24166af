"""`receipts grafana sync` against a recorded contract of Grafana's HTTP API.

Grafana itself cannot run here; a local server replays recorded request/response pairs
(tests/infra/fixtures/grafana/*.json) and checks every request the real grafana-client made.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaUnauthorizedError

from infra.grafana.cli import grafana
from infra.grafana.sync import SyncConfig, load_dashboards, sync
from tests.infra import grafana_replay

CONFIG = SyncConfig(
    prometheus_url="http://prometheus:9090",
    postgres_host="postgres:5432",
    postgres_database="receipts",
    postgres_user="grafana_reader",
    postgres_sslmode="disable",
)


def _cli_args(url: str, token: str, *extra: str) -> list[str]:
    return [
        "sync",
        "--url",
        url,
        "--token",
        token,
        "--prometheus-url",
        CONFIG.prometheus_url,
        "--pg-host",
        CONFIG.postgres_host,
        "--pg-database",
        CONFIG.postgres_database,
        "--pg-user",
        CONFIG.postgres_user,
        "--pg-sslmode",
        "disable",
        *extra,
    ]


def test_fresh_grafana_gets_everything_created() -> None:
    replay = grafana_replay.load("fresh_instance.json")
    with grafana_replay.serve(replay) as url:
        result = CliRunner().invoke(
            grafana,
            _cli_args(url, "glsa_test_token", "--pg-password", "reader-pw"),
            catch_exceptions=False,
        )
    assert replay.mismatches == []
    assert replay.complete
    assert result.exit_code == 0, result.output
    assert "datasource rm-postgres: created" in result.output
    assert "dashboard rm-ops: created" in result.output
    # What reached "Grafana" is the repository's dashboard, whole.
    posted = [r["body"] for r in replay.seen if r["path"] == "/api/dashboards/db"]
    by_uid = {m["uid"]: m for m in load_dashboards()}
    for body in posted:
        sent = body["dashboard"]
        assert {**sent, "id": None} == {**by_uid[sent["uid"]], "id": None}


def test_second_sync_updates_in_place_and_skips_unchanged() -> None:
    replay = grafana_replay.load("existing_instance.json")
    with grafana_replay.serve(replay) as url:
        api = GrafanaApi.from_url(url, credential="glsa_test_token")
        report = sync(api, CONFIG, load_dashboards())
    assert replay.mismatches == []
    assert replay.complete
    assert report.grafana_version == "11.1.0"
    assert report.actions == [
        ("datasource", "rm-prometheus", "updated"),
        ("datasource", "rm-postgres", "updated"),
        ("folder", "receipts", "unchanged"),
        ("dashboard", "rm-business", "unchanged"),
        ("dashboard", "rm-fleet", "updated"),
        ("dashboard", "rm-ops", "unchanged"),
    ]
    pg_update = next(
        r
        for r in replay.seen
        if (r["method"], r["path"]) == ("PUT", "/api/datasources/uid/rm-postgres")
    )
    assert "secureJsonData" not in pg_update["body"]  # no password given: the stored one stays


def test_rejected_token_is_an_error_that_says_what_to_do() -> None:
    replay = grafana_replay.load("unauthorized.json")
    with grafana_replay.serve(replay) as url:
        result = CliRunner().invoke(grafana, _cli_args(url, "glsa_revoked"))
    assert replay.complete
    assert result.exit_code == 1
    assert "refused the token (401)" in result.output
    assert "Admin role" in result.output


def test_a_client_that_strays_from_the_recording_fails() -> None:
    """The contract check can fail: the recording of a fresh Grafana does not fit an update."""
    replay = grafana_replay.load("existing_instance.json")
    replay.exchanges[2]["request"]["path"] = "/api/datasources/1"  # the old, id-based endpoint
    with grafana_replay.serve(replay) as url:
        api = GrafanaApi.from_url(url, credential="glsa_test_token")
        with pytest.raises(Exception, match="Server Error 500"):
            sync(api, CONFIG, load_dashboards())
    assert replay.mismatches
    assert "expected PUT /api/datasources/1" in replay.mismatches[0]


def test_wrong_token_header_is_noticed() -> None:
    replay = grafana_replay.load("unauthorized.json")
    replay.exchanges[1]["response"] = {"status": 200, "body": {}}
    replay.auth = "Bearer someone-else"
    with grafana_replay.serve(replay) as url:
        api = GrafanaApi.from_url(url, credential="glsa_revoked")
        with pytest.raises(Exception, match="500"):
            sync(api, CONFIG, load_dashboards())
    assert any("authorization" in m for m in replay.mismatches)


def test_unauthorized_is_raised_by_the_library() -> None:
    replay = grafana_replay.load("unauthorized.json")
    with grafana_replay.serve(replay) as url:
        api = GrafanaApi.from_url(url, credential="glsa_revoked")
        with pytest.raises(GrafanaUnauthorizedError):
            sync(api, CONFIG, load_dashboards())
