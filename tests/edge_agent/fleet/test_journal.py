"""The command journal: seen ids, final results that never change, delivery bookkeeping."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

from edge_agent.fleet.diagnostics import DIAGNOSTICS_MAX_BYTES, RingLogHandler, bounded
from edge_agent.fleet.journal import CommandJournal
from models.protocol import Command, CommandResult


def test_a_command_is_begun_once_and_its_final_result_is_kept(tmp_path: Path) -> None:
    journal = CommandJournal(tmp_path / "j.sqlite3")
    cmd = Command(command_id=uuid.uuid4(), name="ota")
    assert journal.begin(cmd)
    assert not journal.begin(cmd)
    cid = cmd.command_id
    seq1 = journal.record(CommandResult(command_id=cid, status="in_progress", detail="download"))
    seq2 = journal.record(CommandResult(command_id=cid, status="succeeded", detail="done"))
    assert seq1 == 1 and seq2 == 2
    assert journal.record(CommandResult(command_id=cid, status="failed")) is None
    entry = journal.get(str(cid))
    assert entry is not None and entry.final
    assert json.loads(entry.result or b"")["status"] == "succeeded"
    assert [e.command_id for e in journal.undelivered()] == [str(cid)]
    journal.mark_delivered(str(cid), seq1)  # the PUBACK of the older progress report
    assert journal.undelivered(), "only the ack of the latest result counts"
    journal.mark_delivered(str(cid), seq2)
    assert journal.undelivered() == []
    journal.close()
    reopened = CommandJournal(tmp_path / "j.sqlite3")
    assert reopened.get(str(cid)) is not None, "remembered across restarts"


def test_unfinished_commands_are_listed_after_a_restart(tmp_path: Path) -> None:
    journal = CommandJournal(tmp_path / "j.sqlite3")
    cmd = Command(command_id=uuid.uuid4(), name="reboot")
    journal.begin(cmd)
    journal.record(CommandResult(command_id=cmd.command_id, status="in_progress"))
    journal.close()
    assert [e.name for e in CommandJournal(tmp_path / "j.sqlite3").unfinished()] == ["reboot"]


def test_diagnostics_keep_the_newest_log_lines_within_the_limit() -> None:
    ring = RingLogHandler(capacity=5000)
    logger = logging.getLogger("test.ring")
    logger.addHandler(ring)
    logger.setLevel(logging.INFO)
    try:
        for i in range(3000):
            logger.info("line %d %s", i, "x" * 600)
    finally:
        logger.removeHandler(ring)
    blob = bounded({"device_id": "dev-1"}, ring.lines())
    size = len(json.dumps(blob).encode())
    assert size <= DIAGNOSTICS_MAX_BYTES
    assert blob["log"][-1].split("line ")[1].startswith("2999 ")
    assert blob["log_dropped"] == 3000 - len(blob["log"]) > 0
    assert all(len(line) <= 401 for line in blob["log"])
