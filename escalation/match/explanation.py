"""`escalation explain`: for each rule and day, every condition, whether it held and what was read.

The replay says on which day a rule fired; this says why that day. For every rule asked about,
under both timing placements, it gives each condition on each day (held or not, the values read,
and for a failed comparison how far the reading was from the threshold), and from those: the first
day each condition held, the condition met last on the day the rule fired (the one that decided
its day), and for a rule that did not fire, the day the fewest conditions failed and which ones.
A code counted through the vocabulary's kinds (RP-ILD for a rule asking for ILD) is said, and so
is a broader code recorded where the rule asks for a narrower one (which never counts).

Which conditions held is decided by the engine (evaluate.explain), as whole rules are; this
module only reads the answers. Research review only, like every output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from escalation.derive.checks import consistency_checks, disputed
from escalation.derive.placement import PASSES
from escalation.evaluate.explain import ConditionReads, read_conditions
from escalation.evaluate.replay import Replay
from escalation.load.errors import ArgumentError
from escalation.load.ruleset import Rule, condition_parameters
from escalation.load.timing import span_label
from escalation.match.matching import ruleset_out, scenario_out
from escalation.match.reading import (
    Disputes,
    case_specific,
    disputed_note,
    distance,
    failed_text,
    kinds,
    met_by,
    not_met,
    short_label,
    values_of,
)
from escalation.match.results import NOTICE, ConditionNotMet, RulesetOut, ScenarioOut

Placement = Literal["early", "late"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionInfo(_Out):
    """One condition of the rule, as the other outputs name it."""

    index: int = Field(description="its place in the rule, from 1")
    condition: str = Field(description="as decision points name it, with the parameter it compares with")
    label: str = Field(description="short, with the parameter's value: `ino > 0`")
    case_specific: str | None = Field(description="why it copies the index case (from the rule file); null "
                                      "for a criterion a source states")
    assumptions: list[str] = Field(description="the parameters it compares with that no source states (marked "
                                   "`assumption: true`, or overridden); empty for none")


class ConditionDay(_Out):
    """One condition on one day."""

    index: int
    held: bool = Field(description="the engine's answer: this condition's own rule fired on the day's fact")
    values: dict[str, float | int] = Field(description="the fields of the day's fact the condition reads; "
                                           "none when nothing was recorded")
    read_as: str = Field(description="what was read, as a person reads it")
    distance: float | None = Field(description="for a failed comparison: the reading (or its bound, or the "
                                   "days counted) minus the threshold; else null")
    kinds: list[str] = Field(description="codes related to the asked ones only through the vocabulary's kinds")


class DayRow(_Out):
    day: int
    fired: bool = Field(description="the rule fired that day in the replay")
    failed: int = Field(description="how many conditions did not hold")
    conditions: list[ConditionDay]


class ConditionTrack(_Out):
    index: int
    first_held: int | None = Field(description="the first day, of the days shown, the condition held")
    kinds: list[str] = Field(description="every code match through the kinds, over the days shown")


class Firing(_Out):
    """A day the rule fired, and the condition that decided that day."""

    day: int
    occurrence: int
    met_last: list[int] = Field(description="the conditions (by index) that began to hold last")
    met_last_day: int = Field(description="the day they began to hold, holding every day since")
    decided_by: Literal["conditions", "repeat"] = Field(
        description="conditions: the rule fired the day its last condition came to hold; repeat: its "
        "conditions held earlier and it waited for its repeat interval")


class Nearest(_Out):
    """For a rule that did not fire in the days shown: the day the fewest conditions failed."""

    day: int
    held: int
    failed: list[ConditionNotMet]


class PlacementExplanation(_Out):
    placement: Placement
    fired: list[Firing]
    fired_outside: list[int] = Field(description="days the rule fired outside the days shown")
    conditions: list[ConditionTrack]
    nearest: Nearest | None = Field(description="only when the rule did not fire in the days shown")
    days: list[DayRow]


class RuleExplanation(_Out):
    rule_id: str
    step: int | None
    title: str
    repeat: str = Field(description="once, each_day, or every N days")
    assumptions: list[str] = Field(description="every parameter of the rule that no source states (its "
                                   "conditions' and its repeat interval's): as for a decision point that "
                                   "`rests_on_assumption`")
    conditions: list[ConditionInfo]
    placements: list[PlacementExplanation]


class Explanation(_Out):
    """Every condition of the rules asked about, day by day, under both timing placements."""

    notice: str = NOTICE
    scenario: ScenarioOut
    ruleset: RulesetOut = Field(description="as in a replay's JSON: id, version, content hash, the "
                                "modelling assumptions and the case-specific conditions")
    first_day: int = Field(description="first day shown")
    last_day: int = Field(description="last day shown")
    days_asked: tuple[int, int] | None = Field(
        default=None, description="the day range asked for (--days), when it reaches past the replay's days "
        "(scenario.first_day..scenario.last_day); first_day..last_day is the part of it shown; else null")
    rules: list[RuleExplanation]


def _repeat(rule: Rule) -> str:
    if isinstance(rule.repeat, str):
        return rule.repeat
    return f"every {int(rule.parameters[rule.repeat.every_days].value)} days"


def _info(rule: Rule, compiled: Any) -> list[ConditionInfo]:
    return [ConditionInfo(index=j + 1, condition=c.text, label=short_label(rule, cond),
                          case_specific=case_specific(cond),
                          assumptions=[n for n in condition_parameters(cond) if n in rule.assumptions])
            for j, (c, cond) in enumerate(zip(compiled.conditions, rule.conditions))]


def _day(rule: Rule, compiled: Any, reads: ConditionReads, day: int, fired: bool, disputes: Disputes) -> DayRow:
    out = []
    for j, (c, cond) in enumerate(zip(compiled.conditions, rule.conditions)):
        values, held = values_of(c, reads.facts[day]), reads.holds(rule.id, j, day)
        out.append(ConditionDay(
            index=j + 1, held=held, values=values,
            read_as=((met_by(values) or "yes") if held else failed_text(rule, cond, values))
            + disputed_note(c, reads.features, day, disputes),
            distance=None if held else distance(rule, cond, values),
            kinds=kinds(reads.features, cond, day, counted_only=False)))
    return DayRow(day=day, fired=fired, failed=sum(not c.held for c in out), conditions=out)


def _run_start(reads: ConditionReads, rule_id: str, j: int, day: int) -> int:
    """The first day of the unbroken run of days, ending on `day`, on which the condition held
    (the engine read every day of the placement, so the run may begin before the days shown)."""
    start = day
    while start - 1 in reads.facts and reads.holds(rule_id, j, start - 1):
        start -= 1
    return start


def _firing(reads: ConditionReads, rule: Rule, day: int, occurrence: int) -> Firing:
    starts = [_run_start(reads, rule.id, j, day) for j in range(len(rule.conditions))]
    last = max(starts)
    return Firing(day=day, occurrence=occurrence, met_last=[j + 1 for j, s in enumerate(starts) if s == last],
                  met_last_day=last, decided_by="conditions" if last == day else "repeat")


def _placement(replay: Replay, rule: Rule, reads: ConditionReads, shown: list[int],
               disputes: Disputes) -> PlacementExplanation:
    compiled = replay.compiled.rules[replay.compiled.order[rule.id]]
    flags = [f for f in replay.passes[reads.which].flags if f.rule_id == rule.id]
    fired_days = {f.day for f in flags}
    rows = [_day(rule, compiled, reads, d, d in fired_days, disputes) for d in shown]
    tracks = [ConditionTrack(index=j + 1,
                             first_held=next((r.day for r in rows if r.conditions[j].held), None),
                             kinds=sorted({k for r in rows for k in r.conditions[j].kinds}))
              for j in range(len(rule.conditions))]
    window = set(shown)
    firings = [_firing(reads, rule, f.day, f.occurrence) for f in flags if f.day in window]
    nearest = None
    if not firings and rows:
        best = min(rows, key=lambda r: (r.failed, r.day))
        failed = [not_met(rule, cond, c, reads.facts[best.day], reads.features, best.day)
                  for c, cond, cd in zip(compiled.conditions, rule.conditions, best.conditions) if not cd.held]
        nearest = Nearest(day=best.day, held=len(rule.conditions) - best.failed, failed=failed)
    return PlacementExplanation(placement=reads.which, fired=firings,  # type: ignore[arg-type]
                                fired_outside=sorted(fired_days - window), conditions=tracks, nearest=nearest,
                                days=rows)


def explain_replay(replay: Replay, scenario_file: Path | str, rule_ids: list[str] | None = None,
                   days: tuple[int, int] | None = None) -> Explanation:
    """The explanation of a replay for the rules asked (default: every rule), over the days asked
    (default: the whole record). The engine reads every day, so that a condition's run of held
    days can start before the days shown; the summaries cover the days shown. Days asked beyond
    the replay's are cut off (`days_asked` says so); days wholly outside it are an input error."""
    first, last = replay.passes["early"].placement.first_day, max(p.placement.last_day for p in replay.passes.values())
    if days is not None and (days[1] < first or days[0] > last):
        asked = "day" if days[0] == days[1] else "days"
        raise ArgumentError("days", f"{asked} {span_label(*days)} {'is' if asked == 'day' else 'are'} outside "
                            f"the replay, which covers days {span_label(first, last)}", option="--days")
    wanted = rule_ids or [r.id for r in replay.ruleset.rules]
    reads = {w: read_conditions(replay.scenario, replay.compiled, replay.passes[w], {r: None for r in wanted})
             for w in PASSES}
    early, late = replay.passes["early"].placement, replay.passes["late"].placement
    disputes = disputed(consistency_checks(replay.scenario, early, late))
    rules = []
    for rule_id in wanted:
        rule = replay.ruleset.rule(rule_id)
        compiled = replay.compiled.rules[replay.compiled.order[rule_id]]
        placements = []
        for w in PASSES:
            shown = [d for d in reads[w].days if days is None or days[0] <= d <= days[1]]
            placements.append(_placement(replay, rule, reads[w], shown, disputes))
        rules.append(RuleExplanation(rule_id=rule.id, step=rule.step, title=rule.title, repeat=_repeat(rule),
                                     assumptions=rule.assumptions, conditions=_info(rule, compiled),
                                     placements=placements))
    lo, hi = first, last
    if days is not None:  # a range reaching past the replay's days is cut to them, and says so
        lo, hi = max(lo, days[0]), min(hi, days[1])
    clipped = days if days is not None and (lo, hi) != days else None
    return Explanation(scenario=scenario_out(replay, scenario_file), ruleset=ruleset_out(replay.ruleset),
                       first_day=lo, last_day=hi, days_asked=clipped, rules=rules)
