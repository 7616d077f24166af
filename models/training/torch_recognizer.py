"""The recognizer trained with PyTorch on a machine that has a GPU but no TensorFlow.

Why a second trainer: the GPU machines this team can borrow carry PyTorch, CUDA and NumPy but
no TensorFlow, and nothing can be installed there from the network (a TensorFlow wheel is also
far too large to carry). The recognizer is small (a conv stack, three separable 1-D blocks, a
dense layer: `models.training.recognizer.build_model`), so this module mirrors it layer for
layer in PyTorch. The Keras model stays the one that is exported and shipped: a run goes

1. `pack` (here, TensorFlow): the Keras run's starting weights (a published .tflite or a run's
   best weights), the SROIE train crops, the dev crops and the font files the synthetic lines
   use, written to one folder that travels to the GPU machine;
2. `fit` (there, PyTorch): train for a wall-clock budget with the same data code as the
   Keras trainer (`models.training.data.training_batches` in worker processes), scoring dev
   CER as it goes; writes the best and the last weights in Keras order, and a resumable state;
3. `unpack` (here, TensorFlow): the weights into a Keras run folder's `best.weights.h5`, after
   which `receipts train recognizer --out RUN --export-only` exports and scores it as always.

The mirror is checked by `tests/models/test_torch_recognizer.py` (same outputs as the Keras
model on the same weights, where both frameworks are installed). The learning rate follows a
cosine over the run's *time* budget, not a step count, since the number of steps a machine
manages is not known beforehand; the budget is kept in the state, so a run split over several
borrowed sessions follows one schedule.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.training.charset import Charset
from models.training.data import training_batches
from models.training.metrics import predict, score

logger = logging.getLogger(__name__)

POOLS = ((2, 2), (2, 2), None, (2, 1), (2, 1))
#: Keras' batch-norm defaults, which the mirror must keep so the statistics mean the same.
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.01  # PyTorch's momentum is 1 - Keras' 0.99


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
    from models.synth.fonts import available_fonts
    from models.training.data import sroie_crops
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
    real = sroie_crops(trainer.train_ids, trainer.charset, trainer.cfg.height, trainer.sroie_root)
    forbidden = set(trainer.split["val"]) | set(trainer.dev_ids)
    if any(rid in forbidden for _, _, rid in real):  # the ids come from the split; be sure
        raise ValueError("dev or validation receipts among the training crops")
    save_crops(out / "real.npz", [(img, text) for img, text, _ in real], bits=5)
    save_crops(out / "dev.npz", trainer.validation_sets()["sroie_dev"])
    fonts = out / "fonts"
    fonts.mkdir(exist_ok=True)
    for face in available_fonts():
        shutil.copy2(face.path, fonts / Path(face.path).name)
    logger.info("packed %s: %d real crops, %s", out, len(real), figures)
    return {"real_lines": len(real), **figures}


def unpack(weights: Path, run_dir: Path) -> None:
    """Write `fit`'s weights (Keras order) as the Keras run's best.weights.h5."""
    from models.training.recognizer import RecognizerConfig, Trainer

    trainer = Trainer(run_dir, RecognizerConfig())
    with np.load(weights) as f:
        arrays = [f[f"arr_{k}"] for k in range(len(f.files))]
    trainer.model.set_weights(arrays)
    trainer.model.save_weights(str(run_dir / "best.weights.h5"))


# ---- the PyTorch mirror ----------------------------------------------------------------------


@dataclass(frozen=True)
class FitOptions:
    """One `fit` call: its share of the run's time budget and the batches it trains on."""

    minutes: float
    budget_minutes: float
    batch_size: int = 128
    learning_rate: float = 8e-4
    warmup_steps: int = 300
    eval_every: int = 1000
    workers: int = 0  # 0: the machine's cores less two
    seed: int = 1


def build_torch_model(cfg: dict[str, Any], num_classes: int) -> Any:
    """The Keras recognizer (`build_model`) as a torch.nn.Module, input [B, H, W, 1]."""
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

    return Recognizer()


def _torch_slots(model: Any) -> list[tuple[Any, str]]:
    """The mirror's tensors in Keras' weight order, each with how its layout differs."""
    slots: list[tuple[Any, str]] = []
    for layer in list(model.convs) + [m for b in model.blocks for m in b]:
        kind = type(layer).__name__
        if kind == "Conv2d":
            slots.append((layer.weight, "conv2d"))
        elif kind == "Conv1d":
            slots.append((layer.weight, "depthwise" if layer.groups > 1 else "pointwise"))
        elif kind.startswith("BatchNorm"):
            slots += [
                (layer.weight, "same"),
                (layer.bias, "same"),
                (layer.running_mean, "same"),
                (layer.running_var, "same"),
            ]
    slots += [(model.logits.weight, "dense"), (model.logits.bias, "same")]
    return slots


# Keras layout -> PyTorch layout (and back with the inverse permutation)
_TO_TORCH = {
    "conv2d": (3, 2, 0, 1),
    "depthwise": (1, 2, 0),
    "pointwise": (2, 1, 0),
    "dense": (1, 0),
}


def set_keras_weights(model: Any, arrays: list[np.ndarray]) -> None:
    """Load weights in Keras order (`keras.Model.get_weights()`) into the mirror."""
    import torch

    slots = _torch_slots(model)
    if len(arrays) != len(slots):
        raise ValueError(f"{len(arrays)} Keras weights for a mirror of {len(slots)}")
    with torch.no_grad():
        for (tensor, kind), array in zip(slots, arrays, strict=True):
            value = array if kind == "same" else np.transpose(array, _TO_TORCH[kind])
            if tuple(value.shape) != tuple(tensor.shape):
                raise ValueError(f"a {kind} weight of {value.shape} for {tuple(tensor.shape)}")
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def keras_weights(model: Any) -> list[np.ndarray]:
    """The mirror's weights in Keras order and layout."""
    out = []
    for tensor, kind in _torch_slots(model):
        value = tensor.detach().cpu().numpy()
        if kind != "same":
            value = np.transpose(value, np.argsort(_TO_TORCH[kind]))
        out.append(np.ascontiguousarray(value, np.float32))
    return out


# ---- fit (PyTorch side) ----------------------------------------------------------------------


@dataclass
class FitState:
    """Where a run stands across `fit` calls (saved in state.pt)."""

    seconds: float = 0.0
    steps: int = 0
    best_cer: float = math.inf
    calls: int = 0


@dataclass(frozen=True)
class _Stream:
    """What a batch worker makes: batches of `batch_size` from these crops and seed."""

    real: list[tuple[np.ndarray, str, str]]
    chars: str
    batch_size: int
    height: int
    real_share: float


def _worker(stream: _Stream, seed: int, queue: Any) -> None:
    """Put training batches (uint8 images to keep the pipe light) on the queue, forever."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)
    batches = training_batches(
        stream.real,
        Charset(stream.chars),
        stream.batch_size,
        seed=seed,
        height=stream.height,
        real_share=stream.real_share,
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


def _learning_rate(opts: FitOptions, state: FitState) -> float:
    """Linear warm-up, then a cosine over the time budget down to a twentieth."""
    warm = min(1.0, (state.steps + 1) / opts.warmup_steps)
    progress = min(1.0, state.seconds / (opts.budget_minutes * 60))
    return opts.learning_rate * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


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


def _start_workers(stream: _Stream, opts: FitOptions, call: int) -> tuple[Any, list[Any]]:
    """One batch-making process per core less two, each with its own seed, so every call of a
    run draws fresh synthetic lines. Spawned, not forked: a process forked after OpenCV has
    started its thread pool can wait on it for ever."""

    workers = opts.workers or max(1, (os.cpu_count() or 2) - 2)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue(maxsize=8 * workers)
    procs = [
        ctx.Process(
            target=_worker, args=(stream, opts.seed * 100_000 + call * 1000 + k, queue), daemon=True
        )
        for k in range(workers)
    ]
    for p in procs:
        p.start()
    return queue, procs


def _next_batch(queue: Any, procs: list[Any]) -> tuple[np.ndarray, ...]:
    """The next batch from the workers; RuntimeError once none of them is alive (a worker
    that raised has printed its traceback), rather than waiting for ever."""
    import queue as queues

    while True:
        try:
            return queue.get(timeout=5)  # type: ignore[no-any-return]
        except queues.Empty:
            if not any(p.is_alive() for p in procs):
                codes = sorted({p.exitcode for p in procs})
                raise RuntimeError(f"every batch worker has died (exit codes {codes})") from None


def _restore(
    pack_dir: Path, cfg: dict[str, Any], opts: FitOptions, state_in: Path | None, out: Path
) -> tuple[Any, Any, FitState]:
    """The mirror with the pack's starting weights and a fresh Adam, or as a call left them."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_torch_model(cfg, Charset(cfg["charset"]).num_classes)
    with np.load(pack_dir / "init.npz") as f:
        set_keras_weights(model, [f[f"arr_{k}"] for k in range(len(f.files))])
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.learning_rate)
    if state_in is None:
        return model, optimizer, FitState()
    saved = torch.load(state_in, map_location=device, weights_only=False)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if (state_in.parent / "best.npz").exists():
        shutil.copy2(state_in.parent / "best.npz", out / "best.npz")
    state = FitState(**saved["state"])
    logger.info("resumed at %s", state)
    return model, optimizer, state


def fit(pack_dir: Path, out: Path, opts: FitOptions, state_in: Path | None = None) -> FitState:
    """Train the mirror for `opts.minutes` (or until the budget is spent); write to `out`:
    best.npz and last.npz (Keras-order weights), state.pt (resumable), log.jsonl."""
    import torch

    cfg = json.loads((pack_dir / "config.json").read_text())
    charset = Charset(cfg["charset"])
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    out.mkdir(parents=True, exist_ok=True)
    model, optimizer, state = _restore(pack_dir, cfg, opts, state_in, out)
    device = next(model.parameters()).device
    dev = load_crops(pack_dir / "dev.npz")
    if state.calls == 0:  # the starting weights are the first candidate
        state.best_cer = _dev_cer(model, dev, charset, device)
        np.savez(out / "best.npz", *keras_weights(model))
        logger.info("starting dev CER %.4f", state.best_cer)
    state.calls += 1
    stream = _Stream(
        [(img, text, "train") for img, text in load_crops(pack_dir / "real.npz")],
        cfg["charset"],
        opts.batch_size,
        cfg["height"],
        cfg["real_share"],
    )
    queue, procs = _start_workers(stream, opts, state.calls)
    t_start, waited = time.monotonic(), 0.0
    losses: list[float] = []

    def evaluate(log: Any) -> None:
        dev_cer = _dev_cer(model, dev, charset, device)
        record: dict[str, Any] = {
            "steps": state.steps,
            "minutes": round(state.seconds / 60, 2),
            "loss": float(np.mean(losses[-200:])) if losses else None,
            "lr": _learning_rate(opts, state),
            "dev_cer": dev_cer,
            "waited_for_data_s": round(waited, 1),
        }
        if dev_cer < state.best_cer:
            state.best_cer = dev_cer
            np.savez(out / "best.npz", *keras_weights(model))
            record["best"] = True
        log.write(json.dumps(record) + "\n")
        log.flush()
        logger.info("%s", record)

    try:
        with (out / "log.jsonl").open("a", encoding="utf-8") as log:
            while (
                time.monotonic() - t_start < opts.minutes * 60
                and state.seconds < opts.budget_minutes * 60
            ):
                t0 = time.monotonic()
                batch = _next_batch(queue, procs)
                waited += time.monotonic() - t0
                for group in optimizer.param_groups:
                    group["lr"] = _learning_rate(opts, state)
                losses.append(_ctc_step(model, optimizer, batch, device))
                state.steps += 1
                state.seconds += time.monotonic() - t0
                if state.steps % opts.eval_every == 0:
                    evaluate(log)
            evaluate(log)
    finally:
        for p in procs:
            p.terminate()
    np.savez(out / "last.npz", *keras_weights(model))
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": asdict(state)},
        out / "state.pt",
    )
    return state


def install_fonts(pack_dir: Path, target: Path = Path("/usr/local/share/fonts/receipts")) -> None:
    """Put the packed fonts where `models.synth.fonts` looks (the GPU machine has none)."""
    target.mkdir(parents=True, exist_ok=True)
    for f in (pack_dir / "fonts").iterdir():
        shutil.copy2(f, target / f.name)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="write a pack folder from a Keras run (TensorFlow)")
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--init-tflite", type=Path)
    f = sub.add_parser("fit", help="train the PyTorch mirror on a pack folder")
    f.add_argument("--pack", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--state", type=Path, help="a previous call's state.pt to resume from")
    f.add_argument("--minutes", type=float, required=True)
    f.add_argument("--budget-minutes", type=float, required=True)
    f.add_argument("--batch-size", type=int, default=FitOptions.batch_size)
    f.add_argument("--learning-rate", type=float, default=FitOptions.learning_rate)
    f.add_argument("--workers", type=int, default=0)
    f.add_argument("--install-fonts", action="store_true")
    u = sub.add_parser("unpack", help="write fit's weights into a Keras run (TensorFlow)")
    u.add_argument("--weights", type=Path, required=True)
    u.add_argument("--run", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "pack":
        print(json.dumps(pack(args.run, args.out, args.init_tflite)))
    elif args.command == "fit":
        if args.install_fonts:
            install_fonts(args.pack)
        opts = FitOptions(
            minutes=args.minutes,
            budget_minutes=args.budget_minutes,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            workers=args.workers,
        )
        print(json.dumps(asdict(fit(args.pack, args.out, opts, args.state))))
    else:
        unpack(args.weights, args.run)


if __name__ == "__main__":
    main()
