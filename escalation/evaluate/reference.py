"""A second evaluator of the rule format, in plain Python, to check the engine's decisions.

durable_rules 2.0.28 is unmaintained and has traps (shared/notes/durable-rules.md), so every
decision it makes is checked against this small evaluator, written from the documented
semantics of the rule format (README, "Writing a rule") and sharing none of the engine path:
not `engine.py` (compilation, the engine session), not `replay.py` (the clock and its memory),
and not `derive.DayFeatures` (the features the engine is fed). It shares only what comes before
rule evaluation: the validated models, the placement of uncertain days, and the derived readings
(indices recomputed from their inputs), which have tests of their own.

It is deliberately naive: for every day it scans the whole timeline. That is slow and easy to
read, which is the point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from escalation.derive.placement import PASSES, Placement, place
from escalation.derive.readings import engine_readings, observation_readings
from escalation.load.ruleset import (
    ActiveCondition,
    DiagnosisCondition,
    FindingCondition,
    GivenCondition,
    MeasureCondition,
    Rule,
    Ruleset,
    SinceCondition,
    StepCondition,
    TrendCondition,
)
from escalation.load.scenario import Observation, Scenario
from escalation.load.vocabulary import narrower

Decision = tuple[str, int, int]  # rule id, day, occurrence


@dataclass(frozen=True)
class _Reading:
    day: int
    low: float  # the true value lies in [low, high] (ends may be strict, see below)
    high: float
    low_strict: bool
    high_strict: bool


def _reading(day: int, v) -> _Reading:
    if v.value is None:
        return _Reading(day, v.min, v.max, False, False)
    c, x = v.comparator, v.value
    if c == "=":
        return _Reading(day, x, x, False, False)
    if c in ("<", "<="):
        return _Reading(day, -math.inf, x, False, c == "<")
    return _Reading(day, x, math.inf, c == ">", False)


def _certainly(r: _Reading, op: str, t: float) -> bool:
    """True only when every value the reading allows satisfies `value op t`."""
    if op == "<":
        return r.high < t or (r.high_strict and r.high <= t)
    if op == "<=":
        return r.high <= t
    if op == ">":
        return r.low > t or (r.low_strict and r.low >= t)
    return r.low >= t


class _Timeline:
    """One placement of a scenario, asked questions day by day."""

    def __init__(self, scenario: Scenario, placement: Placement) -> None:
        self.s = scenario
        self.p = placement
        self.readings: dict[str, list[_Reading]] = {}
        self.reports = [(placement.spans[e.id].start, e) for e in scenario.events if e.kind == "trend_report"]
        for ev in scenario.events:
            if isinstance(ev, Observation):
                day = placement.spans[ev.id].start
                for r in engine_readings(observation_readings(ev)):
                    self.readings.setdefault(r.measure, []).append(_reading(day, r.value))

    def latest(self, measure: str, day: int, window: int | None) -> _Reading | None:
        best = None
        for r in self.readings.get(measure, []):
            if r.day <= day and (window is None or r.day >= day - window):
                if best is None or r.day >= best.day:
                    best = r  # on a tie the later-listed reading wins
        return best

    def trend(self, marker: str, day: int, window: int) -> int | None:
        inside = [r for r in self.readings.get(marker, []) if day - window <= r.day <= day]
        inside.sort(key=lambda r: r.day)
        numeric = None
        if len(inside) >= 2:
            a, b = inside[0], inside[-1]
            if b.high < a.low:
                numeric = (b.day, -1)
            elif b.low > a.high:
                numeric = (b.day, 1)
            elif a.low == a.high == b.low == b.high:
                numeric = (b.day, 0)
        said = None
        for d, ev in self.reports:
            if ev.marker == marker:
                if day - window <= d <= day and (said is None or d >= said[0]):
                    said = (d, {"decreasing": -1, "rising": 1}.get(ev.direction, 0))
        if numeric and said:
            return numeric[1] if numeric[0] >= said[0] else said[1]
        return (numeric or said or (None, None))[1]

    def starts(self, codes: list[str], day: int) -> list[int]:
        return sorted(self.p.spans[e.id].start for e in self.s.events
                      if _counts(getattr(e, "code", None), codes) and self.p.spans[e.id].start <= day)

    def active(self, code: str, day: int) -> bool:
        return any(self.p.spans[e.id].start <= day <= self.p.spans[e.id].end
                   for e in self.s.events if _counts(getattr(e, "code", None), [code]))

    def diagnosed(self, code: str, day: int) -> bool:
        return any(d <= day for c, d in self.p.diagnoses.items() if _counts(c, [code]))


def _counts(recorded: str | None, asked: list[str]) -> bool:
    """A recorded code meets a rule asking for any of `asked` if it is one, or a narrower kind of one."""
    return recorded is not None and any(recorded == a or narrower(recorded, a) for a in asked)


def _window(rule: Rule, name: str | None) -> int | None:
    if name == "any":
        return None
    return 0 if name is None else int(math.floor(rule.parameters[name].value))


def _holds(rule: Rule, cond, t: _Timeline, day: int, steps: dict[int, int]) -> bool:
    param = lambda n: rule.parameters[n].value  # noqa: E731
    if isinstance(cond, MeasureCondition):
        r = t.latest(cond.measure, day, _window(rule, cond.within_days))
        return r is not None and _certainly(r, cond.op, param(cond.threshold))
    if isinstance(cond, TrendCondition):
        d = t.trend(cond.trend, day, _window(rule, cond.window_days) or 0)
        need = {"not_decreasing": lambda x: x >= 0, "rising": lambda x: x >= 1,
                "decreasing": lambda x: x <= -1}[cond.direction]
        return d is not None and need(d)
    if isinstance(cond, GivenCondition):
        return bool(t.starts(cond.given, day))
    if isinstance(cond, SinceCondition):
        s = t.starts(cond.since, day)
        if not s:
            return False
        n = day - (s[0] if cond.of == "first" else s[-1])
        return _certainly(_Reading(0, n, n, False, False), cond.op, param(cond.days))
    if isinstance(cond, ActiveCondition):
        return t.active(cond.active, day) == cond.in_place
    if isinstance(cond, FindingCondition):
        w = _window(rule, cond.within_days) or 0
        return any(day - w <= d <= day for d in t.starts([cond.finding], day))
    if isinstance(cond, DiagnosisCondition):
        return t.diagnosed(cond.diagnosis, day)
    if isinstance(cond, StepCondition):
        if cond.step_flagged not in steps:
            return False
        return cond.for_days is None or day - steps[cond.step_flagged] >= param(cond.for_days)
    raise TypeError(type(cond).__name__)  # pragma: no cover


def _may_fire(rule: Rule, fired: dict[str, list[int]], day: int) -> bool:
    days = fired.get(rule.id, [])
    if not days:
        return True
    if rule.repeat == "once":
        return False
    every = 1 if rule.repeat == "each_day" else int(rule.parameters[rule.repeat.every_days].value)
    return day - days[-1] >= every


def evaluate_pass(scenario: Scenario, ruleset: Ruleset, which: str,
                  through_day: int | None = None) -> list[Decision]:
    return _run(scenario, ruleset, which, through_day, conditions=False)[0]


def condition_pass(scenario: Scenario, ruleset: Ruleset, which: str,
                   through_day: int | None = None) -> dict[int, frozenset[tuple[str, int]]]:
    """day -> every (rule id, condition index) that held at the end of that day: with the steps
    flagged by then, as the engine's explain program reads them."""
    return _run(scenario, ruleset, which, through_day, conditions=True)[1]


def _run(scenario: Scenario, ruleset: Ruleset, which: str, through_day: int | None, *, conditions: bool
         ) -> tuple[list[Decision], dict[int, frozenset[tuple[str, int]]]]:
    placement = place(scenario, which, through_day)  # type: ignore[arg-type]
    t = _Timeline(scenario, placement)
    fired: dict[str, list[int]] = {}
    steps: dict[int, int] = {}  # step -> day first flagged
    out: list[Decision] = []
    held: dict[int, frozenset[tuple[str, int]]] = {}
    for day in range(placement.first_day, placement.last_day + 1):
        while True:  # a step flagged today may let another rule fire today
            now = [r for r in ruleset.rules
                   if _may_fire(r, fired, day) and all(_holds(r, c, t, day, steps) for c in r.conditions)]
            if not now:
                break
            for r in now:
                fired.setdefault(r.id, []).append(day)
                out.append((r.id, day, len(fired[r.id])))
            for r in now:
                if r.step is not None:
                    steps.setdefault(r.step, day)
        if conditions:
            held[day] = frozenset((r.id, j) for r in ruleset.rules for j, c in enumerate(r.conditions)
                                  if _holds(r, c, t, day, steps))
    return out, held


def evaluate(scenario: Scenario, ruleset: Ruleset, through_day: int | None = None) -> dict[str, list[Decision]]:
    """Every rule firing, per placement, as (rule id, day, occurrence)."""
    return {which: evaluate_pass(scenario, ruleset, which, through_day) for which in PASSES}
