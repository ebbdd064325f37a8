"""Guards found in review: overrides, windows, units, wording, day bounds, output paths."""

from __future__ import annotations

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT
from typer.testing import CliRunner

from escalation.cli.app import app
from escalation.load.errors import InputError
from escalation.load.loading import load_ruleset, load_scenario

runner = CliRunner()


def _rules_with(tmp_path, old: str, new: str):
    text = PATHWAY.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "rules.yaml"
    path.write_text(text.replace(old, new))
    return path


def test_an_override_is_shown_as_an_assumption(pathway):
    moved = pathway.with_overrides({("barotrauma-watch", "pip_limit"): 25})
    param = moved.rule("barotrauma-watch").parameters["pip_limit"]
    assert param.assumption and "from 30 (sourced) to 25" in param.note
    assert "pip_limit" in moved.rule("barotrauma-watch").assumptions
    assert not pathway.rule("barotrauma-watch").parameters["pip_limit"].assumption


@pytest.mark.parametrize("value", ["2.5", "-1"])
def test_a_window_must_be_whole_days(value):
    result = runner.invoke(app, ["replay", str(INDEX_CASE), "--set", f"step2-plasma-exchange.trend_window_days={value}"])
    assert result.exit_code == 2 and "whole number" in result.stderr


@pytest.mark.parametrize("old, new, message", [
    ("        threshold: pip_limit\n", "        threshold: any\n", "'any' is only a look-back"),
    ("      pip_limit:\n        value: 30\n        unit: cmH2O\n",
     "      pip_limit:\n        value: 30\n        unit: mmHg\n", "compared in 'cmH2O'"),
    ('    title: "Step 2 for review: plasma exchange (PE)"\n',
     '    title: "Step 2: plasma exchange must be started"\n', "must not read as an order"),
    ('    title: "Step 2 for review: plasma exchange (PE)"\n',
     '    title: "Step 2: plasma exchange"\n', "for review"),
])
def test_rule_files_refused(tmp_path, old, new, message):
    with pytest.raises(InputError, match=message):
        load_ruleset(_rules_with(tmp_path, old, new))


def test_a_calendar_date_is_not_a_day(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(INDEX_CASE.read_text().replace("  - id: transfer\n    kind: milestone\n    code: transfer\n    day: 0\n",
                                                   "  - id: transfer\n    kind: milestone\n    code: transfer\n    day: 20220804\n"))
    with pytest.raises(InputError, match="not calendar dates"):
        load_scenario(path)


def test_a_rule_set_is_not_a_scenario():
    with pytest.raises(InputError, match="this is a rule set, not a scenario"):
        load_scenario(PATHWAY)


def test_output_paths_are_checked_first(tmp_path):
    result = runner.invoke(app, ["replay", str(INDEX_CASE), "--output", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder" in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["sweep", "--set", "step3-ecmo-oi.oi_above=30:32:1", str(INDEX_CASE),
                                 "--out", str(blocker)])
    assert result.exit_code == 2 and "is a file" in result.stderr


def test_an_empty_folder_is_not_a_passing_test_run(tmp_path):
    result = runner.invoke(app, ["test", str(tmp_path)])
    assert result.exit_code == 2 and "no scenario files found" in result.stderr
    assert "FHIR Bundle *.json files" in result.stderr  # `test` takes Bundles too, and says so


def test_bounded_spo2_gives_a_bounded_osi(pathway):
    from conftest import run
    result = run(load_scenario(ROOT / "scenarios" / "variants" / "spo2-only.yaml"), pathway)
    [dp] = [d for d in result.decision_points if d.rule_id == "pards-osi-severe"]
    assert dp.day == 24 and dp.conditions[1].values == {"osi__w0__gt": 20}
