"""Warm start of the text-line detector from a .tflite: its FPN decoder's ops run in another
order than Keras lists its layers, so ops and layers must pair by graph structure."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from models.training.data import SROIE_ROOT  # noqa: E402
from models.training.detector import (  # noqa: E402
    DetectorConfig,
    DetectorTrainer,
    build_model,
)
from models.training.detector_data import example, synth_page  # noqa: E402
from models.training.from_tflite import (  # noqa: E402
    TfliteMismatch,
    _keras_slots,
    init_from_tflite,
    output_gap,
    pair_ops,
    read_tflite_ops,
)
from models.training.runs import export_tflite  # noqa: E402
from tests.models.training.batchnorms import randomize_batch_norms  # noqa: E402

PUBLISHED = Path(__file__).parents[3] / "models" / "artifacts" / "detector_int8.tflite"
TINY = DetectorConfig(channels=(4, 8, 8, 8, 8), decoder=8, crop=64)


def _windows(first_seed: int, count: int, size: int = 64) -> list[np.ndarray]:
    """Windows of synthetic receipt pages, one per batch, as the detector reads them."""
    import random

    page = synth_page(first_seed)
    rng = random.Random(first_seed)
    return [
        example(page, rng, crop=size, target_width=128)[0][None, :, :, None] for _ in range(count)
    ]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny detector with non-trivial batch norms, exported to float and int8 .tflite as a
    run's export does (once for the module: conversion is the slow part)."""
    tf.keras.utils.set_random_seed(0)
    model = build_model(TINY)
    randomize_batch_norms(model)
    images = _windows(1, 12)

    def representative():
        for x in images:
            yield [x]

    return model, export_tflite(
        model, tmp_path_factory.mktemp("export"), "detector", representative
    )


def test_decoder_ops_run_out_of_keras_order_and_still_pair(published):
    """The converter schedules each FPN lateral right after the encoder stage it reads; pairing
    by structure puts every op with its own layer all the same: the layers with no batch norm
    folded into them (laterals, upsamplings, head) get back exactly their float weights."""
    original, paths = published
    model = build_model(TINY)
    ops, slots = read_tflite_ops(paths["float"]), _keras_slots(model)
    assert [o.kind for o in ops] != [s.kind for s in slots]  # flat order would not do
    pairs = pair_ops(ops, slots)
    assert len(pairs) == len(slots) == len(ops)
    assert all(op.kind == slot.kind for op, slot in pairs)
    init_from_tflite(model, paths["float"], _windows(7, 1))
    plain = [
        k
        for k, slot in enumerate(_keras_slots(original))
        if slot.batch_norm is None and slot.part == "kernel"
    ]
    assert len(plain) == 1 + 4 + 4 + 3  # top 1x1, laterals, upsamplings, head
    ours, theirs = _keras_slots(model), _keras_slots(original)
    for k in plain:
        np.testing.assert_allclose(ours[k].layer.kernel, theirs[k].layer.kernel, atol=1e-6)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.parametrize("precision", ["int8", "float"])
def test_detector_initialized_from_tflite_reproduces_it(published, precision):
    original, paths = published
    calibration = [np.concatenate(_windows(100 + k, 4)) for k in range(2)]
    model = build_model(TINY)  # fresh random weights
    loaded = init_from_tflite(model, paths[precision], calibration)
    assert loaded.ops == 1 + 2 * 2 * 4 + 1 + 4 * 4 + 3  # stem, encoder, top, decoder, head
    assert len(loaded.batch_norms) == 1 + 2 * 2 * 4 + 2 * 4
    pages = _windows(1000, 6, size=96)
    gap = output_gap(model, paths[precision], pages)
    # int8 activations put the .tflite a little off its own source model: no further than that
    limit = 1.5 * output_gap(original, paths[precision], pages) if precision == "int8" else 0.0
    assert gap <= limit + 1e-4


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_another_detector_is_refused(published):
    _, paths = published
    wider = DetectorConfig(channels=(4, 8, 8, 8, 8), decoder=16)
    with pytest.raises(TfliteMismatch, match="Keras"):
        init_from_tflite(build_model(wider), paths["int8"], [])
    deeper = DetectorConfig(channels=(4, 8, 8, 8, 8, 8), decoder=8)
    with pytest.raises(TfliteMismatch, match="not the same network"):
        init_from_tflite(build_model(deeper), paths["int8"], [])


@pytest.mark.slow
@pytest.mark.skipif(not (SROIE_ROOT / "box").is_dir(), reason="SROIE not in /work/shared")
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_run_warm_started_from_the_published_detector(tmp_path):
    """The committed detector, read back: the same dev maps and F1 as the .tflite, and the
    run's best weights so far, so an epoch must beat it to replace it."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(asdict(DetectorConfig())), encoding="utf-8")
    trainer = DetectorTrainer(run, DetectorConfig())
    figures = trainer.warm_start(PUBLISHED)
    assert figures["same_pixels"] >= 0.99
    assert figures["init_dev_f1"] >= figures["tflite_dev_f1"] - 0.01
    assert figures["tflite_dev_f1"] > 0.8  # scratch: ~0
    assert float(trainer.best_f1.numpy()) == figures["init_dev_f1"]
    assert (run / "best.weights.h5").exists()
