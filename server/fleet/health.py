"""Device health from what ingest stored: online / stale / offline / revoked, and the overview.

Pure functions of rows and a clock. A device is

- ``revoked`` when its broker account was revoked (it can no longer connect);
- ``offline`` when its retained status (or its last will) says so, or it was never seen;
- ``stale`` when it says it is online but has been silent longer than twice its heartbeat
  interval (the `interval_s` of its last telemetry; `DEFAULT_INTERVAL_S` before the first one):
  a hung agent, a half-open connection, a broker that has not noticed yet;
- ``online`` otherwise.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_INTERVAL_S = 60.0
STALE_FACTOR = 2.0
#: CPU temperature (°C) above which a device counts as hot (a Pi 4/5 throttles at 80-85).
HOT_C = 80.0
STATES = ("online", "stale", "offline", "revoked")


@dataclass(frozen=True)
class Health:
    """What the overview needs of one device."""

    device_id: str
    state: str
    agent_version: str | None
    model_versions: Mapping[str, Any]
    telemetry: Mapping[str, Any]


def interval_s(telemetry: Mapping[str, Any] | None) -> float:
    value = (telemetry or {}).get("interval_s")
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return DEFAULT_INTERVAL_S


def device_state(
    *,
    online: bool,
    last_seen_at: dt.datetime | None,
    telemetry: Mapping[str, Any] | None,
    revoked: bool,
    now: dt.datetime,
) -> str:
    """One of `STATES`; see the module docstring."""
    if revoked:
        return "revoked"
    if not online or last_seen_at is None:
        return "offline"
    silent = (now - last_seen_at).total_seconds()
    return "stale" if silent > STALE_FACTOR * interval_s(telemetry) else "online"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _numbers(devices: Iterable[Health], key: str) -> list[float]:
    return [v for d in devices if (v := _number(d.telemetry.get(key))) is not None]


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, p50, p95 and max of `values` (None where there are none)."""
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "max": None}
    s = sorted(values)
    return {
        "count": len(s),
        "mean": round(statistics.fmean(s), 2),
        "p50": _percentile(s, 0.5),
        "p95": _percentile(s, 0.95),
        "max": s[-1],
    }


def overview(
    devices: Sequence[Health],
    scans: Mapping[dt.date, int],
    days: Sequence[dt.date],
) -> dict[str, Any]:
    """The fleet overview of one organisation (the shape of `schemas.FleetOverview`)."""
    states = Counter(d.state for d in devices)
    reporting = [d for d in devices if d.state in ("online", "stale")]
    depths = _numbers(reporting, "outbox_depth")
    temperatures = _numbers(reporting, "cpu_temp_c")
    models: dict[str, Counter[str]] = {}
    for d in devices:
        for name, version in d.model_versions.items():
            models.setdefault(name, Counter())[str(version)] += 1
    return {
        "devices": {"total": len(devices), **{s: states.get(s, 0) for s in STATES}},
        "scans_per_day": [{"date": day, "count": scans.get(day, 0)} for day in days],
        "queue_depth": {
            "total": int(sum(depths)),
            "max": int(max(depths)) if depths else None,
            "backlogged": sum(1 for v in depths if v > 0),
        },
        "inference_ms": distribution(_numbers(reporting, "last_read_ms")),
        "temperature_c": {
            **distribution(temperatures),
            "hot": sum(1 for t in temperatures if t >= HOT_C),
        },
        "agent_versions": dict(
            Counter(d.agent_version or "unknown" for d in devices).most_common()
        ),
        "model_versions": {name: dict(c.most_common()) for name, c in sorted(models.items())},
    }
