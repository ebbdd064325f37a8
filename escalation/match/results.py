"""What a replay produces, as pydantic models: the one shape every report is rendered from.

A decision point is modelled on the CDS Hooks card (summary, detail, indicator, source) because
that is what clinicians already read, but it always describes something *put up for review* in a
research replay, never something to do.
"""

# Annotations are evaluated as the classes are made (no `from __future__ import annotations`):
# pydantic would otherwise compile and evaluate each one from its string, at every cold start.

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NOTICE = (
    "RESEARCH REVIEW ONLY - not medical advice. Decision points show where a published pathway, "
    "encoded as rules, would put a step up for review; they are not recommendations for any patient."
)


class _Out(BaseModel):
    # defer_build: built on first use, so a cold replay builds the models it fills, and no others
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class _ConditionRead(_Out):
    """One condition of a rule as read on one day, with the marks a reader needs beside it."""

    condition: str
    values: dict[str, float | int] = Field(description="the engine's fields on the fact it matched")
    case_specific: str | None = Field(
        None, description="why the condition copies the index case rather than a criterion a source "
        "states (from the rule file); null for a stated criterion")
    kinds: list[str] = Field(
        default=[], description="codes related to the ones the condition asks for only "
        "through the vocabulary's kinds, e.g. 'RP-ILD recorded; counts for ILD, as a kind of it'")


class ConditionMet(_ConditionRead):
    """One condition of a rule and the values on the fact that met it."""

    met_by: str = Field(description="the same values as a person reads them")


class ConditionNotMet(_ConditionRead):
    """One condition of a rule that did not hold, with the values read (none: nothing recorded)."""

    read_as: str = Field(description="the values read, as a person reads them")
    distance: float | None = Field(
        None, description="the reading (for a bounded one, its bound) or the days counted, minus the "
        "threshold, in its unit; null when nothing was read or no number is compared")


class ParameterUsed(_Out):
    name: str
    value: float
    unit: str
    assumption: bool
    sources: list[str]
    note: str | None = None


class MatchedAction(_Out):
    """What was actually done, from the timeline, for one code the rule proposes."""

    code: str
    event_id: str
    day: int
    day_latest: int
    lag_days: int
    lag_days_max: int
    already_in_place: bool


class DecisionPoint(_Out):
    day: int = Field(description="earliest day the rule fires (over both timing placements)")
    day_latest: int = Field(description="latest day it fires; equal to day when timing is exact")
    timing: Literal["exact", "range", "early placement only", "late placement only"] = Field(
        description="range: the day differs between the earliest and the latest placement of "
        "uncertain events; '... only': the rule fires under that placement alone")
    rule_id: str
    step: int | None
    kind: Literal["escalation", "watch", "context"]
    proposes: list[str]
    indicator: Literal["info", "warning"]
    summary: str
    detail: str
    conditions: list[ConditionMet]
    parameters: list[ParameterUsed]
    rests_on_assumption: bool
    rests_on_case_specific: bool = Field(
        description="a condition it met copies the index case rather than a criterion a source states")
    rests_on_disputed_value: bool = Field(
        description="a condition it met read an index the rules recompute from the record where the source "
        "reports another figure (its met_by says both; see the data-consistency findings)")
    sources: list[str]
    occurrence: int = Field(description="1 for the rule's first firing, 2 for its second, ...")
    actual_day: int | None
    actual_day_latest: int | None
    lag_days: int | None = Field(description="actual day minus flag day, smallest over placements")
    lag_days_max: int | None
    actions: list[MatchedAction]
    action_note: str


def _span(lo: int | None, hi: int | None) -> str:
    return "-" if lo is None or hi is None else (f"{lo}" if lo == hi else f"{lo}..{hi}")


def day_text(dp: "DecisionPoint") -> str:
    """How a decision point's day range, actual day and lag read in any report."""
    return _span(dp.day, dp.day_latest)


def actual_text(dp: "DecisionPoint") -> str:
    return _span(dp.actual_day, dp.actual_day_latest)


def lag_text(dp: "DecisionPoint") -> str:
    return _span(dp.lag_days, dp.lag_days_max)


def marks(point: Any) -> list[str]:
    """What a decision point rests on, as every output marks it: ASSUMPTION, CASE-SPECIFIC,
    DISPUTED-VALUE. `point` is a DecisionPoint or anything carrying its three `rests_on_` flags
    (a diff's side)."""
    return [m for m, on in (("ASSUMPTION", point.rests_on_assumption),
                            ("CASE-SPECIFIC", point.rests_on_case_specific),
                            ("DISPUTED-VALUE", point.rests_on_disputed_value)) if on]


class FindingOut(_Out):
    """A data-consistency check: research material about the source, not an error."""

    kind: str
    events: list[str]
    agrees: bool
    message: str
    reported: float | None = None
    derived: float | None = None


class DerivedDose(_Out):
    event_id: str
    code: str
    regimen: str
    implied: str


class RulesetOut(_Out):
    id: str
    version: str
    title: str
    content_hash: str
    assumptions: list[str] = Field(description="rule.parameter names marked as assumptions")
    case_specific: list[str] = Field(
        description="'rule: condition' for each condition marked as copying the index case")
    overrides: dict[str, float]


class ScenarioOut(_Out):
    id: str
    title: str
    file: str
    hypothetical: bool = Field(description="a counterfactual variant, not a transcription")
    hypothetical_events: list[str] = Field(description="ids of the events no source states")
    first_day: int
    last_day: int
    day_zero: str = Field(description="what day 0 is, on one line: every day of the replay counts from it")
    fhir_import: str | None = Field(None, description="for a FHIR R4 Bundle replayed without a scenario "
                                    "file: its day 0, and how many records the import left out")


class CandidateRule(_Out):
    """A rule that could have put an action up for review, and what kept it from firing."""

    rule_id: str
    step: int | None
    placements: list[Literal["early", "late"]] = Field(
        default=[], description="the placements this reading is from")
    day: int | None = Field(None, description="the action's start day under those placements, on which "
                            "the conditions were read")
    not_met: list[ConditionNotMet] = Field(description="the conditions that did not hold that day")
    note: str | None = Field(None, description="why the rule did not fire when every condition held "
                             "(it had fired already, or waits for its repeat interval)")


class UnflaggedAction(_Out):
    """An action in the timeline that no decision point put up for review.

    Research material, like every output: an action taken without a flag says something about
    the rules, not about the care given.
    """

    code: str
    event_id: str
    day: int = Field(description="start day under the earliest placement")
    day_latest: int = Field(description="start day under the latest placement")
    placements: list[Literal["early", "late"]] = Field(description="the placements it is unflagged under")
    candidates: list[CandidateRule] = Field(description="rules proposing the code, with what did not hold")


class WhyNot(_Out):
    """A rule that never fired under a placement, and the day it came closest.

    Research material like every output: it says what the rules needed, not what a patient did.
    """

    rule_id: str
    step: int | None
    placements: list[Literal["early", "late"]] = Field(description="the placements it never fired under")
    closest_day: int | None = Field(description="the day the fewest of its conditions failed (the "
                                    "earliest of equals); null when the record has no day")
    conditions: int = Field(description="how many conditions the rule has")
    failed: list[ConditionNotMet] = Field(description="the conditions that failed on the closest day")
    text: str = Field(description="the line the table prints")


class ReplayResult(_Out):
    notice: str = NOTICE
    scenario: ScenarioOut
    ruleset: RulesetOut
    decision_points: list[DecisionPoint]
    findings: list[FindingOut] = Field(description="checks whose statements do not fit together")
    checks: list[FindingOut] = Field(description="every consistency check made, agreeing or not")
    derived_doses: list[DerivedDose]
    tolerance: str
    unflagged_actions: list[UnflaggedAction] = Field(
        default=[], description="actions taken, with a code some rule can propose, that no "
        "decision point was matched to under at least one placement")
    why_not: list[WhyNot] = Field(
        default=[], description="each rule that never fired, with its closest day")
