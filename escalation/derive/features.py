"""Features: the plain numbers the rules compare, for one day.

Latest reading, trend direction, days since a therapy began, whether a support is in place.
The engine compares them with thresholds; nothing here decides whether a rule applies.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Literal, Union

from escalation.derive.placement import Placement, Span
from escalation.derive.readings import Reading, engine_readings, observation_readings
from escalation.load.scenario import Observation, Scenario


@dataclass(frozen=True)
class MeasureFeature:
    """The latest reading within `window` days (None: any time before) as bounds."""

    measure: str
    window: int | None

    @property
    def key(self) -> str:
        return f"{self.measure}__w{'any' if self.window is None else self.window}"


@dataclass(frozen=True)
class TrendFeature:
    """-1 falling, 0 not falling (stable, or reported as not decreasing), 1 rising."""

    marker: str
    window: int

    @property
    def key(self) -> str:
        return f"trend__{self.marker}__w{self.window}"


@dataclass(frozen=True)
class SinceFeature:
    codes: tuple[str, ...]
    of: Literal["first", "last"]

    @property
    def key(self) -> str:
        return f"since_{self.of}__{'_'.join(self.codes)}"


@dataclass(frozen=True)
class ActiveFeature:
    code: str

    @property
    def key(self) -> str:
        return f"active__{self.code}"


@dataclass(frozen=True)
class FindingFeature:
    code: str
    window: int

    @property
    def key(self) -> str:
        return f"finding__{self.code}__w{self.window}"


@dataclass(frozen=True)
class DiagnosisFeature:
    code: str

    @property
    def key(self) -> str:
        return f"dx__{self.code}"


Feature = Union[MeasureFeature, TrendFeature, SinceFeature, ActiveFeature, FindingFeature, DiagnosisFeature]

_DIRECTION = {"decreasing": -1, "not_decreasing": 0, "stable": 0, "rising": 1}



@dataclass
class DayFeatures:
    """Precomputed, sorted views of one placement, so that each day's features are look-ups."""

    scenario: Scenario
    placement: Placement
    readings: dict[str, list[tuple[int, Reading]]] = field(default_factory=dict)
    reported_trends: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    starts: dict[str, list[int]] = field(default_factory=dict)
    intervals: dict[str, list[Span]] = field(default_factory=dict)
    _merged: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    _reading_days: dict[str, list[int]] = field(default_factory=dict)

    def _days(self, measure: str) -> list[int]:
        if measure not in self._reading_days:
            self._reading_days[measure] = [d for d, _ in self.readings.get(measure, [])]
        return self._reading_days[measure]

    @classmethod
    def build(cls, scenario: Scenario, placement: Placement) -> "DayFeatures":
        self = cls(scenario, placement)
        chosen: list[tuple[int, Reading]] = []
        for ev in scenario.events:
            if isinstance(ev, Observation):
                day = placement.spans[ev.id].start
                chosen += [(day, r) for r in engine_readings(observation_readings(ev))]
        for day, r in sorted(chosen, key=lambda x: x[0]):
            self.readings.setdefault(r.measure, []).append((day, r))
        for ev in scenario.events:
            span = placement.spans[ev.id]
            if ev.kind == "trend_report":
                self.reported_trends.setdefault(ev.marker, []).append((span.start, _DIRECTION[ev.direction]))
            code = getattr(ev, "code", None)
            if code is not None:
                self.starts.setdefault(code, []).append(span.start)
                self.intervals.setdefault(code, []).append(span)
        for lst in (*self.reported_trends.values(), *self.starts.values()):
            lst.sort()
        return self

    def value(self, feature: Feature, day: int) -> dict[str, float | int]:
        """The fields one feature contributes to the day's fact; absent when not known."""
        if isinstance(feature, MeasureFeature):
            return self._measure(feature, day)
        if isinstance(feature, TrendFeature):
            t = self._trend(feature, day)
            return {} if t is None else {feature.key: t}
        if isinstance(feature, SinceFeature):
            days = self._starts_of(feature.codes)
            i = bisect_right(days, day)
            if i == 0:
                return {}
            return {feature.key: day - (days[0] if feature.of == "first" else days[i - 1])}
        if isinstance(feature, ActiveFeature):
            active = any(s.start <= day <= s.end for s in self.intervals.get(feature.code, []))
            return {feature.key: int(active)}
        if isinstance(feature, FindingFeature):
            days = self.starts.get(feature.code, [])
            hit = bisect_right(days, day) > bisect_left(days, day - feature.window)
            return {feature.key: int(hit)}
        dx = self.placement.diagnoses.get(feature.code)
        return {feature.key: int(dx is not None and dx <= day)}

    def _starts_of(self, codes: tuple[str, ...]) -> list[int]:
        """Sorted start days of any of the codes, computed once per set of codes."""
        if codes not in self._merged:
            self._merged[codes] = sorted(d for c in codes for d in self.starts.get(c, []))
        return self._merged[codes]

    def _latest(self, measure: str, day: int, window: int | None) -> tuple[int, Reading] | None:
        rows = self.readings.get(measure, [])
        i = bisect_right(self._days(measure), day) - 1
        if i < 0:
            return None
        d, r = rows[i]
        if window is not None and d < day - window:
            return None
        return d, r

    def _measure(self, feature: MeasureFeature, day: int) -> dict[str, float | int]:
        found = self._latest(feature.measure, day, feature.window)
        if found is None:
            return {}
        v = found[1].value
        k = feature.key
        if v.value is None:
            return {f"{k}__ge": v.min, f"{k}__le": v.max}  # type: ignore[dict-item]
        suffix = {"=": "", "<": "__lt", "<=": "__le", ">": "__gt", ">=": "__ge"}[v.comparator]
        return {k + suffix: v.value}

    def _trend(self, feature: TrendFeature, day: int) -> int | None:
        start = day - feature.window
        numeric: tuple[int, int] | None = None
        rows = [x for x in self.readings.get(feature.marker, []) if start <= x[0] <= day]
        if len(rows) >= 2:
            (_, first), (last_day, last) = rows[0], rows[-1]
            (flo, fhi), (llo, lhi) = first.bounds, last.bounds
            if lhi < flo:
                numeric = (last_day, -1)
            elif llo > fhi:
                numeric = (last_day, 1)
            elif flo == fhi == llo == lhi:
                numeric = (last_day, 0)
        reported = [x for x in self.reported_trends.get(feature.marker, []) if start <= x[0] <= day]
        latest_report = reported[-1] if reported else None
        candidates = [c for c in (numeric, latest_report) if c is not None]
        if not candidates:
            return None
        # the most recent evidence wins; on the same day a measured change beats a sentence
        return max(candidates, key=lambda c: (c[0], c is numeric))[1]
