"""Durable SQLite outbox: every scan is stored here before it is published, and leaves on PUBACK.

Contract:

- `Outbox.add_scan` writes a scan's messages (the receipt JSON and, optionally, its image) in ONE
  transaction (WAL, ``synchronous=FULL``): once it returns, the scan survives ``kill -9`` and a
  power cut. Nothing is published before that.
- A row is deleted only by `Outbox.delete`, which the publisher calls on the broker's PUBACK.
  Rows are read in insertion order by `Outbox.pending`; after a (re)connect the publisher reads
  them again from the start, so everything not acknowledged is replayed.
- The source key of a scan (for a watched folder: name, size and mtime of the file) is recorded
  in the same transaction, so an agent killed between storing a scan and moving its file does not
  read the file a second time after a restart.

Policy when full (`OutboxConfig.policy`), counted in payload bytes of stored rows:

- ``shed_images`` (default): above ``images_max_fraction`` × ``max_bytes`` new scans are stored
  WITHOUT their image (the receipt is kept; a log line names it); at ``max_bytes`` new scans are
  refused with `OutboxFull`.
- ``refuse``: images are kept until ``max_bytes``; then new scans are refused with `OutboxFull`.
- Either way, a scan is also refused while the disk holding the outbox has less than
  ``min_free_bytes`` free, or when SQLite reports the disk full (the transaction is rolled back).

Receipts already stored are NEVER dropped by the policy: it only refuses new work, which the
capture side keeps (a watched folder leaves the file where it is and retries).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from edge_agent.configbase import ConfigPath, StrictModel

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    receipt_id  TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    topic       TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    qos         INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    created_at  REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_receipt ON messages (receipt_id);
CREATE TABLE IF NOT EXISTS sources (
    source_key  TEXT PRIMARY KEY,
    receipt_id  TEXT NOT NULL,
    created_at  REAL NOT NULL
);
"""

#: Source keys are kept this long (long enough to cover any restart after a crash).
SOURCE_KEY_TTL_S = 7 * 24 * 3600


class OutboxConfig(StrictModel):
    """Where scans wait for the broker, and how big they may grow."""

    path: ConfigPath = Field(
        default=Path("outbox.sqlite3"),
        validate_default=True,
        description="SQLite file of the outbox (relative paths: from the config file's folder).",
    )
    max_bytes: int = Field(
        default=512 << 20,
        ge=1 << 20,
        description="Hard limit on stored payload bytes; at it, new scans are refused.",
    )
    policy: Literal["shed_images", "refuse"] = Field(
        default="shed_images",
        description=(
            "When the outbox fills: 'shed_images' stores new scans without their image above "
            "images_max_fraction of max_bytes, then refuses; 'refuse' keeps images until "
            "max_bytes, then refuses. Stored receipts are never dropped."
        ),
    )
    images_max_fraction: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Policy shed_images: share of max_bytes above which images are not stored.",
    )
    min_free_bytes: int = Field(
        default=64 << 20,
        ge=0,
        description="New scans are refused while the outbox's disk has less free space than this.",
    )


class OutboxFull(RuntimeError):
    """A new scan was refused because the outbox (or its disk) is full. Nothing stored was lost."""


@dataclass(frozen=True)
class OutMessage:
    """One message to publish: a row of the outbox."""

    topic: str
    payload: bytes
    qos: int
    kind: str  # "receipt" | "image"


@dataclass(frozen=True)
class StoredMessage:
    id: int
    receipt_id: str
    kind: str
    topic: str
    payload: bytes
    qos: int


@dataclass(frozen=True)
class OutboxStats:
    depth: int  # rows waiting for a PUBACK
    bytes: int  # their payload bytes
    receipts: int  # distinct scans among them


class Outbox:
    """The durable queue between reading and publishing. Thread-safe (one connection, a lock)."""

    def __init__(self, config: OutboxConfig) -> None:
        self.config = config
        config.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            config.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "DELETE FROM sources WHERE created_at < ?", (time.time() - SOURCE_KEY_TTL_S,)
        )
        stats = self.stats()
        log.info(
            "outbox %s opened: %d message(s) of %d scan(s), %d bytes waiting",
            config.path,
            stats.depth,
            stats.receipts,
            stats.bytes,
        )

    # ------------------------------------------------------------------ writing

    def admission(self) -> Literal["full", "receipt_only", "ok"]:
        """What a new scan may store now: nothing, its receipt only, or receipt and image."""
        used = self.stats().bytes
        if used >= self.config.max_bytes or self._disk_free() < self.config.min_free_bytes:
            return "full"
        if (
            self.config.policy == "shed_images"
            and used >= self.config.images_max_fraction * self.config.max_bytes
        ):
            return "receipt_only"
        return "ok"

    def add_scan(
        self, receipt_id: str, messages: list[OutMessage], *, source_key: str | None = None
    ) -> list[OutMessage]:
        """Store one scan's messages atomically; returns those stored (images may be shed).

        Raises `OutboxFull` (storing nothing) when the policy refuses the scan.
        """
        admission = self.admission()
        if admission == "full":
            raise OutboxFull(
                f"outbox {self.config.path} is full ({self.stats().bytes} of "
                f"{self.config.max_bytes} bytes, {self._disk_free()} bytes free on disk): "
                "scan refused until the broker is reachable again and the outbox drains"
            )
        keep = [m for m in messages if admission == "ok" or m.kind != "image"]
        if len(keep) < len(messages):
            log.warning(
                "receipt %s: image not stored, outbox above %.0f%% of %d bytes (shed_images)",
                receipt_id,
                100 * self.config.images_max_fraction,
                self.config.max_bytes,
            )
        now = time.time()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO messages (receipt_id, kind, topic, payload, qos, size, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (receipt_id, m.kind, m.topic, m.payload, m.qos, len(m.payload), now)
                        for m in keep
                    ],
                )
                if source_key is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO sources (source_key, receipt_id, created_at)"
                        " VALUES (?, ?, ?)",
                        (source_key, receipt_id, now),
                    )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower():
                    raise OutboxFull(
                        f"outbox {self.config.path}: the disk is full ({exc}); scan refused"
                    ) from exc
                raise
        return keep

    def scanned(self, source_key: str) -> str | None:
        """The receipt id already stored for `source_key`, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT receipt_id FROM sources WHERE source_key = ?", (source_key,)
            ).fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ publishing side

    def pending(self, after_id: int = 0, limit: int = 20) -> list[StoredMessage]:
        """Up to `limit` stored messages with id > `after_id`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, receipt_id, kind, topic, payload, qos FROM messages"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [StoredMessage(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]

    def delete(self, message_id: int) -> None:
        """Forget a message: call only once the broker has acknowledged it (PUBACK)."""
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def stats(self) -> OutboxStats:
        with self._lock:
            depth, size, receipts = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COUNT(DISTINCT receipt_id) FROM messages"
            ).fetchone()
        return OutboxStats(depth=int(depth), bytes=int(size), receipts=int(receipts))

    # ------------------------------------------------------------------ housekeeping

    def purge(self) -> dict[str, int]:
        """The ``purge_outbox`` command: free the space of what the server already has.

        Drops the stored images of receipts whose receipt message the broker has acknowledged
        (the server keeps the receipt; its image reference then has no image), forgets expired
        source keys, and compacts the file (WAL checkpoint, VACUUM), which otherwise never
        shrinks. Receipts not yet acknowledged are never touched.
        """
        before = self._file_bytes()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            rows, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages WHERE kind = 'image'"
                " AND receipt_id NOT IN (SELECT receipt_id FROM messages WHERE kind = 'receipt')"
            ).fetchone()
            self._db.execute(
                "DELETE FROM messages WHERE kind = 'image'"
                " AND receipt_id NOT IN (SELECT receipt_id FROM messages WHERE kind = 'receipt')"
            )
            keys = self._db.execute(
                "DELETE FROM sources WHERE created_at < ?", (time.time() - SOURCE_KEY_TTL_S,)
            ).rowcount
            self._db.execute("COMMIT")
            self._db.execute("VACUUM")  # in WAL mode it writes the compacted file to the WAL...
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # ...which goes back here
        after = self._file_bytes()
        log.info(
            "outbox purged: %d image(s) of delivered receipts (%d bytes) dropped, file %d -> %d",
            rows,
            size,
            before,
            after,
        )
        return {
            "images_dropped": int(rows),
            "bytes_dropped": int(size),
            "source_keys_dropped": int(keys),
            "file_bytes_before": before,
            "file_bytes_after": after,
        }

    def _file_bytes(self) -> int:
        paths = [self.config.path, self.config.path.with_name(self.config.path.name + "-wal")]
        return sum(p.stat().st_size for p in paths if p.exists())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _disk_free(self) -> int:
        return shutil.disk_usage(self.config.path.parent).free
