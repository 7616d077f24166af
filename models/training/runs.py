"""Resumable run folders shared by the detector and the finder trainers (imports TensorFlow).

A run folder holds config.json (the config the run started with, reused on resume), ckpt/
(model, optimizer, epoch and best dev merit), best.weights.h5 (the weights of the best dev
merit so far), metrics.jsonl (one record per epoch) and, after export, export/ with the float
and int8 .tflite files and report.json.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import tensorflow as tf

from models.litert.manifest import sha256_file

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

logger = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound="DataclassInstance")
RunT = TypeVar("RunT")


def load_config(run_dir: Path, cfg: ConfigT) -> ConfigT:
    """The run's saved config (its `channels` as a tuple), or `cfg`, saved, for a new run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "config.json"
    if saved.exists():
        old = json.loads(saved.read_text(encoding="utf-8"))
        old["channels"] = tuple(old["channels"])
        return type(cfg)(**old)
    saved.write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")
    return cfg


class RunTrainer:
    """Model, Adam optimizer, epoch and best merit of one run folder, restored from its last
    checkpoint; `best_name` is the best merit's name in the checkpoint."""

    _step: Callable[..., Any]

    def __init__(
        self,
        run_dir: Path,
        model: tf.keras.Model,
        learning_rate: float,
        best_name: str,
        decay_steps: int,
    ) -> None:
        self.run_dir = run_dir
        self.model = model
        # The rate falls along a cosine to a twentieth over decay_steps: a run stopped at its
        # planned end has annealed. Always a schedule object, never a float, so the optimizer's
        # checkpointed state has one shape (restoring Adam's slots into an optimizer built the
        # other way gave NaN weights on the first step).
        rate = tf.keras.optimizers.schedules.CosineDecay(
            learning_rate, max(decay_steps, 1), alpha=0.05
        )
        self.optimizer = tf.keras.optimizers.Adam(rate, clipnorm=5.0)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best = tf.Variable(-1.0, dtype=tf.float64, trainable=False)
        self.ckpt = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, epoch=self.epoch, **{best_name: self.best}
        )
        self.manager = tf.train.CheckpointManager(self.ckpt, str(run_dir / "ckpt"), max_to_keep=3)
        if self.manager.latest_checkpoint:
            self.ckpt.restore(self.manager.latest_checkpoint)
            logger.info("resumed %s at epoch %d", self.manager.latest_checkpoint, int(self.epoch))

    def _make_step(
        self, spec: list[tf.TensorSpec], loss: Callable[..., tf.Tensor]
    ) -> Callable[..., Any]:
        """One compiled training step on (images, *targets); `loss(model outputs, *targets)`."""

        @tf.function(input_signature=spec)  # type: ignore[untyped-decorator]
        def step(images: tf.Tensor, *targets: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                value = loss(self.model(images, training=True), *targets)
            grads = tape.gradient(value, self.model.trainable_variables)
            # A non-finite loss or gradient (one diverging batch) must not poison the weights: its
            # step applies zero gradients instead, and the logged loss shows what happened.
            finite = tf.reduce_all(
                [tf.math.is_finite(value)] + [tf.reduce_all(tf.math.is_finite(g)) for g in grads]
            )
            grads = [tf.where(finite, g, tf.zeros_like(g)) for g in grads]
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
            return value

        return step  # type: ignore[no-any-return]

    def _train(
        self,
        epochs: int,
        steps_per_epoch: int,
        stream: Iterator[tuple[np.ndarray, ...]],
        evaluate: Callable[[], dict[str, float]],
        merit: Callable[[dict[str, float]], float],
    ) -> None:
        """Train until `epochs` epochs are done in this folder; after each, score it on the
        dev sets, keep the weights of the best merit, checkpoint and log."""
        for epoch in range(int(self.epoch.numpy()), epochs):
            t0, losses = time.monotonic(), []
            for _ in range(steps_per_epoch):
                losses.append(float(self._step(*next(stream))))
            record: dict[str, float] = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
            record.update(evaluate())
            record["seconds"] = round(time.monotonic() - t0, 1)
            self.epoch.assign(epoch + 1)
            value = merit(record)
            if value > float(self.best.numpy()):
                self.best.assign(value)
                self.model.save_weights(str(self.run_dir / "best.weights.h5"))
            self.manager.save()
            with (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
            logger.info("epoch %d done: %s", epoch + 1, record)

    def load_best(self) -> None:
        """Load best.weights.h5 into the model where the run has one."""
        best = self.run_dir / "best.weights.h5"
        if best.exists():
            self.model.load_weights(str(best))


def export_tflite(
    model: tf.keras.Model,
    out_dir: Path,
    stem: str,
    representative: Callable[[], Iterator[list[np.ndarray]]],
) -> dict[str, Path]:
    """Write {stem}_float.tflite and {stem}_int8.tflite (full-integer ops, calibrated on the
    representative inputs) into `out_dir`; their paths by precision."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"float": out_dir / f"{stem}_float.tflite", "int8": out_dir / f"{stem}_int8.tflite"}
    paths["float"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        paths["int8"].write_bytes(conv.convert())
    return paths


def score_exports(
    paths: dict[str, Path],
    *,
    load: Callable[[Path], RunT],
    score: Callable[[RunT], dict[str, float]],
    items: int,
    metrics_key: str,
    ms_key: str,
    ms_digits: int,
) -> dict[str, Any]:
    """Each exported model's file, size, sha256, `score` under `metrics_key` and mean
    milliseconds per one of the `items` scored (model loading excluded) under `ms_key`."""
    models: dict[str, Any] = {}
    for name, path in paths.items():
        run = load(path)
        t0 = time.monotonic()
        metrics = score(run)
        models[name] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
            metrics_key: metrics,
            ms_key: round(1000 * (time.monotonic() - t0) / max(items, 1), ms_digits),
        }
        logger.info("%s: %s", name, models[name])
    return models


def write_report(out_dir: Path, report: dict[str, Any]) -> dict[str, Any]:
    """Save the export report as report.json; the report."""
    (out_dir / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report
