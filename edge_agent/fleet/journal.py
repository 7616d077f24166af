"""Durable memory of commands: which ids were seen, their latest result, and whether it arrived.

One SQLite file (``<fleet.state_dir>/commands.sqlite3``, WAL, ``synchronous=FULL``). Contract:

- `begin(command)` records a command id before anything is done for it and returns False when
  the id is known already: a command delivered twice is acted on once.
- `record(result)` stores the command's latest result (progress or final). A final result is
  never replaced: a duplicate of a finished command gets the same result, byte for byte.
- `mark_delivered(id, seq)` is called on the PUBACK of a result; `undelivered()` gives every
  latest result the broker has not acknowledged, to publish again on each connect (so a result
  written just before a power cut or a reboot still reaches the server).
- `unfinished()` lists commands begun but never finished: after a restart the agent closes
  them (a reboot that happened; a command cut short).
- Finished commands are forgotten after `keep_s` (`prune`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from models.protocol import Command, CommandResult

FINAL = frozenset({"succeeded", "failed", "rejected", "expired"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    command_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    received_at REAL NOT NULL,
    final       INTEGER NOT NULL DEFAULT 0,
    result      BLOB,
    seq         INTEGER NOT NULL DEFAULT 0,
    delivered   INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class Entry:
    command_id: str
    name: str
    final: bool
    result: bytes | None  # CommandResult JSON
    seq: int
    delivered: bool


class CommandJournal:
    """See the module docstring. Thread-safe."""

    def __init__(self, path: Path, keep_s: float = 30 * 86400) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.keep_s = keep_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.prune()

    def get(self, command_id: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT command_id, name, final, result, seq, delivered FROM commands"
                " WHERE command_id = ?",
                (command_id,),
            ).fetchone()
        return None if row is None else _entry(row)

    def begin(self, command: Command) -> bool:
        """Remember `command`; False if its id was seen before."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO commands (command_id, name, received_at) VALUES (?, ?, ?)",
                (str(command.command_id), command.name, time.time()),
            )
        return cur.rowcount == 1

    def record(self, result: CommandResult, name: str = "") -> int | None:
        """Store `result` as the command's latest; returns its sequence number.

        Returns None (and stores nothing) if the command already has a final result.
        """
        final = 1 if result.status in FINAL else 0
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO commands (command_id, name, received_at) VALUES (?, ?, ?)",
                (str(result.command_id), name, time.time()),
            )
            cur = self._db.execute(
                "UPDATE commands SET result = ?, final = ?, seq = seq + 1, delivered = 0"
                " WHERE command_id = ? AND final = 0 RETURNING seq",
                (result.to_json(), final, str(result.command_id)),
            )
            row = cur.fetchone()
        return None if row is None else int(row[0])

    def mark_delivered(self, command_id: str, seq: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE commands SET delivered = 1 WHERE command_id = ? AND seq = ?",
                (command_id, seq),
            )

    def undelivered(self) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT command_id, name, final, result, seq, delivered FROM commands"
                " WHERE delivered = 0 AND result IS NOT NULL ORDER BY received_at"
            ).fetchall()
        return [_entry(r) for r in rows]

    def unfinished(self) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT command_id, name, final, result, seq, delivered FROM commands"
                " WHERE final = 0 ORDER BY received_at"
            ).fetchall()
        return [_entry(r) for r in rows]

    def prune(self) -> int:
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM commands WHERE final = 1 AND delivered = 1 AND received_at < ?",
                (time.time() - self.keep_s,),
            )
        return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _entry(row: tuple[object, ...]) -> Entry:
    result = row[3]
    return Entry(
        command_id=str(row[0]),
        name=str(row[1]),
        final=bool(row[2]),
        result=bytes(result) if isinstance(result, bytes | bytearray | memoryview) else None,
        seq=int(row[4]),  # type: ignore[call-overload]
        delivered=bool(row[5]),
    )
