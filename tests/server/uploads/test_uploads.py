"""Photo uploads through the API on both databases: validation (nothing half-stored), a photo
read end to end by the job worker with the real pipeline (Tesseract), and the same photo twice
flagged as a duplicate and counted once."""

from __future__ import annotations

import csv
import difflib
import functools
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.imageio import encode_image
from models.synth import generate_receipt
from server.analytics.repository import AnalyticsRepository, DateRange
from server.api.app import create_app
from server.images.local import LocalImageStore
from server.jobs.handlers import build_job_worker
from server.jobs.models import Job
from server.settings import Settings
from server.uploads.models import Upload
from server.uploads.settings import UploadSettings
from tests.server.conftest import Db, Tenant, make_tenant

SEED = 0  # a synthetic receipt Tesseract reads completely (merchant, date, total)


@functools.cache
def receipt_photo() -> tuple[bytes, str, str, str]:
    """A phone-like JPEG of a synthetic receipt and its true merchant, date and total."""
    sample = generate_receipt(SEED)
    data = encode_image(cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR), "jpeg", 90)
    f = sample.label.fields
    assert f is not None
    return data, str(f.merchant), str(f.date), str(f.total)


def assert_read_as(read: str | None, truth: str) -> None:
    """The merchant as read: OCR may miss a letter of a name (the models' accuracy is measured
    by `receipts eval`, not here), never more than one in ten."""
    assert read is not None
    similarity = difflib.SequenceMatcher(None, read.lower(), truth.lower()).ratio()
    assert similarity >= 0.9, (read, truth)


def settings_for(db: Db, store: LocalImageStore, max_bytes: int = 8 << 20) -> Settings:
    return Settings(
        database_url=db.url,
        image_store={"type": "local", "root": str(store.root)},
        uploads=UploadSettings(max_bytes=max_bytes),
    )


@pytest.fixture
def acme(db: Db) -> Tenant:
    return make_tenant(db, "Acme")


@pytest.fixture
def client(db: Db, store: LocalImageStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(db, store), engine=db.engine, images=store)) as c:
        yield c


def auth(t: Tenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {t.token}"}


def stored(db: Db, store: LocalImageStore) -> tuple[int, int, int]:
    with db.sessions() as s:
        uploads = s.scalar(select(func.count()).select_from(Upload))
        jobs = s.scalar(select(func.count()).select_from(Job))
    blobs = sum(1 for p in Path(store.root).rglob("*") if p.is_file())
    return int(uploads or 0), int(jobs or 0), blobs


def test_broken_foreign_and_oversize_files_are_refused_and_nothing_is_stored(
    db: Db, store: LocalImageStore, client: TestClient, acme: Tenant
):
    photo, *_ = receipt_photo()
    cases = [
        ([("file", ("cut.jpg", photo[: len(photo) // 2], "image/jpeg"))], 422, "invalid_image"),
        ([("file", ("notes.txt", b"milk 1.20\nbread 2.10\n", "text/plain"))], 415, "not_an_image"),
        ([("file", ("empty.jpg", b"", "image/jpeg"))], 422, "invalid_image"),
        # one good photo and one broken: refused as a whole
        (
            [
                ("file", ("good.jpg", photo, "image/jpeg")),
                ("file", ("bad.jpg", photo[:5000], "image/jpeg")),
            ],
            422,
            "invalid_image",
        ),
    ]
    for files, status, code in cases:
        r = client.post("/api/v1/uploads", files=files, headers=auth(acme))
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert error["code"] == code
        assert files[-1][1][0] in error["message"]  # names the file
    r = client.post("/api/v1/uploads", files=cases[1][0])
    assert r.status_code == 401
    assert stored(db, store) == (0, 0, 0)

    small = settings_for(db, store, max_bytes=100 << 10)
    with TestClient(create_app(small, engine=db.engine, images=store)) as c:
        r = c.post(
            "/api/v1/uploads",
            files=[("file", ("big.jpg", photo, "image/jpeg"))],
            headers=auth(acme),
        )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "upload_too_large"
    assert "100 KiB" in r.json()["error"]["message"]
    assert stored(db, store) == (0, 0, 0)


def test_an_uploaded_photo_is_read_into_a_receipt(
    db: Db, store: LocalImageStore, client: TestClient, acme: Tenant
):
    photo, merchant, date, total = receipt_photo()
    r = client.post(
        "/api/v1/uploads",
        files=[("file", ("IMG_0001.jpg", photo, "image/jpeg"))],
        headers=auth(acme),
    )
    assert r.status_code == 202, r.text
    (up,) = r.json()["uploads"]
    assert (up["filename"], up["state"], up["receipt"]) == ("IMG_0001.jpg", "queued", None)
    assert client.get(up["status_url"], headers=auth(acme)).json()["state"] == "queued"

    worker = build_job_worker(settings_for(db, store), db.sessions, store)
    assert worker.run_once()
    status = client.get(up["status_url"], headers=auth(acme)).json()
    assert status["state"] == "done", status
    read = status["receipt"]
    assert (read["date"], read["total"]) == (date, total)
    assert_read_as(read["merchant"], merchant)
    assert read["duplicate_of"] is None

    detail = client.get(read["url"], headers=auth(acme)).json()
    assert (detail["source"], detail["device_id"]) == ("upload", None)
    assert detail["message"]["source"] == "upload:IMG_0001.jpg"
    assert detail["message"]["receipt"]["ocr_engine"] == "litert"  # the default engine
    image = client.get(detail["image_url"], headers=auth(acme))
    assert image.headers["content-type"] == "image/jpeg"
    rectified = cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR)
    assert rectified is not None
    assert list(rectified.shape[1::-1]) == detail["message"]["receipt"]["image_size"]
    listed = client.get("/api/v1/receipts", headers=auth(acme)).json()["items"]
    assert [i["id"] for i in listed] == [read["id"]]
    # another organisation sees nothing of it
    other = make_tenant(db, "Other")
    assert client.get(up["status_url"], headers=auth(other)).status_code == 404
    assert not worker.run_once()


def test_the_same_photo_twice_is_flagged_and_counted_once(
    db: Db, store: LocalImageStore, client: TestClient, acme: Tenant
):
    photo, _, _, total = receipt_photo()
    files = [("file", (f"scan-{i}.jpg", photo, "image/jpeg")) for i in (1, 2)]
    r = client.post("/api/v1/uploads", files=files, headers=auth(acme))
    assert r.status_code == 202, r.text
    first, second = r.json()["uploads"]
    worker = build_job_worker(settings_for(db, store), db.sessions, store)
    assert worker.run_once() and worker.run_once()
    a = client.get(first["status_url"], headers=auth(acme)).json()["receipt"]
    b = client.get(second["status_url"], headers=auth(acme)).json()["receipt"]
    originals = [x for x in (a, b) if x["duplicate_of"] is None]
    copies = [x for x in (a, b) if x["duplicate_of"] is not None]
    assert len(originals) == 1 and len(copies) == 1
    assert copies[0]["duplicate_of"] == originals[0]["id"]

    with db.sessions() as s:
        count, rows = AnalyticsRepository(s, acme_org(db)).totals(DateRange())
    assert count == 1 and [str(x.total) for x in rows] == [total]
    exported = client.get("/api/v1/exports/receipts.csv", headers=auth(acme)).text
    assert [row["receipt_id"] for row in csv.DictReader(io.StringIO(exported))] == [
        originals[0]["id"]
    ]
    both = client.get("/api/v1/exports/receipts.csv?duplicates=true", headers=auth(acme)).text
    assert {row["receipt_id"] for row in csv.DictReader(io.StringIO(both))} == {a["id"], b["id"]}


def acme_org(db: Db) -> uuid.UUID:
    from server.organizations.repository import OrganizationRepository

    with db.sessions() as s:
        org = OrganizationRepository(s).get_by_name("Acme")
        assert org is not None
        return org.id
