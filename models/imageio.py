"""Image bytes in and out of the read pipeline: strict decoding to BGR arrays, and encoding.

`load_image` refuses what a camera, a phone upload or a watched folder can hand over broken:
empty or truncated files, files that are not images, and images so large they are a
decompression bomb. It decodes with Pillow and asks it to load every pixel, because OpenCV
pads a truncated JPEG with grey and reports success. EXIF orientation is applied, so a phone
photo taken sideways arrives upright.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from models.receipt import ImageFormat

logger = logging.getLogger(__name__)

#: Largest file accepted, in bytes. A 200-megapixel phone JPEG is about 40 MB.
MAX_FILE_BYTES = 64 << 20
#: Largest image accepted, in pixels (width x height). A decompression bomb declares far more.
MAX_PIXELS = 100_000_000

EncodeFormat = Literal["jpeg", "png", "webp"]

#: The MIME type of each encoding, as the protocol names it.
MIME_TYPES: dict[EncodeFormat, ImageFormat] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}


class ImageError(ValueError):
    """The input can't be decoded as an image; the message says why, for a person to read."""


def load_image(
    source: bytes | Path | str,
    *,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_FILE_BYTES,
) -> np.ndarray:
    """Decode an image file or its bytes to a BGR uint8 array (H, W, 3), upright per EXIF.

    Raises `ImageError` for a missing, empty, truncated, oversized or non-image input.
    Transparent images are composited on white, as a receipt would be on paper; grey images
    are returned with three equal channels. Only the first frame of a multi-frame file is read.
    """
    name, data = _read_source(source, max_bytes)
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone set it process-wide; we still want strictness
        logger.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; truncated files may pass")
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit; ours (max_pixels) is the one that decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{name} is {width}x{height} pixels, more than the {max_pixels:,} accepted "
                    "(a decompression bomb or a far larger photo than a receipt needs)"
                )
            image.load()
            upright = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name} is not an image in a format we read ({_sniff(data)})") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name} declares an absurd image size: {exc}") from exc
    except (OSError, SyntaxError, EOFError, ValueError) as exc:
        raise ImageError(f"{name} is damaged or truncated: {exc}") from exc
    return _to_bgr(upright)


def encode_image(img: np.ndarray, fmt: EncodeFormat = "jpeg", quality: int = 85) -> bytes:
    """Encode a BGR (or grey) uint8 image as JPEG, PNG or WebP bytes.

    `quality` (1..100) applies to JPEG and WebP; PNG is lossless and ignores it.
    """
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or img.size == 0:
        raise ValueError(f"expected a non-empty uint8 image, got {img.dtype} {img.shape}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    params: dict[str, list[int]] = {
        "jpeg": [cv2.IMWRITE_JPEG_QUALITY, quality],
        "png": [cv2.IMWRITE_PNG_COMPRESSION, 3],
        "webp": [cv2.IMWRITE_WEBP_QUALITY, quality],
    }
    if fmt not in params:
        raise ValueError(f"unknown image format {fmt!r}; use one of {sorted(params)}")
    ok, buf = cv2.imencode(f".{fmt}", img, params[fmt])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {img.shape} image as {fmt}")
    return buf.tobytes()


def _read_source(source: bytes | Path | str, max_bytes: int) -> tuple[str, bytes]:
    """The input's name for messages, and its bytes (at most `max_bytes`)."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        name = "the image data"
    else:
        path = Path(source)
        name = str(path)
        try:
            with path.open("rb") as f:
                data = f.read(max_bytes + 1)
        except OSError as exc:
            raise ImageError(f"cannot read {name}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise ImageError(f"{name} is larger than the {max_bytes >> 20} MiB accepted")
    return name, data


def _sniff(data: bytes) -> str:
    """A short description of what the bytes look like, for the error message."""
    head = data[:64]
    text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # a cut last character
    if "\ufffd" not in text and all(c.isprintable() or c.isspace() for c in text):
        return f"looks like text: {text[:24]!r}"
    return f"starts with bytes {head[:8].hex(' ')}"


def _to_bgr(image: Image.Image) -> np.ndarray:
    """Pillow image of any mode to a contiguous BGR uint8 array."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, rgba).convert("RGB")
    elif image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: scale to 8 bits rather than clip everything above 255 to white
        wide = np.asarray(image, dtype=np.uint32)
        top = max(int(wide.max()), 1)
        grey = (wide * 255 // top).astype(np.uint8) if top > 255 else wide.astype(np.uint8)
        return np.ascontiguousarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    else:
        rgb = image.convert("RGB")
    array = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(cv2.cvtColor(array, cv2.COLOR_RGB2BGR))
