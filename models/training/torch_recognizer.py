"""The recognizer trained with PyTorch on a machine that has a GPU but no TensorFlow.

The recognizer (`models.training.recognizer.build_model`: a conv stack, three separable 1-D
blocks, a dense layer) mirrored layer for layer; how a mirrored run goes (pack here, fit there,
unpack here) and the fit loop are `models.training.torch_mirror`'s. This module adds the
recognizer's own parts: its network, its data (the SROIE train crops, kept to 5 bits a pixel so
they travel, and synthetic lines made by `models.training.data.training_batches` in the
workers), its CTC step, and dev CER (case-insensitive, greedy) as the merit.

The mirror is checked by `tests/models/training/test_torch_recognizer.py` (same outputs as the
Keras model on the same weights, where both frameworks are installed).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.training import torch_mirror as mirror
from models.training.charset import Charset
from models.training.data import training_batches
from models.training.metrics import predict, score
from models.training.torch_mirror import (
    BN_EPSILON,
    BN_MOMENTUM,
    FitOptions,
    FitState,
    Slot,
    batch_norm_slots,
    copy_fonts,
    load_npz_list,
    quiet_worker,
    start_workers,
)

logger = logging.getLogger(__name__)

POOLS = ((2, 2), (2, 2), None, (2, 1), (2, 1))
#: `fit`'s defaults: the published recognizer's GPU run (models/training/TRAINING.md).
BATCH_SIZE = 128
LEARNING_RATE = 8e-4


# ---- crops on disk ---------------------------------------------------------------------------


def save_crops(path: Path, lines: list[tuple[np.ndarray, str]], bits: int = 8) -> None:
    """Line crops (uint8, one height) and texts as one compressed .npz, each pixel kept to
    `bits` bits (the scans' JPEG noise does not compress: 5 bits make the 25,000 SROIE train
    crops 41 MB instead of 84, small enough to travel; the training jitter of contrast and
    noise is far larger than a step of 8 grey levels)."""
    widths = np.array([img.shape[1] for img, _ in lines], np.int32)
    pixels = np.concatenate([img.reshape(-1) for img, _ in lines]) if lines else np.zeros(0)
    height = lines[0][0].shape[0] if lines else 0
    np.savez_compressed(
        path,
        pixels=(pixels.astype(np.uint8) >> (8 - bits)),
        bits=np.int32(bits),
        widths=widths,
        height=np.int32(height),
        texts=np.array(json.dumps([t for _, t in lines], ensure_ascii=False)),
    )


def load_crops(path: Path) -> list[tuple[np.ndarray, str]]:
    """The crops `save_crops` wrote."""
    with np.load(path) as f:
        pixels, widths, height = f["pixels"], f["widths"], int(f["height"])
        texts = json.loads(str(f["texts"]))
        shift = 8 - int(f["bits"])
    if shift:  # back to the middle of each kept step
        pixels = (pixels << shift) | (1 << (shift - 1))
    out, at = [], 0
    for w, text in zip(widths.tolist(), texts, strict=True):
        out.append((pixels[at : at + height * w].reshape(height, w), text))
        at += height * w
    return out


# ---- pack and unpack (TensorFlow side) -------------------------------------------------------


def pack(run_dir: Path, out: Path, init_tflite: Path | None) -> dict[str, Any]:
    """Write the folder `fit` needs from a Keras recognizer run (new or existing).

    The run's weights are its best.weights.h5, or (a new run) the published `init_tflite`
    warm-started as `receipts train recognizer --init-tflite` does.
    """
    from models.training.recognizer import RecognizerConfig, Trainer

    trainer = Trainer(run_dir, RecognizerConfig())
    best = run_dir / "best.weights.h5"
    figures: dict[str, Any] = {}
    if best.exists():
        trainer.model.load_weights(str(best))
    elif init_tflite is not None:
        figures = trainer.warm_start(init_tflite)
    else:
        raise ValueError(f"{run_dir} has no best.weights.h5; name a .tflite to start from")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(trainer.cfg), ensure_ascii=False))
    np.savez(out / "init.npz", *[np.asarray(w) for w in trainer.model.get_weights()])
    real = trainer.train_crops()
    forbidden = set(trainer.split["val"]) | set(trainer.dev_ids)
    if any(rid in forbidden for _, _, rid in real):  # the ids come from the split; be sure
        raise ValueError("dev or validation receipts among the training crops")
    save_crops(out / "real.npz", [(img, text) for img, text, _ in real], bits=5)
    save_crops(out / "dev.npz", trainer.validation_sets()["sroie_dev"])
    copy_fonts(out)
    logger.info("packed %s: %d real crops, %s", out, len(real), figures)
    return {"real_lines": len(real), **figures}


def unpack(weights: Path, run_dir: Path) -> None:
    """Write `fit`'s weights (Keras order) as the Keras run's best.weights.h5."""
    from models.training.recognizer import RecognizerConfig, Trainer

    trainer = Trainer(run_dir, RecognizerConfig())
    trainer.model.set_weights(load_npz_list(weights))
    trainer.model.save_weights(str(run_dir / "best.weights.h5"))


# ---- the PyTorch mirror ----------------------------------------------------------------------


def build_torch_model(cfg: dict[str, Any], num_classes: int) -> Any:
    """The Keras recognizer (`build_model`) as a torch.nn.Module, input [B, H, W, 1];
    `slots()` lists its tensors in Keras order (`torch_mirror.set_keras_weights`)."""
    import torch
    from torch import nn

    class Recognizer(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            convs: list[nn.Module] = []
            prev = 1
            for ch, pool in zip(cfg["channels"], POOLS, strict=True):
                convs += [
                    nn.Conv2d(prev, ch, 3, padding=1, bias=False),
                    nn.BatchNorm2d(ch, eps=BN_EPSILON, momentum=BN_MOMENTUM),
                    nn.ReLU(),
                ]
                if pool:
                    convs.append(nn.MaxPool2d(pool))
                prev = ch
            context = cfg["context"]
            convs += [
                nn.Conv2d(prev, context, (cfg["height"] // 16, 1), bias=False),
                nn.BatchNorm2d(context, eps=BN_EPSILON, momentum=BN_MOMENTUM),
                nn.ReLU(),
            ]
            self.convs = nn.Sequential(*convs)
            self.blocks = nn.ModuleList(
                nn.Sequential(
                    nn.Conv1d(context, context, 7, padding=3, groups=context, bias=False),
                    nn.Conv1d(context, context, 1, bias=False),
                    nn.BatchNorm1d(context, eps=BN_EPSILON, momentum=BN_MOMENTUM),
                    nn.ReLU(),
                )
                for _ in range(cfg["context_blocks"])
            )
            self.dropout = nn.Dropout(0.1)
            self.logits = nn.Linear(context, num_classes)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = self.convs(images.permute(0, 3, 1, 2))  # [B, C, 1, T]
            x = x.squeeze(2)
            for block in self.blocks:
                x = x + block(x)
            return self.logits(self.dropout(x.transpose(1, 2)))  # [B, T, classes]

        def slots(self) -> list[Slot]:
            """The tensors in Keras' weight order, each with how its layout differs."""
            out: list[Slot] = []
            for layer in list(self.convs) + [m for b in self.blocks for m in b]:
                kind = type(layer).__name__
                if kind == "Conv2d":
                    out.append((layer.weight, "conv2d"))
                elif kind == "Conv1d":
                    out.append((layer.weight, "depthwise" if layer.groups > 1 else "pointwise"))
                elif kind.startswith("BatchNorm"):
                    out += batch_norm_slots(layer)
            return [*out, (self.logits.weight, "dense"), (self.logits.bias, "same")]

    return Recognizer()


# ---- fit (PyTorch side) ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Stream:
    """What a batch worker makes: batches of `batch_size` from these crops and seed."""

    real: list[tuple[np.ndarray, str, str]]
    chars: str
    batch_size: int
    height: int
    real_share: float
    box_jitter: float = 0.0


def _worker(stream: _Stream, seed: int, queue: Any) -> None:
    """Put training batches (uint8 images to keep the pipe light) on the queue, forever."""
    quiet_worker()
    batches = training_batches(
        stream.real,
        Charset(stream.chars),
        stream.batch_size,
        seed=seed,
        height=stream.height,
        real_share=stream.real_share,
        box_jitter=stream.box_jitter,
    )
    for b in batches:
        images = np.rint(b.images[..., 0] * 255).astype(np.uint8)
        queue.put((images, b.labels, b.label_lengths))


def _dev_cer(model: Any, dev: list[tuple[np.ndarray, str]], charset: Charset, device: Any) -> float:
    """Case-insensitive greedy CER on the dev crops, read as the Keras trainer reads them."""
    import torch

    def run(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = model(torch.from_numpy(images).to(device))
        return np.asarray(logits.float().cpu().numpy())

    model.eval()
    texts = predict(run, dev, charset, batch=64)
    model.train()
    return score(texts, [t for _, t in dev], case_insensitive=True)["cer"]


def _ctc_step(model: Any, optimizer: Any, batch: tuple[np.ndarray, ...], device: Any) -> float:
    """One optimizer step on a batch (uint8 images, labels, label lengths); its mean CTC loss
    per line, as the Keras trainer's `tf.nn.ctc_loss` mean."""
    import torch
    import torch.nn.functional as F

    images, labels, lengths = batch
    x = torch.from_numpy(images).to(device, non_blocking=True).float().div_(255)
    log_probs = F.log_softmax(model(x[..., None]).float(), dim=-1).transpose(0, 1)
    steps = torch.full((x.shape[0],), log_probs.shape[0], dtype=torch.long)
    loss = F.ctc_loss(
        log_probs,
        torch.from_numpy(labels).to(device),
        steps,
        torch.from_numpy(lengths).long(),
        blank=0,
        reduction="none",
        zero_infinity=True,
    ).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    return float(loss.detach())


def fit(pack_dir: Path, out: Path, opts: FitOptions, state_in: Path | None = None) -> FitState:
    """Train the mirror for `opts.minutes` (or until the budget is spent); write to `out`:
    best.npz and last.npz (Keras-order weights), state.pt (resumable), log.jsonl. The merit is
    minus the dev CER."""
    cfg = json.loads((pack_dir / "config.json").read_text())
    charset = Charset(cfg["charset"])
    model = build_torch_model(cfg, charset.num_classes)
    optimizer, state = mirror.restore(model, pack_dir, opts, state_in=state_in, out=out)
    device = next(model.parameters()).device
    dev = load_crops(pack_dir / "dev.npz")

    def evaluate() -> tuple[float, dict[str, Any]]:
        dev_cer = _dev_cer(model, dev, charset, device)
        return -dev_cer, {"dev_cer": dev_cer}

    loop = mirror.Loop(model, optimizer, lambda b: _ctc_step(model, optimizer, b, device), evaluate)
    stream = _Stream(
        [(img, text, "train") for img, text in load_crops(pack_dir / "real.npz")],
        cfg["charset"],
        opts.batch_size,
        cfg["height"],
        cfg["real_share"],
        cfg.get("box_jitter", 0.0),
    )
    workers = start_workers(_worker, stream, opts, state.calls + 1)
    return mirror.train(loop, state, opts, out, workers)


def main(argv: list[str] | None = None) -> None:
    mirror.main(
        mirror.Mirror(__doc__.split("\n\n")[0], pack, fit, unpack, BATCH_SIZE, LEARNING_RATE),
        argv,
    )


if __name__ == "__main__":
    main()
