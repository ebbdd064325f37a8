"""The public API as a notebook user calls it: `import escalation`, then load, replay, compare, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT, ev, make_scenario, obs
from typer.testing import CliRunner

import escalation
from escalation.cli import app

ROMERO = ROOT / "rules" / "romero-bueno-2020.yaml"


def test_replay_returns_what_the_cli_prints_as_json():
    result = escalation.replay(INDEX_CASE, PATHWAY)
    assert isinstance(result, escalation.ReplayResult)
    cli = CliRunner().invoke(app, ["replay", str(INDEX_CASE), "--rules", str(PATHWAY), "--format", "json"])
    assert cli.exit_code == 0
    assert json.loads(cli.stdout) == result.model_dump(mode="json")


def test_replay_defaults_to_the_shipped_pathway_and_says_research_only():
    result = escalation.replay(str(INDEX_CASE))
    assert result.ruleset.id == "report-pathway"
    assert result.notice == escalation.NOTICE and "RESEARCH REVIEW ONLY" in result.notice
    pe = next(dp for dp in result.decision_points if dp.rule_id == "step2-plasma-exchange")
    assert (pe.day, pe.actual_day, pe.lag_days) == (11, 11, 0)


def test_replay_takes_models_built_in_python():
    scenario, ruleset = escalation.load_scenario(INDEX_CASE), escalation.load_ruleset(PATHWAY)
    in_memory = escalation.replay(scenario, ruleset)
    assert in_memory.scenario.file == "<in memory>"
    assert in_memory.decision_points == escalation.replay(INDEX_CASE, PATHWAY).decision_points


def test_replay_of_a_timeline_written_in_python():
    scenario = make_scenario(obs(2, map=20, fio2=1.0, pao2=45), ev("support", 2, code="invasive_ventilation"))
    result = escalation.replay(scenario)
    severe = [dp for dp in result.decision_points if dp.rule_id == "pards-oi-severe"]
    assert [dp.day for dp in severe] == [2]  # OI 44.4 on day 2, ventilated


def test_overrides_are_marked_as_assumptions_and_bad_ones_are_input_errors():
    result = escalation.replay(INDEX_CASE, overrides={"step3-ecmo-oi.oi_above": 30})
    assert result.ruleset.overrides == {"step3-ecmo-oi.oi_above": 30.0}
    assert "step3-ecmo-oi.oi_above" in result.ruleset.assumptions
    with pytest.raises(escalation.InputError, match="no rule 'nope'"):
        escalation.replay(INDEX_CASE, overrides={"nope.x": 1})
    with pytest.raises(escalation.InputError, match="not a finite number"):
        escalation.replay(INDEX_CASE, overrides={"step3-ecmo-oi.oi_above": float("nan")})


def test_bad_files_raise_input_errors_with_the_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(INDEX_CASE.read_text().replace("fio2: 0.8", "fio2: 1.8", 1))
    with pytest.raises(escalation.InputError) as info:
        escalation.load_scenario(bad)
    assert info.value.file == str(bad) and info.value.line is not None


def test_compare_finds_plasma_exchange_moved_by_fourteen_days():
    diff = escalation.compare(PATHWAY, ROMERO)
    assert isinstance(diff, escalation.RulesetDiff)
    pe = next(c for c in diff.scenarios[0].changes if c.code == "PE")
    assert (pe.status, pe.shift_days) == ("moved", 14)


def test_check_expectations_passes_on_the_shipped_files():
    report = escalation.check_expectations()
    assert isinstance(report, escalation.TestReport)
    assert report.failed == 0 and report.passed >= 9


def test_write_report_writes_the_folder(tmp_path: Path):
    written = escalation.write_report(INDEX_CASE, tmp_path / "rep")
    assert sorted(p.name for p in written) == ["course.png", "course.svg", "replay.json", "report.html", "report.md"]
    assert "RESEARCH REVIEW ONLY" in (tmp_path / "rep" / "report.html").read_text()


def test_every_exported_name_resolves_and_nothing_else_does():
    for name in escalation.__all__:
        assert getattr(escalation, name) is not None
    assert sorted(escalation.__all__) == dir(escalation)
    assert set(escalation.__all__) == {"__version__", *escalation._EXPORTS}
    with pytest.raises(AttributeError):
        escalation.no_such_thing  # noqa: B018


def test_importing_the_package_does_not_start_the_engine():
    code = "import sys, escalation; print('durable' in sys.modules, 'escalation.api' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(("call", "argument", "option", "words"), [
    (lambda: escalation.replay(INDEX_CASE, overrides={"nope.x": 1}), "overrides", "--set", "no rule 'nope'"),
    (lambda: escalation.replay(INDEX_CASE, overrides={"nope": 1}), "overrides", "--set", "not of the form"),
    (lambda: escalation.explain(INDEX_CASE, rule_ids=["zzz"]), "rule_ids", "--rule", "no rule 'zzz'"),
    (lambda: escalation.explain(INDEX_CASE, days=(30, 10)), "days", "--days", "is empty"),
    (lambda: escalation.explain(INDEX_CASE, days="600..700"), "days", "--days", "outside the replay"),
    (lambda: escalation.replay(INDEX_CASE, through_day=10**9), "through_day", "--through-day", "days from day 0"),
    # found in review: arguments of the wrong shape raised ValueError, TypeError, AttributeError or OverflowError
    (lambda: escalation.replay(INDEX_CASE, through_day="5"), "through_day", "--through-day", "not a whole day"),
    (lambda: escalation.explain(INDEX_CASE, days=(1, 2, 3)), "days", "--days", "not a pair"),
    (lambda: escalation.explain(INDEX_CASE, days=5), "days", "--days", "not a pair"),
    (lambda: escalation.explain(INDEX_CASE, rule_ids=5), "rule_ids", "--rule", "not a rule id"),
    (lambda: escalation.explain(INDEX_CASE, rule_ids=b"step2"), "rule_ids", "--rule", "not a rule id"),
    (lambda: escalation.explain(INDEX_CASE, rule_ids=["step2-plasma-exchange", ["x"]]), "rule_ids", "--rule",
     "not a rule id"),
    (lambda: escalation.replay(INDEX_CASE, overrides="step3-ecmo-oi.oi_above=30"), "overrides", "--set",
     "not a mapping"),
    (lambda: escalation.replay(INDEX_CASE, overrides={5: 1}), "overrides", "--set", "not of the form"),
    (lambda: escalation.replay(INDEX_CASE, overrides={"step3-ecmo-oi.oi_above": 10**400}), "overrides", "--set",
     "not a finite number"),
    (lambda: escalation.write_report(INDEX_CASE, "never-written", rules=[PATHWAY] * 3), "rules", "--rules",
     "at most 2"),
])
def test_a_bad_argument_is_named_as_the_api_takes_it_and_as_the_command_line_does(call, argument, option, words):
    """The API's errors named the command line's options ('--days: 30..10 is empty') to a
    Python caller, who passed `days`. Each names the argument, and the command line its option."""
    with pytest.raises(escalation.InputError) as info:
        call()
    assert info.value.file == argument and str(info.value).startswith(f"{argument}: ") and "--" not in str(info.value)
    assert words in str(info.value)
    assert info.value.on_command_line() == f"{option}: {info.value.message}"


def test_an_overridden_parameter_notes_a_what_if_without_naming_an_option():
    ruleset = escalation.load_ruleset(PATHWAY, {"step3-ecmo-oi.oi_above": 30})
    param = next(r for r in ruleset.rules if r.id == "step3-ecmo-oi").parameters["oi_above"]
    assert param.note.startswith("overridden (a what-if) from 40") and "--" not in param.note


def test_one_rule_id_given_as_a_string_is_that_rule_not_its_letters():
    """rule_ids="step2-plasma-exchange" was read letter by letter: 'no rule 's''."""
    one = escalation.explain(INDEX_CASE, rule_ids="step2-plasma-exchange")
    assert [r.rule_id for r in one.rules] == ["step2-plasma-exchange"]


def test_a_parameter_set_without_its_rule_names_the_rules_that_have_it():
    """Found in a trial: `--set oi_above=30` said only that it was not of the form RULE.PARAM."""
    from typer.testing import CliRunner

    from escalation.cli.app import app

    with pytest.raises(escalation.InputError) as info:
        escalation.replay(INDEX_CASE, overrides={"oi_above": 30})
    assert info.value.message == "'oi_above' is not of the form RULE.PARAM: did you mean step3-ecmo-oi.oi_above?"
    with pytest.raises(escalation.InputError) as info:
        escalation.replay(INDEX_CASE, overrides={"nothing_has_this": 30})
    assert info.value.message == "'nothing_has_this' is not of the form RULE.PARAM"
    result = CliRunner().invoke(app, ["replay", str(INDEX_CASE), "--set", "oi_above=30"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: --set: 'oi_above' is not of the form RULE.PARAM: did you mean "
                                     "step3-ecmo-oi.oi_above?")
