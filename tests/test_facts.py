"""The replay's fast path (evaluate/facts.py, days not asserted when their fact reads as the last
quiet one) against the plain day-by-day replay it replaced, and against the reference evaluator on
long, dense and long, sparse timelines, where the fast path skips the most.

`day_by_day` below is the replay loop as it was before the fast path: every day's fact rebuilt
from `DayFeatures.value` and the memory, and asserted. The fast path must give the same flags with
the same facts, and the engine text it writes must hold the same members as the plain fact's
(day-since counts written at most at their bound, see engine.saturation).
"""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT, SRC, ev, make_scenario
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from strategies import timelines

from escalation.analysis.synth import dense_data
from escalation.derive.features import DayFeatures, SinceFeature
from escalation.derive.placement import place
from escalation.evaluate.engine import Session, compile_ruleset, saturation, step_days_key, step_key
from escalation.evaluate.facts import DayFacts
from escalation.evaluate.reference import evaluate
from escalation.evaluate.replay import run_pass
from escalation.load.loading import load_ruleset, load_scenario
from escalation.load.ruleset import Ruleset
from escalation.load.scenario import Scenario

RULESETS = {p.stem: load_ruleset(p) for p in sorted((ROOT / "rules").glob("*.yaml"))}
COMPILED = {k: compile_ruleset(v) for k, v in RULESETS.items()}
SHIPPED = sorted(p for p in (ROOT / "scenarios").rglob("*.yaml") if "literature" not in p.parts)


def _memory(compiled, fired, last, steps, day):
    out = {}
    for r in compiled.rules:
        out[r.fired_key] = fired.get(r.rule_id, 0)
        if r.every_days is not None and r.rule_id in last:
            out[r.since_key] = day - last[r.rule_id]
    for s in compiled.steps:
        out[step_key(s)] = int(s in steps)
        if s in steps:
            out[step_days_key(s)] = day - steps[s]
    return out


def _counts(compiled) -> set[str]:
    keys = {f.key for f in compiled.features if isinstance(f, SinceFeature)}
    keys |= {r.since_key for r in compiled.rules if r.every_days is not None}
    return keys | {step_days_key(s) for s in compiled.steps}


def day_by_day(scenario, compiled, which, through_day=None, check_text=True):
    """The replay loop before facts.py, checking the fast path's fact and text on every day."""
    placement = place(scenario, which, through_day)
    features = DayFeatures.build(scenario, placement)
    fast = DayFacts(compiled, features, placement.first_day, placement.last_day)
    bounds, counts = saturation(compiled), _counts(compiled)
    fired: dict[str, int] = {}
    last: dict[str, int] = {}
    steps: dict[int, int] = {}
    flags = []
    with Session(compiled) as session:
        for day in range(placement.first_day, placement.last_day + 1):
            if day > fast.day:
                fast.advance(day)
            base = {"day": day}
            for f in compiled.features:
                base.update(features.value(f, day))
            while True:
                fact = {**base, **_memory(compiled, fired, last, steps, day)}
                assert fast.fact() == fact and list(fast.fact()) == list(fact), day
                if check_text:
                    written = {k: (min(v, bounds[k]) if k in counts and bounds.get(k) is not None else v)
                               for k, v in fact.items()}
                    text, n = fast.text()
                    plain, plain_n = session.members(written)
                    assert sorted(text.split(",")) == sorted(plain.split(",")) and n == plain_n, day
                now = session.evaluate(fact)
                if not now:
                    break
                for rule_id in now:
                    fired[rule_id] = fired.get(rule_id, 0) + 1
                    last[rule_id] = day
                    step = next(r.step for r in compiled.rules if r.rule_id == rule_id)
                    if step is not None:
                        steps.setdefault(step, day)
                    fast.fired(rule_id, step)
                    flags.append((rule_id, day, fired[rule_id], fact))
    return flags


def fast_flags(scenario, compiled, which, through_day=None, every_day=False):
    run = run_pass(scenario, compiled, which, through_day, every_day=every_day)
    return [(f.rule_id, f.day, f.occurrence, f.fact) for f in run.flags]


def same_as_day_by_day(scenario, compiled, through_day=None, every_day=True, check_text=True):
    for which in ("early", "late"):
        plain = day_by_day(scenario, compiled, which, through_day, check_text)
        assert fast_flags(scenario, compiled, which, through_day) == plain, which
        if every_day:
            assert fast_flags(scenario, compiled, which, through_day, every_day=True) == plain, which


def decisions(scenario, compiled, through_day=None):
    return {w: [(f.rule_id, f.day, f.occurrence) for f in run_pass(scenario, compiled, w, through_day).flags]
            for w in ("early", "late")}


def dense(days: int, seed: int, **kw) -> Scenario:
    return Scenario.model_validate(dense_data(days, seed, **kw))


# --- the fast path is the day-by-day replay ----------------------------------------------------


@pytest.mark.parametrize("rules", RULESETS, ids=str)
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_scenarios_give_the_day_by_day_flags_and_facts(path, rules):
    same_as_day_by_day(load_scenario(path), COMPILED[rules], through_day=600)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=timelines(), through=st.one_of(st.none(), st.integers(40, 400)))
def test_generated_timelines_give_the_day_by_day_flags_and_facts(scenario, through):
    note(yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False))
    for compiled in COMPILED.values():
        same_as_day_by_day(scenario, compiled, through, every_day=False)


@pytest.mark.parametrize("seed", range(3))
def test_long_dense_and_long_sparse_timelines_give_the_day_by_day_flags_and_facts(seed):
    for scenario in (dense(300, seed), dense(1500, seed, events_every=30, observe_every=40)):
        for compiled in COMPILED.values():
            same_as_day_by_day(scenario, compiled, check_text=seed == 0)


# --- and agrees with the reference evaluator where it skips the most ---------------------------


@pytest.mark.parametrize("seed", range(4))
def test_long_dense_timelines_agree_with_the_reference(seed):
    scenario = dense(150, seed)
    for name, ruleset in RULESETS.items():
        assert decisions(scenario, COMPILED[name]) == evaluate(scenario, ruleset), name


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), observe_every=st.integers(5, 60), events_every=st.integers(10, 40))
def test_long_sparse_timelines_agree_with_the_reference(seed, observe_every, events_every):
    scenario = dense(500, seed, events_every=events_every, observe_every=observe_every)
    for name, ruleset in RULESETS.items():
        assert decisions(scenario, COMPILED[name]) == evaluate(scenario, ruleset), name


# --- rules that wait for days to pass, over long quiet stretches -------------------------------

PARAM = {"unit": "days", "assumption": True, "note": "a test value"}


def _rule(rule_id, conditions, step=None, **extra):
    out = {"id": rule_id, "title": f"Context: {rule_id} for review", "proposes": ["note"],
           "rationale": "a test rule", "sources": [SRC], "conditions": conditions, **extra}
    if step is not None:
        out.update(step=step, proposes=["PE"], title=f"Step {step} for review: {rule_id}")
    return out


def waiting_rules(every: float, wait: float, since: float) -> Ruleset:
    rules = [
        _rule("ventilated", [{"active": "invasive_ventilation"}], step=1),
        _rule("daily", [{"active": "invasive_ventilation"}], repeat="each_day"),
        _rule("weekly", [{"given": ["MPT"]}], repeat={"every_days": "every"},
              parameters={"every": {"value": every, **PARAM}}),
        _rule("after-wait", [{"step_flagged": 1, "for_days": "wait"}], step=2,
              parameters={"wait": {"value": wait, **PARAM}}),
        _rule("long-after-mpt", [{"since": ["MPT"], "of": "last", "op": ">", "days": "since"}],
              repeat={"every_days": "every"},
              parameters={"since": {"value": since, **PARAM}, "every": {"value": every, **PARAM}}),
        _rule("soon-after-pe", [{"since": ["PE"], "of": "first", "op": "<=", "days": "since"}],
              repeat="each_day", parameters={"since": {"value": since, **PARAM}}),
    ]
    return Ruleset.model_validate({"ruleset": {"id": "waiting", "version": "1", "title": "days passing"},
                                   "labels": {"note": {"kind": "context", "description": "a note"}},
                                   "rules": rules})


QUIET = make_scenario(ev("support", 0, code="invasive_ventilation", until=90), ev("therapy", 5, code="MPT"),
                      ev("therapy", {"between": [300, 340]}, id="mpt-2", code="MPT"), ev("procedure", 400, code="PE", until=401),
                      diagnoses=(("JDM", 0),))


@pytest.mark.parametrize("every,wait,since", [(7, 30, 100), (1, 0, 0), (13, 200, 3), (400, 1000, 999)])
def test_repeats_and_waits_over_long_quiet_stretches(every, wait, since):
    ruleset = waiting_rules(every, wait, since)
    compiled = compile_ruleset(ruleset)
    assert decisions(QUIET, compiled, 1500) == evaluate(QUIET, ruleset, 1500)
    same_as_day_by_day(QUIET, compiled, 1500)
    daily = [f for f in run_pass(QUIET, compiled, "early", 1500).flags if f.rule_id == "daily"]
    assert [f.day for f in daily] == list(range(0, 91))  # every day on ventilation, none after
    weekly = [f.day for f in run_pass(QUIET, compiled, "early", 1500).flags if f.rule_id == "weekly"]
    assert weekly == list(range(5, 1501, every))  # every `every` days for as long as the record runs


def test_the_fast_path_asserts_few_facts_on_a_quiet_record(monkeypatch):
    """The point of it: a long record with few events costs few engine calls."""
    calls = []
    original = Session.assert_members

    def counting(self, *args):
        calls.append(args[2])
        return original(self, *args)

    monkeypatch.setattr(Session, "assert_members", counting)
    run_pass(QUIET, COMPILED["report-pathway"], "early", 20000)
    assert len(calls) < 50, calls


# --- sessions cut short give the same answers ------------------------------------------------


def test_a_new_session_every_few_facts_changes_no_flag_and_no_condition(monkeypatch):
    """The replay and the explain program go on in a new session every SESSION_FACTS facts (the
    engine keeps matched facts until a session is deleted); every rule reads one fact, so where the
    sessions are cut must not matter. Cut them every 3 facts and compare."""
    from escalation.evaluate import explain, replay as replay_module
    from escalation.evaluate.explain import read_conditions

    def everything(scenario, compiled):
        runs = {w: run_pass(scenario, compiled, w) for w in ("early", "late")}
        reads = {w: read_conditions(scenario, compiled, runs[w], {r.rule_id: None for r in compiled.rules}).held
                 for w in runs}
        return {w: [(f.rule_id, f.day, f.occurrence, f.fact) for f in runs[w].flags] for w in runs}, reads

    cases = [(load_scenario(p), c) for p in SHIPPED[:3] for c in COMPILED.values()] + [
        (dense(120, 5), COMPILED["report-pathway"]), (QUIET, COMPILED["romero-bueno-2020"])]
    whole = [everything(s, c) for s, c in cases]
    monkeypatch.setattr(replay_module, "SESSION_FACTS", 3)
    monkeypatch.setattr(explain, "SESSION_FACTS", 3)
    assert [everything(s, c) for s, c in cases] == whole
