"""FHIR dates and times to whole days from day 0, keeping every uncertainty the record has.

A FHIR `dateTime` may be a year, a year-month, a date or a timestamp with a zone. A year or a
year-month says the fact happened on some day inside it, so it becomes a range of days, never its
first day. Timestamps are placed on the calendar of day 0: each is converted to the UTC offset of
the day-0 timestamp (UTC when day 0 is a plain date) and its date there counts. A plain date is
taken as that calendar date. A timestamp without a zone (which FHIR forbids) is read as written.
Where dates and timestamps must be put in order (which encounter starts first), a plain date
counts from 00:00 UTC of its date (`start_order`).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


@dataclass(frozen=True)
class Span:
    """The calendar dates a FHIR value may stand for, both included."""

    first: date
    last: date


def span(value: Any, zone: tzinfo) -> Span | None:
    """The dates a FHIR date, dateTime or instant may stand for; None when it is absent."""
    if value is None:
        return None
    if isinstance(value, datetime):
        local = value.astimezone(zone) if value.tzinfo is not None else value
        return Span(local.date(), local.date())
    if isinstance(value, date):
        return Span(value, value)
    match = _PARTIAL.match(str(value))
    if match is None:
        raise ValueError(f"not a FHIR date: {value!r}")
    year, month = int(match[1]), match[2]
    if month is None:
        return Span(date(year, 1, 1), date(year, 12, 31))
    m = int(month)
    return Span(date(year, m, 1), date(year, m, calendar.monthrange(year, m)[1]))


@dataclass(frozen=True)
class Clock:
    """Day 0 on a calendar, and the UTC offset timestamps are read in."""

    day_zero: date
    zone: tzinfo

    def days(self, value: Any) -> tuple[int, int] | None:
        """First and last day a FHIR value may stand for, from day 0."""
        s = span(value, self.zone)
        if s is None:
            return None
        return (s.first - self.day_zero).days, (s.last - self.day_zero).days

    def on(self, day: int) -> date:
        """The calendar date of a day, for the export."""
        return self.day_zero + timedelta(days=day)


def clock_from(value: Any) -> Clock | None:
    """Day 0 at a timestamp or date; a partial date cannot be day 0 (None)."""
    if isinstance(value, datetime):
        zone = value.tzinfo or timezone.utc
        return Clock(value.astimezone(zone).date() if value.tzinfo else value.date(), zone)
    if isinstance(value, date):
        return Clock(value, timezone.utc)
    return None


def start_order(value: date) -> datetime:
    """Where a full date or timestamp falls on one time line: how the first of several starts
    (the encounter that sets day 0) is found when some are dates and others timestamps.

    A timestamp is its instant (one without a zone read as UTC, as `clock_from` reads it). A
    plain date counts as 00:00 UTC of that date: the first moment of that day in UTC, the offset
    a plain-date day 0 counts days in. A date and a timestamp cannot be compared as they stand
    (Python refuses to), and this is the order under which the first start is a day 0 that puts
    no other start on a negative day: a timestamp after 00:00 UTC of a date falls in UTC on that
    date or later, and one before it falls, in its own offset (at most +14:00), on that date or
    earlier. Starts that fall at the same moment keep their order in the input.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)


def parse_day_zero(text: str) -> Clock:
    """`--day-zero`: a date (YYYY-MM-DD) or a timestamp with its offset (ISO 8601)."""
    try:
        if len(text) == 10:
            return Clock(date.fromisoformat(text), timezone.utc)
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--day-zero {text!r}: give a date YYYY-MM-DD or a timestamp "
                         "YYYY-MM-DDThh:mm:ss+hh:mm") from None
    clock = clock_from(stamp)
    assert clock is not None
    return clock


def offset_label(zone: tzinfo) -> str:
    """`UTC`, or `UTC+02:00`: how the summary and the scenario name the zone days are counted in."""
    delta = zone.utcoffset(None) if zone.utcoffset(None) is not None else timedelta(0)
    if not delta:
        return "UTC"
    sign = "+" if delta >= timedelta(0) else "-"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# --- scenario day forms ----------------------------------------------------------------------


def day_form(lo: int | None, hi: int | None) -> int | dict[str, Any]:
    """The scenario file's form of a range of days: `D`, `{between}`, `{on_or_before}`, `{on_or_after}`."""
    if lo is not None and lo == hi:
        return lo
    if lo is None:
        return {"on_or_before": hi}
    if hi is None:
        return {"on_or_after": lo}
    return {"between": [lo, hi]}


def period_days(clock: Clock, start: Any, end: Any) -> tuple[tuple[int | None, int | None], tuple[int | None, int | None]]:
    """(first, last) day each end of a Period may fall on; None where that end is absent."""
    s, e = clock.days(start), clock.days(end)
    return (s if s else (None, None)), (e if e else (None, None))
