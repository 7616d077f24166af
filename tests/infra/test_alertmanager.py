"""Alertmanager routing: the config passes `amtool check-config`, every alert of the Prometheus
rules files lands in the receivers the policy names (`amtool config routes test`), Prometheus
sends its alerts there, and inhibition works in a real Alertmanager process.

The alert list comes from infra/prometheus/rules/*.yml, so a new alert fails here until it
carries `severity` and `team` labels and routes where the policy says.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_tcp_port, wait_for_port
from tests.infra.contract import INFRA

CONFIG = INFRA / "alertmanager" / "alertmanager.yml"
RULE_FILES = sorted((INFRA / "prometheus" / "rules").glob("*.yml"))
SEVERITIES = {"critical", "warning"}
TEAMS = {"platform", "fleet"}


def alerts() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out.extend(r for r in group["rules"] if "alert" in r)
    return out


def expected_receivers(labels: dict[str, str]) -> list[str]:
    """The policy: critical pages; fleet alerts go to the fleet; other warnings are tickets."""
    out = []
    if labels["severity"] == "critical":
        out.append("page")
    if labels["team"] == "fleet":
        out.append("fleet")
    elif labels["severity"] == "warning":
        out.append("ticket")
    return out


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("amtool")
    if binary is None:
        pytest.fail(
            "amtool is missing: apt-get install prometheus-alertmanager "
            "(infra/scripts/bootstrap.sh)"
        )
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def test_config_is_valid() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "3 receivers" in result.stdout


def test_the_rules_files_have_alerts_to_route() -> None:
    names = [a["alert"] for a in alerts()]
    assert len(names) >= 15 and len(set(names)) == len(names)
    assert {"ServiceDown", "ScannerOffline", "OtaRolloutHalted"} <= set(names)


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: r["alert"])
def test_every_alert_lands_in_the_receivers_of_the_policy(rule: dict[str, Any]) -> None:
    labels = {str(k): str(v) for k, v in (rule.get("labels") or {}).items()}
    assert labels.get("severity") in SEVERITIES, (
        f"{rule['alert']}: severity must be one of {SEVERITIES}"
    )
    assert labels.get("team") in TEAMS, f"{rule['alert']}: team must be one of {TEAMS}"
    expected = expected_receivers(labels)
    pairs = [f"{k}={v}" for k, v in {"alertname": rule["alert"], **labels}.items()]
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={','.join(expected)}",
        *pairs,
    )
    assert result.returncode == 0, (rule["alert"], expected, result.stdout, result.stderr)
    assert result.stdout.strip() == ",".join(expected)


def test_the_policy_check_can_fail() -> None:
    """A wrong expectation is reported by amtool (so the test above can catch a bad route)."""
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        "--verify.receivers=ticket",
        "alertname=ServiceDown",
        "severity=critical",
        "team=platform",
    )
    assert result.returncode != 0
    assert "did not match" in result.stdout + result.stderr


def test_prometheus_and_compose_send_alerts_to_alertmanager() -> None:
    prom = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    targets = [
        t
        for am in prom["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    assert targets == ["alertmanager:9093"]
    service = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]["alertmanager"]
    assert (
        "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
        in (service["volumes"])
    )
    assert "9093:9093" in service["ports"]


# --------------------------------------------------------------------------- a real Alertmanager


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail("alertmanager is missing: apt-get install prometheus-alertmanager")
    port = free_tcp_port()
    with (tmp_path / "alertmanager.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={CONFIG}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port("127.0.0.1", port, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _post(url: str, body: Any) -> None:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def _alert(name: str) -> dict[str, Any]:
    rule = next(r for r in alerts() if r["alert"] == name)
    labels = {"alertname": name, "job": "receipts-api", "instance": "api-1:8000"}
    return {"labels": labels | {k: str(v) for k, v in rule["labels"].items()}}


def test_a_critical_silences_the_warnings_of_its_symptom_in_alertmanager(alertmanager: str):
    firing = [_alert(n) for n in ("ErrorRateCritical", "ErrorRateHigh", "ResponseTimeHigh")]
    offline = _alert("ScannerOffline")
    offline["labels"]["device_id"] = "till-1"
    firing.append(offline)
    _post(f"{alertmanager}/api/v2/alerts", firing)

    def status() -> dict[str, list[str]]:
        with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts", timeout=5) as r:
            got = json.load(r)
        return {a["labels"]["alertname"]: a["status"]["inhibitedBy"] for a in got}

    # Alertmanager lists a posted alert before its inhibitor has taken the critical one in (a
    # busy machine shows the gap), so wait for the inhibition, not only for the alerts.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s = status()
        if len(s) == 4 and s.get("ErrorRateHigh"):
            break
        time.sleep(0.1)
    assert set(s) == {"ErrorRateCritical", "ErrorRateHigh", "ResponseTimeHigh", "ScannerOffline"}
    assert s["ErrorRateHigh"], "the warning of the same symptom is inhibited"
    assert not s["ErrorRateCritical"] and not s["ResponseTimeHigh"]
    assert not s["ScannerOffline"], "another symptom's warning still goes out"

    # a service that is down silences every warning of that job and instance
    _post(f"{alertmanager}/api/v2/alerts", [_alert("ServiceDown")])
    deadline = time.monotonic() + 10
    while not (s := status()).get("ResponseTimeHigh") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert s["ResponseTimeHigh"] and s["ScannerOffline"]
    assert not s["ErrorRateCritical"]
