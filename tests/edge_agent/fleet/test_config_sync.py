"""Desired -> reported configuration through a real Mosquitto, a paho client as the server."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from models.protocol import ConfigReported, device_topic
from tests.edge_agent.fleethelpers import DEVICE, Server, agent_config
from tests.edge_agent.helpers import Subscriber
from tests.edge_agent.test_agent import drop_images


def test_desired_settings_are_applied_reported_and_survive_a_restart(
    mosquitto, tmp_path: Path, server: Server, start_agent
) -> None:
    server.desire(
        3,
        {
            "upload_images": False,
            "image_quality": 40,
            "trigger.change_fraction": 5,
            "broker.host": "elsewhere",
        },
    )
    running = start_agent()
    assert server.sub.wait_for(lambda: any(r.version == 3 for r in server.reported()))
    report = next(r for r in server.reported() if r.version == 3)
    assert report.settings["upload_images"] is False and report.settings["image_quality"] == 40
    assert set(report.rejected) == {"trigger.change_fraction", "broker.host"}
    assert "less than 1" in report.rejected["trigger.change_fraction"]
    assert "allowed" in report.rejected["broker.host"]

    drop_images(tmp_path / "inbox", 1)
    assert server.sub.wait_for(lambda: len(server.receipts()) == 1)
    assert "image" not in server.receipts()[0], "upload_images off is in force"

    server.desire(2, {"upload_images": True})  # older: ignored
    server.desire(5, {"image_quality": 60})  # newer: upload_images back to the file's value
    assert server.sub.wait_for(lambda: server.reported()[-1].version == 5)
    assert running.agent.fleet is not None and running.agent.fleet.drain()
    assert [r.version for r in server.reported()].count(2) == 0
    assert server.reported()[-1].settings["upload_images"] is True
    assert running.agent.config.image_quality == 60
    running.stop()

    # the broker forgets the desired config; the scanner still knows version 5 from its disk
    server.publish("config/desired", b"", retain=True)
    restarted = start_agent(agent_config(tmp_path, mosquitto.port))
    assert restarted.agent.config.image_quality == 60
    late = Subscriber(mosquitto.host, mosquitto.port, device_topic(DEVICE, "config/reported"))
    try:
        assert late.wait_for(lambda: len(late.on("/reported")) >= 1)
        retained = late.on("/reported")[0]
        assert retained.retain, "config/reported is retained"
        assert ConfigReported.model_validate_json(retained.payload).version == 5
    finally:
        late.close()
    state = json.loads((tmp_path / "state" / "config.json").read_text())
    assert state["version"] == 5 and state["settings"] == {"image_quality": 60}


def test_quiet_hours_stop_scanning_until_they_end(
    mosquitto, tmp_path: Path, server: Server, start_agent
) -> None:
    source = {"type": "folder", "path": "inbox", "poll_interval_s": 0.05, "settle_s": 0}
    running = start_agent(
        agent_config(tmp_path, mosquitto.port, source=source | {"retry_after_s": 0.5})
    )
    now = dt.datetime.now().astimezone()
    start = (now - dt.timedelta(minutes=5)).strftime("%H:%M")
    end = (now + dt.timedelta(minutes=60)).strftime("%H:%M")
    server.desire(1, {"quiet_hours": {"start": start, "end": end}})
    assert server.sub.wait_for(lambda: any(r.version == 1 for r in server.reported()))
    assert server.reported()[-1].settings["quiet_hours"] == {
        "start": start,
        "end": end,
        "timezone": None,
    }
    drop_images(tmp_path / "inbox", 2)
    assert not server.sub.wait_for(lambda: len(server.receipts()) > 0, timeout=1.5)
    assert len(list((tmp_path / "inbox").glob("r*.jpg"))) == 2, "files wait in the folder"
    assert "quiet hours" in (running.agent.telemetry().camera_state or "")
    server.desire(2, {})
    assert server.sub.wait_for(lambda: len(server.receipts()) == 2)


def test_a_pipeline_that_cannot_be_built_is_rejected_and_the_old_one_kept(
    mosquitto, tmp_path: Path, server: Server, start_agent
) -> None:
    from tests.edge_agent.helpers import QuickReader

    built: list[int] = []

    def factory(pipeline):
        if pipeline.threads > 2:
            raise RuntimeError("only 2 cores here")
        built.append(pipeline.threads)
        return QuickReader()

    running = start_agent(reader=None, reader_factory=factory)
    server.desire(1, {"pipeline.threads": 2})
    assert server.sub.wait_for(lambda: any(r.version == 1 for r in server.reported()))
    server.desire(2, {"pipeline.threads": 4})
    assert server.sub.wait_for(lambda: any(r.version == 2 for r in server.reported()))
    report = server.reported()[-1]
    assert report.settings["pipeline.threads"] == 2
    assert "only 2 cores" in report.rejected["pipeline.threads"]
    assert built == [1, 2] and running.agent.config.pipeline.threads == 2
