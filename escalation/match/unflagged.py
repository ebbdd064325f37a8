"""The other side of the comparison: actions no decision point was matched to, and rules that
never fired.

A decision point matched to an action says the rules and the care met. The reverse questions are
asked here: which therapies, procedures and supports in the timeline could a rule of the set have
put up for review (its code, or a narrower kind of it, is one a rule proposes or is matched by),
and yet no decision point was matched to them; and which rules never fired at all, and on which
day they came closest. Both answers name the conditions that failed, with the values read, and
both are worked out per timing placement, since an action can be flagged under one placement and
not under the other.

Which conditions held is the engine's answer (evaluate.explain), not recomputed here. Like every
output this is research material: an action taken without a flag says something about the rules,
not about the care given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from escalation.derive.features import DayFeatures
from escalation.derive.placement import PASSES
from escalation.evaluate.explain import ConditionReads, read_conditions
from escalation.evaluate.replay import Replay
from escalation.load.ruleset import Rule
from escalation.load.vocabulary import kinds_of
from escalation.match.reading import not_met, short_label
from escalation.match.results import (
    CandidateRule,
    ConditionNotMet,
    DecisionPoint,
    UnflaggedAction,
    WhyNot,
)

ACTION_KINDS = ("therapy", "support", "procedure")
Wanted = dict[str, set[int] | None]  # rule id -> days asked (None: every day)


def dp_placements(dp: DecisionPoint) -> set[str]:
    """The placements a decision point fired under."""
    return {w for w in PASSES if dp.timing != f"{'late' if w == 'early' else 'early'} placement only"}


def candidate_rules(rules: Iterable[Rule], code: str) -> list[Rule]:
    """Rules that could put an action with this code up for review: they propose the code (or
    are matched by it), or a broader kind of it."""
    return [r for r in rules if any(code in kinds_of(m) for m in r.matching_codes)]


@dataclass(frozen=True)
class _Open:
    """An action unflagged under some placements, with the rules that could have flagged it."""

    event_id: str
    code: str
    placements: list[str]
    rules: list[Rule]


def _open_actions(replay: Replay, dps: list[DecisionPoint]) -> list[_Open]:
    flagged: dict[str, set[str]] = {}
    for dp in dps:
        for a in dp.actions:
            flagged.setdefault(a.event_id, set()).update(dp_placements(dp))
    out = []
    for ev in replay.scenario.events:
        code = getattr(ev, "code", None)
        if ev.kind not in ACTION_KINDS or code is None:
            continue
        rules = candidate_rules(replay.ruleset.rules, code)
        placements = [w for w in PASSES if w not in flagged.get(ev.id, set())]
        if rules and placements:
            out.append(_Open(ev.id, code, placements, rules))
    return out


def _never_fired(replay: Replay, which: str) -> list[Rule]:
    fired = {f.rule_id for f in replay.passes[which].flags}
    return [r for r in replay.ruleset.rules if r.id not in fired]


def _wanted(replay: Replay, opened: list[_Open], which: str) -> Wanted:
    wanted: Wanted = {r.id: None for r in _never_fired(replay, which)}
    for o in opened:
        if which in o.placements:
            day = replay.passes[which].placement.spans[o.event_id].start
            for r in o.rules:
                if r.id not in wanted or wanted[r.id] is not None:
                    wanted.setdefault(r.id, set()).add(day)  # type: ignore[union-attr]
    return wanted


def _failed(replay: Replay, reads: ConditionReads, rule: Rule, day: int) -> list[ConditionNotMet]:
    compiled = replay.compiled.rules[replay.compiled.order[rule.id]]
    fact = reads.facts[day]
    return [not_met(rule, cond, c, fact, reads.features, day)
            for j, (c, cond) in enumerate(zip(compiled.conditions, rule.conditions))
            if not reads.holds(rule.id, j, day)]


def _gate_note(replay: Replay, rule: Rule, which: str, day: int) -> str:
    """Why a rule whose every condition held did not flag the action."""
    fired = [f.day for f in replay.passes[which].flags if f.rule_id == rule.id and f.day <= day]
    if not fired:
        return "every condition held"
    if fired[-1] == day:
        return "every condition held and the rule fired that day; its decision point was matched to another action"
    if rule.repeat == "once":
        return f"every condition held; the rule had fired on day {fired[-1]} and fires once per replay"
    return f"every condition held; the rule last fired on day {fired[-1]} and waits between firings"


def _candidates(replay: Replay, o: _Open, reads: dict[str, ConditionReads]) -> list[CandidateRule]:
    out: list[CandidateRule] = []
    for rule in o.rules:
        for which in o.placements:
            day = replay.passes[which].placement.spans[o.event_id].start
            failed = _failed(replay, reads[which], rule, day)
            cand = CandidateRule(rule_id=rule.id, step=rule.step, placements=[which], day=day, not_met=failed,
                                 note=None if failed else _gate_note(replay, rule, which, day))
            last = out[-1] if out else None
            if last is not None and last.model_copy(update={"placements": [which]}) == cand:
                out[-1] = last.model_copy(update={"placements": [*last.placements, which]})
            else:
                out.append(cand)
    return out


def _closest(replay: Replay, reads: ConditionReads, rule: Rule) -> tuple[int | None, list[ConditionNotMet]]:
    """The day the fewest of the rule's conditions failed (the earliest of equals), and those."""
    best = closest_day(reads, rule.id, len(rule.conditions))
    return best, ([] if best is None else _failed(replay, reads, rule, best))


def closest_day(reads: ConditionReads, rule_id: str, conditions: int) -> int | None:
    """The earliest day on which the fewest of a rule's conditions failed.

    The earliest day of any count is a day whose answer differs from the day before's, so only
    those days are read (ConditionReads.changes), not every day of a long record."""
    best, fewest = None, conditions + 1
    for day, answer in reads.changes:
        failed = conditions - sum(1 for r, _ in answer if r == rule_id)
        if failed < fewest:
            best, fewest = day, failed
    return best


def why_not_text(rule_id: str, placements: list[str], day: int | None, failed: list[ConditionNotMet],
                 labels: dict[str, str]) -> str:
    """`rule: never fired; closest day 6: ino > 0 failed (no ino reading that day)`."""
    where = "" if len(placements) == len(PASSES) else f" under the {placements[0]} placement"
    if day is None:
        return f"{rule_id}: never fired{where}; the record has no day"
    parts = [f"{labels[c.condition]}{' (case-specific)' if c.case_specific else ''} failed ({c.read_as})"
             for c in failed]
    return f"{rule_id}: never fired{where}; closest day {day}: " + "; ".join(parts)


def _why_not(replay: Replay, reads: dict[str, ConditionReads]) -> list[WhyNot]:
    out: list[WhyNot] = []
    for rule in replay.ruleset.rules:
        compiled = replay.compiled.rules[replay.compiled.order[rule.id]]
        labels = {c.text: short_label(rule, cond) for c, cond in zip(compiled.conditions, rule.conditions)}
        found = {w: _closest(replay, reads[w], rule) for w in PASSES
                 if rule.id in {r.id for r in _never_fired(replay, w)}}
        groups = [list(found)] if len(found) == 2 and found["early"] == found["late"] else [[w] for w in found]
        for ws in groups:
            day, failed = found[ws[0]]
            out.append(WhyNot(rule_id=rule.id, step=rule.step, placements=ws, closest_day=day,  # type: ignore[arg-type]
                              conditions=len(rule.conditions), failed=failed,
                              text=why_not_text(rule.id, ws, day, failed, labels)))
    return out


def other_side(replay: Replay, dps: list[DecisionPoint],
               features: dict[str, DayFeatures]) -> tuple[list[UnflaggedAction], list[WhyNot]]:
    """The actions no decision point was matched to, and the rules that never fired."""
    opened = _open_actions(replay, dps)
    reads: dict[str, ConditionReads] = {}
    for which in PASSES:
        wanted = _wanted(replay, opened, which)
        reads[which] = read_conditions(replay.scenario, replay.compiled, replay.passes[which], wanted,
                                       features[which])
    actions = [UnflaggedAction(
        code=o.code, event_id=o.event_id, day=replay.passes["early"].placement.spans[o.event_id].start,
        day_latest=replay.passes["late"].placement.spans[o.event_id].start, placements=o.placements,  # type: ignore[arg-type]
        candidates=_candidates(replay, o, reads)) for o in opened]
    actions.sort(key=lambda a: (a.day, a.day_latest, a.code, a.event_id))
    return actions, _why_not(replay, reads)
