"""The classical receipt finder (models/document/finder.py) on generated photos and real scans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.document import ContourFinder
from models.document.geometry import order_corners, touched_edges
from models.imageio import load_image
from tests.models.synthetic import COUNTERTOPS, countertop, photograph, render_receipt


@pytest.fixture(scope="module")
def finder() -> ContourFinder:
    return ContourFinder()


@pytest.fixture(scope="module")
def receipt() -> np.ndarray:
    return render_receipt()


@pytest.mark.parametrize("kind", COUNTERTOPS)
@pytest.mark.parametrize(("seed", "fill"), [(1, 0.45), (2, 0.8), (3, 0.65)])
def test_finds_the_receipt_on_a_countertop(
    finder: ContourFinder, receipt: np.ndarray, kind: str, seed: int, fill: float
) -> None:
    photo = photograph(receipt, countertop(kind, seed=seed), seed, fill=fill)
    found = finder.find(photo.image)
    assert found is not None, f"no receipt found on {kind}"
    assert not found.flat_scan
    # Every corner within 1.5 % of the frame's width of the truth, in the same order.
    error = np.abs(found.quad - order_corners(photo.quad)).max()
    assert error < 0.015 * photo.image.shape[1], f"corners off by {error:.0f} px on {kind}"
    assert 0.0 < found.score <= 1.0


@pytest.mark.parametrize("kind", COUNTERTOPS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_empty_countertop_gives_no_receipt(finder: ContourFinder, kind: str, seed: int) -> None:
    assert finder.find(countertop(kind, seed=seed)) is None


def test_blank_white_surface_is_not_a_flat_scan(finder: ContourFinder) -> None:
    assert finder.find(np.full((600, 400, 3), 245, np.uint8)) is None


def test_paper_filling_the_frame_is_a_flat_scan(finder: ContourFinder, receipt: np.ndarray) -> None:
    found = finder.find(receipt)
    assert found is not None and found.flat_scan
    height, width = receipt.shape[:2]
    assert touched_edges(found.quad, width, height, margin=0.01) == [
        "top",
        "right",
        "bottom",
        "left",
    ]


def test_receipt_cut_off_by_the_frame_touches_its_edge(
    finder: ContourFinder, receipt: np.ndarray
) -> None:
    photo = photograph(receipt, countertop("wood", seed=4), 4, fill=0.6)
    # Crop the photo so the receipt's bottom runs out of the frame.
    bottom = int(photo.quad[:, 1].max() - 0.25 * np.ptp(photo.quad[:, 1]))
    found = finder.find(photo.image[:bottom])
    assert found is not None and not found.flat_scan
    assert "bottom" in touched_edges(found.quad, photo.image.shape[1], bottom, margin=0.01)


@pytest.mark.parametrize("sample", ["000", "005", "042", "250", "400", "600"])
def test_sroie_scans_are_flat_scans(finder: ContourFinder, sroie_dir: Path, sample: str) -> None:
    found = finder.find(load_image(sroie_dir / "img" / f"{sample}.jpg"))
    assert found is not None and found.flat_scan


def test_rejects_a_non_colour_image(finder: ContourFinder) -> None:
    with pytest.raises(ValueError, match="BGR"):
        finder.find(np.zeros((10, 10), np.uint8))
