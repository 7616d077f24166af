"""Recognizer data: charset round trip, the split file respected, well-formed batches."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from models.document.rectify import LINE_PAD
from models.evaluation.sroie import load_split
from models.training.charset import CHARSET, Charset
from models.training.data import (
    JITTER_ROOM,
    SROIE_ROOT,
    WIDTH_STRIDE,
    cut_real,
    read_box_file,
    sroie_crops,
    training_batches,
)
from models.training.metrics import cer, edit_distance, greedy_decode


def test_charset_covers_what_receipts_print_and_round_trips():
    cs = Charset()
    for c in "€£¥₹$ RMÄÖÜßéèçñøåœŁżğ0123456789":
        assert c in CHARSET
    text = "Café Müller — TOTAL: 12,50 € / ₹1,234.00 / ¥980"
    assert cs.decode(cs.encode(text)) == text
    assert min(cs.encode(CHARSET)) == 1 and max(cs.encode(CHARSET)) == cs.num_classes - 1


def test_charset_normalizes_and_refuses_unknown_characters():
    cs = Charset()
    assert cs.normalize("it\u2019s  a\u00a0test") == "it's a test"
    assert cs.normalize("日本 Tokyo") == "Tokyo"
    with pytest.raises(KeyError, match="not in the charset"):
        cs.encode("日")
    with pytest.raises(ValueError, match="duplicate"):
        Charset("aa")


def test_greedy_decode_collapses_and_reports_confidences():
    cs = Charset("ab")
    steps = [1, 1, 0, 1, 2, 2, 0]  # a a _ a b b _ -> "aab"
    logits = np.full((len(steps), 3), -5.0)
    for t, k in enumerate(steps):
        logits[t, k] = 5.0
    text, conf = greedy_decode(logits, cs)
    assert text == "aab"
    assert len(conf) == 3 and all(0.99 < c <= 1 for c in conf)


def test_cer():
    assert edit_distance("kitten", "sitting") == 3
    assert cer(["abc", "x"], ["abd", "x"]) == pytest.approx(1 / 4)


def test_split_file_refuses_overlap(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"train": ["001", "002"], "val": ["002"]}))
    with pytest.raises(ValueError, match="both train and val"):
        load_split(bad)


def test_box_file_keeps_commas_in_text(tmp_path):
    p = tmp_path / "123.txt"
    p.write_text("1,2,3,4,5,6,7,8,NO.53 55,57 & 59, JALAN\nbroken line\n")
    (line,) = read_box_file(p)
    assert line.text == "NO.53 55,57 & 59, JALAN" and line.receipt_id == "123"


needs_sroie = pytest.mark.skipif(
    not (SROIE_ROOT / "box").is_dir(), reason="SROIE not in /work/shared"
)


@needs_sroie
def test_training_data_holds_no_validation_receipt():
    split = load_split()
    cs = Charset()
    train_ids = split["train"][:5]
    real = sroie_crops(train_ids, cs, 32)
    assert real and {rid for _, _, rid in real} <= set(train_ids)
    assert not {rid for _, _, rid in real} & set(split["val"])
    leaked = real + sroie_crops(split["val"][:1], cs, 32)
    with pytest.raises(ValueError, match="validation receipts"):
        next(
            training_batches(
                leaked, cs, 4, seed=1, height=32, forbidden_ids=frozenset(split["val"])
            )
        )


@needs_sroie
def test_batches_are_padded_and_alignable():
    cs = Charset()
    real = sroie_crops(load_split()["train"][:2], cs, 32)
    batch = next(training_batches(real, cs, 6, seed=3, height=32, real_share=0.5))
    n, h, w, c = batch.images.shape
    assert (n, h, c) == (6, 32, 1) and w % WIDTH_STRIDE == 0
    assert batch.images.min() >= 0.0 and batch.images.max() <= 1.0
    for k, text in enumerate(batch.texts):
        assert cs.decode(batch.labels[k, : batch.label_lengths[k]]) == text
        assert batch.label_lengths[k] <= w // WIDTH_STRIDE


def _ruled_line(room: float) -> np.ndarray:
    """A stored crop (`sroie_crops` with `room`) of a box 20 px high and 200 long: black inside
    the box, white in the margin, so a cut's edges can be read off its pixels."""
    box_h, box_w = 20, 200
    pad = round((LINE_PAD + room) * box_h)
    img = np.full((box_h + 2 * pad, box_w + 2 * pad), 255, np.uint8)
    img[pad : pad + box_h, pad : pad + box_w] = 0
    return img


def test_a_plain_cut_of_a_stored_crop_is_the_plain_crop():
    img = _ruled_line(JITTER_ROOM)
    cut = cut_real(img, JITTER_ROOM, 24, random.Random(0), jitter=0.0)
    # the box (20 px) and a margin of 0.1 of it (2 px) above and below, scaled to 24 rows
    assert cut.shape == (24, round(204 * 24 / 24))
    ink_rows = np.flatnonzero((cut < 128).any(axis=1))
    assert ink_rows[0] == 2 and ink_rows[-1] == 21
    assert cut_real(img, 0.0, 24, random.Random(0), jitter=1.0) is img  # no room: kept


def test_jittered_cuts_move_the_edges_within_the_detectors_range():
    img = _ruled_line(JITTER_ROOM)
    rng = random.Random(1)
    tops, lefts = set(), set()
    for _ in range(40):
        cut = cut_real(img, JITTER_ROOM, 32, rng, jitter=1.0)
        ink = cut < 128
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        box_h = rows[-1] - rows[0] + 1
        top, left = rows[0] / box_h, cols[0] / box_h
        assert 0.0 <= top <= 0.3 and 0.0 <= left <= 0.3  # 0.02-0.22 and 0-0.25, give or take
        assert (cut.shape[0] - 1 - rows[-1]) / box_h <= 0.3
        tops.add(round(top, 2))
        lefts.add(round(left, 2))
    assert len(tops) > 5 and len(lefts) > 5


@needs_sroie
def test_stored_crops_keep_room_at_the_plain_scale():
    cs = Charset()
    ids = load_split()["train"][:1]
    plain = sroie_crops(ids, cs, 32)
    wide = sroie_crops(ids, cs, 32, room=JITTER_ROOM)
    assert [t for _, t, _ in plain] == [t for _, t, _ in wide]
    for (p, _, _), (w, _, _) in zip(plain, wide, strict=True):
        assert w.shape[0] == round(32 * (1 + 2 * (LINE_PAD + JITTER_ROOM)) / (1 + 2 * LINE_PAD))
        cut = cut_real(w, JITTER_ROOM, 32, random.Random(0), jitter=0.0)
        assert abs(cut.shape[1] - p.shape[1]) <= 0.05 * p.shape[1] + 2
    batch = next(training_batches(wide, cs, 4, seed=2, height=32, real_share=1.0, box_jitter=0.5))
    assert batch.images.shape[1] == 32
