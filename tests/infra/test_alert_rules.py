"""Alert rules: promtool checks the config and runs the rule unit tests; every alert is tested
both firing and silent, and uses only metrics the contract (infra/metrics.md) declares."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.contract import INFRA, contract, series_names, undeclared

PROM = INFRA / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))


def promtool(*args: str, cwd: Path = PROM) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: apt-get install prometheus (infra/scripts/bootstrap.sh)")
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _rules() -> list[dict[str, Any]]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def _alert_cases() -> list[dict[str, Any]]:
    cases = []
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def test_prometheus_config_is_valid() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_file_is_valid(path: Path) -> None:
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_rule_unit_tests_pass(path: Path) -> None:
    result = promtool("test", "rules", str(path.relative_to(PROM)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_catches_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit tests can fail: the same test with a threshold one step off is refused."""
    source = yaml.safe_load((PROM / "tests" / "server_test.yml").read_text())
    source["rule_files"] = [str(PROM / "rules" / "server.yml")]
    first = source["tests"][0]
    first["alert_rule_test"][0]["eval_time"] = "3m"  # it fires at 3m, so "none at 3m" is wrong
    broken = tmp_path / "broken_test.yml"
    broken.write_text(yaml.safe_dump(source))
    result = promtool("test", "rules", str(broken), cwd=tmp_path)
    assert result.returncode != 0
    assert "ResponseTimeHigh" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    fired = {c["alertname"] for c in _alert_cases() if c.get("exp_alerts")}
    silent = {c["alertname"] for c in _alert_cases() if not c.get("exp_alerts")}
    assert alerts - fired == set(), "alerts no unit test makes fire"
    assert alerts - silent == set(), "alerts no unit test checks staying silent"


def test_every_alert_has_severity_and_text() -> None:
    for rule in _rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_launch_plan_thresholds() -> None:
    """The launch plan's numbers, as written in the rules (behaviour: the promtool tests)."""
    by_name = {r.get("alert") or r.get("record"): r for r in _rules()}
    expectations = {
        "ResponseTimeHigh": ("> 0.5", "2m"),  # three 1-minute evaluations in a row
        "ResponseTimeSustainedHigh": ("> 1", "15m"),
        "ErrorRateHigh": ("> 0.01", "5m"),
        "ErrorRateCritical": ("> 0.05", "10m"),
        "CpuHigh": ("> 0.8", "5m"),
        "MemoryHigh": ("> 0.85", "5m"),
        "ServiceDown": ("== 0", "1m"),
    }
    for name, (comparison, duration) in expectations.items():
        rule = by_name[name]
        assert comparison in rule["expr"], name
        assert rule["for"] == duration, name
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            assert group["interval"] == "1m", group["name"]


def test_rules_use_only_declared_metrics() -> None:
    recorded = {r["record"] for r in _rules() if "record" in r}
    for rule in _rules():
        expr = rule["expr"]
        for name in recorded:
            expr = expr.replace(name, "")
        assert undeclared(expr) == set(), rule.get("alert") or rule.get("record")


def test_contract_parser_sees_names() -> None:
    """The helpers the checks above rely on find names and notice an undeclared one."""
    assert contract()["rm_http_request_duration_seconds"] == "histogram"
    expr = 'sum(rate(rm_http_requests_total{status=~"5.."}[5m])) / rm_not_a_metric'
    assert series_names(expr) == {"rm_http_requests_total", "rm_not_a_metric"}
    assert undeclared(expr) == {"rm_not_a_metric"}
    assert undeclared("rate(rm_ingest_lag_seconds_bucket[5m])") == set()
