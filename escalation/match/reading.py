"""How one condition of a rule reads on one day: in words, with the values read, and how far a
failed one was from holding.

The engine decides whether a condition held (evaluate.engine for whole rules, evaluate.explain for
single conditions); this module only puts the day's fact into words, so that a decision point,
an unflagged action, a "why not" line and `escalation explain` all describe a condition the same
way.
"""

from __future__ import annotations

import math
from typing import Any

from escalation.derive.checks import Disputes
from escalation.derive.features import DayFeatures, MeasureFeature
from escalation.evaluate.engine import CompiledCondition
from escalation.load.ruleset import (
    ActiveCondition,
    DiagnosisCondition,
    FindingCondition,
    GivenCondition,
    MeasureCondition,
    Rule,
    SinceCondition,
    StepCondition,
    TrendCondition,
    shown_value,
)
from escalation.load.wording import condition_text, window_text
from escalation.match.results import ConditionNotMet

Values = dict[str, float | int]

_BOUND_SUFFIXES = (("__lt", "<"), ("__le", "<="), ("__gt", ">"), ("__ge", ">="))
_TREND_WORDS = {-1: "falling", 0: "not falling", 1: "rising"}


def shown(key: str, value: float | int) -> str:
    """How one engine field reads to a person."""
    for suffix, op in _BOUND_SUFFIXES:
        if key.endswith(suffix):
            return f"{op}{value:g}"
    if key.startswith(("since_", "step_days__")):
        return f"{value:g} d"
    if key.startswith("trend__"):
        return _TREND_WORDS.get(int(value), str(value))
    if key.split("__")[0] in ("active", "dx", "finding", "step_flagged"):
        return "yes" if value else "no"
    return f"{value:g}"


def met_by(values: Values) -> str:
    """The values that met a condition, as a person reads them."""
    return " ".join(shown(k, v) for k, v in values.items())


def values_of(compiled: CompiledCondition, fact: Values) -> Values:
    """The fields of the day's fact that the condition reads (absent ones: nothing recorded)."""
    return {k: fact[k] for k in compiled.fields if k in fact}


def codes_asked(cond: object) -> list[str]:
    """The diagnosis, therapy, support, procedure or finding codes a condition asks for."""
    if isinstance(cond, GivenCondition):
        return list(cond.given)
    if isinstance(cond, SinceCondition):
        return list(cond.since)
    if isinstance(cond, ActiveCondition):
        return [cond.active]
    if isinstance(cond, FindingCondition):
        return [cond.finding]
    if isinstance(cond, DiagnosisCondition):
        return [cond.diagnosis]
    return []


def kinds(features: DayFeatures, cond: object, day: int, *, counted_only: bool) -> list[str]:
    """Codes related to the asked ones only through the vocabulary's kinds: a narrower kind that
    counts, and (unless `counted_only`) a broader code recorded, which never meets the rule."""
    return [m.text() for m in features.code_matches(codes_asked(cond), day) if m.counts or not counted_only]


def _param(rule: Rule, name: str | None) -> float:
    return rule.parameters[name].value  # type: ignore[index]


def short_label(rule: Rule, cond: Any) -> str:
    """A condition in one line with its parameter values (`ino > 0`), as a "why not" line names it."""
    return condition_text(cond, rule, "values")


def _suffix(key: str) -> str:
    return next((s for s, _ in _BOUND_SUFFIXES if key.endswith(s)), "")


def _measure_point(cond: MeasureCondition, values: Values) -> tuple[str, float] | None:
    """The field and value a failed comparison is measured from: the exact reading, else the
    bound on the side the condition asks about (the upper one for `<`), else the other bound."""
    order = ("", "__lt", "__le", "__gt", "__ge") if cond.op in ("<", "<=") else ("", "__gt", "__ge", "__lt", "__le")
    by_suffix = {_suffix(k): (k, float(v)) for k, v in values.items()}
    return next((by_suffix[s] for s in order if s in by_suffix), None)


def distance(rule: Rule, cond: Any, values: Values) -> float | None:
    """The reading (or its bound, or the days counted) minus the threshold; None without a number."""
    if isinstance(cond, MeasureCondition):
        point = _measure_point(cond, values)
        return None if point is None else point[1] - _param(rule, cond.threshold)
    if isinstance(cond, SinceCondition) and values:
        return float(next(iter(values.values()))) - _param(rule, cond.days)
    if isinstance(cond, StepCondition) and cond.for_days is not None and values:
        return float(next(iter(values.values()))) - _param(rule, cond.for_days)
    return None


def _gap_words(gap: float, threshold: float, unit: str = "") -> str:
    if gap == 0:
        return f"at {shown_value(threshold)}{unit}"
    return f"{abs(gap):g}{unit} {'above' if gap > 0 else 'below'} {shown_value(threshold)}{unit}"


def _interval(values: Values) -> tuple[float, float]:
    """The values a reading allows, as closed ends (strictness does not matter for the words)."""
    lo, hi = -math.inf, math.inf
    for k, v in values.items():
        suffix = _suffix(k)
        if suffix in ("", "__gt", "__ge"):
            lo = float(v)
        if suffix in ("", "__lt", "__le"):
            hi = float(v)
    return lo, hi


def _measure_text(rule: Rule, cond: MeasureCondition, values: Values, gap: float | None) -> str:
    """`92: 2 above 90`; `>20: more than 12.5 above 7.5`; `<95: may lie on either side of 90`."""
    if not values or gap is None:
        return f"no {cond.measure} reading {window_text(rule, cond.within_days)}"
    t = _param(rule, cond.threshold)
    lo, hi = _interval(values)
    if lo == hi:
        return f"{met_by(values)}: {_gap_words(gap, t)}"
    if (cond.op in ("<", "<=") and lo >= t) or (cond.op in (">", ">=") and hi <= t):
        return f"{met_by(values)}: {'at least' if gap == 0 else 'more than'} {_gap_words(gap, t)}"
    return f"{met_by(values)}: may lie on either side of {shown_value(t)}"


def failed_text(rule: Rule, cond: Any, values: Values) -> str:
    """What was read for a condition that did not hold, in words, with the gap to the threshold."""
    gap = distance(rule, cond, values)
    if isinstance(cond, MeasureCondition):
        return _measure_text(rule, cond, values, gap)
    if isinstance(cond, TrendCondition):
        window = int(_param(rule, cond.window_days))
        return met_by(values) + f" over {window} d" if values else f"no {cond.trend} trend over {window} d"
    if isinstance(cond, (GivenCondition, SinceCondition)):
        codes = cond.given if isinstance(cond, GivenCondition) else cond.since
        if not values:
            return f"none of {', '.join(codes)} started yet" if len(codes) > 1 else f"{codes[0]} not started yet"
        return f"{met_by(values)} ({_gap_words(gap, _param(rule, cond.days), ' d')})"  # type: ignore[arg-type,union-attr]
    if isinstance(cond, ActiveCondition):
        return "in place" if any(values.values()) else "not in place"
    if isinstance(cond, FindingCondition):
        return f"not reported {window_text(rule, cond.within_days)}"
    if isinstance(cond, DiagnosisCondition):
        return "not made by then"
    if cond.for_days is None or not values:
        return "not flagged yet"
    return f"flagged {met_by(values)} ago ({_gap_words(gap, _param(rule, cond.for_days), ' d')})"  # type: ignore[arg-type]


def case_specific(cond: Any) -> str | None:
    return (cond.case_specific or "").strip() or None


def not_met(rule: Rule, cond: Any, compiled: CompiledCondition, fact: Values, features: DayFeatures,
            day: int) -> ConditionNotMet:
    """A condition that did not hold on `day`, with what was read, the gap, and any code recorded
    that relates to the asked one only through the kinds (a broader one never counts)."""
    values = values_of(compiled, fact)
    return ConditionNotMet(condition=compiled.text, values=values, read_as=failed_text(rule, cond, values),
                           distance=distance(rule, cond, values), case_specific=case_specific(cond),
                           kinds=kinds(features, cond, day, counted_only=False))


def disputed_note(c: CompiledCondition, features: DayFeatures, day: int, disputes: Disputes) -> str:
    """' (recomputed; the source reports 20)' where the condition read an index the rules
    recompute and the source states otherwise; else nothing."""
    if not disputes or not isinstance(c.feature, MeasureFeature):
        return ""
    reading = features.reading(c.feature, day)
    if reading is None or reading.origin != "computed" or (reading.event_id, reading.measure) not in disputes:
        return ""
    return (f" (recomputed; the source reports {shown_value(disputes[(reading.event_id, reading.measure)])}: "
            "see the data-consistency findings)")
