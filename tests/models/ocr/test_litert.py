"""The LiteRT engine: config, manifest checks at start-up, batched recognition and decoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw
from pydantic import TypeAdapter, ValidationError

from models.ocr import EngineUnavailable, LiteRTConfig, OcrEngine, OcrEngineConfig, build_engine
from models.ocr.litert import LiteRTEngine, _crop, _cut_rows, is_text_line
from models.synth.fonts import available_fonts, load_font
from tests.models.litert.conftest import make_folder


def blocks(n: int, height: int = 16, size: int = 16) -> np.ndarray:
    """A white crop with `n` dark square blocks separated by white gaps."""
    crop = np.full((height, size * (2 * n + 1)), 255, np.uint8)
    for k in range(n):
        crop[:, size * (2 * k + 1) : size * (2 * k + 2)] = 0
    return crop


@pytest.fixture
def engine(tmp_path) -> OcrEngine:
    folder = make_folder(tmp_path / "models")
    return build_engine(LiteRTConfig(model_dir=folder, require_detector=False, bucket=32, batch=3))


def test_the_config_union_picks_litert_and_rejects_unknown_keys(tmp_path):
    adapter: TypeAdapter[OcrEngineConfig] = TypeAdapter(OcrEngineConfig)
    config = adapter.validate_python({"type": "litert", "model_dir": str(tmp_path)})
    assert isinstance(config, LiteRTConfig) and config.model_dir == tmp_path
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "litert", "treads": 2})


def test_crops_are_read_in_order_across_width_buckets_and_batches(engine):
    crops = [blocks(n) for n in (3, 1, 5, 2, 2, 4, 1)]
    crops.insert(2, np.zeros((0, 0), np.uint8))  # an empty crop reads as nothing
    crops.insert(4, np.dstack([blocks(2)] * 3))  # BGR crops are read too
    results = engine.recognize_crops(crops)
    assert [t for t, _ in results] == ["aaa", "a", "", "aaaaa", "aa", "aa", "aa", "aaaa", "a"]
    assert results[2][1] == 0.0
    assert all(0.5 < c <= 1.0 for t, c in results if t)
    assert engine.name == "litert" and engine.version == "test-1"


def test_a_white_crop_reads_empty(engine):
    assert engine.recognize_crops([np.full((16, 64), 255, np.uint8)]) == [("", 0.0)]


def test_without_a_detector_it_refuses_to_start_or_to_read_pages(tmp_path, engine):
    folder = make_folder(tmp_path / "m")
    with pytest.raises(EngineUnavailable, match=r"no text-line detector.*receipts train detector"):
        build_engine(LiteRTConfig(model_dir=folder))
    with pytest.raises(EngineUnavailable, match="only recognise given crops"):
        engine.read_lines(np.full((64, 64, 3), 255, np.uint8))


def test_a_missing_folder_or_tampered_model_makes_it_unavailable(tmp_path):
    with pytest.raises(EngineUnavailable, match="does not exist"):
        build_engine(LiteRTConfig(model_dir=tmp_path / "none", require_detector=False))
    folder = make_folder(tmp_path / "m")
    (folder / "tiny_ctc_int8.tflite").write_bytes(b"\0" * 100)
    with pytest.raises(EngineUnavailable, match="does not match its manifest"):
        build_engine(LiteRTConfig(model_dir=folder, require_detector=False))


def test_read_lines_detects_then_reads_each_line_in_reading_order(tmp_path):
    folder = make_folder(tmp_path / "models")
    make_folder(folder, "tiny_core_int8.tflite", name="detector")
    # pieces of a row stay apart (merge_gap 0) so the order of the two can be checked
    engine = build_engine(LiteRTConfig(model_dir=folder, merge_gap=0))
    page = np.full((300, 384, 3), 255, np.uint8)  # 384 wide: the detector's scale is 1
    page[100:116, 320:360] = 0  # second row, right segment
    page[40:56, 40:200] = 0  # first row
    page[100:116, 60:300] = 0  # second row, left segment
    lines = engine.read_lines(page)
    assert [ln.text for ln in lines] == ["a", "a", "a"]
    assert [ln.id for ln in lines] == [0, 1, 2]
    # Each core (the dark bar) grows back to a line twice its height, longer by a quarter of
    # that height at each end.
    (x0, y0), _, (x1, y1), _ = lines[0].box
    assert (x0, y0, x1, y1) == pytest.approx((32, 32, 208, 64), abs=1.5)
    assert lines[1].box[0][0] < lines[2].box[0][0]
    assert lines[1].box[0][1] == pytest.approx(92, abs=1.5)
    assert all(ln.char_confidences and len(ln.char_confidences) == 1 for ln in lines)
    assert engine.read_lines(np.full((200, 384, 3), 255, np.uint8)) == []


def test_boxes_read_below_the_least_line_confidence_are_not_lines(tmp_path):
    folder = make_folder(tmp_path / "models")
    make_folder(folder, "tiny_core_int8.tflite", name="detector")
    page = np.full((200, 384), 255, np.uint8)
    page[40:56, 40:200] = 0
    page[100:116, 60:300] = 0
    kept = build_engine(LiteRTConfig(model_dir=folder))
    assert isinstance(kept, LiteRTEngine)
    lines = kept.read_lines(page)
    assert len(lines) == 2 and all(0.5 <= ln.confidence < 0.95 for ln in lines)
    strict = build_engine(LiteRTConfig(model_dir=folder, min_line_confidence=0.95))
    assert isinstance(strict, LiteRTEngine)
    assert strict.read_lines(page) == []
    # the detector still found both: only the reading decided
    assert len(strict.find_lines(page)) == 2


@pytest.mark.parametrize(
    ("text", "confidence", "expected"),
    [
        ("TOTAL 9.90", 0.9, True),
        ("TOTAL 9.90", 0.3, False),  # read below the least confidence
        ("   ", 0.9, False),  # read as nothing
        ("================", 0.99, False),  # a rule between sections
        ("* * * * *", 0.9, False),
        ("- - -", 0.9, False),
        (":", 0.9, True),  # a lone colon or sign is text too short to be a rule
        ("RM", 0.9, True),
        ("**COPY**", 0.9, True),
        ("€ 5", 0.9, True),
        ("Café", 0.9, True),
    ],
)
def test_a_text_line_reads_as_something_surely_and_is_not_a_rule(text, confidence, expected):
    assert is_text_line(text, confidence, 0.5) is expected


def test_a_tall_page_read_in_strips_gives_the_whole_pages_core_map(tmp_path):
    folder = make_folder(tmp_path / "models")
    make_folder(folder, "tiny_core_int8.tflite", name="detector")
    page = np.ones((448, 384), np.float32)
    rng = np.random.default_rng(5)
    for top in range(8, 430, 22):  # a text line every 22 rows, some across strip cuts
        left = int(rng.integers(0, 200))
        page[top : top + 12, left : left + int(rng.integers(40, 180))] = 0.0
    whole = build_engine(LiteRTConfig(model_dir=folder, detector_rows=448))
    strips = build_engine(LiteRTConfig(model_dir=folder, detector_rows=128, detector_context=32))
    assert isinstance(whole, LiteRTEngine) and isinstance(strips, LiteRTEngine)
    expected = whole._core_map(page)
    got = strips._core_map(page)
    assert got.shape == expected.shape == page.shape
    # the fixture detector sees only a few pixels around each one, well inside the overlap
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert expected.max() > 0.5  # the map is not empty
    short = np.ones((100, 384), np.float32)  # shorter than a strip: padded, then cut back
    assert strips._core_map(short).shape == (100, 384)


def test_a_tilted_line_is_boxed_along_its_slant_and_cropped_upright(tmp_path):
    folder = make_folder(tmp_path / "models")
    make_folder(folder, "tiny_core_int8.tflite", name="detector")
    engine = build_engine(LiteRTConfig(model_dir=folder))
    assert isinstance(engine, LiteRTEngine)
    page = np.full((300, 384, 3), 255, np.uint8)
    bar = cv2.boxPoints(((192, 150), (300, 12), 4.0))  # 300 x 12, turned 4 degrees: rises 21 px
    cv2.fillPoly(page, [np.round(bar).astype(np.int32)], (0, 0, 0))
    (quad,) = engine.find_lines(cv2.cvtColor(page, cv2.COLOR_BGR2GRAY))
    (x0, y0), (x1, y1), _, (x3, y3) = quad
    assert np.degrees(np.arctan2(y1 - y0, x1 - x0)) == pytest.approx(4.0, abs=0.5)
    assert np.hypot(x3 - x0, y3 - y0) == pytest.approx(2 * 13, abs=3)  # not the upright 47
    crop = _crop(cv2.cvtColor(page, cv2.COLOR_BGR2GRAY), quad)
    assert crop.shape[0] == pytest.approx(1.2 * 26, abs=4)
    span = slice(crop.shape[1] // 8, -crop.shape[1] // 8)  # inside the bar's ends
    middle, edges = crop[crop.shape[0] // 2, span], np.r_[crop[1, span], crop[-2, span]]
    assert middle.max() < 80 and edges.min() > 175  # the bar runs straight across the crop


def test_two_rows_printed_touching_in_one_box_are_cut_apart_and_read() -> None:
    """A tight header's two lines come out of the detector as one box twice a line's height;
    read as one row it is noise (and was dropped), cut at the faint row between them each
    reads right."""
    face = next(f for f in available_fonts() if "LiberationMono-Regular" in f.path)
    font = load_font(face.path, 26)
    texts = [
        "CORNER GROCERY",
        "12 HIGH STREET",
        "TEL 0123 456789",
        "GUARDIAN HEALTH AND BEAUTY",
        "GUARDIAN GIANT BREM MALL",
    ]
    image = Image.new("L", (620, 330), 255)
    draw = ImageDraw.Draw(image)
    boxes: list[list[float]] = []
    y = 20
    for k, text in enumerate(texts):
        draw.text((30, y), text, font=font, fill=0)
        x0, top, x1, bottom = draw.textbbox((30, y), text, font=font)
        if k < 4:
            boxes.append([x0 - 4, top - 6, x1 + 4, bottom + 6])
        else:  # printed right under the row above, and boxed with it
            boxes[-1] = [boxes[-1][0], boxes[-1][1], max(boxes[-1][2], x1 + 4), bottom + 6]
        y += 60 if k < 3 else 27
    quads = [((a, b), (c, b), (c, d), (a, d)) for a, b, c, d in boxes]
    engine = build_engine(LiteRTConfig())  # the shipped models
    assert isinstance(engine, LiteRTEngine)
    lines = engine.read_boxes(np.asarray(image), quads)
    assert [ln.text for ln in lines] == texts
    # the two rows' boxes split the tall one between them
    assert lines[3].box[0][1] == quads[3][0][1] and lines[4].box[2][1] == quads[3][2][1]
    assert lines[3].box[2][1] == lines[4].box[0][1]


def test_rows_are_cut_at_the_faintest_ink_near_an_even_cut() -> None:
    upright = np.full((40, 100), 255, np.uint8)
    upright[2:17, :] = 0  # the first row's ink
    upright[19:38, :] = 0  # the second's, after a gap at rows 17-18
    quad = ((10.0, 100.0), (110.0, 100.0), (110.0, 140.0), (10.0, 140.0))
    top, bottom = _cut_rows(quad, upright, 2)
    assert top[2][1] == pytest.approx(117.0) and bottom[0][1] == pytest.approx(117.0)
    assert top[0] == quad[0] and bottom[2] == quad[2]
