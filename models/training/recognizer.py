"""The line recognizer: a small conv-only CTC network, its resumable training loop and its export.

Imports TensorFlow; only the `train` command and the .venv-train environment load this module.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from models.evaluation.sroie import SPLIT_FILE, load_split
from models.synth.lines import generate_line
from models.training.charset import CHARSET, Charset
from models.training.data import (
    SROIE_ROOT,
    Batch,
    crop_room,
    fits,
    sroie_crops,
    training_batches,
)
from models.training.from_tflite import (
    TfliteMismatch,
    init_from_tflite,
    published_entry,
    tflite_runner,
)
from models.training.metrics import predict, score

logger = logging.getLogger(__name__)

SYNTH_VAL_SEED = 10**12
#: A warm start must read at least this share of the dev lines as the .tflite does, and score
#: a dev CER at most this much above it (int8 activations account for a few lines, not more).
WARM_SAME_TEXT = 0.85
WARM_CER_SLACK = 0.005


@dataclass(frozen=True)
class RecognizerConfig:
    """Everything that fixes the network and its data; saved in the run folder, reused on resume."""

    height: int = 32
    channels: tuple[int, ...] = (24, 48, 64, 64, 96)
    context: int = 128
    context_blocks: int = 3
    batch_size: int = 32
    steps_per_epoch: int = 400
    learning_rate: float = 1e-3
    #: Epochs over which the learning rate falls (cosine) to a twentieth; later epochs stay there.
    schedule_epochs: int = 24
    real_share: float = 0.5
    #: Share of the real crops cut along moved box edges, as the detector's boxes differ from
    #: the true ones (`data.cut_real`); 0 cuts every one with the plain margin.
    box_jitter: float = 0.0
    #: The last this many ids of the SROIE train split: held out of training, used to pick the
    #: best epoch. SROIE val is scored only at export, so it never steers training.
    dev_receipts: int = 30
    dev_real_lines: int = 800
    val_synth_lines: int = 300
    charset: str = CHARSET


def build_model(cfg: RecognizerConfig, num_classes: int) -> tf.keras.Model:
    """Conv stack pooling height to 1 and width by 4, 1-D context blocks, per-step logits."""
    layers = tf.keras.layers
    inp = layers.Input((cfg.height, None, 1), name="image")
    x = inp
    c = cfg.channels
    pools = ((2, 2), (2, 2), None, (2, 1), (2, 1))
    for ch, pool in zip(c, pools, strict=True):
        x = layers.Conv2D(ch, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPool2D(pool)(x)
    # height is now cfg.height / 16: fold it into the channels with one conv
    x = layers.Conv2D(cfg.context, (cfg.height // 16, 1), padding="valid", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((-1, cfg.context))(x)
    for _ in range(cfg.context_blocks):
        y = layers.SeparableConv1D(cfg.context, 7, padding="same", use_bias=False)(x)
        y = layers.BatchNormalization()(y)
        y = layers.ReLU()(y)
        x = layers.Add()([x, y])
    x = layers.Dropout(0.1)(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inp, logits, name="recognizer")


def _prefetch(batches: Iterator[Batch], depth: int = 6) -> Iterator[Batch]:
    """Build batches in a background thread (PIL and OpenCV release the GIL)."""
    q: queue.Queue[Batch] = queue.Queue(maxsize=depth)

    def fill() -> None:
        for b in batches:
            q.put(b)

    threading.Thread(target=fill, daemon=True).start()
    while True:
        yield q.get()


class Trainer:
    """Owns one run folder: config, checkpoints, metrics; `fit` resumes where the folder stopped."""

    def __init__(
        self,
        run_dir: Path,
        cfg: RecognizerConfig,
        split_file: Path = SPLIT_FILE,
        sroie_root: Path = SROIE_ROOT,
    ) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        saved = run_dir / "config.json"
        if saved.exists():
            old = json.loads(saved.read_text(encoding="utf-8"))
            old["channels"] = tuple(old["channels"])
            if RecognizerConfig(**old) != cfg:
                logger.info("run %s has its own config; resuming with it", run_dir)
            cfg = RecognizerConfig(**old)
        else:
            saved.write_text(
                json.dumps(asdict(cfg), ensure_ascii=False, indent=1), encoding="utf-8"
            )
        self.cfg = cfg
        self.charset = Charset(cfg.charset)
        self.split = load_split(split_file)
        train_ids = self.split["train"]
        self.dev_ids = train_ids[len(train_ids) - cfg.dev_receipts :] if cfg.dev_receipts else []
        self.train_ids = train_ids[: len(train_ids) - len(self.dev_ids)]
        self.sroie_root = sroie_root
        self.model = build_model(cfg, self.charset.num_classes)
        lr = tf.keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate, decay_steps=cfg.schedule_epochs * cfg.steps_per_epoch, alpha=0.05
        )
        self.optimizer = tf.keras.optimizers.Adam(lr, clipnorm=5.0)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best_cer = tf.Variable(1e9, dtype=tf.float64, trainable=False)
        self.ckpt = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, epoch=self.epoch, best_cer=self.best_cer
        )
        self.manager = tf.train.CheckpointManager(self.ckpt, str(run_dir / "ckpt"), max_to_keep=3)
        if self.manager.latest_checkpoint:
            self.ckpt.restore(self.manager.latest_checkpoint)
            logger.info(
                "resumed %s at epoch %d (best dev CER %.4f)",
                self.manager.latest_checkpoint,
                int(self.epoch.numpy()),
                float(self.best_cer.numpy()),
            )
        self._step = self._make_step()

    def _make_step(self) -> Callable[..., Any]:
        spec = [
            tf.TensorSpec((None, self.cfg.height, None, 1), tf.float32),
            tf.TensorSpec((None, None), tf.int32),
            tf.TensorSpec((None,), tf.int32),
        ]

        @tf.function(input_signature=spec)  # type: ignore[untyped-decorator]
        def step(images: tf.Tensor, labels: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                logits = self.model(images, training=True)
                steps = tf.fill([tf.shape(logits)[0]], tf.shape(logits)[1])
                loss = tf.reduce_mean(
                    tf.nn.ctc_loss(
                        labels, logits, lengths, steps, logits_time_major=False, blank_index=0
                    )
                )
            grads = tape.gradient(loss, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
            return loss

        return step  # type: ignore[no-any-return]

    def validation_sets(self) -> dict[str, list[tuple[np.ndarray, str]]]:
        """Fixed selection lines: a sample of the held-out SROIE train crops, synthetic lines."""
        real = [
            (i, t)
            for i, t, _ in sroie_crops(self.dev_ids, self.charset, self.cfg.height, self.sroie_root)
        ]
        random.Random(0).shuffle(real)
        synth = [
            generate_line(SYNTH_VAL_SEED + k, self.cfg.height)
            for k in range(self.cfg.val_synth_lines)
        ]
        return {
            "sroie_dev": real[: self.cfg.dev_real_lines],
            "synth_val": [s for s in synth if fits(*s)],
        }

    def evaluate(
        self, lines: list[tuple[np.ndarray, str]], case_insensitive: bool
    ) -> dict[str, float]:
        predictions = predict(
            lambda x: self.model(x, training=False).numpy(), lines, self.charset, batch=32
        )
        return score(predictions, [t for _, t in lines], case_insensitive)

    def warm_start(self, tflite: Path, calibration_batches: int = 8) -> dict[str, float]:
        """Start this new run from a published recognizer .tflite instead of from zero.

        The weights come from the .tflite (`models.training.from_tflite`); its batch norms are
        calibrated on a few training batches (SROIE train crops + synthetic lines, never dev or
        val). The initialized model and the .tflite are then both scored on the dev lines: the
        warm start must reproduce the published model, else TfliteMismatch. It becomes the
        run's best weights so far. Returns the figures.
        """
        entry = published_entry(tflite)
        if entry and entry.get("charset") not in {None, self.cfg.charset}:
            raise TfliteMismatch(f"{tflite} was trained with another charset than this run's")
        real = sroie_crops(self.train_ids[:40], self.charset, self.cfg.height, self.sroie_root)
        batches = training_batches(
            real,
            self.charset,
            self.cfg.batch_size,
            seed=0,
            height=self.cfg.height,
            real_share=self.cfg.real_share,
            forbidden_ids=frozenset(self.split["val"]) | frozenset(self.dev_ids),
        )
        init_from_tflite(
            self.model, tflite, (next(batches).images for _ in range(calibration_batches))
        )
        dev = self.validation_sets()["sroie_dev"]
        truths = [t for _, t in dev]
        ours = predict(lambda x: self.model(x, training=False).numpy(), dev, self.charset, 32)
        theirs = predict(tflite_runner(tflite), dev, self.charset)
        init_cer = score(ours, truths, case_insensitive=True)["cer"]
        figures = {
            "init_dev_cer": init_cer,
            "tflite_dev_cer": score(theirs, truths, case_insensitive=True)["cer"],
            "same_text": float(np.mean([a == b for a, b in zip(ours, theirs, strict=True)]))
            if dev
            else 1.0,
        }
        logger.info("warm start from %s: %s", tflite, figures)
        # int8 activations make the .tflite differ a little from its float reading; a wrong
        # mapping differs on most lines.
        if figures["same_text"] < WARM_SAME_TEXT or figures["init_dev_cer"] > (
            figures["tflite_dev_cer"] + WARM_CER_SLACK
        ):
            raise TfliteMismatch(f"the model initialized from {tflite} does not reproduce it")
        # The starting point is the run's first candidate: an epoch must beat the published
        # model on dev to become best.weights.h5 (the first epochs after a restart are worse).
        self.best_cer.assign(init_cer)
        self.model.save_weights(str(self.run_dir / "best.weights.h5"))
        return figures

    def train_crops(self) -> list[tuple[np.ndarray, str, str]]:
        """The real SROIE train lines this run trains on, stored with the room its box jitter
        cuts into (`data.crop_room`): (crop, text, receipt id)."""
        return sroie_crops(
            self.train_ids,
            self.charset,
            self.cfg.height,
            self.sroie_root,
            crop_room(self.cfg.box_jitter),
        )

    def fit(self, epochs: int) -> None:
        """Train until `epochs` epochs are done in this folder; checkpoint and log after each."""
        real = self.train_crops()
        logger.info(
            "training on %d real SROIE train lines (%d receipts) + synthetic lines",
            len(real),
            len(self.train_ids),
        )
        val = self.validation_sets()
        start = int(self.epoch.numpy())
        batches = _prefetch(
            training_batches(
                real,
                self.charset,
                self.cfg.batch_size,
                seed=start + 1,
                height=self.cfg.height,
                real_share=self.cfg.real_share,
                forbidden_ids=frozenset(self.split["val"]) | frozenset(self.dev_ids),
                box_jitter=self.cfg.box_jitter,
            )
        )
        for epoch in range(start, epochs):
            t0, losses = time.monotonic(), []
            for k in range(self.cfg.steps_per_epoch):
                b = next(batches)
                losses.append(float(self._step(b.images, b.labels, b.label_lengths)))
                if k % 50 == 0:
                    logger.info(
                        "epoch %d step %d loss %.3f", epoch + 1, k, float(np.mean(losses[-50:]))
                    )
            real_m = self.evaluate(val["sroie_dev"], case_insensitive=True)
            synth_m = self.evaluate(val["synth_val"], case_insensitive=False)
            self.epoch.assign(epoch + 1)
            record = {
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)),
                "seconds": round(time.monotonic() - t0, 1),
                "sroie_dev_cer": real_m["cer"],
                "sroie_dev_exact": real_m["exact"],
                "synth_val_cer": synth_m["cer"],
                "synth_val_exact": synth_m["exact"],
            }
            if real_m["cer"] < float(self.best_cer.numpy()):
                self.best_cer.assign(real_m["cer"])
                self.model.save_weights(str(self.run_dir / "best.weights.h5"))
            self.manager.save()
            with (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
            logger.info("epoch %d done: %s", epoch + 1, record)
