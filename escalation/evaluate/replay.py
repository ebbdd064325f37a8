"""The virtual clock: each day of a scenario, in order, through one engine session per pass.

Every day from the first to the last day of the record becomes one fact carrying that day's
features (and what the engine itself flagged on earlier days, so rules can wait for an earlier
step). The fact is built only from events placed on or before that day, which is what makes a
flag on day d independent of anything after d. When a rule fires, the day is asserted again with
the new flags, until nothing more fires, so that a step flagged in the morning can open the next
step the same day.

Uncertain timing is carried by running the clock twice: with every uncertain event as early as
its source allows, then as late. A rule's k-th firing in each pass is paired with the other, and
the pair gives the decision point's day range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from escalation.derive.features import DayFeatures
from escalation.derive.placement import PASSES, Pass, Placement, place
from escalation.evaluate.engine import (
    CompiledRuleset,
    Session,
    compile_ruleset,
    step_days_key,
    step_key,
)
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


@dataclass
class _Memory:
    """What the engine has decided so far in this pass, fed back into later facts."""

    fired: dict[str, int] = field(default_factory=dict)
    last_day: dict[str, int] = field(default_factory=dict)
    steps: dict[int, int] = field(default_factory=dict)  # step -> day first flagged

    def fields(self, compiled: CompiledRuleset, day: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in compiled.rules:
            out[r.fired_key] = self.fired.get(r.rule_id, 0)
            if r.every_days is not None and r.rule_id in self.last_day:
                out[r.since_key] = day - self.last_day[r.rule_id]
        for s in compiled.steps:
            out[step_key(s)] = int(s in self.steps)
            if s in self.steps:
                out[step_days_key(s)] = day - self.steps[s]
        return out


def run_pass(
    scenario: Scenario, compiled: CompiledRuleset, which: Pass, through_day: int | None = None
) -> PassResult:
    """Replay one placement of the scenario, day by day, in its own engine session."""
    placement = place(scenario, which, through_day)
    features = DayFeatures.build(scenario, placement)
    memory = _Memory()
    steps_of = {r.rule_id: r.step for r in compiled.rules}
    flags: list[Flag] = []
    with Session(compiled) as session:
        for day in range(placement.first_day, placement.last_day + 1):
            base: dict[str, float | int] = {"day": day}
            for f in compiled.features:
                base.update(features.value(f, day))
            while True:
                fact = {**base, **memory.fields(compiled, day)}
                fired = session.evaluate(fact)
                if not fired:
                    break
                for rule_id in fired:
                    memory.fired[rule_id] = memory.fired.get(rule_id, 0) + 1
                    memory.last_day[rule_id] = day
                    step = steps_of[rule_id]
                    if step is not None:
                        memory.steps.setdefault(step, day)
                    flags.append(Flag(rule_id, day, memory.fired[rule_id], fact))
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
