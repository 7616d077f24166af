"""The metrics contract of infra/metrics.md, parsed, and the metric names a PromQL text uses."""

from __future__ import annotations

import re
from pathlib import Path

INFRA = Path(__file__).resolve().parents[2] / "infra"

_ROW = re.compile(r"^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \| ([^|]+) \|")
_NAME = re.compile(
    r"(?<![\w:$.\"'])([a-zA-Z_][a-zA-Z0-9_:]*)(?=\s*(?:\{|\[|\)|$|\s|/|>|<|-|\+|\*))"
)
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def contract() -> dict[str, str]:
    """Metric name -> type, from the tables of infra/metrics.md."""
    rows: dict[str, str] = {}
    for line in (INFRA / "metrics.md").read_text().splitlines():
        m = _ROW.match(line)
        if m:
            rows[m.group(1)] = m.group(2).strip().split()[0]
    return rows


def series_names(promql: str) -> set[str]:
    """Series a PromQL expression selects (rm_*, node_*, up), histogram suffixes kept."""
    without_strings = re.sub(r'"[^"]*"', '""', promql)
    names = set()
    for m in _NAME.finditer(without_strings):
        name = m.group(1)
        if name.startswith(("rm_", "node_")) or name == "up":
            names.add(name)
    return names


def undeclared(promql: str) -> set[str]:
    """Series `promql` uses that infra/metrics.md does not declare (with the right type)."""
    declared = contract()
    missing = set()
    for name in series_names(promql):
        if name in declared:
            continue
        base = next((name.removesuffix(s) for s in _HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base is not None and declared.get(base) == "histogram":
            continue
        missing.add(name)
    return missing
