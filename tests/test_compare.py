"""`escalation diff`: where decision points move between rule sets."""

from __future__ import annotations

import json

from conftest import INDEX_CASE, PATHWAY, ROOT
from typer.testing import CliRunner

import escalation
from escalation.analysis.compare import to_text
from escalation.cli.app import app
from escalation.load.ruleset import Ruleset

runner = CliRunner()
ROMERO = ROOT / "rules" / "romero-bueno-2020.yaml"
EARLIER = ROOT / "rules" / "rtx-earlier.yaml"


def _diff(a, b, *scenarios) -> dict:
    result = runner.invoke(app, ["diff", str(a), str(b), *map(str, scenarios), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _change(data: dict, code: str, occurrence: int = 1) -> dict:
    [sd] = data["scenarios"]
    return next(c for c in sd["changes"] if c["code"] == code and c["occurrence"] == occurrence)


def test_romero_bueno_moves_pe_later_and_rtx_earlier_on_the_index_case():
    data = _diff(PATHWAY, ROMERO, INDEX_CASE)
    pe = _change(data, "PE")
    assert pe["status"] == "moved"
    assert (pe["a"]["rule_id"], pe["a"]["day"]) == ("step2-plasma-exchange", 11)
    assert (pe["b"]["rule_id"], pe["b"]["day"]) == ("rb-rescue", 25)
    assert (pe["shift_days"], pe["shift_days_latest"]) == (14, 14)
    rtx = _change(data, "RTX")
    assert (rtx["a"]["day"], rtx["a"]["day_latest"], rtx["b"]["day"]) == (18, 28, 11)
    assert (rtx["shift_days"], rtx["shift_days_latest"]) == (-7, -17)
    assert _change(data, "Tac")["status"] == "appears"
    assert _change(data, "barotrauma-watch")["status"] == "disappears"


def test_a_rule_set_against_itself_changes_nothing():
    data = _diff(PATHWAY, PATHWAY, INDEX_CASE)
    assert {c["status"] for c in data["scenarios"][0]["changes"]} == {"same"}


def test_table_names_the_shift():
    result = runner.invoke(app, ["diff", str(PATHWAY), str(EARLIER), str(INDEX_CASE)])
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("RTX"))
    assert row.split()[1] == "moved" and row.rstrip().endswith("-17..-7")
    assert "PE " not in result.stdout  # only what moves is listed by default


EARLY_RTX = ROOT / "scenarios" / "variants" / "early-rituximab.yaml"


def test_an_action_unflagged_under_one_rule_set_is_flagged_under_the_other():
    [sd] = _diff(PATHWAY, EARLIER, EARLY_RTX)["scenarios"]
    rtx = next(c for c in sd["unflagged"] if c["event_id"] == "rtx-1")
    assert (rtx["code"], rtx["day"], rtx["status"]) == ("RTX", 14, "changed")
    assert rtx["a"] == {"status": "unflagged", "placements": ["early", "late"], "flagged_by": [],
                        "could_flag": ["step4-rituximab", "rtx-redose"]}
    assert rtx["b"] == {"status": "flagged", "placements": [], "flagged_by": ["step4-rituximab"], "could_flag": []}
    same = {c["event_id"] for c in sd["unflagged"] if c["status"] == "same"}
    assert same == {"ivcy-course-2", "mmf-follow-up", "psl-follow-up"}


def test_the_diff_table_shows_actions_that_change_sides_and_all_with_all():
    out = runner.invoke(app, ["diff", str(PATHWAY), str(EARLIER), str(EARLY_RTX), "--width", "120"]).stdout
    row = next(line for line in out.splitlines() if line.strip().startswith("RTX (rtx-1)"))
    assert row.split()[3] == "changed" and "UNFLAGGED (could: step4-rituximab" in row
    assert row.rstrip().endswith("flagged by step4-rituximab")
    assert "ivcy-course-2" not in out
    everything = runner.invoke(app, ["diff", str(PATHWAY), str(EARLIER), str(EARLY_RTX), "--all"]).stdout
    assert "IVCY (ivcy-course-2)" in everything
    plain = runner.invoke(app, ["diff", str(PATHWAY), str(EARLIER), str(INDEX_CASE)]).stdout
    assert "no action is flagged under one rule set and unflagged under the other" in plain


def test_a_rule_set_against_itself_moves_no_action():
    [sd] = _diff(PATHWAY, PATHWAY, EARLY_RTX)["scenarios"]
    assert sd["unflagged"] and {c["status"] for c in sd["unflagged"]} == {"same"}


def test_each_rule_sets_assumptions_are_marked_and_listed_as_replay_lists_them():
    """The README promises the assumption parameters at the end of every output and in JSON; diff
    gave them for neither rule set (found in a user trial)."""
    data = _diff(PATHWAY, EARLIER, INDEX_CASE)
    for key, rules in (("ruleset_a", PATHWAY), ("ruleset_b", EARLIER)):
        assert data[key] == escalation.replay(INDEX_CASE, rules).ruleset.model_dump(mode="json")
    assert "step4-rituximab.rebound_window_days" in data["ruleset_a"]["assumptions"]
    assert "step4-rituximab.rebound_window_days" not in data["ruleset_b"]["assumptions"]  # B replaces that rule
    rtx = _change(data, "RTX")
    assert rtx["a"]["rests_on_assumption"] and rtx["b"]["rests_on_assumption"]
    assert not _change(data, "barotrauma-watch")["a"]["rests_on_assumption"]
    out = runner.invoke(app, ["diff", str(PATHWAY), str(EARLIER), str(INDEX_CASE), "--width", "200"]).stdout
    row = next(line for line in out.splitlines() if line.strip().startswith("RTX"))
    assert "18..28 step4-rituximab ASSUMPTION" in row and "11 step4-rituximab ASSUMPTION" in row
    a, b = out.split("\nRule set A, ", 1)[1].split("\nRule set B, ", 1)
    assert a.startswith(f"report-pathway v1.0.0 ({PATHWAY}):\nModelling assumptions (thresholds no source states):\n")
    assert b.startswith(f"rtx-earlier v1.0.0 ({EARLIER}):\nModelling assumptions (thresholds no source states):\n")
    assert "step4-rituximab.rebound_window_days" in a and "step4-rituximab.rebound_window_days" not in b
    assert "step4-rituximab.trend_window_days" in b and "Case-specific conditions" in b


def test_a_rule_set_without_assumptions_says_so():
    plain = Ruleset.model_validate({
        "ruleset": {"id": "plain", "version": "0", "title": "plain"},
        "labels": {"seen": {"kind": "context", "description": "seen"}},
        "rules": [{"id": "ventilated", "title": "Context: ventilated", "proposes": ["seen"], "rationale": "test",
                   "sources": [{"section": "Case presentation"}], "conditions": [{"active": "invasive_ventilation"}]}],
    })
    diff = escalation.compare(PATHWAY, plain, [INDEX_CASE])
    assert diff.ruleset_b.assumptions == [] and diff.ruleset_a.assumptions
    b = to_text(diff).split("\nRule set B, ", 1)[1]
    assert b == "plain v0 (<in memory>):\nno modelling assumptions, no case-specific conditions\n"


def test_a_decision_point_under_one_placement_against_both_is_a_change(index_result):
    """Found in a trial: a rule firing on day 11 under the early placement alone under A and under
    both under B was 'same', and the JSON sides carried no timing."""
    from escalation.analysis.compare import diff_results

    alone = index_result.model_copy(update={"decision_points": [
        dp.model_copy(update={"timing": "early placement only"}) if dp.rule_id == "step2-plasma-exchange" else dp
        for dp in index_result.decision_points]})
    pe = next(c for c in diff_results(alone, index_result).changes if c.code == "PE")
    assert (pe.status, pe.a.timing, pe.b.timing) == ("placements", "early placement only", "exact")
    assert next(c for c in diff_results(index_result, index_result).changes if c.code == "PE").status == "same"


def test_a_sweep_marks_a_decision_point_under_one_placement():
    from escalation.analysis.sweep import Point, moving, parse_range, to_table
    from escalation.match.results import NOTICE, RulesetOut

    rng = parse_range("step3-ecmo-oi.oi_above=30:40:10")
    points = [Point("s", 30.0, "add-mmf", 1, 35, 35, "s.yaml", timing="early placement only"),
              Point("s", 40.0, "add-mmf", 1, 35, 35, "s.yaml")]
    named = RulesetOut(id="r", version="1", title="t", content_hash="ab" * 32, assumptions=[], case_specific=[],
                       overrides={})
    text = to_table(points, rng, NOTICE, ruleset=named)
    assert "35 e       35" in text and "e, l: the decision point fires under the early (e) or late (l)" in text
    assert list(moving(points, rng)) == [("s", "s.yaml", "add-mmf", 1)]  # its placements change across the sweep
    late = [points[0], Point("s", 40.0, "add-mmf", 1, 35, 35, "s.yaml", timing="late placement only")]
    assert list(moving(late, rng)) == [("s", "s.yaml", "add-mmf", 1)]  # early alone, then late alone
    wide = [Point("s", 30.0, "x", 1, 147, 226, "s.yaml", timing="early placement only"),
            Point("s", 40.0, "x", 1, 147, 226, "s.yaml", timing="late placement only")]
    assert "147..226 e 147..226 l" in to_table(wide, rng, NOTICE, ruleset=named)  # a gap between marked cells


def test_diff_marks_each_side_as_a_replay_marks_its_decision_point():
    """Found in a trial: diff showed 'PE moved 11 step2-plasma-exchange ASSUMPTION' where replay
    and report show ASSUMPTION and CASE-SPECIFIC, and nothing for a decision point that read the
    recomputed OI 36 (reported as 20)."""
    diff = escalation.compare(PATHWAY, ROMERO)
    for rules, side_of in ((PATHWAY, lambda c: c.a), (ROMERO, lambda c: c.b)):
        replayed = {(dp.rule_id, dp.day): dp for dp in escalation.replay(INDEX_CASE, rules).decision_points}
        sides = [side_of(c) for c in diff.scenarios[0].changes if side_of(c) is not None]
        assert sides
        for side in sides:
            dp = replayed[(side.rule_id, side.day)]
            assert (side.rests_on_assumption, side.rests_on_case_specific, side.rests_on_disputed_value) == (
                dp.rests_on_assumption, dp.rests_on_case_specific, dp.rests_on_disputed_value)
        assert any(s.rests_on_case_specific for s in sides)
    assert any(c.a.rests_on_disputed_value for c in diff.scenarios[0].changes if c.a is not None)
    text = to_text(diff, width=200)
    assert "11 step2-plasma-exchange ASSUMPTION CASE-SPECIFIC " in text
    assert "11 rb-refractory-add-on ASSUMPTION CASE-SPECIFIC " in text
    assert "24 pards-oi-severe DISPUTED-VALUE " in text and "\nDISPUTED-VALUE: a condition the decision point met" in text


def test_the_disputed_value_legend_stands_where_a_mark_is_shown_and_nowhere_else():
    """The legend follows the rows shown: under rtx-earlier the disputed pards-oi-severe decision
    point stays put, so it is shown (and explained) only with --all."""
    rtx_earlier = ROOT / "rules" / "rtx-earlier.yaml"
    diff = escalation.compare(PATHWAY, rtx_earlier)
    assert "DISPUTED-VALUE" not in to_text(diff, width=200)
    both = to_text(diff, show_same=True, width=200)
    assert "24 pards-oi-severe DISPUTED-VALUE " in both and "\nDISPUTED-VALUE: a condition the decision point met" in both
