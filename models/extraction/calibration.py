"""Calibrated confidences: raw rule scores mapped to the accuracy they had on training receipts.

A `Calibration` holds, per field, an isotonic (monotone, non-decreasing) step function fitted
with pool-adjacent-violators on (raw confidence, was it right) pairs from the train split, each
block's accuracy shrunk towards its neighbours' by a Beta(1, 1) prior so a block of three right
answers does not claim certainty. It is stored as a small JSON table next to this module
(`calibration.json`) and written by `receipts eval calibrate`.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TABLE_FILE = Path(__file__).with_name("calibration.json")

#: The fields that are calibrated, by their name in `ReceiptFields`.
CALIBRATED = ("merchant", "address", "date", "total")


@dataclass(frozen=True, slots=True)
class Steps:
    """A non-decreasing step function: `values[i]` applies from `thresholds[i]` upward."""

    thresholds: tuple[float, ...]
    values: tuple[float, ...]

    def __call__(self, raw: float) -> float:
        if not self.thresholds:
            return raw
        i = bisect.bisect_right(self.thresholds, raw) - 1
        return self.values[max(i, 0)]


def fit_isotonic(pairs: Iterable[tuple[float, bool]], prior: float = 1.0) -> Steps:
    """Pool adjacent violators over pairs sorted by raw score; each block's value is
    (right + prior) / (n + 2 * prior), so small blocks stay away from 0 and 1."""
    tied: dict[float, list[float]] = {}
    for raw, right in pairs:  # equal scores form one block before pooling
        block = tied.setdefault(raw, [0.0, 0.0])
        block[0] += float(right)
        block[1] += 1.0
    blocks: list[list[float]] = []  # [start raw, right, n]
    for raw in sorted(tied):
        blocks.append([raw, *tied[raw]])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            last = blocks.pop()
            blocks[-1][1] += last[1]
            blocks[-1][2] += last[2]
    thresholds = [b[0] for b in blocks]
    values = [(b[1] + prior) / (b[2] + 2 * prior) for b in blocks]
    for i in range(1, len(values)):  # the prior can break monotonicity between small blocks
        values[i] = max(values[i], values[i - 1])
    if thresholds:
        thresholds[0] = 0.0
    return Steps(tuple(thresholds), tuple(round(v, 4) for v in values))


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-field step functions; a field without one keeps its raw confidence."""

    fields: Mapping[str, Steps]
    source: str = ""

    def apply(self, field: str, raw: float) -> float:
        steps = self.fields.get(field)
        return round(steps(raw), 3) if steps is not None else raw

    def to_json(self) -> str:
        body = {
            "source": self.source,
            "fields": {
                k: {"thresholds": list(v.thresholds), "values": list(v.values)}
                for k, v in self.fields.items()
            },
        }
        return json.dumps(body, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        data = json.loads(text)
        fields = {
            k: Steps(tuple(map(float, v["thresholds"])), tuple(map(float, v["values"])))
            for k, v in data.get("fields", {}).items()
        }
        for name, steps in fields.items():
            if len(steps.thresholds) != len(steps.values) or list(steps.thresholds) != sorted(
                steps.thresholds
            ):
                raise ValueError(f"calibration table: field {name!r} has unsorted or uneven steps")
        return cls(fields, str(data.get("source", "")))


def load(path: Path = TABLE_FILE) -> Calibration:
    """The committed table, or no calibration (raw confidences) when it is absent."""
    if not path.exists():
        return Calibration({})
    return Calibration.from_json(path.read_text())
