"""The LiteRT runtime runs real .tflite files: dynamic widths, batches, int8 I/O, timings."""

from __future__ import annotations

import numpy as np
import pytest

from models.litert import LiteRTModel
from tests.models.litert.conftest import FIXTURES

WEIGHTS = np.array([10.0, -10.0, 0.0], np.float32)
BIAS = np.array([-7.0, 7.0, -8.0], np.float32)


def expected(x: np.ndarray) -> np.ndarray:
    """What the fixture computes: mean of each 8x4 cell, then a dense layer to 3 classes."""
    b, h, w, _ = x.shape
    cells = x[:, :, : w // 4 * 4, 0].reshape(b, h, w // 4, 4).mean(axis=(1, 3))
    return np.asarray(cells[..., None] * WEIGHTS + BIAS)


@pytest.mark.parametrize("name", ["tiny_ctc_int8.tflite", "tiny_ctc_int8io.tflite"])
@pytest.mark.parametrize("xnnpack", [True, False])
def test_outputs_match_the_model_at_any_width_and_batch(name, xnnpack):
    model = LiteRTModel(FIXTURES / name, num_threads=2, xnnpack=xnnpack)
    rng = np.random.default_rng(1)
    for shape in [(1, 8, 64, 1), (3, 8, 128, 1), (1, 8, 64, 1), (2, 8, 36, 1)]:
        x = rng.uniform(0, 1, shape).astype(np.float32)
        (out,) = model.run(x)
        assert out.dtype == np.float32
        assert out.shape == (shape[0], shape[2] // 4, 3)
        # int8 activations: a few quantization steps of the logits' range (about 20 / 255).
        np.testing.assert_allclose(out, expected(x), atol=0.5)
    assert model.timings.calls == 4
    assert model.timings.total_ms > 0 and len(model.timings.per_call_ms) == 4


def test_int8_input_is_quantized_with_its_scale_and_zero_point():
    model = LiteRTModel(FIXTURES / "tiny_ctc_int8io.tflite")
    assert model.input_dtypes == [np.dtype(np.int8)]
    dark = np.zeros((1, 8, 16, 1), np.float32)
    bright = np.ones((1, 8, 16, 1), np.float32)
    (d,) = model.run(dark)
    (b,) = model.run(bright)
    assert (d.argmax(-1) == 1).all() and (b.argmax(-1) == 0).all()


def test_wrong_input_count_and_bad_files_are_errors(tmp_path):
    model = LiteRTModel(FIXTURES / "tiny_ctc_int8.tflite")
    with pytest.raises(ValueError, match="takes 1 inputs, got 2"):
        model.run(np.zeros((1, 8, 8, 1)), np.zeros((1, 8, 8, 1)))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    with pytest.raises((RuntimeError, ValueError)):
        LiteRTModel(bad)
