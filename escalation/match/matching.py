"""Flags matched with what was actually done, and the replay's result assembled.

For each decision point the timeline is searched for the action the rule proposes: a therapy,
support or procedure already in place on the flag day, or else the first one started after it.
Each action is matched at most once per rule, so that the second firing of a re-dosing rule meets
the second dose, not the first again. The lag is the actual day minus the flag day, computed
under both timing placements; its two values bound it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from escalation.derive.checks import RELATIVE_TOLERANCE, consistency_checks, disputed
from escalation.derive.doses import implied_doses
from escalation.derive.features import DayFeatures
from escalation.derive.placement import Placement
from escalation.evaluate.replay import PairedFlag, Replay
from escalation.load.ruleset import (
    Repeat,
    Rule,
    Ruleset,
    condition_parameters,
    shown_value,
)
from escalation.load.scenario import Scenario
from escalation.load.vocabulary import CODES, kinds_of
from escalation.load.wording import condition_text
from escalation.match.reading import (  # noqa: F401
    Disputes,
    case_specific,
    disputed_note,
    codes_asked,
    kinds,
    met_by,
    values_of,
)
from escalation.match.results import (
    ConditionMet,
    DecisionPoint,
    DerivedDose,
    FindingOut,
    MatchedAction,
    ParameterUsed,
    ReplayResult,
    RulesetOut,
    ScenarioOut,
)
from escalation.match.unflagged import ACTION_KINDS, other_side


def _match_one(
    scenario: Scenario, placement: Placement, code: str, flag_day: int, used: set[str]
) -> tuple[str, int, bool] | None:
    """(event id, start day, already in place) of the action matching one code (or a narrower
    kind of it), if any."""
    by_code = placement.derived(scenario, _by_start)
    counted = [by_code[c] for c in kinds_of(code) if c in by_code]
    events = counted[0] if len(counted) == 1 else sorted(
        (e for found in counted for e in found), key=lambda e: (placement.spans[e.id].start, e.id))
    events = [e for e in events if e.id not in used]
    for e in events:
        span = placement.spans[e.id]
        if span.start <= flag_day <= span.end:
            return e.id, span.start, span.start < flag_day
    for e in events:
        if placement.spans[e.id].start >= flag_day:
            return e.id, placement.spans[e.id].start, False
    return None


def _by_start(scenario: Scenario, placement: Placement) -> dict[str, list]:
    """The scenario's action events of each code, by start day (then id) under one placement:
    sorted once per placement (Placement.derived), not for every flag."""
    out: dict[str, list] = {}
    for e in sorted((e for e in scenario.events if e.kind in ACTION_KINDS),
                    key=lambda e: (placement.spans[e.id].start, e.id)):
        out.setdefault(e.code, []).append(e)
    return out


def _actions(replay: Replay, rule: Rule, pf: PairedFlag, used: set[str]) -> list[MatchedAction]:
    """One matched action per proposed code: found under the early placement (else the late
    one), then dated under both, so that its day and lag carry the same uncertainty."""
    flags = [(w, f) for w, f in (("early", pf.early), ("late", pf.late)) if f is not None]
    out: list[MatchedAction] = []
    for code in rule.matching_codes:
        hits = (_match_one(replay.scenario, replay.passes[w].placement, code, f.day, used) for w, f in flags)
        hit = next((h for h in hits if h is not None), None)
        if hit is None:
            continue
        event_id = hit[0]
        used.add(event_id)
        starts = {w: replay.passes[w].placement.spans[event_id].start for w, _ in flags}
        lags = [starts[w] - f.day for w, f in flags]
        out.append(MatchedAction(
            code=code, event_id=event_id, day=min(starts.values()), day_latest=max(starts.values()),
            lag_days=min(lags), lag_days_max=max(lags),
            already_in_place=any(
                replay.passes[w].placement.spans[event_id].start < f.day for w, f in flags),
        ))
    return out


def _parameters(rule: Rule) -> list[ParameterUsed]:
    used = {n for c in rule.conditions for n in condition_parameters(c)}
    if isinstance(rule.repeat, Repeat):
        used.add(rule.repeat.every_days)
    return [
        ParameterUsed(name=name, value=p.value, unit=p.unit, assumption=p.assumption,
                      sources=[s.label() for s in p.sources], note=p.note)
        for name, p in rule.parameters.items()
        if name in used
    ]


def _conditions(replay: Replay, rule: Rule, pf: PairedFlag, features: dict[str, DayFeatures],
                disputes: Disputes) -> tuple[list[ConditionMet], bool]:
    """Each condition with the values that met it, its case-specific mark, and any code it counted
    only as a narrower kind of the one asked for (read on the day of the pass the values come from).
    A value that is an index recomputed against the figure the source reports says so, and the
    second item says whether any did."""
    compiled = replay.compiled.rules[replay.compiled.order[rule.id]]
    which, flag = ("early", pf.early) if pf.early is not None else ("late", pf.late)
    out, disputed_any = [], False
    for c, cond in zip(compiled.conditions, rule.conditions):
        values = values_of(c, flag.fact)  # type: ignore[union-attr]
        note = disputed_note(c, features[which], flag.day, disputes)  # type: ignore[union-attr]
        disputed_any = disputed_any or bool(note)
        out.append(ConditionMet(condition=c.text, values=values, met_by=met_by(values) + note,
                                case_specific=case_specific(cond),
                                kinds=kinds(features[which], cond, flag.day, counted_only=True)))  # type: ignore[union-attr]
    return out, disputed_any


def case_specific_labels(rule: Rule) -> list[str]:
    """'rule: condition' for each condition of the rule marked as copying the index case."""
    return [f"{rule.id}: {condition_text(rule.conditions[i], style='written')}" for i, _ in rule.case_specific]


def _names(codes: list[str], ruleset: Ruleset) -> str:
    return ", ".join(
        f"{CODES[c].name} ({c})" if c in CODES else ruleset.labels[c].description if c in ruleset.labels else c
        for c in codes
    )


# A title that says "for review" before its colon, as the shipped ones do: "Step 2 for review: plasma
# exchange (PE)", "Refractory, for review: ...", "Step 2 - for review: ...", "Step 2 (for review): ...".
_FOR_REVIEW = re.compile(r"^(?P<lead>.*?\S)(?:,\s*|\s+[-\u2013\u2014]\s*|\s+)(?:for review|\(for review\))\s*:\s*"
                         r"(?P<rest>[^\s:].*)$", re.IGNORECASE | re.DOTALL)
_ONLY_FOR_REVIEW = re.compile(r"^for review\s*:\s*(?P<rest>[^\s:].*)$", re.IGNORECASE | re.DOTALL)
_NEGATION = re.compile(r"\b(?:not|no|never|unless|longer)\b", re.IGNORECASE)


def summary_line(title: str, when: str) -> str:
    """The card's one line: "For review", the days flagged, and the rule's title.

    Every summary starts "For review", so that none reads as an order wherever it is shown or cut.
    Titles are written to say so too ("Step 2 for review: plasma exchange (PE)"), and a second
    "for review" read "For review (day 11): Step 2 for review: ...": the title's own is left out
    where it stands just before the title's colon. Any other title is kept whole, and so is one
    where leaving the words out could change what it says: a negation in the clause before them
    ("Not for review: ...", "Step 5 (not yet for review): ..."), a bracket left open, or a colon
    before them."""
    return f"For review ({when}): {_title_after_for_review(title)}"


@functools.lru_cache(maxsize=1024)
def _title_after_for_review(title: str) -> str:
    """The title as it follows "For review (days):", its own "for review" left out where that is
    safe; kept per title, since a rule of a long record fires thousands of times."""
    own = _FOR_REVIEW.match(title)
    if own and _foldable(own["lead"]):
        return f"{own['lead']}: {own['rest']}"
    bare = _ONLY_FOR_REVIEW.match(title)
    return bare["rest"] if bare else title


def _foldable(lead: str) -> bool:
    clause = re.split(r"[,;:(]", lead)[-1]
    return lead.count("(") == lead.count(")") and not lead.endswith(":") and not _NEGATION.search(clause)


@dataclass(frozen=True)
class _RuleParts:
    """What every decision point of one rule says alike, made once per rule: a long record's rule
    fires thousands of times, and its points share these objects (the models are frozen)."""

    kind: str
    parameters: list[ParameterUsed]
    detail: str
    sources: list[str]
    copied: list[str]
    what_if: str  # '; what-if oi_above=30', or nothing


def _rule_parts(ruleset: Ruleset, rule: Rule) -> _RuleParts:
    kind = ruleset.kind_of(rule)
    copied = case_specific_labels(rule)
    detail = (
        f"Rule {rule.id}{f' (step {rule.step})' if rule.step else ''} puts up for research review: "
        f"{_names(rule.proposes, ruleset)}. {rule.rationale.strip()}"
        + (" Rests on a modelling assumption: " + ", ".join(rule.assumptions) + "." if rule.assumptions else "")
        + (" Rests on conditions copied from the index case: "
           + ", ".join(c.split(": ", 1)[1] for c in copied) + "." if copied else "")
    )
    return _RuleParts(kind, _parameters(rule), detail, [s.label() for s in rule.sources], copied,
                      _what_if(ruleset, rule.id))


def _what_if(ruleset: Ruleset, rule_id: str) -> str:
    """'; what-if oi_above=30' where a parameter of the rule was set for a what-if: a title names
    the sourced value ("above 40"), and the summary heads a CDS card and a report's row."""
    values = ruleset.overridden(rule_id)
    return "; what-if " + ", ".join(f"{n}={shown_value(v)}" for n, v in values.items()) if values else ""


def decision_points(replay: Replay, features: dict[str, DayFeatures], disputes: Disputes) -> list[DecisionPoint]:
    ruleset = replay.ruleset
    used: dict[str, set[str]] = {}
    parts: dict[str, _RuleParts] = {}
    out: list[DecisionPoint] = []
    for pf in replay.flags:
        rule = ruleset.rule(pf.rule_id)
        if rule.id not in parts:
            parts[rule.id] = _rule_parts(ruleset, rule)
        same = parts[rule.id]
        kind = same.kind
        actions = _actions(replay, rule, pf, used.setdefault(rule.id, set()))
        lo, hi = pf.days
        if actions:
            first = min(actions, key=lambda a: a.day)
            actual = (first.day, first.day_latest, first.lag_days, first.lag_days_max)
            note = "; ".join(
                f"{a.code} {'already in place since' if a.already_in_place else 'started'} "
                f"day {a.day if a.day == a.day_latest else f'{a.day}..{a.day_latest}'}"
                for a in actions
            )
        else:
            actual = (None, None, None, None)
            note = ("no matching action in the timeline" if rule.matching_codes
                    else f"a {kind}: nothing in the timeline is matched to it")
        when = f"day {lo}" if lo == hi else f"days {lo}..{hi}"
        conditions, on_disputed = _conditions(replay, rule, pf, features, disputes)
        out.append(DecisionPoint(
            day=lo, day_latest=hi, timing=pf.timing, rule_id=rule.id, step=rule.step, kind=kind,
            proposes=list(rule.proposes), indicator="info" if kind == "context" else "warning",
            summary=summary_line(rule.title, f"{when}{same.what_if}"), detail=same.detail,
            conditions=conditions, parameters=same.parameters, rests_on_assumption=bool(rule.assumptions),
            rests_on_case_specific=bool(same.copied), rests_on_disputed_value=on_disputed,
            sources=same.sources, occurrence=pf.occurrence,
            actual_day=actual[0], actual_day_latest=actual[1], lag_days=actual[2],
            lag_days_max=actual[3], actions=actions, action_note=note,
        ))
    return out


def scenario_out(replay: Replay, scenario_file: Path | str) -> ScenarioOut:
    """The scenario as every result names it: id, title, file, days, and what is hypothetical."""
    early = replay.passes["early"].placement
    return ScenarioOut(id=replay.scenario.scenario.id, title=replay.scenario.scenario.title,
                       file=Path(scenario_file).as_posix(), first_day=early.first_day, last_day=early.last_day,
                       day_zero=" ".join(replay.scenario.scenario.day_zero.split()),  # a header's one line
                       hypothetical=replay.scenario.scenario.hypothetical,
                       hypothetical_events=[e.id for e in replay.scenario.events if e.hypothetical],
                       fhir_import=replay.scenario.fhir_import)


def ruleset_out(rs: Ruleset, overrides: dict[str, float] | None = None) -> RulesetOut:
    """The rule set as every result names it: id, version, content hash, its modelling assumptions
    (`rule.parameter` for each parameter marked `assumption: true`, an overridden one included),
    its case-specific conditions, and the overrides given (`--set`)."""
    return RulesetOut(
        id=rs.ruleset.id, version=rs.ruleset.version, title=rs.ruleset.title,
        content_hash=rs.content_hash(),
        assumptions=[f"{r.id}.{a}" for r in rs.rules for a in r.assumptions],
        case_specific=[c for r in rs.rules for c in case_specific_labels(r)],
        overrides=dict(sorted((overrides or {}).items())),
    )


def build_result(
    replay: Replay, scenario_file: Path | str, overrides: dict[str, float] | None = None
) -> ReplayResult:
    """Everything a report needs from one replay, in one validated model."""
    early, late = replay.passes["early"].placement, replay.passes["late"].placement
    found = consistency_checks(replay.scenario, early, late)
    checks = [
        FindingOut(kind=c.kind, events=list(c.event_ids), agrees=c.agrees, message=c.message,
                   reported=c.reported, derived=c.derived)
        for c in found
    ]
    doses = [DerivedDose(event_id=d.event_id, code=d.code, regimen=d.regimen, implied=d.label())
             for d in implied_doses(replay.scenario, early)]
    features = {w: DayFeatures.build(replay.scenario, p.placement) for w, p in replay.passes.items()}
    points = decision_points(replay, features, disputed(found))
    unflagged, why_not = other_side(replay, points, features)
    return ReplayResult(
        scenario=scenario_out(replay, scenario_file),
        ruleset=ruleset_out(replay.ruleset, overrides),
        decision_points=points,
        unflagged_actions=unflagged,
        why_not=why_not,
        findings=[c for c in checks if not c.agrees],
        checks=checks,
        derived_doses=doses,
        tolerance=f"reported and recomputed values agree within {RELATIVE_TOLERANCE:.0%} of the reported value",
    )
