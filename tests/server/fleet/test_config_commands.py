"""Desired/reported configuration and commands through the API and ingest, on both databases.

The publisher here is the in-memory one; tests/server/fleet/test_broker.py does the same
against a real Mosquitto with a device played by a paho client.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from models.protocol import Command, CommandResult, ConfigDesired, ConfigReported, device_topic
from server.db.models import DeadLetter
from server.fleet.publisher import MemoryPublisher
from tests.server.conftest import Db, ingest, make_tenant
from tests.server.fleet.conftest import auth

CONFIG = "/api/v1/fleet/devices/{}/config"
COMMANDS = "/api/v1/fleet/devices/{}/commands"


def test_config_versions_publish_retained_and_take_the_devices_report(
    db: Db, store, client: TestClient, publisher: MemoryPublisher
):
    acme = make_tenant(db, "Acme", "till-1")
    h = auth(acme)
    empty = client.get(CONFIG.format("till-1"), headers=h).json()
    assert (empty["desired_version"], empty["in_sync"], empty["published"]) == (0, True, True)

    r = client.put(CONFIG.format("till-1"), json={"settings": {"ocr_threads": 2}}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["desired_version"], r.json()["published"], r.json()["in_sync"]) == (
        1,
        True,
        False,
    )
    r = client.put(
        CONFIG.format("till-1"),
        json={"settings": {"ocr_threads": 9, "upload_images": False}, "base_version": 1},
        headers=h,
    )
    assert r.json()["desired_version"] == 2
    topic, payload, qos, retain = publisher.messages[-1]
    assert (topic, qos, retain) == (device_topic("till-1", "config/desired"), 1, True)
    desired = ConfigDesired.model_validate_json(payload)
    assert desired.version == 2 and desired.settings == {"ocr_threads": 9, "upload_images": False}

    stale = client.put(CONFIG.format("till-1"), json={"settings": {}, "base_version": 1}, headers=h)
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "version_conflict")

    report = ConfigReported(
        version=2, settings={"upload_images": False}, rejected={"ocr_threads": "at most 4"}
    )
    older = ConfigReported(version=1, settings={"ocr_threads": 2})
    ingest(db, store, [(device_topic("till-1", "config/reported"), report.to_json())])
    ingest(db, store, [(device_topic("till-1", "config/reported"), older.to_json())])  # late copy
    state = client.get(CONFIG.format("till-1"), headers=h).json()
    assert state["reported_version"] == 2 and state["in_sync"] is True
    assert state["rejected"] == {"ocr_threads": "at most 4"}
    summary = client.get("/api/v1/fleet/devices/till-1", headers=h).json()["config"]
    assert summary == {
        "desired_version": 2,
        "reported_version": 2,
        "in_sync": True,
        "rejected": {"ocr_threads": "at most 4"},
    }


def test_unpublished_config_and_commands_stay_pending_and_go_with_the_next_delivery(
    db: Db, client: TestClient, publisher: MemoryPublisher
):
    acme = make_tenant(db, "Acme", "till-1")
    h = auth(acme)
    publisher.fail = True
    r = client.put(CONFIG.format("till-1"), json={"settings": {"quiet": "22-06"}}, headers=h)
    assert (r.status_code, r.json()["published"]) == (200, False)
    cmd = client.post(COMMANDS.format("till-1"), json={"name": "reboot"}, headers=h)
    assert cmd.status_code == 201 and cmd.json()["status"] == "pending"
    assert publisher.messages == []

    publisher.fail = False
    client.put(CONFIG.format("till-1"), json={"settings": {"quiet": "23-06"}}, headers=h)
    topics = [t for t, *_ in publisher.messages]
    assert topics == [
        device_topic("till-1", "config/desired"),  # only the newest version is sent
        device_topic("till-1", f"cmd/{cmd.json()['command_id']}"),
    ]
    assert ConfigDesired.model_validate_json(publisher.messages[0][1]).version == 2
    view = client.get(COMMANDS.format("till-1") + f"/{cmd.json()['command_id']}", headers=h)
    assert view.json()["status"] == "sent" and view.json()["published_at"] is not None


def test_command_round_trip_idempotent_results_and_expiry(
    db: Db, store, client: TestClient, publisher: MemoryPublisher
):
    acme = make_tenant(db, "Acme", "till-1", "till-2")
    h = auth(acme)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    r = client.post(
        COMMANDS.format("till-1"),
        json={
            "name": "upload_diagnostics",
            "args": {"lines": 200},
            "expires_at": expires.isoformat(),
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["status"] == "sent"
    command_id = view["command_id"]
    topic, payload, qos, retain = publisher.messages[-1]
    assert (topic, qos, retain) == (device_topic("till-1", f"cmd/{command_id}"), 1, False)
    sent = Command.model_validate_json(payload)
    assert str(sent.command_id) == command_id and sent.args == {"lines": 200}
    assert sent.expires_at == expires

    result = CommandResult(command_id=uuid.UUID(command_id), status="succeeded", output={"kb": 12})
    again = CommandResult(command_id=uuid.UUID(command_id), status="failed", detail="twice")
    result_topic = device_topic("till-1", f"cmd/{command_id}/result")
    ingest(db, store, [(result_topic, result.to_json()), (result_topic, again.to_json())])
    done = client.get(COMMANDS.format("till-1") + f"/{command_id}", headers=h).json()
    assert (done["status"], done["output"], done["result_at"] is not None) == (
        "succeeded",
        {"kb": 12},
        True,
    )

    # another device can't answer for it; an unknown command is parked with a reason
    forged = device_topic("till-2", f"cmd/{command_id}/result")
    unknown = uuid.uuid4()
    out = ingest(
        db,
        store,
        [
            (forged, result.to_json()),
            (
                device_topic("till-1", f"cmd/{unknown}/result"),
                CommandResult(command_id=unknown, status="succeeded").to_json(),
            ),
            (device_topic("till-1", f"cmd/{unknown}/result"), result.to_json()),  # id mismatch
        ],
    )
    assert [r.code for r in out.refused] == [
        "invalid_payload",
        "unknown_command",
        "unknown_command",
    ]
    with db.sessions() as session:
        codes = sorted(d.code for d in session.scalars(select(DeadLetter)))
    assert codes == ["invalid_payload", "unknown_command", "unknown_command"]

    # expiry: the server shows a command nobody answered in time as expired
    past = client.post(
        COMMANDS.format("till-1"),
        json={"name": "reboot", "expires_at": "2020-01-01T00:00:00Z"},
        headers=h,
    )
    assert (past.status_code, past.json()["error"]["code"]) == (422, "already_expired")
    listed = client.get(COMMANDS.format("till-1"), headers=h).json()["items"]
    assert [c["name"] for c in listed] == ["upload_diagnostics"]


def _progress(command_id: str, stage: str) -> CommandResult:
    return CommandResult(
        command_id=uuid.UUID(command_id),
        status="in_progress",
        detail=f"{stage}...",
        output={"stage": stage},
    )


def test_progress_reports_are_replaced_until_the_first_final_result(
    db: Db, store, client: TestClient
):
    acme = make_tenant(db, "Acme", "till-1")
    h = auth(acme)
    command_id = client.post(
        COMMANDS.format("till-1"), json={"name": "install", "args": {"version": "2.0"}}, headers=h
    ).json()["command_id"]
    url = COMMANDS.format("till-1") + f"/{command_id}"
    topic = device_topic("till-1", f"cmd/{command_id}/result")

    ingest(db, store, [(topic, _progress(command_id, "download").to_json())])
    seen = client.get(url, headers=h).json()
    assert (seen["status"], seen["detail"], seen["output"]) == (
        "in_progress",
        "download...",
        {"stage": "download"},
    )
    first_at = seen["result_at"]
    assert first_at is not None

    # two steps in one batch: the later one is what shows
    out = ingest(
        db,
        store,
        [
            (topic, _progress(command_id, "install").to_json()),
            (topic, _progress(command_id, "selftest").to_json()),
        ],
    )
    assert out.refused == []
    seen = client.get(url, headers=h).json()
    assert (seen["status"], seen["output"]) == ("in_progress", {"stage": "selftest"})
    listed = client.get(COMMANDS.format("till-1"), headers=h).json()["items"]
    assert [c["status"] for c in listed] == ["in_progress"]

    done = CommandResult(
        command_id=uuid.UUID(command_id), status="succeeded", output={"version": "2.0"}
    )
    ingest(db, store, [(topic, done.to_json())])
    seen = client.get(url, headers=h).json()
    assert (seen["status"], seen["detail"], seen["output"]) == (
        "succeeded",
        "",
        {"version": "2.0"},
    )
    assert seen["result_at"] >= first_at


def test_a_final_result_is_kept_against_late_progress_and_duplicates(
    db: Db, store, client: TestClient
):
    acme = make_tenant(db, "Acme", "till-1")
    h = auth(acme)
    ids = [
        client.post(COMMANDS.format("till-1"), json={"name": n}, headers=h).json()["command_id"]
        for n in ("reboot", "install")
    ]
    reboot, install = ids
    reboot_topic = device_topic("till-1", f"cmd/{reboot}/result")
    install_topic = device_topic("till-1", f"cmd/{install}/result")

    # the final result first, then a progress report redelivered late: the final one stays
    succeeded = CommandResult(command_id=uuid.UUID(reboot), status="succeeded", detail="up again")
    ingest(db, store, [(reboot_topic, succeeded.to_json())])
    ingest(db, store, [(reboot_topic, _progress(reboot, "restart").to_json())])
    seen = client.get(COMMANDS.format("till-1") + f"/{reboot}", headers=h).json()
    assert (seen["status"], seen["detail"], seen["output"]) == ("succeeded", "up again", {})

    # a final result after progress, then copies of it and a different final: the first stays
    failed = CommandResult(command_id=uuid.UUID(install), status="failed", detail="selftest failed")
    out = ingest(
        db,
        store,
        [
            (install_topic, _progress(install, "selftest").to_json()),
            (install_topic, failed.to_json()),
            (install_topic, failed.to_json()),
        ],
    )
    assert out.refused == []
    first = client.get(COMMANDS.format("till-1") + f"/{install}", headers=h).json()
    other = CommandResult(command_id=uuid.UUID(install), status="succeeded", output={"x": 1})
    ingest(
        db,
        store,
        [
            (install_topic, failed.to_json()),
            (install_topic, other.to_json()),
            (install_topic, _progress(install, "probation").to_json()),
        ],
    )
    seen = client.get(COMMANDS.format("till-1") + f"/{install}", headers=h).json()
    assert seen == first
    assert (seen["status"], seen["detail"], seen["output"]) == ("failed", "selftest failed", {})
    with db.sessions() as session:
        assert list(session.scalars(select(DeadLetter))) == []


def test_command_validation_and_tenancy(db: Db, client: TestClient):
    acme = make_tenant(db, "Acme", "till-1")
    rival = make_tenant(db, "Rival")
    bad = client.post(COMMANDS.format("till-1"), json={"name": "Reboot Now"}, headers=auth(acme))
    assert bad.status_code == 422
    naive = client.post(
        COMMANDS.format("till-1"),
        json={"name": "reboot", "expires_at": "2099-01-01T00:00:00"},
        headers=auth(acme),
    )
    assert naive.status_code == 422
    r = client.post(COMMANDS.format("till-1"), json={"name": "reboot"}, headers=auth(rival))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "device_not_found")
    r = client.put(CONFIG.format("till-1"), json={"settings": {}}, headers=auth(rival))
    assert r.status_code == 404
    big = {"settings": {"x": "y" * 40000}}
    r = client.put(CONFIG.format("till-1"), json=big, headers=auth(acme))
    assert (r.status_code, r.json()["error"]["code"]) == (413, "config_too_large")
    cmd = client.post(COMMANDS.format("till-1"), json={"name": "reboot"}, headers=auth(acme)).json()
    r = client.get(COMMANDS.format("till-1") + f"/{cmd['command_id']}", headers=auth(rival))
    assert r.status_code == 404
    assert json.loads(json.dumps(cmd))["status"] == "sent"
