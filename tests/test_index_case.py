"""The index case replayed with the report's pathway: the decision points the issue asks for."""

from __future__ import annotations

from conftest import INDEX_CASE, points

from escalation.match.results import NOTICE


def test_step1_on_admission(index_result):
    [dp] = points(index_result, "step1-combination")
    assert (dp.day, dp.day_latest, dp.step) == (0, 0, 1)
    assert dp.proposes == ["MPT", "PSL", "CyA", "IVCY", "IVIG"]
    # the first MPT pulse is dated only as days 0-11 in the text, so the lag is a range
    mpt = next(a for a in dp.actions if a.code == "MPT")
    assert (mpt.day, mpt.day_latest, mpt.lag_days, mpt.lag_days_max) == (0, 11, 0, 11)


def test_step2_plasma_exchange_due_by_day_11_and_started_day_11(index_result):
    [dp] = points(index_result, "step2-plasma-exchange")
    assert (dp.day, dp.day_latest, dp.timing) == (11, 11, "exact")
    assert (dp.actual_day, dp.lag_days, dp.lag_days_max) == (11, 0, 0)
    assert dp.actions[0].event_id == "pe"


def test_step3_ecmo_due_by_day_24_and_started_day_24(index_result):
    [dp] = points(index_result, "step3-ecmo-oxygenation")
    assert (dp.day, dp.day_latest) == (24, 24)
    assert (dp.actual_day, dp.lag_days) == (24, 0)
    met = {c.condition.split()[0]: c.values for c in dp.conditions}
    assert met["spo2"] == {"spo2__w0__lt": 90}
    assert met["fio2"] == {"fio2__w0": 1.0}
    assert met["map"] == {"map__w0": 18}
    assert met["ino"] == {"ino__w0": 5.0}
    # the OI > 40 route does not fire: the index case never reaches it
    assert points(index_result, "step3-ecmo-oi") == []


def test_step4_rituximab_with_its_lag(index_result):
    [dp] = points(index_result, "step4-rituximab")
    # the titre rebound is dated days 13-28 and the lack of improvement days 12-24
    assert (dp.day, dp.day_latest, dp.timing) == (18, 28, "range")
    assert (dp.actual_day, dp.actual_day_latest) == (28, 28)
    assert (dp.lag_days, dp.lag_days_max) == (0, 10)
    assert dp.rests_on_assumption


def test_barotrauma_watch_on_day_24(index_result):
    [dp] = points(index_result, "barotrauma-watch")
    assert (dp.day, dp.kind, dp.step) == (24, "watch", None)
    assert dp.conditions[0].values == {"pip__w0": 31}
    assert dp.actual_day is None and "watch" in dp.action_note


def test_rtx_redoses_match_the_second_and_third_doses(index_result):
    first, second = points(index_result, "rtx-redose")
    assert (first.occurrence, second.occurrence) == (1, 2)
    assert [a.event_id for a in first.actions] == ["rtx-2"]
    assert [a.event_id for a in second.actions] == ["rtx-3"]
    # each B-cell recovery is dated only as "after the previous dose, by the re-dose it led to"
    assert (first.day, first.day_latest) == (29, 104)
    assert (second.day, second.day_latest) == (47, 226)
    assert (first.actual_day, first.actual_day_latest) == (46, 104)


def test_mmf_added_after_rituximab(index_result):
    [dp] = points(index_result, "add-mmf")
    assert (dp.day, dp.actual_day, dp.lag_days) == (35, 40, 5)


def test_severity_context_follows_palicc_bands(index_result):
    assert [dp.day for dp in points(index_result, "pards-oi-moderate")] == [11]
    assert [dp.day for dp in points(index_result, "pards-oi-severe")] == [24]
    assert points(index_result, "pards-oi-mild") == []


def test_every_data_consistency_finding(index_result):
    findings = {(f.kind, tuple(f.events)) for f in index_result.findings}
    assert findings == {
        ("reported_index", ("vent-d24",)),
        ("imaging_study", ("xray-d24-text", "xray-d24-caption")),
        ("imaging_study", ("ct-d78-text", "ct-d78-caption")),
    }
    oi = next(f for f in index_result.findings if f.kind == "reported_index")
    assert (oi.reported, oi.derived) == (20, 36)
    assert "P/F would have to be 90" in oi.message


def test_agreeing_checks_are_kept_beside_the_findings(index_result):
    day11 = next(c for c in index_result.checks if c.events == ["vent-d11"] and c.kind == "reported_index")
    assert day11.agrees and (day11.reported, day11.derived) == (8.0, 8.0)
    intervals = [c for c in index_result.checks if c.kind == "reported_interval"]
    assert intervals and all(c.agrees for c in intervals)


def test_doses_derived_from_the_regimens(index_result):
    doses = {d.code: d.implied for d in index_result.derived_doses}
    assert doses["MPT"].endswith("= 336 mg/day")
    assert doses["IVIG"].endswith("= 22.4 g/dose")
    # Mosteller: sqrt(92 x 11.2 / 3600) = 0.535 m2
    assert "0.535 m2" in doses["RTX"] and doses["RTX"].endswith("= 200.62 mg/dose")
    # the day is that of the measurements, not of the dose (a trial read '(day 0)' as the dose's day)
    assert doses["MPT"] == "MPT course 1 30 mg/kg/day x 11.2 kg (weight of day 0) = 336 mg/day"
    assert "x 0.535 m2 (Mosteller, from the height and weight of day 0) =" in doses["RTX"]


def test_assumptions_are_listed(index_result):
    assert "step3-ecmo-oxygenation.map_at_least" in index_result.ruleset.assumptions
    assert "barotrauma-watch.pip_limit" not in index_result.ruleset.assumptions


def test_nothing_reads_as_an_order(index_result):
    assert index_result.notice == NOTICE
    for dp in index_result.decision_points:
        assert dp.summary.startswith("For review")
        assert "review" in dp.detail


def test_a_decision_on_a_recomputed_index_the_report_contradicts_says_so():
    """Found in a user trial: with oi_above 30, step3-ecmo-oi fires on day 24 on OI 36, recomputed
    from P/F 50 and MAP 18, while the report states OI 20; only the findings said so. The
    condition now says it, and an index that agrees with the report (day 11: 8) says nothing."""
    from escalation import api

    result = api.replay(INDEX_CASE, overrides={"step3-ecmo-oi.oi_above": 30.0})
    by_rule = {dp.rule_id: dp for dp in result.decision_points}
    oi = next(c for c in by_rule["step3-ecmo-oi"].conditions if c.condition.startswith("oi > "))
    assert oi.met_by == "36 (recomputed; the source reports 20: see the data-consistency findings)"
    assert any(f.kind == "reported_index" and f.reported == 20 for f in result.findings)
    moderate = next(c for c in by_rule["pards-oi-moderate"].conditions if c.condition.startswith("oi >= "))
    assert moderate.met_by == "8"


def test_a_what_if_says_so_in_the_summary_the_title_cannot():
    """Found in a trial: with oi_above set to 30, the summary still read 'oxygenation index above
    40' (the rule's title) over a decision at OI 36. The summary, which heads a CDS card and a
    report row, now names the value set; a rule left alone says nothing more."""
    from escalation import api

    result = api.replay(INDEX_CASE, overrides={"step3-ecmo-oi.oi_above": 30.0})
    by_rule = {dp.rule_id: dp.summary for dp in result.decision_points}
    assert by_rule["step3-ecmo-oi"] == "For review (day 24; what-if oi_above=30): Step 3: VV-ECMO (oxygenation index above 40)"
    assert by_rule["step2-plasma-exchange"] == "For review (day 11): Step 2: plasma exchange (PE)"


def test_a_summary_says_for_review_once_and_first(index_result):
    """The summaries read 'For review (day 11): Step 2 for review: plasma exchange (PE)', since
    the titles say 'for review' themselves: the title's own is now left out of the summary, which
    still starts with it."""
    from escalation.match.matching import summary_line

    assert summary_line("Refractory, for review: adding MMF", "day 11") == "For review (day 11): Refractory: adding MMF"
    assert summary_line("Context: OI in the severe band", "days 3..4") == "For review (days 3..4): Context: OI in the severe band"
    assert summary_line("Step 2 For Review:plasma exchange", "day 1") == "For review (day 1): Step 2: plasma exchange"
    assert summary_line("For review: PE", "day 1") == "For review (day 1): PE"
    for title in ("Step 2 - for review: PE", "Step 2 \u2014 for review: PE", "Step 2 (for review): PE"):
        assert summary_line(title, "day 1") == "For review (day 1): Step 2: PE", title
    for kept in ("Not for review: PE", "Step 2 for review:: PE", "PE, for review", "Step 5 (not yet for review): PE",
                 "Step 5 (no longer for review): PE", "Step 2 (PE, for review): PE", "Step 2: for review: PE",
                 "Step 3, unless for review: PE"):  # not folded: kept whole
        assert summary_line(kept, "day 1") == f"For review (day 1): {kept}", kept
    assert summary_line("Step 5 (not for review yet): PE", "day 1") == "For review (day 1): Step 5 (not for review yet): PE"
    for dp in index_result.decision_points:
        assert dp.summary.startswith("For review (") and dp.summary.lower().count("for review") == 1, dp.summary


def test_every_replay_says_what_day_0_is(index_result):
    """Found in a trial: the days count from the scenario's day 0 (here the transfer to the treating
    hospital's ICU, so the report's day 11 of hospitalisation is day 11), and only the report said so."""
    from escalation.report.text import to_table

    assert index_result.scenario.day_zero.startswith("admission to the intensive care unit")
    assert f"day 0 = {index_result.scenario.day_zero}" in " ".join(to_table(index_result, width=200).split())
    from escalation import api
    from escalation.report.explain_text import to_table as explain_table

    explained = " ".join(explain_table(api.explain(INDEX_CASE, rule_ids=["step2-plasma-exchange"]), width=200).split())
    assert f"(day 0 = {index_result.scenario.day_zero})" in explained


def test_day_zero_is_written_out_and_read_on_one_line(tmp_path):
    """Found in review: an empty day_zero printed 'day 0 = )' and one with a newline split the header."""
    import pytest

    from escalation.load.errors import InputError
    from escalation.load.loading import load_scenario
    from escalation.report.text import to_table

    text = INDEX_CASE.read_text()
    line = "  day_zero: admission to the intensive care unit of the treating hospital (transfer)\n"
    assert line in text
    (tmp_path / "empty.yaml").write_text(text.replace(line, '  day_zero: " "\n'))
    with pytest.raises(InputError, match="day_zero"):
        load_scenario(tmp_path / "empty.yaml")
    (tmp_path / "two.yaml").write_text(text.replace(line, '  day_zero: "admission\\nto the ICU"\n'))
    from escalation import api

    [header] = [x for x in to_table(api.replay(tmp_path / "two.yaml"), width=200).splitlines() if x.startswith("Scenario")]
    assert header.endswith("(days -113..517; day 0 = admission to the ICU)")


def test_a_surface_dose_names_the_day_of_each_measurement_it_uses():
    """Found in review: the label named the later of the height's and the weight's days as the day of
    both ('height and weight of day 5' with the height taken on day -100)."""
    from conftest import ev, make_scenario, obs

    from escalation.derive.doses import implied_doses
    from escalation.derive.placement import place

    scenario = make_scenario(obs(-100, height=92, weight=11.0), obs(5, weight=11.2),
                             ev("therapy", 10, code="RTX", dose={"value": 375, "unit": "mg/m2/dose"}))
    [dose] = implied_doses(scenario, place(scenario, "early"))
    assert dose.label() == ("RTX 375 mg/m2/dose x 0.535 m2 (Mosteller, from the height of day -100 and weight "
                            "of day 5) = 200.62 mg/dose")  # sqrt(92 x 11.2 / 3600): the later weight
