"""`receipts train lm`: the language model built from train text, tuned on dev, published."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from models.evaluation.sroie import load_split
from models.litert import load_manifest, verify_entry
from models.ocr import LiteRTConfig, build_engine
from models.ocr.ctc import CharLM
from models.training.cli import train
from models.training.lm import DEV_RECEIPTS, build_and_publish, train_dev_ids

ARTIFACTS = Path(__file__).resolve().parents[3] / "models" / "artifacts"


def test_a_small_run_tunes_on_dev_and_publishes_a_model_the_engine_loads(tmp_path, sroie_dir):
    folder = tmp_path / "models"
    shutil.copytree(ARTIFACTS, folder)
    split = load_split()
    small = tmp_path / "split.json"  # 12 receipts of text, then the 30 dev receipts
    small.write_text(json.dumps({"train": split["train"][: 12 + DEV_RECEIPTS], "val": []}))
    lm_ids, dev_ids = train_dev_ids(small)
    assert len(dev_ids) == DEV_RECEIPTS and not set(lm_ids) & set(dev_ids)
    # the split file is an argument of build_and_publish; the command uses the committed one
    entry = build_and_publish(
        sroie_dir, folder, order=4, synth_receipts=20, alphas=(0.0, 0.3), betas=(1.0,),
        split_file=small, version="t1",
    )  # fmt: skip
    manifest = load_manifest(folder)
    assert manifest.models["language_model"] == entry
    assert {"recognizer", "detector", "language_model"} <= set(manifest.models)
    model = CharLM.load(verify_entry(folder, entry))
    assert model.order == 4 and entry.metrics["contexts"] == model.contexts
    greedy, beam = entry.metrics["dev_greedy"], entry.metrics["dev_beam"]
    # alpha 0 is in the grid, so the chosen point can be no worse than plain beam search;
    # and the language model must not lose to greedy decoding on the dev lines
    assert beam["cer"] <= greedy["cer"] and entry.metrics["dev_lines"] > 500
    engine = build_engine(LiteRTConfig(model_dir=folder, require_detector=False))
    assert engine.version.endswith("+lm-t1")


def test_the_command_refuses_a_bad_grid_and_a_folder_without_a_recognizer(tmp_path, sroie_dir):
    runner = CliRunner()
    bad = runner.invoke(train, ["lm", "--data", str(sroie_dir), "--alphas", "x"])
    assert bad.exit_code != 0 and "numbers separated by commas" in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(train, ["lm", "--data", str(sroie_dir), "--to", str(empty)])
    assert result.exit_code == 1 and "manifest.json does not exist" in result.output
