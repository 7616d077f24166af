"""OTA rollout end to end, every part in its own process: Mosquitto, `receipts server`,
`receipts ingest`, `receipts provision rollout-tick` and two `receipts agent` scanners (the real
pipeline, Tesseract), on PostgreSQL.

A signed models release is uploaded to the server and rolled out in two stages (canary, then
the rest). Each scanner gets its `ota` command over MQTT, downloads the artifact from the
server's signed link over HTTP, checks the manifest signature and the artifact's sha256,
unpacks it into its other A/B slot, reads the release's sample receipts with it (self-test),
switches, and reports back; ingest records the result and the rollout moves on to the next
wave, then completes. Then a release whose models fail the self-test: the canary scanner rolls
back on its own, the rollout halts, and the other scanner is never asked to install it.

Then releases a scanner must refuse before switching anything: one signed with a key the server
still accepts but the scanners no longer trust (a retired key), and one whose artifact was
changed on the server after it was signed. The canary refuses each (``bad_signature``, then
``download``: the sha256 the signed manifest pins), reports it, and the rollout halts.

Scanning never stops: receipts are dropped into both scanners' folders before, during and after
every update, and each one reaches the server's database, once; around every install the
scanner's captures pause no longer than the install itself plus a few seconds.
(tests/edge_agent/ota covers refusals, probation and power cuts with the test as the server.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from edge_agent.ota.slots import SlotStore
from provisioning.release import Release, sha256_file
from provisioning.signing import generate_signing_key, public_key_pem
from server.accounts.roles import Role
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.organizations import service as orgs
from tests.conftest import Mosquitto, free_tcp_port, wait_for_port
from tests.e2e.test_scan_to_server import Processes, wait_until
from tests.edge_agent.ota.test_ota_e2e import Feeder, release

ROOT = Path(__file__).resolve().parents[2]
ORG = "OTA Shop"
SCANNERS = ["ota-till-1", "ota-till-2"]
GOOD = "find_receipt: false\nocr: {type: tesseract}\n"
BROKEN = "find_receipt: false\nocr: {type: tesseract, psm: 10}\n"  # reads no total
#: Sample receipts in a release's self-test: an install reads longer than one scan.
SAMPLES = 2
#: Receipts kept waiting in each scanner's folder while updates run: it never runs out of work.
BACKLOG = 2


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
    key, retired = generate_signing_key(), generate_signing_key()
    key_file = tmp_path / "release-key.pem"
    key_file.write_bytes(public_key_pem(key))
    retired_file = tmp_path / "retired-key.pem"  # the server still accepts it; scanners don't
    retired_file.write_bytes(public_key_pem(retired))
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
            "RM_FLEET__RELEASE_PUBLIC_KEYS": json.dumps([str(key_file), str(retired_file)]),
            "RM_FLEET__PUBLIC_URL": f"http://127.0.0.1:{api_port}",
            "PYTHONPATH": str(ROOT),
        }
    )
    # The registry is set up in-process (the CLI's admin commands are the same service calls,
    # and four interpreter start-ups would triple this test's time).
    migrate(pg_url)
    engine = create_db_engine(pg_url)
    with session_factory(engine).begin() as session:
        orgs.create_organization(session, ORG)
        for device_id in SCANNERS:
            orgs.add_device(session, ORG, device_id)
        token = orgs.create_token(session, ORG, "e2e", Role.ADMIN).token
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
        yield {
            "procs": procs,
            "client": client,
            "key": key,
            "retired": retired,
            "agents": agents,
            "tmp": tmp_path,
            "engine": engine,
        }
    finally:
        client.close()
        procs.stop_all()
        engine.dispose()


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


def _online(client: httpx.Client) -> bool:
    items = client.get("/devices").json()["items"]
    return sorted(d["device_id"] for d in items if d["state"] == "online") == SCANNERS


def _wait_for_rollout(stack: dict[str, Any], rollout_id: str, state: str) -> dict[str, Any]:
    def reached() -> bool:
        stack["procs"].assert_alive()
        return _state(stack["client"], rollout_id)["state"] == state

    wait_until(f"the rollout {state}", reached, timeout=90)
    return _state(stack["client"], rollout_id)


# --------------------------------------------------------------------------- scanning goes on


def _done(inbox: Path) -> int:
    """Receipts the scanner read and stored (the folder source moves them to done/)."""
    return len(list((inbox / "done").glob("r*.jpg")))


def _delivered(engine: Engine) -> dict[str, dict[str, dt.datetime]]:
    """Receipts in the server's database: device -> file name -> captured at (on the device)."""
    query = text(
        "SELECT d.device_id, r.document ->> 'source', r.captured_at "
        "FROM receipts r JOIN devices d ON d.id = r.device_id"
    )
    out: dict[str, dict[str, dt.datetime]] = {device_id: {} for device_id in SCANNERS}
    with engine.connect() as conn:
        for device_id, source, captured_at in conn.execute(query):
            assert source not in out[device_id], f"{device_id}: {source} stored twice"
            out[device_id][source] = captured_at
    return out


@contextlib.contextmanager
def _scanning(stack: dict[str, Any]) -> Iterator[None]:
    """Receipts dropped into every scanner's folder from before the block until two more were
    taken after it; on leaving, waits until every one of them is in the server's database."""
    inboxes = {d: stack["agents"][d] / "inbox" for d in SCANNERS}
    feeders = {d: Feeder(inbox, backlog=BACKLOG) for d, inbox in inboxes.items()}
    try:
        wait_until("a first receipt read", lambda: all(_done(i) for i in inboxes.values()))
        yield
        after = {d: _done(inbox) for d, inbox in inboxes.items()}
        wait_until(
            "two receipts read after the updates",
            lambda: all(_done(inbox) >= after[d] + 2 for d, inbox in inboxes.items()),
        )
    finally:
        fed = {d: f.stop() for d, f in feeders.items()}

    def arrived() -> bool:
        stack["procs"].assert_alive()
        return all(len(got) == fed[d] for d, got in _delivered(stack["engine"]).items())

    wait_until("every receipt dropped during the updates in the database", arrived, timeout=180)
    for device_id, got in _delivered(stack["engine"]).items():
        assert sorted(got) == sorted(f"r{i}.jpg" for i in range(fed[device_id]))
        assert not list((stack["agents"][device_id] / "inbox" / "failed").glob("*.jpg"))


#: The longest pause in a scanner's captures around an install, beyond the install itself.
MAX_PAUSE_S = 5.0


def _pause_around_install(stack: dict[str, Any], device_id: str, command: dict[str, Any]) -> float:
    """Seconds between `device_id`'s last capture before its ota `command` was sent and its first
    capture after the result, less the install's own length: how long scanning stopped beyond
    the install (a read waits for a self-test's end, so captures inside a short install are
    luck, not a property; that scanning carries on across it is). Raises if either is missing."""
    start = dt.datetime.fromisoformat(command["published_at"])
    end = dt.datetime.fromisoformat(command["finished_at"])
    times = sorted(_delivered(stack["engine"])[device_id].values())
    before = [t for t in times if t <= start]
    after = [t for t in times if t >= end]
    assert before and after, f"{device_id}: no capture before or after the install {command}"
    return (after[0] - before[-1]).total_seconds() - (end - start).total_seconds()


@pytest.mark.e2e
def test_a_staged_rollout_installs_then_a_failing_release_rolls_back_and_halts(
    stack: dict[str, Any],
) -> None:
    client: httpx.Client = stack["client"]
    tmp: Path = stack["tmp"]
    www = tmp / "www"
    www.mkdir()
    wait_until("both scanners online", lambda: _online(client), timeout=60)
    installs: list[tuple[str, dict[str, Any]]] = []  # (device, its ota command)

    with _scanning(stack):
        # 1. A good release, canary first, then the rest.
        rel = release(tmp, www, stack["key"], "models-2", GOOD, samples=SAMPLES)
        started = _rollout(client, _upload(client, rel))
        canary, rest = started["waves_devices"]
        assert len(canary) == 1 and len(rest) == 1 and sorted(canary + rest) == SCANNERS
        final = _wait_for_rollout(stack, started["id"], "completed")
        assert final["devices"] == {"updated": 2} and final["current_wave"] == 1
        for device_id in SCANNERS:
            result = _ota_result(client, device_id)
            assert result["status"] == "succeeded", result
            assert result["output"]["selftest"]["passed"] is True
            assert _installed(stack["agents"][device_id], stack["key"]) == "models-2"
            installs.append((device_id, result))
        # the canary finished before the second wave was sent to the other scanner
        first, second = _ota_result(client, canary[0]), _ota_result(client, rest[0])
        assert first["finished_at"] <= second["created_at"]

        def reported() -> bool:
            items = client.get("/devices").json()["items"]
            return all(d["model_versions"].get("release.models") == "models-2" for d in items)

        wait_until("both scanners report models-2 in their status", reported, timeout=30)

        # 2. A release whose models read nothing: the canary rolls back, the rollout halts.
        rel = release(tmp, www, stack["key"], "models-3", BROKEN, samples=SAMPLES)
        started = _rollout(client, _upload(client, rel))
        canary, rest = started["waves_devices"]
        final = _wait_for_rollout(stack, started["id"], "halted")
        assert final["devices"] == {"failed": 1, "pending": 1}, final
        assert "fail" in (final["reason"] or "")
        result = _ota_result(client, canary[0])
        assert result["status"] == "failed"
        assert result["output"]["reason"] == "selftest" and result["output"]["rolled_back"] is True
        installs.append((canary[0], result))
        # the canary is back on the previous release; the other never got models-3
        assert _installed(stack["agents"][canary[0]], stack["key"]) == "models-2"
        assert _installed(stack["agents"][rest[0]], stack["key"]) == "models-2"
        assert _ota_result(client, rest[0])["output"]["selftest"]["passed"] is True  # the old one

    # every receipt arrived (checked on leaving `_scanning`), also those read mid-install
    for device_id, command in installs:
        pause = _pause_around_install(stack, device_id, command)
        assert pause <= MAX_PAUSE_S, f"{device_id} stopped scanning {pause:.1f} s: {command}"
    stack["procs"].assert_alive()


@pytest.mark.e2e
def test_releases_the_scanner_cannot_verify_are_refused_and_halt_the_rollout(
    stack: dict[str, Any],
) -> None:
    client: httpx.Client = stack["client"]
    tmp: Path = stack["tmp"]
    www = tmp / "www"
    www.mkdir()
    wait_until("both scanners online", lambda: _online(client), timeout=60)

    with _scanning(stack):
        # 1. Signed with the retired key: the server takes it, the canary refuses it at once.
        rel = release(tmp, www, stack["retired"], "models-4", GOOD)
        started = _rollout(client, _upload(client, rel))
        canary, rest = started["waves_devices"]
        final = _wait_for_rollout(stack, started["id"], "halted")
        assert final["devices"] == {"failed": 1, "pending": 1}, final
        assert "fail" in (final["reason"] or "")
        result = _ota_result(client, canary[0])
        assert result["status"] == "failed" and result["output"]["reason"] == "bad_signature"
        assert "signature refused" in result["detail"]
        assert not client.get(f"/devices/{rest[0]}/commands").json()["items"]

        # 2. Changed on the server after it was signed: the artifact is not the one the
        #    signed manifest pins, so the canary stops at the download.
        rel = release(tmp, www, stack["key"], "models-5", GOOD)
        release_id = _upload(client, rel)
        stored = tmp / "releases" / f"{sha256_file(rel.artifact_path)}.tar.gz"
        data = bytearray(stored.read_bytes())
        data[-5] ^= 0xFF  # same size, other bytes
        stored.write_bytes(bytes(data))
        started = _rollout(client, release_id)
        canary, rest = started["waves_devices"]
        final = _wait_for_rollout(stack, started["id"], "halted")
        assert final["devices"] == {"failed": 1, "pending": 1}, final
        result = _ota_result(client, canary[0])
        assert result["status"] == "failed" and result["output"]["reason"] == "download"
        assert "sha256" in result["detail"]

    # nothing was switched on either scanner: both still read with the factory models
    for device_id in SCANNERS:
        assert _installed(stack["agents"][device_id], stack["key"]) is None
    stack["procs"].assert_alive()
