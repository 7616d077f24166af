"""Small learned linear scorers (logistic regression) stored as JSON next to this module.

A `LinearModel` standardises a feature vector with the training mean and scale and returns
`bias + weights · x`. The table `line_models.json` holds one model per task (merchant lines,
address lines, total candidates) and is written by `receipts eval train-lines` from the SROIE
train split only. Inference is pure numpy; a missing table leaves the rules alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

TABLE_FILE = Path(__file__).with_name("line_models.json")

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LinearModel:
    """Logistic regression over named, standardised features."""

    names: tuple[str, ...]
    mean: Matrix
    scale: Matrix
    weights: Matrix
    bias: float

    def logits(self, rows: Matrix) -> Matrix:
        """One logit per row of raw (unstandardised) features."""
        if rows.shape[1] != len(self.names):
            raise ValueError(f"expected {len(self.names)} features, got {rows.shape[1]}")
        result: Matrix = ((rows - self.mean) / self.scale) @ self.weights + self.bias
        return result

    def to_dict(self) -> dict[str, object]:
        return {
            "names": list(self.names),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "weights": [round(float(v), 6) for v in self.weights],
            "bias": round(self.bias, 6),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LinearModel:
        names = tuple(str(n) for n in _seq(data["names"]))
        arrays = [np.asarray(_seq(data[k]), dtype=np.float64) for k in ("mean", "scale", "weights")]
        if any(a.shape != (len(names),) for a in arrays):
            raise ValueError("line model: mean, scale and weights must have one value per name")
        bias = data["bias"]
        if not isinstance(bias, int | float):
            raise ValueError("line model: bias must be a number")
        return cls(names, arrays[0], arrays[1], arrays[2], float(bias))


def _seq(value: object) -> Sequence[object]:
    if not isinstance(value, list):
        raise ValueError(f"line model: expected a list, got {type(value).__name__}")
    return value


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 30.0), -30.0)))


@dataclass(frozen=True)
class LineModels:
    """The learned scorers by task name; `source` says what they were fitted on."""

    models: Mapping[str, LinearModel]
    source: str = ""

    def get(self, name: str) -> LinearModel | None:
        return self.models.get(name)

    def to_json(self) -> str:
        body = {"source": self.source, "models": {k: m.to_dict() for k, m in self.models.items()}}
        return json.dumps(body, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LineModels:
        data = json.loads(text)
        models = {str(k): LinearModel.from_dict(v) for k, v in data.get("models", {}).items()}
        return cls(models, str(data.get("source", "")))


def load(path: Path = TABLE_FILE) -> LineModels:
    """The committed models, or none (rules only) when the table is absent."""
    if not path.exists():
        return LineModels({})
    return LineModels.from_json(path.read_text())
