"""What the replay keeps per object (derive/memo.py): reused for that very object, never for an
equal one, dropped with the object, and never more than a few."""

from __future__ import annotations

import gc
import weakref

from conftest import INDEX_CASE, PATHWAY

from escalation.derive import placement as P
from escalation.derive.memo import ByIdentity
from escalation.evaluate import engine
from escalation.evaluate.replay import replay
from escalation.load.loading import load_ruleset, load_scenario


class Thing:
    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Thing) and other.n == self.n

    __hash__ = None  # type: ignore[assignment]  # like a pydantic model with a dict field


def test_a_value_is_made_once_per_object_and_arguments_and_never_for_an_equal_object():
    memo: ByIdentity[list[int]] = ByIdentity(4)
    made: list[int] = []
    a, b = Thing(1), Thing(1)

    def make(x: Thing) -> list[int]:
        made.append(x.n)
        return [x.n]

    first = memo.get((a,), ("early",), lambda: make(a))
    assert memo.get((a,), ("early",), lambda: make(a)) is first
    assert memo.get((b,), ("early",), lambda: make(b)) is not first  # equal, but another object
    assert memo.get((a,), ("late",), lambda: make(a)) is not first
    assert made == [1, 1, 1]


def test_an_entry_goes_with_its_object_and_only_the_last_few_are_kept():
    memo: ByIdentity[int] = ByIdentity(3)
    things = [Thing(i) for i in range(3)]
    for t in things:
        memo.get((t,), (), lambda t=t: t.n)
    assert len(memo) == 3
    del t
    things.pop()
    gc.collect()
    assert len(memo) == 2
    more = [Thing(i) for i in range(10, 15)]
    for t in more:
        memo.get((t,), (), lambda t=t: t.n)
    assert len(memo) == 3


def test_a_replay_reuses_the_placements_of_its_scenario_until_the_scenario_is_gone():
    rs = load_ruleset(PATHWAY)
    scenario = load_scenario(INDEX_CASE)
    gone = weakref.ref(scenario)
    first = replay(scenario, rs)
    again = replay(scenario, rs)
    assert first.passes["early"].placement is again.passes["early"].placement
    assert first.compiled is again.compiled  # the rule set object compiled once
    other = replay(load_scenario(INDEX_CASE), rs)
    assert other.passes["early"].placement is not first.passes["early"].placement
    assert other.flags == first.flags
    assert len(P._PLACEMENTS) == 4  # both placements of the last two scenarios
    del scenario, first, again, other
    gc.collect()
    assert gone() is None  # the placements kept did not keep their scenario alive
    assert len(P._PLACEMENTS) == 0


def test_a_rule_set_with_other_values_is_compiled_afresh():
    rs = load_ruleset(PATHWAY)
    moved = rs.with_overrides({("step3-ecmo-oi", "oi_above"): 30.0})
    assert engine.compile_ruleset(rs) is engine.compile_ruleset(rs)
    assert engine.compile_ruleset(moved) is not engine.compile_ruleset(rs)
    assert engine.compile_ruleset(moved).constants != engine.compile_ruleset(rs).constants


def test_a_compiled_rule_set_does_not_keep_its_rule_set_alive():
    """The compiled form is dropped with its rule set (a sweep makes a rule set per value: 100,000
    replays kept memory flat only so), and its errors name the rule set's file all the same."""
    rs = load_ruleset(PATHWAY)
    compiled = engine.compile_ruleset(rs)
    assert compiled.where("step3-ecmo-oi")["file"].endswith("report-pathway.yaml")
    gone = weakref.ref(rs)
    before = len(engine._COMPILED)
    del rs
    gc.collect()
    assert gone() is None and len(engine._COMPILED) == before - 1
    assert compiled.where("step3-ecmo-oi")["file"].endswith("report-pathway.yaml")  # said at compile time


def test_a_grid_point_replayed_on_a_scenario_seen_before_equals_one_on_a_fresh_copy():
    """Features' values and engine texts kept with a placement (evaluate/facts.py) serve the next
    rule set with the same binding; what it flags, and on which facts, is what a fresh replay
    flags, also when a window moves (found in review: texts were once shared by shape alone)."""
    rs = load_ruleset(PATHWAY)
    scenario = load_scenario(INDEX_CASE)
    replay(scenario, rs)  # fills what is kept
    points = [{("step3-ecmo-oi", "oi_above"): v} for v in (12.0, 20.0, 40.0)]
    # windows: a window's value is part of a feature's key, and moves which rule reads a shared key
    points += [{("step4-rituximab", "rebound_window_days"): 3.0}, {("step2-plasma-exchange", "trend_window_days"): 7.0}]
    for value in points:
        moved = rs.with_overrides(value)
        again = replay(scenario, moved)
        fresh = replay(scenario.model_copy(deep=True), moved.model_copy(deep=True))
        assert again.passes["early"].placement is not fresh.passes["early"].placement
        for w in ("early", "late"):
            assert [(f.rule_id, f.day, f.fact) for f in again.passes[w].flags] == \
                   [(f.rule_id, f.day, f.fact) for f in fresh.passes[w].flags], (value, w)
