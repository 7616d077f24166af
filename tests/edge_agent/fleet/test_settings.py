"""The runtime-settings whitelist, the shadow's versions and persistence, quiet hours."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from edge_agent.config import AgentConfig, parse_config
from edge_agent.fleet import settings as runtime
from edge_agent.fleet.shadow import ConfigShadow
from edge_agent.quiethours import QuietHours
from models.protocol import ConfigDesired


def base(tmp_path: Path, **extra) -> AgentConfig:
    data = {"device_id": "dev-1", "source": {"type": "folder", "path": "in"}} | extra
    return parse_config(data, base_dir=tmp_path)


def test_each_value_is_checked_by_the_config_field_behind_it(tmp_path: Path) -> None:
    config = base(tmp_path)
    assert runtime.validate_value(config, "image_quality", 40) == 40
    with pytest.raises(ValueError, match="less than or equal to 100"):
        runtime.validate_value(config, "image_quality", 400)
    with pytest.raises(ValueError, match="greater than 0"):
        runtime.validate_value(config, "trigger.change_fraction", 0)
    with pytest.raises(ValueError, match=r"allowed: .*upload_images"):
        runtime.validate_value(config, "broker.host", "evil.example")
    hours = runtime.validate_value(config, "quiet_hours", {"start": "22:00", "end": "06:30"})
    assert isinstance(hours, QuietHours)
    with pytest.raises(ValueError, match="start and end are equal"):
        runtime.validate_value(config, "quiet_hours", {"start": "22:00", "end": "22:00"})


def test_resolve_applies_what_validates_and_keeps_the_rest(tmp_path: Path) -> None:
    config = base(tmp_path, image_quality=70)
    in_force = {"image_quality": 50, "upload_images": False}
    overrides, rejected = runtime.resolve(
        config,
        in_force,
        {"image_quality": 500, "pipeline.threads": 2, "telemetry.interval_s": None, "x": 1},
    )
    # image_quality refused: the value in force stays; upload_images not desired: back to file
    assert overrides == {"image_quality": 50, "pipeline.threads": 2}
    assert set(rejected) == {"image_quality", "x"}
    effective = runtime.apply(config, overrides)
    assert effective.image_quality == 50 and effective.pipeline.threads == 2
    assert effective.upload_images is True and config.pipeline.threads == 1
    reported = runtime.reported(effective)
    assert set(reported) == set(runtime.RUNTIME_SETTINGS)
    assert reported["quiet_hours"] is None and reported["image_quality"] == 50


def test_shadow_ignores_old_versions_and_survives_a_restart(tmp_path: Path) -> None:
    config = base(tmp_path)
    path = tmp_path / "state" / "config.json"
    shadow = ConfigShadow(config, path)
    proposal = shadow.propose(
        ConfigDesired(version=4, settings={"upload_images": False, "bogus": 1})
    )
    assert proposal is not None
    shadow.commit(proposal)
    assert shadow.propose(ConfigDesired(version=4, settings={})) is None
    assert shadow.propose(ConfigDesired(version=3, settings={})) is None
    again = ConfigShadow(config, path)
    report = again.report()
    assert report.version == 4
    assert report.settings["upload_images"] is False
    assert set(report.rejected) == {"bogus"}
    assert again.config.upload_images is False


def test_a_refused_apply_keeps_the_value_in_force(tmp_path: Path) -> None:
    config = base(tmp_path)
    shadow = ConfigShadow(config, tmp_path / "config.json")
    first = shadow.propose(ConfigDesired(version=1, settings={"pipeline.threads": 2}))
    assert first is not None
    shadow.commit(first)
    second = shadow.propose(ConfigDesired(version=2, settings={"pipeline.threads": 3}))
    assert second is not None
    refused = second.refuse("pipeline.threads", "cannot build", config)
    assert refused.overrides == {"pipeline.threads": 2}
    assert refused.config.pipeline.threads == 2
    assert refused.rejected == {"pipeline.threads": "cannot build"}


def test_a_damaged_state_file_falls_back_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    shadow = ConfigShadow(base(tmp_path), path)
    assert shadow.version == 0 and shadow.overrides == {}
    path.write_text('{"version": 3, "settings": {"image_quality": 9000, "upload_images": false}}')
    shadow = ConfigShadow(base(tmp_path), path)
    assert shadow.version == 3 and shadow.overrides == {"upload_images": False}


@pytest.mark.parametrize(
    ("start", "end", "hhmm", "quiet"),
    [
        ("22:00", "06:00", "23:30", True),
        ("22:00", "06:00", "05:59", True),
        ("22:00", "06:00", "06:00", False),
        ("22:00", "06:00", "12:00", False),
        ("12:00", "13:30", "12:00", True),
        ("12:00", "13:30", "13:30", False),
    ],
)
def test_quiet_hours_wrap_past_midnight(start: str, end: str, hhmm: str, quiet: bool) -> None:
    hours, minutes = map(int, hhmm.split(":"))
    now = dt.datetime(2024, 6, 1, hours, minutes)
    assert QuietHours(start=start, end=end).active(now) is quiet


def test_quiet_hours_in_a_named_time_zone() -> None:
    hours = QuietHours(start="22:00", end="06:00", timezone="Asia/Tokyo")
    assert hours.active(dt.datetime(2024, 6, 1, 14, 0, tzinfo=dt.UTC))  # 23:00 in Tokyo
    assert not hours.active(dt.datetime(2024, 6, 1, 3, 0, tzinfo=dt.UTC))  # 12:00 in Tokyo
    with pytest.raises(ValueError, match="unknown time zone"):
        QuietHours(start="22:00", end="06:00", timezone="Mars/Olympus")
