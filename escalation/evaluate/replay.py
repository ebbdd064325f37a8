"""The virtual clock: each day of a scenario, in order, through the engine, one session at a time.

Every day from the first to the last day of the record has one fact carrying that day's
features (and what the engine itself flagged on earlier days, so rules can wait for an earlier
step). The fact is built only from events placed on or before that day, which is what makes a
flag on day d independent of anything after d. When a rule fires, the day is asserted again with
the new flags, until nothing more fires, so that a step flagged in the morning can open the next
step the same day.

A day whose fact reads, to the engine, exactly as the last fact that fired nothing is not
asserted: the engine's answer depends on the fact's text alone, so it would fire nothing again
(facts.py builds the facts as they change, and says when days run on unchanged).
`every_day=True` asserts every day all the same, for tests and benchmarks. A pass goes on in a new
session every engine.SESSION_FACTS facts, so that a long record does not pile up in the engine.

Uncertain timing is carried by running the clock twice: with every uncertain event as early as
its source allows, then as late. A rule's k-th firing in each pass is paired with the other, and
the pair gives the decision point's day range.
"""

from __future__ import annotations

from dataclasses import dataclass

from escalation.derive.features import DayFeatures
from escalation.derive.placement import PASSES, Pass, Placement, place
from escalation.evaluate.engine import SESSION_FACTS, CompiledRuleset, Session, compile_ruleset
from escalation.evaluate.facts import DayFacts
from escalation.load.ruleset import Ruleset
from escalation.load.scenario import Scenario


@dataclass(frozen=True)
class Flag:
    """One firing of one rule in one pass, with the fact it fired on."""

    rule_id: str
    day: int
    occurrence: int
    fact: dict[str, float | int]


@dataclass(frozen=True)
class PassResult:
    placement: Placement
    flags: list[Flag]


def run_pass(
    scenario: Scenario, compiled: CompiledRuleset, which: Pass, through_day: int | None = None,
    *, every_day: bool = False,
) -> PassResult:
    """Replay one placement of the scenario, day by day, in its own engine session."""
    placement = place(scenario, which, through_day)
    facts = DayFacts(compiled, DayFeatures.build(scenario, placement), placement.first_day, placement.last_day)
    steps_of = {r.rule_id: r.step for r in compiled.rules}
    fired_so_far: dict[str, int] = {}
    flags: list[Flag] = []
    quiet: str | None = None  # the engine text of the last fact that fired nothing
    last = placement.last_day
    session, asserted = Session(compiled), 0
    try:
        day = placement.first_day
        while day <= last:
            if day > facts.day:
                facts.advance(day)
            while True:
                text, n_fields = facts.text()
                if text == quiet and not every_day:
                    break
                if asserted == SESSION_FACTS:  # a fresh session, so the engine's memory stays small
                    session.close()
                    session, asserted = Session(compiled), 0
                fired = session.assert_members(text, n_fields, day)
                asserted += 1
                if not fired:
                    quiet = text
                    break
                fact = facts.fact()
                for rule_id in fired:
                    facts.fired(rule_id, steps_of[rule_id])
                    fired_so_far[rule_id] = fired_so_far.get(rule_id, 0) + 1
                    flags.append(Flag(rule_id, day, fired_so_far[rule_id], fact))
            day = day + 1 if every_day else facts.quiet_until(last) + 1
    finally:
        session.close()
    return PassResult(placement, flags)


@dataclass(frozen=True)
class PairedFlag:
    """A rule's k-th firing under the early and the late placement (either may be missing)."""

    rule_id: str
    occurrence: int
    early: Flag | None
    late: Flag | None

    @property
    def days(self) -> tuple[int, int]:
        ds = [f.day for f in (self.early, self.late) if f is not None]
        return min(ds), max(ds)

    @property
    def timing(self) -> str:
        if self.early is None:
            return "late placement only"
        if self.late is None:
            return "early placement only"
        return "exact" if self.early.day == self.late.day else "range"


def pair_passes(early: PassResult, late: PassResult, compiled: CompiledRuleset) -> list[PairedFlag]:
    def index(p: PassResult) -> dict[tuple[str, int], Flag]:
        return {(f.rule_id, f.occurrence): f for f in p.flags}

    e, l = index(early), index(late)
    keys = sorted(set(e) | set(l), key=lambda k: (
        min(f.day for f in (e.get(k), l.get(k)) if f is not None),
        [r.rule_id for r in compiled.rules].index(k[0]),
        k[1],
    ))
    return [PairedFlag(k[0], k[1], e.get(k), l.get(k)) for k in keys]


@dataclass(frozen=True)
class Replay:
    scenario: Scenario
    ruleset: Ruleset
    compiled: CompiledRuleset
    passes: dict[str, PassResult]
    flags: list[PairedFlag]


def replay(scenario: Scenario, ruleset: Ruleset, through_day: int | None = None) -> Replay:
    """Replay a scenario against a rule set under both placements of its uncertain timing."""
    compiled = compile_ruleset(ruleset)
    passes = {which: run_pass(scenario, compiled, which, through_day) for which in PASSES}
    flags = pair_passes(passes["early"], passes["late"], compiled)
    return Replay(scenario, ruleset, compiled, passes, flags)
