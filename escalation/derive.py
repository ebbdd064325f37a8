"""Derived measures: indices, doses, data-consistency checks and the state of each day.

Everything here is computed from the validated scenario and nothing is typed in twice: the
oxygenation indices from the ventilator settings and gases, body-surface area from height and
weight, absolute doses from regimens. Where the source also states a derived value, both are
kept and compared, because a disagreement in a published figure is itself research material.

The last part turns the timeline into *features* for one day: plain numbers (latest reading,
trend direction, days since a therapy began, whether a support is in place). The rule engine
compares those numbers with thresholds; nothing in this module decides whether a rule applies.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Literal, Union

from .scenario import Observation, Scenario, Therapy, Value
from .vocabulary import CODES, DOSE_UNITS, MEASURES, CodeKind

Pass = Literal["early", "late"]
PASSES: tuple[Pass, Pass] = ("early", "late")

# Reported and recomputed values agree when they differ by at most this fraction of the
# reported value. A stated modelling choice (no source gives one): it absorbs the rounding of
# figures printed to two or three significant digits.
RELATIVE_TOLERANCE = 0.05
# SpO2-based indices are meaningful only at SpO2 <= 97 % (PALICC 2015).
SPO2_INDEX_CEILING = 97.0


# --- Placement: one day for every event, earliest or latest -------------------------------


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Placement:
    """Every event's start and end day under one reading of its uncertain timing.

    The replay runs twice: once with every uncertain event as early as its source allows and
    once as late. A flag's day range is the spread between the two.
    """

    name: Pass
    first_day: int
    last_day: int
    spans: dict[str, Span]
    diagnoses: dict[str, int]


def timeline_bounds(scenario: Scenario, through_day: int | None = None) -> tuple[int, int]:
    """The first and last day any bound in the scenario names (or the day the clock must reach)."""
    days: list[int] = [] if through_day is None else [through_day]
    for ev in scenario.events:
        for rng in (ev.day, getattr(ev, "until", None)):
            if rng is not None:
                days += [d for d in (rng.earliest, rng.latest) if d is not None]
    for dx in scenario.patient.diagnoses:
        days += [d for d in (dx.day.earliest, dx.day.latest) if d is not None]
    return min(days), max(days)


def place(scenario: Scenario, which: Pass, through_day: int | None = None) -> Placement:
    """Give every event one start and end day; the clock runs to `through_day` if it is later."""
    lo, hi = timeline_bounds(scenario, through_day)
    pick = 0 if which == "early" else 1
    spans: dict[str, Span] = {}
    for ev in scenario.events:
        start = ev.day.resolve(lo, hi)[pick]
        until = getattr(ev, "until", None)
        if until is not None:
            end = max(start, until.resolve(start, hi)[pick])
        elif isinstance(ev, Therapy):
            end = start + (ev.days_per_course or 1) - 1
        elif CODES.get(getattr(ev, "code", ""), None) and CODES[ev.code].kind in (
            CodeKind.support,
            CodeKind.procedure,
        ):
            end = hi  # in place until the end of the record unless the source says otherwise
        else:
            end = start
        spans[ev.id] = Span(start, end)
    diagnoses = {dx.code: dx.day.resolve(lo, hi)[pick] for dx in scenario.patient.diagnoses}
    return Placement(which, lo, hi, spans, diagnoses)


# --- Readings and derived indices --------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One value of one measure on one event, in canonical units."""

    event_id: str
    measure: str
    value: Value
    origin: Literal["measured", "computed", "reported", "implied"]
    formula: str | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """The interval the true value lies in (open ends as infinities)."""
        v = self.value
        if v.value is None:
            return (v.min, v.max)  # type: ignore[return-value]
        if v.comparator == "=":
            return (v.value, v.value)
        if v.comparator in ("<", "<="):
            return (-math.inf, v.value)
        return (v.value, math.inf)


def _exact(obs: Observation, measure: str) -> float | None:
    v = obs.values.get(measure)
    return v.canonical(measure).exact if v is not None else None


def _reported(obs: Observation, measure: str) -> float | None:
    v = obs.reported.get(measure)
    return v.canonical(measure).exact if v is not None else None


def _num(x: float) -> Value:
    return Value(value=round(x, 4))


def observation_readings(obs: Observation) -> list[Reading]:
    """Measured values, then indices recomputed from them, then the indices the source reports."""
    out = [Reading(obs.id, m, v.canonical(m), "measured") for m, v in obs.values.items()]
    fio2, map_, spo2 = _exact(obs, "fio2"), _exact(obs, "map"), _exact(obs, "spo2")
    pao2 = _exact(obs, "pao2")
    pao2_formula = "PaO2"
    if pao2 is None and fio2 is not None and _reported(obs, "pf") is not None:
        # The source gives P/F but not PaO2: the PaO2 it implies is what OI must be computed from.
        pao2 = _reported(obs, "pf") * fio2  # type: ignore[operator]
        pao2_formula = "PaO2 implied by reported P/F x FiO2"
        out.append(Reading(obs.id, "pao2", _num(pao2), "implied", "reported P/F x FiO2"))
    if pao2 is not None and fio2 is not None and _exact(obs, "pao2") is not None:
        out.append(Reading(obs.id, "pf", _num(pao2 / fio2), "computed", "PaO2 / FiO2"))
    if pao2 is not None and fio2 is not None and map_ is not None:
        out.append(
            Reading(obs.id, "oi", _num(map_ * fio2 * 100 / pao2), "computed",
                    f"MAP x FiO2 x 100 / {pao2_formula}")
        )
    if spo2 is not None and fio2 is not None and spo2 <= SPO2_INDEX_CEILING:
        out.append(Reading(obs.id, "sf", _num(spo2 / fio2), "computed", "SpO2 / FiO2"))
        if map_ is not None:
            out.append(Reading(obs.id, "osi", _num(map_ * fio2 * 100 / spo2), "computed",
                               "MAP x FiO2 x 100 / SpO2"))
    elif spo2 is None and fio2 is not None and "spo2" in obs.values:
        out += _bounded_spo2_indices(obs.id, obs.values["spo2"].canonical("spo2"), fio2, map_)
    out += [Reading(obs.id, m, v.canonical(m), "reported") for m, v in obs.reported.items()]
    return out


def _bounded_spo2_indices(event_id: str, spo2: Value, fio2: float, map_: float | None) -> list[Reading]:
    """S/F and OSI from an SpO2 known only as an upper bound ("could not be kept at 90 %").

    SpO2 < x gives S/F < x / FiO2 and OSI > MAP x FiO2 x 100 / x: bounds the rules can use.
    A lower bound on SpO2 gives nothing, since the SpO2 could then exceed the 97 % ceiling.
    """
    if spo2.value is None or spo2.comparator not in ("<", "<=") or spo2.value > SPO2_INDEX_CEILING:
        return []
    x, op = spo2.value, spo2.comparator
    out = [Reading(event_id, "sf", Value(value=round(x / fio2, 4), comparator=op), "computed",
                   "SpO2 / FiO2, from an upper bound on SpO2")]
    if map_ is not None:
        flipped = ">" if op == "<" else ">="
        out.append(Reading(event_id, "osi", Value(value=round(map_ * fio2 * 100 / x, 4), comparator=flipped),
                           "computed", "MAP x FiO2 x 100 / SpO2, from an upper bound on SpO2"))
    return out


def engine_readings(readings: list[Reading]) -> list[Reading]:
    """The readings the rules see: a recomputed index wins over the reported one it was checked
    against, and an implied input is not shown to rules as if it had been measured."""
    computed = {(r.event_id, r.measure) for r in readings if r.origin == "computed"}
    return [
        r
        for r in readings
        if r.origin in ("measured", "computed")
        or (r.origin == "reported" and (r.event_id, r.measure) not in computed)
    ]


# --- Body-surface area and doses ------------------------------------------------------------


def mosteller_bsa(height_cm: float, weight_kg: float) -> float:
    """Body-surface area in m2 (Mosteller): sqrt(height x weight / 3600)."""
    return math.sqrt(height_cm * weight_kg / 3600)


@dataclass(frozen=True)
class ImpliedDose:
    event_id: str
    code: str
    course: int | None
    regimen: str
    amount: float
    unit: str
    basis_value: float
    basis_unit: str
    basis_day: int

    def label(self) -> str:
        course = f" course {self.course}" if self.course else ""
        return (
            f"{self.code}{course} {self.regimen} x {self.basis_value:g} {self.basis_unit} "
            f"(day {self.basis_day}) = {self.amount:g} {self.unit}"
        )


def _latest_value(readings: list[tuple[int, Reading]], measure: str, day: int) -> tuple[int, float] | None:
    best = None
    for d, r in readings:
        if r.measure == measure and d <= day and r.value.exact is not None:
            if best is None or d >= best[0]:
                best = (d, r.value.exact)
    return best


def implied_doses(scenario: Scenario, placement: Placement) -> list[ImpliedDose]:
    """The absolute dose each weight- or surface-based regimen implies for this patient."""
    dated = dated_readings(scenario, placement)
    out: list[ImpliedDose] = []
    for ev in scenario.events:
        if not isinstance(ev, Therapy) or ev.dose is None:
            continue
        amount_unit, basis, period = DOSE_UNITS[ev.dose.unit]
        if basis is None:
            continue
        start = placement.spans[ev.id].start
        weight = _latest_value(dated, "weight", start)
        if weight is None:
            continue
        unit = amount_unit + (f"/{period}" if period else "")
        if basis == "kg":
            out.append(ImpliedDose(ev.id, ev.code, ev.course, f"{ev.dose.value:g} {ev.dose.unit}",
                                   round(ev.dose.value * weight[1], 2), unit, weight[1], "kg", weight[0]))
        else:
            height = _latest_value(dated, "height", start)
            if height is None:
                continue
            bsa = round(mosteller_bsa(height[1], weight[1]), 4)
            out.append(ImpliedDose(ev.id, ev.code, ev.course, f"{ev.dose.value:g} {ev.dose.unit}",
                                   round(ev.dose.value * bsa, 2), unit, bsa, "m2 (Mosteller)",
                                   max(height[0], weight[0])))
    return out


# --- Data-consistency checks -----------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One comparison of two statements that should fit together."""

    kind: str
    event_ids: tuple[str, ...]
    agrees: bool
    message: str
    reported: float | None = None
    derived: float | None = None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= RELATIVE_TOLERANCE * abs(b)


def consistency_checks(scenario: Scenario, early: Placement, late: Placement) -> list[Check]:
    checks: list[Check] = []
    for ev in scenario.events:
        if isinstance(ev, Observation):
            checks += _index_checks(ev)
            checks += _pressure_checks(ev)
    checks += _interval_checks(scenario, early, late)
    checks += _study_checks(scenario)
    return checks


def _index_checks(obs: Observation) -> list[Check]:
    readings = observation_readings(obs)
    computed = {r.measure: r for r in readings if r.origin == "computed"}
    out = []
    for measure, rep in obs.reported.items():
        reported = rep.canonical(measure).exact
        if reported is None or measure not in computed:
            continue
        mine = computed[measure].value.exact
        if mine is None:
            continue  # a bound, not a value: nothing to compare a reported figure with
        agrees = _close(mine, reported)
        name = MEASURES[measure].name
        text = (
            f"{name}: reported {reported:g}, recomputed {mine:g} from {computed[measure].formula}"
            f" with {_inputs_label(obs)}"
        )
        if not agrees and measure == "oi" and "pf" in obs.reported and _exact(obs, "map"):
            pf = _reported(obs, "pf")
            text += (
                f"; for OI {reported:g} the P/F would have to be "
                f"{_exact(obs, 'map') * 100 / reported:g}, or MAP {reported * pf / 100:g} cmH2O"  # type: ignore[operator]
            )
        out.append(Check("reported_index", (obs.id,), agrees,
                         text + ("" if agrees else " (beyond the 5 % tolerance)"), reported, mine))
    return out


_SHORT = {"map": "MAP", "fio2": "FiO2", "pao2": "PaO2", "spo2": "SpO2", "pf": "P/F"}


def _inputs_label(obs: Observation) -> str:
    parts = [f"{_SHORT[m]} {v.label()}" for m, v in obs.values.items() if m in _SHORT]
    parts += [f"reported {_SHORT[m]} {v.label()}" for m, v in obs.reported.items() if m == "pf"]
    return ", ".join(parts)


def _pressure_checks(obs: Observation) -> list[Check]:
    peep, map_, pip = (_exact(obs, m) for m in ("peep", "map", "pip"))
    if None in (peep, map_, pip):
        return []
    agrees = peep <= map_ <= pip  # type: ignore[operator]
    return [Check("ventilator_pressures", (obs.id,), agrees,
                  f"PEEP {peep:g} <= MAP {map_:g} <= PIP {pip:g} cmH2O: "
                  + ("in order" if agrees else "out of order"))]


def _interval_checks(scenario: Scenario, early: Placement, late: Placement) -> list[Check]:
    out = []
    def gap(iv, p: Placement) -> int:
        end = p.spans[iv.end]
        return (end.end if iv.end_point == "until" else end.start) - p.spans[iv.start].start

    for iv in scenario.reported_intervals:
        lo, hi = sorted((gap(iv, early), gap(iv, late)))
        agrees = lo <= iv.days <= hi
        span = f"{lo}" if lo == hi else f"{lo} to {hi}"
        out.append(Check("reported_interval", (iv.start, iv.end), agrees,
                         f"{iv.start} to {iv.end} ({iv.end_point}): reported {iv.days} days, "
                         f"timeline gives {span}", iv.days, lo))
    return out


def _study_checks(scenario: Scenario) -> list[Check]:
    studies: dict[str, list] = {}
    for ev in scenario.events:
        if getattr(ev, "study", None):
            studies.setdefault(ev.study, []).append(ev)
    out = []
    for name, evs in sorted(studies.items()):
        for other in evs[1:]:
            a, b = set(evs[0].findings), set(other.findings)
            agrees = a == b
            diff = "" if agrees else (
                f": only in {evs[0].id}: {', '.join(sorted(a - b)) or '-'}; "
                f"only in {other.id}: {', '.join(sorted(b - a)) or '-'}"
            )
            out.append(Check("imaging_study", (evs[0].id, other.id), agrees,
                             f"study {name} described twice ({evs[0].source.label()} / "
                             f"{other.source.label()}): findings " + ("agree" if agrees else "differ") + diff))
    return out


# --- Features: the numbers the rules compare, for one day -----------------------------------


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


def dated_readings(scenario: Scenario, placement: Placement) -> list[tuple[int, Reading]]:
    out = []
    for ev in scenario.events:
        if isinstance(ev, Observation):
            day = placement.spans[ev.id].start
            out += [(day, r) for r in observation_readings(ev)]
    return out


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
