"""The text-line detector: a tiny depthwise U-Net predicting line cores, its resumable training and
its int8 export.

Imports TensorFlow; only `receipts train detector` and .venv-train load this module. The
geometry (page scaling, core targets, boxes from the map, F1 at IoU 0.5) is NumPy code in
`models.litert.textmap`, shared with the engine that runs the exported model.

Model selection uses a *dev* set (the last `dev_receipts` ids of the SROIE train split, held
out of training, plus synthetic pages); SROIE val is scored only once, at export.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from models.evaluation.sroie import SPLIT_FILE, load_split
from models.litert.textmap import DEFAULT_GROWTH, Growth, calibrate_growth, prepare_page
from models.training.blocks import encoder, fpn_decoder
from models.training.data import SROIE_ROOT
from models.training.detector_data import Page, batches, sroie_pages, synth_page
from models.training.detector_metrics import CoreMap, core_map, dev_score, score_maps
from models.training.from_tflite import (
    TfliteMismatch,
    init_from_tflite,
    published_entry,
    tflite_runner,
)
from models.training.prefetch import prefetch
from models.training.runs import RunTrainer, export_tflite, load_config, score_exports, write_report

logger = logging.getLogger(__name__)

SYNTH_DEV_SEED = 2 * 10**12
#: A warm start must reproduce the published detector on the dev pages: its dev F1 may fall
#: short of the .tflite's by at most this (int8 activations make the two differ a little)...
WARM_F1_SLACK = 0.01
#: ...and the two must agree on at least this share of the pixels' core / not-core decision.
WARM_SAME_PIXELS = 0.99


@dataclass(frozen=True)
class DetectorConfig:
    """Network and data; saved in the run folder and reused on resume. The defaults are the
    shipped detector's run (2026.11.25-1759: 45 epochs from scratch, 142 k parameters; the one
    before, 2026.11.25-0911, had channels (16, 32, 48, 64, 96), decoder 32 and 60 epochs: 70 k
    parameters; the one before that, 40 k, channels (16, 24, 32, 48, 64), decoder 24,
    synthetic share 0.5 and the plain loss)."""

    channels: tuple[int, ...] = (24, 48, 64, 96, 128)
    decoder: int = 48
    crop: int = 256
    target_width: int = 384
    max_side: int = 1280
    batch_size: int = 8
    steps_per_epoch: int = 300
    learning_rate: float = 2e-3
    schedule_epochs: int = 45
    synth_share: float = 0.4
    #: batches per fresh synthetic page (the others draw from a pool of 64 pages)
    synth_every: int = 3
    dev_receipts: int = 30
    dev_synth_pages: int = 20
    #: cross-entropy weight of the cores of short boxes (under 1.5 heights wide: lone
    #: quantities, tax codes, colons) and of the background between neighbouring boxes of a
    #: row (`detector_data.loss_weights`); 1 is the plain loss
    short_weight: float = 3.0
    gap_weight: float = 2.0
    #: share of training windows whose ink fades towards one side (`detector_data.fade_ink`)
    fade: float = 0.0


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


def _loss(targets: tf.Tensor, prob: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy (weighted per pixel) plus dice (the cores are a small share of the
    pixels); `targets` [B, H, W, 2] holds the core map and the cross-entropy's weights."""
    target, weight = targets[..., :1], targets[..., 1]
    pixel = tf.keras.losses.binary_crossentropy(target, prob)  # [B, H, W]
    bce = tf.reduce_sum(weight * pixel) / tf.maximum(tf.reduce_sum(weight), 1e-6)
    inter = tf.reduce_sum(target * prob, axis=[1, 2, 3])
    total = tf.reduce_sum(target + prob, axis=[1, 2, 3])
    dice = 1.0 - tf.reduce_mean((2 * inter + 1.0) / (total + 1.0))
    return bce + dice


def page_maps(
    run: Callable[[np.ndarray], np.ndarray], pages: list[Page], cfg: DetectorConfig
) -> list[CoreMap]:
    """The core maps of pages, read at the run's page size."""
    return [core_map(run, p, cfg.target_width, cfg.max_side) for p in pages]


def score_pages(
    run: Callable[[np.ndarray], np.ndarray],
    pages: list[Page],
    cfg: DetectorConfig,
    growth: Growth = DEFAULT_GROWTH,
) -> dict[str, float]:
    """`score_maps` of a model function [1,H,W,1] -> [1,H,W,1] on the pages."""
    return score_maps(page_maps(run, pages, cfg), pages, growth)


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
            tf.TensorSpec((None, None, None, 2), tf.float32),  # core map, loss weights
        ]
        self._step = self._make_step(spec, lambda prob, targets: _loss(targets, prob))

    @property
    def best_f1(self) -> tf.Variable:
        """The best dev F1 so far (-1 before the first epoch)."""
        return self.best

    def run_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        return lambda x: np.asarray(self.model(x, training=False))

    def warm_start(self, tflite: Path, calibration_batches: int = 8) -> dict[str, float]:
        """Start this new run from a published detector .tflite instead of from zero.

        The weights come from the .tflite (`models.training.from_tflite`, ops and layers paired
        by graph structure); its batch norms are calibrated on a few training batches (windows
        of SROIE train pages and synthetic pages, never dev or val). The initialized model and
        the .tflite then both map the SROIE dev pages: they must agree (pixels on the same side
        of 0.5, dev F1 as the epochs score it), else TfliteMismatch. The initialized model
        becomes the run's best weights so far. Returns the figures.
        """
        entry = published_entry(tflite)
        spec = (entry or {}).get("input") or {}
        for key, value in (("width", self.cfg.target_width), ("max_side", self.cfg.max_side)):
            if spec.get(key, value) != value:
                raise TfliteMismatch(
                    f"{tflite} reads pages with {key} {spec[key]}, this run's config {value}"
                )
        real = sroie_pages(self.train_ids[:40], self.sroie_root)
        stream = batches(
            real,
            batch_size=self.cfg.batch_size,
            seed=0,
            synth_share=self.cfg.synth_share,
            synth_pool=8,
            crop=self.cfg.crop,
            target_width=self.cfg.target_width,
            forbidden_ids=frozenset(self.split["val"]) | frozenset(self.dev_ids),
        )
        init_from_tflite(self.model, tflite, (next(stream)[0] for _ in range(calibration_batches)))
        dev = sroie_pages(self.dev_ids, self.sroie_root)
        ours, theirs = self.run_fn(), tflite_runner(tflite)
        ours_maps = page_maps(ours, dev, self.cfg)
        theirs_maps = page_maps(theirs, dev, self.cfg)
        same, total, gaps = 0, 0, []
        for (a, _), (b, _) in zip(ours_maps, theirs_maps, strict=True):
            same += int(np.sum((a >= 0.5) == (b >= 0.5)))
            total += a.size
            gaps.append(float(np.abs(a - b).mean()))
        init = dev_score(ours_maps, dev)
        published = dev_score(theirs_maps, dev)
        figures = {
            "init_dev_f1": init["f1"],
            "tflite_dev_f1": published["f1"],
            "same_pixels": same / max(total, 1),
            "mean_prob_gap": float(np.mean(gaps)) if gaps else 0.0,
        }
        logger.info("warm start from %s: %s", tflite, figures)
        if figures["same_pixels"] < WARM_SAME_PIXELS or figures["init_dev_f1"] < (
            figures["tflite_dev_f1"] - WARM_F1_SLACK
        ):
            raise TfliteMismatch(f"the model initialized from {tflite} does not reproduce it")
        # The starting point is the run's first candidate: an epoch must beat the published
        # model on dev (as the epochs are scored) to become best.weights.h5.
        self.best_f1.assign(init["f1"])
        self.model.save_weights(str(self.run_dir / "best.weights.h5"))
        return figures

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
                synth_every=self.cfg.synth_every,
                crop=self.cfg.crop,
                target_width=self.cfg.target_width,
                forbidden_ids=frozenset(self.split["val"]),
                short_weight=self.cfg.short_weight,
                gap_weight=self.cfg.gap_weight,
                fade=self.cfg.fade,
            ),
            depth=4,
        )

        def score_dev() -> dict[str, float]:
            run = self.run_fn()
            return {
                f"{name}_{k}": v
                for name, pages in dev.items()
                for k, v in dev_score(page_maps(run, pages, self.cfg), pages).items()
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
    maps = page_maps(int8, dev, cfg)
    growth = calibrate_growth([(*m, p.boxes) for m, p in zip(maps, dev, strict=True)])
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
