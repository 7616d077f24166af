"""Publishing an export into a model folder: copied, listed with its sha256, loadable."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
from click.testing import CliRunner

from models.litert import load_manifest, load_model, sha256_file
from models.training.cli import train
from tests.models.litert.conftest import FIXTURES

HAS_TF = importlib.util.find_spec("tensorflow") is not None


@pytest.fixture
def run_dir(tmp_path):
    export = tmp_path / "run" / "export"
    export.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "tiny_ctc_int8.tflite", export / "recognizer_int8.tflite")
    report = {
        "charset": "ab",
        "input": {"height": 8, "channels": 1},
        "models": {"int8": {"file": "recognizer_int8.tflite", "sroie_val": {"cer": 0.5}}},
    }
    (export / "report.json").write_text(json.dumps(report))
    return tmp_path / "run"


def test_publish_lists_the_copy_with_its_digest_and_metrics(tmp_path, run_dir):
    folder = tmp_path / "artifacts"
    result = CliRunner().invoke(
        train,
        ["publish", "recognizer", "--run", str(run_dir), "--to", str(folder), "--version", "v1"],
    )
    assert result.exit_code == 0, result.output
    entry = load_manifest(folder).models["recognizer"]
    assert entry.sha256 == sha256_file(folder / "recognizer_int8.tflite") in result.output
    assert (entry.version, entry.charset, entry.input["height"]) == ("v1", "ab", 8)
    assert entry.metrics == {"sroie_val": {"cer": 0.5}}
    assert any("CC BY 4.0" in d for d in entry.training_data)
    assert load_model(folder, "recognizer").entry == entry


def test_publish_says_what_the_export_lacks(tmp_path, run_dir):
    result = CliRunner().invoke(
        train, ["publish", "detector", "--run", str(run_dir), "--to", str(tmp_path / "a")]
    )
    assert result.exit_code != 0 and "detector_int8.tflite is missing" in result.output


@pytest.mark.skipif(HAS_TF, reason="this checks the message shown where TensorFlow is absent")
@pytest.mark.parametrize("command", ["detector", "finder"])
def test_training_without_tensorflow_says_how_to_get_it(tmp_path, command):
    result = CliRunner().invoke(train, [command, "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and ".venv-train" in result.output
    assert not (tmp_path / "run").exists()
