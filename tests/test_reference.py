"""The engine's decisions against the plain-Python reference evaluator.

Both read the same rule files; they share no evaluation code (see escalation/reference.py). Any
disagreement is shrunk by hypothesis to a minimal timeline, printed as YAML.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, find, given, note, settings
from strategies import threshold_shifts, timelines

from escalation.evaluate import reference
from escalation.evaluate.engine import compile_ruleset
from escalation.evaluate.explain import read_conditions
from escalation.evaluate.reference import evaluate
from escalation.evaluate.replay import run_pass
from escalation.load.loading import load_ruleset, load_scenario
from escalation.load.ruleset import FindingCondition, MeasureCondition, Ruleset, threshold_problem

RULE_FILES = sorted((ROOT / "rules").glob("*.yaml"))
SCENARIO_FILES = sorted(p for p in (ROOT / "scenarios").rglob("*.yaml") if "literature" not in p.parts)
RULESETS = {p.stem: load_ruleset(p) for p in RULE_FILES}
COMPILED = {k: compile_ruleset(v) for k, v in RULESETS.items()}
THRESHOLDS = sorted({(r.id, c.threshold) for rs in RULESETS.values() for r in rs.rules
                     for c in r.conditions if isinstance(c, MeasureCondition)})


def engine_decisions(scenario, name: str, compiled=None) -> dict[str, list[tuple[str, int, int]]]:
    compiled = compiled or COMPILED[name]
    return {w: [(f.rule_id, f.day, f.occurrence) for f in run_pass(scenario, compiled, w).flags]
            for w in ("early", "late")}


def shifted(ruleset: Ruleset, shifts: dict[tuple[str, str], float]) -> Ruleset:
    """The rule set with those of the thresholds it has moved by their offsets."""
    mine = {(r, p): ruleset.rule(r).parameters[p].value + d for (r, p), d in shifts.items()
            if any(x.id == r for x in ruleset.rules) and p in ruleset.rule(r).parameters}
    mine = {k: v for k, v in mine.items() if _crossable(ruleset, *k, v)}  # FiO2 1.0 moves only down
    return ruleset.with_overrides(mine) if mine else ruleset


def _crossable(ruleset: Ruleset, rule_id: str, name: str, value: float) -> bool:
    """A threshold a rule set may hold: one a reading could be on either side of, as loading asks."""
    rule = ruleset.rule(rule_id)
    return all(threshold_problem(c.measure, c.op, value) is None for c in rule.conditions
               if isinstance(c, MeasureCondition) and c.threshold == name)


def _as_yaml(scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False)


@pytest.mark.parametrize("rules", RULESETS, ids=str)
@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_shipped_scenarios_agree(path, rules):
    scenario = load_scenario(path)
    assert engine_decisions(scenario, rules) == evaluate(scenario, RULESETS[rules])


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=timelines(), shifts=threshold_shifts(THRESHOLDS))
def test_generated_timelines_agree(scenario, shifts):
    """Also with thresholds moved by amounts with many decimals (hardening item 9)."""
    note(_as_yaml(scenario))
    note(f"thresholds moved: {shifts}")
    for name, ruleset in RULESETS.items():
        moved = shifted(ruleset, shifts)
        compiled = COMPILED[name] if moved is ruleset else compile_ruleset(moved)
        assert engine_decisions(scenario, name, compiled) == evaluate(scenario, moved), name


def test_a_deliberate_change_of_semantics_is_caught(monkeypatch):
    """Make the reference read '>' as '>=': hypothesis must find a timeline where they part."""
    honest = reference._certainly

    def off_by_one(r, op, t):
        return honest(r, ">=" if op == ">" else op, t)

    monkeypatch.setattr(reference, "_certainly", off_by_one)
    name = "report-pathway"

    def disagrees(scenario) -> bool:
        return engine_decisions(scenario, name) != evaluate(scenario, RULESETS[name])

    example = find(timelines(exact_only=True), disagrees,
                   settings=settings(max_examples=2000, deadline=None, database=None,
                                     suppress_health_check=[HealthCheck.too_slow]))
    # the minimal example needs a reading exactly at a strict threshold
    assert any(e.kind == "observation" for e in example.events)


def test_a_changed_repeat_rule_is_caught(monkeypatch):
    """Let the reference fire 'once' rules again on later days: the index case exposes it."""
    honest = reference._may_fire

    def forgetful(rule, fired, day):
        if rule.repeat == "once" and fired.get(rule.id):
            return day > fired[rule.id][-1]
        return honest(rule, fired, day)

    monkeypatch.setattr(reference, "_may_fire", forgetful)
    scenario = load_scenario(ROOT / "scenarios" / "index_case.yaml")
    assert engine_decisions(scenario, "report-pathway") != evaluate(scenario, RULESETS["report-pathway"])


# --- every condition, day by day: the explain program against the reference ------------------


def engine_conditions(scenario, compiled) -> dict[str, dict[int, frozenset[tuple[str, int]]]]:
    """What the engine's explain program says held, per placement and day, for every rule."""
    out = {}
    for w in ("early", "late"):
        run = run_pass(scenario, compiled, w)
        out[w] = read_conditions(scenario, compiled, run, {r.rule_id: None for r in compiled.rules}).held
    return out


def reference_conditions(scenario, ruleset) -> dict[str, dict[int, frozenset[tuple[str, int]]]]:
    return {w: reference.condition_pass(scenario, ruleset, w) for w in ("early", "late")}


@pytest.mark.parametrize("rules", RULESETS, ids=str)
@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_shipped_scenarios_agree_on_every_condition(path, rules):
    scenario = load_scenario(path)
    engine, ref = engine_conditions(scenario, COMPILED[rules]), reference_conditions(scenario, RULESETS[rules])
    for w in ("early", "late"):
        assert engine[w].keys() == ref[w].keys()
        wrong = {d: (sorted(engine[w][d] ^ ref[w][d])) for d in ref[w] if engine[w][d] != ref[w][d]}
        assert wrong == {}, w


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=timelines(), shifts=threshold_shifts(THRESHOLDS))
def test_generated_timelines_agree_on_every_condition(scenario, shifts):
    """Each condition compiled as its own engine rule holds on exactly the days the reference says."""
    note(_as_yaml(scenario))
    note(f"thresholds moved: {shifts}")
    for name, ruleset in RULESETS.items():
        moved = shifted(ruleset, shifts)
        compiled = COMPILED[name] if moved is ruleset else compile_ruleset(moved)
        assert engine_conditions(scenario, compiled) == reference_conditions(scenario, moved), name


def test_a_changed_condition_is_caught_day_by_day(monkeypatch):
    """Make the reference read a finding window one day short: the index case shows it per condition."""
    honest = reference._holds

    def short_window(rule, cond, t, day, steps):
        if isinstance(cond, FindingCondition) and cond.within_days:
            return any(day - reference._window(rule, cond.within_days) + 1 <= d <= day
                       for d in t.starts([cond.finding], day))
        return honest(rule, cond, t, day, steps)

    monkeypatch.setattr(reference, "_holds", short_window)
    scenario = load_scenario(ROOT / "scenarios" / "index_case.yaml")
    name = "report-pathway"
    assert engine_conditions(scenario, COMPILED[name]) != reference_conditions(scenario, RULESETS[name])


def test_two_trend_reports_on_one_day_read_the_later_listed_in_both():
    """Found by the per-condition comparison: the engine's features sorted same-day reports by
    their direction, the reference took the later-listed one (as it does for readings)."""
    from conftest import ev, make_scenario

    scenario = make_scenario(ev("trend_report", 0, id="a", marker="anti_mda5", direction="not_decreasing"),
                             ev("trend_report", 0, id="b", marker="anti_mda5", direction="decreasing"))
    name = "report-pathway"
    engine, ref = engine_conditions(scenario, COMPILED[name]), reference_conditions(scenario, RULESETS[name])
    assert engine == ref
    assert ("step2-plasma-exchange", 3) not in engine["early"][0]  # 'decreasing', listed last, wins


def test_a_diagnosis_recorded_twice_holds_from_its_first_record_in_both():
    """Two records of one diagnosis (two FHIR Conditions, say): the one listed last used to win,
    so JDM recorded on day 0 and again on day 30 met step 1 only on day 30."""
    from conftest import ev, make_scenario

    scenario = make_scenario(ev("observation", 0, id="ab", values={"anti_mda5": 7500}),
                             diagnoses=(("JDM", 0), ("RP-ILD", 0), ("JDM", 30)))
    name = "report-pathway"
    engine = engine_decisions(scenario, name)
    assert engine == evaluate(scenario, RULESETS[name])
    assert [d for d in engine["early"] if d[0] == "step1-combination"] == [("step1-combination", 0, 1)]
