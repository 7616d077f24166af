"""Which backups to keep: the newest of each of the last N days and of each of the last M months.

Pure policy (`to_keep`) plus the pruning of a backup folder (`prune`). Backups are recognised by
their file names (`receipts-20240501T020000Z.dump` and the `.manifest.json` beside it), not by
file times, so a copy or restore of the folder does not change what is kept. Files whose names
don't parse are never touched; the newest backup is always kept, whatever its age; backups
dated in the future (a skewed clock) are kept.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

PREFIX = "receipts"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(rf"^{PREFIX}-(\d{{8}}T\d{{6}}Z)\.(dump|manifest\.json)$")


class Clock(Protocol):
    """Where "now" comes from (a fixed one in tests)."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Policy:
    daily: int = 30
    monthly: int = 12

    def __post_init__(self) -> None:
        if self.daily < 1 or self.monthly < 0:
            raise ValueError("keep at least 1 daily backup and 0 or more monthly ones")


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(STAMP_FORMAT)


def parse_stamp(name: str) -> dt.datetime | None:
    """The time in a backup file's name, or None when it is not a backup file."""
    m = _NAME.match(name)
    if m is None:
        return None
    return dt.datetime.strptime(m.group(1), STAMP_FORMAT).replace(tzinfo=dt.UTC)


def _month_index(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def to_keep(times: Iterable[dt.datetime], now: dt.datetime, policy: Policy) -> set[dt.datetime]:
    """The backup times to keep out of `times` at `now` (all in UTC)."""
    ordered = sorted(set(times))
    if not ordered:
        return set()
    today = now.astimezone(dt.UTC).date()
    first_day = today - dt.timedelta(days=policy.daily - 1)
    first_month = _month_index(today) - policy.monthly + 1
    newest_of_day: dict[dt.date, dt.datetime] = {}
    newest_of_month: dict[int, dt.datetime] = {}
    keep = {ordered[-1]}
    for t in ordered:  # ascending, so the last assignment per key is the newest
        day = t.date()
        if day > today:
            keep.add(t)
            continue
        if day >= first_day:
            newest_of_day[day] = t
        if policy.monthly and _month_index(day) >= first_month:
            newest_of_month[_month_index(day)] = t
    return keep | set(newest_of_day.values()) | set(newest_of_month.values())


def backups(folder: Path) -> dict[dt.datetime, list[Path]]:
    """Backup time -> its files (dump and manifest) in `folder`."""
    found: dict[dt.datetime, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        when = parse_stamp(path.name)
        if when is not None and path.is_file():
            found.setdefault(when, []).append(path)
    return found


def prune(folder: Path, clock: Clock, policy: Policy, *, dry_run: bool = False) -> list[Path]:
    """Delete the backups `policy` does not keep; return the deleted (or, dry, deletable) files."""
    found = backups(folder)
    keep = to_keep(found, clock.now(), policy)
    doomed = [p for when, paths in sorted(found.items()) if when not in keep for p in paths]
    for path in doomed:
        if dry_run:
            logger.info("would delete %s", path)
        else:
            logger.info("deleting %s (outside the retention policy)", path)
            path.unlink()
    return doomed
