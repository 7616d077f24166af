"""OTA rollout end to end, every part in its own process: Mosquitto, `receipts server`,
`receipts ingest`, `receipts provision rollout-tick` and two `receipts agent` scanners (the real
pipeline, Tesseract), on PostgreSQL.

A signed models release is uploaded to the server and rolled out in two stages (canary, then
the rest). Each scanner gets its `ota` command over MQTT, downloads the artifact from the
server's signed link over HTTP, checks the manifest signature and the artifact's sha256,
unpacks it into its other A/B slot, reads the release's sample receipt with it (self-test),
switches, and reports back; ingest records the result and the rollout moves on to the next
wave, then completes. Then a release whose models fail the self-test: the canary scanner rolls
back on its own, the rollout halts, and the other scanner is never asked to install it.
(tests/edge_agent/ota covers refusals, probation and power cuts with the test as the server.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_agent.ota.slots import SlotStore
from provisioning.release import Release
from provisioning.signing import generate_signing_key, public_key_pem
from server.accounts.roles import Role
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.organizations import service as orgs
from tests.conftest import Mosquitto, free_tcp_port, wait_for_port
from tests.e2e.test_scan_to_server import Processes, wait_until
from tests.edge_agent.ota.test_ota_e2e import release

ROOT = Path(__file__).resolve().parents[2]
ORG = "OTA Shop"
SCANNERS = ["ota-till-1", "ota-till-2"]
GOOD = "find_receipt: false\nocr: {type: tesseract}\n"
BROKEN = "find_receipt: false\nocr: {type: tesseract, psm: 10}\n"  # reads no total


def _agent_config(folder: Path, device_id: str, broker: Mosquitto, key_file: Path) -> Path:
    (folder / "inbox").mkdir(parents=True)
    config = {
        "device_id": device_id,
        "broker": {
            "host": broker.host,
            "port": broker.port,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1,
        },
        "source": {"type": "folder", "path": "inbox", "settle_s": 0.3},
        "outbox": {"path": "outbox.sqlite3"},
        "telemetry": {"interval_s": 5},
        "pipeline": {"find_receipt": False},
        "ota": {
            "dir": "ota",
            "public_keys": [str(key_file)],
            "allow_http": True,  # the test server speaks HTTP; the signature still decides
            "probation_scans": 0,
        },
    }
    path = folder / "agent.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@pytest.fixture
def stack(tmp_path: Path, mosquitto: Mosquitto, pg_url: str) -> Iterator[dict[str, Any]]:
    key = generate_signing_key()
    key_file = tmp_path / "release-key.pem"
    key_file.write_bytes(public_key_pem(key))
    api_port = free_tcp_port()
    env = dict(os.environ)
    env.update(
        {
            "RM_DATABASE_URL": pg_url,
            "RM_MQTT__HOST": mosquitto.host,
            "RM_MQTT__PORT": str(mosquitto.port),
            "RM_INGEST__CLIENT_ID": "ota-ingest",
            "RM_INGEST__BATCH_MAX_WAIT_MS": "50",
            "RM_IMAGE_STORE__ROOT": str(tmp_path / "images"),
            "RM_SECRET_KEY": "e2e-" + "k" * 40,
            "RM_FLEET__RELEASES_DIR": str(tmp_path / "releases"),
            "RM_FLEET__RELEASE_PUBLIC_KEYS": json.dumps([str(key_file)]),
            "RM_FLEET__PUBLIC_URL": f"http://127.0.0.1:{api_port}",
            "PYTHONPATH": str(ROOT),
        }
    )
    # The registry is set up in-process (the CLI's admin commands are the same service calls,
    # and four interpreter start-ups would triple this test's time).
    migrate(pg_url)
    engine = create_db_engine(pg_url)
    try:
        with session_factory(engine).begin() as session:
            orgs.create_organization(session, ORG)
            for device_id in SCANNERS:
                orgs.add_device(session, ORG, device_id)
            token = orgs.create_token(session, ORG, "e2e", Role.ADMIN).token
    finally:
        engine.dispose()
    procs = Processes(tmp_path, env)
    procs.start("server", "server", "--port", str(api_port))
    procs.start("ingest", "ingest")
    procs.start("tick", "provision", "rollout-tick", "--every", "0.5")
    agents = {}
    for device_id in SCANNERS:
        config = _agent_config(tmp_path / device_id, device_id, mosquitto, key_file)
        procs.start(device_id, "agent", "--config", str(config))
        agents[device_id] = tmp_path / device_id
    wait_for_port("127.0.0.1", api_port, timeout=60)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{api_port}/api/v1/fleet",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    try:
        yield {"procs": procs, "client": client, "key": key, "agents": agents, "tmp": tmp_path}
    finally:
        client.close()
        procs.stop_all()


def _upload(client: httpx.Client, rel: Release) -> str:
    r = client.post(
        "/releases",
        data={"signature": rel.signature},
        files={"manifest": rel.manifest, "artifact": rel.artifact_path.read_bytes()},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _rollout(client: httpx.Client, release_id: str) -> dict[str, Any]:
    body = {"release_id": release_id, "canary_percent": 50, "waves": [100], "min_scans": 5}
    r = client.post("/rollouts", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _state(client: httpx.Client, rollout_id: str) -> dict[str, Any]:
    r = client.get(f"/rollouts/{rollout_id}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _ota_result(client: httpx.Client, device_id: str) -> dict[str, Any]:
    commands = client.get(f"/devices/{device_id}/commands").json()["items"]
    ota = [c for c in commands if c["name"] == "ota"]
    assert ota, f"{device_id} got no ota command"
    newest: dict[str, Any] = ota[0]
    return newest


def _installed(agent_dir: Path, key: Any) -> str | None:
    store = SlotStore(agent_dir / "ota" / "models")
    current = store.current()
    return None if current is None else store.verify(current, [key.public_key()]).release


@pytest.mark.e2e
def test_a_staged_rollout_installs_then_a_failing_release_rolls_back_and_halts(
    stack: dict[str, Any],
) -> None:
    client: httpx.Client = stack["client"]
    procs: Processes = stack["procs"]
    tmp: Path = stack["tmp"]
    www = tmp / "www"
    www.mkdir()

    def online() -> bool:
        items = client.get("/devices").json()["items"]
        return sorted(d["device_id"] for d in items if d["state"] == "online") == SCANNERS

    wait_until("both scanners online", online, timeout=60)

    # 1. A good release, canary first, then the rest.
    good = _upload(client, release(tmp, www, stack["key"], "models-2", GOOD))
    started = _rollout(client, good)
    canary, rest = started["waves_devices"]
    assert len(canary) == 1 and len(rest) == 1 and sorted(canary + rest) == SCANNERS
    rollout_id = started["id"]

    def completed() -> bool:
        procs.assert_alive()
        return _state(client, rollout_id)["state"] == "completed"

    wait_until("the rollout completed", completed, timeout=90)
    final = _state(client, rollout_id)
    assert final["devices"] == {"updated": 2} and final["current_wave"] == 1
    for device_id in SCANNERS:
        result = _ota_result(client, device_id)
        assert result["status"] == "succeeded", result
        assert result["output"]["selftest"]["passed"] is True
        assert _installed(stack["agents"][device_id], stack["key"]) == "models-2"
    # the canary finished before the second wave was sent to the other scanner
    first, second = _ota_result(client, canary[0]), _ota_result(client, rest[0])
    assert first["finished_at"] <= second["created_at"]

    def reported() -> bool:
        items = client.get("/devices").json()["items"]
        return all(d["model_versions"].get("release.models") == "models-2" for d in items)

    wait_until("both scanners report models-2 in their status", reported, timeout=30)

    # 2. A release whose models read nothing: the canary rolls back, the rollout halts.
    broken = _upload(client, release(tmp, www, stack["key"], "models-3", BROKEN))
    started = _rollout(client, broken)
    rollout_id = started["id"]
    canary, rest = started["waves_devices"]

    def halted() -> bool:
        procs.assert_alive()
        return _state(client, rollout_id)["state"] == "halted"

    wait_until("the rollout halted", halted, timeout=90)
    final = _state(client, rollout_id)
    assert final["devices"] == {"failed": 1, "pending": 1}, final
    assert "fail" in (final["reason"] or "")
    result = _ota_result(client, canary[0])
    assert result["status"] == "failed"
    assert result["output"]["reason"] == "selftest" and result["output"]["rolled_back"] is True
    # the canary is back on the previous release; the other never got models-3
    assert _installed(stack["agents"][canary[0]], stack["key"]) == "models-2"
    assert _installed(stack["agents"][rest[0]], stack["key"]) == "models-2"
    assert _ota_result(client, rest[0])["output"]["selftest"]["passed"] is True  # the old one
    procs.assert_alive()
