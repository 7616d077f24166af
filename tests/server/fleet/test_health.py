"""Health: states from status and heartbeats, bounded telemetry history, the overview API."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.protocol import StatusMessage, Telemetry, device_topic
from server.fleet import health
from server.fleet.models import TelemetrySample
from server.images.local import LocalImageStore
from server.ingest.interpret import Incoming
from server.ingest.service import ingest_batch
from tests.server.conftest import Db, ingest, make_tenant
from tests.server.fleet.conftest import api_client, auth, make_runtime
from tests.server.helpers import receipt_message, receipt_topic

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_device_state_rules():
    def state(
        online: bool = True,
        silent_s: float | None = 10.0,
        telemetry: dict[str, float] | None = None,
        revoked: bool = False,
    ) -> str:
        seen = NOW - dt.timedelta(seconds=silent_s) if silent_s is not None else None
        return health.device_state(
            online=online, last_seen_at=seen, telemetry=telemetry, revoked=revoked, now=NOW
        )

    assert state() == "online"
    assert state(online=False) == "offline"
    assert state(silent_s=None) == "offline"
    assert state(revoked=True) == "revoked"
    assert state(silent_s=59, telemetry={"interval_s": 30}) == "online"
    assert state(silent_s=61, telemetry={"interval_s": 30}) == "stale"  # > 2 x its interval
    assert state(silent_s=119) == "online"  # no heartbeat yet: 60 s assumed
    assert state(silent_s=121) == "stale"
    assert state(silent_s=1000, telemetry={"interval_s": 600}) == "online"


def status(device: str, state: str = "online", agent: str = "1.2.0") -> tuple[str, bytes]:
    msg = StatusMessage(state=state, agent_version=agent, model_versions={"ocr": "2024.06"})
    return device_topic(device, "status"), msg.to_json()


def beat(device: str, **values) -> tuple[str, bytes]:
    values.setdefault("interval_s", 30)
    return device_topic(device, "telemetry"), Telemetry(**values).to_json()


def test_telemetry_history_is_pruned_to_the_last_n_in_the_same_batch(db: Db, store):
    make_tenant(db, "Acme", "till-1", "till-2")
    batch = [
        Incoming(*beat("till-1", scans_total=i), NOW + dt.timedelta(seconds=i)) for i in range(7)
    ] + [Incoming(*beat("till-2", scans_total=100), NOW)]
    with db.sessions.begin() as session:
        result = ingest_batch(session, store, batch, 1024, telemetry_history=3)
    assert result.telemetry == 8
    with db.sessions.begin() as session:  # a later batch prunes again
        ingest_batch(session, store, [Incoming(*beat("till-1", scans_total=7), NOW)], 1024, 3)
    with db.sessions() as session:
        rows = session.execute(
            select(TelemetrySample.seq, TelemetrySample.data).order_by(TelemetrySample.seq)
        ).all()
        kept = sorted(d["scans_total"] for _seq, d in rows)
        assert kept == [5, 6, 7, 100]
        assert session.scalar(select(func.count()).select_from(TelemetrySample)) == 4


def test_overview_counts_and_figures_are_per_organisation(
    db: Db, store: LocalImageStore, publisher
):
    acme = make_tenant(db, "Acme", "a-online", "a-stale", "a-offline", "a-never")
    rival = make_tenant(db, "Rival", "r-1")
    ingest(
        db,
        store,
        [
            status("a-online"),
            beat("a-online", outbox_depth=3, cpu_temp_c=61.5, last_read_ms=800.0),
            status("a-stale", agent="1.1.0"),
            beat("a-stale", outbox_depth=0, cpu_temp_c=82.0, last_read_ms=1200.0),
            status("a-offline", state="offline"),
            status("r-1"),
            beat("r-1", outbox_depth=50),
            (receipt_topic("a-online"), receipt_message(captured_at=NOW).to_json()),
            (
                receipt_topic("a-online"),
                receipt_message(captured_at=NOW - dt.timedelta(days=2)).to_json(),
            ),
            (receipt_topic("r-1"), receipt_message(captured_at=NOW).to_json()),
        ],
    )
    # a-stale's last message is old: move its last_seen back
    from server.db.models import Device

    with db.sessions.begin() as session:
        d = session.scalar(select(Device).where(Device.device_id == "a-stale"))
        assert d is not None
        d.last_seen_at = NOW - dt.timedelta(seconds=61)
        for name in ("a-online", "r-1"):
            d = session.scalar(select(Device).where(Device.device_id == name))
            assert d is not None
            d.last_seen_at = NOW - dt.timedelta(seconds=5)

    runtime = make_runtime(db, publisher, clock=lambda: NOW)
    with api_client(db, store, runtime) as client:
        r = client.get("/api/v1/fleet/overview", params={"days": 3}, headers=auth(acme))
        assert r.status_code == 200, r.text
        o = r.json()
        assert o["devices"] == {"total": 4, "online": 1, "stale": 1, "offline": 2, "revoked": 0}
        assert o["scans_per_day"] == [
            {"date": "2030-05-30", "count": 1},
            {"date": "2030-05-31", "count": 0},
            {"date": "2030-06-01", "count": 1},
        ]
        assert o["queue_depth"] == {"total": 3, "max": 3, "backlogged": 1}
        assert o["temperature_c"]["max"] == 82.0 and o["temperature_c"]["hot"] == 1
        assert o["inference_ms"]["count"] == 2 and o["inference_ms"]["max"] == 1200.0
        assert o["agent_versions"] == {"1.2.0": 1, "1.1.0": 1, "unknown": 2}
        assert o["model_versions"] == {"ocr": {"2024.06": 2}}

        page = client.get("/api/v1/fleet/devices", params={"limit": 2}, headers=auth(acme)).json()
        assert [d["device_id"] for d in page["items"]] == ["a-never", "a-offline"]
        rest = client.get(
            "/api/v1/fleet/devices", params={"cursor": page["next_cursor"]}, headers=auth(acme)
        ).json()
        assert {d["device_id"]: d["state"] for d in rest["items"]} == {
            "a-online": "online",
            "a-stale": "stale",
        }
        assert rest["next_cursor"] is None
        one = client.get("/api/v1/fleet/devices/a-online", headers=auth(acme)).json()
        assert one["telemetry"]["outbox_depth"] == 3 and one["agent_version"] == "1.2.0"
        history = client.get("/api/v1/fleet/devices/a-online/telemetry", headers=auth(acme))
        assert [p["data"]["cpu_temp_c"] for p in history.json()] == [61.5]

        # tenancy: Rival sees only its own, and not Acme's devices by id
        assert (
            client.get("/api/v1/fleet/overview", headers=auth(rival)).json()["devices"]["total"]
            == 1
        )
        r = client.get("/api/v1/fleet/devices/a-online", headers=auth(rival))
        assert (r.status_code, r.json()["error"]["code"]) == (404, "device_not_found")
        assert client.get("/api/v1/fleet/overview").status_code == 401


def test_fleet_endpoints_need_a_token(client: TestClient):
    for path in ["/api/v1/fleet/devices", "/api/v1/fleet/overview", "/api/v1/fleet/devices/x"]:
        r = client.get(path)
        assert r.status_code == 401
