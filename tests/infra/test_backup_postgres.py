"""`receipts backup create/verify` against the real PostgreSQL: pg_dump, pg_restore into a
scratch database, row counts and checksums compared; damage and drift are caught."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg2
import pytest
from click.testing import CliRunner

from infra.backup.cli import backup
from infra.backup.postgres import (
    BackupError,
    Target,
    create_dump,
    manifest_path,
    verify_dump,
)
from infra.backup.retention import SystemClock

pytestmark = pytest.mark.postgres

SCHEMA = """
CREATE SCHEMA ledger;
CREATE TABLE organizations (id uuid PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE receipts (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id),
    merchant text,
    total numeric(12, 2),
    captured_at timestamptz NOT NULL,
    document jsonb NOT NULL,
    image bytea
);
CREATE TABLE ledger.entries (id bigserial PRIMARY KEY, amount double precision, note text);
CREATE TABLE empty_table (id int PRIMARY KEY);
"""


def _seed(url: str) -> None:
    conn = psycopg2.connect(Target.parse(url).url)
    try:
        with conn.cursor() as cur:
            cur.execute(SCHEMA)
            cur.execute(
                "INSERT INTO organizations VALUES "
                "('00000000-0000-0000-0000-000000000001', 'Corner Shop'),"
                "('00000000-0000-0000-0000-000000000002', 'Café Ünïcode')"
            )
            cur.execute(
                """INSERT INTO receipts
                SELECT md5(i::text)::uuid, '00000000-0000-0000-0000-000000000001',
                       CASE WHEN i % 7 = 0 THEN NULL ELSE 'Bäckerei ' || i END,
                       (i * 1.37)::numeric(12, 2),
                       '2024-05-01T10:00:00+02'::timestamptz + i * interval '1 minute',
                       jsonb_build_object('lines', jsonb_build_array('Brot', i)),
                       decode(md5(i::text), 'hex')
                FROM generate_series(1, 500) AS i"""
            )
            cur.execute(
                "INSERT INTO ledger.entries (amount, note) "
                "SELECT i / 3.0, repeat('x', i % 5) FROM generate_series(1, 200) AS i"
            )
        conn.commit()
    finally:
        conn.close()


def _execute(url: str, statement: str) -> None:
    conn = psycopg2.connect(Target.parse(url).url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
        conn.commit()
    finally:
        conn.close()


def test_dump_restores_to_identical_tables(pg_url: str, tmp_path: Path) -> None:
    _seed(pg_url)
    dump = create_dump(pg_url, tmp_path, SystemClock().now())
    manifest = json.loads(manifest_path(dump).read_text())
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    assert manifest["tables"]["public.receipts"]["rows"] == 500
    assert manifest["tables"]["ledger.entries"]["rows"] == 200
    assert manifest["tables"]["public.empty_table"] == {"rows": 0, "checksum": "0"}

    report = verify_dump(dump, pg_url, live_source_url=pg_url)

    assert report.problems == []
    assert report.rows == 2 + 500 + 200
    assert set(report.restored) == {
        "public.organizations",
        "public.receipts",
        "public.empty_table",
        "ledger.entries",
    }
    # The scratch database is gone afterwards.
    conn = psycopg2.connect(Target.parse(pg_url).url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (report.scratch_database,))
            assert cur.fetchone() is None
    finally:
        conn.close()


def test_drift_in_the_live_database_is_reported(pg_url: str, tmp_path: Path) -> None:
    _seed(pg_url)
    dump = create_dump(pg_url, tmp_path, SystemClock().now())
    _execute(pg_url, "UPDATE receipts SET merchant = 'changed' WHERE merchant = 'Bäckerei 1'")
    _execute(pg_url, "DELETE FROM ledger.entries WHERE id = 5")

    against_manifest = verify_dump(dump, pg_url)
    against_live = verify_dump(dump, pg_url, live_source_url=pg_url)

    assert against_manifest.ok  # the dump is exactly what the manifest recorded
    assert against_live.problems == [
        "ledger.entries: 200 rows restored, 199 in the live source",
        "public.receipts: same row count, different content than the live source",
    ]


def test_a_damaged_dump_is_refused(pg_url: str, tmp_path: Path) -> None:
    _seed(pg_url)
    dump = create_dump(pg_url, tmp_path, SystemClock().now())
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    report = verify_dump(dump, pg_url)
    assert not report.ok
    assert "sha256 differs from its manifest" in report.problems[0]

    # Without its manifest, pg_restore itself trips over the truncated file.
    manifest_path(dump).unlink()
    dump.write_bytes(bytes(data[: len(data) // 2]))
    report = verify_dump(dump, pg_url, live_source_url=pg_url)
    assert not report.ok
    assert report.problems[0].startswith("pg_restore failed")


def test_not_postgres_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="not a PostgreSQL URL"):
        create_dump(f"sqlite:///{tmp_path}/x.db", tmp_path, SystemClock().now())


def test_cli_create_then_verify(pg_url: str, tmp_path: Path) -> None:
    _seed(pg_url)
    images = tmp_path / "images"
    (images / "ab").mkdir(parents=True)
    content = b"\xff\xd8 fake jpeg"
    import hashlib

    name = hashlib.sha256(content).hexdigest()
    (images / "ab" / name).write_bytes(content)
    dest = tmp_path / "backups"
    runner = CliRunner()
    env = {"RM_DATABASE_URL": pg_url, "RM_BACKUP_DIR": str(dest)}

    created = runner.invoke(backup, ["create", "--images", str(images)], env=env)
    assert created.exit_code == 0, created.output
    assert "images: 1 copied" in created.output
    assert (dest / "images" / "ab" / name).read_bytes() == content
    again = runner.invoke(backup, ["create", "--images", str(images)], env=env)
    assert "images: 0 copied, 1 already there" in again.output

    verified = runner.invoke(backup, ["verify", "--live"], env=env)
    assert verified.exit_code == 0, verified.output
    assert "4 tables, 702 rows restored and matching" in verified.output

    _execute(pg_url, "DELETE FROM receipts WHERE total < 10")
    drifted = runner.invoke(backup, ["verify", "--live"], env=env)
    assert drifted.exit_code == 1
    assert "MISMATCH public.receipts" in drifted.output
