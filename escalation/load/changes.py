"""Files written as changes to another file: both variant formats and the one merge they use.

Only a file with `derives_from` needs this module: escalation.load.loading imports it then, so
that a replay of a plain file builds none of these models.
"""

from __future__ import annotations

import difflib

from typing import Any, Generic, Literal, Protocol, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from escalation.load.errors import Place, located_error
from escalation.load.ruleset import Label, Rule, Ruleset, RulesetInfo
from escalation.load.scenario import Event, Expectation, Patient, Scenario, ScenarioInfo


class _HasId(Protocol):
    id: str


T = TypeVar("T", bound=_HasId)
Item = TypeVar("Item")
# where a part of a merged file comes from: the variant's own data or its base model, at a path
# there; loading turns each into a file and line (origins.Places)
Came = dict[Place, tuple[Literal["own", "base"], Place]]


class Changes(BaseModel, Generic[Item]):
    """How a variant differs from the file it derives from: items are matched by their id."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    remove: list[str] = Field(default=[], description="ids to leave out")
    replace: list[Item] = Field(default=[], description="items replacing those with the same id")
    add: list[Item] = []


class UnknownId(ValueError):
    """A change naming an id its base does not have, with where in the variant it is named."""

    def __init__(self, message: str, place: Place) -> None:
        super().__init__(message)
        self.place = place


def merge_by_id(base: Sequence[T], remove: Sequence[str], replace: Sequence[T], add: Sequence[T],
                owner: str, noun: str, field: str) -> tuple[list[T], Came]:
    """Base items less `remove`, with `replace` swapped in by id, then `add` appended; and where
    each item of the result (`field`[i]) comes from: the base's list, or the variant's changes.

    Naming an id the base does not have is an error rather than a no-op, so that a variant
    cannot silently drift from the file it claims to change.
    """
    known = [x.id for x in base]
    named = [(("changes", "remove", i), ref) for i, ref in enumerate(remove)]
    named += [(("changes", "replace", i, "id"), x.id) for i, x in enumerate(replace)]
    for place, ref in named:
        if ref not in known:
            close = difflib.get_close_matches(ref, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (its {noun}s: {', '.join(known) or 'none'})"
            raise UnknownId(f"{owner} has no {noun} {ref!r} to {place[1]}{hint}", place)
    swapped = {x.id: (i, x) for i, x in enumerate(replace)}
    gone = set(remove)
    # a problem with the list as a whole (none left, say) comes from the changes
    items: list[T] = []
    came: Came = {(field,): ("own", ("changes",))}
    for k, x in enumerate(base):
        if x.id in gone:
            continue
        if x.id in swapped:
            i, x = swapped[x.id]
            came[(field, len(items))] = ("own", ("changes", "replace", i))
        else:
            came[(field, len(items))] = ("base", (field, k))
        items.append(x)
    for i, x in enumerate(add):
        came[(field, len(items))] = ("own", ("changes", "add", i))
        items.append(x)
    return items, came


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

    def apply(self, base: Scenario) -> tuple[dict[str, Any], Came]:
        """The derived scenario as plain data, to be validated as a whole Scenario, and where
        each part of it comes from."""
        c = self.changes
        events, came = merge_by_id(base.events, c.remove, c.replace, c.add, base.scenario.id, "event", "events")
        ids = {e.id for e in events}
        kept = [k for k, iv in enumerate(base.reported_intervals) if iv.start in ids and iv.end in ids]
        intervals = [base.reported_intervals[k] for k in kept]
        came.update({(): ("own", ()), ("patient",): ("base", ("patient",)) if self.patient is None else
                     ("own", ("patient",))})
        came.update({("reported_intervals", j): ("base", ("reported_intervals", k)) for j, k in enumerate(kept)})
        return {
            "scenario": self.scenario.model_dump(mode="json", exclude_none=True),
            "patient": (self.patient or base.patient).model_dump(mode="json", exclude_none=True),
            "events": [e.model_dump(mode="json", exclude_none=True) for e in events],
            "reported_intervals": [iv.model_dump(mode="json") for iv in intervals],
            "expected": {k: [x.model_dump(mode="json", exclude_none=True) for x in v]
                         for k, v in self.expected.items()},
        }, came


class RulesetVariant(_Strict):
    """A rule set written as changes to another, so that a variant shows only what it moves."""

    derives_from: str = Field(description="path of the base rule set, relative to this file")
    ruleset: RulesetInfo
    labels: dict[str, Label] = {}
    changes: Changes[Rule] = Field(default_factory=Changes[Rule])

    def apply(self, base: Ruleset) -> tuple[dict[str, Any], Came]:
        """The derived rule set as plain data, to be validated as a whole Ruleset, and where each
        part of it comes from."""
        c = self.changes
        rules, came = merge_by_id(base.rules, c.remove, c.replace, c.add, base.ruleset.id, "rule", "rules")
        came[()] = ("own", ())
        came.update({("labels", k): ("base", ("labels", k)) for k in base.labels if k not in self.labels})
        return {
            "ruleset": self.ruleset.model_dump(mode="json", exclude_none=True),
            "labels": {**{k: v.model_dump(mode="json") for k, v in base.labels.items()},
                       **{k: v.model_dump(mode="json") for k, v in self.labels.items()}},
            "rules": [r.model_dump(mode="json", exclude_none=True) for r in rules],
        }, came
