"""The PyTorch mirror of the recognizer: same outputs as the Keras model on the same weights,
weights that survive the round trip, and the crop files a pack carries."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from models.synth.lines import generate_line
from models.training.charset import Charset
from models.training.data import make_batch
from models.training.torch_recognizer import load_crops, save_crops

CHARSET = Charset("0123456789ABCDEF.")


def test_crops_round_trip_kept_to_their_bits(tmp_path: Path) -> None:
    lines = [generate_line(100 + k, 32) for k in range(6)]
    save_crops(tmp_path / "full.npz", lines)
    back = load_crops(tmp_path / "full.npz")
    assert [t for _, t in back] == [t for _, t in lines]
    for (a, _), (b, _) in zip(lines, back, strict=True):
        assert np.array_equal(a, b)
    save_crops(tmp_path / "five.npz", lines, bits=5)
    for (a, _), (b, _) in zip(lines, load_crops(tmp_path / "five.npz"), strict=True):
        assert a.shape == b.shape
        # each pixel comes back as the middle of its step of 8 grey levels
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 4
        assert np.array_equal(b.astype(int) >> 3, a.astype(int) >> 3)


def test_mirror_reads_as_the_keras_model_does() -> None:
    tf = pytest.importorskip("tensorflow")
    torch = pytest.importorskip("torch")
    from models.training.recognizer import RecognizerConfig, build_model
    from models.training.torch_recognizer import (
        build_torch_model,
        keras_weights,
        set_keras_weights,
    )
    from tests.models.training.batchnorms import randomize_batch_norms

    cfg = RecognizerConfig(
        channels=(4, 8, 8, 8, 8), context=16, context_blocks=2, charset=CHARSET.chars
    )
    keras_model = build_model(cfg, CHARSET.num_classes)
    randomize_batch_norms(keras_model)
    mirror = build_torch_model(asdict(cfg), CHARSET.num_classes)
    set_keras_weights(mirror, keras_model.get_weights())
    mirror.eval()
    images = make_batch([(generate_line(7 + k, 32)[0], "0") for k in range(3)], CHARSET).images
    want = keras_model(images, training=False).numpy()
    with torch.no_grad():
        got = mirror(torch.from_numpy(images)).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, float(np.abs(want).max())))
    # and back: the mirror's weights in Keras order load into the Keras model unchanged
    for a, b in zip(keras_weights(mirror), keras_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    del tf


def test_mirror_refuses_weights_of_another_shape() -> None:
    pytest.importorskip("torch")
    from models.training.torch_recognizer import build_torch_model, set_keras_weights

    cfg = {"channels": (4, 8, 8, 8, 8), "context": 16, "context_blocks": 2, "height": 32}
    mirror = build_torch_model(cfg, CHARSET.num_classes)
    with pytest.raises(ValueError, match="Keras weights for a mirror"):
        set_keras_weights(mirror, [np.zeros(3)])
