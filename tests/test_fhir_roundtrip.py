"""Export to FHIR, import again, replay: the same scenario and the same replay result as the YAML.

For the index case and every variant under every shipped rule set, and for generated timelines
(tests/strategies.py, with reported intervals and expectations added). What legitimately differs
is listed once, in `as_imported`: the citations (an imported fact cites the FHIR resource it was
read from; the original citations of an event come back as its `also`), a reading's unit (written
out when the scenario left the measure's own unit implicit), and the age, to two decimals (a
birth date holds whole days). Everything else, title, day-0 wording, description, notes, reported
intervals and expectations included, comes back equal; so does the whole replay result (decision
points, findings, checks, doses, unflagged actions, why-not) but for the words of findings that
quote a citation or a unit. The exported Bundle validates with the same model library, and keeps
uncertain timing and hypothetical events visible to other FHIR readers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT, run
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import timelines
from typer.testing import CliRunner

from escalation.cli.app import app
from escalation.fhir.codes import RESEARCH_TAG, TAG_SYSTEM, extension
from escalation.fhir.export import to_json
from escalation.fhir.to_scenario import import_paths
from escalation.load.loading import load_ruleset, load_scenario
from escalation.load.scenario import Scenario
from escalation.load.vocabulary import MEASURES

SCENARIOS = [INDEX_CASE, *sorted((ROOT / "scenarios" / "variants").glob("*.yaml"))]
RULES = sorted((ROOT / "rules").glob("*.yaml"))
READINGS = ("values", "reported")


def round_trip(scenario: Scenario, folder: Path) -> Scenario:
    path = folder / f"{scenario.scenario.id}.json"
    path.write_text(to_json(scenario), encoding="utf-8")
    (_, again), = import_paths([path]).scenarios
    return again


def as_imported(before: Scenario, after: Scenario) -> dict[str, Any]:
    """`before` as data, with the differences a round trip is allowed to make taken from `after`,
    each checked first: what remains must equal `after` exactly."""
    a, b = before.model_dump(), after.model_dump()
    assert after.scenario.source.fhir == f"Patient/patient-{before.scenario.id}" == after.patient.source.fhir
    a["scenario"]["source"] = b["scenario"]["source"]
    assert abs(b["patient"]["age_years"] - a["patient"]["age_years"]) < 0.005
    a["patient"]["age_years"], a["patient"]["source"] = b["patient"]["age_years"], b["patient"]["source"]
    for group in ("diagnoses", "autoantibodies"):
        assert len(a["patient"][group]) == len(b["patient"][group])
        for x, y in zip(a["patient"][group], b["patient"][group]):
            assert y["source"]["fhir"].startswith(("Condition/", "Observation/"))
            x["source"] = y["source"]
    assert [e["id"] for e in a["events"]] == [e["id"] for e in b["events"]]
    for x, y, model in zip(a["events"], b["events"], after.events):
        assert model.source.fhir is not None
        assert y["also"] == [x["source"], *x["also"]], x["id"]
        x["source"], x["also"] = y["source"], y["also"]
        for group in READINGS:
            if group not in x:
                continue
            was, now = getattr(before.event(x["id"]), group), getattr(model, group)
            assert {m: v.canonical(m) for m, v in was.items()} == {m: v.canonical(m) for m, v in now.items()}
            assert all(now[m].unit == (v.unit or MEASURES[m].unit) for m, v in was.items()), x["id"]
            x[group] = y[group]
    return a


def same_result(before: Scenario, after: Scenario, ruleset) -> None:
    """The whole replay result, but for the text of findings that quote citations or units."""
    mine, theirs = run(before, ruleset).model_dump(), run(after, ruleset).model_dump()
    for result in (mine, theirs):
        for group in ("findings", "checks"):
            for finding in result[group]:
                finding.pop("message")
    assert mine == theirs


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_round_trip_to_the_same_replay_result(path, tmp_path):
    scenario = load_scenario(path)
    again = round_trip(scenario, tmp_path)
    for rules in RULES:
        same_result(scenario, again, load_ruleset(rules))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_the_scenario_itself_survives_the_round_trip(path, tmp_path):
    """Every field comes back as it was, but for the differences `as_imported` lists and checks."""
    scenario = load_scenario(path)
    again = round_trip(scenario, tmp_path)
    assert as_imported(scenario, again) == again.model_dump()
    assert again.scenario.title == scenario.scenario.title
    assert again.reported_intervals == scenario.reported_intervals
    assert again.expected == scenario.expected


@st.composite
def with_scenario_fields(draw, timelines=timelines()):
    """A generated timeline with a description, a note, reported intervals and an expectation."""
    scenario = draw(timelines)
    ids = [e.id for e in scenario.events]
    intervals = draw(st.lists(st.fixed_dictionaries({
        "start": st.sampled_from(ids), "end": st.sampled_from(ids), "end_point": st.sampled_from(["start", "until"]),
        "days": st.integers(-30, 60), "source": st.just({"section": "Table 1", "detail": "an interval"})}), max_size=3))
    data = scenario.model_dump(mode="json", exclude_none=True)
    data["scenario"]["description"] = draw(st.text(min_size=1, max_size=20))
    data["patient"]["note"] = "a note on the patient"
    data["reported_intervals"] = intervals
    data["expected"] = {"report-pathway": [{"rule": "step1-combination", "day": {"between": [0, 5]}},
                                           {"step": 3, "present": False}, {"unflagged": []}]}
    return Scenario.model_validate(data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(with_scenario_fields())
def test_generated_timelines_round_trip_to_the_same_scenario_and_replay_result(tmp_path, scenario):
    again = round_trip(scenario, tmp_path)
    assert as_imported(scenario, again) == again.model_dump()
    same_result(scenario, again, load_ruleset(PATHWAY))


def test_the_export_validates_and_marks_uncertain_and_hypothetical_events(tmp_path):
    variant = load_scenario(ROOT / "scenarios" / "variants" / "ranges-only.yaml")
    bundle = json.loads(to_json(variant))
    Bundle.model_validate(bundle)
    resources = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    assert all(i.startswith(("variant-ranges-only.", "patient-variant-ranges-only")) for i in resources)
    resources = {i.removeprefix("variant-ranges-only."): r for i, r in resources.items()}
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


def test_an_exported_diagnosis_says_it_is_confirmed_so_the_import_notes_nothing(tmp_path):
    """A Condition without verificationStatus is imported with a note (FHIR gives its absence no
    meaning); the export says `confirmed`, so a round trip adds no note to every diagnosis."""
    bundle = json.loads(to_json(load_scenario(ROOT / "scenarios" / "index_case.yaml")))
    conditions = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"]
    assert conditions and all(c["verificationStatus"]["coding"][0]["code"] == "confirmed" for c in conditions)
    path = tmp_path / "index.json"
    path.write_text(json.dumps(bundle))
    summary = import_paths([path]).summary
    assert not [n for n in summary.noted if "verificationStatus" in n.note]
    assert len(import_paths([path]).scenarios[0][1].patient.diagnoses) == len(conditions)


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
    results = [json.loads(r.stdout) for r in (direct, again, from_bundle)]
    assert results[0]["decision_points"] == results[1]["decision_points"] == results[2]["decision_points"]
    assert results[0]["scenario"]["title"] == results[1]["scenario"]["title"] == results[2]["scenario"]["title"]
    checks = [[(c["kind"], c["events"], c["agrees"]) for c in r["checks"]] for r in results]
    assert checks[0] == checks[1] == checks[2] and ("reported_interval", ["rtx-1", "ecmo"], True) in checks[0]
    assert runner.invoke(app, ["export", "fhir", str(INDEX_CASE), "--out", str(tmp_path / "x.json"),
                               "--day-zero", "june"]).exit_code == 2


def test_a_round_trip_keeps_the_findings_and_the_expectations_of_a_variant(tmp_path):
    """The user trial: early-rituximab exported, imported and replayed lost its reported interval
    (so the finding that 24 days no longer fit) and its expectations (so `test` said UNCHECKED)."""
    runner = CliRunner()
    variant, out = ROOT / "scenarios" / "variants" / "early-rituximab.yaml", tmp_path / "e.json"
    assert runner.invoke(app, ["export", "fhir", str(variant), "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["import", "fhir", str(out), "--out", str(tmp_path / "d")]).exit_code == 0
    imported = tmp_path / "d" / "variant-early-rituximab.yaml"
    text = imported.read_text()
    assert "# Imported by `escalation import fhir` from Patient/patient-variant-early-rituximab (" in text
    assert "\n# Day 0: start of Encounter/variant-early-rituximab.day-zero (2000-01-01, days counted in UTC): the encounter the export " \
           "tagged day-zero\n" in text and "\n  day_zero: admission to the treating hospital\n" in text
    exported_again = tmp_path / "again.json"  # a second round trip changes nothing more
    assert runner.invoke(app, ["export", "fhir", str(imported), "--out", str(exported_again)]).exit_code == 0
    (_, twice), = import_paths([exported_again]).scenarios
    assert (twice.scenario.title, twice.scenario.day_zero) == (load_scenario(variant).scenario.title,
                                                              "admission to the treating hospital")
    assert twice.reported_intervals == load_scenario(variant).reported_intervals
    replayed = runner.invoke(app, ["replay", str(imported)])
    assert "[reported_interval] rtx-1 to ecmo (until): reported 24 days, timeline gives 38" in replayed.stdout
    for scenario in (imported, out):
        tested = runner.invoke(app, ["test", str(scenario)])
        assert tested.exit_code == 0, tested.output
        assert "3 passed, 0 failed, 0 without expectations" in tested.stdout


def test_export_takes_a_bundle_of_one_patient_as_its_help_says(tmp_path):
    runner = CliRunner()
    helped = runner.invoke(app, ["export", "fhir", "--help"], terminal_width=200)
    assert "or a FHIR R4 Bundle JSON file of one patient" in " ".join(helped.stdout.split())
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    assert runner.invoke(app, ["export", "fhir", str(INDEX_CASE), "--out", str(first)]).exit_code == 0
    again = runner.invoke(app, ["export", "fhir", str(first), "--out", str(second), "--day-zero", "2021-06-01"])
    assert again.exit_code == 0, again.output
    Bundle.model_validate(json.loads(second.read_text()))
    (_, once), = import_paths([first]).scenarios
    (_, twice), = import_paths([second]).scenarios
    assert [(e.id, e.day) for e in twice.events] == [(e.id, e.day) for e in once.events]
    assert twice.reported_intervals == once.reported_intervals and twice.expected == once.expected


def test_the_exports_of_two_scenarios_can_be_imported_together(tmp_path):
    """Found in a user trial: every export used the same ids (Encounter/day-zero, Condition/
    diagnosis-JDM), so two exports named together, or pooled into one Bulk Data folder, were
    refused as one resource given twice with other content."""
    runner = CliRunner()
    files = []
    for name in ("index_case.yaml", "variants/pe-responder.yaml"):
        out = tmp_path / f"{Path(name).stem}.json"
        assert runner.invoke(app, ["export", "fhir", str(ROOT / "scenarios" / name), "--out", str(out)]).exit_code == 0
        files.append(out)
    result = runner.invoke(app, ["import", "fhir", *map(str, files), "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "d").glob("*.yaml")) == ["index-case.yaml", "variant-pe-responder.yaml"]


def test_export_ids_of_two_scenarios_never_meet_and_fit_fhir():
    """Found in review: `index_case` and `index-case` gave one prefix (an underscore is no FHIR id
    character), a prefix was no boundary (`p` + `1-x` met `p-1` + `x`), and a suffix could make an
    id 65 characters long."""
    from escalation.fhir.export import to_bundle

    base = load_scenario(INDEX_CASE)
    def ids(sid: str, event_id: str | None = None):
        sc = base.model_copy(update={"scenario": base.scenario.model_copy(update={"id": sid})})
        if event_id is not None:
            sc = sc.model_copy(update={"events": [e.model_copy(update={"id": f"{event_id}-{i}" if i else event_id})
                                                  for i, e in enumerate(sc.events)]})
        return {(e["resource"]["resourceType"], e["resource"]["id"]) for e in to_bundle(sc)["entry"]}

    assert not ids("index_case") & ids("index-case")
    assert not ids("p", "1-x") & ids("p-1", "x")
    long = ids("p", "x" * 80)
    assert max(len(i) for _, i in long) <= 64 and len(long) == len(ids("p"))  # every id still distinct
