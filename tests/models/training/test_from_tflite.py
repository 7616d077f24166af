"""Warm start from a .tflite: a tiny recognizer, converted to int8 here, read back into Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from models.synth.lines import generate_line  # noqa: E402
from models.training.charset import Charset  # noqa: E402
from models.training.data import SROIE_ROOT, make_batch  # noqa: E402
from models.training.from_tflite import (  # noqa: E402
    TfliteMismatch,
    init_from_tflite,
    output_gap,
    tflite_runner,
)
from models.training.metrics import greedy_decode  # noqa: E402
from models.training.recognizer import RecognizerConfig, Trainer, build_model  # noqa: E402
from models.training.runs import export_tflite  # noqa: E402
from tests.models.training.batchnorms import randomize_batch_norms  # noqa: E402

PUBLISHED = Path(__file__).parents[3] / "models" / "artifacts" / "recognizer_int8.tflite"
CHARSET = Charset("0123456789ABCDEF.")
TINY = RecognizerConfig(
    channels=(4, 8, 8, 8, 8), context=16, context_blocks=2, charset=CHARSET.chars
)


def _lines(first_seed: int, count: int) -> list[np.ndarray]:
    """Synthetic line images, one per batch, as the recognizer reads them."""
    return [
        make_batch([(generate_line(first_seed + k, 32)[0], "0")], CHARSET).images
        for k in range(count)
    ]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny recognizer with non-trivial batch norms (so that folding them matters) and
    decisive logits (so that int8 noise rarely flips a character), exported to float and int8
    .tflite as a run's export does; converted once for the module, conversion is the slow part."""
    tf.keras.utils.set_random_seed(0)
    model = build_model(TINY, CHARSET.num_classes)
    randomize_batch_norms(model)
    logits = model.get_layer("logits")
    logits.kernel.assign(logits.kernel * 8.0)
    bias = np.random.default_rng(1).normal(0, 1, CHARSET.num_classes)
    logits.bias.assign(bias.astype(np.float32))
    images = _lines(0, 12)

    def representative():
        for x in images:
            yield [x]

    return model, export_tflite(
        model, tmp_path_factory.mktemp("export"), "recognizer", representative
    )


# Keras' HDF5 writer hands TF variables to numpy 2 without `copy=`: a third-party deprecation.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.parametrize("precision", ["int8", "float"])
def test_model_initialized_from_tflite_reproduces_it(published, precision):
    original, paths = published
    calibration = [np.concatenate(_lines(100 + 8 * k, 1) * 4) for k in range(2)]
    model = build_model(TINY, CHARSET.num_classes)  # fresh random weights
    loaded = init_from_tflite(model, paths[precision], calibration)
    assert loaded.ops == 5 + 1 + 2 * 2 + 1  # conv blocks, height fold, separable pairs, logits
    assert len(loaded.batch_norms) == 5 + 1 + 2

    crops = _lines(1000, 20)
    gap = output_gap(model, paths[precision], crops)
    # int8 activations put the .tflite a little off its own source model: no further than that
    # (relative to the logit range), and exact where the .tflite is float
    limit = 1.5 * output_gap(original, paths[precision], crops) if precision == "int8" else 0.0
    assert gap <= limit + 1e-4
    run = tflite_runner(paths[precision])
    ours = [greedy_decode(np.asarray(model(x, training=False))[0], CHARSET)[0] for x in crops]
    theirs = [greedy_decode(run(x)[0], CHARSET)[0] for x in crops]
    source = [greedy_decode(np.asarray(original(x, training=False))[0], CHARSET)[0] for x in crops]
    same = np.mean([a == b for a, b in zip(ours, theirs, strict=True)])
    # int8 activations make the .tflite read a line or so differently from its own source model;
    # the warm start must do no worse than that
    assert same >= min(0.9, float(np.mean([a == b for a, b in zip(source, theirs, strict=True)])))


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_batch_norms_keep_the_function_with_batch_statistics(published):
    """Calibrated on one batch, training mode (batch statistics) computes what inference mode
    does on that batch: training continues from the published function, not a shifted one."""
    _, paths = published
    batch = np.concatenate(_lines(200, 1) * 4)
    model = build_model(TINY, CHARSET.num_classes)
    init_from_tflite(model, paths["int8"], [batch])
    last_bn = [la for la in model.layers if isinstance(la, tf.keras.layers.BatchNormalization)][-1]
    probe = tf.keras.Model(model.input, last_bn.output)
    inference = np.asarray(probe(batch, training=False))
    training = np.asarray(probe(batch, training=True))
    assert np.abs(training - inference).max() <= 1e-3 * np.abs(inference).max()


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_another_network_is_refused(published):
    _, paths = published
    wider = RecognizerConfig(
        channels=(4, 8, 8, 8, 8), context=24, context_blocks=2, charset=CHARSET.chars
    )
    with pytest.raises(TfliteMismatch, match="Keras"):
        init_from_tflite(build_model(wider, CHARSET.num_classes), paths["int8"], [])
    deeper = RecognizerConfig(
        channels=(4, 8, 8, 8, 8), context=16, context_blocks=3, charset=CHARSET.chars
    )
    with pytest.raises(TfliteMismatch, match="not the same network"):
        init_from_tflite(build_model(deeper, CHARSET.num_classes), paths["int8"], [])


@pytest.mark.slow
@pytest.mark.skipif(not (SROIE_ROOT / "box").is_dir(), reason="SROIE not in /work/shared")
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_run_warm_started_from_the_published_recognizer(tmp_path):
    """The committed recognizer, read back: same dev figures as the .tflite, and the run's best
    weights so far, so an epoch must beat it to replace it."""
    trainer = Trainer(tmp_path / "run", RecognizerConfig(dev_real_lines=200, val_synth_lines=10))
    figures = trainer.warm_start(PUBLISHED)
    assert figures["init_dev_cer"] <= figures["tflite_dev_cer"] + 0.005 < 0.1  # scratch: ~1
    assert figures["same_text"] >= 0.85
    assert float(trainer.best_cer.numpy()) == figures["init_dev_cer"]
    assert (tmp_path / "run" / "best.weights.h5").exists()
