"""The image store contract (`server.images.base`), run against every plugin: the local folder
and S3 (a real S3-compatible HTTP server: moto's server mode), plus what only S3 has:
encryption at rest, the key layout, and clear errors when the bucket is not usable.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from server.images.base import ImageNotFoundError, ImageStoreError, ListableImageStore
from server.images.local import LocalImageStoreConfig
from server.images.s3 import S3ImageStore, S3ImageStoreConfig
from server.images.store import build_image_store
from server.settings import Settings
from tests.conftest import S3Endpoint
from tests.server.helpers import jpeg_bytes as _jpeg


def jpeg_bytes(i: int) -> bytes:
    """A distinct small JPEG per `i` (nearby colours alone can encode to the same bytes)."""
    return _jpeg(i, size=(20 + i, 30))


def s3_config(s3: S3Endpoint, bucket: str, **kw: object) -> S3ImageStoreConfig:
    return S3ImageStoreConfig.model_validate(
        {
            "bucket": bucket,
            "endpoint_url": s3.url,
            "region": s3.region,
            "access_key_id": s3.access_key_id,
            "secret_access_key": s3.secret_access_key,
            "addressing_style": "path",
            "max_attempts": 1,
        }
        | kw
    )


@pytest.fixture(params=["local", "s3"])
def image_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ListableImageStore]:
    if request.param == "local":
        yield build_image_store(LocalImageStoreConfig(root=tmp_path / "images"))
        return
    s3: S3Endpoint = request.getfixturevalue("s3_endpoint")
    yield build_image_store(s3_config(s3, s3.new_bucket()))


# --------------------------------------------------------------------------- the contract


def test_put_returns_the_sha256_and_get_returns_the_same_bytes(image_store: ListableImageStore):
    data = jpeg_bytes(1)
    key = image_store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert image_store.get(key) == data
    assert image_store.exists(key)


def test_putting_the_same_bytes_again_is_harmless(image_store: ListableImageStore):
    data = jpeg_bytes(2)
    assert image_store.put(data) == image_store.put(data)
    assert list(image_store.digests()) == [hashlib.sha256(data).hexdigest()]


def test_missing_and_malformed_digests(image_store: ListableImageStore):
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not image_store.exists(missing)
    with pytest.raises(ImageNotFoundError):
        image_store.get(missing)
    for bad in ("../../etc/passwd", "ABC", missing.upper(), ""):
        assert not image_store.exists(bad)
        with pytest.raises(ImageNotFoundError):
            image_store.get(bad)


def test_delete_removes_only_that_blob(image_store: ListableImageStore):
    a, b = image_store.put(jpeg_bytes(3)), image_store.put(jpeg_bytes(4))
    assert image_store.delete(a) is True
    assert image_store.delete(a) is False
    assert not image_store.exists(a) and image_store.get(b) == jpeg_bytes(4)


def test_digests_lists_every_blob_once(image_store: ListableImageStore):
    stored = {image_store.put(jpeg_bytes(i)) for i in range(25)}
    listed = list(image_store.digests())
    assert len(listed) == len(set(listed)) == 25
    assert set(listed) == stored


def test_concurrent_puts_of_the_same_and_other_bytes(image_store: ListableImageStore):
    blobs = [jpeg_bytes(i % 4) for i in range(16)]
    errors: list[BaseException] = []

    def put(data: bytes) -> None:
        try:
            image_store.put(data)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(b,)) for b in blobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {image_store.get(hashlib.sha256(b).hexdigest()) for b in blobs} == set(blobs)


# --------------------------------------------------------------------------- S3 only


def test_s3_objects_are_encrypted_at_rest_and_laid_out_like_the_local_store(
    s3_endpoint: S3Endpoint,
):
    bucket = s3_endpoint.new_bucket()
    store = S3ImageStore(s3_config(s3_endpoint, bucket, prefix="tenant-a"))
    key = store.put(jpeg_bytes(5))
    client = s3_endpoint.client()
    head = client.head_object(Bucket=bucket, Key=f"tenant-a/{key[:2]}/{key[2:4]}/{key}")  # type: ignore[attr-defined]
    assert head["ServerSideEncryption"] == "AES256"
    # another prefix is another store on the same bucket
    other = S3ImageStore(s3_config(s3_endpoint, bucket, prefix="tenant-b/"))
    assert not other.exists(key) and list(other.digests()) == []


def test_s3_get_refuses_an_object_whose_bytes_changed(s3_endpoint: S3Endpoint):
    bucket = s3_endpoint.new_bucket()
    store = S3ImageStore(s3_config(s3_endpoint, bucket))
    key = store.put(jpeg_bytes(6))
    s3_endpoint.client().put_object(Bucket=bucket, Key=store.key(key), Body=b"tampered")  # type: ignore[attr-defined]
    with pytest.raises(ImageStoreError, match="does not hold the bytes"):
        store.get(key)


def test_s3_errors_say_what_to_fix(s3_endpoint: S3Endpoint, free_port: int):
    missing_bucket = S3ImageStore(s3_config(s3_endpoint, "no-such-bucket-here"))
    with pytest.raises(ImageStoreError, match=r"NoSuchBucket.*RM_IMAGE_STORE__BUCKET"):
        missing_bucket.put(b"x")
    down = S3ImageStore(
        s3_config(s3_endpoint, "whatever", endpoint_url=f"http://127.0.0.1:{free_port}")
    )
    with pytest.raises(ImageStoreError, match="RM_IMAGE_STORE__ENDPOINT_URL") as info:
        down.put(b"x")
    assert isinstance(info.value, OSError)  # ingest retries the batch


def test_settings_choose_the_s3_store_from_rm_variables(
    s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch
):
    bucket = s3_endpoint.new_bucket()
    for name, value in {
        "RM_IMAGE_STORE__TYPE": "s3",
        "RM_IMAGE_STORE__BUCKET": bucket,
        "RM_IMAGE_STORE__PREFIX": "/receipts",
        "RM_IMAGE_STORE__ENDPOINT_URL": s3_endpoint.url,
        "RM_IMAGE_STORE__REGION": s3_endpoint.region,
        "RM_IMAGE_STORE__ACCESS_KEY_ID": s3_endpoint.access_key_id,
        "RM_IMAGE_STORE__SECRET_ACCESS_KEY": s3_endpoint.secret_access_key,
        "RM_IMAGE_STORE__ADDRESSING_STYLE": "path",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert isinstance(settings.image_store, S3ImageStoreConfig)
    assert settings.image_store.prefix == "receipts/"
    assert "test-secret-key" not in repr(settings)
    store = build_image_store(settings.image_store)
    key = store.put(b"through settings")
    assert store.get(key) == b"through settings"

    monkeypatch.setenv("RM_IMAGE_STORE__TYPE", "ftp")
    with pytest.raises(ValidationError, match=r"local.*s3|s3.*local"):
        Settings()
    monkeypatch.setenv("RM_IMAGE_STORE__TYPE", "s3")
    monkeypatch.setenv("RM_IMAGE_STORE__SSE", "none")
    with pytest.raises(ValidationError, match="sse"):
        Settings()
