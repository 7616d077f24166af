"""The LiteRT interpreter around one verified model: threads, XNNPACK, int8 I/O, timings.

`load_model(folder, name)` reads the folder's manifest, checks the file's sha256 before the
interpreter sees it, and returns a `LiteRTModel`. The interpreter comes from `ai_edge_litert`
(the maintained runtime, works with NumPy 2) or, where only that is installed, from
`tflite_runtime`. XNNPACK is LiteRT's default CPU delegate; ``xnnpack=False`` runs the
built-in kernels only (for comparing, or where XNNPACK misbehaves).

Inputs are given as float arrays; an int8/uint8 input tensor is quantized with its scale and
zero point, and quantized outputs are dequantized, so callers never see quantization.
Inputs with a dynamic dimension (-1 in the signature, e.g. a line crop's width) are resized
per call; the interpreter reallocates only when the shape changes.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.litert.manifest import ModelEntry, load_manifest, verify_entry

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install ai-edge-litert (or, on old platforms, tflite-runtime)"


class RuntimeUnavailable(RuntimeError):
    """Neither ai_edge_litert nor tflite_runtime can be imported here."""


def _interpreter_module() -> Any:
    for module in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise RuntimeUnavailable(
        f"no LiteRT runtime: neither ai_edge_litert nor tflite_runtime is installed; {INSTALL_HINT}"
    )


@dataclass
class Timings:
    """Milliseconds spent in `invoke` (and quantization around it), per model."""

    calls: int = 0
    total_ms: float = 0.0
    last_ms: float = 0.0
    per_call_ms: list[float] = field(default_factory=list)

    def add(self, ms: float) -> None:
        self.calls += 1
        self.total_ms += ms
        self.last_ms = ms
        if len(self.per_call_ms) < 10_000:
            self.per_call_ms.append(ms)


def _quantize(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype in (np.float32, np.float16):
        return np.asarray(x, dtype)
    scale, zero = detail["quantization"]
    if not scale:  # an integer input that isn't quantized (ids, lengths)
        return np.asarray(x, dtype)
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float32) / scale + zero)
    return np.asarray(np.clip(q, info.min, info.max), dtype)


def _dequantize(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if y.dtype in (np.int8, np.uint8, np.int16) and scale:
        return np.asarray((y.astype(np.float32) - zero) * scale, np.float32)
    return np.asarray(y)


class LiteRTModel:
    """One model in one interpreter. Not thread-safe by itself: calls are serialised."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        content: bytes | None = None,
        num_threads: int = 1,
        xnnpack: bool = True,
        entry: ModelEntry | None = None,
    ) -> None:
        if (path is None) == (content is None):
            raise ValueError("give the model as a path or as content, not both")
        module = _interpreter_module()
        resolver = module.OpResolverType
        op_resolver = resolver.AUTO if xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        kwargs: dict[str, Any] = {
            "num_threads": max(1, num_threads),
            "experimental_op_resolver_type": op_resolver,
        }
        if path is not None:
            kwargs["model_path"] = str(path)
        else:
            kwargs["model_content"] = content
        try:
            self._interp = module.Interpreter(**kwargs)
            dynamic = any(
                -1 in d.get("shape_signature", d["shape"]) for d in self._interp.get_input_details()
            )
            if not dynamic:  # a dynamic input is allocated at its first real shape
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise RuntimeError(f"LiteRT cannot load {path or 'the model'}: {exc}") from exc
        self.path = path
        self.entry = entry
        self.num_threads = max(1, num_threads)
        self.inputs: list[dict[str, Any]] = self._interp.get_input_details()
        self.outputs: list[dict[str, Any]] = self._interp.get_output_details()
        self._shapes: list[tuple[int, ...] | None] = [
            None
            if -1 in d.get("shape_signature", d["shape"])
            else tuple(int(v) for v in d["shape"])
            for d in self.inputs
        ]
        self.timings = Timings()
        self._lock = threading.Lock()

    @property
    def input_dtypes(self) -> list[np.dtype[Any]]:
        return [np.dtype(d["dtype"]) for d in self.inputs]

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Outputs (float, dequantized) for float inputs, in the model's output order."""
        if len(inputs) != len(self.inputs):
            raise ValueError(f"the model takes {len(self.inputs)} inputs, got {len(inputs)}")
        with self._lock:
            start = time.perf_counter()
            resized = False
            for k, (x, detail) in enumerate(zip(inputs, self.inputs, strict=True)):
                shape = tuple(int(v) for v in x.shape)
                if shape != self._shapes[k]:
                    self._interp.resize_tensor_input(detail["index"], list(shape), strict=False)
                    self._shapes[k] = shape
                    resized = True
            if resized:
                self._interp.allocate_tensors()
            for x, detail in zip(inputs, self.inputs, strict=True):
                self._interp.set_tensor(detail["index"], _quantize(x, detail))
            self._interp.invoke()
            out = [_dequantize(self._interp.get_tensor(d["index"]), d) for d in self.outputs]
            self.timings.add((time.perf_counter() - start) * 1000)
        return out


def load_model(
    folder: Path, name: str, *, num_threads: int = 1, xnnpack: bool = True
) -> LiteRTModel:
    """Model `name` of a model folder, after checking its sha256 against the manifest.

    Raises `ManifestError` (missing entry, missing or mismatching file), `RuntimeUnavailable`
    (no LiteRT runtime) or RuntimeError (LiteRT refuses the file).
    """
    entry = load_manifest(folder).entry(name, folder)
    path = verify_entry(folder, entry)
    model = LiteRTModel(path, num_threads=num_threads, xnnpack=xnnpack, entry=entry)
    logger.info(
        "loaded %s %s (%s, %d bytes, %d threads)",
        name,
        entry.version,
        entry.file,
        entry.bytes,
        num_threads,
    )
    return model
