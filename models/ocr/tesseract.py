"""Tesseract OCR engine: the Debian `tesseract` 5 command line, the baseline we measure against.

One process per image: the image goes in on stdin as PNG, word boxes come back as TSV, and the
words are grouped into Tesseract's own lines. Single-line crops are read with ``--psm 7``,
several at once in parallel processes. Threads per process are set with OMP_THREAD_LIMIT.

Measured on SROIE scans (2-core x86): one receipt takes ~0.4 s with one thread and ~0.33 s with
two on idle cores; on busy cores two OpenMP threads took 10 s until idle threads were told to
sleep (OMP_WAIT_POLICY=PASSIVE, set here unless the environment says otherwise), and still
gained nothing. Hence one thread by default; more pay off for `recognize_crops`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from models.ocr.base import EngineUnavailable, OcrError
from models.ocr.config import EngineConfigBase
from models.receipt import OcrLine

logger = logging.getLogger(__name__)

KEY = "tesseract"
APT_HINT = "install the Debian package: apt-get install tesseract-ocr tesseract-ocr-eng"
#: White margin added around a line crop; Tesseract misreads text that touches the border.
CROP_PADDING = 8


class TesseractConfig(EngineConfigBase):
    """Tesseract through its command line."""

    type: Literal["tesseract"] = Field(default="tesseract", title="Engine type")
    binary: str = Field(
        default="tesseract",
        title="Binary",
        description="The tesseract executable: a name looked up on PATH, or a path.",
    )
    lang: str = Field(
        default="eng",
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        title="Languages",
        description="Tesseract language codes joined by '+', e.g. 'eng' or 'eng+deu'.",
    )
    psm: int = Field(
        default=4,
        ge=0,
        le=13,
        title="Page segmentation mode",
        description="For whole receipts. 4 (one column of variable-size text) reads receipt "
        "rows best; 6 (one uniform block) is the alternative.",
    )
    line_psm: int = Field(
        default=7,
        ge=0,
        le=13,
        title="Line segmentation mode",
        description="For single-line crops (recognize_crops): 7 treats the image as one line.",
    )
    dpi: int | None = Field(
        default=None,
        ge=70,
        le=1200,
        title="Resolution",
        description="Resolution to assume; unset lets Tesseract estimate it from text size.",
    )
    timeout_s: float = Field(
        default=60.0, gt=0, title="Timeout", description="Seconds one tesseract run may take."
    )


@dataclass(frozen=True)
class _Word:
    line_key: tuple[str, str, str, str]
    left: int
    top: int
    right: int
    bottom: int
    confidence: float
    text: str


class TesseractEngine:
    """`OcrEngine` running the tesseract binary; see the module docstring."""

    name = KEY

    def __init__(self, config: TesseractConfig, threads: int = 1) -> None:
        binary = shutil.which(config.binary)
        if binary is None:
            raise EngineUnavailable(
                f"the Tesseract OCR engine needs the '{config.binary}' program, which is not "
                f"installed or not on PATH; {APT_HINT}"
            )
        self._config = config
        self._binary = binary
        self._threads = max(1, threads)
        self.version = _version(binary)
        _check_languages(binary, config.lang)

    def read_lines(self, image: np.ndarray) -> list[OcrLine]:
        tsv = self._run(image, psm=self._config.psm, omp_threads=self._threads)
        return _lines_from_tsv(tsv)

    def recognize_crops(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        if self._threads == 1 or len(crops) < 2:
            return [self._recognize_one(crop) for crop in crops]
        # One single-threaded process per crop, `threads` of them at a time.
        with ThreadPoolExecutor(max_workers=self._threads) as pool:
            return list(pool.map(self._recognize_one, crops))

    def _recognize_one(self, crop: np.ndarray) -> tuple[str, float]:
        if crop.size == 0 or min(crop.shape[:2]) < 2:
            return "", 0.0
        padded = cv2.copyMakeBorder(
            crop,
            CROP_PADDING,
            CROP_PADDING,
            CROP_PADDING,
            CROP_PADDING,
            cv2.BORDER_CONSTANT,
            value=_background(crop),
        )
        words = _words_from_tsv(self._run(padded, psm=self._config.line_psm, omp_threads=1))
        if not words:
            return "", 0.0
        text = " ".join(w.text for w in words)
        return text, sum(w.confidence for w in words) / len(words)

    def _run(self, image: np.ndarray, *, psm: int, omp_threads: int) -> str:
        """Run tesseract on one image and return its TSV output."""
        if image.size == 0:
            raise ValueError("cannot read text from an empty image")
        ok, png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ValueError(f"could not encode a {image.shape} {image.dtype} image as PNG")
        args = [self._binary, "stdin", "stdout", "--psm", str(psm), "-l", self._config.lang]
        if self._config.dpi is not None:
            args += ["--dpi", str(self._config.dpi)]
        args.append("tsv")
        # Idle OpenMP threads spin by default; on busy cores that made a 0.4 s read take 10 s.
        env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "OMP_THREAD_LIMIT": str(omp_threads)}
        try:
            done = subprocess.run(  # noqa: S603 - fixed argument list, no shell
                args,
                input=png.tobytes(),
                capture_output=True,
                env=env,
                timeout=self._config.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OcrError(
                f"tesseract took longer than {self._config.timeout_s} s on a "
                f"{image.shape[1]}x{image.shape[0]} image"
            ) from exc
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", errors="replace").strip()[-500:]
            raise OcrError(f"tesseract failed (exit {done.returncode}): {detail}")
        return done.stdout.decode("utf-8", errors="replace")


def _version(binary: str) -> str:
    """Tesseract's version, e.g. ``5.3.0``."""
    try:
        done = subprocess.run(  # noqa: S603
            [binary, "--version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineUnavailable(f"cannot run {binary}: {exc}; {APT_HINT}") from exc
    out = (done.stdout + done.stderr).decode("utf-8", errors="replace")
    match = re.search(r"tesseract\s+v?(\S+)", out)
    if done.returncode != 0 or match is None:
        raise EngineUnavailable(f"{binary} --version did not name a Tesseract version: {out!r}")
    return match.group(1)


def _check_languages(binary: str, lang: str) -> None:
    """Fail now, with the package to install, when a language's data is missing."""
    done = subprocess.run(  # noqa: S603
        [binary, "--list-langs"], capture_output=True, timeout=30, check=False
    )
    out = (done.stdout + done.stderr).decode("utf-8", errors="replace").splitlines()
    installed = {line.strip() for line in out if line.strip() and not line.startswith("List of")}
    missing = [code for code in lang.split("+") if code not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in missing)
        raise EngineUnavailable(
            f"Tesseract has no language data for {', '.join(missing)} (installed: "
            f"{', '.join(sorted(installed)) or 'none'}); apt-get install {packages}"
        )


def _background(crop: np.ndarray) -> tuple[int, ...]:
    """The crop's border colour (median of its outermost pixels), to pad it with."""
    border = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    median = np.median(border.reshape(-1, 1 if crop.ndim == 2 else crop.shape[2]), axis=0)
    return tuple(int(v) for v in median)


def _words_from_tsv(tsv: str) -> list[_Word]:
    """The recognised words of Tesseract's TSV output, in its reading order."""
    words = []
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t", 11)
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        left, top, width, height = (int(c) for c in cols[6:10])
        words.append(
            _Word(
                line_key=(cols[1], cols[2], cols[3], cols[4]),
                left=left,
                top=top,
                right=left + width,
                bottom=top + height,
                confidence=min(max(float(cols[10]) / 100.0, 0.0), 1.0),
                text=cols[11].strip(),
            )
        )
    return words


def _lines_from_tsv(tsv: str) -> list[OcrLine]:
    """Group TSV words into OcrLines: Tesseract's (page, block, paragraph, line) groups."""
    grouped: dict[tuple[str, str, str, str], list[_Word]] = {}
    for word in _words_from_tsv(tsv):
        grouped.setdefault(word.line_key, []).append(word)
    lines = []
    for line_id, words in enumerate(grouped.values()):
        left = float(min(w.left for w in words))
        top = float(min(w.top for w in words))
        right = float(max(w.right for w in words))
        bottom = float(max(w.bottom for w in words))
        lines.append(
            OcrLine(
                id=line_id,
                text=" ".join(w.text for w in words),
                box=((left, top), (right, top), (right, bottom), (left, bottom)),
                confidence=sum(w.confidence for w in words) / len(words),
            )
        )
    return lines
