"""Features: the plain numbers the rules compare, for one day.

Latest reading, trend direction, days since a therapy began, whether a support is in place.
The engine compares them with thresholds; nothing here decides whether a rule applies.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Iterable, Literal, Union

from escalation.derive.placement import Placement, Span, field_of
from escalation.derive.readings import Reading, engine_readings, observation_readings
from escalation.load.scenario import Observation, Scenario
from escalation.load.vocabulary import kinds_of, narrower


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

_NONE: list[int] = []  # no readings of a measure (never changed)
_DIRECTION = {"decreasing": -1, "not_decreasing": 0, "stable": 0, "rising": 1}


@dataclass(frozen=True)
class CodeMatch:
    """A code in the timeline related, through the vocabulary's kinds, to one a rule asks for.

    Kept so that an explanation can say how a condition was read: `counts` when the recorded
    code is a narrower kind that meets the rule (RP-ILD for a rule asking for ILD), not when the
    timeline holds only a broader code, which never meets it (ILD for a rule asking for RP-ILD).
    """

    asked: str
    recorded: str
    counts: bool

    def text(self) -> str:
        if self.counts:
            return f"{self.recorded} recorded; counts for {self.asked}, as a kind of it"
        return f"{self.recorded} recorded; rule asks for {self.asked}, a narrower kind"


@dataclass
class DayFeatures:
    """Precomputed, sorted views of one placement, so that each day's features are look-ups.
    (It holds the scenario's readings, not the scenario: see Placement.derived.)"""

    placement: Placement
    reported_trends: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    starts: dict[str, list[int]] = field(default_factory=dict)
    intervals: dict[str, list[Span]] = field(default_factory=dict)
    _merged: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    _reading_days: dict[str, list[int]] = field(default_factory=dict)  # each measure's reading days, sorted
    _values: dict[str, list[Reading]] = field(default_factory=dict)  # its readings, in the same order
    _report_days: dict[str, list[int]] = field(default_factory=dict)

    @property
    def readings(self) -> dict[str, list[tuple[int, Reading]]]:
        """Each measure's readings with their days, by day. Kept as two lists per measure, not a
        tuple per reading: a long record has a hundred thousand readings."""
        return {m: list(zip(self._reading_days[m], rs)) for m, rs in self._values.items()}

    def _days(self, measure: str) -> list[int]:
        return self._reading_days.get(measure, _NONE)

    def _reported_days(self, marker: str) -> list[int]:
        if marker not in self._report_days:
            self._report_days[marker] = [d for d, _ in self.reported_trends.get(marker, [])]
        return self._report_days[marker]

    @classmethod
    def build(cls, scenario: Scenario, placement: Placement) -> "DayFeatures":
        """The features of one placement, built once for it (Placement.derived)."""
        return placement.derived(scenario, cls._build)

    @classmethod
    def _build(cls, scenario: Scenario, placement: Placement) -> "DayFeatures":
        self = cls(placement)
        days: list[int] = []
        chosen: list[Reading] = []
        for ev in scenario.events:
            if isinstance(ev, Observation):
                found = engine_readings(observation_readings(ev))
                days += [placement.spans[ev.id].start] * len(found)
                chosen += found
        for i in sorted(range(len(days)), key=days.__getitem__):  # stable: same-day readings in file order
            r = chosen[i]
            self._reading_days.setdefault(r.measure, []).append(days[i])
            self._values.setdefault(r.measure, []).append(r)
        for ev in scenario.events:
            span = placement.spans[ev.id]
            if ev.kind == "trend_report":
                self.reported_trends.setdefault(ev.marker, []).append((span.start, _DIRECTION[ev.direction]))
            code = field_of(ev, "code")
            if code is not None:
                self.starts.setdefault(code, []).append(span.start)
                self.intervals.setdefault(code, []).append(span)
        for reports in self.reported_trends.values():
            reports.sort(key=lambda r: r[0])  # stable: of two reports on one day, the later-listed wins
        for starts in self.starts.values():
            starts.sort()
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
            active = any(s.start <= day <= s.end
                         for c in kinds_of(feature.code) for s in self.intervals.get(c, []))
            return {feature.key: int(active)}
        if isinstance(feature, FindingFeature):
            days = self._starts_of((feature.code,))
            hit = bisect_right(days, day) > bisect_left(days, day - feature.window)
            return {feature.key: int(hit)}
        made = [d for c, d in self.placement.diagnoses.items() if c in kinds_of(feature.code)]
        return {feature.key: int(any(d <= day for d in made))}

    def change_days(self, feature: Feature) -> list[int]:
        """Every day on which the feature's value may differ from the day before's, other than by
        a SinceFeature's daily count (it is day minus a start day, and grows by one a day).

        Between two of these days a feature keeps its value: a reading enters its window on its
        day and leaves it the day after the window ends, a support is in place from its start to
        the day after its end, and so on. The replay computes values only on these days. A day
        listed when nothing changes costs a look-up; a change left out would be a wrong fact, which
        the tests compare day by day with `value`.
        """
        if isinstance(feature, MeasureFeature):
            days = self._days(feature.measure)
            return days if feature.window is None else days + [d + feature.window + 1 for d in days]
        if isinstance(feature, TrendFeature):
            days = self._days(feature.marker) + self._reported_days(feature.marker)
            return days + [d + feature.window + 1 for d in days]
        if isinstance(feature, SinceFeature):
            return self._starts_of(feature.codes)
        if isinstance(feature, ActiveFeature):
            spans = [s for c in kinds_of(feature.code) for s in self.intervals.get(c, [])]
            return [s.start for s in spans] + [s.end + 1 for s in spans]
        if isinstance(feature, FindingFeature):
            days = self._starts_of((feature.code,))
            return days + [d + feature.window + 1 for d in days]
        return [d for c, d in self.placement.diagnoses.items() if c in kinds_of(feature.code)]

    def _starts_of(self, codes: tuple[str, ...]) -> list[int]:
        """Sorted start days of any of the codes or their narrower kinds, once per set of codes."""
        if codes not in self._merged:
            counted = {k for c in codes for k in kinds_of(c)}
            self._merged[codes] = sorted(d for c in counted for d in self.starts.get(c, []))
        return self._merged[codes]

    def code_matches(self, asked: Iterable[str], day: int) -> list[CodeMatch]:
        """Codes begun or diagnosed by `day` that relate to an asked code only through the kinds.

        Equal codes are left out: these are the matches a reader would not guess from the rule.
        """
        recorded = {c for c, days in self.starts.items() if days and days[0] <= day}
        recorded |= {c for c, d in self.placement.diagnoses.items() if d <= day}
        return [CodeMatch(a, r, narrower(r, a)) for a in asked for r in sorted(recorded)
                if narrower(r, a) or narrower(a, r)]

    def _latest(self, measure: str, day: int, window: int | None) -> tuple[int, Reading] | None:
        days = self._days(measure)
        i = bisect_right(days, day) - 1
        if i < 0:
            return None
        d, r = days[i], self._values[measure][i]
        if window is not None and d < day - window:
            return None
        return d, r

    def reading(self, feature: MeasureFeature, day: int) -> Reading | None:
        """The reading a measure feature reads on `day`: for a report to say where a value came from."""
        found = self._latest(feature.measure, day, feature.window)
        return None if found is None else found[1]

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
        days = self._days(feature.marker)  # by day; the readings inside are [lo:hi]
        lo, hi = bisect_left(days, start), bisect_right(days, day)
        if hi - lo >= 2:
            rows = self._values[feature.marker]
            first, last_day, last = rows[lo], days[hi - 1], rows[hi - 1]
            (flo, fhi), (llo, lhi) = first.bounds, last.bounds
            if lhi < flo:
                numeric = (last_day, -1)
            elif llo > fhi:
                numeric = (last_day, 1)
            elif flo == fhi == llo == lhi:
                numeric = (last_day, 0)
        reports = self.reported_trends.get(feature.marker, [])
        i = bisect_right(self._reported_days(feature.marker), day) - 1  # the latest report by `day`
        latest_report = reports[i] if i >= 0 and reports[i][0] >= start else None
        candidates = [c for c in (numeric, latest_report) if c is not None]
        if not candidates:
            return None
        # the most recent evidence wins; on the same day a measured change beats a sentence
        return max(candidates, key=lambda c: (c[0], c is numeric))[1]
