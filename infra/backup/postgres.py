"""PostgreSQL backups: `pg_dump` (custom format) with a manifest, and verification by restore.

`create_dump` opens a REPEATABLE READ transaction, exports its snapshot, computes every table's
row count and checksum in it, and runs `pg_dump --snapshot` on the same snapshot: the manifest
describes exactly what the dump holds, even while ingest keeps writing. `verify_dump` restores a
dump into a fresh scratch database with `pg_restore`, computes the same digests there and
compares them with the manifest (and, if asked, with the live source). The scratch database is
dropped afterwards unless kept for inspection.

Checksums: per table, the sum of the first 64 bits of md5(row::text) over all rows, so they
don't depend on row order and need no memory per row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ
from psycopg2.extensions import connection as PgConnection

from infra.backup.retention import PREFIX, stamp

logger = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"

_TABLES = """SELECT schemaname, tablename FROM pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"""
_DIGEST = """SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint
    ::numeric), 0)::text FROM {table} AS t"""


class BackupError(RuntimeError):
    """A dump, restore or check failed; the message says which and why."""


@dataclass(frozen=True)
class Target:
    """A PostgreSQL database as libpq wants it: a conninfo URL without password, plus the
    environment for pg_dump/pg_restore (the password never appears on a command line)."""

    url: str
    password: str | None
    database: str

    @classmethod
    def parse(cls, url: str) -> Target:
        """From a SQLAlchemy (`postgresql+psycopg2://`) or libpq (`postgresql://`) URL."""
        parts = urlsplit(url)
        if not parts.scheme.startswith("postgres"):
            raise BackupError(
                f"not a PostgreSQL URL: {parts.scheme}://...; backups need PostgreSQL"
            )
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        if parts.username:
            netloc = f"{unquote(parts.username)}@{netloc}"
        database = parts.path.lstrip("/")
        if not database:
            raise BackupError(f"no database name in {url!r}")
        plain = urlunsplit(("postgresql", netloc, parts.path, parts.query, ""))
        password = unquote(parts.password) if parts.password else None
        return cls(url=plain, password=password, database=database)

    def with_database(self, name: str) -> Target:
        parts = urlsplit(self.url)
        return Target(urlunsplit(parts._replace(path=f"/{name}")), self.password, name)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self) -> PgConnection:
        return psycopg2.connect(self.url, password=self.password)


@dataclass(frozen=True)
class TableDigest:
    rows: int
    checksum: str


def table_digests(conn: PgConnection) -> dict[str, TableDigest]:
    """Row count and checksum of every user table, in the connection's current transaction."""
    digests: dict[str, TableDigest] = {}
    with conn.cursor() as cur:
        cur.execute("SET LOCAL TimeZone = 'UTC'")
        cur.execute(_TABLES)
        tables = cur.fetchall()
        for schema, table in tables:
            cur.execute(sql.SQL(_DIGEST).format(table=sql.Identifier(schema, table)))
            row = cur.fetchone()
            assert row is not None
            digests[f"{schema}.{table}"] = TableDigest(rows=int(row[0]), checksum=str(row[1]))
    return digests


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed: apt-get install postgresql-client")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name.removesuffix(".dump") + MANIFEST_SUFFIX)


def create_dump(database_url: str, folder: Path, now: dt.datetime) -> Path:
    """Dump the database to `folder/receipts-<UTC time>.dump` with its manifest beside it."""
    source = Target.parse(database_url)
    folder.mkdir(parents=True, exist_ok=True)
    dump = folder / f"{PREFIX}-{stamp(now)}.dump"
    partial = dump.with_name(dump.name + ".partial")
    conn = source.connect()
    try:
        conn.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot()")
            row = cur.fetchone()
            assert row is not None
            snapshot = str(row[0])
        digests = table_digests(conn)
        result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [
                _tool("pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--file={partial}",
                f"--dbname={source.url}",
            ],
            env=source.env(),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        conn.rollback()
        conn.close()
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump of {source.database} failed: {result.stderr.strip()}")
    partial.rename(dump)
    manifest = {
        "database": source.database,
        "created_at": now.astimezone(dt.UTC).isoformat(),
        "dump": dump.name,
        "sha256": _sha256(dump),
        "size_bytes": dump.stat().st_size,
        "tables": {name: vars(d) for name, d in digests.items()},
    }
    manifest_path(dump).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    logger.info("dumped %s to %s (%d tables)", source.database, dump, len(digests))
    return dump


def latest_dump(folder: Path) -> Path:
    dumps = sorted(folder.glob(f"{PREFIX}-*.dump"))
    if not dumps:
        raise BackupError(f"no {PREFIX}-*.dump in {folder}")
    return dumps[-1]


@dataclass
class VerifyReport:
    dump: Path
    scratch_database: str
    restored: dict[str, TableDigest] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: Images the restored `receipt_images` refer to, checked against the image backup.
    images_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.restored.values())


def _compare(
    label: str, expected: dict[str, TableDigest], restored: dict[str, TableDigest]
) -> list[str]:
    problems = []
    for name in sorted(set(expected) | set(restored)):
        want, got = expected.get(name), restored.get(name)
        if want is None:
            problems.append(f"{name}: in the restore but not in the {label}")
        elif got is None:
            problems.append(f"{name}: in the {label} but missing from the restore")
        elif want.rows != got.rows:
            problems.append(f"{name}: {got.rows} rows restored, {want.rows} in the {label}")
        elif want.checksum != got.checksum:
            problems.append(f"{name}: same row count, different content than the {label}")
    return problems


def _admin(conn_target: Target, statement: sql.Composable) -> None:
    conn = conn_target.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def _check_images(conn: PgConnection, images_dir: Path, report: VerifyReport) -> None:
    from infra.backup.images import missing_images

    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.receipt_images') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            return  # a dump from before images were kept in the database
        cur.execute("SELECT DISTINCT sha256 FROM receipt_images ORDER BY 1")
        digests = [str(r[0]) for r in cur.fetchall()]
    report.images_checked = len(digests)
    missing = missing_images(digests, images_dir)
    for digest in missing[:10]:
        report.problems.append(f"image {digest}: no intact copy in {images_dir}")
    if len(missing) > 10:
        report.problems.append(f"... and {len(missing) - 10} more images missing or damaged")


def verify_dump(
    dump: Path,
    scratch_server_url: str,
    *,
    live_source_url: str | None = None,
    keep_scratch: bool = False,
    images_dir: Path | None = None,
) -> VerifyReport:
    """Restore `dump` into a new database on `scratch_server_url`'s server and check it.

    The scratch database is created through the maintenance database `postgres` of that
    server (its user needs CREATEDB). Compared with the manifest beside the dump and, with
    `live_source_url`, with the live source database as it is now. With `images_dir` (the
    image backup), every image the restored `receipt_images` name must have an intact copy
    there: a restore brings back the receipts *and* their images.
    """
    server = Target.parse(scratch_server_url)
    scratch_name = f"rm_verify_{uuid.uuid4().hex[:12]}"
    scratch = server.with_database(scratch_name)
    report = VerifyReport(dump=dump, scratch_database=scratch_name)
    manifest: dict[str, Any] | None = None
    mpath = manifest_path(dump)
    if mpath.exists():
        manifest = json.loads(mpath.read_text())
        if manifest["sha256"] != _sha256(dump):
            report.problems.append(f"{dump.name}: sha256 differs from its manifest (damaged)")
            return report
    elif live_source_url is None:
        raise BackupError(f"{mpath.name} is missing: pass a live source to compare with")

    maintenance = server.with_database("postgres")
    _admin(maintenance, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch_name)))
    try:
        result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                f"--dbname={scratch.url}",
                str(dump),
            ],
            env=scratch.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            report.problems.append(f"pg_restore failed: {result.stderr.strip()}")
            return report
        conn = scratch.connect()
        try:
            report.restored = table_digests(conn)
            if images_dir is not None:
                _check_images(conn, images_dir, report)
        finally:
            conn.rollback()
            conn.close()
        if manifest is not None:
            expected = {k: TableDigest(**v) for k, v in manifest["tables"].items()}
            report.problems += _compare("manifest", expected, report.restored)
        if live_source_url is not None:
            live = Target.parse(live_source_url).connect()
            try:
                report.problems += _compare("live source", table_digests(live), report.restored)
            finally:
                live.rollback()
                live.close()
    finally:
        if not keep_scratch:
            _admin(
                maintenance,
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(scratch_name)
                ),
            )
    return report
