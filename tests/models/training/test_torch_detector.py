"""The PyTorch mirror of the text-line detector: the same maps as the Keras model on the same
weights, weights that survive the round trip, the page files a pack carries, and fit."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.training.detector_data import Page, synth_page
from models.training.torch_detector import load_pages, save_pages

TINY: dict[str, Any] = {"channels": [4, 8, 8, 8, 8], "decoder": 8}


def _page(seed: int) -> Page:
    """A small page of dark bars (lines) on white, with their boxes."""
    rng = np.random.default_rng(seed)
    gray = np.full((300, 200), 235, np.uint8)
    boxes = []
    for k in range(6):
        x0, y0 = int(rng.integers(5, 60)), 20 + 45 * k
        x1 = int(rng.integers(x0 + 30, 195))
        gray[y0 + 4 : y0 + 16, x0:x1] = 30
        boxes.append((float(x0), float(y0), float(x1), float(y0 + 20)))
    return Page(f"p{seed}", gray, boxes)


def test_pages_round_trip_scaled_down_to_the_pack_width(tmp_path: Path) -> None:
    wide = synth_page(11)
    narrow = _page(1)
    assert wide.gray.shape[1] > 240 > narrow.gray.shape[1]
    save_pages(tmp_path / "pages.npz", [wide, narrow], width=240)
    back = load_pages(tmp_path / "pages.npz")
    assert [p.id for p in back] == [wide.id, narrow.id]
    for before, after in zip([wide, narrow], back, strict=True):
        assert after.gray.shape[1] == min(240, before.gray.shape[1])  # never scaled up
        scale = after.gray.shape[1] / before.gray.shape[1]
        assert after.gray.shape[0] == pytest.approx(before.gray.shape[0] * scale, abs=1)
        assert len(after.boxes) == len(before.boxes)
        for a, b in zip(after.boxes, before.boxes, strict=True):
            assert a == pytest.approx([v * scale for v in b], abs=0.01)
    # JPEG keeps the picture: the narrow page came back at its own size, nearly unchanged
    assert np.abs(back[1].gray.astype(int) - narrow.gray.astype(int)).mean() < 2


def test_mirror_maps_as_the_keras_model_does() -> None:
    pytest.importorskip("tensorflow")
    torch = pytest.importorskip("torch")
    from models.training.detector import DetectorConfig, build_model
    from models.training.torch_detector import build_torch_model
    from models.training.torch_mirror import keras_weights, set_keras_weights
    from tests.models.training.batchnorms import randomize_batch_norms

    cfg = DetectorConfig(channels=tuple(TINY["channels"]), decoder=TINY["decoder"])
    keras_model = build_model(cfg)
    randomize_batch_norms(keras_model)
    mirror = build_torch_model(asdict(cfg))
    set_keras_weights(mirror, keras_model.get_weights())
    mirror.eval()
    pages = np.random.default_rng(0).uniform(0, 1, (2, 64, 96, 1)).astype(np.float32)
    want = keras_model(pages, training=False).numpy()
    with torch.no_grad():
        got = torch.sigmoid(mirror(torch.from_numpy(pages))).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4)
    for a, b in zip(keras_weights(mirror), keras_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_mirror_refuses_weights_of_another_shape() -> None:
    pytest.importorskip("torch")
    from models.training.torch_detector import build_torch_model
    from models.training.torch_mirror import set_keras_weights

    mirror = build_torch_model(TINY)
    with pytest.raises(ValueError, match="Keras weights for a mirror"):
        set_keras_weights(mirror, [np.zeros(3)])
    arrays = [np.zeros((*w.shape[:-1], w.shape[-1] + 1)) for w in _keras_order(mirror)]
    with pytest.raises(ValueError, match="weight of"):
        set_keras_weights(mirror, arrays)


def test_slots_follow_the_module_after_a_move() -> None:
    # Moving a module (to the GPU, or to another dtype) replaces its buffers: a slot list
    # taken before the move would keep saving the starting batch-norm statistics.
    torch = pytest.importorskip("torch")
    from models.training.torch_detector import build_torch_model

    mirror = build_torch_model(TINY)
    stale = mirror.slots()[3][0]  # the stem batch norm's moving mean
    mirror.to(torch.float64)
    assert mirror.slots()[3][0] is mirror.stem_bn.running_mean
    assert stale is not mirror.stem_bn.running_mean


def _keras_order(mirror: object) -> list[np.ndarray]:
    from models.training.torch_mirror import keras_weights

    return keras_weights(mirror)


def _tiny_pack(tmp_path: Path, real: list[Page]) -> Path:
    """A pack folder as `pack` writes it, for a tiny network on small pages."""
    from models.training.detector import DetectorConfig
    from models.training.torch_detector import build_torch_model

    cfg = {
        **asdict(DetectorConfig()),
        **TINY,
        "crop": 64,
        "target_width": 128,
        "max_side": 256,
        "synth_share": 0.0,  # synthetic pages take 0.3 s each; the real ones are enough here
    }
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "config.json").write_text(json.dumps(cfg))
    np.savez(pack / "init.npz", *_keras_order(build_torch_model(cfg)))
    save_pages(pack / "real.npz", real)
    save_pages(pack / "dev.npz", [_page(50), _page(51)])
    return pack


def test_fit_trains_writes_keras_order_weights_and_resumes(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from models.training.torch_detector import fit
    from models.training.torch_mirror import FitOptions

    pack = _tiny_pack(tmp_path, [_page(k) for k in range(4)])
    opts = FitOptions(minutes=0.05, budget_minutes=1.0, batch_size=4, eval_every=5, workers=1)
    first = fit(pack, tmp_path / "one", opts)
    assert first.calls == 1
    assert first.steps > 0
    assert 0 <= first.best <= 1  # a dev F1
    init = _load(pack / "init.npz")
    for name in ("best.npz", "last.npz"):
        assert [a.shape for a in _load(tmp_path / "one" / name)] == [a.shape for a in init]
    # the batch norms' statistics as training left them (the stem's moving mean, Keras order)
    assert not np.allclose(_load(tmp_path / "one" / "last.npz")[3], init[3])
    logged = [json.loads(r) for r in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    assert logged[-1]["steps"] == first.steps
    assert {"dev_f1", "dev_precision", "dev_recall", "loss"} <= logged[-1].keys()
    assert np.isfinite(logged[-1]["loss"])
    second = fit(pack, tmp_path / "two", opts, tmp_path / "one" / "state.pt")
    assert second.calls == 2
    assert second.steps > first.steps
    assert second.seconds > first.seconds
    assert second.best >= first.best
    assert (tmp_path / "two" / "best.npz").exists()


def test_fit_stops_with_an_error_when_its_batch_workers_die(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from models.training.torch_detector import fit
    from models.training.torch_mirror import FitOptions

    pack = _tiny_pack(tmp_path, [])  # no pages and no synthetic share: a worker has nothing
    with pytest.raises(RuntimeError, match="every batch worker has died"):
        fit(pack, tmp_path / "out", FitOptions(minutes=1.0, budget_minutes=1.0, workers=1))


def _load(path: Path) -> list[np.ndarray]:
    from models.training.torch_mirror import load_npz_list

    return load_npz_list(path)
