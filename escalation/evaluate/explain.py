"""Which conditions held, day by day, as durable_rules decides it: the engine side of `explain`.

A replay says which rules fired; an explanation also needs to know, for each rule and day, which
of its conditions held. That is an engine decision too, so it is not recomputed in Python: every
condition of the rule set becomes a rule of its own in an *explain ruleset*, whose test is the
very test the main program compiled for that condition (`Program.tests`, built by
`engine._engine_test`) on the same engine fields, and whose facts are filled by the same binding
(parameters as fields of the fact, numbers written exactly). A condition held on a day when its
rule fires on that day's fact.

How the traps are met (shared/notes/durable-rules.md):
- the explain ruleset is built from the shape alone and registered once per shape, under the
  main program's name with a suffix (#7), like the main program;
- each chunk of it is run in `engine.Session`: one live session at a time, deleted after its pass
  (#11-#14), one fact per day at most, asserted so that every matching condition rule fires (#15),
  actions that only append (#4, #18);
- a rule set with more conditions than one engine ruleset can test at once (MAX_STACK_SIZE, see
  limits.py) is split into chunks that each fit, every chunk checked by limits.check_definition.

The day's fact is the replay's last fact of that day: the day's features, and which steps the
engine itself had flagged by the end of it (read from the pass's own flags), so that a condition
`step_flagged: 2` reads what the replay saw. The facts are walked in day order as the replay
builds them (facts.DayFacts: a feature recomputed only on its change days), so a day whose engine
text is the day before's (nothing changed, no count moving, no flag) takes the day before's answer
without an engine call, and a fact equal to an earlier one of the session on every field the asked
rules read is asserted once: an explanation of a long record costs about as many engine calls as
the record has days on which something changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property, partial
from typing import Any

from escalation.derive.features import DayFeatures, Feature
from escalation.evaluate.engine import (
    FACT_KIND,
    SESSION_FACTS,
    CompiledRuleset,
    EngineError,
    Session,
    step_days_key,
    step_key,
)
from escalation.evaluate.facts import DayFacts
from escalation.evaluate.limits import check_definition
from escalation.evaluate.replay import PassResult
from escalation.load.scenario import Scenario

ConditionId = tuple[str, int]  # (rule id, index of the condition in the rule)
Answers = dict[frozenset[ConditionId], frozenset[ConditionId]]  # each distinct answer, as one object
Fact = dict[str, float | int]


@dataclass(frozen=True)
class _Chunk:
    """One engine ruleset of the explain program: condition rules, in rule-set order."""

    index: int
    definition: dict[str, Any]  # engine rule name -> JSON rule (no action)
    conditions: dict[str, ConditionId]  # engine rule name -> the condition it tests

    @cached_property
    def rule_ids(self) -> frozenset[str]:
        """The rules the chunk has conditions of (asked for every planned day, so made once)."""
        return frozenset(r for r, _ in self.conditions.values())


_NONE_HELD: frozenset[ConditionId] = frozenset()
_CHUNKS: dict[str, tuple[_Chunk, ...]] = {}  # by the main program's name, which names its shape


def _condition_rule(test: dict[str, Any]) -> dict[str, Any]:
    """A condition's own engine rule: the `kind` test first (#17), then the condition's test."""
    return {"all": [{"m": {"$and": [{"kind": FACT_KIND}, test]}}]}


def _chunks(compiled: CompiledRuleset) -> tuple[_Chunk, ...]:
    """The explain program of a shape, split where the engine's limits need it; built once.

    The engine's limits only grow with the rules added (limits.check_definition), so a program
    that fits whole needs one check; only one that does not is split, condition by condition."""
    if compiled.name in _CHUNKS:
        return _CHUNKS[compiled.name]
    rules = [(f"{rule.rule_id}#{j}", _condition_rule(compiled.program.tests[(rule.rule_id, j)]), (rule.rule_id, j))
             for rule in compiled.rules for j in range(len(rule.conditions))]
    whole = {name: body for name, body, _ in rules}
    if check_definition(whole) is None:
        chunks: tuple[_Chunk, ...] = (_Chunk(0, whole, {name: cid for name, _, cid in rules}),) if rules else ()
    else:
        chunks = _split(compiled, rules)
    _CHUNKS[compiled.name] = chunks
    return chunks


def _split(compiled: CompiledRuleset, rules: list[tuple[str, dict[str, Any], ConditionId]]) -> tuple[_Chunk, ...]:
    """Condition rules in order, a new chunk started wherever the next would not fit."""
    chunks: list[_Chunk] = []
    definition: dict[str, Any] = {}
    conditions: dict[str, ConditionId] = {}
    for name, body, (rule_id, j) in rules:
        if definition and check_definition({**definition, name: body}) is not None:
            chunks.append(_Chunk(len(chunks), definition, conditions))
            definition, conditions = {}, {}
        problem = check_definition({name: body})
        if problem is not None:
            raise EngineError(f"condition {j + 1} cannot be explained alone: {problem.message}",
                              **compiled.where(rule_id))
        definition[name], conditions[name] = body, (rule_id, j)
    if definition:
        chunks.append(_Chunk(len(chunks), definition, conditions))
    return tuple(chunks)


def _chunk_ruleset(compiled: CompiledRuleset, chunk: _Chunk) -> CompiledRuleset:
    """The chunk as the engine module runs it: the main program's binding and values, and the
    chunk's own rules under a name of its own (one registration per shape and chunk)."""
    return replace(compiled, name=f"{compiled.name}~explain{chunk.index}", definition=chunk.definition,
                   order={name: i for i, name in enumerate(chunk.conditions)})


@dataclass(frozen=True)
class ConditionReads:
    """What the engine said about each asked condition on each asked day, under one placement.

    `facts` gives the whole fact of every asked day (the values a report shows beside a
    condition), `held` the conditions of the asked rules that held on it.
    """

    which: str
    features: DayFeatures
    facts: Mapping[int, Fact]
    held: dict[int, frozenset[ConditionId]]

    def holds(self, rule_id: str, index: int, day: int) -> bool:
        return (rule_id, index) in self.held.get(day, frozenset())

    @cached_property
    def days(self) -> list[int]:
        return sorted(self.facts)

    @cached_property
    def changes(self) -> list[tuple[int, frozenset[ConditionId]]]:
        """(day, answer) for each asked day whose answer is not the asked day before's: a search
        for the first day of some answer (the day a rule came closest) need only read these."""
        out: list[tuple[int, frozenset[ConditionId]]] = []
        previous = None
        for day in self.days:
            answer = self.held.get(day, frozenset())
            if answer != previous:
                out.append((day, answer))
                previous = answer
        return out


def steps_flagged(compiled: CompiledRuleset, run: PassResult) -> dict[int, int]:
    """step -> the day a rule of that step first fired in the pass."""
    step_of = {r.rule_id: r.step for r in compiled.rules}
    out: dict[int, int] = {}
    for flag in run.flags:
        step = step_of[flag.rule_id]
        if step is not None:
            out.setdefault(step, flag.day)
    return out


def _keys_read(compiled: CompiledRuleset) -> dict[str, frozenset[str]]:
    """rule id -> the Python fact keys its conditions read."""
    return {r.rule_id: frozenset(k for c in r.conditions for k in c.fields) for r in compiled.rules}


def _features_for(compiled: CompiledRuleset, keys: Collection[str]) -> list[Feature]:
    return [f for f in compiled.features if any(k == f.key or k.startswith(f.key + "__") for k in keys)]


def _fact(features: DayFeatures, wanted: list[Feature], steps: Mapping[int, int], all_steps: tuple[int, ...],
          day: int) -> Fact:
    """The replay's last fact of the day, for the features asked: what the day showed, and the
    steps flagged by the end of it."""
    fact: Fact = {"day": day}
    for f in wanted:
        fact.update(features.value(f, day))
    for s in all_steps:
        flagged = s in steps and steps[s] <= day
        fact[step_key(s)] = int(flagged)
        if flagged:
            fact[step_days_key(s)] = day - steps[s]
    return fact


class _Facts(Mapping[int, Fact]):
    """The fact of each asked day, made when it is asked for: a long record asks about every day,
    and holding every day's fact took more memory than the whole replay."""

    def __init__(self, days: list[int], make: Callable[[int], Fact]) -> None:
        self._days, self._set, self._make = days, frozenset(days), make

    def __getitem__(self, day: int) -> Fact:
        if day not in self._set:
            raise KeyError(day)
        return self._make(day)

    def __contains__(self, day: object) -> bool:
        return day in self._set

    def __iter__(self) -> Iterator[int]:
        return iter(self._days)

    def __len__(self) -> int:
        return len(self._days)


def _plan(run: PassResult, wanted: Mapping[str, Collection[int] | None]) -> Iterator[tuple[int, frozenset[str]]]:
    """(day, rules asked about that day), in day order (equal sets of rules are one object)."""
    every = frozenset(r for r, days in wanted.items() if days is None)
    some = {r: frozenset(days) for r, days in wanted.items() if days is not None}
    named = frozenset().union(*some.values())
    same: dict[frozenset[str], frozenset[str]] = {every: every}
    placement = run.placement
    for day in range(placement.first_day, placement.last_day + 1):
        rules = every
        if day in named:
            rules = every | {r for r, days in some.items() if day in days}
            rules = same.setdefault(rules, rules)
        if rules:
            yield day, rules


def read_conditions(scenario: Scenario, compiled: CompiledRuleset, run: PassResult,
                    wanted: Mapping[str, Collection[int] | None],
                    features: DayFeatures | None = None) -> ConditionReads:
    """Run the explain program over one pass: for each rule asked (rule id -> the days asked, or
    None for every day of the placement), which of its conditions held on each of those days.

    Call it after the replay's own sessions are closed: it opens sessions of its own, one at a time.
    """
    unknown = set(wanted) - {r.rule_id for r in compiled.rules}
    if unknown:
        raise KeyError(f"no rule {sorted(unknown)[0]!r} in this rule set")
    features = features or DayFeatures.build(scenario, run.placement)
    keys = _keys_read(compiled)
    needed = _features_for(compiled, {k for r in wanted for k in keys[r]})
    make = partial(_fact, features, needed, steps_flagged(compiled, run), compiled.steps)
    plan = list(_plan(run, wanted))
    days = [day for day, _ in plan]
    # each day's answer, equal answers one object: a long record's days share a few answers,
    # and a container made per day would only give the garbage collector more to walk
    held: dict[int, frozenset[ConditionId]] = dict.fromkeys(days, _NONE_HELD)
    same: Answers = {_NONE_HELD: _NONE_HELD}
    for chunk in _chunks(compiled):
        if not chunk.rule_ids & set(wanted):
            continue
        _run_chunk(compiled, chunk, _walk(compiled, features, run, plan, days), keys, held, same)
    return ConditionReads(run.placement.name, features, _Facts(days, make), held)


def _one(same: Answers, answer: frozenset[ConditionId]) -> frozenset[ConditionId]:
    return same.setdefault(answer, answer)


_Stretch = tuple[list[int], frozenset[str], DayFacts]


def _walk(compiled: CompiledRuleset, features: DayFeatures, run: PassResult,
          plan: list[tuple[int, frozenset[str]]], days: list[int]) -> Iterator[_Stretch]:
    """The planned days in order, in stretches: planned days that ask about the same rules and
    on which the engine's text stays the same (no feature change, no count still moving, no flag
    in between), each with the pass's facts on its first day (one DayFacts, moved on when the
    next stretch is asked for). A feature is recomputed on its change days only and the steps are
    told as the pass flagged them (facts.DayFacts), so a long quiet stretch costs one fact."""
    placement, last = run.placement, run.placement.last_day
    facts = DayFacts(compiled, features, placement.first_day, last)
    step_of = {r.rule_id: r.step for r in compiled.rules}
    flags, k, i = run.flags, 0, 0
    while i < len(plan):
        day, rules = plan[i]
        while k < len(flags) and flags[k].day <= day:
            if flags[k].day > facts.day:
                facts.advance(flags[k].day)
            facts.fired(flags[k].rule_id, step_of[flags[k].rule_id])
            k += 1
        if day > facts.day:
            facts.advance(day)
        until = facts.quiet_until(last)
        if k < len(flags):
            until = min(until, flags[k].day - 1)
        j = i + 1
        while j < len(plan) and plan[j][0] <= until and plan[j][1] is rules:
            j += 1
        yield days[i:j], rules, facts
        i = j


def _run_chunk(compiled: CompiledRuleset, chunk: _Chunk, stretches: Iterator[_Stretch],
               keys: dict[str, frozenset[str]], held: dict[int, frozenset[ConditionId]], same: Answers) -> None:
    """One session of one chunk over the planned days, one fact per stretch (_walk). A fact equal
    to an earlier one of the same session on every field the stretch's rules read is answered
    from the earlier one, and not asserted again. (The answers are forgotten with the session, so
    a long record of distinct days holds at most SESSION_FACTS fact texts at a time.)"""
    seen: dict[str, frozenset[ConditionId]] = {}  # the fact's text for the engine -> its answer
    # the rules asked -> those of this chunk, and the fact keys they read
    mine_of: dict[frozenset[str], tuple[frozenset[str], frozenset[str]]] = {}
    program = _chunk_ruleset(compiled, chunk)
    session, asserted = Session(program), 0
    try:
        for days, rules, facts in stretches:
            cached = mine_of.get(rules)
            if cached is None:
                mine = rules & chunk.rule_ids
                cached = mine_of[rules] = mine, frozenset(k for r in mine for k in keys[r])
            mine, read = cached
            if not mine:
                continue
            body, n_fields = session.members({"day": days[0], **{k: v for k, v in facts.fact().items() if k in read}})
            if body not in seen:
                if asserted == SESSION_FACTS:  # a fresh session (engine.SESSION_FACTS)
                    session.close()
                    session, asserted = Session(program), 0
                    seen.clear()
                names = session.assert_members(body, n_fields, days[0])
                asserted += 1
                seen[body] = frozenset(chunk.conditions[n] for n in names)
            answer = _one(same, frozenset(c for c in seen[body] if c[0] in mine))
            for day in days:  # another chunk's answer for the day, if any, joined with this one
                held[day] = answer if held[day] is _NONE_HELD else _one(same, held[day] | answer)
    finally:
        session.close()
