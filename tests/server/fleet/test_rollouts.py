"""Staged OTA rollouts: planner, waves on success, halts on failed installs and on quality."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.protocol import CommandResult, device_topic
from models.receipt import MoneyField, Receipt, ReceiptFields, TextField
from provisioning.release import SelfTestCase, build_release
from provisioning.signing import generate_signing_key
from server.fleet import rollouts
from server.fleet.publisher import MemoryPublisher
from server.fleet.runtime import FleetRuntime
from server.fleet.settings import FleetSettings
from server.images.local import LocalImageStore
from server.settings import Settings
from tests.server.conftest import Db, Tenant, ingest, make_tenant
from tests.server.fleet.conftest import auth
from tests.server.helpers import receipt_message, receipt_topic

DEVICES = [f"till-{i}" for i in range(10)]


def test_plan_is_deterministic_and_covers_every_device_once():
    ids = [f"dev-{i}" for i in range(37)]
    waves = rollouts.plan(ids, 5, [30, 100], salt="r1")
    assert waves == rollouts.plan(list(reversed(ids)), 5, [30, 100], salt="r1")
    assert sorted(d for w in waves for d in w) == sorted(ids)
    assert [len(w) for w in waves] == [2, 10, 25]
    assert rollouts.plan(["a"], 1, [100]) == [["a"], []]  # a canary has at least one device
    assert rollouts.plan(ids, 5, [30, 100], salt="r2") != waves  # another rollout, other canary
    for bad in ([50, 40, 100], [30, 90]):
        with pytest.raises(ValueError, match=r"cumulative|100"):
            rollouts.plan(ids, bad[0], bad[1:])


def test_quality_gate_needs_min_scans_and_a_drop_above_the_threshold():
    good = rollouts.Quality(10, 0.9, 1.0)
    assert rollouts.quality_halt(rollouts.Quality(10, 0.5, 1.0), good, 0.1, 5) is not None
    assert rollouts.quality_halt(rollouts.Quality(10, 0.85, 1.0), good, 0.1, 5) is None
    assert rollouts.quality_halt(rollouts.Quality(10, 0.9, 0.5), good, 0.1, 5) is not None
    assert rollouts.quality_halt(rollouts.Quality(4, 0.1, 0.0), good, 0.1, 5) is None


@pytest.fixture
def ota(
    db: Db, store: LocalImageStore, tmp_path: Path
) -> Iterator[tuple[TestClient, MemoryPublisher]]:
    publisher = MemoryPublisher()
    runtime = FleetRuntime(
        settings=FleetSettings(releases_dir=tmp_path / "releases", public_url="https://rm.test"),
        sessions=db.sessions,
        publisher=publisher,
        url_key=b"k" * 32,
    )
    settings = Settings(database_url=db.url, image_store={"type": "local", "root": str(store.root)})
    from server.api.app import create_app

    with TestClient(create_app(settings, engine=db.engine, images=store, fleet=runtime)) as c:
        yield c, publisher


def _upload(client: TestClient, tenant: Tenant, tmp_path: Path) -> str:
    src = tmp_path / "src"
    src.mkdir()
    (src / "pipeline.yaml").write_text("engine: test\n")
    (src / "sample.jpg").write_bytes(b"jpeg")
    built = build_release(
        src,
        tmp_path / "a.tar.gz",
        release="models-7",
        kind="models",
        selftest=[SelfTestCase(image="sample.jpg", expect={"total": "1.00"})],
        key=generate_signing_key(),
    )
    r = client.post(
        "/api/v1/fleet/releases",
        headers=auth(tenant),
        data={"signature": built.signature},
        files={"manifest": built.manifest, "artifact": built.artifact_path.read_bytes()},
    )
    assert r.status_code == 201, r.text
    bad = client.post(
        "/api/v1/fleet/releases",
        headers=auth(tenant),
        data={"signature": built.signature},
        files={"manifest": built.manifest, "artifact": b"not it"},
    )
    assert bad.status_code in (409, 422)
    return str(r.json()["id"])


def _start(client: TestClient, tenant: Tenant, release: str, **kw: object) -> dict[str, Any]:
    body = {"release_id": release, "canary_percent": 10, "waves": [50, 100], **kw}
    r = client.post("/api/v1/fleet/rollouts", headers=auth(tenant), json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _ota_commands(publisher: MemoryPublisher) -> dict[str, dict[str, Any]]:
    """Device id -> the latest ota command published to it."""
    out = {}
    for topic, payload, _q, _r in publisher.messages:
        if "/cmd/" in topic:
            out[topic.split("/")[3]] = json.loads(payload)
    return out


def _results(
    db: Db, store: LocalImageStore, commands: dict[str, dict[str, Any]], status: dict[str, str]
):
    msgs = []
    for device, cmd in commands.items():
        if device in status:
            cid = uuid.UUID(cmd["command_id"])
            progress = CommandResult(
                command_id=cid, status="in_progress", output={"stage": "verify"}
            )
            final = CommandResult(
                command_id=cid,
                status=status[device],
                output={}
                if status[device] == "succeeded"
                else {"reason": "selftest", "rolled_back": True},
            )
            topic = device_topic(device, f"cmd/{cid}/result")
            msgs += [(topic, progress.to_json()), (topic, final.to_json())]
    ingest(db, store, msgs)


def _tick(client: TestClient, tenant: Tenant, rollout: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/api/v1/fleet/rollouts/{rollout['id']}/tick", headers=auth(tenant))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_canary_then_waves_advance_on_success(db, store, ota, tmp_path):
    client, publisher = ota
    tenant = make_tenant(db, "Acme", *DEVICES)
    rollout = _start(client, tenant, _upload(client, tenant, tmp_path))
    waves = rollout["waves_devices"]
    assert [len(w) for w in waves] == [1, 4, 5]
    assert rollout["state"] == "running" and rollout["current_wave"] == 0
    sent = _ota_commands(publisher)
    assert set(sent) == set(waves[0])
    args = next(iter(sent.values()))["args"]
    assert args["url"].startswith("https://rm.test/api/v1/fleet/releases/")
    # the signed link serves the artifact without a token; a tampered one is refused
    path = args["url"].removeprefix("https://rm.test")
    assert client.get(path).status_code == 200
    assert client.get(path[:-2] + "xx").status_code == 403
    assert _tick(client, tenant, rollout)["current_wave"] == 0  # nothing reported yet
    metrics = client.get("/metrics").text  # the rollout's state and devices, for the OTA alert
    assert f'rm_ota_rollout_state{{rollout="{rollout["id"]}",state="running"}} 1.0' in metrics
    assert f'rm_ota_rollout_state{{rollout="{rollout["id"]}",state="halted"}} 0.0' in metrics
    assert f'rm_ota_rollout_devices{{rollout="{rollout["id"]}",status="pending"}} 9.0' in metrics
    for wave in (0, 1, 2):
        _results(db, store, _ota_commands(publisher), dict.fromkeys(waves[wave], "succeeded"))
        state = _tick(client, tenant, rollout)
        if wave < 2:
            assert (state["state"], state["current_wave"]) == ("running", wave + 1)
            assert set(waves[wave + 1]) <= set(_ota_commands(publisher))
    assert state["state"] == "completed" and state["devices"] == {"updated": 10}


def test_failed_installs_above_threshold_halt_and_resume_forgives(db, store, ota, tmp_path):
    client, publisher = ota
    tenant = make_tenant(db, "Acme", *DEVICES[:4])
    release = _upload(client, tenant, tmp_path)
    rollout = _start(client, tenant, release, canary_percent=50, waves=[100], failure_threshold=0.3)
    canary = rollout["waves_devices"][0]
    _results(db, store, _ota_commands(publisher), {canary[0]: "succeeded", canary[1]: "failed"})
    state = _tick(client, tenant, rollout)
    assert state["state"] == "halted" and "failed installs: 1 of 2" in state["reason"]
    assert _tick(client, tenant, rollout)["state"] == "halted"  # stays halted
    r = client.post(f"/api/v1/fleet/rollouts/{rollout['id']}/resume", headers=auth(tenant))
    assert r.json()["state"] == "running" and r.json()["current_wave"] == 1
    abort = client.post(f"/api/v1/fleet/rollouts/{rollout['id']}/abort", headers=auth(tenant))
    assert abort.json()["state"] == "aborted"


def _receipts(device: str, n: int, *, low: bool) -> list[tuple[str, bytes]]:
    out = []
    for _ in range(n):
        msg = receipt_message(captured_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
        if low:
            fields = ReceiptFields(
                merchant=TextField(value="X", confidence=0.2, lines=[0]),
                total=MoneyField(value=Decimal("1.00"), confidence=0.3),
            )
            msg = msg.model_copy(
                update={"receipt": Receipt(fields=fields, ocr_engine="t", needs_review=True)}
            )
        out.append((receipt_topic(device), msg.to_json()))
    return out


@pytest.mark.parametrize(("scans", "halted"), [(3, True), (2, False)])
def test_a_quality_drop_halts_but_not_below_min_scans(db, store, ota, tmp_path, scans, halted):
    client, publisher = ota
    tenant = make_tenant(db, "Acme", *DEVICES[:4])
    release = _upload(client, tenant, tmp_path)
    rollout = _start(
        client,
        tenant,
        release,
        canary_percent=25,
        waves=[100],
        min_scans=3,
        quality_drop_threshold=0.1,
    )
    canary, rest = rollout["waves_devices"]
    _results(db, store, _ota_commands(publisher), {canary[0]: "succeeded"})
    ingest(db, store, _receipts(canary[0], scans, low=True) + _receipts(rest[0], scans, low=False))
    state = _tick(client, tenant, rollout)
    if halted:
        assert state["state"] == "halted" and state["reason"].startswith("quality:")
    else:
        assert (state["state"], state["current_wave"]) == ("running", 1)
