"""System readings for the heartbeat: CPU temperature and free disk, where the system has them."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

THERMAL_ROOT = Path("/sys/class/thermal")


def cpu_temperature_c(root: Path = THERMAL_ROOT) -> float | None:
    """The CPU temperature in °C from the first readable thermal zone; None without one."""
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            millideg = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        return millideg / 1000.0
    return None


def disk_free_bytes(path: Path) -> int | None:
    """Free bytes on the filesystem holding `path`, or None if it can't be read."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None
