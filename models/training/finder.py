"""The receipt finder: a small conv net giving corner heat maps and a presence score, its
resumable training on synthetic countertops and its int8 export.

Imports TensorFlow; only `receipts train finder` and .venv-train load this module. The
geometry (input scaling, heat-map targets, decoding, IoU and corner error) is NumPy code in
`models.litert.corners`, shared with the runtime. Held-out sets: synthetic receipt frames and
empty countertops with seeds far from the training seeds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from models.litert.corners import (
    INPUT_SIZE,
    MAP_CHANNELS,
    PAPER,
    STRIDE,
    FinderScore,
    decode_heatmaps,
)
from models.training.blocks import encoder, fpn_decoder
from models.training.finder_data import RENDER_SIZE, bank_batches, build_bank, example
from models.training.prefetch import prefetch
from models.training.runs import RunTrainer, export_tflite, load_config, score_exports, write_report

BANK_SEED = 1 * 10**12
SCAN_BANK_SEED = 9 * 10**12
DEV_SEED = 4 * 10**12
TEST_SEED = 5 * 10**12
REP_SEED = 6 * 10**12


@dataclass(frozen=True)
class FinderConfig:
    """Network and data; saved in the run folder and reused on resume."""

    channels: tuple[int, ...] = (16, 32, 48, 64, 96)
    decoder: int = 32
    batch_size: int = 16
    steps_per_epoch: int = 300
    learning_rate: float = 2e-3
    schedule_epochs: int = 40
    empty_share: float = 0.2
    presence_threshold: float = 0.5
    dev_receipts: int = 60
    dev_empties: int = 30
    #: Frames rendered once into the run's bank/ (see models/training/finder_data.py)...
    bank_frames: int = 12000
    #: ...and flatbed scans (paper on a white bed, or filling the picture) into bank-scans/.
    scan_frames: int = 2000


def build_model(cfg: FinderConfig) -> tf.keras.Model:
    """Separable encoder to stride 32; presence from its pooled features; maps (four corners
    and the paper) at stride 4."""
    layers = tf.keras.layers
    inp = layers.Input((INPUT_SIZE[1], INPUT_SIZE[0], 3), name="frame")
    skips = encoder(inp, cfg.channels)[1:]  # strides 4, 8, 16, 32
    pooled = layers.GlobalAveragePooling2D()(skips[-1])
    presence = layers.Dense(1, activation="sigmoid", name="presence")(pooled)
    y = fpn_decoder(skips, cfg.decoder)
    assert STRIDE == 4  # the decoder stops at the first skip, stride 4
    maps = layers.Conv2D(MAP_CHANNELS, 1, activation="sigmoid", name="corners")(y)
    return tf.keras.Model(inp, [presence, maps], name="finder")


def _loss(
    maps_t: tf.Tensor, presence_t: tf.Tensor, presence: tf.Tensor, maps: tf.Tensor
) -> tf.Tensor:
    """Presence cross-entropy + corner heat-map cross-entropy on frames with a receipt (positive
    cells weighted up: they are a handful among thousands) + paper-map cross-entropy on every
    frame (an empty countertop has no paper)."""
    p_loss = tf.reduce_mean(tf.keras.losses.binary_crossentropy(presence_t, presence))
    eps = 1e-6
    corners_t, corners = maps_t[..., :PAPER], maps[..., :PAPER]
    pos = -corners_t * tf.math.log(corners + eps) * 20.0
    neg = -(1 - corners_t) * tf.math.log(1 - corners + eps)
    per_frame = tf.reduce_mean(pos + neg, axis=[1, 2, 3])
    has = presence_t[:, 0]
    m_loss = tf.reduce_sum(per_frame * has) / tf.maximum(tf.reduce_sum(has), 1.0)
    paper_t, paper = maps_t[..., PAPER], maps[..., PAPER]
    paper_loss = -tf.reduce_mean(
        paper_t * tf.math.log(paper + eps) + (1 - paper_t) * tf.math.log(1 - paper + eps)
    )
    return p_loss + m_loss + paper_loss


Run = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def evaluate(
    run: Run, cases: list[tuple[np.ndarray, np.ndarray | None]], threshold: float
) -> dict[str, float]:
    """Mean IoU, corner error and false quads on (input, true corners or None) cases."""
    score = FinderScore([], [])
    for image, truth in cases:
        presence, maps = run(image[None])
        quad = (
            decode_heatmaps(maps[0], RENDER_SIZE)
            if float(presence.reshape(-1)[0]) >= threshold
            else None
        )
        score.add(quad, None if truth is None else truth.tolist())
    return score.summary()


def held_out(seed: int, receipts: int, empties: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Fixed evaluation frames: receipts, then empty countertops, from seeds far from training."""
    out = []
    for k in range(receipts):
        image, _, _, quad = example(seed + k, empty=False)
        out.append((image, quad))
    for k in range(empties):
        image, _, _, _ = example(seed + receipts + k, empty=True)
        out.append((image, None))
    return out


class FinderTrainer(RunTrainer):
    """One run folder: config.json, bank/ (the rendered frames), ckpt/, best.weights.h5 (best
    dev IoU), metrics.jsonl."""

    def __init__(self, run_dir: Path, cfg: FinderConfig) -> None:
        self.cfg = cfg = load_config(run_dir, cfg)
        super().__init__(
            run_dir,
            build_model(cfg),
            cfg.learning_rate,
            best_name="best",
            decay_steps=cfg.schedule_epochs * cfg.steps_per_epoch,
        )
        spec = [
            tf.TensorSpec((None, INPUT_SIZE[1], INPUT_SIZE[0], 3), tf.float32),
            tf.TensorSpec(
                (None, INPUT_SIZE[1] // STRIDE, INPUT_SIZE[0] // STRIDE, MAP_CHANNELS), tf.float32
            ),
            tf.TensorSpec((None, 1), tf.float32),
        ]
        self._step = self._make_step(
            spec,
            lambda outputs, maps_t, presence_t: _loss(maps_t, presence_t, *outputs),
        )

    def run_fn(self) -> Run:
        def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            presence, maps = self.model(x, training=False)
            return np.asarray(presence), np.asarray(maps)

        return run

    def fit(self, epochs: int) -> None:
        """Train until `epochs` epochs are done in this folder; checkpoint and log after each."""
        bank = build_bank(
            self.run_dir / "bank",
            self.cfg.bank_frames,
            seed=BANK_SEED,
            empty_share=self.cfg.empty_share,
            workers=os.cpu_count() or 1,
        )
        if self.cfg.scan_frames:
            bank = bank + build_bank(
                self.run_dir / "bank-scans",
                self.cfg.scan_frames,
                seed=SCAN_BANK_SEED,
                scans=True,
                workers=os.cpu_count() or 1,
            )
        dev = held_out(DEV_SEED, self.cfg.dev_receipts, self.cfg.dev_empties)
        start = int(self.epoch.numpy())
        stream = prefetch(bank_batches(bank, batch_size=self.cfg.batch_size, seed=start + 1))

        def score_dev() -> dict[str, float]:
            scores = evaluate(self.run_fn(), dev, self.cfg.presence_threshold)
            return {f"dev_{k}": v for k, v in scores.items()}

        def merit(record: dict[str, float]) -> float:
            return record["dev_mean_iou"] - record["dev_false_quads"] / max(
                record["dev_empties"], 1
            )

        self._train(epochs, self.cfg.steps_per_epoch, stream, score_dev, merit)


def _tflite_fn(path: Path) -> Run:
    from models.litert.runtime import LiteRTModel

    model = LiteRTModel(path, num_threads=1)
    names = [d["name"] for d in model.outputs]

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outs = model.run(x.astype(np.float32))
        by_rank = sorted(zip(names, outs, strict=True), key=lambda no: no[1].ndim)
        return by_rank[0][1], by_rank[1][1]  # presence [1, 1], maps [1, h, w, 4]

    return run


def export_and_evaluate(
    trainer: FinderTrainer,
    out_dir: Path,
    representative_count: int = 100,
    test_receipts: int = 200,
    test_empties: int = 100,
) -> dict[str, Any]:
    """Write finder_float.tflite and finder_int8.tflite; score both on the held-out test frames."""
    trainer.load_best()
    rep_frames = [example(REP_SEED + k, empty=k % 5 == 0)[0] for k in range(representative_count)]

    def rep() -> Iterator[list[np.ndarray]]:
        for frame in rep_frames:
            yield [frame[None]]

    paths = export_tflite(trainer.model, out_dir, "finder", rep)
    test = held_out(TEST_SEED, test_receipts, test_empties)
    report: dict[str, Any] = {
        "input": {
            "width": INPUT_SIZE[0],
            "height": INPUT_SIZE[1],
            "channels": 3,
            "order": "RGB",
            "range": [0.0, 1.0],
            "outputs": (
                "presence [1, 1]; maps [1, h, w, 5] at stride 4: corner heat maps TL, TR, BR, "
                "BL (screen order) and the paper of every receipt"
            ),
        },
        "models": score_exports(
            paths,
            load=_tflite_fn,
            score=lambda run: evaluate(run, test, trainer.cfg.presence_threshold),
            items=len(test),
            metrics_key="synth_test",
            ms_key="ms_per_frame_1_thread",
            ms_digits=2,
        ),
    }
    return write_report(out_dir, report)
