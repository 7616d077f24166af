"""Tiny detector and finder runs: train, resume, export float + int8, score (TensorFlow; slow)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_tiny_detector_run_resumes_and_exports(tmp_path):
    pytest.importorskip("tensorflow")
    from models.training.detector import DetectorConfig, DetectorTrainer, export_and_evaluate

    cfg = DetectorConfig(batch_size=2, steps_per_epoch=2, dev_receipts=2, dev_synth_pages=1)
    run = tmp_path / "run"
    DetectorTrainer(run, cfg).fit(1)
    again = DetectorTrainer(run, cfg)
    assert int(again.epoch.numpy()) == 1
    again.fit(2)
    records = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    report = export_and_evaluate(again, run / "export", representative_count=4, val_limit=2)
    for name in ("float", "int8"):
        model = report["models"][name]
        assert (run / "export" / model["file"]).stat().st_size == model["bytes"]
        assert 0.0 <= model["sroie_val"]["f1"] <= 1.0 and model["sroie_val"]["pages"] == 2
    assert report["models"]["int8"]["bytes"] < report["models"]["float"]["bytes"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_tiny_finder_run_resumes_and_exports(tmp_path):
    pytest.importorskip("tensorflow")
    from models.training.finder import FinderConfig, FinderTrainer, export_and_evaluate

    cfg = FinderConfig(
        batch_size=2, steps_per_epoch=2, dev_receipts=2, dev_empties=2, bank_frames=6
    )
    run = tmp_path / "run"
    FinderTrainer(run, cfg).fit(1)
    again = FinderTrainer(run, cfg)
    assert int(again.epoch.numpy()) == 1
    again.fit(2)
    report = export_and_evaluate(
        again, run / "export", representative_count=4, test_receipts=3, test_empties=2
    )
    for name in ("float", "int8"):
        metrics = report["models"][name]["synth_test"]
        assert metrics["receipts"] == 3 and metrics["empties"] == 2
