"""`escalation explain`: every condition of every rule, day by day, and what decided each day."""

from __future__ import annotations

import json

import pytest
from conftest import INDEX_CASE, PATHWAY, SRC, ev, make_scenario
from typer.testing import CliRunner

import escalation
from escalation.cli.app import app
from escalation.load.ruleset import Ruleset

runner = CliRunner()


def _cli(*args: str):
    return runner.invoke(app, ["explain", *args])


@pytest.fixture(scope="module")
def rtx():
    return escalation.explain(INDEX_CASE, rule_ids=["step4-rituximab"])


def test_the_condition_met_last_decides_the_rituximab_day(rtx):
    """Day 18 under the early placement (a week of plasma exchange), day 28 under the late one
    (the titre's rebound reported as late as the source allows)."""
    [rule] = rtx.rules
    early, late = rule.placements
    assert [(f.day, f.met_last, f.met_last_day, f.decided_by) for f in early.fired] == [(18, [2], 18, "conditions")]
    assert [(f.day, f.met_last, f.met_last_day) for f in late.fired] == [(28, [3], 28)]
    assert rule.conditions[1].label == "days since first PE >= 7"
    assert rule.conditions[2].label == "anti_mda5 rising over 14 d"
    assert [t.first_held for t in early.conditions] == [11, 18, 13, 12]
    assert [t.first_held for t in late.conditions] == [11, 18, 28, 24]
    assert early.nearest is None and late.nearest is None


def test_the_table_says_which_condition_was_met_last():
    result = _cli(str(INDEX_CASE), "--rule", "step4-rituximab")
    assert result.exit_code == 0, result.output
    out = result.stdout
    early, late = out.split("Early placement:", 1)[1].split("Late placement:", 1)
    # both windows are assumptions (no source says how long), and say so
    assert "fired on day 18: condition met last: 2. days since first PE >= 7 (assumption) (held from day 18)" in early
    assert "fired on day 28: condition met last: 3. anti_mda5 rising over 14 d (assumption) (held from day 28)" in late
    assert out.startswith("RESEARCH REVIEW ONLY") and out.rstrip().endswith("not recommendations for any patient.")


def test_every_day_shows_every_condition_held_or_not_with_the_value_read(rtx):
    early = rtx.rules[0].placements[0]
    day = {r.day: r for r in early.days}
    assert (early.days[0].day, early.days[-1].day) == (-113, 517)
    d17 = day[17]
    assert [c.held for c in d17.conditions] == [True, False, True, True] and d17.failed == 1 and not d17.fired
    since = d17.conditions[1]
    assert since.values == {"since_first__PE": 6} and since.distance == -1 and since.read_as == "6 d (1 d below 7 d)"
    assert day[18].fired and day[18].failed == 0 and day[18].conditions[1].read_as == "7 d"


def test_a_rule_that_never_fired_gets_its_nearest_day_and_the_gap_to_the_threshold():
    data = escalation.explain(INDEX_CASE, rule_ids=["step3-ecmo-oi"], days=(0, 30))
    [rule] = data.rules
    for p in rule.placements:
        assert p.fired == [] and p.nearest is not None
        assert p.nearest.day == 11 and p.nearest.held == 1
        [oi] = p.nearest.failed
        assert oi.values == {"oi__w0": 8.0} and oi.distance == -32.0 and oi.read_as == "8: 32 below 40"
    out = _cli(str(INDEX_CASE), "--rule", "step3-ecmo-oi", "--days", "0..30").stdout
    assert "did not fire in days 0..30; nearest day 11 (1 of 2 held): 2. oi > 40 failed (8: 32 below 40)" in out


def test_days_limit_the_rows_and_the_summaries():
    data = escalation.explain(INDEX_CASE, rule_ids=["step4-rituximab"], days="20..30")
    assert (data.first_day, data.last_day) == (20, 30)
    early, late = data.rules[0].placements
    assert [r.day for r in early.days] == list(range(20, 31))
    assert early.fired == [] and early.fired_outside == [18]  # it fired before the days shown
    assert early.nearest is not None and early.nearest.day == 20 and early.nearest.failed == []
    assert [t.first_held for t in early.conditions] == [20, 20, 20, 20]
    # a firing inside the days shown still reads the condition's whole run of held days
    assert [(f.day, f.met_last_day) for f in late.fired] == [(28, 28)]
    out = json.loads(_cli(str(INDEX_CASE), "--rule", "step4-rituximab", "--days", "20..30", "--format", "json").stdout)
    assert [r["day"] for r in out["rules"][0]["placements"][1]["days"]] == list(range(20, 31))
    table = _cli(str(INDEX_CASE), "--rule", "step4-rituximab", "--days", "20..30").stdout
    assert "did not fire in days 20..30, though every condition held on day 20: it had fired on day 18" in table
    assert "│     28 │" in table and "│     19" not in table


def test_days_reaching_past_the_replay_are_cut_to_it_and_say_so():
    """The index case runs from day -113 to day 517: a range reaching past either end shows the
    replayed part and says what was asked; a condition not held in it is "not within" those days,
    never "never" (the engine read only the days shown for the summary)."""
    data = escalation.explain(INDEX_CASE, rule_ids=["step4-rituximab"], days=(500, 700))
    assert (data.first_day, data.last_day, data.days_asked) == (500, 517, (500, 700))
    assert [r.day for r in data.rules[0].placements[0].days] == list(range(500, 518))
    table = _cli(str(INDEX_CASE), "--rule", "step4-rituximab", "--days", "500..700").stdout
    assert "days 500..517 (of days 500..700 asked: the replay covers days -113..517)" in " ".join(table.split())
    assert "3. not within days 500..517" in table and "never" not in table
    early = escalation.explain(INDEX_CASE, rule_ids=["step4-rituximab"], days=(-200, -100))
    assert (early.first_day, early.last_day, early.days_asked) == (-113, -100, (-200, -100))
    inside = json.loads(_cli(str(INDEX_CASE), "--rule", "step4-rituximab", "--days", "20..30", "--format",
                             "json").stdout)
    assert inside["days_asked"] is None  # nothing cut
    whole = _cli(str(INDEX_CASE), "--rule", "step3-ecmo-oi").stdout  # every day read: "never" is true
    assert "first day held in days -113..517: 1. day" in whole and "2. never" in whole
    assert "asked" not in whole.split("Which conditions")[0]


def test_rule_filters_keep_the_order_given_and_json_carries_the_notice():
    result = _cli(str(INDEX_CASE), "--rule", "step4-rituximab", "--rule", "step2-plasma-exchange",
                  "--days", "11", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["notice"].startswith("RESEARCH REVIEW ONLY")
    assert [r["rule_id"] for r in data["rules"]] == ["step4-rituximab", "step2-plasma-exchange"]
    pe = data["rules"][1]
    assert pe["conditions"][2]["case_specific"] and pe["placements"][0]["fired"][0]["day"] == 11


def test_case_specific_conditions_are_marked():
    out = _cli(str(INDEX_CASE), "--rule", "step3-ecmo-oxygenation", "--days", "20..25").stdout
    assert "  3. map >= 18 (map_at_least; reading that day) (case-specific)" in out
    assert "fired on day 24: condition met last:" in out


def test_assumptions_are_marked_on_their_conditions_and_listed_at_the_end():
    """The README promises the assumption parameters at the end of every output and under
    `ruleset.assumptions` in JSON; explain gave neither (found in a user trial). A condition that
    compares with such a value is marked as a case-specific one is."""
    out = _cli(str(INDEX_CASE), "--rule", "step2-plasma-exchange", "--days", "10..12").stdout
    assert "\nASSUMPTION: trend_window_days (no source states this value)\nConditions:\n" in out
    assert "  4. anti_mda5 not decreasing over 14 d (trend_window_days) (assumption)\n" in out
    assert "  3. invasive_ventilation in place (case-specific)\n" in out  # an unmarked parameter stays unmarked
    notes = out.split("\nModelling assumptions (thresholds no source states):\n", 1)[1]
    assert "step2-plasma-exchange.trend_window_days" in notes and "add-mmf.days_after_rtx" in notes
    assert "Case-specific conditions" in notes and notes.rstrip().endswith("not recommendations for any patient.")
    data = json.loads(_cli(str(INDEX_CASE), "--rule", "step2-plasma-exchange", "--format", "json").stdout)
    assert data["ruleset"] == escalation.replay(INDEX_CASE).ruleset.model_dump(mode="json")  # as replay lists them
    [pe] = data["rules"]
    assert pe["assumptions"] == ["trend_window_days"]
    assert [c["assumptions"] for c in pe["conditions"]] == [[], [], [], ["trend_window_days"]]


def test_an_overridden_value_is_an_assumption_in_explain_as_in_replay():
    rs = escalation.load_ruleset(PATHWAY, {"step3-ecmo-oi.oi_above": 30})
    why = escalation.explain(INDEX_CASE, rs, rule_ids=["step3-ecmo-oi"], days=(20, 25))
    assert "step3-ecmo-oi.oi_above" in why.ruleset.assumptions
    [rule] = why.rules
    assert rule.assumptions == ["oi_above"] and [c.assumptions for c in rule.conditions] == [[], ["oi_above"]]
    assert "step3-ecmo-oi.oi_above" not in escalation.explain(INDEX_CASE, rule_ids=["step3-ecmo-oi"]).ruleset.assumptions


@pytest.mark.parametrize("args, message", [
    (["--rule", "no-such-rule"], "error: --rule: no rule 'no-such-rule' in rule set report-pathway"),
    (["--days", "30..10"], "error: --days: 30..10 is empty"),
    (["--days", "ten..20"], "error: --days: 'ten..20' is not a day range A..B"),
    (["--rules", "missing.yaml"], "missing.yaml"),
    (["--days", "600..700"], "error: --days: days 600..700 are outside the replay, which covers days -113..517"),
    (["--days", "-200..-114"], "error: --days: days -200..-114 are outside the replay, which covers days -113..517"),
    (["--days", "518"], "error: --days: day 518 is outside the replay, which covers days -113..517"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = _cli(str(INDEX_CASE), *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_the_api_refuses_an_unknown_rule_id():
    with pytest.raises(escalation.InputError, match="no rule 'x'"):
        escalation.explain(INDEX_CASE, rule_ids=["x"])


def _asks(*conditions: dict) -> Ruleset:
    return Ruleset.model_validate({
        "ruleset": {"id": "kinds", "version": "0", "title": "kinds"},
        "labels": {"seen": {"kind": "context", "description": "seen"}},
        "rules": [{"id": "asks", "title": "Context: asks for a code", "proposes": ["seen"],
                   "rationale": "test", "sources": [SRC], "conditions": list(conditions)}],
    })


def test_it_says_when_a_code_counts_through_the_hierarchy_and_when_only_a_broader_one_is_recorded():
    scenario = make_scenario(ev("support", 2, id="ecmo", code="VV-ECMO", until=5), diagnoses=(("ILD", 1),))
    data = escalation.explain(scenario, _asks({"active": "ECMO"}, {"diagnosis": "RP-ILD"}), days=(0, 3))
    [p, _] = data.rules[0].placements
    assert p.conditions[0].kinds == ["VV-ECMO recorded; counts for ECMO, as a kind of it"]
    assert p.conditions[1].kinds == ["ILD recorded; rule asks for RP-ILD, a narrower kind"]
    day2 = next(r for r in p.days if r.day == 2)
    assert [c.held for c in day2.conditions] == [True, False]
    assert day2.conditions[1].read_as == "not made by then"
    from escalation.report.explain_text import to_table

    text = to_table(data)  # the table says it too
    assert "1. through the code kinds: VV-ECMO recorded; counts for ECMO, as a kind of it" in text
    assert "2. through the code kinds: ILD recorded; rule asks for RP-ILD, a narrower kind" in text


def test_a_repeating_rule_names_the_interval_when_it_waited(pathway):
    """rtx-redose fires each day a B-cell recovery is reported: every firing is decided by the finding."""
    data = escalation.explain(INDEX_CASE, PATHWAY, rule_ids=["rtx-redose"])
    for p in data.rules[0].placements:
        assert [f.decided_by for f in p.fired] == ["conditions", "conditions"]
        assert all(f.met_last == [2] for f in p.fired)


def test_a_rule_set_with_more_conditions_than_one_engine_ruleset_tests_is_split_into_chunks():
    """The engine tests at most 64 rules from one stack (limits.py); 40 rules of 3 conditions each
    make 120 condition rules (80 of them open at once), so the explain program is split, and the
    chunks together agree with the reference evaluator."""
    from conftest import obs

    from escalation.evaluate import explain as engine_explain
    from escalation.evaluate.engine import compile_ruleset
    from escalation.evaluate.reference import condition_pass
    from escalation.evaluate.replay import run_pass

    rules = [{"id": f"r{i}", "title": "Context: a band", "proposes": ["seen"], "rationale": "test",
              "sources": [SRC], "repeat": "each_day",
              "parameters": {"lo": {"value": i, "unit": "index", "sources": [SRC]},
                             "hi": {"value": i + 5, "unit": "index", "sources": [SRC]}},
              "conditions": [{"measure": "anti_mda5", "op": ">=", "threshold": "lo"},
                             {"measure": "anti_mda5", "op": "<", "threshold": "hi"},
                             {"diagnosis": "JDM"}]} for i in range(40)]
    ruleset = Ruleset.model_validate({"ruleset": {"id": "many", "version": "0", "title": "many"},
                                      "labels": {"seen": {"kind": "context", "description": "seen"}},
                                      "rules": rules})
    scenario = make_scenario(obs(2, id="a", anti_mda5=12.0), obs(4, id="b", anti_mda5=27.5), diagnoses=(("JDM", 3),))
    compiled = compile_ruleset(ruleset)
    assert len(engine_explain._chunks(compiled)) >= 2
    for w in ("early", "late"):
        run = run_pass(scenario, compiled, w)
        held = engine_explain.read_conditions(scenario, compiled, run, {r["id"]: None for r in rules}).held
        assert held == condition_pass(scenario, ruleset, w)
        assert ("r10", 0) in held[2] and ("r10", 2) not in held[2] and ("r25", 1) in held[4]


def test_a_quiet_stretch_is_asked_about_once(monkeypatch):
    """The index case spans 631 days, most of them with nothing new: the explain program asks the
    engine about a day only when its fact can differ from the day before's (a feature changes, a
    count still moves or a rule fired), and every other day carries the same answer
    (tests/test_reference.py compares each day's answer with the reference evaluator)."""
    from escalation.evaluate import engine
    from escalation.evaluate.engine import compile_ruleset
    from escalation.evaluate.explain import read_conditions
    from escalation.evaluate.replay import run_pass

    scenario, compiled = escalation.load_scenario(INDEX_CASE), compile_ruleset(escalation.load_ruleset(PATHWAY))
    run = run_pass(scenario, compiled, "early")
    asked = []
    real = engine.Session.assert_members
    monkeypatch.setattr(engine.Session, "assert_members", lambda self, *a: asked.append(a[-1]) or real(self, *a))
    reads = read_conditions(scenario, compiled, run, {r.rule_id: None for r in compiled.rules})
    assert len(reads.held) == 631
    assert 0 < len(asked) < 100  # 39 here; 520 when every distinct day was asserted
    quiet = [d for d in range(200, 517) if d not in asked]
    assert quiet and all(reads.held[d] == reads.held[d - 1] for d in quiet)


def test_explain_says_when_a_value_is_an_index_the_report_contradicts():
    """Found in review: replay's decision points said that day 24's OI of 36 is recomputed against
    the report's 20, explain printed the bare 36."""
    from escalation import api

    ex = api.explain(INDEX_CASE, rule_ids=["pards-oi-severe", "step3-ecmo-oi"], days=(24, 24))
    read = {r.rule_id: r.placements[0].days[0].conditions for r in ex.rules}
    assert read["pards-oi-severe"][1].read_as == "36 (recomputed; the source reports 20: see the data-consistency findings)"
    assert read["step3-ecmo-oi"][1].read_as.endswith("(recomputed; the source reports 20: see the data-consistency findings)")
    assert not read["step3-ecmo-oi"][1].held
