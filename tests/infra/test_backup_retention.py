"""Retention (30 daily, 12 monthly) pruning real files with a fake clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from infra.backup.retention import Policy, parse_stamp, prune, stamp, to_keep


class FixedClock:
    def __init__(self, now: dt.datetime) -> None:
        self._now = now

    def now(self) -> dt.datetime:
        return self._now


def _at(day: dt.date, hour: int = 2) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _make(folder: Path, when: dt.datetime) -> None:
    (folder / f"receipts-{stamp(when)}.dump").write_bytes(b"PGDMP")
    (folder / f"receipts-{stamp(when)}.manifest.json").write_text("{}")


def test_nightly_backups_over_fifteen_months(tmp_path: Path) -> None:
    day = dt.date(2024, 1, 1)
    while day <= dt.date(2025, 3, 15):
        _make(tmp_path, _at(day))
        day += dt.timedelta(days=1)
    _make(tmp_path, _at(dt.date(2025, 3, 10), hour=14))  # a manual one the same day
    (tmp_path / "notes.txt").write_text("not a backup")
    clock = FixedClock(dt.datetime(2025, 3, 15, 12, 0, tzinfo=dt.UTC))

    deleted = prune(tmp_path, clock, Policy(daily=30, monthly=12))

    kept = sorted(t for p in tmp_path.glob("*.dump") if (t := parse_stamp(p.name)) is not None)
    daily = [_at(dt.date(2025, 2, 14) + dt.timedelta(days=i)) for i in range(30)]
    daily[daily.index(_at(dt.date(2025, 3, 10)))] = _at(dt.date(2025, 3, 10), hour=14)
    monthly = [
        _at(dt.date(y, m, d))
        for y, m, d in [
            (2024, 4, 30), (2024, 5, 31), (2024, 6, 30), (2024, 7, 31), (2024, 8, 31),
            (2024, 9, 30), (2024, 10, 31), (2024, 11, 30), (2024, 12, 31), (2025, 1, 31),
        ]
    ]  # fmt: skip
    # February's newest (the 28th) and March's (the 15th) are among the daily ones.
    assert kept == sorted(monthly + daily)
    assert len(kept) == 40
    assert (tmp_path / "notes.txt").exists()
    # Each pruned backup went with its manifest, and every kept dump still has its own.
    assert len(deleted) == 2 * (440 + 1 - 40)
    assert all((tmp_path / f"receipts-{stamp(t)}.manifest.json").exists() for t in kept)
    # Running again the same day deletes nothing more.
    assert prune(tmp_path, clock, Policy()) == []


def test_a_day_later_the_oldest_daily_goes(tmp_path: Path) -> None:
    for i in range(31):
        _make(tmp_path, _at(dt.date(2025, 6, 1) + dt.timedelta(days=i)))
    clock = FixedClock(dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC))
    assert prune(tmp_path, clock, Policy(), dry_run=True)  # June 1 is outside 30 days...
    assert len(list(tmp_path.glob("*.dump"))) == 31  # ...but a dry run deletes nothing
    deleted = prune(tmp_path, clock, Policy(daily=30, monthly=0))
    assert sorted(p.name for p in deleted) == [
        "receipts-20250601T020000Z.dump",
        "receipts-20250601T020000Z.manifest.json",
    ]
    # With monthly retention, June's newest (the 30th) keeps June; the 1st still goes.
    assert to_keep([_at(dt.date(2025, 6, 1))], clock.now(), Policy()) == {
        _at(dt.date(2025, 6, 1))
    }  # the newest backup is always kept, however old


def test_old_backups_only_and_future_ones_are_kept(tmp_path: Path) -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    ancient = [_at(dt.date(2020, 1, d)) for d in (1, 2, 3)]
    future = _at(dt.date(2025, 2, 1))
    assert to_keep([*ancient, future], now, Policy()) == {future}
    assert to_keep(ancient, now, Policy()) == {ancient[-1]}


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1 daily"):
        Policy(daily=0)


def test_image_copy_is_incremental_and_checks_content(tmp_path: Path) -> None:
    import hashlib

    from infra.backup.images import ImageCopyError, copy_images

    store, dest = tmp_path / "store", tmp_path / "copy"
    (store / "ab").mkdir(parents=True)
    good = b"jpeg bytes"
    (store / "ab" / hashlib.sha256(good).hexdigest()).write_bytes(good)
    first = copy_images(store, dest)
    assert (first.copied, first.unchanged, first.bytes_copied) == (1, 0, len(good))
    assert copy_images(store, dest).unchanged == 1
    # A file whose content does not match its content address is refused, not copied.
    (store / "ab" / ("0" * 64)).write_bytes(b"something else")
    with pytest.raises(ImageCopyError, match="does not hold the content"):
        copy_images(store, dest)
    assert not (dest / "ab" / ("0" * 64)).exists()
    assert not list(dest.rglob("*.partial"))
