"""Export the recognizer to float and int8 TFLite, and score both on the same validation lines."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from models.training.data import make_batch, sroie_crops
from models.training.from_tflite import tflite_runner
from models.training.metrics import predict, score
from models.training.recognizer import Trainer

logger = logging.getLogger(__name__)


def _interpreter(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function running one .tflite on one input, resizing the input to its width (1 thread)."""
    return tflite_runner(path)


def export_tflite(
    trainer: Trainer, out_dir: Path, representative: list[np.ndarray]
) -> dict[str, Path]:
    """Write recognizer_float.tflite and recognizer_int8.tflite (float in/out, int8 inside)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    best = trainer.run_dir / "best.weights.h5"
    if best.exists():
        trainer.model.load_weights(str(best))
    paths = {}
    conv = tf.lite.TFLiteConverter.from_keras_model(trainer.model)
    paths["float"] = out_dir / "recognizer_float.tflite"
    paths["float"].write_bytes(conv.convert())

    def rep() -> Iterator[list[np.ndarray]]:
        for x in representative:
            yield [x]

    conv = tf.lite.TFLiteConverter.from_keras_model(trainer.model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    paths["int8"] = out_dir / "recognizer_int8.tflite"
    with warnings.catch_warnings():  # float input/output by design: no input statistics needed
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        paths["int8"].write_bytes(conv.convert())
    return paths


def export_and_evaluate(
    trainer: Trainer, out_dir: Path, representative_count: int = 200
) -> dict[str, Any]:
    """Export both models; score them on every SROIE val line (case-insensitive) and synth lines."""
    cs, h = trainer.charset, trainer.cfg.height
    train_lines = sroie_crops(trainer.split["train"][:40], cs, h, trainer.sroie_root)
    random.Random(1).shuffle(train_lines)
    rep = [
        make_batch([(img, "x")], cs).images
        for img, _, _ in train_lines[: representative_count // 2]
    ]
    from models.synth.lines import generate_line

    rep += [
        make_batch([generate_line(5 * 10**11 + k, h)], cs).images
        for k in range(representative_count // 2)
    ]
    paths = export_tflite(trainer, out_dir, rep)
    val_real = [(i, t) for i, t, _ in sroie_crops(trainer.split["val"], cs, h, trainer.sroie_root)]
    val_synth = trainer.validation_sets()["synth_val"]
    report: dict[str, Any] = {
        "charset": cs.chars,
        "input": {
            "height": h,
            "channels": 1,
            "range": [0.0, 1.0],
            "width": "variable, multiple of 4",
        },
        "models": {},
    }
    for name, path in paths.items():
        run = _interpreter(path)
        t0 = time.monotonic()
        real_m = score(predict(run, val_real, cs), [t for _, t in val_real], case_insensitive=True)
        per_line = (time.monotonic() - t0) / max(len(val_real), 1)
        synth_m = score(
            predict(run, val_synth, cs), [t for _, t in val_synth], case_insensitive=False
        )
        report["models"][name] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "sroie_val": real_m,
            "synth_val": synth_m,
            "ms_per_line_1_thread": round(per_line * 1000, 2),
        }
        logger.info("%s: %s", name, report["models"][name])
    (out_dir / "charset.json").write_text(
        json.dumps({"blank": 0, "chars": cs.chars}, ensure_ascii=False), encoding="utf-8"
    )
    (out_dir / "report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return report
