"""The receipt finder: a small conv net giving corner heat maps and a presence score, its
resumable training on synthetic countertops and its int8 export.

Imports TensorFlow; only `receipts train finder` and .venv-train load this module. The
geometry (input scaling, heat-map targets, decoding, IoU and corner error) is NumPy code in
`models.litert.corners`, shared with the runtime. Held-out sets: synthetic receipt frames and
empty countertops with seeds far from the training seeds.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from models.litert.corners import INPUT_SIZE, STRIDE, FinderScore, decode_heatmaps
from models.litert.manifest import sha256_file
from models.training.finder_data import RENDER_SIZE, batches, example
from models.training.prefetch import prefetch

logger = logging.getLogger(__name__)

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
    empty_share: float = 0.2
    presence_threshold: float = 0.5
    dev_receipts: int = 60
    dev_empties: int = 30


def _sep(x: tf.Tensor, ch: int, stride: int = 1) -> tf.Tensor:
    layers = tf.keras.layers
    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(ch, 1, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU(6.0)(x)


def build_model(cfg: FinderConfig) -> tf.keras.Model:
    """Separable encoder to stride 32; presence from its pooled features; maps at stride 4."""
    layers = tf.keras.layers
    inp = layers.Input((INPUT_SIZE[1], INPUT_SIZE[0], 3), name="frame")
    x = layers.Conv2D(cfg.channels[0], 3, strides=2, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    skips = []
    for ch in cfg.channels[1:]:
        x = _sep(x, ch, stride=2)
        x = _sep(x, ch)
        skips.append(x)  # strides 4, 8, 16, 32
    pooled = layers.GlobalAveragePooling2D()(x)
    presence = layers.Dense(1, activation="sigmoid", name="presence")(pooled)
    y = layers.Conv2D(cfg.decoder, 1, use_bias=False)(skips[-1])
    for skip in reversed(skips[:-1]):
        y = layers.Conv2DTranspose(cfg.decoder, 2, strides=2, use_bias=False)(y)
        y = layers.Add()([y, layers.Conv2D(cfg.decoder, 1, use_bias=False)(skip)])
        y = _sep(y, cfg.decoder)
    assert STRIDE == 4  # the decoder stops at the first skip, stride 4
    maps = layers.Conv2D(4, 1, activation="sigmoid", name="corners")(y)
    return tf.keras.Model(inp, [presence, maps], name="finder")


def _loss(
    maps_t: tf.Tensor, presence_t: tf.Tensor, presence: tf.Tensor, maps: tf.Tensor
) -> tf.Tensor:
    """Presence cross-entropy + heat-map cross-entropy on frames with a receipt (positive cells
    weighted up: they are a handful among thousands)."""
    p_loss = tf.reduce_mean(tf.keras.losses.binary_crossentropy(presence_t, presence))
    eps = 1e-6
    pos = -maps_t * tf.math.log(maps + eps) * 20.0
    neg = -(1 - maps_t) * tf.math.log(1 - maps + eps)
    per_frame = tf.reduce_mean(pos + neg, axis=[1, 2, 3])
    has = presence_t[:, 0]
    m_loss = tf.reduce_sum(per_frame * has) / tf.maximum(tf.reduce_sum(has), 1.0)
    return p_loss + m_loss


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


class FinderTrainer:
    """One run folder: config.json, ckpt/, best.weights.h5 (best dev IoU), metrics.jsonl."""

    def __init__(self, run_dir: Path, cfg: FinderConfig) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        saved = run_dir / "config.json"
        if saved.exists():
            old = json.loads(saved.read_text(encoding="utf-8"))
            old["channels"] = tuple(old["channels"])
            cfg = FinderConfig(**old)
        else:
            saved.write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")
        self.cfg = cfg
        self.model = build_model(cfg)
        self.optimizer = tf.keras.optimizers.Adam(cfg.learning_rate, clipnorm=5.0)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best = tf.Variable(-1.0, dtype=tf.float64, trainable=False)
        self.ckpt = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, epoch=self.epoch, best=self.best
        )
        self.manager = tf.train.CheckpointManager(self.ckpt, str(run_dir / "ckpt"), max_to_keep=3)
        if self.manager.latest_checkpoint:
            self.ckpt.restore(self.manager.latest_checkpoint)
            logger.info("resumed %s at epoch %d", self.manager.latest_checkpoint, int(self.epoch))
        self._step = self._make_step()

    def _make_step(self) -> Callable[..., Any]:
        spec = [
            tf.TensorSpec((None, INPUT_SIZE[1], INPUT_SIZE[0], 3), tf.float32),
            tf.TensorSpec((None, INPUT_SIZE[1] // STRIDE, INPUT_SIZE[0] // STRIDE, 4), tf.float32),
            tf.TensorSpec((None, 1), tf.float32),
        ]

        @tf.function(input_signature=spec)  # type: ignore[untyped-decorator]
        def step(images: tf.Tensor, maps_t: tf.Tensor, presence_t: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                presence, maps = self.model(images, training=True)
                loss = _loss(maps_t, presence_t, presence, maps)
            grads = tape.gradient(loss, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
            return loss

        return step  # type: ignore[no-any-return]

    def run_fn(self) -> Run:
        def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            presence, maps = self.model(x, training=False)
            return np.asarray(presence), np.asarray(maps)

        return run

    def fit(self, epochs: int) -> None:
        """Train until `epochs` epochs are done in this folder; checkpoint and log after each."""
        dev = held_out(DEV_SEED, self.cfg.dev_receipts, self.cfg.dev_empties)
        start = int(self.epoch.numpy())
        stream = prefetch(
            batches(
                batch_size=self.cfg.batch_size, seed=start + 1, empty_share=self.cfg.empty_share
            )
        )
        for epoch in range(start, epochs):
            t0, losses = time.monotonic(), []
            for _ in range(self.cfg.steps_per_epoch):
                losses.append(float(self._step(*next(stream))))
            record: dict[str, float] = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
            for k, v in evaluate(self.run_fn(), dev, self.cfg.presence_threshold).items():
                record[f"dev_{k}"] = v
            record["seconds"] = round(time.monotonic() - t0, 1)
            self.epoch.assign(epoch + 1)
            merit = record["dev_mean_iou"] - record["dev_false_quads"] / max(
                record["dev_empties"], 1
            )
            if merit > float(self.best.numpy()):
                self.best.assign(merit)
                self.model.save_weights(str(self.run_dir / "best.weights.h5"))
            self.manager.save()
            with (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
            logger.info("epoch %d done: %s", epoch + 1, record)


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
    out_dir.mkdir(parents=True, exist_ok=True)
    best = trainer.run_dir / "best.weights.h5"
    if best.exists():
        trainer.model.load_weights(str(best))
    rep_frames = [example(REP_SEED + k, empty=k % 5 == 0)[0] for k in range(representative_count)]

    def rep() -> Iterator[list[np.ndarray]]:
        for frame in rep_frames:
            yield [frame[None]]

    paths = {"float": out_dir / "finder_float.tflite", "int8": out_dir / "finder_int8.tflite"}
    paths["float"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(trainer.model).convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(trainer.model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        paths["int8"].write_bytes(conv.convert())
    test = held_out(TEST_SEED, test_receipts, test_empties)
    report: dict[str, Any] = {
        "input": {
            "width": INPUT_SIZE[0],
            "height": INPUT_SIZE[1],
            "channels": 3,
            "order": "RGB",
            "range": [0.0, 1.0],
            "outputs": "presence [1, 1]; corner heat maps TL, TR, BR, BL at stride 4",
        },
        "models": {},
    }
    for name, path in paths.items():
        run = _tflite_fn(path)
        t0 = time.monotonic()
        metrics = evaluate(run, test, trainer.cfg.presence_threshold)
        report["models"][name] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
            "synth_test": metrics,
            "ms_per_frame_1_thread": round(1000 * (time.monotonic() - t0) / max(len(test), 1), 2),
        }
        logger.info("%s: %s", name, report["models"][name])
    (out_dir / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report
