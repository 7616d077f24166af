"""Durable SQLite outbox: every scan is stored here before it is published, and leaves only once
the server has it.

Contract:

- `Outbox.add_scan` writes a scan's messages (the receipt JSON and, optionally, its image) in ONE
  transaction (WAL, ``synchronous=FULL``): once it returns, the scan survives ``kill -9`` and a
  power cut. Nothing is published before that.
- The publisher takes the rows to send from `Outbox.due` (oldest first) and calls
  `Outbox.mark_sent` on the broker's PUBACK. With ``delivery: server_ack`` (the default) a sent
  row stays until the server's delivery ack (`Outbox.acknowledge`, protocol topic ``ack``) says
  the receipt or image is committed, or refused for good; a sent row without an ack is due again
  after ``resend_after_s`` (doubling per attempt, at most an hour), and `Outbox.resend_all` makes
  every unacknowledged row due at once after a reconnect. The broker's PUBACK alone is not
  delivery: a broker restart can drop a message it acknowledged (models/protocol.py says when).
  With ``delivery: broker_ack`` (for a server without delivery acks) PUBACK deletes the row.
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
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from edge_agent.configbase import ConfigPath, StrictModel
from models.protocol import DeliveryAck

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
    created_at  REAL    NOT NULL,
    sent_at     REAL,
    attempts    INTEGER NOT NULL DEFAULT 0
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
#: Longest wait before a message without a delivery ack is sent again.
MAX_RESEND_S = 3600.0


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
    delivery: Literal["server_ack", "broker_ack"] = Field(
        default="server_ack",
        description=(
            "When a message leaves the outbox: 'server_ack' once the server's delivery ack says "
            "it is committed (safe across broker restarts); 'broker_ack' on the broker's PUBACK "
            "(only for a server that sends no delivery acks)."
        ),
    )
    resend_after_s: float = Field(
        default=60.0,
        ge=0.1,
        description="A sent message without a delivery ack is sent again after this (doubling).",
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
    depth: int  # rows the server has not acknowledged yet
    bytes: int  # their payload bytes
    receipts: int  # distinct scans among them
    unacked: int = 0  # rows the broker took but the server has not acknowledged


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
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
        if "sent_at" not in columns:  # an outbox written before delivery acks
            self._db.execute("ALTER TABLE messages ADD COLUMN sent_at REAL")
            self._db.execute("ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
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

    def due(self, limit: int, exclude: Collection[int] = ()) -> list[StoredMessage]:
        """Up to `limit` messages to publish now, oldest first: never sent, or sent long enough
        ago without a delivery ack. `exclude`: rows in flight on the current connection."""
        now = time.time()
        with self._lock:
            rows = self._db.execute(
                "SELECT id, receipt_id, kind, topic, payload, qos FROM messages"
                " WHERE sent_at IS NULL"
                " OR sent_at <= ? - MIN(? * (1 << MIN(MAX(attempts - 1, 0), 16)), ?)"
                " ORDER BY id LIMIT ?",
                (now, self.config.resend_after_s, MAX_RESEND_S, limit + len(exclude)),
            ).fetchall()
        out = [StoredMessage(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]
        return [m for m in out if m.id not in exclude][:limit]

    def mark_sent(self, message_id: int) -> None:
        """The broker has the message (PUBACK): wait for the server's ack, or forget it."""
        with self._lock:
            if self.config.delivery == "broker_ack":
                self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            else:
                self._db.execute(
                    "UPDATE messages SET sent_at = ?, attempts = attempts + 1 WHERE id = ?",
                    (time.time(), message_id),
                )

    def acknowledge(self, ack: DeliveryAck) -> int:
        """Forget what the server's delivery ack lists; returns the number of rows deleted."""
        targets = [(str(r), "receipt") for r in ack.receipts]
        targets += [(str(r), "image") for r in ack.images]
        for refused in ack.refused:
            log.warning(
                "server refused the %s of receipt %s for good (%s: %s); dropped from the outbox",
                refused.kind,
                refused.receipt_id,
                refused.code,
                refused.reason,
            )
            targets.append((str(refused.receipt_id), refused.kind))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            deleted = sum(
                self._db.execute(
                    "DELETE FROM messages WHERE receipt_id = ? AND kind = ?", target
                ).rowcount
                for target in targets
            )
            self._db.execute("COMMIT")
        return deleted

    def resend_all(self) -> None:
        """Make every message without a delivery ack due now (after a reconnect)."""
        with self._lock:
            self._db.execute("UPDATE messages SET sent_at = NULL WHERE sent_at IS NOT NULL")

    def delete(self, message_id: int) -> None:
        """Forget one message regardless of acks (housekeeping and tests)."""
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def stats(self) -> OutboxStats:
        with self._lock:
            depth, size, receipts, unacked = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), COUNT(DISTINCT receipt_id),"
                " COUNT(sent_at) FROM messages"
            ).fetchone()
        return OutboxStats(
            depth=int(depth), bytes=int(size), receipts=int(receipts), unacked=int(unacked)
        )

    # ------------------------------------------------------------------ housekeeping

    def purge(self) -> dict[str, int]:
        """The ``purge_outbox`` command: free the space of what the server already has.

        Drops the stored images of receipts whose receipt message the server has acknowledged
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
