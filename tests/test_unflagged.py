"""Both sides of the comparison: actions no decision point was matched to, and rules that never fired."""

from __future__ import annotations

import json

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT, ev, make_scenario, obs, run
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from escalation.cli.app import app
from escalation.evaluate.explain import ConditionReads
from escalation.load.loading import load_ruleset, load_scenario
from escalation.match.unflagged import closest_day

runner = CliRunner()
EARLY_RTX = ROOT / "scenarios" / "variants" / "early-rituximab.yaml"


@pytest.fixture(scope="module")
def early_rtx():
    return run(load_scenario(EARLY_RTX), load_ruleset(PATHWAY))


def test_rituximab_before_step_4_is_an_unflagged_action_with_the_failing_conditions(early_rtx):
    [rtx] = [a for a in early_rtx.unflagged_actions if a.code == "RTX"]
    assert (rtx.event_id, rtx.day, rtx.day_latest, rtx.placements) == ("rtx-1", 14, 14, ["early", "late"])
    by_rule = {(c.rule_id, tuple(c.placements)): c for c in rtx.candidates}
    assert {r for r, _ in by_rule} == {"step4-rituximab", "rtx-redose"}
    early = by_rule[("step4-rituximab", ("early",))]
    assert early.day == 14 and early.note is None
    [pe] = early.not_met  # the titre had risen by day 14 under the early placement; a week of PE had not passed
    assert pe.condition.startswith("days since first PE >= 7")
    assert pe.values == {"since_first__PE": 3} and pe.distance == -4 and pe.read_as == "3 d (4 d below 7 d)"
    late = by_rule[("step4-rituximab", ("late",))]
    assert [c.condition.split(" (")[0] for c in late.not_met] == [
        "days since first PE >= 7", "anti_mda5 rising over 14 d", "respiratory_not_improving reported within 14 d"]
    [redose] = [c for c in rtx.candidates if c.rule_id == "rtx-redose"]
    assert redose.placements == ["early", "late"]
    assert [c.read_as for c in redose.not_met] == ["not reported that day"]


def test_the_step_4_decision_point_meets_the_next_dose_instead(early_rtx):
    [dp] = [d for d in early_rtx.decision_points if d.rule_id == "step4-rituximab"]
    assert [a.event_id for a in dp.actions] == ["rtx-2"]


def test_an_action_flagged_under_one_placement_only_is_unflagged_under_the_other(pathway):
    """OI above 40 read on day 8 (early) falls within ventilation, on day 12 (late) after it."""
    scenario = make_scenario(
        ev("support", 3, id="vent", code="invasive_ventilation", until=10),
        obs({"between": [8, 12]}, id="gas", map={"value": 20, "unit": "cmH2O"}, fio2=1.0,
            pao2={"value": 45, "unit": "mmHg"}),
        ev("support", 9, id="ecmo", code="VV-ECMO"))
    result = run(scenario, pathway)
    [dp] = [d for d in result.decision_points if d.rule_id == "step3-ecmo-oi"]
    assert dp.timing == "early placement only" and [a.event_id for a in dp.actions] == ["ecmo"]
    [ecmo] = result.unflagged_actions
    assert (ecmo.event_id, ecmo.placements) == ("ecmo", ["late"])
    oi = next(c for c in ecmo.candidates if c.rule_id == "step3-ecmo-oi")
    assert oi.placements == ["late"] and oi.day == 9
    assert [c.read_as for c in oi.not_met] == ["no oi reading that day"]
    why = {(w.rule_id, tuple(w.placements)): w for w in result.why_not}
    assert ("step3-ecmo-oi", ("late",)) in why and ("step3-ecmo-oi", ("early",)) not in why
    assert why[("step3-ecmo-oi", ("late",))].text.startswith("step3-ecmo-oi: never fired under the late placement; ")


def test_why_not_names_the_closest_day_and_what_failed(index_result):
    lines = {w.rule_id: w for w in index_result.why_not}
    assert set(lines) == {"step3-ecmo-oi", "pards-oi-mild", "pards-osi-mild", "pards-osi-moderate"}
    oi = lines["step3-ecmo-oi"]
    assert (oi.closest_day, oi.placements, oi.conditions) == (11, ["early", "late"], 2)
    assert oi.text == "step3-ecmo-oi: never fired; closest day 11: oi > 40 failed (8: 32 below 40)"
    assert [(c.values, c.distance) for c in oi.failed] == [({"oi__w0": 8.0}, -32.0)]


def test_why_not_marks_a_case_specific_condition_and_says_what_was_missing(pathway):
    """SpO2 and FiO2 at the day-24 figures, but no MAP or inhaled NO recorded: the step 3 rule
    never fires, and its closest day names the two copied settings it lacked."""
    scenario = make_scenario(obs(6, id="gas", spo2={"value": 88}, fio2=1.0))
    [why] = [w for w in run(scenario, pathway).why_not if w.rule_id == "step3-ecmo-oxygenation"]
    assert why.text == ("step3-ecmo-oxygenation: never fired; closest day 6: map >= 18 (case-specific) failed "
                        "(no map reading that day); ino > 0 (case-specific) failed (no ino reading that day)")


def test_every_replay_ends_with_the_why_not_lines():
    table = runner.invoke(app, ["replay", str(INDEX_CASE)]).stdout.splitlines()
    notice_at = max(i for i, line in enumerate(table) if line.startswith("RESEARCH REVIEW ONLY"))
    block = table[table.index("Why not (rules that never fired, and the day they came closest):"):notice_at]
    assert block[1] == "  - step3-ecmo-oi: never fired; closest day 11: oi > 40 failed (8: 32 below 40)"
    assert len([line for line in block if line.startswith("  - ")]) == 4
    data = json.loads(runner.invoke(app, ["replay", str(INDEX_CASE), "--format", "json"]).stdout)
    assert [w["rule_id"] for w in data["why_not"]] == ["step3-ecmo-oi", "pards-oi-mild", "pards-osi-mild",
                                                       "pards-osi-moderate"]
    assert set(data["why_not"][0]) == {"rule_id", "step", "placements", "closest_day", "conditions", "failed", "text"}


def test_the_table_lists_unflagged_actions_apart_from_decision_points():
    out = runner.invoke(app, ["replay", str(EARLY_RTX), "--width", "120"]).stdout
    section = out.split("Actions without a decision point", 1)[1].split("Day ranges", 1)[0]
    assert "UNFLAGGED" in section and "rtx-1" in section and "step4-rituximab (step 4), day 14" in section
    assert "not met: days since first PE >= 7 (pe_days_before_refractory): 3 d (4 d below 7 d)" in section


# --- the report: HTML, Markdown and the clinical-course figure ------------------------------------


@pytest.fixture(scope="module")
def early_rtx_report(tmp_path_factory, early_rtx):
    from escalation.report.html import write_report

    out = tmp_path_factory.mktemp("early-rtx") / "report"
    write_report(load_scenario(EARLY_RTX), EARLY_RTX, [early_rtx], [load_ruleset(PATHWAY)], out)
    return out


def test_the_html_report_marks_unflagged_actions_apart_from_decision_points(early_rtx_report, early_rtx):
    html = (early_rtx_report / "report.html").read_text()
    section = html.split('<section id="unflagged">', 1)[1].split("</section>", 1)[0]
    assert section.count('<span class="badge unflagged">UNFLAGGED</span>') == len(early_rtx.unflagged_actions) == 4
    row = section.split('data-event="rtx-1"', 1)[1].split("</tr>", 1)[0]
    assert "step4-rituximab" in row and "3 d (4 d below 7 d)" in row
    assert '<ul class="why-not"><li><code class="rule">step3-ecmo-oi</code>: never fired; closest day 11' in section
    points = html.split('<section id="decision-points">', 1)[1].split("</section>", 1)[0]
    assert "UNFLAGGED" not in points


def test_the_markdown_report_marks_them(early_rtx_report):
    md = (early_rtx_report / "report.md").read_text()
    assert "| 14 | RTX UNFLAGGED (rtx-1) | both | step4-rituximab (day 14, early placement): days since" in md
    assert "- step3-ecmo-oi: never fired; closest day 11" in md


def test_the_figure_draws_unflagged_actions_as_crosses_not_rings(early_rtx):
    from matplotlib.lines import Line2D
    from matplotlib.text import Text

    from escalation.report.course import course_figure

    fig = course_figure(load_scenario(EARLY_RTX), [early_rtx])
    marks = {line.get_gid(): line for line in fig.findobj(Line2D) if (line.get_gid() or "").startswith("unflagged-")}
    assert {g for g in marks if not g.endswith("-late")} == {f"unflagged-0-{a.event_id}" for a in early_rtx.unflagged_actions}
    assert marks["unflagged-0-rtx-1"].get_marker() == "X" and list(marks["unflagged-0-rtx-1"].get_xdata()) == [14]
    assert "unflagged-0-ivcy-course-2-late" in marks  # a range: the late placement's start too
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert texts.count("UNFLAGGED") == 4 and "action with no decision point (UNFLAGGED)" in texts


def test_two_rule_sets_mark_each_sets_unflagged_actions_and_compare_them(tmp_path):
    from escalation.report.html import write_report

    sets = [load_ruleset(PATHWAY), load_ruleset(ROOT / "rules" / "rtx-earlier.yaml")]
    scenario = load_scenario(EARLY_RTX)
    out = tmp_path / "two"
    write_report(scenario, EARLY_RTX, [run(scenario, rs) for rs in sets], sets, out)
    html = (out / "report.html").read_text()
    row = html.split('<table id="action-comparison">', 1)[1].split('data-event="rtx-1"', 1)[1].split("</tr>", 1)[0]
    assert "changed" in row and "flagged by step4-rituximab" in row
    svg = (out / "course.svg").read_text()
    assert 'id="unflagged-0-rtx-1"' in svg and 'id="unflagged-1-rtx-1"' not in svg  # B flags it
    assert 'id="unflagged-0-ivcy-course-2"' in svg and 'id="unflagged-1-ivcy-course-2"' in svg
    md = (out / "report.md").read_text()
    assert "| RTX (rtx-1) | 14 | **changed** | UNFLAGGED (could: step4-rituximab, rtx-redose) |" in md


# --- the closest day, read from the days whose answer changes -----------------------------------

_ANSWERS = [frozenset(), frozenset({("r", 0)}), frozenset({("r", 1)}), frozenset({("r", 0), ("r", 1)}),
            frozenset({("r", 0), ("other", 0)}), frozenset({("r", 0), ("r", 1), ("r", 2)})]


@given(st.lists(st.sampled_from(range(len(_ANSWERS))), min_size=0, max_size=40),
       st.lists(st.integers(0, 3), min_size=40, max_size=40))
def test_the_closest_day_is_the_earliest_with_fewest_failures_as_read_day_by_day(picks, gaps):
    """closest_day reads only the days whose answer changes; it must pick what reading every
    day would: the earliest day on which the fewest of the rule's conditions failed."""
    days, day = [], 0
    for gap in gaps[:len(picks)]:
        day += gap + 1  # planned days need not be consecutive
        days.append(day)
    held = {d: _ANSWERS[p] for d, p in zip(days, picks)}
    reads = ConditionReads("early", None, {d: {} for d in days}, held)  # type: ignore[arg-type]
    every_day = min(days, key=lambda d: (3 - sum(1 for r, _ in held[d] if r == "r"), d), default=None)
    assert closest_day(reads, "r", 3) == every_day
