"""Warm start: load a published .tflite's weights back into the Keras model it was exported from.

Training checkpoints are not committed and do not outlive a session, but the exported models
are: reading their constant tensors lets a new run continue from the product instead of from
zero. Imports TensorFlow; only the training commands load this module.

The converter changed the network on the way out, and this module undoes it:

- every weighted layer became one op (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
  TRANSPOSE_CONV); a SeparableConv1D became a DEPTHWISE_CONV_2D feeding a 1x1 CONV_2D;
- a BatchNormalization was either folded into the preceding op (kernel scaled per output
  channel, its shift in the op's bias) or kept as a MUL and an ADD by constant vectors;
- int8 weights are quantized per output channel (scale, zero point), int32 biases with the
  scale input scale x weight scale, which the .tflite stores as the bias tensor's own scales.

The weighted ops and the Keras model's weighted layers are paired by graph structure, not by
position: the converter schedules parallel branches in its own order (the detector's FPN
laterals run right after the encoder stage they read, long before Keras lists them). Each
weighted node, on either side, gets a fingerprint of its kind and of the fingerprints of the
nearest weighted nodes upstream of its data input (through activations, additions, batch norms,
reshapes and quantization ops), recursively down to the model's input; the two sides must have
the same fingerprints, and a node pairs with the node of equal fingerprint (nodes that share
one, structurally interchangeable, pair in order). Each pair must then agree in kind and
shape: anything that does not match one-to-one raises TfliteMismatch naming both sides.

Each batch normalization is then set so that, in inference mode, it applies
exactly the affine map the .tflite applies after that op, and, in training mode, stays close
to it: its moving statistics are the per-channel mean and variance of its input measured on
real inputs, so batch statistics of similar batches barely move its output.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

#: Weighted .tflite ops, and the Keras layers (part) each one comes from.
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
#: Ops that only reshape a tensor; a batch norm's MUL/ADD may sit behind a few of them.
SHAPE_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
#: A bias the Keras layer cannot hold (no bias variable, no batch norm after it) must be zero
#: up to this much, relative to the largest kernel weight.
BIAS_TOLERANCE = 1e-6


class TfliteMismatch(ValueError):
    """The .tflite and the Keras model do not correspond one-to-one."""


@dataclass
class _TfliteOp:
    """One weighted op of the .tflite with what acts per channel on its output: its own bias,
    then (an unfolded batch norm) an optional multiplication and addition by constants."""

    kind: str
    name: str
    kernel: np.ndarray  # float, .tflite layout
    bias: np.ndarray | None
    output: int
    consumers: int
    mul: np.ndarray | None = None
    add: np.ndarray | None = None
    #: positions (in the list of weighted ops) of the nearest weighted ops upstream of its input
    upstream: tuple[int, ...] = ()


@dataclass
class _KerasSlot:
    """One weighted part of a Keras layer: a SeparableConv1D has two (depthwise, pointwise)."""

    layer: Any
    part: str  # "kernel", "depthwise" or "pointwise"
    kind: str  # the .tflite op it must match
    batch_norm: Any = None
    #: positions (in the list of slots) of the nearest weighted slots upstream of its input
    upstream: tuple[int, ...] = ()


@dataclass
class Loaded:
    """What `load_tflite_weights` did: ops paired, and the per-channel affine map (y -> a*y + c)
    each batch norm must apply in inference mode, to be calibrated on real inputs."""

    ops: int
    batch_norms: dict[Any, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - TensorFlow's own copy, where ai-edge-litert is absent
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(path), num_threads=1)


def tflite_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function running the .tflite on one float input, resized to that input's shape."""
    interp = _interpreter(path)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    shape: list[Any] = [None]

    def run(x: np.ndarray) -> np.ndarray:
        if shape[0] != x.shape:
            interp.resize_tensor_input(inp["index"], list(x.shape))
            interp.allocate_tensors()
            shape[0] = x.shape
        interp.set_tensor(inp["index"], x.astype(np.float32))
        interp.invoke()
        return np.asarray(interp.get_tensor(out["index"]))

    return run


def _dequantize(interp: Any, detail: dict[str, Any]) -> np.ndarray:
    """The float value of a constant tensor (int8 per-channel weights, int32 biases, floats)."""
    value = np.asarray(interp.get_tensor(detail["index"]))
    if value.dtype.kind == "f":
        return value.astype(np.float64)
    q = detail["quantization_parameters"]
    scales, zeros = np.asarray(q["scales"], np.float64), np.asarray(q["zero_points"], np.float64)
    if scales.size == 0:
        raise TfliteMismatch(f"constant {detail['name']!r} is an unquantized integer tensor")
    shape = [1] * value.ndim
    if scales.size > 1:
        shape[q["quantized_dimension"]] = -1
    return (value.astype(np.float64) - zeros.reshape(shape)) * scales.reshape(shape)


def _upstream_finder(
    ops: list[dict[str, Any]], producer: dict[int, dict[str, Any]]
) -> Callable[[int], frozenset[int]]:
    """A function giving, for a tensor, the positions (among the weighted ops, in execution
    order) of the weighted ops nearest upstream of it, through any unweighted ops."""
    position = {
        int(op["index"]): k for k, op in enumerate(o for o in ops if o["op_name"] in WEIGHTED_OPS)
    }
    sources: dict[int, frozenset[int]] = {}

    def upstream(t: int) -> frozenset[int]:
        if t in sources:
            return sources[t]
        found: set[int] = set()
        stack, seen = [t], {t}
        while stack:  # iterative: the graph may be deep
            op = producer.get(stack.pop())
            if op is None:  # the input or a constant
                continue
            if int(op["index"]) in position:
                found.add(position[int(op["index"])])
                continue
            for u in (int(v) for v in op["inputs"]):
                if u >= 0 and u not in seen:
                    seen.add(u)
                    stack.append(u)
        sources[t] = frozenset(found)
        return sources[t]

    return upstream


def read_tflite_ops(path: Path) -> list[_TfliteOp]:
    """The weighted ops of a .tflite in execution order, with their dequantized constants."""
    interp = _interpreter(path)
    interp.allocate_tensors()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    # The op graph is not in the public Python API; _get_ops_details is what LiteRT's own
    # tools use. XNNPACK adds DELEGATE pseudo-ops after the real ones: leave them out.
    ops = [op for op in interp._get_ops_details() if op["op_name"] != "DELEGATE"]
    producer = {int(t): op for op in ops for t in op["outputs"]}
    consumers: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for op in ops:
        for t in op["inputs"]:
            consumers[int(t)].append(op)
    inputs = {d["index"] for d in interp.get_input_details()}

    def constant(t: int) -> np.ndarray | None:
        t = int(t)
        if t < 0 or t in inputs:
            return None
        if t not in producer:
            return _dequantize(interp, details[t])
        op = producer[t]  # float16 / dynamic-range models dequantize their weights at load
        if op["op_name"] == "DEQUANTIZE" and int(op["inputs"][0]) not in producer:
            return _dequantize(interp, details[int(op["inputs"][0])])
        return None

    def channel_constant(op: dict[str, Any], channels: int) -> tuple[int, np.ndarray] | None:
        """(the other input, the constant vector) of a binary op with one per-channel constant."""
        a, b = (int(t) for t in op["inputs"][:2])
        for data, const in ((a, b), (b, a)):
            value = constant(const)
            if value is not None and constant(data) is None and value.size in {1, channels}:
                return data, np.broadcast_to(value.reshape(-1), (channels,)).copy()
        return None

    upstream = _upstream_finder(ops, producer)
    out = []
    for op in ops:
        if op["op_name"] not in WEIGHTED_OPS:
            continue
        ins = [int(t) for t in op["inputs"]]
        # TRANSPOSE_CONV takes (output shape, weights, input[, bias]); the others (input,
        # weights[, bias]). A missing bias is index -1.
        kernel = constant(ins[1])
        if kernel is None:
            raise TfliteMismatch(f"{op['op_name']} op {op['index']} has non-constant weights")
        at = 3 if op["op_name"] == "TRANSPOSE_CONV" else 2
        bias = constant(ins[at]) if len(ins) > at else None
        result = int(op["outputs"][0])
        channels = kernel.shape[0] if op["op_name"] != "DEPTHWISE_CONV_2D" else kernel.shape[-1]
        item = _TfliteOp(
            op["op_name"],
            details[result]["name"],
            kernel,
            None if bias is None else bias.reshape(-1),
            result,
            len(consumers[result]),
            upstream=tuple(sorted(upstream(ins[2 if op["op_name"] == "TRANSPOSE_CONV" else 0]))),
        )
        # Follow a single-consumer chain through reshapes to a MUL and/or ADD by constants.
        t = result
        while len(consumers[t]) == 1 and consumers[t][0]["op_name"] in SHAPE_OPS:
            t = int(consumers[t][0]["outputs"][0])
        for name in ("MUL", "ADD"):
            if len(consumers[t]) != 1 or consumers[t][0]["op_name"] != name:
                continue
            found = channel_constant(consumers[t][0], channels)
            if found is None:
                continue
            setattr(item, name.lower(), found[1])
            t = int(consumers[t][0]["outputs"][0])
        out.append(item)
    return out


def _inbound(operation: Any) -> list[Any]:
    """The operations (layers, Keras ops) whose outputs feed `operation` in the model."""
    nodes = getattr(operation, "_inbound_nodes", [])
    if not nodes:
        return []
    out = []
    for tensor in nodes[0].input_tensors:
        history = getattr(tensor, "_keras_history", None)
        if history is not None:
            out.append(history.operation)
    return out


def _keras_slots(model: tf.keras.Model) -> list[_KerasSlot]:
    """The model's weighted layer parts in layer order, each with the batch norm fed by it and
    the weighted slots nearest upstream of its input."""
    layers = tf.keras.layers
    fed_by = {
        id(layer.input): layer
        for layer in model.layers
        if isinstance(layer, layers.BatchNormalization)
    }
    slots: list[_KerasSlot] = []
    last_slot: dict[int, int] = {}  # id(layer) -> its (last) slot, the one its output leaves
    for layer in model.layers:
        bn = fed_by.get(id(layer.output)) if layer.weights else None
        if isinstance(layer, layers.SeparableConv1D | layers.SeparableConv2D):
            slots.append(_KerasSlot(layer, "depthwise", "DEPTHWISE_CONV_2D"))
            slots.append(_KerasSlot(layer, "pointwise", "CONV_2D", bn, (len(slots) - 1,)))
        elif isinstance(layer, layers.DepthwiseConv1D | layers.DepthwiseConv2D):
            slots.append(_KerasSlot(layer, "kernel", "DEPTHWISE_CONV_2D", bn))
        elif isinstance(layer, layers.Conv1DTranspose | layers.Conv2DTranspose):
            slots.append(_KerasSlot(layer, "kernel", "TRANSPOSE_CONV", bn))
        elif isinstance(layer, layers.Conv1D | layers.Conv2D):
            slots.append(_KerasSlot(layer, "kernel", "CONV_2D", bn))
        elif isinstance(layer, layers.Dense):
            slots.append(_KerasSlot(layer, "kernel", "FULLY_CONNECTED", bn))
        elif layer.weights and not isinstance(layer, layers.BatchNormalization):
            raise TfliteMismatch(f"layer {layer.name} ({type(layer).__name__}) is not supported")
        else:
            continue
        last_slot[id(layer)] = len(slots) - 1

    def upstream(operation: Any) -> tuple[int, ...]:
        found: set[int] = set()
        stack, seen = _inbound(operation), set()
        while stack:
            op = stack.pop()
            if id(op) in seen:
                continue
            seen.add(id(op))
            if id(op) in last_slot:
                found.add(last_slot[id(op)])
            else:
                stack.extend(_inbound(op))
        return tuple(sorted(found))

    for slot in slots:
        if slot.part != "pointwise":  # a separable layer's pointwise reads its depthwise
            slot.upstream = upstream(slot.layer)
    return slots


def _fingerprints(kinds: list[str], upstream: list[tuple[int, ...]]) -> list[str]:
    """A digest per weighted node of its kind and, recursively, of the nodes upstream of it:
    equal digests on the two sides mean the same place in the same network."""
    digests: dict[int, str] = {}

    def digest(k: int) -> str:
        if k not in digests:
            todo = [k]
            while todo:  # iterative post-order: the graph may be deep
                j = todo[-1]
                missing = [u for u in upstream[j] if u not in digests]
                if missing:
                    todo.extend(missing)
                    continue
                todo.pop()
                text = kinds[j] + "(" + ",".join(sorted(digests[u] for u in upstream[j])) + ")"
                digests[j] = hashlib.sha256(text.encode()).hexdigest()
        return digests[k]

    return [digest(k) for k in range(len(kinds))]


def pair_ops(ops: list[_TfliteOp], slots: list[_KerasSlot]) -> list[tuple[_TfliteOp, _KerasSlot]]:
    """Each Keras slot with the .tflite op at the same place in the graph, in slot order; raises
    TfliteMismatch when the two graphs differ (kinds, counts or connections)."""
    ours = _fingerprints([o.kind for o in ops], [o.upstream for o in ops])
    theirs = _fingerprints([s.kind for s in slots], [s.upstream for s in slots])
    by_print: dict[str, list[int]] = defaultdict(list)
    for k, fp in enumerate(ours):
        by_print[fp].append(k)
    pairs: list[tuple[_TfliteOp, _KerasSlot]] = []
    lonely_slots = []
    for slot, fp in zip(slots, theirs, strict=True):
        if by_print.get(fp):
            pairs.append((ops[by_print[fp].pop(0)], slot))
        else:
            lonely_slots.append(f"{slot.layer.name} ({slot.part}, {slot.kind})")
    lonely_ops = [f"{ops[k].name!r} ({ops[k].kind})" for ks in by_print.values() for k in ks]
    if lonely_ops or lonely_slots:
        raise TfliteMismatch(
            f"the .tflite has {len(ops)} weighted ops, the Keras model {len(slots)} weighted "
            f"layer parts; without a counterpart in the same place of the graph: .tflite "
            f"{lonely_ops[:4]}, Keras {lonely_slots[:4]}: not the same network"
        )
    return pairs


def _to_keras(op: _TfliteOp, target: tuple[int, ...]) -> np.ndarray:
    """The op's kernel in Keras' layout (1-D layers drop the .tflite's unit height)."""
    k = op.kernel
    if op.kind == "CONV_2D":  # [out, h, w, in] -> [h, w, in, out]
        k = k.transpose(1, 2, 3, 0)
    elif op.kind == "TRANSPOSE_CONV":  # [out, h, w, in] -> [h, w, out, in]
        k = k.transpose(1, 2, 0, 3)
    elif op.kind == "FULLY_CONNECTED":  # [out, in] -> [in, out]
        k = k.T
    elif op.kind == "DEPTHWISE_CONV_2D":  # [1, h, w, in * mult] -> [h, w, in, mult]
        mult = target[-1]
        k = k.reshape(k.shape[1], k.shape[2], -1, mult)
    squeezed = [d for d in k.shape if d != 1]
    if squeezed != [d for d in target if d != 1]:
        raise TfliteMismatch(
            f"tflite {op.kind} {op.name!r} has kernel {tuple(k.shape)} in Keras layout, "
            f"the Keras layer needs {target}"
        )
    return k.reshape(target)


def _output_channels(kind: str, kernel: np.ndarray) -> int:
    """Output channels of a kernel in Keras' layout."""
    if kind == "TRANSPOSE_CONV":  # [h, w, out, in]
        return int(kernel.shape[-2])
    if kind == "DEPTHWISE_CONV_2D":  # [h, w, in, mult]: output channel c * mult + m
        return int(kernel.shape[-2] * kernel.shape[-1])
    return int(kernel.shape[-1])


def _scale_outputs(kind: str, kernel: np.ndarray, mul: np.ndarray) -> np.ndarray:
    """The kernel (Keras layout) with each output channel scaled by `mul`."""
    axis_shape = [1] * (kernel.ndim - 1) + [-1]
    if kind == "TRANSPOSE_CONV":
        axis_shape = [1] * (kernel.ndim - 2) + [-1, 1]
    elif kind == "DEPTHWISE_CONV_2D":
        axis_shape = [1] * (kernel.ndim - 2) + list(kernel.shape[-2:])
    return np.asarray(kernel * mul.reshape(axis_shape))


def load_tflite_weights(model: tf.keras.Model, path: Path) -> Loaded:
    """Set every weighted layer of `model` from the .tflite (see the module docstring); the
    batch norms' affine maps are returned for `calibrate_batch_norms`, which must follow."""
    ops, slots = read_tflite_ops(path), _keras_slots(model)
    try:
        pairs = pair_ops(ops, slots)
    except TfliteMismatch as exc:
        raise TfliteMismatch(f"{path.name}: {exc}") from exc
    loaded = Loaded(ops=len(ops))
    pending_bias: np.ndarray | None = None  # a separable layer's depthwise bias
    for op, slot in pairs:  # in slot order: a depthwise part comes just before its pointwise
        layer = slot.layer
        variable: Any = getattr(layer, f"{slot.part}_kernel" if slot.part != "kernel" else "kernel")
        kernel = _to_keras(op, tuple(variable.shape))
        channels = _output_channels(slot.kind, kernel)
        bias = np.zeros(channels) if op.bias is None else op.bias
        if slot.part == "depthwise":
            if op.consumers != 1 or op.mul is not None or op.add is not None:
                raise TfliteMismatch(f"depthwise op {op.name!r} does not feed only its pointwise")
            variable.assign(kernel.astype(np.float32))
            pending_bias = bias
            continue
        if slot.part == "pointwise" and pending_bias is not None:
            # pointwise(depthwise(x) + b) = pointwise(depthwise(x)) + b @ W
            bias = bias + pending_bias @ kernel.reshape(-1, channels)
            pending_bias = None
        mul = np.ones(channels) if op.mul is None else op.mul
        shift = bias * mul + (0.0 if op.add is None else op.add)
        variable.assign(kernel.astype(np.float32))
        if slot.batch_norm is not None:
            loaded.batch_norms[slot.batch_norm] = (mul, shift)
            continue
        # No batch norm to carry the affine map: the layer's kernel and bias take it.
        if op.mul is not None:
            variable.assign(_scale_outputs(slot.kind, kernel, mul).astype(np.float32))
        if getattr(layer, "use_bias", False):
            layer.bias.assign(shift.astype(np.float32))
        elif np.abs(shift).max() > BIAS_TOLERANCE * max(np.abs(kernel).max(), 1.0):
            raise TfliteMismatch(
                f"tflite {op.kind} {op.name!r} adds a bias, but Keras layer {layer.name} has "
                "neither a bias nor a batch norm after it"
            )
    logger.info("loaded %d weighted ops of %s", len(ops), path)
    return loaded


def _set_batch_norm(
    bn: Any, a: np.ndarray, c: np.ndarray, mean: np.ndarray, var: np.ndarray
) -> None:
    """BN(y) = a*y + c in inference mode, with these moving statistics."""
    std = np.sqrt(var + bn.epsilon)
    bn.moving_mean.assign(mean.astype(np.float32))
    bn.moving_variance.assign(var.astype(np.float32))
    bn.gamma.assign((a * std).astype(np.float32))
    bn.beta.assign((c + a * mean).astype(np.float32))


def calibrate_batch_norms(
    model: tf.keras.Model, loaded: Loaded, batches: Iterable[np.ndarray]
) -> None:
    """Give each batch norm the moving mean and variance of its input over `batches` (real
    training inputs) while it keeps applying the .tflite's affine map in inference mode.

    Every batch norm first gets the exact map with placeholder statistics, so the model already
    computes the .tflite's function, and all inputs are measured in one pass of it."""
    bns = list(loaded.batch_norms)
    for bn in bns:
        axis = bn.axis if isinstance(bn.axis, int) else tuple(bn.axis)
        if not (bn.center and bn.scale) or axis not in {-1, (-1,), len(bn.input.shape) - 1}:
            raise TfliteMismatch(f"batch norm {bn.name} must scale and shift the last axis")
        a, c = loaded.batch_norms[bn]
        _set_batch_norm(bn, a, c, np.zeros_like(a), np.ones_like(a))
    if not bns:
        return
    probe = tf.keras.Model(model.input, [bn.input for bn in bns])
    sums = [np.zeros(len(loaded.batch_norms[bn][0])) for bn in bns]
    squares = [np.zeros_like(s) for s in sums]
    counts = [0] * len(bns)  # positions differ per batch norm (before and after pooling)
    for batch in batches:
        outputs = probe(batch, training=False)
        outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
        for k, y in enumerate(outputs):
            flat = np.asarray(y, np.float64).reshape(-1, sums[k].size)
            sums[k] += flat.sum(axis=0)
            squares[k] += (flat**2).sum(axis=0)
            counts[k] += flat.shape[0]
    if not counts[0]:
        raise ValueError("calibrating batch norms needs at least one batch")
    for k, bn in enumerate(bns):
        mean = sums[k] / counts[k]
        var = np.maximum(squares[k] / counts[k] - mean**2, 0.0)
        a, c = loaded.batch_norms[bn]
        _set_batch_norm(bn, a, c, mean, var)


def published_entry(path: Path) -> dict[str, Any] | None:
    """The entry of the manifest.json beside a published .tflite that lists it (charset, input
    spec, metrics), or None where there is none: a warm start checks it against its config."""
    manifest = path.parent / "manifest.json"
    if not manifest.exists():
        return None
    models = json.loads(manifest.read_text(encoding="utf-8")).get("models", {})
    for entry in models.values():
        if isinstance(entry, dict) and entry.get("file") == path.name:
            return entry
    return None


def init_from_tflite(
    model: tf.keras.Model, path: Path, calibration: Iterable[np.ndarray]
) -> Loaded:
    """Load the .tflite's weights into `model` and calibrate its batch norms on `calibration`
    (a few batches of real training inputs)."""
    loaded = load_tflite_weights(model, path)
    calibrate_batch_norms(model, loaded, calibration)
    return loaded


def output_gap(model: tf.keras.Model, path: Path, inputs: Iterable[np.ndarray]) -> float:
    """Largest |Keras output (inference mode) - .tflite output| over `inputs`, relative to the
    range of the .tflite's outputs: how far the warm start is from the published model."""
    run = tflite_runner(path)
    gap, low, high = 0.0, np.inf, -np.inf
    for x in inputs:
        ref = run(x)
        ours = np.asarray(model(x, training=False))
        gap = max(gap, float(np.abs(ours - ref).max()))
        low, high = min(low, float(ref.min())), max(high, float(ref.max()))
    return gap / max(high - low, 1e-12)
