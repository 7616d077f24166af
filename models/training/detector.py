"""The text-line detector: a tiny depthwise U-Net predicting line cores, its resumable training and
its int8 export.

Imports TensorFlow; only `receipts train detector` and .venv-train load this module. The
geometry (page scaling, core targets, boxes from the map, F1 at IoU 0.5) is NumPy code in
`models.litert.textmap`, shared with the engine that runs the exported model.

Model selection uses a *dev* set (the last `dev_receipts` ids of the SROIE train split, held
out of training, plus synthetic pages); SROIE val is scored only once, at export.
"""

from __future__ import annotations

import json
import logging
import random
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from models.litert.manifest import sha256_file
from models.litert.textmap import DetectionScore, boxes_from_map, match_boxes, prepare_page
from models.training.data import SPLIT_FILE, SROIE_ROOT, load_split
from models.training.detector_data import Page, batches, sroie_pages, synth_page
from models.training.prefetch import prefetch

logger = logging.getLogger(__name__)

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
    synth_share: float = 0.5
    dev_receipts: int = 30
    dev_synth_pages: int = 20


def _sep(x: tf.Tensor, ch: int, stride: int = 1) -> tf.Tensor:
    layers = tf.keras.layers
    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(ch, 1, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU(6.0)(x)


def build_model(cfg: DetectorConfig) -> tf.keras.Model:
    """Separable encoder to stride 32, FPN-style decoder to stride 2, logits at stride 1."""
    layers = tf.keras.layers
    inp = layers.Input((None, None, 1), name="page")
    x = layers.Conv2D(cfg.channels[0], 3, strides=2, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    skips = [x]  # stride 2
    for ch in cfg.channels[1:]:
        x = _sep(x, ch, stride=2)
        x = _sep(x, ch)
        skips.append(x)  # strides 4, 8, 16, 32
    y = layers.Conv2D(cfg.decoder, 1, use_bias=False)(skips[-1])
    for skip in reversed(skips[:-1]):
        # A learned 2x upsampling: Keras' UpSampling2D can't trace unknown page sizes.
        y = layers.Conv2DTranspose(cfg.decoder, 2, strides=2, use_bias=False)(y)
        lateral = layers.Conv2D(cfg.decoder, 1, use_bias=False)(skip)
        y = layers.Add()([y, lateral])
        y = _sep(y, cfg.decoder)
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


def detect(run: Callable[[np.ndarray], np.ndarray], page: Page, cfg: DetectorConfig) -> list[Any]:
    """Predicted quads of one page (its pixels) with a model function [1,H,W,1] -> [1,H,W,1]."""
    img, ps = prepare_page(page.gray, cfg.target_width, cfg.max_side)
    prob = run(img[None, :, :, None])[0, :, :, 0]
    return [b.quad for b in boxes_from_map(prob, ps.scale)]


def score_pages(
    run: Callable[[np.ndarray], np.ndarray], pages: list[Page], cfg: DetectorConfig
) -> dict[str, float]:
    """Precision, recall and F1 at IoU 0.5 summed over pages."""
    total = DetectionScore(0, 0, 0)
    for page in pages:
        truth = [((x0, y0), (x1, y0), (x1, y1), (x0, y1)) for x0, y0, x1, y1 in page.boxes]
        total = total + match_boxes(detect(run, page, cfg), truth)
    return {
        "f1": total.f1,
        "precision": total.precision,
        "recall": total.recall,
        "pages": float(len(pages)),
    }


class DetectorTrainer:
    """One run folder: config.json, ckpt/, best.weights.h5 (best dev F1), metrics.jsonl."""

    def __init__(
        self,
        run_dir: Path,
        cfg: DetectorConfig,
        split_file: Path = SPLIT_FILE,
        sroie_root: Path = SROIE_ROOT,
    ) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        saved = run_dir / "config.json"
        if saved.exists():
            old = json.loads(saved.read_text(encoding="utf-8"))
            old["channels"] = tuple(old["channels"])
            cfg = DetectorConfig(**old)
        else:
            saved.write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")
        self.cfg = cfg
        self.split = load_split(split_file)
        self.sroie_root = sroie_root
        train_ids = self.split["train"]
        self.dev_ids = train_ids[len(train_ids) - cfg.dev_receipts :] if cfg.dev_receipts else []
        self.train_ids = train_ids[: len(train_ids) - len(self.dev_ids)]
        self.model = build_model(cfg)
        self.optimizer = tf.keras.optimizers.Adam(cfg.learning_rate, clipnorm=5.0)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best_f1 = tf.Variable(-1.0, dtype=tf.float64, trainable=False)
        self.ckpt = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, epoch=self.epoch, best_f1=self.best_f1
        )
        self.manager = tf.train.CheckpointManager(self.ckpt, str(run_dir / "ckpt"), max_to_keep=3)
        if self.manager.latest_checkpoint:
            self.ckpt.restore(self.manager.latest_checkpoint)
            logger.info("resumed %s at epoch %d", self.manager.latest_checkpoint, int(self.epoch))
        self._step = self._make_step()

    def _make_step(self) -> Callable[..., Any]:
        spec = [
            tf.TensorSpec((None, None, None, 1), tf.float32),
            tf.TensorSpec((None, None, None, 1), tf.float32),
        ]

        @tf.function(input_signature=spec)  # type: ignore[untyped-decorator]
        def step(images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = _loss(targets, self.model(images, training=True))
            grads = tape.gradient(loss, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
            return loss

        return step  # type: ignore[no-any-return]

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
        for epoch in range(start, epochs):
            t0, losses = time.monotonic(), []
            for _ in range(self.cfg.steps_per_epoch):
                images, targets = next(stream)
                losses.append(float(self._step(images, targets)))
            record: dict[str, float] = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
            for name, pages in dev.items():
                for k, v in score_pages(self.run_fn(), pages, self.cfg).items():
                    record[f"{name}_{k}"] = v
            record["seconds"] = round(time.monotonic() - t0, 1)
            self.epoch.assign(epoch + 1)
            dev_f1 = record.get("sroie_dev_f1", record.get("synth_dev_f1", 0.0))
            if dev_f1 > float(self.best_f1.numpy()):
                self.best_f1.assign(dev_f1)
                self.model.save_weights(str(self.run_dir / "best.weights.h5"))
            self.manager.save()
            with (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
            logger.info("epoch %d done: %s", epoch + 1, record)


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
    out_dir.mkdir(parents=True, exist_ok=True)
    best = trainer.run_dir / "best.weights.h5"
    if best.exists():
        trainer.model.load_weights(str(best))
    cfg = trainer.cfg
    rep_pages = sroie_pages(trainer.train_ids[: representative_count // 2], trainer.sroie_root)
    rep_pages += [synth_page(3 * 10**12 + k) for k in range(representative_count // 2)]
    random.Random(0).shuffle(rep_pages)

    def rep() -> Iterator[list[np.ndarray]]:
        for page in rep_pages:
            img, _ = prepare_page(page.gray, cfg.target_width, cfg.max_side)
            yield [img[None, :, :, None]]

    paths = {"float": out_dir / "detector_float.tflite", "int8": out_dir / "detector_int8.tflite"}
    paths["float"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(trainer.model).convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(trainer.model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        paths["int8"].write_bytes(conv.convert())
    val = sroie_pages(trainer.split["val"][:val_limit], trainer.sroie_root)
    report: dict[str, Any] = {
        "input": {
            "channels": 1,
            "range": [0.0, 1.0],
            "width": cfg.target_width,
            "max_side": cfg.max_side,
            "pad_to": 32,
            "output": "line-core probability, same size as the input",
        },
        "models": {},
    }
    for name, path in paths.items():
        run = _tflite_fn(path)
        t0 = time.monotonic()
        metrics = score_pages(run, val, cfg)
        report["models"][name] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
            "sroie_val": metrics,
            "ms_per_page_1_thread": round(1000 * (time.monotonic() - t0) / max(len(val), 1), 1),
        }
        logger.info("%s: %s", name, report["models"][name])
    (out_dir / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report
