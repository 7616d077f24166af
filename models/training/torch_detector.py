"""The text-line detector trained with PyTorch on a machine that has a GPU but no TensorFlow.

The detector (`models.training.detector.build_model`: a separable encoder to stride 32, an
FPN decoder back to stride 2, a transposed convolution and two convolutions to full-resolution
core logits) mirrored layer for layer; how a mirrored run goes (pack here, fit there, unpack
here) and the fit loop are `models.training.torch_mirror`'s. This module adds the detector's own
parts:

- its network. Keras pads a stride-2 'same' convolution on an even size by one pixel at the
  bottom and right only, PyTorch's `padding=1` on both sides: the mirror pads as Keras does
  (`_same_pad`), else every stride-2 feature would sit half a pixel off;
- its data: the SROIE train pages, scaled to 480 pixels wide (the widest the training jitter
  asks for, 1.25 x 384) and kept as JPEG (471 pages in about 30 MB, so they travel), and the
  flat synthetic pages, made in the workers by the Keras trainer's own
  `models.training.detector_data.batches` (windows, targets, loss weights, fading);
- its loss (weighted cross-entropy plus dice, as `models.training.detector._loss`) and its
  merit: dev F1 at IoU 0.5 of the boxes the engine would read (`detector_metrics.dev_score`).

The mirror is checked by `tests/models/training/test_torch_detector.py` (same maps as the Keras
model on the same weights, where both frameworks are installed).
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.litert.textmap import page_scale
from models.training import torch_mirror as mirror
from models.training.detector_data import Page, batches
from models.training.detector_metrics import core_map, dev_score
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

#: `fit`'s defaults (a GPU takes far larger batches than the CPU run's 8).
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
#: Packed pages are this wide at most: the training jitter scales pages to 0.8-1.25 x 384.
PACK_WIDTH = 480
PACK_QUALITY = 80


# ---- pages on disk ---------------------------------------------------------------------------


def save_pages(path: Path, pages: list[Page], width: int = PACK_WIDTH) -> None:
    """Pages scaled down to `width` (never up) as JPEG, with their boxes, in one .npz."""
    blobs, boxes, counts, ids = [], [], [], []
    for page in pages:
        h, w = page.gray.shape
        ps = page_scale(w, h, min(width, w), max_side=10**6)
        gray = cv2.resize(page.gray, (ps.width, ps.height), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, PACK_QUALITY])
        if not ok:
            raise ValueError(f"page {page.id} could not be encoded")
        blobs.append(jpeg.reshape(-1))
        boxes += [[v * ps.scale for v in box] for box in page.boxes]
        counts.append(len(page.boxes))
        ids.append(page.id)
    np.savez(
        path,
        jpeg=np.concatenate(blobs) if blobs else np.zeros(0, np.uint8),
        sizes=np.array([len(b) for b in blobs], np.int64),
        boxes=np.array(boxes, np.float32).reshape(-1, 4),
        counts=np.array(counts, np.int32),
        ids=np.array(json.dumps(ids)),
    )


def load_pages(path: Path) -> list[Page]:
    """The pages `save_pages` wrote."""
    with np.load(path) as f:
        jpeg, sizes, boxes, counts = f["jpeg"], f["sizes"], f["boxes"], f["counts"]
        ids = json.loads(str(f["ids"]))
    out, at, box_at = [], 0, 0
    for page_id, size, count in zip(ids, sizes.tolist(), counts.tolist(), strict=True):
        gray = cv2.imdecode(jpeg[at : at + size], cv2.IMREAD_GRAYSCALE)
        page_boxes = [tuple(float(v) for v in b) for b in boxes[box_at : box_at + count]]
        out.append(Page(page_id, gray, page_boxes))  # type: ignore[arg-type]
        at, box_at = at + size, box_at + count
    return out


# ---- pack and unpack (TensorFlow side) -------------------------------------------------------


def pack(run_dir: Path, out: Path, init_tflite: Path | None) -> dict[str, Any]:
    """Write the folder `fit` needs from a Keras detector run (new or existing).

    The run's weights are its best.weights.h5, else (a new run) the published `init_tflite`
    warm-started as `receipts train detector --init-tflite` does, else the fresh network of the
    run's config.json (a run from scratch: write that config first to change the network).
    """
    from models.training.detector import DetectorConfig, DetectorTrainer
    from models.training.detector_data import sroie_pages

    trainer = DetectorTrainer(run_dir, DetectorConfig())
    best = run_dir / "best.weights.h5"
    figures: dict[str, Any] = {}
    if best.exists():
        trainer.model.load_weights(str(best))
        figures["start"] = str(best)
    elif init_tflite is not None:
        figures = trainer.warm_start(init_tflite)
    else:
        figures["start"] = "fresh network"
    forbidden = set(trainer.split["val"]) | set(trainer.dev_ids)
    if forbidden & set(trainer.train_ids):  # the ids come from the split; be sure
        raise ValueError("dev or validation receipts among the training pages")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(trainer.cfg)))
    np.savez(out / "init.npz", *[np.asarray(w) for w in trainer.model.get_weights()])
    real = sroie_pages(trainer.train_ids, trainer.sroie_root)
    save_pages(out / "real.npz", real)
    save_pages(out / "dev.npz", sroie_pages(trainer.dev_ids, trainer.sroie_root))
    copy_fonts(out)
    logger.info("packed %s: %d real pages, %s", out, len(real), figures)
    return {"real_pages": len(real), **figures}


def unpack(weights: Path, run_dir: Path) -> None:
    """Write `fit`'s weights (Keras order) as the Keras run's best.weights.h5."""
    from models.training.detector import DetectorConfig, DetectorTrainer

    trainer = DetectorTrainer(run_dir, DetectorConfig())
    trainer.model.set_weights(load_npz_list(weights))
    trainer.model.save_weights(str(run_dir / "best.weights.h5"))


# ---- the PyTorch mirror ----------------------------------------------------------------------


def _same_pad(x: Any, kernel: int, stride: int) -> Any:
    """Pad as Keras' 'same' does: the extra pixel of an odd total at the bottom and right."""
    import torch.nn.functional as F

    pads = []
    for size in (x.shape[3], x.shape[2]):  # F.pad takes the last dimension first
        total = max(kernel - (size % stride or stride), 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def build_torch_model(cfg: dict[str, Any]) -> Any:
    """The Keras detector (`build_model`) as a torch.nn.Module: pages [B, H, W, 1] (H and W
    multiples of 32) -> core logits [B, H, W, 1]. `slots()` lists its tensors in Keras order
    (`torch_mirror.set_keras_weights`, `keras_weights`)."""
    import torch
    from torch import nn

    def bn(ch: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(ch, eps=BN_EPSILON, momentum=BN_MOMENTUM)

    class SepBlock(nn.Module):  # type: ignore[misc]
        """`models.training.blocks.sep_block`."""

        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.stride = stride
            self.depthwise = nn.Conv2d(cin, cin, 3, stride=stride, groups=cin, bias=False)
            self.bn1 = bn(cin)
            self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
            self.bn2 = bn(cout)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.depthwise(_same_pad(x, 3, self.stride))
            x = torch.clamp(self.bn1(x), 0.0, 6.0)
            return torch.clamp(self.bn2(self.pointwise(x)), 0.0, 6.0)

        def slots(self) -> list[Slot]:
            return [
                (self.depthwise.weight, "depthwise2d"),
                *batch_norm_slots(self.bn1),
                (self.pointwise.weight, "conv2d"),
                *batch_norm_slots(self.bn2),
            ]

    class Detector(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            channels, dec = list(cfg["channels"]), cfg["decoder"]
            self.stem = nn.Conv2d(1, channels[0], 3, stride=2, bias=False)
            self.stem_bn = bn(channels[0])
            self.stages = nn.ModuleList(
                nn.Sequential(SepBlock(cin, cout, 2), SepBlock(cout, cout, 1))
                for cin, cout in itertools.pairwise(channels)
            )
            self.top = nn.Conv2d(channels[-1], dec, 1, bias=False)
            self.ups = nn.ModuleList(
                nn.ConvTranspose2d(dec, dec, 2, stride=2, bias=False) for _ in channels[:-1]
            )
            self.laterals = nn.ModuleList(
                nn.Conv2d(ch, dec, 1, bias=False) for ch in reversed(channels[:-1])
            )
            self.merges = nn.ModuleList(SepBlock(dec, dec, 1) for _ in channels[:-1])
            self.head_up = nn.ConvTranspose2d(dec, dec // 2, 2, stride=2)
            self.head_conv = nn.Conv2d(dec // 2, dec // 2, 3, padding=1)
            self.logits = nn.Conv2d(dec // 2, 1, 1)

        def forward(self, pages: torch.Tensor) -> torch.Tensor:
            x = self.stem(_same_pad(pages.permute(0, 3, 1, 2), 3, 2))
            x = torch.clamp(self.stem_bn(x), 0.0, 6.0)
            skips = [x]
            for stage in self.stages:
                x = stage(x)
                skips.append(x)
            y = self.top(skips[-1])
            for up, lateral, merge, skip in zip(
                self.ups, self.laterals, self.merges, reversed(skips[:-1]), strict=True
            ):
                y = merge(up(y) + lateral(skip))
            y = torch.relu(self.head_up(y))
            y = torch.relu(self.head_conv(y))
            return self.logits(y).permute(0, 2, 3, 1)

        def slots(self) -> list[Slot]:
            """The tensors in Keras' weight order (its layers in the order `build_model`
            makes them)."""
            out: list[Slot] = [(self.stem.weight, "conv2d"), *batch_norm_slots(self.stem_bn)]
            for stage in self.stages:
                out += [s for block in stage for s in block.slots()]
            out.append((self.top.weight, "conv2d"))
            for up, lateral, merge in zip(self.ups, self.laterals, self.merges, strict=True):
                out += [(up.weight, "conv_transpose"), (lateral.weight, "conv2d")]
                out += merge.slots()
            out += [(self.head_up.weight, "conv_transpose"), (self.head_up.bias, "same")]
            out += [(self.head_conv.weight, "conv2d"), (self.head_conv.bias, "same")]
            out += [(self.logits.weight, "conv2d"), (self.logits.bias, "same")]
            return out

    return Detector()


# ---- fit (PyTorch side) ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Stream:
    """What a batch worker makes: `detector_data.batches` of these pages with this config."""

    pages: Path
    cfg: dict[str, Any]
    batch_size: int


def _worker(stream: _Stream, seed: int, queue: Any) -> None:
    """Put training batches on the queue, forever: uint8 windows, uint8 core targets and
    float16 loss weights, to keep the pipe light."""
    quiet_worker()
    cfg = stream.cfg
    real = load_pages(stream.pages)
    for images, targets in batches(
        real,
        batch_size=stream.batch_size,
        seed=seed,
        synth_share=cfg["synth_share"],
        synth_every=cfg["synth_every"],
        crop=cfg["crop"],
        target_width=cfg["target_width"],
        short_weight=cfg["short_weight"],
        gap_weight=cfg["gap_weight"],
        fade=cfg["fade"],
    ):
        queue.put(
            (
                np.rint(images[..., 0] * 255).astype(np.uint8),
                targets[..., 0].astype(np.uint8),
                targets[..., 1].astype(np.float16),
            )
        )


def loss(logits: Any, target: Any, weight: Any) -> Any:
    """`models.training.detector._loss` on logits [B, H, W]: the pixels' cross-entropy weighted
    by `weight` plus dice on the probabilities."""
    import torch
    import torch.nn.functional as F

    pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    bce = (weight * pixel).sum() / weight.sum().clamp_min(1e-6)
    prob = torch.sigmoid(logits)
    inter = (target * prob).sum(dim=(1, 2))
    total = (target + prob).sum(dim=(1, 2))
    dice = 1.0 - ((2 * inter + 1.0) / (total + 1.0)).mean()
    return bce + dice


def _step(model: Any, optimizer: Any, batch: tuple[np.ndarray, ...], device: Any) -> float:
    """One optimizer step on a batch (uint8 windows, uint8 targets, float16 weights)."""
    import torch

    images, targets, weights = (torch.from_numpy(a).to(device, non_blocking=True) for a in batch)
    x = images.float().div_(255)[..., None]
    value = loss(model(x)[..., 0].float(), targets.float(), weights.float())
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    return float(value.detach())


def _dev_f1(model: Any, dev: list[Page], cfg: dict[str, Any], device: Any) -> dict[str, float]:
    """Dev precision, recall and F1 as the Keras trainer's epochs score them."""
    import torch

    def run(page: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = model(torch.from_numpy(page).to(device))
        return np.asarray(torch.sigmoid(logits).float().cpu().numpy())

    model.eval()
    maps = [core_map(run, page, cfg["target_width"], cfg["max_side"]) for page in dev]
    model.train()
    return dev_score(maps, dev)


def fit(pack_dir: Path, out: Path, opts: FitOptions, state_in: Path | None = None) -> FitState:
    """Train the mirror for `opts.minutes` (or until the budget is spent); write to `out`:
    best.npz and last.npz (Keras-order weights), state.pt (resumable), log.jsonl. The merit is
    the dev F1."""
    cfg = json.loads((pack_dir / "config.json").read_text())
    model = build_torch_model(cfg)
    optimizer, state = mirror.restore(model, pack_dir, opts, state_in=state_in, out=out)
    device = next(model.parameters()).device
    dev = load_pages(pack_dir / "dev.npz")

    def evaluate() -> tuple[float, dict[str, Any]]:
        figures = _dev_f1(model, dev, cfg, device)
        return figures["f1"], {f"dev_{k}": v for k, v in figures.items() if k != "pages"}

    loop = mirror.Loop(model, optimizer, lambda b: _step(model, optimizer, b, device), evaluate)
    stream = _Stream(pack_dir / "real.npz", cfg, opts.batch_size)
    workers = start_workers(_worker, stream, opts, state.calls + 1)
    return mirror.train(loop, state, opts, out, workers)


def main(argv: list[str] | None = None) -> None:
    mirror.main(
        mirror.Mirror(__doc__.split("\n\n")[0], pack, fit, unpack, BATCH_SIZE, LEARNING_RATE),
        argv,
    )


if __name__ == "__main__":
    main()
