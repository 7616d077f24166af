"""The shipped receipt finder on real flatbed scans: it must never cut a receipt's print.

SROIE's receipts are scans (white paper on a white bed, or cropped to the paper); the corner
model learnt from countertop photos and synthetic scans. Reading a scan through the finder must
keep every ground-truth text line inside the outline it reports (or read the scan whole).
Train receipts only (the val split stays unseen); skipped without the dataset or a finder.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.evaluation.sroie import load_split
from models.imageio import load_image
from models.litert.finder import LiteRTFinder
from models.ocr.litert import ARTIFACTS
from models.training.data import read_box_file


@pytest.fixture(scope="module")
def finder() -> LiteRTFinder:
    manifest = json.loads((ARTIFACTS / "manifest.json").read_text(encoding="utf-8"))
    if "finder" not in manifest["models"]:
        pytest.skip("no finder model in models/artifacts")
    return LiteRTFinder(ARTIFACTS)


def test_the_finder_keeps_every_line_of_sroie_train_scans(
    finder: LiteRTFinder, sroie_dir: Path
) -> None:
    ids = load_split()["train"][::25]  # 20 shops' worth
    kept = total = 0
    cut: list[str] = []
    for rid in ids:
        image = load_image(sroie_dir / "img" / f"{rid}.jpg")
        height, width = image.shape[:2]
        found = finder.find(image)
        assert found is not None, f"no receipt found on scan {rid}"
        quad = (
            np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
            if found.flat_scan
            else found.quad
        ).reshape(-1, 1, 2)
        boxes = read_box_file(sroie_dir / "box" / f"{rid}.txt")
        inside = [
            cv2.pointPolygonTest(quad, tuple(np.mean(b.quad, axis=0).tolist()), True) > -2
            for b in boxes
        ]
        kept += sum(inside)
        total += len(inside)
        if not all(inside):
            cut.append(rid)
    assert kept / total >= 0.995 and len(cut) <= 1, f"lines cut on scans {cut}"
