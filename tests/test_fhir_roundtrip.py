"""Export to FHIR, import again, replay: the same decision points as replaying the YAML.

For the index case and every variant under every shipped rule set, and for generated timelines
(tests/strategies.py). The exported Bundle validates with the same model library, and keeps
uncertain timing and hypothetical events visible to other FHIR readers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT, run
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from strategies import timelines
from typer.testing import CliRunner

from escalation.cli.app import app
from escalation.fhir.codes import RESEARCH_TAG, TAG_SYSTEM, extension
from escalation.fhir.export import to_json
from escalation.fhir.to_scenario import import_paths
from escalation.load.loading import load_ruleset, load_scenario
from escalation.load.scenario import Scenario

SCENARIOS = [INDEX_CASE, *sorted((ROOT / "scenarios" / "variants").glob("*.yaml"))]
RULES = sorted((ROOT / "rules").glob("*.yaml"))


def round_trip(scenario: Scenario, folder: Path) -> Scenario:
    path = folder / f"{scenario.scenario.id}.json"
    path.write_text(to_json(scenario), encoding="utf-8")
    (_, again), = import_paths([path]).scenarios
    return again


def same_points(a: Scenario, b: Scenario, ruleset) -> None:
    assert run(a, ruleset).decision_points == run(b, ruleset).decision_points


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_round_trip_to_the_same_decision_points(path, tmp_path):
    scenario = load_scenario(path)
    again = round_trip(scenario, tmp_path)
    for rules in RULES:
        same_points(scenario, again, load_ruleset(rules))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_the_timeline_itself_survives_the_round_trip(path, tmp_path):
    """Everything but the citations (which now name the FHIR resource) comes back as it was."""
    scenario = load_scenario(path)
    again = round_trip(scenario, tmp_path)
    assert [e.id for e in again.events] == [e.id for e in scenario.events]
    for before, after in zip(scenario.events, again.events):
        keep = {"source", "also", "values", "reported", "oxygen_flow"}
        assert before.model_dump(exclude=keep) == after.model_dump(exclude=keep), before.id
        assert after.source.fhir is not None and before.source in [after.source, *after.also]
        for group in ("values", "reported"):
            mine, theirs = getattr(before, group, {}), getattr(after, group, {})
            assert {m: v.canonical(m) for m, v in mine.items()} == {m: v.canonical(m) for m, v in theirs.items()}
    assert [(d.code, d.day) for d in again.patient.diagnoses] == [(d.code, d.day) for d in scenario.patient.diagnoses]
    assert again.scenario.hypothetical == scenario.scenario.hypothetical


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(timelines())
def test_generated_timelines_round_trip_to_the_same_decision_points(tmp_path, scenario):
    same_points(scenario, round_trip(scenario, tmp_path), load_ruleset(PATHWAY))


def test_the_export_validates_and_marks_uncertain_and_hypothetical_events(tmp_path):
    variant = load_scenario(ROOT / "scenarios" / "variants" / "ranges-only.yaml")
    bundle = json.loads(to_json(variant))
    Bundle.model_validate(bundle)
    resources = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    pe = resources["pe"]  # days 10-12, until on or after 12
    assert pe["performedPeriod"] == {"start": "2000-01-11"}
    (timing,) = [x for x in pe["extension"] if x["url"] == extension("uncertain-timing")]
    assert timing["extension"] == [{"url": "day", "valuePeriod": {"start": "2000-01-11", "end": "2000-01-13"}},
                                   {"url": "until", "valuePeriod": {"start": "2000-01-13"}}]
    assert {"system": TAG_SYSTEM, "code": "hypothetical"} in pe["meta"]["tag"]
    assert "meta" not in resources["transfer"] or not resources["transfer"]["meta"].get("tag")
    assert bundle["meta"]["tag"] == [RESEARCH_TAG, {"system": TAG_SYSTEM, "code": "hypothetical"}]
    transcribed = json.loads(to_json(load_scenario(ROOT / "scenarios" / "index_case.yaml")))
    assert transcribed["meta"]["tag"] == [RESEARCH_TAG]  # every exported Bundle says research review only


def test_export_command_then_import_then_replay(tmp_path):
    runner = CliRunner()
    out = tmp_path / "index.json"
    exported = runner.invoke(app, ["export", "fhir", str(INDEX_CASE), "--out", str(out), "--day-zero", "2021-06-01"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(out.read_text())["entry"][1]["resource"]["period"] == {"start": "2021-06-01"}
    imported = runner.invoke(app, ["import", "fhir", str(out), "--out", str(tmp_path / "imp")])
    assert imported.exit_code == 0, imported.output
    direct = runner.invoke(app, ["replay", str(INDEX_CASE), "--format", "json"])
    again = runner.invoke(app, ["replay", str(tmp_path / "imp" / "index-case.yaml"), "--format", "json"])
    from_bundle = runner.invoke(app, ["replay", str(out), "--format", "json"])
    points = [json.loads(r.stdout)["decision_points"] for r in (direct, again, from_bundle)]
    assert points[0] == points[1] == points[2]
    assert runner.invoke(app, ["export", "fhir", str(INDEX_CASE), "--out", str(tmp_path / "x.json"),
                               "--day-zero", "june"]).exit_code == 2
