"""`escalation test`: expectations in scenario files, the per-day diff, coverage, JUnit XML;
and scenario variants."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT, run
from typer.testing import CliRunner

from escalation.cli.app import app
from escalation.load.errors import InputError
from escalation.load.loading import load_scenario

runner = CliRunner()
VARIANTS = ROOT / "scenarios" / "variants"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_shipped_scenarios_pass_with_the_shipped_rule_sets():
    result = invoke("test", str(ROOT / "scenarios"))
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.stdout
    assert "PASS" in result.stdout and "FAIL" not in result.stdout
    assert "Rule coverage, report-pathway:" in result.stdout


def test_a_moved_threshold_fails_with_a_readable_diff(tmp_path):
    moved = tmp_path / "moved.yaml"
    text = PATHWAY.read_text()
    old = "      map_at_least:\n        value: 18\n"
    assert text.count(old) == 1
    moved.write_text(text.replace(old, "      map_at_least:\n        value: 19\n"))
    junit = tmp_path / "junit.xml"
    result = invoke("test", str(INDEX_CASE), "--rules", str(moved), "--junit", str(junit))
    assert result.exit_code == 1
    out = result.stdout
    assert "FAIL      report-pathway         index-case" in out
    assert "expected step3-ecmo-oxygenation day 24 actual 24 lag 0; found nothing" in out
    # the per-day diff shows the expected day with nothing in the actual column
    row = next(line for line in out.splitlines() if "step3-ecmo-oxygenation  " in line)
    assert row.split() == ["!!", "24", "step3-ecmo-oxygenation", "present", "-"]
    fine = next(line for line in out.splitlines() if "barotrauma-watch  " in line)
    assert fine.split() == ["24", "barotrauma-watch", "present", "24"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "1"
    failure = suite.find("testcase/failure")
    assert "step3-ecmo-oxygenation" in failure.get("message")


def test_json_report_carries_coverage_and_never_fired_rules():
    result = invoke("test", str(INDEX_CASE), "--rules", str(PATHWAY), "--format", "json")
    data = json.loads(result.stdout)
    [cov] = data["coverage"]
    fired = {r["rule_id"]: r["fired"] for r in cov["rules"]}
    assert fired["step2-plasma-exchange"] == 1 and fired["rtx-redose"] == 2
    assert "step3-ecmo-oi" in cov["never_fired"]
    assert data["passed"] == 1 and data["failed"] == 0


def test_absent_expectation_fails_when_the_rule_fires(tmp_path):
    scenario = tmp_path / "s.yaml"
    text = INDEX_CASE.read_text().replace(
        "    - {rule: step3-ecmo-oi, present: false}", "    - {rule: barotrauma-watch, present: false}")
    scenario.write_text(text)
    result = invoke("test", str(scenario), "--rules", str(PATHWAY))
    assert result.exit_code == 1
    assert "expected no barotrauma-watch; found barotrauma-watch@24" in result.stdout


# --- variants ----------------------------------------------------------------------------------

def _days(result) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for dp in result.decision_points:
        out.setdefault(dp.rule_id, []).append((dp.day, dp.day_latest))
    return out


def test_other_units_come_to_the_same_decision_points(pathway, index_result):
    variant = run(load_scenario(VARIANTS / "other-units.yaml"), pathway)
    assert _days(variant) == _days(index_result)
    assert {f.kind for f in variant.findings} == {f.kind for f in index_result.findings}


def test_pe_responder_never_reaches_ecmo(pathway):
    days = _days(run(load_scenario(VARIANTS / "pe-responder.yaml"), pathway))
    assert "step2-plasma-exchange" in days
    assert not {"step3-ecmo-oxygenation", "step3-ecmo-oi", "step4-rituximab"} & set(days)


def test_early_collapse_takes_the_oi_route(pathway):
    result = run(load_scenario(VARIANTS / "early-collapse.yaml"), pathway)
    [dp] = [d for d in result.decision_points if d.rule_id == "step3-ecmo-oi"]
    assert dp.day == 3 and dp.conditions[-1].values == {"oi__w0": 44.4444}
    assert (dp.actual_day, dp.lag_days) == (24, 21)


def test_spo2_only_uses_osi(pathway):
    result = run(load_scenario(VARIANTS / "spo2-only.yaml"), pathway)
    [dp] = [d for d in result.decision_points if d.rule_id == "pards-osi-moderate"]
    assert dp.conditions[1].values == {"osi__w0": 10.4348}


def test_a_variant_is_marked_hypothetical():
    s = load_scenario(VARIANTS / "spo2-only.yaml")
    assert s.scenario.hypothetical
    assert s.event("vent-d11").hypothetical
    assert not s.event("pe").hypothetical  # inherited from the transcription


@pytest.mark.parametrize("body, message", [
    ("derives_from: ../nowhere.yaml\n", "no file ../nowhere.yaml"),
    ("derives_from: v.yaml\n", "cycle"),
    ("derives_from: {base}\nchanges: {{remove: [no-such-event]}}\n", "no event 'no-such-event'"),
    ("derives_from: {base}\nchanges:\n  add:\n    - {{id: x, kind: finding, code: b_cell_recovery, "
     "day: 3, source: {{section: Case presentation}}}}\n", "mark it hypothetical"),
])
def test_bad_variants(tmp_path, body, message):
    head = ("scenario: {id: v, title: t, hypothetical: true, source: {section: Case presentation}}\n")
    path = tmp_path / "v.yaml"
    path.write_text(head + body.format(base=INDEX_CASE))
    with pytest.raises(InputError, match=message):
        load_scenario(path)


# --- what was done: actual day, lag, unflagged actions, --through-day -------------------------

def test_a_changed_expected_lag_fails(tmp_path):
    scenario = tmp_path / "s.yaml"
    old = "    - {rule: step2-plasma-exchange, day: 11, actual_day: 11, lag: 0}\n"
    text = INDEX_CASE.read_text()
    assert text.count(old) == 2  # once under report-pathway, once under rtx-earlier
    scenario.write_text(text.replace(old, old.replace("lag: 0", "lag: 1"), 1))
    result = invoke("test", str(scenario), "--rules", str(PATHWAY))
    assert result.exit_code == 1
    data = json.loads(invoke("test", str(scenario), "--rules", str(PATHWAY), "--format", "json").stdout)
    [failed] = [o for o in data["scenarios"][0]["outcomes"] if not o["passed"]]
    assert failed["message"] == ("expected step2-plasma-exchange day 11 actual 11 lag 1; "
                                 "found step2-plasma-exchange@11 (actual 11, lag 0)")
    # the diff: the day as expected, then a row under it with actual day and lag, expected and found
    lines = result.stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if "step2-plasma-exchange  " in line)
    assert lines[i].split() == ["!!", "11", "step2-plasma-exchange", "present", "11"]
    assert lines[i + 1].split() == ["actual", "day,", "lag", "11,", "1", "11,", "0"]


@pytest.mark.parametrize("expectation, passed", [
    ({"rule": "step4-rituximab", "actual_day": 28, "lag": {"between": [0, 10]}}, True),
    ({"rule": "step4-rituximab", "lag": {"on_or_before": 10}}, True),
    ({"rule": "step4-rituximab", "lag": {"on_or_before": 9}}, False),   # the lag reaches 10
    ({"rule": "step4-rituximab", "actual_day": {"on_or_after": 29}}, False),
    ({"rule": "barotrauma-watch", "actual_day": 24}, False),            # a watch has no action
    ({"rule": "rtx-redose", "lag": {"on_or_after": 0}, "actual_day": {"between": [150, 230]}}, True),
])
def test_actual_day_and_lag_are_windows_over_the_whole_range(index_result, expectation, passed):
    from escalation.analysis.expectations import check
    from escalation.load.scenario import Expectation

    assert check(Expectation.model_validate(expectation), index_result).passed is passed


@pytest.mark.parametrize("expectation, message", [
    ({"unflagged": [], "day": 3}, "unflagged takes no day"),
    ({"unflagged": [], "present": False}, "unflagged takes no day"),
    ({"rule": "x", "present": False, "lag": 0}, "not present: false"),
    ({"rule": "x", "unflagged": []}, "exactly one of rule, step or unflagged"),
    ({"rule": "x", "present": False, "placements": "early"}, "not present: false"),
    ({"unflagged": [], "placements": "any"}, "unflagged takes no placements"),
    ({"unflagged": [{"code": "b_cell_recovery"}]}, "unknown support, procedure or therapy code"),
])
def test_bad_expectations(expectation, message):
    from pydantic import ValidationError

    from escalation.load.scenario import Expectation

    with pytest.raises(ValidationError, match=message):
        Expectation.model_validate(expectation)


def _with_unflagged(result, *actions):
    from escalation.match.results import UnflaggedAction

    made = [UnflaggedAction(code=c, event_id=f"{c}-{d}", day=d, day_latest=d2, placements=["early", "late"],
                            candidates=[]) for c, d, d2 in actions]
    return result.model_copy(update={"unflagged_actions": made})


@pytest.mark.parametrize("listed, actions, passed", [
    ([], [], True),
    ([], [("RTX", 5, 5)], False),
    ([{"code": "RTX", "day": 5}], [("RTX", 5, 5)], True),
    ([{"code": "RTX", "day": {"between": [4, 6]}}], [("RTX", 4, 6)], True),
    ([{"code": "RTX", "day": 5}], [("RTX", 4, 6)], False),             # the range must lie inside
    ([{"code": "RTX"}], [("RTX", 5, 5), ("MMF", 9, 9)], False),       # MMF is not expected
    ([{"code": "RTX"}, {"code": "RTX"}], [("RTX", 5, 5)], False),     # one action meets one entry
])
def test_unflagged_lists_every_action_taken_without_a_flag(index_result, listed, actions, passed):
    from escalation.analysis.expectations import check
    from escalation.load.scenario import Expectation

    out = check(Expectation.model_validate({"unflagged": listed}), _with_unflagged(index_result, *actions))
    assert out.passed is passed, out.message


def test_a_replay_lists_the_actions_it_did_not_flag(index_result):
    """The index case under the report's pathway: the second IVCY course, and MMF and PSL at follow-up."""
    found = [(a.code, a.event_id, a.day, a.day_latest, a.placements) for a in index_result.unflagged_actions]
    assert found == [("IVCY", "ivcy-course-2", 15, 70, ["early", "late"]),
                     ("MMF", "mmf-follow-up", 457, 517, ["early", "late"]),
                     ("PSL", "psl-follow-up", 457, 517, ["early", "late"])]


def test_through_day_runs_the_clock_past_the_last_event(tmp_path):
    src = {"section": "Case presentation"}
    def event(i, kind, day, **f):
        return {"id": f"e{i}", "kind": kind, "day": day, "source": src, **f}
    scenario = {
        "scenario": {"id": "short", "title": "ends before rituximab could be flagged", "source": src},
        "patient": {"age_years": 5, "sex": "female", "source": src, "diagnoses": [
            {"code": "JDM", "day": 0, "source": src}, {"code": "RP-ILD", "day": 0, "source": src}]},
        "events": [event(1, "observation", 0, values={"anti_mda5": 800}), event(2, "therapy", 0, code="MPT"),
                   event(3, "support", 1, code="invasive_ventilation"),
                   event(4, "trend_report", 1, marker="anti_mda5", direction="not_decreasing"),
                   event(5, "procedure", 1, code="PE"),
                   event(6, "trend_report", 2, marker="anti_mda5", direction="rising"),
                   event(7, "finding", 3, code="respiratory_not_improving")],
        "expected": {"report-pathway": [{"rule": "step4-rituximab", "day": 8}]},
    }
    path = tmp_path / "short.yaml"
    path.write_text(json.dumps(scenario))  # JSON is YAML, and has no anchors for the loader to refuse
    assert invoke("test", str(path), "--rules", str(PATHWAY)).exit_code == 1  # the clock stops on day 3
    result = invoke("test", str(path), "--rules", str(PATHWAY), "--through-day", "10")
    assert result.exit_code == 0, result.stdout


# --- expectations that name nothing: a misspelled rule id, step or rule set id -----------------

TYPO_RULE = "    - {rule: step3-ecmo-oxygenationn, present: false}\n"
TYPO_STEP = "    - {step: 9, present: false}\n"
ANCHOR = "    - {rule: step3-ecmo-oi, present: false}\n"


def _index_case_with(tmp_path, *lines: str, key: str | None = None, name: str = "typo.yaml"):
    """A copy of the index case with lines added under its report-pathway expectations (after
    `ANCHOR`), or with that rule set key spelled `key`."""
    text = INDEX_CASE.read_text()
    assert text.count(ANCHOR) == 1 and text.count("\n  report-pathway:\n") == 1
    text = text.replace(ANCHOR, ANCHOR + "".join(lines))
    if key is not None:
        text = text.replace("\n  report-pathway:\n", f"\n  {key}:\n")
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_expectation_naming_no_rule_or_step_of_its_rule_set_fails(tmp_path):
    """`present: false` for a rule that does not exist used to pass for ever."""
    scenario = _index_case_with(tmp_path, TYPO_RULE, TYPO_STEP)
    junit = tmp_path / "junit.xml"
    result = invoke("test", str(scenario), "--rules", str(PATHWAY), "--junit", str(junit), "--width", "200")
    assert result.exit_code == 1, result.stdout
    out = result.stdout
    assert f"FAIL      report-pathway         index-case  ({scenario})" in out
    rule_msg = (f"{scenario}: expected no step3-ecmo-oxygenationn: rule set report-pathway has no rule "
                "'step3-ecmo-oxygenationn', so this expectation checks nothing; did you mean "
                "'step3-ecmo-oxygenation'?")
    step_msg = (f"{scenario}: expected no step 9: rule set report-pathway has no rule of step 9, so this "
                "expectation checks nothing (its steps: 1, 2, 3, 4, 5)")
    flat = " ".join(out.split())  # the table folds long lines
    assert f"- {rule_msg} - {step_msg}" in flat
    row = next(line for line in out.splitlines() if "step3-ecmo-oxygenationn  " in line)
    assert row.split() == ["!!", "any", "day", "step3-ecmo-oxygenationn", "absent", "no", "such", "rule", "in",
                           "report-pathway"]
    assert "1 failed" in out

    data = json.loads(invoke("test", str(scenario), "--rules", str(PATHWAY), "--format", "json").stdout)
    assert data["failed"] == 1
    bad = [o for o in data["scenarios"][0]["outcomes"] if not o["passed"]]
    assert [(o["message"], o["unknown_target"]) for o in bad] == [(rule_msg, True), (step_msg, True)]
    assert all(o["unknown_target"] is False for o in data["scenarios"][0]["outcomes"] if o["passed"])

    case = ET.parse(junit).getroot().find("testsuite/testcase")
    assert case.find("failure").get("message") == f"{rule_msg}; {step_msg}"


def test_an_unknown_rule_id_far_from_every_rule_lists_the_rules(index_result, pathway):
    from escalation.analysis.expectations import outcome
    from escalation.load.scenario import Expectation

    exp = Expectation.model_validate({"rule": "zzz", "day": 3})
    out = outcome(index_result, [exp], pathway.rules)
    [o] = out.outcomes
    assert out.status == "fail" and o.unknown_target and not o.passed
    assert o.message.endswith("rule set report-pathway has no rule 'zzz', so this expectation checks nothing "
                              f"(its rules: {', '.join(r.id for r in pathway.rules)})")
    # without the rule set's rules (as before), only what was found is compared
    assert outcome(index_result, [exp]).outcomes[0].unknown_target is False


def test_expectations_under_an_unknown_rule_set_id_fail_as_their_own_row(tmp_path):
    scenario = _index_case_with(tmp_path, key="report-pathwy")
    junit = tmp_path / "junit.xml"
    result = invoke("test", str(scenario), "--junit", str(junit), "--width", "200")
    assert result.exit_code == 1, result.stdout
    message = (f"{scenario}: no rule set 'report-pathwy' is tested or shipped, so the expectations under it "
               "check nothing; did you mean 'report-pathway'?")
    assert f"UNCHECKED report-pathway         index-case  ({scenario})" in result.stdout
    assert f"FAIL report-pathwy index-case ({scenario}) - {message} 2 passed" in " ".join(result.stdout.split())
    assert "2 passed, 1 failed, 1 without expectations" in result.stdout
    suite = next(s for s in ET.parse(junit).getroot().iter("testsuite") if s.get("name") == "report-pathwy")
    assert suite.get("failures") == "1" and suite.find("testcase/failure").get("message") == message

    # a subset of rule sets: a shipped rule set left out is not checked, and not a failure either
    data = json.loads(invoke("test", str(scenario), "--rules", str(ROOT / "rules" / "rtx-earlier.yaml"),
                             "--format", "json").stdout)
    assert [(s["ruleset"], s["status"]) for s in data["scenarios"]] == [("rtx-earlier", "pass"),
                                                                       ("report-pathwy", "fail")]
    [o] = data["scenarios"][1]["outcomes"]
    assert o["unknown_target"] and o["expectation"] == "12 expectations under report-pathwy"
    shipped_only = invoke("test", str(INDEX_CASE), "--rules", str(ROOT / "rules" / "rtx-earlier.yaml"))
    assert shipped_only.exit_code == 0 and "report-pathway" not in shipped_only.stdout.split("Rule coverage")[0]


def _own_pathway(tmp_path, ruleset_id: str = "my-pathway", name: str = "mine.yaml"):
    """The report's pathway as rule set `ruleset_id`, its barotrauma-watch renamed pip-watch."""
    text = PATHWAY.read_text()
    assert text.count("  id: report-pathway\n") == 1 and text.count("id: barotrauma-watch\n") == 1
    path = tmp_path / name
    path.write_text(text.replace("  id: report-pathway\n", f"  id: {ruleset_id}\n")
                    .replace("id: barotrauma-watch\n", "id: pip-watch\n"))
    return path


def test_a_rule_set_given_is_known_by_its_id(tmp_path):
    rules = _own_pathway(tmp_path)
    scenario = _index_case_with(tmp_path, key="my-pathway")
    result = invoke("test", str(scenario), "--rules", str(rules), "--format", "json")
    data = json.loads(result.stdout)
    [row] = data["scenarios"]
    assert row["ruleset"] == "my-pathway" and row["status"] == "fail"
    # barotrauma-watch is a rule of the shipped pathway, not of this one
    [bad] = [o for o in row["outcomes"] if not o["passed"]]
    assert bad["unknown_target"] and "rule set my-pathway has no rule 'barotrauma-watch'" in bad["message"]
    assert "did you mean" not in bad["message"]


def check_cmd(*paths):
    return invoke("check", *map(str, paths))


def test_check_refuses_an_expectation_naming_nothing_with_its_line(tmp_path):
    typo = _index_case_with(tmp_path, TYPO_RULE, TYPO_STEP)
    key = _index_case_with(tmp_path, key="report-pathwy", name="key.yaml")
    good = VARIANTS / "pe-responder.yaml"
    result = check_cmd(typo, key, good)
    assert result.exit_code == 2
    assert result.stdout == f"ok: {good} (scenario)\n"
    line = typo.read_text().splitlines().index(TYPO_RULE.rstrip("\n")) + 1
    key_line = key.read_text().splitlines().index("  report-pathwy:") + 1
    # one line for a bad file, as for any other problem: the first place, and how many more
    assert result.stderr.splitlines() == [
        f"error: {typo}:{line} (expected.report-pathway[4].rule): rule set report-pathway has no rule "
        "'step3-ecmo-oxygenationn', so this expectation checks nothing; did you mean 'step3-ecmo-oxygenation'? "
        "(and 1 more problem)",
        f"error: {key}:{key_line} (expected.report-pathwy): no rule set 'report-pathwy' is checked here or "
        "shipped, so the expectations under it check nothing; did you mean 'report-pathway'?",
    ]
    step = _index_case_with(tmp_path, TYPO_STEP, name="step.yaml")
    assert check_cmd(step).stderr == (
        f"error: {step}:{line} (expected.report-pathway[4].step): rule set report-pathway has no rule of "
        "step 9, so this expectation checks nothing (its steps: 1, 2, 3, 4, 5)\n")


def test_check_knows_the_rule_sets_it_checks_before_the_shipped_ones(tmp_path):
    rules = _own_pathway(tmp_path, "report-pathway")  # the shipped id, with barotrauma-watch renamed
    result = check_cmd(INDEX_CASE, rules)
    assert result.exit_code == 2
    [err] = result.stderr.splitlines()
    assert err.startswith(f"error: {INDEX_CASE}:") and "(expected.report-pathway[5].rule)" in err
    assert "rule set report-pathway has no rule 'barotrauma-watch'" in err
    assert result.stdout == f"ok: {rules} (rules)\n"

    own = _own_pathway(tmp_path, "my-pathway", name="own.yaml")
    mine = _index_case_with(tmp_path, key="my-pathway", name="mine-scenario.yaml")
    mine.write_text(mine.read_text().replace("barotrauma-watch", "pip-watch"))
    ok = check_cmd(mine, own)
    assert ok.exit_code == 0, ok.stderr
    assert check_cmd(mine).exit_code == 2  # without the rule set, my-pathway is known nowhere


def test_check_leaves_expectations_under_a_rule_set_that_failed_to_load_to_its_own_error(tmp_path):
    rules = _own_pathway(tmp_path, "my-pathway")
    rules.write_text(rules.read_text().replace("  version:", "  versio:", 1))
    scenario = _index_case_with(tmp_path, key="my-pathway")
    result = check_cmd(scenario, rules)
    assert result.exit_code == 2
    [err] = result.stderr.splitlines()
    assert err.startswith(f"error: {rules}:") and "versio" in err
    assert result.stdout == f"ok: {scenario} (scenario)\n"


def test_check_passes_every_shipped_scenario_alone_against_the_shipped_rule_sets():
    result = check_cmd(ROOT / "scenarios")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("expectation, problem", [
    ({"rule": "step3-ecmo-oxygenation"}, None),
    ({"step": 5}, None),
    ({"unflagged": []}, None),
    ({"rule": "Step4-Rituximab"}, "did you mean 'step4-rituximab'?"),
    ({"step": 6, "present": False}, "has no rule of step 6"),
])
def test_target_problem(pathway, expectation, problem):
    from escalation.analysis.expectations import target_problem
    from escalation.load.scenario import Expectation

    why = target_problem(Expectation.model_validate(expectation), "report-pathway", pathway.rules)
    assert (why is None) if problem is None else (problem in why)


def test_two_files_that_give_one_scenario_id_are_named_with_their_files_in_coverage_and_junit(tmp_path):
    """Each outcome names its file; coverage and JUnit named the scenario by its id alone, so a
    rule fired in one of two files that share an id (two sites' fhir-p1) read as fired in both,
    and a JUnit reader saw two test cases of one name."""
    a, b = tmp_path / "index_case.yaml", tmp_path / "site-b" / "index_case.yaml"
    a.write_text(INDEX_CASE.read_text())
    b.parent.mkdir()
    (b.parent / "base.yml").write_text(INDEX_CASE.read_text().replace("id: index-case", "id: base", 1))
    b.write_text((VARIANTS / "early-collapse.yaml").read_text().replace("id: variant-early-collapse", "id: index-case")
                 .replace("../index_case.yaml", "base.yml"))
    junit = tmp_path / "junit.xml"
    result = invoke("test", str(a), str(b), "--rules", str(PATHWAY), "--junit", str(junit), "--format", "json")
    report = json.loads(result.stdout)
    (oi,) = [r for r in report["coverage"][0]["rules"] if r["rule_id"] == "step3-ecmo-oi"]
    assert oi["scenarios"] == [f"index-case ({b})"]  # OI 44.4 on day 3; the index case's is 36
    names = sorted(c.get("name") for c in ET.parse(junit).getroot().iter("testcase"))
    assert names == [f"index-case ({a})", f"index-case ({b})"]
    alone = json.loads(invoke("test", str(a), "--rules", str(PATHWAY), "--format", "json").stdout)
    assert [r for r in alone["coverage"][0]["rules"] if r["rule_id"] == "step1-combination"][0]["scenarios"] == [
        "index-case"]  # an id no other file gives is shown alone, as before


def _one_placement(result, rule_id: str, timing: str):
    """The result with the rule's decision point firing under one placement alone."""
    dps = [dp.model_copy(update={"timing": timing}) if dp.rule_id == rule_id else dp for dp in result.decision_points]
    return result.model_copy(update={"decision_points": dps})


@pytest.mark.parametrize("timing, placements, passed", [
    ("early placement only", "both", False),   # the default: it may not happen at all
    ("early placement only", "early", True),
    ("early placement only", "late", False),
    ("early placement only", "any", True),
    ("late placement only", "late", True),
    ("exact", "both", True),
    ("exact", "early", False),
    ("exact", "any", True),
])
def test_an_expectation_says_under_which_placements_the_rule_fires(index_result, timing, placements, passed):
    """Found in a user trial: a decision point seen under the early placement only (an event
    dated as a range) passed `day: 14` as if it fired under both."""
    from escalation.analysis.expectations import check
    from escalation.load.scenario import Expectation

    result = _one_placement(index_result, "step2-plasma-exchange", timing)
    out = check(Expectation.model_validate({"rule": "step2-plasma-exchange", "day": 11, "placements": placements}),
                result)
    assert out.passed is passed
    if timing != "exact":
        assert out.found == [f"step2-plasma-exchange@11 ({timing})"]
    if not passed and placements == "both":
        assert out.message.endswith("it fires under the early placement only, so it may not happen at all "
                                    "(`placements: early` expects that)")
    if not passed and timing == "exact":  # found in review: the other mismatch had no hint
        assert out.message.endswith("; it fires under both placements (`placements: both`, the default, expects that)")


def test_a_file_named_twice_is_tested_once():
    """Found in a trial: `test x.yaml x.yaml` said '2 passed', and a folder with a file in it
    named again counted that file's failure twice; batch already read each file once."""
    report = invoke("test", str(INDEX_CASE), str(INDEX_CASE), "--rules", str(PATHWAY), "--rules", str(PATHWAY),
                    "--format", "json")
    data = json.loads(report.stdout)
    assert [(s["scenario"], s["ruleset"]) for s in data["scenarios"]] == [("index-case", "report-pathway")]
    folder = invoke("test", str(ROOT / "scenarios"), str(ROOT / "scenarios" / "variants" / "pe-responder.yaml"),
                    "--format", "json")
    names = [(s["scenario"], s["ruleset"]) for s in json.loads(folder.stdout)["scenarios"]]
    assert len(names) == len(set(names))


def test_the_diff_table_says_which_placements_each_expectation_asks(index_result):
    """Found in a trial: four expectations of one rule and day under different placements gave
    four identical rows ('present'), two of them marked '!!'."""
    from escalation.analysis.expectations import outcome
    from escalation.load.scenario import Expectation

    result = _one_placement(index_result, "step2-plasma-exchange", "early placement only")
    asked = [Expectation.model_validate({"rule": "step2-plasma-exchange", "day": 11, "placements": p})
             for p in ("both", "early", "late", "any")]
    import re

    rows = [re.match(r"^(!!|  )\s+11\s+step2-plasma-exchange\s+(present|early only|late only|any)\s+11 ", r)
            for r in outcome(result, asked).diff[1:]]
    assert sorted((m.group(1), m.group(2)) for m in rows) == sorted(
        [("!!", "present"), ("  ", "early only"), ("!!", "late only"), ("  ", "any")])
