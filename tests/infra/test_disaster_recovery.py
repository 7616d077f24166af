"""Disaster-recovery drill: the database and the image store are lost; both come back from
`receipts backup` into clean places, and every receipt opens with its image again.

Runs for the local image store and for S3 (a real S3-compatible server: moto's server mode),
on the real PostgreSQL with the real `pg_dump`/`pg_restore`, through the CLI an operator uses
(infra/RUNBOOK.md section 1) and the API a user reads receipts with.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

with warnings.catch_warnings():  # Starlette nags that its TestClient wants `httpx2`
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from infra.backup.cli import backup
from server.api.app import create_app
from server.db.engine import create_db_engine, session_factory
from server.db.migrate import migrate
from server.images.base import ListableImageStore
from server.images.local import LocalImageStore, LocalImageStoreConfig
from server.images.s3 import S3ImageStore, S3ImageStoreConfig
from server.ingest.interpret import Incoming
from server.ingest.service import ingest_batch
from server.organizations import service as orgs
from server.settings import Settings
from tests.conftest import S3Endpoint, create_pg_database, drop_pg_database
from tests.server.helpers import image_topic, jpeg_bytes, receipt_message, receipt_topic

DEVICE = "dr-till"


@dataclass
class Store:
    """One kind of image store: how to make an empty one and the env that selects it."""

    kind: str
    tmp: Path
    s3: S3Endpoint | None = None

    def new(self, name: str) -> tuple[ListableImageStore, dict[str, str]]:
        if self.s3 is None:
            root = self.tmp / name
            return LocalImageStore(LocalImageStoreConfig(root=root)), {
                "RM_IMAGE_STORE__TYPE": "local",
                "RM_IMAGE_STORE__ROOT": str(root),
            }
        bucket = self.s3.new_bucket()
        env = {
            "RM_IMAGE_STORE__TYPE": "s3",
            "RM_IMAGE_STORE__BUCKET": bucket,
            "RM_IMAGE_STORE__ENDPOINT_URL": self.s3.url,
            "RM_IMAGE_STORE__REGION": self.s3.region,
            "RM_IMAGE_STORE__ACCESS_KEY_ID": self.s3.access_key_id,
            "RM_IMAGE_STORE__SECRET_ACCESS_KEY": self.s3.secret_access_key,
            "RM_IMAGE_STORE__ADDRESSING_STYLE": "path",
        }
        config = S3ImageStoreConfig(
            bucket=bucket,
            endpoint_url=self.s3.url,
            region=self.s3.region,
            access_key_id=self.s3.access_key_id,
            secret_access_key=self.s3.secret_access_key,  # type: ignore[arg-type]
            addressing_style="path",
        )
        return S3ImageStore(config), env

    def lose(self, store: ListableImageStore) -> None:
        if isinstance(store, LocalImageStore):
            shutil.rmtree(store.root)
            return
        assert isinstance(store, S3ImageStore) and self.s3 is not None
        client = self.s3.client()
        for digest in list(store.digests()):
            client.delete_object(Bucket=store.bucket, Key=store.key(digest))  # type: ignore[attr-defined]
        client.delete_bucket(Bucket=store.bucket)  # type: ignore[attr-defined]


@pytest.fixture(params=["local", "s3"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return Store("local", tmp_path)
    return Store("s3", tmp_path, request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def restored_url() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def _fill(url: str, store: ListableImageStore, n: int) -> tuple[str, dict[str, bytes]]:
    """An organisation, its scanner and `n` receipts with images, written by the real ingest."""
    migrate(url)
    engine = create_db_engine(url)
    try:
        sessions = session_factory(engine)
        with sessions.begin() as session:
            orgs.create_organization(session, "DR Shop")
            orgs.add_device(session, "DR Shop", DEVICE)
            token = orgs.create_token(session, "DR Shop", "dr").token
        images: dict[str, bytes] = {}
        batch = []
        now = dt.datetime.now(dt.UTC)
        for i in range(n):
            image = jpeg_bytes(i, size=(30 + i, 40))
            msg = receipt_message(image=image, total=f"{i + 1}.50")
            images[str(msg.receipt_id)] = image
            batch += [
                Incoming(receipt_topic(DEVICE), msg.to_json(), now),
                Incoming(image_topic(DEVICE, msg.receipt_id), image, now),
            ]
        with sessions.begin() as session:
            result = ingest_batch(session, store, batch, payload_limit=1024)
        assert (result.receipts, result.images) == (n, n)
    finally:
        engine.dispose()
    return token, images


def _pg_restore(dump: Path, url: str) -> None:
    libpq = url.replace("postgresql+psycopg2://", "postgresql://", 1)
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq}", str(dump)],
        check=True,
        capture_output=True,
    )


def test_database_and_images_come_back_from_the_backup(
    stores: Store, pg_url: str, restored_url: str, tmp_path: Path
) -> None:
    store, store_env = stores.new("images")
    token, images = _fill(pg_url, store, 5)
    dest = tmp_path / "backups"
    runner = CliRunner()
    env = {"RM_DATABASE_URL": pg_url, "RM_BACKUP_DIR": str(dest), **store_env}

    created = runner.invoke(backup, ["create"], env=env)
    assert created.exit_code == 0, created.output
    assert "images: 5 copied, 0 already there" in created.output
    verified = runner.invoke(backup, ["verify"], env=env)
    assert verified.exit_code == 0, verified.output
    assert "5 images intact" in verified.output
    dump = next(dest.glob("receipts-*.dump"))

    # The disaster: the database and the image store are gone.
    drop_pg_database(pg_url)
    stores.lose(store)

    # The recovery, into a clean database and a clean, empty store (runbook section 1).
    _pg_restore(dump, restored_url)
    migrate(restored_url)
    new_store, new_env = stores.new("images-restored")
    restored = runner.invoke(
        backup, ["restore-images", "--from", str(dest / "images")], env={**env, **new_env}
    )
    assert restored.exit_code == 0, restored.output
    assert "images: 5 restored, 0 already there" in restored.output
    again = runner.invoke(
        backup, ["restore-images", "--from", str(dest / "images")], env={**env, **new_env}
    )
    assert "images: 0 restored, 5 already there" in again.output

    # Every receipt opens with its image, byte for byte, through the API.
    engine = create_db_engine(restored_url)
    settings = Settings(database_url=restored_url)
    try:
        with TestClient(create_app(settings, engine=engine, images=new_store)) as client:
            headers = {"Authorization": f"Bearer {token}"}
            listed = client.get("/api/v1/receipts", headers=headers, params={"limit": 50})
            assert listed.status_code == 200, listed.text
            ids = [r["id"] for r in listed.json()["items"]]
            assert sorted(ids) == sorted(images)
            for receipt_id, original in images.items():
                r = client.get(f"/api/v1/receipts/{receipt_id}/image", headers=headers)
                assert r.status_code == 200, (receipt_id, r.text)
                assert r.content == original
    finally:
        engine.dispose()


def test_verify_fails_when_an_image_of_the_dump_has_no_intact_copy(
    pg_url: str, tmp_path: Path
) -> None:
    store = LocalImageStore(LocalImageStoreConfig(root=tmp_path / "images"))
    _token, images = _fill(pg_url, store, 3)
    dest = tmp_path / "backups"
    env = {
        "RM_DATABASE_URL": pg_url,
        "RM_BACKUP_DIR": str(dest),
        "RM_IMAGE_STORE__ROOT": str(store.root),
    }
    runner = CliRunner()
    assert runner.invoke(backup, ["create"], env=env).exit_code == 0
    copies = sorted(p for p in (dest / "images").rglob("*") if p.is_file())
    assert len(copies) == len(images)
    copies[0].unlink()
    copies[1].write_bytes(b"bit rot")

    failed = runner.invoke(backup, ["verify"], env=env)
    assert failed.exit_code == 1, failed.output
    assert failed.output.count("no intact copy") == 2
    assert copies[0].name in failed.output and copies[1].name in failed.output
    db_only = runner.invoke(backup, ["verify", "--skip-images"], env=env)
    assert db_only.exit_code == 0, db_only.output
