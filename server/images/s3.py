"""Image store plugin `s3`: an S3-compatible bucket (AWS S3, MinIO, Ceph...) through boto3.

Content-addressed like the local store: the object key is ``{prefix}ab/cd/abcd...`` (the same
layout as the local folder, so a backup copy of either store is one folder tree), and putting
the same bytes twice writes once. Every object is written with a server-side encryption header
(``AES256`` by default, or ``aws:kms`` with a key id) and its SHA-256 checksum, which S3 checks
on arrival; `get` checks the digest again before handing the bytes out.

Credentials come from the settings if given, else from boto3's usual chain (environment,
shared config, the instance's or task's role). Failures to reach or use the bucket raise
`ImageStoreError`, an `OSError`: ingest retries the batch, the API answers 503.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from server.images.base import ImageNotFoundError, ImageStoreError, sha256_hex

logger = logging.getLogger(__name__)

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3ImageStoreConfig(BaseModel):
    """``RM_IMAGE_STORE__TYPE=s3`` with ``RM_IMAGE_STORE__BUCKET`` and the keys below."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["s3"] = "s3"
    bucket: str = Field(min_length=3, max_length=63, description="The bucket holding images.")
    prefix: str = Field(
        default="images/", description="Key prefix inside the bucket ('' for none)."
    )
    endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint (MinIO: http://minio:9000); none for AWS S3.",
    )
    region: str | None = Field(default=None, description="Region, e.g. eu-west-1.")
    access_key_id: str | None = Field(
        default=None, description="Access key; none: boto3's chain (env, role)."
    )
    secret_access_key: SecretStr | None = Field(default=None, description="Secret key.")
    server_side_encryption: Literal["AES256", "aws:kms"] = Field(
        default="AES256", description="Encryption at rest requested on every object."
    )
    kms_key_id: str | None = Field(default=None, description="KMS key for aws:kms.")
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", description="'path' for MinIO and most self-hosted stores."
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, description="Connect timeout.")
    read_timeout_s: float = Field(default=30.0, gt=0, description="Read timeout.")
    max_attempts: int = Field(default=3, ge=1, le=10, description="Tries per request.")

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_folder(cls, v: str) -> str:
        v = v.lstrip("/")
        return v if not v or v.endswith("/") else v + "/"


class S3ImageStore:
    """Images as objects of one bucket; safe to share between threads and processes."""

    def __init__(self, config: S3ImageStoreConfig, client: Any = None) -> None:
        self.config = config
        self.bucket = config.bucket
        self.prefix = config.prefix
        self._client = client if client is not None else _client(config)

    def key(self, sha256: str) -> str:
        if not _DIGEST.match(sha256):
            raise ImageNotFoundError(f"{sha256!r} is not a SHA-256 hex digest")
        return f"{self.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        if self.exists(digest):
            return digest
        extra: dict[str, str] = {"ServerSideEncryption": self.config.server_side_encryption}
        if self.config.kms_key_id:
            extra["SSEKMSKeyId"] = self.config.kms_key_id
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=self.key(digest),
                Body=data,
                ChecksumSHA256=checksum,
                **extra,
            )
        except Exception as exc:
            raise _store_error("put", self.bucket, digest, exc) from exc
        logger.debug("stored image %s (%d bytes) in s3://%s", digest, len(data), self.bucket)
        return digest

    def get(self, sha256: str) -> bytes:
        key = self.key(sha256)
        try:
            data: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _code(exc) in _MISSING:
                raise ImageNotFoundError(f"no image {sha256} in s3://{self.bucket}") from exc
            raise _store_error("get", self.bucket, sha256, exc) from exc
        if sha256_hex(data) != sha256:
            raise ImageStoreError(
                f"s3://{self.bucket}/{key} does not hold the bytes its name promises; "
                "restore it from the backup"
            )
        return data

    def exists(self, sha256: str) -> bool:
        try:
            key = self.key(sha256)
        except ImageNotFoundError:
            return False
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in _MISSING:
                return False
            raise _store_error("check", self.bucket, sha256, exc) from exc
        return True

    def delete(self, sha256: str) -> bool:
        """Remove the object (with a versioned bucket, S3 keeps the old version: lifecycle
        rules decide how long). False if there was none."""
        if not self.exists(sha256):
            return False
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            raise _store_error("delete", self.bucket, sha256, exc) from exc
        logger.debug("deleted image %s from s3://%s", sha256, self.bucket)
        return True

    def digests(self) -> Iterator[str]:
        """Every digest under the prefix (one LIST request per 1000 objects)."""
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    name = str(obj["Key"]).rsplit("/", 1)[-1]
                    if _DIGEST.match(name):
                        yield name
        except Exception as exc:
            raise _store_error("list", self.bucket, "*", exc) from exc


def _client(config: S3ImageStoreConfig) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # the server extra brings boto3
        raise ImageStoreError(
            "the s3 image store needs boto3: install the server extra (pip install '.[server]')"
        ) from exc
    secret = config.secret_access_key.get_secret_value() if config.secret_access_key else None
    return boto3.client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=secret,
        config=Config(
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.read_timeout_s,
            retries={"max_attempts": config.max_attempts, "mode": "standard"},
            s3={"addressing_style": config.addressing_style},
        ),
    )


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _store_error(action: str, bucket: str, digest: str, exc: Exception) -> ImageStoreError:
    code = _code(exc)
    hint = {
        "NoSuchBucket": "create the bucket or fix RM_IMAGE_STORE__BUCKET",
        "AccessDenied": "the credentials may not use this bucket",
        "InvalidAccessKeyId": "check RM_IMAGE_STORE__ACCESS_KEY_ID",
        "SignatureDoesNotMatch": "check RM_IMAGE_STORE__SECRET_ACCESS_KEY",
    }.get(code, "check RM_IMAGE_STORE__ENDPOINT_URL and that the store is up")
    return ImageStoreError(
        f"could not {action} image {digest} in s3://{bucket}: {code or type(exc).__name__}: "
        f"{exc}; {hint}"
    )
