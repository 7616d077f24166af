"""The LiteRT finder behind the ReceiptFinder protocol: corners in frame pixels, or None."""

from __future__ import annotations

import numpy as np
import pytest

from models.document import ReceiptFinder
from models.litert.finder import LiteRTFinder
from tests.models.litert.conftest import make_folder

#: The fixture's corner maps fire on these dots: TL red, TR green, BR blue, BL black (BGR).
DOTS = ((0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 0, 0))


def frame_with_dots(centres: list[tuple[int, int]], size: tuple[int, int] = (384, 512)):
    frame = np.full((size[1], size[0], 3), 255, np.uint8)
    for (x, y), colour in zip(centres, DOTS, strict=True):
        frame[y - 8 : y + 8, x - 8 : x + 8] = colour
    return frame


@pytest.fixture
def finder(tmp_path) -> LiteRTFinder:
    folder = make_folder(tmp_path / "models", "tiny_finder_float.tflite", name="finder")
    return LiteRTFinder(folder)


def test_corners_come_back_in_frame_pixels_clockwise(finder):
    typed: ReceiptFinder = finder  # mypy checks it satisfies the protocol
    centres = [(104, 72), (296, 88), (280, 440), (88, 424)]
    found = typed.find(frame_with_dots(centres))
    assert found is not None and found.score > 0.9 and not found.flat_scan
    np.testing.assert_allclose(found.quad, np.array(centres, np.float32), atol=2.0)
    assert finder.name == "litert" and finder.version == "test-1"


def test_an_empty_frame_gets_no_quad(finder):
    assert finder.find(np.full((512, 384, 3), 255, np.uint8)) is None


def test_a_quad_filling_the_frame_is_a_flat_scan(finder):
    centres = [(8, 8), (376, 8), (376, 504), (8, 504)]
    found = finder.find(frame_with_dots(centres))
    assert found is not None and found.flat_scan


def test_the_pipeline_uses_the_finder_it_is_configured_with(tmp_path):
    from models.document import ContourFinder
    from models.ocr import EngineUnavailable
    from models.pipeline import PipelineConfig, build_pipeline

    folder = make_folder(tmp_path / "models", "tiny_finder_float.tflite", name="finder")
    empty = tmp_path / "empty"
    empty.mkdir()
    auto = build_pipeline(PipelineConfig(finder_model_dir=folder))
    assert isinstance(auto.finder, LiteRTFinder)
    fallback = build_pipeline(PipelineConfig(finder_model_dir=empty))
    assert isinstance(fallback.finder, ContourFinder)
    with pytest.raises(EngineUnavailable, match="finder"):
        build_pipeline(PipelineConfig(finder="litert", finder_model_dir=empty))
    contour = build_pipeline(PipelineConfig(finder="contour", finder_model_dir=folder))
    assert isinstance(contour.finder, ContourFinder)


def test_a_flat_scan_is_read_whole_when_the_model_outlines_part_of_it(tmp_path):
    """The tiny model sees its dots on a page of print and outlines a quarter of it; the
    classical flat-scan verdict wins because no paper edge runs along that outline."""
    from tests.models.synthetic import render_receipt

    folder = make_folder(tmp_path / "models", "tiny_finder_float.tflite", name="finder")
    page = np.ascontiguousarray(render_receipt())
    height, width = page.shape[:2]
    centres = [(width // 4, height // 4), (width // 2, height // 4)]
    centres += [(width // 2, height // 2), (width // 4, height // 2)]
    for (x, y), colour in zip(centres, DOTS, strict=True):
        page[y - 14 : y + 14, x - 14 : x + 14] = colour
    model_only = LiteRTFinder(folder, scan_check=False).find(page)
    assert model_only is not None and not model_only.flat_scan  # a quarter of the page
    checked = LiteRTFinder(folder).find(page)
    assert checked is not None and checked.flat_scan
