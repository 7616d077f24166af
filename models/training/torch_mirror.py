"""What the PyTorch mirrors of our Keras models share: weights in Keras order, a fit loop on a
wall-clock budget with batch-making worker processes, and a resumable state.

Why mirrors at all: the GPU machines this team can borrow carry PyTorch, CUDA and NumPy but no
TensorFlow, and nothing can be installed there from the network (a TensorFlow wheel is also far
too large to carry). Our networks are small, so each one that trains there is mirrored layer for
layer in PyTorch (`models.training.torch_recognizer`, `models.training.torch_detector`); the
Keras model stays the one that is exported and shipped. A run goes

1. `pack` (here, TensorFlow): the Keras run's starting weights (a published .tflite, a run's
   best weights, or a fresh network) and the real training and dev data, written to one folder
   that travels to the GPU machine (with the font files the synthetic data needs);
2. `fit` (there, PyTorch): train for a wall-clock budget with the Keras trainer's own data code
   in worker processes, scoring dev as it goes; writes the best and the last weights in Keras
   order, and a resumable state;
3. `unpack` (here, TensorFlow): the weights into a Keras run folder's `best.weights.h5`, after
   which `receipts train MODEL --out RUN --export-only` exports and scores it as always.

The learning rate follows a cosine over the run's *time* budget, not a step count, since the
number of steps a machine manages is not known beforehand; the budget is kept in the state, so
a run split over several 10-minute calls follows one schedule.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Keras' batch-norm defaults, which a mirror must keep so the statistics mean the same.
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.01  # PyTorch's momentum is 1 - Keras' 0.99

#: A mirror's tensor with how its Keras layout differs: one of `TO_TORCH`'s kinds, or "same".
Slot = tuple[Any, str]

#: Keras layout -> PyTorch layout (and back with the inverse permutation).
TO_TORCH = {
    "conv2d": (3, 2, 0, 1),  # (kh, kw, in, out) -> (out, in, kh, kw)
    "conv_transpose": (3, 2, 0, 1),  # (kh, kw, out, in) -> (in, out, kh, kw)
    "depthwise2d": (2, 3, 0, 1),  # (kh, kw, ch, 1) -> (ch, 1, kh, kw)
    "depthwise": (1, 2, 0),  # 1-D: (k, ch, 1) -> (ch, 1, k)
    "pointwise": (2, 1, 0),  # 1-D: (1, in, out) -> (out, in, 1)
    "dense": (1, 0),
}


def batch_norm_slots(layer: Any) -> list[Slot]:
    """A batch norm's four tensors in Keras order (gamma, beta, moving mean, moving variance)."""
    return [
        (layer.weight, "same"),
        (layer.bias, "same"),
        (layer.running_mean, "same"),
        (layer.running_var, "same"),
    ]


def set_keras_weights(model: Any, arrays: list[np.ndarray]) -> None:
    """Load weights in Keras order (`keras.Model.get_weights()`) into a mirror, a module whose
    `slots()` lists its tensors in that order. The list is taken at each call, never kept: a
    move to the GPU replaces a module's buffers (the batch norms' statistics) with new tensors,
    so a list taken before it would go on reading the starting statistics."""
    import torch

    slots = model.slots()
    if len(arrays) != len(slots):
        raise ValueError(f"{len(arrays)} Keras weights for a mirror of {len(slots)}")
    with torch.no_grad():
        for (tensor, kind), array in zip(slots, arrays, strict=True):
            value = array if kind == "same" else np.transpose(array, TO_TORCH[kind])
            if tuple(value.shape) != tuple(tensor.shape):
                raise ValueError(f"a {kind} weight of {value.shape} for {tuple(tensor.shape)}")
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def keras_weights(model: Any) -> list[np.ndarray]:
    """A mirror's weights in Keras order and layout (see `set_keras_weights`)."""
    out = []
    for tensor, kind in model.slots():
        value = tensor.detach().cpu().numpy()
        if kind != "same":
            value = np.transpose(value, np.argsort(TO_TORCH[kind]))
        out.append(np.ascontiguousarray(value, np.float32))
    return out


def load_npz_list(path: Path) -> list[np.ndarray]:
    """Arrays saved by `np.savez(path, *arrays)`, in order."""
    with np.load(path) as f:
        return [f[f"arr_{k}"] for k in range(len(f.files))]


@dataclass(frozen=True)
class FitOptions:
    """One `fit` call: its share of the run's time budget and the batches it trains on."""

    minutes: float
    budget_minutes: float
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 300
    eval_every: int = 1000
    workers: int = 0  # 0: the machine's cores less two
    seed: int = 1


@dataclass
class FitState:
    """Where a run stands across `fit` calls (saved in state.pt); `best` is the best dev merit
    so far (higher is better: F1, or minus a CER)."""

    seconds: float = 0.0
    steps: int = 0
    best: float = -math.inf
    calls: int = 0


def learning_rate(opts: FitOptions, state: FitState) -> float:
    """Linear warm-up, then a cosine over the time budget down to a twentieth."""
    warm = min(1.0, (state.steps + 1) / opts.warmup_steps)
    progress = min(1.0, state.seconds / (opts.budget_minutes * 60))
    return opts.learning_rate * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def start_workers(
    target: Callable[[Any, int, Any], None], stream: Any, opts: FitOptions, call: int
) -> tuple[Any, list[Any]]:
    """One batch-making process `target(stream, seed, queue)` per core less two, each with its
    own seed, so every call of a run draws fresh synthetic data. Spawned, not forked: a process
    forked after OpenCV has started its thread pool can wait on it for ever."""
    workers = opts.workers or max(1, (os.cpu_count() or 2) - 2)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue(maxsize=8 * workers)
    procs = [
        ctx.Process(
            target=target, args=(stream, opts.seed * 100_000 + call * 1000 + k, queue), daemon=True
        )
        for k in range(workers)
    ]
    for p in procs:
        p.start()
    return queue, procs


def quiet_worker() -> None:
    """A batch worker's set-up: one thread for NumPy and OpenCV (the workers are the cores)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import cv2

    cv2.setNumThreads(1)


def next_batch(queue: Any, procs: list[Any]) -> Any:
    """The next batch from the workers; RuntimeError once none of them is alive (a worker
    that raised has printed its traceback), rather than waiting for ever."""
    import queue as queues

    while True:
        try:
            return queue.get(timeout=5)
        except queues.Empty:
            if not any(p.is_alive() for p in procs):
                codes = sorted({p.exitcode for p in procs})
                raise RuntimeError(f"every batch worker has died (exit codes {codes})") from None


def restore(
    model: Any,
    pack_dir: Path,
    opts: FitOptions,
    *,
    state_in: Path | None,
    out: Path,
) -> tuple[Any, FitState]:
    """The mirror on the GPU (if any) with the pack's starting weights and a fresh Adam, or as
    a previous call left them (`state_in`, whose best.npz is carried over to `out`, which is
    made); the optimizer."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    set_keras_weights(model, load_npz_list(pack_dir / "init.npz"))
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.learning_rate)
    if state_in is None:
        return optimizer, FitState()
    saved = torch.load(state_in, map_location=device, weights_only=False)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if (state_in.parent / "best.npz").exists():
        shutil.copy2(state_in.parent / "best.npz", out / "best.npz")
    state = FitState(**saved["state"])
    logger.info("resumed at %s", state)
    return optimizer, state


@dataclass(frozen=True)
class Loop:
    """What `train` needs of a mirror: the model (with `slots()`), its optimizer, one optimizer
    step on a batch (returns the loss), and a dev scoring (returns the merit, higher is better,
    and the figures to log)."""

    model: Any
    optimizer: Any
    step: Callable[[Any], float]
    evaluate: Callable[[], tuple[float, dict[str, Any]]]


def train(
    loop: Loop, state: FitState, opts: FitOptions, out: Path, workers: tuple[Any, list[Any]]
) -> FitState:
    """Train for `opts.minutes` (or until the budget is spent), scoring dev every
    `opts.eval_every` steps and at the end; write best.npz (best merit) and last.npz (Keras
    order), state.pt (resumable) and log.jsonl to `out`. `workers` are `start_workers`' queue
    and processes; they are stopped at the end."""
    import torch

    queue, procs = workers
    if state.calls == 0:  # the starting weights are the first candidate
        state.best, figures = loop.evaluate()
        np.savez(out / "best.npz", *keras_weights(loop.model))
        logger.info("starting dev %s", figures)
    state.calls += 1
    t_start, waited = time.monotonic(), 0.0
    losses: list[float] = []

    def evaluate(log: Any) -> None:
        merit, figures = loop.evaluate()
        record: dict[str, Any] = {
            "steps": state.steps,
            "minutes": round(state.seconds / 60, 2),
            "loss": float(np.mean(losses[-200:])) if losses else None,
            "lr": learning_rate(opts, state),
            **figures,
            "waited_for_data_s": round(waited, 1),
        }
        if merit > state.best:
            state.best = merit
            np.savez(out / "best.npz", *keras_weights(loop.model))
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
                batch = next_batch(queue, procs)
                waited += time.monotonic() - t0
                for group in loop.optimizer.param_groups:
                    group["lr"] = learning_rate(opts, state)
                losses.append(loop.step(batch))
                state.steps += 1
                state.seconds += time.monotonic() - t0
                if state.steps % opts.eval_every == 0:
                    evaluate(log)
            evaluate(log)
    finally:
        for p in procs:
            p.terminate()
    np.savez(out / "last.npz", *keras_weights(loop.model))
    torch.save(
        {
            "model": loop.model.state_dict(),
            "optimizer": loop.optimizer.state_dict(),
            "state": asdict(state),
        },
        out / "state.pt",
    )
    return state


def copy_fonts(out: Path) -> None:
    """The font files the synthetic data uses, into the pack (the GPU machine has none)."""
    from models.synth.fonts import available_fonts

    fonts = out / "fonts"
    fonts.mkdir(parents=True, exist_ok=True)
    for face in available_fonts():
        shutil.copy2(face.path, fonts / Path(face.path).name)


def install_fonts(pack_dir: Path, target: Path = Path("/usr/local/share/fonts/receipts")) -> None:
    """Put the packed fonts where `models.synth.fonts` looks."""
    target.mkdir(parents=True, exist_ok=True)
    for f in (pack_dir / "fonts").iterdir():
        shutil.copy2(f, target / f.name)


@dataclass(frozen=True)
class Mirror:
    """One model's mirror, as the command line runs it: its three steps and `fit`'s defaults."""

    description: str
    pack: Callable[[Path, Path, Path | None], dict[str, Any]]
    fit: Callable[[Path, Path, FitOptions, Path | None], FitState]
    unpack: Callable[[Path, Path], None]
    batch_size: int
    learning_rate: float


def main(model: Mirror, argv: list[str] | None = None) -> None:
    """`python -m models.training.torch_MODEL pack|fit|unpack ...`."""
    import argparse

    parser = argparse.ArgumentParser(description=model.description)
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
    f.add_argument("--batch-size", type=int, default=model.batch_size)
    f.add_argument("--learning-rate", type=float, default=model.learning_rate)
    f.add_argument("--eval-every", type=int, default=FitOptions.eval_every)
    f.add_argument("--workers", type=int, default=0)
    f.add_argument("--install-fonts", action="store_true")
    u = sub.add_parser("unpack", help="write fit's weights into a Keras run (TensorFlow)")
    u.add_argument("--weights", type=Path, required=True)
    u.add_argument("--run", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "pack":
        print(json.dumps(model.pack(args.run, args.out, args.init_tflite)))
    elif args.command == "fit":
        if args.install_fonts:
            install_fonts(args.pack)
        opts = FitOptions(
            minutes=args.minutes,
            budget_minutes=args.budget_minutes,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            eval_every=args.eval_every,
            workers=args.workers,
        )
        print(json.dumps(asdict(model.fit(args.pack, args.out, opts, args.state))))
    else:
        model.unpack(args.weights, args.run)
