"""The fonts receipts are drawn with, found on the machine, and which glyphs each one has."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

logger = logging.getLogger(__name__)

FONT_ROOTS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))

#: File-name stems of Latin text faces worth using; (stem, thermal-look) pairs.
_WANTED = (
    ("DejaVuSans", False),
    ("DejaVuSansMono", True),
    ("DejaVuSerif", False),
    ("DejaVuSansCondensed", False),
    ("DejaVuSansMono-Bold", True),
    ("DejaVuSans-Bold", False),
    ("LiberationSans-Regular", False),
    ("LiberationSans-Bold", False),
    ("LiberationMono-Regular", True),
    ("LiberationMono-Bold", True),
    ("LiberationSerif-Regular", False),
    ("LiberationSansNarrow-Regular", False),
    ("LiberationSansNarrow-Bold", False),
    ("FreeMono", True),
    ("FreeMonoBold", True),
    ("FreeSans", False),
    ("FreeSansBold", False),
    ("FreeSerif", False),
    ("NotoSans-Regular", False),
    ("NotoSans-Bold", False),
    ("NotoSansMono-Regular", True),
    ("NotoSansMono-Bold", True),
    ("NotoSerif-Regular", False),
    ("NotoMono-Regular", True),
    ("terminus-normal", True),
    ("terminus-bold", True),
)


@dataclass(frozen=True)
class FontFace:
    """A font file and whether it looks like a till printer's (monospaced or bitmap)."""

    path: str
    thermal: bool

    @property
    def bitmap(self) -> bool:
        return self.path.endswith((".otb", ".pcf.gz", ".pcf"))


@functools.cache
def available_fonts() -> tuple[FontFace, ...]:
    """The wanted faces present on this machine, in a fixed order (a seed gives one font)."""
    files: dict[str, Path] = {}
    for root in FONT_ROOTS:
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.suffix in (".ttf", ".otf", ".otb"):
                    files.setdefault(p.stem, p)
    faces = tuple(FontFace(str(files[s]), t) for s, t in _WANTED if s in files)
    if not faces:
        raise RuntimeError(
            "no usable fonts found under /usr/share/fonts; install fonts-dejavu-core, "
            "fonts-liberation2 or fonts-freefont-ttf"
        )
    logger.debug("synthetic receipts use %d font faces", len(faces))
    return faces


@functools.lru_cache(maxsize=512)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A font at a pixel size (cached)."""
    return ImageFont.truetype(path, size)


_STRIKES = (12, 14, 16, 18, 20, 22, 24, 28, 32)


@functools.lru_cache(maxsize=1024)
def bitmap_size(path: str, wanted: int) -> int:
    """The nearest size a bitmap face has (they come in fixed strikes), preferring smaller."""
    for size in sorted(_STRIKES, key=lambda s: (abs(s - wanted), s)):
        try:
            load_font(path, size)
        except OSError:
            continue
        return size
    raise OSError(f"bitmap font {path} has none of the sizes {_STRIKES}; remove it from _WANTED")


@functools.lru_cache(maxsize=4096)
def _missing_mask(path: str) -> bytes:
    font = load_font(path, 24)
    return bytes(font.getmask("\U0010fffd"))


@functools.lru_cache(maxsize=65536)
def has_glyph(path: str, char: str) -> bool:
    """Whether the font draws the character (rather than its 'missing glyph' box)."""
    if char.isspace():
        return True
    font = load_font(path, 24)
    mask = font.getmask(char)
    if mask.size[0] == 0 or mask.size[1] == 0:
        return False
    return bytes(mask) != _missing_mask(path)


def supports(path: str, text: str) -> bool:
    """Whether the font draws every character of the text."""
    return all(has_glyph(path, c) for c in set(text))
