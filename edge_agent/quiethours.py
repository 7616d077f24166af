"""Quiet hours: a daily span of time (e.g. 22:00-06:00) when the scanner neither scans nor beeps.

The span is in the scanner's local time, or in `timezone` (an IANA name) when given; it may wrap
past midnight; start == end is refused (it would mean always or never). Commands from the server
still run during quiet hours.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from edge_agent.configbase import StrictModel

_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class QuietHours(StrictModel):
    """No scanning and no buzzer from `start` until `end` every day."""

    start: str = Field(pattern=_HHMM, description="Start, HH:MM (24 h).")
    end: str = Field(pattern=_HHMM, description="End, HH:MM (24 h); may be before start.")
    timezone: str | None = Field(
        default=None, description="IANA time zone, e.g. Europe/Paris; default: the system's."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {v!r} (use an IANA name)") from exc
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: give a span, or no quiet hours at all")
        return self

    def active(self, now: dt.datetime | None = None) -> bool:
        """Whether `now` (default: the current time) falls in the quiet span."""
        zone = ZoneInfo(self.timezone) if self.timezone else None
        if now is None:
            now = dt.datetime.now(zone) if zone else dt.datetime.now().astimezone()
        elif zone is not None and now.tzinfo is not None:
            now = now.astimezone(zone)
        minute = now.hour * 60 + now.minute
        start, end = _minutes(self.start), _minutes(self.end)
        if start < end:
            return start <= minute < end
        return minute >= start or minute < end
