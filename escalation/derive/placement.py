"""Placement: one start and end day for every event, under the earliest or the latest reading of
its uncertain timing. The replay runs once under each.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar

from escalation.derive.memo import ByIdentity
from escalation.load.errors import ArgumentError
from escalation.load.scenario import Scenario, Therapy
from escalation.load.timing import MAX_DAYS
from escalation.load.vocabulary import CODES, CodeKind

T = TypeVar("T")
Pass = Literal["early", "late"]
PASSES: tuple[Pass, Pass] = ("early", "late")


class Span(NamedTuple):
    """An event's first and last day under one placement. A tuple of two ints, which the garbage
    collector stops tracking: a long record has tens of thousands of them."""

    start: int
    end: int


@dataclass(frozen=True)
class Placement:
    """Every event's start and end day under one reading of its uncertain timing.

    The replay runs twice: once with every uncertain event as early as its source allows and
    once as late. A flag's day range is the spread between the two.
    """

    name: Pass
    first_day: int
    last_day: int
    spans: dict[str, Span]
    diagnoses: dict[str, int]
    _derived: dict[Any, tuple[weakref.ref[Scenario], Any]] = field(default_factory=dict, compare=False, repr=False)

    def derived(self, scenario: Scenario, make: Callable[[Scenario, "Placement"], T]) -> T:
        """What `make(scenario, self)` builds, built once for this placement of that scenario.

        The views of a placement (each day's features, the actions by start day) are asked for by
        the replay and again by its report; both objects are frozen, so the first answer holds.
        The scenario is held weakly: a placement kept for reuse (memo.py) must not keep it alive.
        """
        key = (make, id(scenario))
        hit = self._derived.get(key)
        if hit is None or hit[0]() is not scenario:
            hit = self._derived[key] = (weakref.ref(scenario), make(scenario, self))
        return hit[1]


_FIELDS: dict[type, frozenset[str]] = {}


def field_of(ev: Any, name: str) -> Any:
    """An event's field, or None for a kind of event without it (getattr with a default would
    raise and catch an AttributeError inside pydantic for every such event: slow on long records)."""
    kind = type(ev)
    if kind not in _FIELDS:
        _FIELDS[kind] = frozenset(kind.model_fields)
    return getattr(ev, name) if name in _FIELDS[kind] else None


def timeline_bounds(scenario: Scenario, through_day: int | None = None) -> tuple[int, int]:
    """The first and last day any bound in the scenario names (or the day the clock must reach).

    `through_day` is bounded as file days are, so that a typo cannot set the clock running for
    a hundred million days.
    """
    if through_day is not None and (isinstance(through_day, bool) or not isinstance(through_day, int)):
        raise ArgumentError("through_day", f"{through_day!r} is not a whole day", option="--through-day")
    if through_day is not None and abs(through_day) > MAX_DAYS:
        raise ArgumentError("through_day", f"{through_day} is more than {MAX_DAYS} days from day 0 "
                            "(the bound on every day in a file)", option="--through-day")
    days: list[int] = [] if through_day is None else [through_day]
    for ev in scenario.events:
        for rng in (ev.day, field_of(ev, "until")):
            if rng is not None:
                days += [d for d in (rng.earliest, rng.latest) if d is not None]
    for dx in scenario.patient.diagnoses:
        days += [d for d in (dx.day.earliest, dx.day.latest) if d is not None]
    return min(days), max(days)


_PLACEMENTS: ByIdentity[Placement] = ByIdentity(4)  # both placements of the last two scenarios


def place(scenario: Scenario, which: Pass, through_day: int | None = None) -> Placement:
    """Give every event one start and end day; the clock runs to `through_day` if it is later.

    Made once for a scenario object and kept while it is in use (memo.py): a cohort replays one
    scenario at every grid point, and its features (Placement.derived) are kept with it."""
    return _PLACEMENTS.get((scenario,), (which, through_day), lambda: _place(scenario, which, through_day))


def _place(scenario: Scenario, which: Pass, through_day: int | None) -> Placement:
    lo, hi = timeline_bounds(scenario, through_day)
    pick = 0 if which == "early" else 1
    spans: dict[str, Span] = {}
    for ev in scenario.events:
        start = ev.day.resolve(lo, hi)[pick]
        until = field_of(ev, "until")
        if until is not None:
            end = max(start, until.resolve(start, hi)[pick])
        elif isinstance(ev, Therapy):
            end = start + (ev.days_per_course or 1) - 1
        elif CODES.get(field_of(ev, "code") or "", None) and CODES[ev.code].kind in (
            CodeKind.support,
            CodeKind.procedure,
        ):
            end = hi  # in place until the end of the record unless the source says otherwise
        else:
            end = start
        spans[ev.id] = Span(start, end)
    diagnoses: dict[str, int] = {}
    for dx in scenario.patient.diagnoses:  # a code recorded twice (two FHIR Conditions) holds from the first
        day = dx.day.resolve(lo, hi)[pick]
        diagnoses[dx.code] = min(day, diagnoses.get(dx.code, day))
    return Placement(which, lo, hi, spans, diagnoses)
