"""The generator's labels agree with its images, and a seed always gives the same sample."""

from __future__ import annotations

import json
from decimal import Decimal

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from models.synth import generate_empty, generate_line, generate_receipt, generate_scan
from models.synth.cli import synth
from models.synth.content import make_content
from models.synth.labels import SceneLabel
from models.training.charset import Charset

SIZE = (480, 640)


@pytest.fixture(scope="module")
def samples():
    return [generate_receipt(seed, SIZE) for seed in range(8)]


def test_same_seed_same_sample():
    a, b = generate_receipt(3, SIZE), generate_receipt(3, SIZE)
    assert np.array_equal(a.image, b.image)
    assert a.label == b.label
    c = generate_receipt(4, SIZE)
    assert not np.array_equal(a.image.shape, c.image.shape) or not np.array_equal(a.image, c.image)


def test_corners_and_boxes_inside_the_photo(samples):
    for s in samples:
        lab = s.label
        assert s.image.shape == (SIZE[1], SIZE[0], 3)
        assert s.image.dtype == np.uint8
        assert lab.corners is not None
        for x, y in lab.corners:
            assert 0 <= x <= SIZE[0] - 1 and 0 <= y <= SIZE[1] - 1
        quad = np.array(lab.corners)
        area = 0.5 * abs(
            np.dot(quad[:, 0], np.roll(quad[:, 1], 1)) - np.dot(quad[:, 1], np.roll(quad[:, 0], 1))
        )
        assert area > 0.1 * SIZE[0] * SIZE[1]
        assert lab.lines
        pw, ph = lab.paper_size
        for line in lab.lines:
            assert line.text.strip()
            for x, y in line.box:
                assert 0 <= x <= SIZE[0] - 1 and 0 <= y <= SIZE[1] - 1
            x0, y0, x1, y1 = line.paper_box
            assert -3 <= x0 < x1 <= pw + 3 and -3 <= y0 < y1 <= ph + 3


def test_flat_paper_shows_ink_inside_line_boxes(samples):
    for s in samples:
        gray = s.paper.mean(axis=2)
        inside, outside = [], np.ones(gray.shape, bool)
        for line in s.label.lines:
            x0, y0, x1, y1 = (round(v) for v in line.paper_box)
            patch = gray[max(y0, 0) : y1, max(x0, 0) : x1]
            inside.append(patch.min())
            outside[max(y0, 0) : y1, max(x0, 0) : x1] = False
        assert (
            np.median(inside) < np.median(gray[outside]) - 40
        )  # dark ink where the labels say text is


def test_key_fields_match_the_printed_lines(samples):
    for s in samples:
        f = s.label.fields
        by_role: dict[str, list[str]] = {}
        for line in s.label.lines:
            by_role.setdefault(line.role, []).append(line.text)
        assert by_role["merchant"] == [f.merchant]
        assert any(f.total_text in t for t in by_role["total"])
        assert any(f.date_text in t for t in by_role["date"])
        assert len(by_role["item_amount"]) == len(f.items)
        amounts = sum(Decimal(i.amount) for i in f.items)
        assert amounts == Decimal(f.subtotal)
        total = Decimal(f.total)
        assert total in (Decimal(f.subtotal), Decimal(f.subtotal) + Decimal(f.tax))
        if f.payment == "card":
            assert any(t.endswith(f.card_last4) for t in by_role["card_last4"])


def test_many_locales_and_currencies_appear():
    import random

    contents = [make_content(random.Random(seed)) for seed in range(300)]
    assert len({c.locale for c in contents}) >= 10
    assert {"€", "£", "¥", "₹", "RM", "$"} <= {c.currency for c in contents}


def test_a_scan_is_paper_on_a_white_bed_inside_its_corners():
    for seed in range(6):
        s = generate_scan(seed, SIZE)
        assert s.label.kind == "scan" and s.image.shape == (SIZE[1], SIZE[0], 3)
        assert np.array_equal(s.image, generate_scan(seed, SIZE).image)
        quad = np.array(s.label.corners, np.float32)
        assert (quad >= 0).all() and (quad[:, 0] <= SIZE[0] - 1).all()
        assert (quad[:, 1] <= SIZE[1] - 1).all()
        inside = np.zeros(s.image.shape[:2], np.uint8)
        cv2.fillConvexPoly(inside, quad.astype(np.int32), 1)
        area = inside.mean()
        assert area > 0.3  # the paper is most of a scan
        grey = s.image.mean(axis=2)
        dark = grey < 0.5 * np.median(grey)  # print
        assert dark.any() and dark[inside == 1].sum() >= 0.97 * dark.sum()  # print on paper


def test_empty_countertop_has_no_receipt():
    s = generate_empty(5, SIZE)
    assert s.label.kind == "empty" and s.label.corners is None and not s.label.lines
    assert s.image.shape == (SIZE[1], SIZE[0], 3)


def test_line_mode_height_text_and_determinism():
    charset = Charset()
    for seed in range(20):
        img, text = generate_line(seed, 32)
        assert img.dtype == np.uint8 and img.ndim == 2 and img.shape[0] == 32 and img.shape[1] >= 32
        assert text and text == charset.normalize(text)
        charset.encode(text)  # every character is learnable
    a, b = generate_line(7, 48), generate_line(7, 48)
    assert a[1] == b[1] and np.array_equal(a[0], b[0]) and a[0].shape[0] == 48


def test_cli_writes_images_and_labels(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        synth,
        [
            "--out",
            str(tmp_path / "r"),
            "--count",
            "2",
            "--seed",
            "9",
            "--size",
            "320x480",
            "--paper",
        ],
    )
    assert result.exit_code == 0, result.output
    labels = sorted((tmp_path / "r").glob("*.json"))
    assert len(labels) == 2
    lab = SceneLabel.model_validate_json(labels[0].read_text())
    assert lab.seed == 9 and lab.kind == "receipt"
    assert (tmp_path / "r" / "0000009.jpg").exists() and (
        tmp_path / "r" / "0000009.paper.png"
    ).exists()
    result = runner.invoke(synth, ["--out", str(tmp_path / "l"), "--count", "3", "--kind", "lines"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(r) for r in (tmp_path / "l" / "labels.jsonl").read_text().splitlines()]
    assert [r["file"] for r in rows] == ["0000000.png", "0000001.png", "0000002.png"]
    result = runner.invoke(
        synth, ["--out", str(tmp_path / "e"), "--count", "1", "--kind", "empty", "--size", "bad"]
    )
    assert result.exit_code != 0 and "WIDTHxHEIGHT" in result.output


def test_every_layout_renders_over_many_seeds():
    import random

    from models.synth.fonts import available_fonts
    from models.synth.render import render_flat

    fonts = set()
    for seed in range(150):
        rng = random.Random(seed)
        flat = render_flat(make_content(rng), rng)
        fonts.add(flat.font)
        h, w = flat.ink.shape
        for line in flat.lines:
            x0, y0, x1, y1 = line.box
            assert -3 <= x0 < x1 <= w + 3 and -3 <= y0 < y1 <= h + 3
    assert len(fonts) >= min(10, len(available_fonts()))
    assert any(f.endswith(".otb") for f in fonts)  # the bitmap (thermal) faces are used
