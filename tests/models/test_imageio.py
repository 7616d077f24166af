"""Loading images strictly and encoding them (models/imageio.py)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.imageio import MIME_TYPES, ImageError, encode_image, load_image


def _pattern(height: int = 60, width: int = 40) -> np.ndarray:
    """A BGR image whose every pixel differs, so orientation and channel order show."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 5 % 256, yy * 4 % 256, np.full_like(xx, 200)], axis=2).astype(np.uint8)


def _pil_bytes(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_png_round_trip_keeps_pixels_and_bgr_order(tmp_path: Path) -> None:
    img = _pattern()
    path = tmp_path / "a.png"
    path.write_bytes(encode_image(img, "png"))
    assert np.array_equal(load_image(path), img)
    assert np.array_equal(load_image(str(path)), img)
    assert np.array_equal(load_image(path.read_bytes()), img)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_lossy_formats_round_trip_closely(fmt: str) -> None:
    img = _pattern()
    data = encode_image(img, fmt, quality=95)  # type: ignore[arg-type]
    out = load_image(data)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 6
    assert fmt in MIME_TYPES


def test_encode_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="quality"):
        encode_image(_pattern(), "jpeg", quality=0)
    with pytest.raises(ValueError, match="unknown image format"):
        encode_image(_pattern(), "gif")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uint8"):
        encode_image(np.zeros((4, 4), np.float32))


def test_exif_orientation_is_applied() -> None:
    rgb = Image.new("RGB", (40, 20), (255, 255, 255))
    rgb.paste((255, 0, 0), (0, 0, 10, 20))  # red band on the left edge, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display turned 90 degrees clockwise
    out = load_image(_pil_bytes(rgb, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape[:2] == (40, 20)  # portrait once upright
    top, bottom = out[:8].reshape(-1, 3).mean(0), out[-8:].reshape(-1, 3).mean(0)
    assert top[2] > 200 and top[1] < 80  # the band is now at the top (BGR: red is channel 2)
    assert bottom.min() > 200


def test_grey_and_transparent_images_become_bgr() -> None:
    grey = load_image(_pil_bytes(Image.new("L", (8, 6), 100), "PNG"))
    assert grey.shape == (6, 8, 3) and (grey == 100).all()
    clear = load_image(_pil_bytes(Image.new("RGBA", (8, 6), (0, 0, 0, 0)), "PNG"))
    assert (clear == 255).all()  # transparent is paper white, not black


def test_zero_bytes_is_an_image_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(path)


def test_text_renamed_jpg_is_an_image_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("total 12.50\n")
    with pytest.raises(ImageError, match=r"not an image.*text"):
        load_image(path)


@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
def test_truncated_jpeg_is_an_image_error(keep: float) -> None:
    data = encode_image(_pattern(200, 150), "jpeg")
    cut = data[: int(len(data) * keep)] if keep > 0 else data[: int(keep)]
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(cut)


def test_truncated_png_is_an_image_error() -> None:
    data = encode_image(np.random.default_rng(0).integers(0, 255, (100, 100, 3), np.uint8), "png")
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(data[: len(data) // 2])


def test_missing_file_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "nowhere.jpg")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size and carries almost no data: what a bomb looks like."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [12_000, 50_000])  # 144 MP (ours says no), 2.5 GP (Pillow's)
def test_decompression_bomb_is_an_image_error(side: int) -> None:
    with pytest.raises(ImageError, match=r"pixels|absurd"):
        load_image(_png_header_only(side, side))


def test_size_limits_are_parameters() -> None:
    data = encode_image(_pattern(), "png")
    with pytest.raises(ImageError, match="more than the 100 accepted"):
        load_image(data, max_pixels=100)
    with pytest.raises(ImageError, match="larger than"):
        load_image(data + b"\0" * (2 << 20), max_bytes=1 << 20)
