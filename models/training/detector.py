"""The text-line detector: a tiny depthwise U-Net predicting line cores, its resumable training and
its int8 export.

Imports TensorFlow; only `receipts train detector` and .venv-train load this module. The
geometry (page scaling, core targets, boxes from the map, F1 at IoU 0.5) is NumPy code in
`models.litert.textmap`, shared with the engine that runs the exported model.

Model selection uses a *dev* set (the last `dev_receipts` ids of the SROIE train split, held
out of training, plus synthetic pages); SROIE val is scored only once, at export.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from models.evaluation.sroie import SPLIT_FILE, load_split
from models.litert.textmap import (
    DEFAULT_GROWTH,
    DetectionScore,
    Growth,
    boxes_from_map,
    calibrate_growth,
    match_boxes,
    prepare_page,
)
from models.training.blocks import encoder, fpn_decoder
from models.training.data import SROIE_ROOT
from models.training.detector_data import Page, batches, sroie_pages, synth_page
from models.training.prefetch import prefetch
from models.training.runs import RunTrainer, export_tflite, load_config, score_exports, write_report

SYNTH_DEV_SEED = 2 * 10**12


@dataclass(frozen=True)
class DetectorConfig:
    """Network and data; saved in the run folder and reused on resume."""

    channels: tuple[int, ...] = (16, 24, 32, 48, 64)
    decoder: int = 24
    crop: int = 256
    target_width: int = 384
    max_side: int = 1280
    batch_size: int = 8
    steps_per_epoch: int = 300
    learning_rate: float = 2e-3
    schedule_epochs: int = 40
    synth_share: float = 0.5
    dev_receipts: int = 30
    dev_synth_pages: int = 20


def build_model(cfg: DetectorConfig) -> tf.keras.Model:
    """Separable encoder to stride 32, FPN-style decoder to stride 2, logits at stride 1."""
    layers = tf.keras.layers
    inp = layers.Input((None, None, 1), name="page")
    skips = encoder(inp, cfg.channels)  # strides 2, 4, 8, 16, 32
    y = fpn_decoder(skips, cfg.decoder)
    y = layers.Conv2DTranspose(cfg.decoder // 2, 2, strides=2, activation="relu")(y)
    y = layers.Conv2D(cfg.decoder // 2, 3, padding="same", activation="relu")(y)
    logits = layers.Conv2D(1, 1, name="core_logits")(y)
    prob = layers.Activation("sigmoid", name="core")(logits)
    return tf.keras.Model(inp, prob, name="detector")


def _loss(target: tf.Tensor, prob: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy plus dice (the cores are a small share of the pixels)."""
    bce = tf.reduce_mean(tf.keras.losses.binary_crossentropy(target, prob))
    inter = tf.reduce_sum(target * prob, axis=[1, 2, 3])
    total = tf.reduce_sum(target + prob, axis=[1, 2, 3])
    dice = 1.0 - tf.reduce_mean((2 * inter + 1.0) / (total + 1.0))
    return bce + dice


def core_map(
    run: Callable[[np.ndarray], np.ndarray], page: Page, cfg: DetectorConfig
) -> tuple[np.ndarray, float]:
    """The core probability map of one page and the page's scale to the map."""
    img, ps = prepare_page(page.gray, cfg.target_width, cfg.max_side)
    return run(img[None, :, :, None])[0, :, :, 0], ps.scale


def detect(
    run: Callable[[np.ndarray], np.ndarray],
    page: Page,
    cfg: DetectorConfig,
    growth: Growth = DEFAULT_GROWTH,
) -> list[Any]:
    """Predicted quads of one page (its pixels) with a model function [1,H,W,1] -> [1,H,W,1]."""
    prob, scale = core_map(run, page, cfg)
    return [b.quad for b in boxes_from_map(prob, scale, growth=growth)]


def score_pages(
    run: Callable[[np.ndarray], np.ndarray],
    pages: list[Page],
    cfg: DetectorConfig,
    growth: Growth = DEFAULT_GROWTH,
) -> dict[str, float]:
    """Precision, recall and F1 at IoU 0.5 summed over pages."""
    total = DetectionScore(0, 0, 0)
    for page in pages:
        truth = [((x0, y0), (x1, y0), (x1, y1), (x0, y1)) for x0, y0, x1, y1 in page.boxes]
        total = total + match_boxes(detect(run, page, cfg, growth), truth)
    return {
        "f1": total.f1,
        "precision": total.precision,
        "recall": total.recall,
        "pages": float(len(pages)),
    }


class DetectorTrainer(RunTrainer):
    """One run folder: config.json, ckpt/, best.weights.h5 (best dev F1), metrics.jsonl."""

    def __init__(
        self,
        run_dir: Path,
        cfg: DetectorConfig,
        split_file: Path = SPLIT_FILE,
        sroie_root: Path = SROIE_ROOT,
    ) -> None:
        self.cfg = cfg = load_config(run_dir, cfg)
        self.split = load_split(split_file)
        self.sroie_root = sroie_root
        train_ids = self.split["train"]
        self.dev_ids = train_ids[len(train_ids) - cfg.dev_receipts :] if cfg.dev_receipts else []
        self.train_ids = train_ids[: len(train_ids) - len(self.dev_ids)]
        super().__init__(
            run_dir,
            build_model(cfg),
            cfg.learning_rate,
            best_name="best_f1",
            decay_steps=cfg.schedule_epochs * cfg.steps_per_epoch,
        )
        spec = [
            tf.TensorSpec((None, None, None, 1), tf.float32),
            tf.TensorSpec((None, None, None, 1), tf.float32),
        ]
        self._step = self._make_step(spec, lambda prob, targets: _loss(targets, prob))

    @property
    def best_f1(self) -> tf.Variable:
        """The best dev F1 so far (-1 before the first epoch)."""
        return self.best

    def run_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        return lambda x: np.asarray(self.model(x, training=False))

    def dev_pages(self) -> dict[str, list[Page]]:
        synth = [synth_page(SYNTH_DEV_SEED + k) for k in range(self.cfg.dev_synth_pages)]
        return {"sroie_dev": sroie_pages(self.dev_ids, self.sroie_root), "synth_dev": synth}

    def fit(self, epochs: int) -> None:
        """Train until `epochs` epochs are done in this folder; checkpoint and log after each."""
        real = sroie_pages(self.train_ids, self.sroie_root)
        dev = self.dev_pages()
        start = int(self.epoch.numpy())
        stream = prefetch(
            batches(
                real,
                batch_size=self.cfg.batch_size,
                seed=start + 1,
                synth_share=self.cfg.synth_share,
                crop=self.cfg.crop,
                target_width=self.cfg.target_width,
                forbidden_ids=frozenset(self.split["val"]),
            ),
            depth=4,
        )

        def score_dev() -> dict[str, float]:
            return {
                f"{name}_{k}": v
                for name, pages in dev.items()
                for k, v in score_pages(self.run_fn(), pages, self.cfg).items()
            }

        def merit(record: dict[str, float]) -> float:
            return record.get("sroie_dev_f1", record.get("synth_dev_f1", 0.0))

        self._train(epochs, self.cfg.steps_per_epoch, stream, score_dev, merit)


def _tflite_fn(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    from models.litert.runtime import LiteRTModel

    model = LiteRTModel(path, num_threads=1)
    return lambda x: model.run(x.astype(np.float32))[0]


def export_and_evaluate(
    trainer: DetectorTrainer,
    out_dir: Path,
    representative_count: int = 60,
    val_limit: int | None = None,
) -> dict[str, Any]:
    """Write detector_float.tflite and detector_int8.tflite; F1 of both on SROIE val pages."""
    trainer.load_best()
    cfg = trainer.cfg
    rep_pages = sroie_pages(trainer.train_ids[: representative_count // 2], trainer.sroie_root)
    rep_pages += [synth_page(3 * 10**12 + k) for k in range(representative_count // 2)]
    random.Random(0).shuffle(rep_pages)

    def rep() -> Iterator[list[np.ndarray]]:
        for page in rep_pages:
            img, _ = prepare_page(page.gray, cfg.target_width, cfg.max_side)
            yield [img[None, :, :, None]]

    paths = export_tflite(trainer.model, out_dir, "detector", rep)
    # How this model's cores grow back into boxes, measured with the int8 file (the one that
    # ships) on the held-out dev pages of the train split; val is only scored.
    int8 = _tflite_fn(paths["int8"])
    dev = sroie_pages(trainer.dev_ids, trainer.sroie_root)
    growth = calibrate_growth([(*core_map(int8, p, cfg), p.boxes) for p in dev])
    val = sroie_pages(trainer.split["val"][:val_limit], trainer.sroie_root)
    report: dict[str, Any] = {
        "input": {
            "channels": 1,
            "range": [0.0, 1.0],
            "width": cfg.target_width,
            "max_side": cfg.max_side,
            "pad_to": 32,
            "output": "line-core probability, same size as the input",
            "box_growth": round(growth.height, 4),
            "box_end": round(growth.end, 4),
        },
        "models": score_exports(
            paths,
            load=_tflite_fn,
            score=lambda run: score_pages(run, val, cfg, growth),
            items=len(val),
            metrics_key="sroie_val",
            ms_key="ms_per_page_1_thread",
            ms_digits=1,
        ),
    }
    return write_report(out_dir, report)
