"""Files written as changes to another file: both variant formats and the one merge they use.

Only a file with `derives_from` needs this module: escalation.load.loading imports it then, so
that a replay of a plain file builds none of these models.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from escalation.load.errors import located_error
from escalation.load.ruleset import Label, Rule, Ruleset, RulesetInfo
from escalation.load.scenario import Event, Expectation, Patient, Scenario, ScenarioInfo


class _HasId(Protocol):
    id: str


T = TypeVar("T", bound=_HasId)
Item = TypeVar("Item")


class Changes(BaseModel, Generic[Item]):
    """How a variant differs from the file it derives from: items are matched by their id."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    remove: list[str] = Field(default=[], description="ids to leave out")
    replace: list[Item] = Field(default=[], description="items replacing those with the same id")
    add: list[Item] = []


def merge_by_id(base: Sequence[T], remove: Sequence[str], replace: Sequence[T], add: Sequence[T],
                owner: str, noun: str) -> list[T]:
    """Base items less `remove`, with `replace` swapped in by id, then `add` appended.

    Naming an id the base does not have is an error rather than a no-op, so that a variant
    cannot silently drift from the file it claims to change.
    """
    known = {x.id for x in base}
    for ref in [*remove, *(x.id for x in replace)]:
        if ref not in known:
            raise ValueError(f"{owner} has no {noun} {ref!r} to remove or replace")
    swapped = {x.id: x for x in replace}
    return [swapped.get(x.id, x) for x in base if x.id not in set(remove)] + list(add)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ScenarioVariant(_Strict):
    """A scenario written as a few changes to another, so counterfactual timelines stay short."""

    derives_from: str = Field(description="path of the base scenario, relative to this file")
    scenario: ScenarioInfo
    patient: Patient | None = None
    changes: Changes[Event] = Field(default_factory=Changes[Event])
    expected: dict[str, list[Expectation]] = {}

    @model_validator(mode="after")
    def _marked(self) -> "ScenarioVariant":
        if not self.scenario.hypothetical:
            raise located_error("a variant is a counterfactual: set hypothetical: true",
                                ("scenario", "hypothetical"))
        for group in ("replace", "add"):
            for i, ev in enumerate(getattr(self.changes, group)):
                if not ev.hypothetical:
                    raise located_error(
                        f"event {ev.id!r} is not in the source: mark it hypothetical: true",
                        ("changes", group, i, "hypothetical"),
                    )
        return self

    def apply(self, base: Scenario) -> dict[str, Any]:
        """The derived scenario as plain data, to be validated as a whole Scenario."""
        c = self.changes
        events = merge_by_id(base.events, c.remove, c.replace, c.add, base.scenario.id, "event")
        ids = {e.id for e in events}
        intervals = [iv for iv in base.reported_intervals if iv.start in ids and iv.end in ids]
        return {
            "scenario": self.scenario.model_dump(mode="json", exclude_none=True),
            "patient": (self.patient or base.patient).model_dump(mode="json", exclude_none=True),
            "events": [e.model_dump(mode="json", exclude_none=True) for e in events],
            "reported_intervals": [iv.model_dump(mode="json") for iv in intervals],
            "expected": {k: [x.model_dump(mode="json", exclude_none=True) for x in v]
                         for k, v in self.expected.items()},
        }


class RulesetVariant(_Strict):
    """A rule set written as changes to another, so that a variant shows only what it moves."""

    derives_from: str = Field(description="path of the base rule set, relative to this file")
    ruleset: RulesetInfo
    labels: dict[str, Label] = {}
    changes: Changes[Rule] = Field(default_factory=Changes[Rule])

    def apply(self, base: Ruleset) -> dict[str, Any]:
        c = self.changes
        rules = merge_by_id(base.rules, c.remove, c.replace, c.add, base.ruleset.id, "rule")
        return {
            "ruleset": self.ruleset.model_dump(mode="json", exclude_none=True),
            "labels": {**{k: v.model_dump(mode="json") for k, v in base.labels.items()},
                       **{k: v.model_dump(mode="json") for k, v in self.labels.items()}},
            "rules": [r.model_dump(mode="json", exclude_none=True) for r in rules],
        }
