"""Downloading a release artifact over HTTPS (httpx), bounded by the size its manifest pins.

The network sits behind httpx's transport seam: tests pass a `httpx.BaseTransport` or point at
a local server. The download streams to ``<name>.part`` with its sha256 computed on the fly,
stops as soon as more bytes arrive than the manifest says, and is renamed to its final name
only when size and hash match. Plain ``http://`` is refused unless ``ota.allow_http`` (a
development flag) is on, also after redirects.
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx

from edge_agent.ota.config import OtaConfig

log = logging.getLogger(__name__)

#: Report progress at most every this many bytes.
PROGRESS_STEP = 8 << 20


class DownloadError(RuntimeError):
    """The artifact could not be fetched, or is not the one the manifest pins."""


def _check_scheme(url: httpx.URL, config: OtaConfig) -> None:
    if url.scheme == "https" or (url.scheme == "http" and config.allow_http):
        return
    raise DownloadError(
        f"refusing {url.scheme}:// URL {url}: artifacts are fetched over https "
        "(ota.allow_http is for development only)"
    )


def download(
    url: str,
    dest: Path,
    *,
    size: int,
    sha256: str,
    config: OtaConfig,
    progress: Callable[[int, int], None] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Path:
    """Fetch `url` into `dest`, checking it has exactly `size` bytes with hash `sha256`."""
    if size > config.max_artifact_bytes:
        raise DownloadError(
            f"the artifact has {size} bytes, more than ota.max_artifact_bytes "
            f"({config.max_artifact_bytes})"
        )
    _check_scheme(httpx.URL(url), config)
    verify: ssl.SSLContext | bool = True
    if config.ca_file is not None:
        verify = ssl.create_default_context(cafile=str(config.ca_file))
    timeout = httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    received = 0
    next_report = PROGRESS_STEP
    try:
        with (
            httpx.Client(
                verify=verify, timeout=timeout, transport=transport, follow_redirects=True
            ) as client,
            client.stream("GET", url) as response,
        ):
            _check_scheme(response.url, config)
            if response.status_code != 200:
                raise DownloadError(f"GET {url} answered {response.status_code}")
            with part.open("wb") as out:
                for chunk in response.iter_bytes(1 << 16):
                    received += len(chunk)
                    if received > size:
                        raise DownloadError(
                            f"the server sent more than the {size} bytes the manifest pins"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                    if progress is not None and received >= next_report:
                        next_report += PROGRESS_STEP
                        progress(received, size)
                out.flush()
                os.fsync(out.fileno())
    except httpx.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"downloading {url} failed: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if received != size:
        part.unlink(missing_ok=True)
        raise DownloadError(f"got {received} bytes, the manifest pins {size}")
    if digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise DownloadError(f"sha256 of the artifact is {digest.hexdigest()}, manifest: {sha256}")
    os.replace(part, dest)
    log.info("downloaded %s: %d bytes, sha256 ok", url, received)
    return dest
