"""`receipts train recognizer`: says how to get TensorFlow; with it, trains, resumes, exports."""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner

from models.training.cli import train

HAS_TF = importlib.util.find_spec("tensorflow") is not None


@pytest.mark.skipif(HAS_TF, reason="this checks the message shown where TensorFlow is absent")
def test_without_tensorflow_says_how_to_get_it(tmp_path):
    result = CliRunner().invoke(train, ["recognizer", "--out", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert ".venv-train" in result.output and "receipt-manager[train]" in result.output
    assert not (tmp_path / "run").exists()


def test_init_weights_and_init_tflite_exclude_each_other(tmp_path):
    weights, tflite = tmp_path / "best.weights.h5", tmp_path / "recognizer_int8.tflite"
    weights.write_bytes(b"")
    tflite.write_bytes(b"")
    args = ["--init-weights", str(weights), "--init-tflite", str(tflite)]
    result = CliRunner().invoke(train, ["recognizer", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2 and "exclude each other" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
# Keras' HDF5 writer hands TF variables to numpy 2 without `copy=`: a third-party deprecation.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_tiny_run_resumes_and_exports(tmp_path):
    pytest.importorskip("tensorflow")
    from models.training.export import export_and_evaluate
    from models.training.recognizer import RecognizerConfig, Trainer

    cfg = RecognizerConfig(steps_per_epoch=2, batch_size=4, dev_real_lines=10, val_synth_lines=10)
    run = tmp_path / "run"
    Trainer(run, cfg).fit(1)
    again = Trainer(run, cfg)
    assert int(again.epoch.numpy()) == 1
    again.fit(2)
    records = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    report = export_and_evaluate(again, run / "export", representative_count=8)
    assert set(report["models"]) == {"float", "int8"}
    assert report["models"]["int8"]["bytes"] < report["models"]["float"]["bytes"]
    assert (run / "export" / "recognizer_int8.tflite").exists()
