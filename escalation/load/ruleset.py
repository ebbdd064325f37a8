"""The rule file format: an escalation pathway as data a clinician can review.

A rule set is plain YAML checked against these models; loading it never executes code. Every
number a rule compares against lives in a named parameter with its unit and its sources, or is
openly marked `assumption: true` with a note saying why. That is what lets a researcher move a
threshold from the command line and lets every output say which decisions rest on assumptions.
"""

# Annotations are evaluated as the classes are made (no `from __future__ import annotations`):
# pydantic would otherwise compile and evaluate each one from its string, at every cold start.

import hashlib
import json
import re
from typing import Annotated, Any, Callable, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from escalation.load.citations import Citation
from escalation.load.errors import located_error
from escalation.load.numbers import Finite
from escalation.load.orders import modal_in, order_in_phrase, order_in_text, order_in_title
from escalation.load.vocabulary import (
    CODES,
    MEASURES,
    PROPOSABLE,
    AnyCode,
    DiagnosisCode,
    FindingCode,
    InPlaceCode,
    MeasureName,
)

Op = Literal["<", "<=", ">", ">="]


def _a_name(value: Any) -> Any:
    """A number where a parameter's name belongs is the commonest slip in a condition: say so."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"a parameter's name belongs here, not a number: put {value!r} under the rule's "
                         "parameters, with its unit and sources, and name it here")
    return value


# the name of a parameter of the rule (a threshold, a window), never the number itself; the
# validator only words a refusal (a number is no string), so the schema needs no form for it
ParamName = Annotated[str, BeforeValidator(_a_name)]


class _Strict(BaseModel):
    # defer_build: each model is built on first use, so a command builds only what it validates
    # (a replay of a plain file never builds the variant models of changes.py); see tests/test_cold_start.py
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Parameter(_Strict):
    """A named threshold or window with its default value and where that value comes from."""

    value: Finite
    unit: str
    sources: list[Citation] = []
    assumption: bool = False
    note: str | None = None

    @model_validator(mode="after")
    def _grounded(self) -> "Parameter":
        if not self.assumption and not self.sources:
            raise ValueError("a parameter needs sources, or assumption: true with a note")
        if self.assumption and not self.note:
            raise ValueError("an assumption needs a note saying why it was chosen")
        return self


# --- Conditions -------------------------------------------------------------------------------
# Each condition is a mapping identified by its first key, so that a rule reads as a list of
# plain statements: "measure spo2 < spo2_below", "trend anti_mda5 not_decreasing", ...


class _Condition(_Strict):
    """What any condition may carry besides its test: a mark that it copies the index case.

    Some conditions encode a criterion a source states; others only reproduce what the report's
    patient had on the decision day. `case_specific` marks the second kind, in the rule author's
    words, so that every output can show which decision points rest on such a copy, as it shows
    assumptions. It changes nothing the engine decides.
    """

    case_specific: str | None = Field(
        None, min_length=1,
        description="why this condition copies the index case rather than a criterion a source states")

    @field_validator("case_specific")
    @classmethod
    def _says_why(cls, v: str | None) -> str | None:
        """Printed beside the condition in every output, so never worded as an order."""
        return v if v is None else _refuse_order(v, "a case_specific note", "say what the condition copies "
                                                 "and why, e.g. 'FiO2 1.0 is the setting on day 24'")

    @model_serializer(mode="wrap")
    def _without_absent_mark(self, handler: SerializerFunctionWrapHandler) -> Any:
        """An absent mark is not written, so an unmarked rule set keeps its content hash."""
        data = handler(self)
        if self.case_specific is None and isinstance(data, dict):
            data.pop("case_specific", None)
        return data


class MeasureCondition(_Condition):
    """A reading compared with a parameter; by default only a reading taken that day counts."""

    measure: MeasureName
    op: Op
    threshold: ParamName
    within_days: ParamName | None = Field(
        None, description="parameter name of a look-back window, or 'any'; omitted: that day only"
    )


class TrendCondition(_Condition):
    """The direction of a marker over a window ending on the day, measured or as reported."""

    trend: MeasureName
    direction: Literal["not_decreasing", "rising", "decreasing"]
    window_days: ParamName


class GivenCondition(_Condition):
    """Any of these therapies, supports or procedures has been started on or before the day."""

    given: list[AnyCode] = Field(min_length=1)


class SinceCondition(_Condition):
    """Days since the first (or last) start of any of these codes, compared with a parameter."""

    since: list[AnyCode] = Field(min_length=1)
    of: Literal["first", "last"] = "first"
    op: Op
    days: ParamName


class ActiveCondition(_Condition):
    """A support, procedure or therapy is (or is not) in place on the day."""

    active: InPlaceCode
    in_place: bool = True


class FindingCondition(_Condition):
    """A finding reported on the day, or within a look-back window."""

    finding: FindingCode
    within_days: ParamName | None = None


class DiagnosisCondition(_Condition):
    """A diagnosis has been made on or before the day."""

    diagnosis: DiagnosisCode


class StepCondition(_Condition):
    """A rule of an earlier step has already put its step up for review in this replay
    (with `for_days`: at least that many days ago, counted from the step's first flag)."""

    step_flagged: int = Field(ge=1)
    for_days: ParamName | None = None


# The key that starts a condition, and the tag of its kind. A tag is part of the location of every
# error inside that kind of condition (rules[0].conditions[2].<tag>.threshold), so it must not be
# the name of a field: tagged "measure", an error at `threshold` would read as one at `measure`,
# the key the loader would find in the data at that place (loading._strip_tags).
_CONDITION_KEYS = {key: f"{key} condition" for key in (
    "measure", "trend", "given", "since", "active", "finding", "diagnosis", "step_flagged")}


def _condition_tag(data: Any) -> str | None:
    """The kind of a condition, from the key that starts it; for a condition already validated
    (as when a rule set is dumped), from its fields, which are the keys its dump would have:
    dumping it here would build a serializer for each kind of condition."""
    if isinstance(data, BaseModel):
        data = type(data).model_fields
    if isinstance(data, dict):
        for key, tag in _CONDITION_KEYS.items():
            if key in data:
                return tag
    return None


Condition = Annotated[
    Union[
        Annotated[MeasureCondition, Tag(_CONDITION_KEYS["measure"])],
        Annotated[TrendCondition, Tag(_CONDITION_KEYS["trend"])],
        Annotated[GivenCondition, Tag(_CONDITION_KEYS["given"])],
        Annotated[SinceCondition, Tag(_CONDITION_KEYS["since"])],
        Annotated[ActiveCondition, Tag(_CONDITION_KEYS["active"])],
        Annotated[FindingCondition, Tag(_CONDITION_KEYS["finding"])],
        Annotated[DiagnosisCondition, Tag(_CONDITION_KEYS["diagnosis"])],
        Annotated[StepCondition, Tag(_CONDITION_KEYS["step_flagged"])],
    ],
    Discriminator(
        _condition_tag,
        custom_error_type="unknown_condition",
        custom_error_message=(
            "a condition starts with one of: " + ", ".join(_CONDITION_KEYS)
        ),
    ),
]


def condition_parameters(cond: BaseModel) -> list[str]:
    """The parameter names a condition refers to."""
    names: list[str] = []
    for field in ("threshold", "within_days", "window_days", "days", "for_days"):
        v = getattr(cond, field, None)
        if isinstance(v, str) and v != "any":
            names.append(v)
    return names


def _refuse_order(text: str, what: str, example: str, find: Callable[[str], str | None] = order_in_text) -> str:
    """`text` unchanged, or a refusal quoting the clause that reads as an order (load/orders.py)."""
    found = find(text)
    if found is not None:
        raise ValueError(f"{what} must not read as an order ({found!r}); {example}")
    return text


DAY_FIELDS = ("within_days", "window_days", "days", "for_days")


def _check_days(name: str, param: Parameter, where: tuple[str | int, ...], least: int = 0):
    if param.unit != "days" or param.value != int(param.value) or param.value < least:
        raise located_error(
            f"parameter {name!r} is used as a number of days: it must be a whole number "
            f"of at least {least}, in unit 'days' (it is {param.value:g} {param.unit})", where)


def threshold_problem(measure: str, op: str, value: float) -> str | None:
    """Why no reading of `measure` could ever be on both sides of `value` under `op`, or None.

    A reading may lie anywhere in its measure's range (readings outside are refused when a file
    is loaded), so `ino > 0` asks for any reading and is kept, while `ino > 80`, `fio2 > 1`,
    `spo2 < 1` or SpO2 below 0.9 (a fraction written for 90 %) would leave a rule that never
    fires, or always holds, and say nothing. A bound outside the range is the same mistake."""
    m = MEASURES[measure]
    low_met = m.low_inclusive  # a reading may equal the low end
    if value < m.low or value > m.high:
        why = f": {m.low_reason} (a modelling bound, not a clinical one)" if m.low_reason and value < m.low else ""
        return f"is outside the range of {measure} [{m.low:g}, {m.high:g}] {m.unit}{why}"
    if op == ">" and value >= m.high:
        return f"is the top of the range of {measure} ({m.high:g} {m.unit}): no reading is above it"
    if op == "<" and value <= m.low or op == "<=" and value == m.low and not low_met:
        return f"is the bottom of the range of {measure} ({m.low:g} {m.unit}): no reading is {op} it"
    return None


def _check_threshold(name: str, param: Parameter, measure: str, op: str, where: tuple[str | int, ...]) -> None:
    problem = threshold_problem(measure, op, param.value)
    if problem is not None:
        raise located_error(f"parameter {name!r} = {param.value:g} {param.unit}, compared with {op}, {problem}, "
                            "so the condition could never change", where)


class Label(_Strict):
    """A named thing a rule may put up for review besides a therapy: a safety watch or a context."""

    kind: Literal["watch", "context"]
    description: str

    @field_validator("description")
    @classmethod
    def _describes(cls, v: str) -> str:
        """Printed as what a decision point puts up for review, so never worded as an order."""
        return _refuse_order(v, "a label's description", "say what is watched, e.g. 'infection risk on "
                             "immunosuppression'", order_in_phrase)


class Repeat(_Strict):
    """A rule fires once per replay unless it names a parameter of days after which it may fire again."""

    every_days: ParamName


# Which form of `repeat` was written decides which one its errors are about: a mapping is meant as
# {every_days: P}, anything else as a word. Without this, an unknown key in the mapping was
# reported as not being 'once' or 'each_day'. The tags are not field names (see _CONDITION_KEYS).
RepeatForm = Annotated[
    Union[
        Annotated[Literal["once", "each_day"], Tag("repeat word")],
        Annotated[Repeat, Tag("repeat mapping")],
    ],
    Discriminator(lambda v: "repeat mapping" if isinstance(v, (dict, Repeat)) else "repeat word"),
]


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(description="one line: what is put up for review, never worded as an order")
    step: int | None = Field(None, ge=1)
    proposes: list[str] = Field(min_length=1)
    matched_by: list[str] | None = Field(
        None, description="codes that count as the action taken; default: what it proposes"
    )
    rationale: str
    sources: list[Citation] = Field(min_length=1)
    parameters: dict[str, Parameter] = {}
    conditions: list[Condition] = Field(min_length=1)
    repeat: RepeatForm = "once"

    @field_validator("title")
    @classmethod
    def _worded_for_review(cls, v: str) -> str:
        found = order_in_title(v) or modal_in(v) or (None if v.split() else v)
        if found is not None:
            raise ValueError(
                f"a title must not read as an order ({found!r} in {v!r}); "
                "say what is put up for review, e.g. 'Step 2 for review: plasma exchange'"
            )
        if re.search(r"\bfor review\b", v, re.IGNORECASE) is None and not v.lower().startswith("context:"):
            raise ValueError(f"a title says 'for review' (or starts with 'Context:'): {v!r}")
        return v

    @field_validator("rationale")
    @classmethod
    def _explains(cls, v: str) -> str:
        """The rationale says why, never what to do: detail and CDS Hooks cards print it as written."""
        return _refuse_order(v, "a rationale", "say why the step is put up for review, e.g. 'After plasma "
                             "exchange the titre rose again'")

    @model_validator(mode="after")
    def _parameters_exist(self) -> "Rule":
        """Every parameter a condition names exists, and fits how the condition uses it.

        A threshold must be in the unit the measure is kept in (readings are converted to it);
        a window must be a whole number of days, not negative. `any` is only a look-back for a
        measure reading.
        """
        known = ", ".join(self.parameters) or "none"
        for i, cond in enumerate(self.conditions):
            for field in ("threshold", "within_days", "window_days", "days", "for_days"):
                name = getattr(cond, field, None)
                if name is None:
                    continue
                where = ("conditions", i, field)
                if name == "any":
                    if isinstance(cond, MeasureCondition) and field == "within_days":
                        continue
                    raise located_error(f"'any' is only a look-back for a measure reading, not {field}", where)
                if name not in self.parameters:
                    raise located_error(
                        f"condition refers to parameter {name!r}, which rule {self.id!r} does not "
                        f"define (its parameters: {known})", where)
                param = self.parameters[name]
                if field == "threshold" and isinstance(cond, MeasureCondition):
                    unit = MEASURES[cond.measure].unit
                    if param.unit != unit:
                        raise located_error(
                            f"parameter {name!r} is in {param.unit!r}, but {cond.measure} is compared "
                            f"in {unit!r}", where)
                    _check_threshold(name, param, cond.measure, cond.op, ("parameters", name, "value"))
                elif field in DAY_FIELDS:
                    _check_days(name, param, where)
        if isinstance(self.repeat, Repeat):
            name = self.repeat.every_days
            if name not in self.parameters:
                raise located_error(f"repeat refers to undefined parameter {name!r}", ("repeat", "every_days"))
            _check_days(name, self.parameters[name], ("repeat", "every_days"), least=1)
        for code in self.matched_by or []:
            if code not in CODES:
                raise located_error(f"unknown code {code!r} in matched_by", ("matched_by",))
        return self

    @property
    def matching_codes(self) -> list[str]:
        if self.matched_by is not None:
            return self.matched_by
        return [p for p in self.proposes if p in CODES]

    @property
    def assumptions(self) -> list[str]:
        return [name for name, p in self.parameters.items() if p.assumption]

    @property
    def case_specific(self) -> list[tuple[int, str]]:
        """(index, note) of each condition marked as copying the index case."""
        return [(i, c.case_specific) for i, c in enumerate(self.conditions) if c.case_specific]


class RulesetInfo(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str
    title: str
    description: str | None = None

    @field_validator("title", "description")
    @classmethod
    def _names(cls, v: str | None, info: ValidationInfo) -> str | None:
        """Printed at the head of reports, so never worded as an order: the title read as a phrase
        (after a colon or dash too), the description as prose."""
        find = order_in_phrase if info.field_name == "title" else order_in_text
        return v if v is None else _refuse_order(v, f"a rule set's {info.field_name}", "say what pathway it "
                                                 "encodes, e.g. 'Escalation as described in ...'", find)


def _steps_that_can_fire(rules: list[Rule]) -> set[int]:
    """The steps some rule of which could fire: one whose step_flagged conditions name only such
    steps (none at all, to begin with). A step left out waits on itself through a cycle, and every
    rule waiting for it is one that can never fire, whatever the timeline."""
    waits = [(r.step, {c.step_flagged for c in r.conditions if isinstance(c, StepCondition)}) for r in rules]
    can: set[int] = set()
    while more := {step for step, needs in waits if step is not None and step not in can and needs <= can}:
        can |= more
    return can


class Ruleset(_Strict):
    """A whole rule file."""

    ruleset: RulesetInfo
    labels: dict[str, Label] = {}
    rules: list[Rule] = Field(min_length=1)
    # where the rule set and each rule were read from: None -> (file, line), rule id -> (file, line)
    _origin: dict[str | None, tuple[str, int | None]] = PrivateAttr(default_factory=dict)
    # the values set for a what-if (--set, a sweep's or a grid's point): (rule id, parameter) -> value
    _overridden: dict[tuple[str, str], float] = PrivateAttr(default_factory=dict)

    def overridden(self, rule_id: str) -> dict[str, float]:
        """A rule's parameters set for a what-if, by name: its title still names the sourced value."""
        return {name: value for (rid, name), value in self._overridden.items() if rid == rule_id}

    def origin(self, rule_id: str | None = None) -> tuple[str | None, int | None]:
        """The file (and line) a rule, or the whole rule set, came from, for engine errors."""
        file, line = self._origin.get(rule_id) or self._origin.get(None) or (None, None)
        return file, line

    def with_origin(self, origin: dict[str | None, tuple[str, int | None]]) -> "Ruleset":
        """Record where this rule set was read from (a private note: not part of its content)."""
        self._origin = dict(origin)
        return self

    @model_validator(mode="after")
    def _consistent(self) -> "Ruleset":
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise located_error(f"duplicate rule id {rule.id!r}", ("rules", i, "id"))
            seen.add(rule.id)
            for p in rule.proposes:
                if p not in PROPOSABLE and p not in self.labels:
                    raise located_error(
                        f"rule {rule.id!r} proposes {p!r}, which is neither a step "
                        f"({', '.join(sorted(PROPOSABLE))}) nor a label this rule set declares",
                        ("rules", i, "proposes"),
                    )
            escalates = any(p in PROPOSABLE for p in rule.proposes)
            if escalates and rule.step is None:
                raise located_error(
                    f"rule {rule.id!r} proposes a therapy step but gives no step number",
                    ("rules", i, "proposes"),
                )
        steps = {r.step for r in self.rules if r.step is not None}
        for i, rule in enumerate(self.rules):
            for j, cond in enumerate(rule.conditions):
                if isinstance(cond, StepCondition) and cond.step_flagged not in steps:
                    raise located_error(
                        f"rule {rule.id!r} waits for step {cond.step_flagged}, which no rule has",
                        ("rules", i, "conditions", j, "step_flagged"),
                    )
        can = _steps_that_can_fire(self.rules)
        for i, rule in enumerate(self.rules):
            for j, cond in enumerate(rule.conditions):
                if isinstance(cond, StepCondition) and cond.step_flagged not in can:
                    raise located_error(
                        f"rule {rule.id!r} waits for step {cond.step_flagged}, which can never fire: each "
                        f"rule of step {cond.step_flagged} waits, through step_flagged, for its own step or "
                        "for a step that waits for it (a cycle)", ("rules", i, "conditions", j, "step_flagged"))
        return self

    @model_validator(mode="after")
    def _fits_the_engine(self) -> "Ruleset":
        """Past one of durable_rules' fixed limits the engine hangs or fails mid-replay; refuse here.

        Checked on the compiled form, counting what the engine counts (evaluate/limits.py), so
        that loading, `escalation check` and every override see the same verdict.
        """
        # imported here, not at the top, because the engine imports this module
        from escalation.evaluate.engine import engine_problem

        problem = engine_problem(self)
        if problem is not None:
            i = next((i for i, r in enumerate(self.rules) if r.id == problem.rule_id), len(self.rules) - 1)
            raise located_error(problem.message, ("rules", i, *problem.where))
        return self

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)

    def kind_of(self, rule: Rule) -> str:
        """escalation, watch or context: what sort of decision point a rule raises."""
        if any(p in PROPOSABLE for p in rule.proposes):
            return "escalation"
        return self.labels[rule.proposes[0]].kind

    def diagnosis_codes(self) -> tuple[str, ...]:
        """The diagnoses its rules test (`diagnosis: CODE`), sorted: a FHIR import chooses day 0
        as the first inpatient stay with one of them."""
        return tuple(sorted({c.diagnosis for rule in self.rules for c in rule.conditions
                             if isinstance(c, DiagnosisCondition)}))

    def content_hash(self) -> str:
        """A hash of the rule set as evaluated (after any overrides), for reproducible reports."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def with_overrides(self, overrides: dict[tuple[str, str], float]) -> "Ruleset":
        """A copy with parameter values replaced, validated again as a whole.

        An overridden value is a what-if that no source states, so it is marked as an
        assumption, and its note keeps the value it replaced and where that came from.
        Unknown rules or parameters raise KeyError; a value the rule cannot use (a fractional
        window, say) raises the usual validation error.
        """
        by_id = {r.id: r for r in self.rules}
        for rule_id, name in overrides:
            if rule_id not in by_id:
                raise KeyError(f"no rule {rule_id!r} in rule set {self.ruleset.id} (its rules: {', '.join(by_id)})")
            if name not in by_id[rule_id].parameters:
                known = ", ".join(by_id[rule_id].parameters) or "none"
                raise KeyError(f"rule {rule_id!r} has no parameter {name!r}; its parameters: {known}")
        data = self.model_dump(mode="json", exclude_none=True)
        for rule in data["rules"]:
            for name, param in rule.get("parameters", {}).items():
                if (rule["id"], name) not in overrides:
                    continue
                value = overrides[(rule["id"], name)]
                was = "an assumption" if param.get("assumption") else "sourced"
                param["note"] = (f"overridden (a what-if) from {shown_value(param['value'])} ({was}) to "
                                 f"{shown_value(value)}; no source states the new value")
                param["value"] = value
                param["assumption"] = True
        moved = Ruleset.model_validate(data).with_origin(self._origin)
        moved._overridden = {**self._overridden, **overrides}
        return moved


def shown_value(x: float) -> str:
    """A value as people read it (`18`), unless that would hide digits the engine compares."""
    text = f"{x:g}"
    return text if float(text) == x else repr(x)
