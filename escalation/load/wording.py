"""How a condition of a rule reads, in one place, so that it reads alike in every output.

Three renderings of the same words, for three readers:
- `written`: as the rule file states it, with parameter names (`spo2 < spo2_below`): rule-set
  summaries and the list of conditions marked as copying the index case;
- `values`: with the values a replay compares (`spo2 < 88`): why-not lines and `explain` labels;
- `full`: both, with how a reading is looked up (`spo2 < 88 (spo2_below; reading that day)`):
  what a decision point, an unflagged action and `explain` name the condition by.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from escalation.load.ruleset import (
    ActiveCondition,
    DiagnosisCondition,
    FindingCondition,
    GivenCondition,
    MeasureCondition,
    Rule,
    SinceCondition,
    TrendCondition,
    shown_value,
)

Style = Literal["written", "values", "full"]


def _days(rule: Rule | None, name: str | None) -> int | None:
    """A look-back window in whole days (0: that day; None: any time before)."""
    if name == "any":
        return None
    if name is None or rule is None:
        return 0
    return int(math.floor(rule.parameters[name].value))


def window_text(rule: Rule | None, name: str | None, style: Style = "values") -> str:
    """A look-back window in words: `that day`, `within 3 d`, `at any time`."""
    if name is None:
        return "that day"
    if name == "any":
        return "at any time"
    if style == "written":
        return f"within {name}"
    days = _days(rule, name)
    return "that day" if days == 0 else f"within {days} d"


def _value(rule: Rule | None, name: str, style: Style) -> str:
    return name if style == "written" or rule is None else shown_value(rule.parameters[name].value)


def _full(text: str, style: Style, names: list[str | None], note: str | None = None) -> str:
    """The text; in the full rendering, followed by the parameters it names and any note."""
    said = [n for n in names if n not in (None, "any")]
    if style != "full" or not (said or note):
        return text
    return f"{text} ({'; '.join(p for p in (', '.join(said), note) if p)})"  # type: ignore[arg-type]


def condition_text(cond: Any, rule: Rule | None = None, style: Style = "values") -> str:
    """The condition in one line. `rule` gives the parameter values (not needed for `written`);
    the full rendering names every parameter the condition uses."""
    if style != "written" and rule is None:
        raise ValueError("the values of a condition's parameters come from its rule")
    if isinstance(cond, MeasureCondition):
        w = _days(rule, cond.within_days)
        when = "that day" if w == 0 else ("at any time, the latest" if w is None else f"within {w} d")
        return _full(f"{cond.measure} {cond.op} {_value(rule, cond.threshold, style)}", style,
                     [cond.threshold, cond.within_days], f"reading {when}")
    if isinstance(cond, TrendCondition):
        over = cond.window_days if style == "written" else f"{_days(rule, cond.window_days)} d"
        return _full(f"{cond.trend} {cond.direction.replace('_', ' ')} over {over}", style, [cond.window_days])
    if isinstance(cond, GivenCondition):
        started = f"any of {', '.join(cond.given)}" if len(cond.given) > 1 else cond.given[0]
        return _full(f"{started} started", style, [], "days since")
    if isinstance(cond, SinceCondition):
        return _full(f"days since {cond.of} {'/'.join(cond.since)} {cond.op} {_value(rule, cond.days, style)}",
                     style, [cond.days])
    if isinstance(cond, ActiveCondition):
        return f"{cond.active} {'in place' if cond.in_place else 'not in place'}"
    if isinstance(cond, FindingCondition):
        return _full(f"{cond.finding} reported {window_text(rule, cond.within_days, style)}", style,
                     [cond.within_days])
    if isinstance(cond, DiagnosisCondition):
        return f"diagnosis {cond.diagnosis}"
    if cond.for_days is None:
        return f"step {cond.step_flagged} flagged"
    unit = "" if style == "written" else " d"
    return _full(f"step {cond.step_flagged} flagged at least {_value(rule, cond.for_days, style)}{unit} ago",
                 style, [cond.for_days])
