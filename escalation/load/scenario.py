"""The scenario file format: a patient and a timeline of dated, cited events.

A scenario is a transcription, not an interpretation: each event says what the source states,
on the day (or range of days) it states it, in the unit it uses, with a citation. Anything the
source does not give is left out rather than filled with zero or a guess, because a guessed value
would look like evidence to the rules. Physical limits and units are checked here so that nothing
impossible ever reaches the rule engine.
"""

# Annotations are evaluated as the classes are made (no `from __future__ import annotations`):
# pydantic would otherwise compile and evaluate each one from its string, at every cold start.

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from escalation.load.citations import Citation
from escalation.load.errors import located_error
from escalation.load.numbers import Finite, check_order
from escalation.load.timing import DayRange
from escalation.load.vocabulary import (
    DOSE_UNITS,
    MEASURES,
    AutoantibodyName,
    DiagnosisCode,
    FindingCode,
    InPlaceCode,
    MeasureName,
    MilestoneCode,
    ProcedureCode,
    SupportCode,
    TherapyCode,
    accepted_units,
    to_canonical,
)

Comparator = Literal["=", "<", "<=", ">", ">="]


class _Strict(BaseModel):
    # defer_build: each model is built on first use, so a command builds only what it validates
    # (a replay of a plain file never builds the variant models of changes.py); see tests/test_cold_start.py
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ReferenceRange(_Strict):
    """A laboratory's normal range as printed: `low`/`high` inclusive, or `below` (strictly)."""

    low: Finite | None = None
    high: Finite | None = None
    below: Finite | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "ReferenceRange":
        check_order(self.low, self.high, ("low", "high"), "low")
        return self


class Value(_Strict):
    """One reading. Exact (`value`), bounded (`value` with `comparator`), or a span (`min`/`max`).

    In a file a bare number means an exact value in the measure's canonical unit.
    """

    value: Finite | None = None
    comparator: Comparator = "="
    min: Finite | None = None
    max: Finite | None = None
    unit: str | None = None
    reference: ReferenceRange | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, data: Any) -> Any:
        if isinstance(data, bool):
            raise ValueError("a value must be a number, not true/false")
        if isinstance(data, (int, float)):
            return {"value": data}
        return data

    @model_validator(mode="after")
    def _one_form(self) -> "Value":
        has_value = self.value is not None
        has_span = self.min is not None or self.max is not None
        if has_value == has_span:
            raise ValueError("give either value (with an optional comparator) or min and max")
        if has_span and (self.min is None or self.max is None or self.min > self.max):
            raise ValueError("a span needs min <= max")
        return self

    def numbers(self) -> list[float]:
        return [x for x in (self.value, self.min, self.max) if x is not None]

    def canonical(self, measure: str) -> "Value":
        """The same reading in the measure's canonical unit."""
        conv = lambda x: None if x is None else round(to_canonical(measure, x, self.unit), 6)  # noqa: E731
        return self.model_copy(
            update={
                "value": conv(self.value),
                "min": conv(self.min),
                "max": conv(self.max),
                "unit": MEASURES[measure].unit,
            }
        )

    @property
    def exact(self) -> float | None:
        return self.value if self.value is not None and self.comparator == "=" else None

    def label(self) -> str:
        if self.value is not None:
            num = f"{self.value:g}"
            text = num if self.comparator == "=" else f"{self.comparator}{num}"
        else:
            text = f"{self.min:g}-{self.max:g}"
        return f"{text} {self.unit}" if self.unit else text


def _check_reading(measure: str, reading: Value) -> None:
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; known: {', '.join(sorted(MEASURES))}")
    m = MEASURES[measure]
    if reading.unit is not None and reading.unit not in accepted_units(measure):
        raise ValueError(
            f"unknown unit {reading.unit!r} for {measure}; accepted: {', '.join(accepted_units(measure))}"
        )
    for x in reading.canonical(measure).numbers():
        below = x < m.low if m.low_inclusive else x <= m.low
        lo = "[" if m.low_inclusive else "("
        if below and m.low_reason:
            raise ValueError(f"{measure} = {x:g} {m.unit} is refused: {m.low_reason} (a modelling bound, "
                             f"not a clinical one; accepted {lo}{m.low:g}, {m.high:g}] {m.unit})")
        if below or x > m.high:
            raise ValueError(f"{measure} = {x:g} {m.unit} is outside its physical range {lo}{m.low:g}, {m.high:g}]")


# A modelling bound, not a clinical one: no regimen in any DOSE_UNITS unit comes near a million
# (that is a kilogram of drug in mg), so a larger number is a typo. Bounded, a dose times the
# largest weight or body-surface area the vocabulary allows stays a finite number.
MAX_DOSE = 1e6


class Dose(_Strict):
    """A regimen as written (e.g. 30 mg/kg/day): the implied absolute dose is derived later."""

    value: Finite = Field(gt=0, le=MAX_DOSE)
    unit: str

    @field_validator("value", mode="before")
    @classmethod
    def _in_range(cls, v: Any) -> Any:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return v  # not a number, or not a finite one: the type says so
        if v <= 0:
            raise ValueError(f"a dose must be positive, not {v}")
        if v > MAX_DOSE:
            raise ValueError(f"a dose of {v:g} is above {MAX_DOSE:g}, the largest this tool takes in any "
                             "unit (a modelling bound that keeps implied doses finite, not a clinical one)")
        return v

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, v: str) -> str:
        if v not in DOSE_UNITS:
            raise ValueError(f"unknown dose unit {v!r}; accepted: {', '.join(DOSE_UNITS)}")
        return v


class TroughTarget(_Strict):
    low: Finite = Field(gt=0)
    high: Finite = Field(gt=0)
    unit: str = "ng/mL"
    approximate: bool = Field(False, description="the source gives the target only as 'about'")

    @model_validator(mode="after")
    def _ordered(self) -> "TroughTarget":
        check_order(self.low, self.high, ("low", "high"), "low")
        return self


class _Event(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    day: DayRange
    source: Citation
    hypothetical: bool = Field(
        False, description="not in any source: a counterfactual written for a variant or a test"
    )
    also: list[Citation] = Field(default=[], description="further places the fact is stated")
    note: str | None = None


class Observation(_Event):
    """Readings taken together (a lab panel, a blood gas, ventilator settings).

    `values` are measured; `reported` are derived indices the source itself states (OI, P/F),
    kept beside the ones this project recomputes so that disagreements can be shown.
    """

    kind: Literal["observation"]
    values: dict[str, Value] = {}
    reported: dict[str, Value] = {}
    oxygen_device: SupportCode | None = Field(None, description="support code the readings were taken on")
    oxygen_flow: Value | None = None

    @model_validator(mode="after")
    def _readings(self) -> "Observation":
        if not self.values and not self.reported:
            raise ValueError("an observation needs at least one value")
        for group, derived in (("values", False), ("reported", True)):
            for name, reading in getattr(self, group).items():
                try:
                    _check_reading(name, reading)
                except ValueError as exc:
                    raise located_error(str(exc), (group, name)) from None
                if MEASURES[name].derived != derived:
                    where = "reported, not values" if derived is False else "values, not reported"
                    kind = "a derived index" if derived is False else "measured, not derived"
                    raise located_error(f"{name} is {kind}: put it under {where}", (group, name))
        if self.oxygen_flow is not None:
            try:
                _check_reading("o2_flow", self.oxygen_flow)
            except ValueError as exc:
                raise located_error(str(exc), ("oxygen_flow",)) from None
        return self


class TrendReport(_Event):
    """A trend the source states in words, without the numbers behind it."""

    kind: Literal["trend_report"]
    marker: MeasureName
    direction: Literal["decreasing", "not_decreasing", "stable", "rising"]


def _until_not_before_start(event: Any) -> Any:
    """An `until` that ends before the event can start is refused, not silently clamped.

    Only a certain contradiction: when the ranges overlap, some placement still fits, and the
    replay's earliest and latest readings keep that doubt.
    """
    start, until = event.day.earliest, event.until.latest if event.until is not None else None
    if start is not None and until is not None and until < start:
        raise located_error(f"until (day {until} at the latest) is before the start (day {start} at the "
                            "earliest): an event cannot end before it starts", ("until",))
    return event


class Therapy(_Event):
    kind: Literal["therapy"]
    code: TherapyCode
    until: DayRange | None = None
    dose: Dose | None = None
    course: int | None = Field(None, ge=1)
    courses_total: int | None = Field(None, ge=1)
    days_per_course: int | None = Field(None, ge=1)
    interval: str | None = None
    route: Literal["iv", "oral", "other"] | None = None
    target_trough: TroughTarget | None = None

    _ends_after_start = model_validator(mode="after")(_until_not_before_start)


class Support(_Event):
    kind: Literal["support"]
    code: SupportCode
    until: DayRange | None = None
    flow: Value | None = None

    _ends_after_start = model_validator(mode="after")(_until_not_before_start)

    @model_validator(mode="after")
    def _flow(self) -> "Support":
        """Checked as the oxygen flow of an observation is: a flow is a reading like any other."""
        if self.flow is not None:
            try:
                _check_reading("o2_flow", self.flow)
            except ValueError as exc:
                raise located_error(str(exc), ("flow",)) from None
        return self


class Procedure(_Event):
    kind: Literal["procedure"]
    code: ProcedureCode
    until: DayRange | None = None
    sessions_total: int | None = Field(None, ge=1)

    _ends_after_start = model_validator(mode="after")(_until_not_before_start)


class Imaging(_Event):
    kind: Literal["imaging"]
    modality: Literal["CT", "HRCT", "X-ray", "MRI"]
    region: str
    findings: list[str] = Field(min_length=1)
    study: str | None = Field(
        None, description="names one study described in several places, so they can be compared"
    )


class Finding(_Event):
    kind: Literal["finding"]
    code: FindingCode



class Milestone(_Event):
    kind: Literal["milestone"]
    code: MilestoneCode



class Outcome(_Event):
    kind: Literal["outcome"]
    status: Literal["alive", "dead"]


Event = Annotated[
    Union[Observation, TrendReport, Therapy, Support, Procedure, Imaging, Finding, Milestone, Outcome],
    Field(discriminator="kind"),
]


class Diagnosis(_Strict):
    code: DiagnosisCode
    day: DayRange
    source: Citation


class Autoantibody(_Strict):
    name: AutoantibodyName
    result: Literal["positive", "negative", "not_measured"]
    source: Citation


class Patient(_Strict):
    age_years: Finite = Field(ge=0, le=18)
    sex: Literal["female", "male"]
    source: Citation
    diagnoses: list[Diagnosis] = []
    autoantibodies: list[Autoantibody] = []
    note: str | None = None


class ReportedInterval(_Strict):
    """An interval between two events as the source states it, checked against their days."""

    start: str
    end: str
    end_point: Literal["start", "until"] = "start"
    days: int
    source: Citation


class ScenarioInfo(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    description: str | None = None
    day_zero: str = Field("admission to the treating hospital", pattern=r"\S",
                          description="what day 0 is: every day of the timeline counts from it")
    source: Citation
    hypothetical: bool = Field(False, description="a counterfactual variant, not a transcription")


def window_text(window: DayRange) -> str:
    """A window of days or lags as an expectation reads: `28`, `18..28`, `<=3`, `>=0`."""
    if window.earliest is None:
        return f"<={window.latest}"
    if window.latest is None:
        return f">={window.earliest}"
    return f"{window.earliest}" if window.exact else f"{window.earliest}..{window.latest}"


class ExpectedUnflagged(_Strict):
    """An action the scenario expects to have been taken without any decision point for it."""

    code: InPlaceCode
    day: DayRange | None = Field(None, description="window that must hold the action's whole start-day range")
    note: str | None = None

    def label(self) -> str:
        return self.code + ("" if self.day is None else f"@{window_text(self.day)}")


class Expectation(_Strict):
    """A decision point a scenario expects (or expects not to see) under one rule set.

    Partial, as in the CQL Testing Framework: only what is listed is checked. A decision point
    must fire under both timing placements unless `placements` says otherwise (one that fires
    under one placement alone may not happen at all), and meets `day` when its whole day range
    lies inside it, and `actual_day` and `lag` (exact, or a
    window in the same forms as a day) when its matched action's day range and its lag range lie
    inside them; `present: false` means no decision point of that rule or step has a day range
    touching `day` (or none at all without `day`). `unflagged` instead lists every action the
    scenario expects to have been taken without a decision point for it (`[]`: none).
    """

    rule: str | None = None
    step: int | None = Field(None, ge=1)
    unflagged: list[ExpectedUnflagged] | None = Field(
        None, description="the complete list of actions taken without a decision point; [] for none")
    day: DayRange | None = None
    actual_day: DayRange | None = Field(None, description="window for the day the matched action began")
    lag: DayRange | None = Field(None, description="window for actual day minus flag day, in days")
    present: bool = True
    placements: Literal["both", "early", "late", "any"] = Field(
        "both", description="the timing placements the decision point must fire under: both (the default), "
                            "early or late alone (it fires under that one only), or any")
    note: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> "Expectation":
        if sum(x is not None for x in (self.rule, self.step, self.unflagged)) != 1:
            raise ValueError("an expectation names exactly one of rule, step or unflagged")
        dated = any(x is not None for x in (self.day, self.actual_day, self.lag))
        if self.unflagged is not None and (dated or not self.present):
            raise ValueError("unflagged takes no day, actual_day, lag or present: each action has its own day")
        if not self.present and (self.actual_day is not None or self.lag is not None or self.placements != "both"):
            raise ValueError("actual_day, lag and placements describe a decision point that is present, "
                             "not present: false")
        if self.unflagged is not None and self.placements != "both":
            raise ValueError("unflagged takes no placements: each action has its own")
        return self

    def label(self) -> str:
        if self.unflagged is not None:
            return "unflagged: " + (", ".join(u.label() for u in self.unflagged) or "none")
        what = self.rule if self.rule is not None else f"step {self.step}"
        when = "" if self.day is None else f" {self.day.label()}"
        done = "" if self.actual_day is None else f" actual {window_text(self.actual_day)}"
        lag = "" if self.lag is None else f" lag {window_text(self.lag)}"
        where = "" if self.placements == "both" else f" ({self.placements} placement{'s' if self.placements == 'any' else ''})"
        return f"{'' if self.present else 'no '}{what}{when}{done}{lag}{where}"


class Scenario(_Strict):
    """A whole scenario file."""

    scenario: ScenarioInfo
    patient: Patient
    events: list[Event] = Field(min_length=1)
    reported_intervals: list[ReportedInterval] = []
    expected: dict[str, list[Expectation]] = Field(
        default={}, description="rule set id -> the decision points this scenario expects"
    )

    @model_validator(mode="after")
    def _ids(self) -> "Scenario":
        seen: set[str] = set()
        for i, ev in enumerate(self.events):
            if ev.id in seen:
                raise located_error(f"duplicate event id {ev.id!r}", ("events", i, "id"))
            seen.add(ev.id)
        for i, iv in enumerate(self.reported_intervals):
            for field in ("start", "end"):
                ref = getattr(iv, field)
                if ref not in seen:
                    raise located_error(
                        f"reported interval names unknown event {ref!r}",
                        ("reported_intervals", i, field),
                    )
        return self

    # For a FHIR Bundle replayed without a scenario file: its day 0 and what the import left out
    # (a private note, not part of the format: a file says so in import-summary.json instead).
    _fhir_import: str | None = PrivateAttr(None)

    @property
    def fhir_import(self) -> str | None:
        return self._fhir_import

    def with_fhir_import(self, note: str) -> "Scenario":
        """Record how this scenario was imported in memory, so that every result can say it."""
        self._fhir_import = note
        return self

    def event(self, event_id: str) -> Any:
        return next(e for e in self.events if e.id == event_id)

    def truncated(self, day: int) -> "Scenario":
        """The scenario as known on `day`: only events that may have begun by then.

        Used to check that the replay never looks ahead: flags before `day` must not change.
        """
        kept = [e for e in self.events if e.day.earliest is None or e.day.earliest <= day]
        ids = {e.id for e in kept}
        intervals = [iv for iv in self.reported_intervals if iv.start in ids and iv.end in ids]
        return self.model_copy(update={"events": kept, "reported_intervals": intervals})
