"""The PyTorch mirror of the recognizer: same outputs as the Keras model on the same weights,
weights that survive the round trip, and the crop files a pack carries."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from models.synth.lines import generate_line
from models.training.charset import CHARSET as DEFAULT_CHARSET
from models.training.charset import Charset
from models.training.data import make_batch
from models.training.torch_recognizer import load_crops, save_crops

CHARSET = Charset("0123456789ABCDEFx.")  # `predict` pads with "x"
FULL = Charset(DEFAULT_CHARSET)


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
    from models.training.torch_mirror import keras_weights, set_keras_weights
    from models.training.torch_recognizer import build_torch_model
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
    from models.training.torch_mirror import set_keras_weights
    from models.training.torch_recognizer import build_torch_model

    cfg = {"channels": (4, 8, 8, 8, 8), "context": 16, "context_blocks": 2, "height": 32}
    mirror = build_torch_model(cfg, CHARSET.num_classes)
    with pytest.raises(ValueError, match="Keras weights for a mirror"):
        set_keras_weights(mirror, [np.zeros(3)])


def _tiny_pack(tmp_path: Path) -> Path:
    """A pack folder as `pack` writes it, for a tiny network, from synthetic lines alone."""
    from models.training.torch_mirror import keras_weights
    from models.training.torch_recognizer import build_torch_model

    cfg = {  # the full charset: the synthetic lines use all of it
        "height": 32,
        "channels": [4, 8, 8, 8, 8],
        "context": 16,
        "context_blocks": 2,
        "real_share": 0.5,
        "charset": FULL.chars,
    }
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "config.json").write_text(json.dumps(cfg))
    np.savez(pack / "init.npz", *keras_weights(build_torch_model(cfg, FULL.num_classes)))
    lines = [(generate_line(300 + k, 32)[0], "0A1B") for k in range(12)]
    save_crops(pack / "real.npz", lines, bits=5)
    save_crops(pack / "dev.npz", lines[:4])
    return pack


def test_fit_trains_writes_keras_order_weights_and_resumes(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from models.training.torch_recognizer import FitOptions, fit

    pack = _tiny_pack(tmp_path)
    opts = FitOptions(minutes=0.05, budget_minutes=1.0, batch_size=4, eval_every=5, workers=1)
    first = fit(pack, tmp_path / "one", opts)
    assert first.calls == 1
    assert first.steps > 0
    assert 0 < first.seconds <= 60
    with np.load(pack / "init.npz") as f:
        shapes = [f[f"arr_{k}"].shape for k in range(len(f.files))]
    for name in ("best.npz", "last.npz"):
        with np.load(tmp_path / "one" / name) as f:
            assert [f[f"arr_{k}"].shape for k in range(len(f.files))] == shapes
    logged = [json.loads(r) for r in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    assert logged[-1]["steps"] == first.steps
    second = fit(pack, tmp_path / "two", opts, tmp_path / "one" / "state.pt")
    assert second.calls == 2
    assert second.steps > first.steps
    assert second.seconds > first.seconds
    assert second.best >= first.best  # minus the best dev CER
    assert (tmp_path / "two" / "best.npz").exists()


def test_fit_stops_with_an_error_when_its_batch_workers_die(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from models.training.torch_recognizer import FitOptions, fit

    pack = _tiny_pack(tmp_path)
    cfg = json.loads((pack / "config.json").read_text())
    (pack / "config.json").write_text(json.dumps({**cfg, "real_share": 1.0}))
    save_crops(pack / "real.npz", [(generate_line(5, 32)[0], "\u2603 SNOWMAN")])  # no such class
    with pytest.raises(RuntimeError, match="every batch worker has died"):
        fit(pack, tmp_path / "out", FitOptions(minutes=1.0, budget_minutes=1.0, workers=1))
