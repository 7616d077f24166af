"""Commands through a real Mosquitto: results, duplicates, expiry, rejections, each command."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from edge_agent.fleet.journal import CommandJournal
from models.protocol import MAX_MESSAGE_BYTES, Command, CommandResult
from tests.edge_agent.fleethelpers import DEVICE, Server
from tests.edge_agent.test_agent import ROOT, drop_images


def test_results_duplicates_expiry_and_rejections(
    mosquitto, tmp_path: Path, server: Server, start_agent
) -> None:
    start_agent()
    nothing = server.command("rescan_last")
    assert server.final(nothing).status == "failed"
    assert "no image kept" in server.final(nothing).detail

    drop_images(tmp_path / "inbox", 1)
    assert server.sub.wait_for(lambda: len(server.receipts()) == 1)
    rescan = server.command("rescan_last")
    result = server.final(rescan)
    assert result.status == "succeeded" and result.output["source"] == "r0.jpg"
    assert server.sub.wait_for(lambda: len(server.receipts()) == 2)
    again = server.receipts()[1]
    assert again["receipt_id"] == result.output["receipt_id"]
    assert again["source"] == "rescan of r0.jpg"

    # the same command delivered twice: acted on once, the same result published again
    server.publish(f"cmd/{rescan.command_id}", rescan.to_json())
    assert server.sub.wait_for(lambda: len(server.results(rescan)) == 2)
    first, second = server.sub.on(f"/cmd/{rescan.command_id}/result")
    assert first.payload == second.payload
    assert len(server.receipts()) == 2, "not rescanned a second time"

    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    expired = server.command("rescan_last", expires_at=past)
    assert server.final(expired).status == "expired"
    unknown = server.command("self_destruct")
    assert server.final(unknown).status == "rejected"
    assert "known: reboot, restart_agent" in server.final(unknown).detail
    bad = server.command("upload_diagnostics", {"log_lines": 99999, "colour": "red"})
    assert server.final(bad).status == "rejected"
    assert "log_lines" in server.final(bad).detail
    no_ota = server.command("ota", {"url": "https://x"})
    assert server.final(no_ota).status == "rejected"
    assert "not configured" in server.final(no_ota).detail
    no_gpio = server.command("test_feedback")
    assert server.final(no_gpio).status == "failed" and "gpio" in server.final(no_gpio).detail
    assert len(server.receipts()) == 2


def test_diagnostics_purge_and_reboot(
    mosquitto, tmp_path: Path, server: Server, start_agent, caplog
) -> None:
    caplog.set_level(logging.INFO)  # as `receipts agent` logs
    ran: list[list[str]] = []

    def run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, b"", b"")

    running = start_agent(run_command=run)
    drop_images(tmp_path / "inbox", 2)
    assert server.sub.wait_for(lambda: len(server.receipts()) == 2)

    diag = server.command("upload_diagnostics", {"log_lines": 2000})
    result = server.final(diag)
    assert result.status == "succeeded"
    out = result.output
    assert out["device_id"] == DEVICE and out["config"]["device_id"] == DEVICE
    assert out["scans"]["total"] == 2 and out["outbox"]["depth"] == 0
    assert any("r1.jpg" in line for line in out["log"])
    raw = server.sub.on(f"/cmd/{diag.command_id}/result")[0].payload
    assert len(raw) < MAX_MESSAGE_BYTES

    # an image left behind by a receipt already delivered is what purge drops
    outbox = running.agent.outbox
    from edge_agent.outbox import OutMessage

    outbox.add_scan(
        "r-delivered",
        [OutMessage("rm/v1/dev/x/image/r-delivered", b"i" * 5000, 1, "image")],
    )
    purge = server.command("purge_outbox")
    assert server.final(purge).status == "succeeded"
    assert server.final(purge).output["images_dropped"] in (0, 1)  # it may have been sent

    reboot = server.command("reboot")
    final = server.final(reboot)
    assert final.status == "succeeded" and ran == [["systemctl", "reboot"]]
    assert [r.status for r in server.results(reboot)] == ["in_progress", "succeeded"]


def test_results_not_acknowledged_are_published_on_the_next_connect(
    mosquitto, tmp_path: Path, server: Server, start_agent
) -> None:
    """A result written just before a power cut reaches the server once the scanner is back."""
    journal = CommandJournal(tmp_path / "state" / "commands.sqlite3")
    owed = Command(command_id=uuid.uuid4(), name="rescan_last")
    journal.begin(owed)
    journal.record(CommandResult(command_id=owed.command_id, status="succeeded", detail="owed"))
    cut = Command(command_id=uuid.uuid4(), name="upload_diagnostics")
    journal.begin(cut)  # begun, never finished: the agent died in the middle
    journal.close()
    start_agent()
    assert server.final(owed).detail == "owed"
    assert server.final(cut).status == "failed"
    assert "interrupted" in server.final(cut).detail


def test_restart_agent_exits_75_after_its_result_is_out(
    mosquitto, tmp_path: Path, server: Server
) -> None:
    config = {
        "device_id": DEVICE,
        "broker": {"port": mosquitto.port, "reconnect_min_s": 0.1, "keepalive": 5},
        "source": {"type": "folder", "path": "inbox", "poll_interval_s": 0.05, "settle_s": 0},
    }  # no outbox section: its file goes next to the config, like the state folder
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (tmp_path / "agent.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/edge_agent/run_agent.py"), str(path)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert server.sub.wait_for(lambda: bool(server.reported())), (
            tmp_path / "agent.log"
        ).read_text()
        restart = server.command("restart_agent")
        assert server.final(restart).status == "succeeded"
        assert proc.wait(20) == 75
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "state" / "commands.sqlite3").is_file(), "state next to the config"
    assert (tmp_path / "outbox.sqlite3").is_file()
