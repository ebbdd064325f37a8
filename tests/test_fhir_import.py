"""FHIR R4 import: Bulk Data folders, Synthea-shaped Bundles, HL7 examples, and bad input.

The fixtures under tests/fixtures/fhir/ are small and written for these tests: a Bulk Data
folder of four unrelated synthetic patients (none with JDM, one an adult), a transaction Bundle
in the shapes Synthea writes, and HL7's R4B examples rebuilt from the values the fhir.resources
7.1.0 wheel asserts for them (fields it does not assert are left out; the Patient is ours, a
child, so that a scenario can be written).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import PATHWAY, ROOT
from typer.testing import CliRunner

from escalation.api import replay
from escalation.cli.app import app
from escalation.fhir.codes import table
from escalation.fhir.reader import bundle_files
from escalation.fhir.to_scenario import Options, import_paths
from escalation.load.errors import InputError
from escalation.load.loading import load_scenario
from escalation.load.vocabulary import CODES, DOSE_UNITS, MEASURES

FIXTURES = ROOT / "tests" / "fixtures" / "fhir"
BULK, SYNTHEA, HL7 = FIXTURES / "bulk", FIXTURES / "synthea_like.json", FIXTURES / "hl7_examples.json"


def events_by_source(scenario) -> dict[str, object]:
    """Each event under every resource it cites: Observations charted at one instant are one event."""
    return {c.fhir: e for e in scenario.events for c in (e.source, *e.also) if c.fhir}


# --- Bulk Data: unrelated patients ---------------------------------------------------------------


def test_bulk_folder_of_unrelated_patients_imports_without_error_and_gives_no_decision_points(tmp_path):
    result = CliRunner().invoke(app, ["import", "fhir", str(BULK), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["fhir-p-appendicitis.yaml", "fhir-p-asthma.yaml", "fhir-p-bronchiolitis.yaml",
                       "import-summary.json"]
    for name in written[:-1]:
        assert replay(tmp_path / "out" / name, PATHWAY).decision_points == []
    shown = " ".join(result.stdout.split())
    assert ("Unmapped codes (11, counted by code, not imported; 10 records left out with no code or value that "
            "maps):") in shown  # the blood-pressure panel has two unmapped codes: one record
    assert "2 x Observation http://loinc.org|8867-4 'Heart rate'" in result.stdout
    assert "Patient/p-adult: no scenario: aged 57.17 at day 0" in result.stdout
    assert "Not read (types the import does not use): Immunization 1" in result.stdout


def test_the_summary_counts_every_record_not_imported():
    summary = import_paths([BULK]).summary
    assert summary.unmapped_records == {"Condition": 3, "DeviceUseStatement": 1, "MedicationRequest": 1,
                                        "Observation": 4, "Procedure": 1}
    unmapped = {(u.resource_type, u.system, u.code): u.count for u in summary.unmapped}
    assert unmapped[("Observation", "http://loinc.org", "8867-4")] == 2
    assert unmapped[("Procedure", "http://snomed.info/sct", "80146002")] == 1
    skipped = {(s.resource_type, s.reason): s.count for s in summary.skipped}
    assert skipped[("Observation", "status entered-in-error")] == 1
    assert any(t == "Encounter" and "patient has no scenario" in r for t, r in skipped)
    assert summary.not_read == {"Immunization": 1}


def test_strict_makes_an_unmapped_code_an_error(tmp_path):
    result = CliRunner().invoke(app, ["import", "fhir", str(BULK), "--strict", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr == (f"error: {BULK}/Condition.000.ndjson:1 (Condition/c-asthma): unmapped code "
                             "http://snomed.info/sct|195967001 (--strict)\n")
    assert not (tmp_path / "o").exists()


def test_timestamps_are_days_in_the_offset_of_day_zero_and_partial_dates_are_ranges():
    bronch = next(sc for data, sc in import_paths([BULK]).scenarios if sc.scenario.id == "fhir-p-bronchiolitis")
    ev = events_by_source(bronch)
    assert ev["Observation/o-b-spo2"].day.exact and ev["Observation/o-b-spo2"].day.earliest == 1
    weight = ev["Observation/o-b-weight"].day  # "2022-01": any day of January, not the 1st
    assert (weight.earliest, weight.latest) == (-9, 21)
    appendicitis = next(sc for _, sc in import_paths([BULK]).scenarios if sc.scenario.id == "fhir-p-appendicitis")
    assert "birth date given as 2009-08" in appendicitis.patient.note


# --- Synthea shapes --------------------------------------------------------------------------------


def test_synthea_shapes_urn_uuid_and_patient_references_contained_medication_and_zones():
    (_, sc), = import_paths([SYNTHEA]).scenarios
    ev = events_by_source(sc)
    assert ev["Observation/obs-spo2"].day.earliest == 5  # 23:30 UTC on day 4 is day 5 at UTC+09:00
    assert ev["Observation/obs-fio2"].values["fio2"].canonical("fio2").value == 0.6
    assert ev["Observation/obs-pao2"].values["pao2"].unit == "kPa"
    assert ev["Observation/obs-ck"].values["ck"].reference.low == 43
    cya = ev["MedicationAdministration/ma-cya"]
    assert (cya.code, cya.route, cya.dose.unit, cya.day.earliest, cya.until.latest) == ("CyA", "iv", "mg/kg/day", 1, 19)
    rtx = ev["MedicationStatement/ms-rtx"]  # effectiveDateTime "2021-03": a range, not March 1st
    assert (rtx.code, rtx.day.earliest, rtx.day.latest) == ("RTX", 0, 30)
    ivcy = ev["MedicationRequest/mr-ivcy"]
    assert (ivcy.code, ivcy.day.earliest, ivcy.dose.unit) == ("IVCY", 2, "mg/m2") and "an order" in ivcy.note
    assert ev["Procedure/proc-vv"].code == "VV-ECMO" and ev["Procedure/proc-vv"].until is None
    assert ev["Procedure/proc-ecmo"].code == "ECMO"  # the mode not stated: never read as VV-ECMO
    assert "Medication" not in {k.split("/")[0] for k in ev}


def test_synthea_unmapped_codes_carry_the_tables_reason():
    reasons = {(u.code or u.display): u.why for u in import_paths([SYNTHEA]).summary.unmapped}
    assert reasons["3002"] == "maps to IVCY only with route iv"
    assert reasons["ventilator"] == "no coding, only text"


def test_imported_files_load_back_as_the_same_scenario(tmp_path):
    result = CliRunner().invoke(app, ["import", "fhir", str(SYNTHEA), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (path,) = tmp_path.glob("*.yaml")
    (_, sc), = import_paths([SYNTHEA]).scenarios
    assert load_scenario(path) == sc
    assert path.read_text().startswith("# RESEARCH REVIEW ONLY")
    summary = json.loads((tmp_path / "import-summary.json").read_text())
    assert summary["not_read"] == {"Claim": 1}


# --- HL7 examples ----------------------------------------------------------------------------------


def test_hl7_examples_need_a_day_zero_when_no_encounter_has_a_start():
    summary = import_paths([HL7]).summary
    assert summary.patients[0].skipped == ("no encounter whose start can be day 0, and no day 0 given (`import fhir --day-zero` gives one); "
                                           "inpatient Encounter/example passed over: it has no start (period.start)")
    imported = import_paths([HL7], Options(day_zero="1999-07-01"))
    (_, sc), = imported.scenarios
    (rr,) = sc.events
    assert (rr.values["resp_rate"].value, rr.values["resp_rate"].unit, rr.day.earliest) == (26, "/min", 1)
    unmapped = {u.code: u.why for u in imported.summary.unmapped}
    assert "not the mean airway pressure" in unmapped["8478-0"]  # mean blood pressure is not MAP
    assert unmapped[None] == "no code"  # the contained Medication of medadmin0301 has none


def test_day_zero_encounter_option_and_the_rule_set_diagnoses(tmp_path):
    options = Options(day_zero_encounters=("e-asthma-2",))
    asthma = next(sc for _, sc in import_paths([BULK], options).scenarios if sc.scenario.id == "fhir-p-asthma")
    assert asthma.scenario.day_zero.startswith("start of Encounter/e-asthma-2 (2019-11-20")
    assert events_by_source(asthma)["Observation/o-a-spo2"].day.earliest == 0


@pytest.mark.parametrize("given", ["e-ild", "Encounter/e-ild"])
def test_day_zero_encounter_is_an_id_or_type_and_id(tmp_path, given):
    """Encounter/ID is how the import's own messages and rules name an encounter."""
    result = CliRunner().invoke(app, ["import", "fhir", str(_two_stays(tmp_path)), "--day-zero-encounter", given,
                                      "--format", "json", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (patient,) = json.loads(result.stdout)["patients"]
    assert patient["day_zero_rule"] == ("start of Encounter/e-ild (2021-02-01, days counted in UTC): "
                                        "--day-zero-encounter")


@pytest.mark.parametrize("given,message", [
    ("nosuch", "'nosuch' names no Encounter of the input (give an Encounter's id: ID or Encounter/ID)"),
    ("Patient/p1", "'Patient/p1' names no Encounter of the input (give an Encounter's id: ID or Encounter/ID)"),
    ("E-ILD", "'E-ILD' names no Encounter of the input (ids are case-sensitive; Encounter/e-ild is in it)"),
    ("e-cancelled", "Encounter/e-cancelled cannot set day 0: its status is cancelled"),
    ("Encounter/e-month", "Encounter/e-month cannot set day 0: its start 2021-01 is not a full date"),
    ("e-open", "Encounter/e-open cannot set day 0: it has no start (period.start)"),
])
def test_day_zero_encounter_that_cannot_set_day_zero_is_an_error_not_another_day_zero(tmp_path, given, message):
    """Day 0 would otherwise fall to the next rule without a word, and every day would shift."""
    path = _bundle(tmp_path, PATIENT, _stay("e-jdm", "2021-01-01", "JDM"), _stay("e-ild", "2021-02-01", "RP-ILD"),
                   {**ENCOUNTER, "id": "e-cancelled", "status": "cancelled"},
                   {**ENCOUNTER, "id": "e-month", "period": {"start": "2021-01"}},
                   {**ENCOUNTER, "id": "e-open", "period": {"end": "2021-01-09"}},
                   _obs(valueQuantity={"value": 90, "code": "%"}))
    result = _run(tmp_path, str(path), "--day-zero-encounter", "e-ild", "--day-zero-encounter", given)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: --day-zero-encounter: {message}\n"
    assert not (tmp_path / "out").exists()


def test_day_zero_encounter_twice_for_a_patient_or_beside_day_zero_is_an_error(tmp_path):
    """Either way one of the two was set aside without a word: the earlier encounter won, or
    --day-zero won for every patient."""
    path = _bundle(tmp_path, PATIENT, _stay("e-jdm", "2021-01-01", "JDM"), _stay("e-ild", "2021-02-01", "RP-ILD"),
                   _obs(valueQuantity={"value": 90, "code": "%"}))
    twice = _run(tmp_path, str(path), "--day-zero-encounter", "e-ild", "--day-zero-encounter", "Encounter/e-jdm")
    assert twice.exit_code == 2, twice.output
    assert twice.stderr.startswith("error: --day-zero-encounter: Encounter/")
    assert "are encounters of the same patient, Patient/p1: name one per patient" in twice.stderr
    with pytest.raises(ValueError, match="not both"):  # the API refuses the pair too
        Options(day_zero="2021-01-15", day_zero_encounters=("e-ild",))
    both = _run(tmp_path, str(path), "--day-zero-encounter", "e-ild", "--day-zero", "2021-01-15")
    assert both.exit_code == 2 and both.stderr == "error: --day-zero: give --day-zero or --day-zero-encounter, not both\n"
    assert not (tmp_path / "out").exists()


def test_an_exported_scenario_marks_its_day_zero_encounter(tmp_path):
    from escalation.fhir.export import to_json

    sc = load_scenario(ROOT / "scenarios" / "index_case.yaml")
    bundle = json.loads(to_json(sc))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Encounter":
            entry["resource"]["meta"] = {}
            entry["resource"]["reasonCode"] = [{"coding": [{"system": "https://escalation.invalid/fhir/CodeSystem/diagnosis",
                                                            "code": "JDM"}]}]
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    (_, again), = import_paths([path]).scenarios
    assert "with a diagnosis of the rule set (JDM, RP-ILD)" in again.scenario.day_zero


def _stay(rid: str, start: str, dx: str) -> dict:
    return {**ENCOUNTER, "id": rid, "period": {"start": start}, "reasonCode": [{"coding": [
        {"system": "https://escalation.invalid/fhir/CodeSystem/diagnosis", "code": dx}]}]}


def _two_stays(tmp_path: Path) -> Path:
    """Two inpatient stays, the first for JDM alone, the second for RP-ILD; a reading on 2021-02-03:
    day 2 of the second stay, day 33 of the first."""
    return _bundle(tmp_path, PATIENT, _stay("e-jdm", "2021-01-01", "JDM"), _stay("e-ild", "2021-02-01", "RP-ILD"),
                   _obs(effectiveDateTime="2021-02-03", valueQuantity={"value": 90, "code": "%"}))


ROMERO, REPORT = ROOT / "rules" / "romero-bueno-2020.yaml", ROOT / "rules" / "report-pathway.yaml"


def test_a_bundle_gets_the_day_zero_of_the_rule_set_it_is_replayed_under(tmp_path):
    """The Romero-Bueno set tests RP-ILD only, so its day 0 is the second stay, from `replay` and
    from `import fhir` alike."""
    from escalation import api
    from escalation.fhir.to_scenario import DEFAULT_DIAGNOSES, rule_diagnoses

    path = _two_stays(tmp_path)
    romero = api.load_ruleset(ROMERO)
    (_, imported), = import_paths([path], Options(diagnoses=rule_diagnoses([romero]))).scenarios
    for sc in (api.load_scenario(path, [romero]), imported):
        assert sc.scenario.day_zero.startswith("start of Encounter/e-ild")
        assert sc.events[0].day.earliest == 2
    assert api.load_scenario(path).scenario.day_zero.startswith("start of Encounter/e-jdm")
    assert api.replay(path, romero).model_dump()["decision_points"] == api.replay(imported, romero).model_dump()[
        "decision_points"]
    assert DEFAULT_DIAGNOSES == rule_diagnoses([api.load_ruleset()])  # no rules given: the shipped pathway's


def test_a_batch_gives_a_bundle_one_day_zero_under_all_its_rule_sets(tmp_path):
    """As a batch imports a Bulk Data folder: by the diagnoses of every rule set, so that days
    compare across rule sets; a batch of the Romero-Bueno set alone gets its own day 0."""
    from escalation.batch import work
    from escalation.batch.plan import job
    from escalation.batch.run import plan

    path = _two_stays(tmp_path)
    for rules, codes, day in (([ROMERO], ["RP-ILD"], 2), ([REPORT, ROMERO], ["JDM", "RP-ILD"], 33)):
        manifest = plan([path], rules, [])
        assert manifest.day_zero_diagnoses() == codes
        for number in range(manifest.chunking.jobs):
            planned = job(manifest, number)
            assert work._scenario(planned.scenario, manifest.day_zero_diagnoses()).events[0].day.earliest == day


# --- dates and timestamps together ----------------------------------------------------------------


def _inpatient(rid: str, start: str) -> dict:
    return {**ENCOUNTER, "id": rid, "period": {"start": start}}


@pytest.mark.parametrize("a_start,b_start,first,days", [
    ("2020-03-01T23:30:00+09:00", "2020-02-01", "e-b", (29, 0)),  # the trial's Bundle
    ("2020-03-01T08:00:00+09:00", "2020-03-01", "e-a", (0, 0)),  # 2020-02-29T23:00Z: before 00:00 UTC of the date
    ("2020-03-01T20:00:00-05:00", "2020-03-01", "e-b", (1, 0)),  # 2020-03-02T01:00Z: after it
])
@pytest.mark.parametrize("reverse", [False, True])
def test_encounter_starts_given_as_a_date_and_as_a_timestamp_are_put_in_order(tmp_path, a_start, b_start, first,
                                                                                 days, reverse):
    """A plain date counts from 00:00 UTC of its date (dates.start_order): the first start is day 0,
    and no other start falls before it; the order of the entries does not matter."""
    stays = [_inpatient("e-a", a_start), _inpatient("e-b", b_start)]
    readings = [_obs(id=f"o-{k}", effectiveDateTime=at, valueQuantity={"value": 90, "code": "%"})
                for k, at in (("a", a_start), ("b", b_start))]
    path = _bundle(tmp_path, PATIENT, *(stays[::-1] if reverse else stays), *readings)
    (_, sc), = import_paths([path]).scenarios
    assert sc.scenario.day_zero.startswith(f"start of Encounter/{first} ")
    ev = events_by_source(sc)
    assert (ev["Observation/o-a"].day.earliest, ev["Observation/o-b"].day.earliest) == days
    for args in (["import", "fhir", str(path), "--out", str(tmp_path / "out")], ["check", str(path)],
                 ["replay", str(path)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (args, result.output)


def test_the_dates_of_one_record_may_mix_dates_and_timestamps(tmp_path):
    """Each end is placed on its own: a timestamp in the offset of day 0 (UTC for a plain date)."""
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                 "code": {"coding": [{"system": "https://escalation.invalid/fhir/CodeSystem/diagnosis", "code": "JDM"}]},
                 "onsetDateTime": "2021-01-01T23:30:00+09:00", "recordedDate": "2021-01-03"}
    given = _administered("m-psl", "8638")
    given["effectivePeriod"] = {"start": "2021-01-02", "end": "2021-01-05T08:00:00+09:00"}
    seen = _obs(effectivePeriod={"start": "2021-01-01T20:00:00-05:00", "end": "2021-01-03"},
                valueQuantity={"value": 90, "code": "%"})
    del given["effectiveDateTime"], seen["effectiveDateTime"]
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, condition, given, seen)
    (_, sc), = import_paths([path]).scenarios
    (dx,) = sc.patient.diagnoses
    assert (dx.day.earliest, dx.day.latest) == (0, 2)
    ev = events_by_source(sc)
    psl = ev["MedicationAdministration/m-psl"]
    assert (psl.day.earliest, psl.until.latest) == (1, 3)  # 2021-01-04T23:00Z
    spo2 = ev["Observation/o1"].day
    assert (spo2.earliest, spo2.latest) == (1, 2)  # 2021-01-02T01:00Z to 2021-01-03


# --- the code table --------------------------------------------------------------------------------


def test_every_mapping_names_where_it_was_checked_and_a_known_target():
    t = table()
    for row in [*t.measures, *t.codes, *t.routes, *t.inpatient_classes, *t.left_out]:
        assert row.checked and row.seen_as, row
    assert {m.measure for m in t.measures} <= set(MEASURES)
    assert {c.target for c in t.codes} <= set(CODES)
    assert {d.unit for d in t.dose_units} == set(DOSE_UNITS)
    unconfirmed = {"anti_mda5", "kl6"}  # no quantitative LOINC code confirmed from a source readable here
    assert not unconfirmed & {m.measure for m in t.measures}


def _administered(rid: str, rxnorm: str) -> dict:
    return {"resourceType": "MedicationAdministration", "id": rid, "status": "completed",
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2021-01-03",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": rxnorm}]}}


def test_mean_airway_pressure_prednisolone_tacrolimus_mmf_and_plasma_exchange_map_by_standard_code(tmp_path):
    path = _bundle(tmp_path, PATIENT, ENCOUNTER,
                   _obs(id="o-map", code={"coding": [{"system": "http://loinc.org", "code": "76530-5"}]},
                        valueQuantity={"value": 18, "system": "http://unitsofmeasure.org", "code": "cm[H2O]"}),
                   _administered("m-psl", "8638"), _administered("m-tac", "42316"), _administered("m-mmf", "68149"),
                   {"resourceType": "Procedure", "id": "p-pe", "status": "completed", "subject": {"reference": "Patient/p1"},
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "225067007"}]},
                    "performedDateTime": "2021-01-04"})
    imported = import_paths([path])
    (_, sc), = imported.scenarios
    ev = events_by_source(sc)
    assert ev["Observation/o-map"].values["map"].canonical("map").value == 18
    assert [ev[f"MedicationAdministration/m-{k}"].code for k in ("psl", "tac", "mmf")] == ["PSL", "Tac", "MMF"]
    assert (ev["Procedure/p-pe"].code, ev["Procedure/p-pe"].day.earliest) == ("PE", 3)
    assert not imported.summary.unmapped and not imported.summary.skipped


# --- bad input: one line, the file, the line, the resource; nothing written -----------------------


def _run(tmp_path: Path, *args: str):
    return CliRunner().invoke(app, ["import", "fhir", *args, "--out", str(tmp_path / "out")])


def _bundle(tmp_path: Path, *resources: dict) -> Path:
    path = tmp_path / "in.json"
    entries = ",\n".join("  " + json.dumps({"resource": r}) for r in resources)
    path.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [\n' + entries + "\n]}\n")
    return path


def test_an_export_with_a_subfolder_that_cannot_be_read_is_one_line_naming_it(tmp_path, unreadable):
    """Its NDJSON files would be left out of the import without a word: the folder is named."""
    export = tmp_path / "export"
    export.mkdir()
    for f in BULK.iterdir():
        (export / f.name).write_bytes(f.read_bytes())
    (export / "more").mkdir()
    (export / "more" / "Observation.001.ndjson").write_bytes((BULK / "Observation.000.ndjson").read_bytes())
    (export / "more" / "in.json").write_text(SYNTHEA.read_text())
    unreadable(export / "more")
    result = _run(tmp_path, str(export))
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {export / 'more'}: cannot read folder: Permission denied\n"
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="^" + str(export / "more") + ": cannot read folder: Permission denied$"):
        bundle_files([export])  # as `escalation test` finds Bundles in a folder


PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "2019-01-01"}
ENCOUNTER = {"resourceType": "Encounter", "id": "e1", "status": "finished", "subject": {"reference": "Patient/p1"},
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
             "period": {"start": "2021-01-01"}}


def _obs(**kw) -> dict:
    return {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
            "effectiveDateTime": "2021-01-02", **kw}


@pytest.mark.parametrize("resource,message", [
    (_obs(valueQuantity={"value": 90, "system": "http://unitsofmeasure.org", "code": "[lb_av]"}),
     "(Observation/o1): unit '[lb_av]'"),
    (_obs(valueQuantity={"value": 190, "system": "http://unitsofmeasure.org", "code": "%"}),
     "(Observation/o1): cannot be a scenario event: values.spo2: spo2 = 190 % is outside its physical range"),
    (_obs(subject={"reference": "Patient/nobody"}, valueQuantity={"value": 90, "code": "%"}),
     "(Observation/o1): refers to patient 'Patient/nobody', which is not in the input"),
    ({**_obs(), "status": None, "valueQuantity": {"value": 90, "code": "%"}},
     "(Observation/o1): not valid FHIR R4 Observation: status:"),
    ({**_obs(), "valueFoo": 1}, "(Observation/o1): not valid FHIR R4 Observation: valueFoo: Extra inputs"),
])
def test_a_bad_resource_is_one_line_naming_file_line_and_resource(tmp_path, resource, message):
    resource = {k: v for k, v in resource.items() if v is not None}
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, resource)
    result = _run(tmp_path, str(path))
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}:4 "), line
    assert message in line, line
    assert not (tmp_path / "out").exists()


FIELDS = "https://escalation.invalid/fhir/StructureDefinition/scenario-fields"
EVENT_ID = "https://escalation.invalid/fhir/NamingSystem/event-id"


def _carrying(fields: str) -> dict:
    """PATIENT with the scenario-level fields an export carries (a JSON text)."""
    return {**PATIENT, "extension": [{"url": FIELDS, "valueString": fields}]}


INTERVAL = {"start": "spo2-1", "end": "spo2-1", "days": 0, "source": {"section": "Table 1"}}


def test_scenario_fields_on_a_patient_come_back_and_name_events_by_their_exported_ids(tmp_path):
    fields = {"scenario": {"title": "a title", "description": "a description", "day_zero": "admission"},
              "patient": {"note": "a note"}, "reported_intervals": [INTERVAL],
              "expected": {"report-pathway": [{"rule": "step1-combination", "present": False}]}}
    reading = _obs(identifier=[{"system": EVENT_ID, "value": "spo2-1"}], valueQuantity={"value": 90, "code": "%"})
    path = _bundle(tmp_path, _carrying(json.dumps(fields)), ENCOUNTER, reading)
    (data, sc), = import_paths([path]).scenarios
    assert (sc.scenario.title, sc.scenario.description, sc.patient.note) == ("a title", "a description", "a note")
    assert sc.scenario.day_zero.startswith("start of Encounter/e1")  # not tagged day-zero: the words do not apply
    assert [(iv.start, iv.end) for iv in sc.reported_intervals] == [("spo2-1", "spo2-1")]
    assert sc.expected["report-pathway"][0].rule == "step1-combination"
    assert data["reported_intervals"] == [INTERVAL]  # as the file writes it


def test_a_patient_without_scenario_fields_is_imported_as_before(tmp_path):
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, _obs(valueQuantity={"value": 90, "code": "%"}))
    (data, sc), = import_paths([path]).scenarios
    assert sc.scenario.title == f"Imported from FHIR R4: Patient/p1 ({path})"
    assert (sc.scenario.description, sc.reported_intervals, sc.expected) == (None, [], {})
    assert set(data) == {"scenario", "patient", "events"}


@pytest.mark.parametrize("fields,message", [
    ("{not json", "extension scenario-fields is not JSON: Expecting property name enclosed in double quotes "
                  "(column 2)"),
    ('["title"]', "extension scenario-fields may hold only scenario, patient, reported_intervals, expected "
                  "for a Patient"),
    ('{"scenario": {"id": "x"}}', "extension scenario-fields: scenario may hold only day_zero, description, title"),
    ('{"patient": {"note": 3}}', "extension scenario-fields: patient.note must be text"),
    (json.dumps({"reported_intervals": [{**INTERVAL, "days": "many"}]}),
     "extension scenario-fields: reported_intervals.0.days: Input should be a valid integer"),
    (json.dumps({"expected": {"report-pathway": [{"rule": "a", "step": 2}]}}),
     "extension scenario-fields: expected.report-pathway.0: an expectation names exactly one of rule, step or "
     "unflagged"),
    (json.dumps({"reported_intervals": [{**INTERVAL, "end": "ecmo"}]}),
     "extension scenario-fields: reported_intervals.0.end names event 'ecmo', which no resource of this "
     "patient gives"),
])
def test_malformed_scenario_fields_on_a_patient_are_one_line_naming_it(tmp_path, fields, message):
    reading = _obs(identifier=[{"system": EVENT_ID, "value": "spo2-1"}], valueQuantity={"value": 90, "code": "%"})
    path = _bundle(tmp_path, _carrying(fields), ENCOUNTER, reading)
    result = _run(tmp_path, str(path))
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}:2 (Patient/p1): {message}"), line
    assert not (tmp_path / "out").exists()


def test_malformed_json_gives_the_line(tmp_path):
    path = tmp_path / "in.json"
    path.write_text('{"resourceType": "Bundle",\n "type": "collection",\n "entry": [\n  {"resource": }\n]}\n')
    result = _run(tmp_path, str(path))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {path}:4: malformed JSON: Expecting value (column 16)"


def test_json_nested_past_the_recursion_limit_is_one_line_and_the_other_files_are_checked(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    bundle = tmp_path / "deep.json"
    bundle.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": ' + deep + "}]}")
    result = _run(tmp_path, str(bundle))
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {bundle}: JSON nested too deeply to read"
    folder = tmp_path / "bulk"
    folder.mkdir()
    (folder / "Patient.000.ndjson").write_text(json.dumps(PATIENT) + "\n" + deep + "\n")
    result = _run(tmp_path, str(folder))
    assert result.stderr.strip() == f"error: {folder}/Patient.000.ndjson:2: JSON nested too deeply to read"
    checked = CliRunner().invoke(app, ["check", str(bundle), str(ROOT / "scenarios" / "index_case.yaml")])
    assert checked.exit_code == 2 and "ok: " in checked.stdout and "nested too deeply" in checked.stderr


def test_ndjson_errors_give_the_ndjson_line_number(tmp_path):
    folder = tmp_path / "bulk"
    folder.mkdir()
    (folder / "Patient.000.ndjson").write_text(json.dumps(PATIENT) + "\n")
    (folder / "Observation.000.ndjson").write_text(
        json.dumps(_obs(valueQuantity={"value": 90, "code": "%"})) + "\n\n" + json.dumps({**_obs(id="o2"), "status": 5}) + "\n")
    result = _run(tmp_path, str(folder))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {folder}/Observation.000.ndjson:3 (Observation/o2): not valid FHIR R4")
    (folder / "Observation.000.ndjson").write_text("{not json\n")
    assert _run(tmp_path, str(folder)).stderr.startswith(f"error: {folder}/Observation.000.ndjson:1: malformed JSON")


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(PATIENT))
    result = _run(tmp_path, str(path))
    assert result.stderr.strip() == f"error: {path}:1: not a FHIR Bundle (a Patient): give a Bundle JSON file or a Bulk Data folder of NDJSON files"


def test_a_bundle_replayed_in_memory_says_its_day_zero_and_what_was_left_out():
    """No scenario file or import-summary.json is written for it, so the result says it: two
    records with unmapped codes and a Claim (a type the import does not read) in this Bundle."""
    table = CliRunner().invoke(app, ["replay", str(SYNTHEA)])
    assert table.exit_code == 0, table.output
    shown = " ".join(table.stdout.split())
    assert "FHIR: imported in memory from FHIR R4; day 0 is 2021-03-01, the start of Encounter/enc-1" in shown
    assert ("records left out: 2 with no code or value that maps (2 unmapped codes in all), 1 of resource "
            "types the import does not read (`escalation import fhir` or `check` lists each)") in shown
    scenario = json.loads(CliRunner().invoke(app, ["replay", str(SYNTHEA), "--format", "json"]).stdout)["scenario"]
    assert scenario["fhir_import"].startswith("imported in memory from FHIR R4; day 0 is 2021-03-01")
    explained = CliRunner().invoke(app, ["explain", str(SYNTHEA)])
    assert "FHIR: imported in memory" in explained.stdout
    yaml_scenario = json.loads(CliRunner().invoke(app, ["replay", str(ROOT / "scenarios" / "index_case.yaml"),
                                                        "--format", "json"]).stdout)["scenario"]
    assert yaml_scenario["fhir_import"] is None


def test_replay_and_test_accept_a_one_patient_bundle(tmp_path):
    result = CliRunner().invoke(app, ["replay", str(SYNTHEA), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scenario"]["file"] == str(SYNTHEA)
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "s.json").write_text(SYNTHEA.read_text())
    tested = CliRunner().invoke(app, ["test", str(folder), "--format", "json"])
    assert tested.exit_code == 0, tested.output
    assert json.loads(tested.stdout)["unchecked"] == 3  # one scenario, three shipped rule sets, no expectations
    swept = CliRunner().invoke(app, ["sweep", "--set", "step3-ecmo-oi.oi_above=30:32:2", str(SYNTHEA),
                                     "--out", str(tmp_path / "sweep")])
    assert swept.exit_code == 0, swept.output  # its up-front check once read a Bundle as a YAML scenario
    rows = csv.DictReader((tmp_path / "sweep" / "sweep.csv").read_text().splitlines()[1:])
    assert {r["step3-ecmo-oi.oi_above"] for r in rows if r["scenario"].startswith("fhir-7d3c1a2e-")} == {"30", "32"}


@pytest.mark.parametrize("text,message", [
    ('{"scenario": [1, 2}\n', ":1: malformed JSON: Expecting ',' delimiter (column 19)"),
    ("scenario: [\n", ":1: malformed JSON: Expecting value (column 1)"),
])
def test_a_json_file_that_cannot_be_parsed_is_malformed_json_not_malformed_yaml(tmp_path, text, message):
    """A .json file that is no Bundle is read as a scenario (JSON is YAML, and a scenario file in
    YAML syntax under that name still loads); when it cannot be parsed, the name says JSON, so the
    error is the JSON parser's."""
    path = tmp_path / "s.json"
    path.write_text(text)
    for command in ("replay", "test"):
        result = CliRunner().invoke(app, [command, str(path)])
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: {path}{message}\n"
    (tmp_path / "yaml.json").write_text((ROOT / "scenarios" / "index_case.yaml").read_text())
    assert replay(tmp_path / "yaml.json").decision_points


def test_an_ndjson_file_given_as_a_scenario_points_to_the_commands_that_read_bulk_data(tmp_path):
    path = tmp_path / "Patient.000.ndjson"
    path.write_text(json.dumps(PATIENT) + "\n" + json.dumps({**PATIENT, "id": "p2"}) + "\n")
    for command in ("replay", "test"):
        result = CliRunner().invoke(app, [command, str(path)])
        assert result.exit_code == 2, result.output
        assert result.stderr == (f"error: {path}: a FHIR Bulk Data NDJSON file is not a scenario: give one "
                                 "patient's FHIR Bundle (.json) or a scenario YAML file; a Bulk Data export "
                                 "folder goes to `escalation import fhir` or `escalation batch`\n")


def test_a_bundle_that_names_its_type_after_its_entries_is_still_a_bundle(tmp_path):
    data = json.loads(SYNTHEA.read_text())
    late = {k: v for k, v in data.items() if k != "resourceType"} | {"resourceType": "Bundle"}
    path = tmp_path / "late.json"
    path.write_text(json.dumps(late, indent=1))
    assert '"Bundle"' not in path.read_text()[:4096]  # the head alone cannot tell
    replayed = CliRunner().invoke(app, ["replay", str(path), "--format", "json"])
    assert replayed.exit_code == 0, replayed.output
    checked = CliRunner().invoke(app, ["check", str(path)])
    assert checked.exit_code == 0 and "(FHIR Bundle: 1 of 1 patient" in checked.stdout, checked.output


def test_replay_refuses_a_bundle_of_several_patients(tmp_path):
    other = {**PATIENT, "id": "p2"}
    path = _bundle(tmp_path, PATIENT, other, ENCOUNTER, {**ENCOUNTER, "id": "e2", "subject": {"reference": "Patient/p2"}},
                   _obs(valueQuantity={"value": 90, "code": "%"}))
    with pytest.raises(InputError, match=r"holds 2 patient\(s\) and gives 1 scenario\(s\).*Patient/p2: no record"):
        replay(path)


def test_import_help_names_the_summary_file_it_writes():
    from escalation.fhir import SUMMARY_FILE

    result = CliRunner().invoke(app, ["import", "fhir", "--help"])
    assert result.exit_code == 0 and SUMMARY_FILE in result.stdout


def test_the_import_is_a_stage_one_package():
    """escalation.fhir reads files into models; it never reaches the engine, matching or reports."""
    import subprocess
    import sys

    code = ("import sys, escalation.fhir.to_scenario, escalation.fhir.export, escalation.fhir.scenario_file; "
            "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('escalation.')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert not {"evaluate", "match", "report", "analysis", "cli"} & set(eval(out)), out


def test_a_pipe_or_device_given_as_fhir_input_is_refused_without_reading(tmp_path):
    """FHIR files go through the same reader as YAML: regular files only, bounded in size."""
    import os

    from typer.testing import CliRunner

    from escalation.cli import app

    fifo = tmp_path / "bundle.json"
    os.mkfifo(fifo)
    for args in (["import", "fhir", str(fifo), "--out", str(tmp_path / "out")], ["replay", str(fifo)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "not a regular file" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


# --- the same resource given twice: read once when identical, an error when not ------------------


def _copy_of_bulk(where: Path) -> Path:
    where.mkdir()
    for f in BULK.iterdir():
        (where / f.name).write_bytes(f.read_bytes())
    return where


def test_a_patient_in_two_files_of_an_export_is_one_patient_read_once(tmp_path):
    """The same Patient in two NDJSON files once gave two scenarios, fhir-p-asthma and
    fhir-p-asthma-2, doubling the patient in every cohort count (found in a user trial)."""
    export = _copy_of_bulk(tmp_path / "export")
    asthma = (BULK / "Patient.000.ndjson").read_text().splitlines()[0]
    (export / "Patient.001.ndjson").write_text(asthma + "\n")
    result = CliRunner().invoke(app, ["import", "fhir", str(export), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.yaml")) == [
        "fhir-p-appendicitis.yaml", "fhir-p-asthma.yaml", "fhir-p-bronchiolitis.yaml"]
    assert "Read once: 1 duplicate resource (Patient 1): the same type, id and content given again" in result.stdout
    summary = json.loads((tmp_path / "out" / "import-summary.json").read_text())
    assert summary["read_once"] == {"Patient": 1}
    assert summary["resources"] == import_paths([BULK]).summary.resources
    checked = CliRunner().invoke(app, ["check", str(export)])
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines()[0].endswith("records skipped; read once: 1 duplicate resource)")


def test_two_bundles_of_one_patient_are_read_once_across_their_urn_uuids_and_stamps(tmp_path):
    """A transaction Bundle exported twice: other urn:uuid fullUrls (and the references that use
    them), another meta.lastUpdated and versionId. Still the same resources: one scenario, not
    two with every event twice; a resource only the second Bundle has still finds its patient
    through the second Bundle's fullUrl."""
    again = json.loads(SYNTHEA.read_text().replace("urn:uuid:7d3c1a2e-", "urn:uuid:0f0f0f0f-"))
    again["entry"][0]["resource"]["meta"] |= {"lastUpdated": "2024-05-01T10:00:00Z", "versionId": "7"}
    patient_url = again["entry"][0]["fullUrl"]
    again["entry"].append({"fullUrl": "urn:uuid:0f0f0f0f-ffff-4000-8000-000000000099", "resource": _obs(
        id="only-in-the-second", subject={"reference": patient_url}, effectiveDateTime="2021-03-03",
        valueQuantity={"value": 91, "system": "http://unitsofmeasure.org", "code": "%"})})
    second = tmp_path / "again.json"
    second.write_text(json.dumps(again, indent=1))
    imported = import_paths([SYNTHEA, second])
    ((_, sc),) = imported.scenarios
    ((_, alone),) = import_paths([SYNTHEA]).scenarios
    assert [e.id for e in sc.events if e.source.fhir != "Observation/only-in-the-second"] == [e.id for e in alone.events]
    assert "Observation/only-in-the-second" in events_by_source(sc)
    alone_summary = import_paths([SYNTHEA]).summary
    assert imported.summary.read_once == {**alone_summary.resources, **alone_summary.not_read}  # the Claim too
    assert imported.summary.not_read == alone_summary.not_read == {"Claim": 1}


def test_a_repeated_entry_is_one_event_and_a_bundle_replayed_says_it_was_read_once(tmp_path):
    spo2 = _obs(valueQuantity={"value": 85, "system": "http://unitsofmeasure.org", "code": "%"})
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, spo2, PATIENT, spo2)
    ((_, sc),) = import_paths([path]).scenarios
    assert len(sc.events) == 1  # not a second event `...-2`
    result = replay(path)
    assert "; read once: 2 duplicate resources" in result.scenario.fhir_import
    checked = CliRunner().invoke(app, ["check", str(path)])
    assert "; read once: 2 duplicate resources)" in checked.stdout, checked.output


@pytest.mark.parametrize("where", ["one Bundle", "two Bundles", "two NDJSON files"])
def test_the_same_type_and_id_with_other_content_is_an_error_naming_both_places(tmp_path, where):
    """Which version is right is for the researcher to decide: neither is taken without a word."""
    first = _obs(valueQuantity={"value": 85, "system": "http://unitsofmeasure.org", "code": "%"})
    other = {**first, "valueQuantity": {**first["valueQuantity"], "value": 97}, "meta": {"lastUpdated": "2024-01-01T00:00:00Z"}}
    if where == "one Bundle":
        paths = [_bundle(tmp_path, PATIENT, ENCOUNTER, first, other)]
        places = (f"{paths[0]}:5", f"{paths[0]}:4")
    elif where == "two Bundles":
        (tmp_path / "b").mkdir()
        paths = [_bundle(tmp_path, PATIENT, ENCOUNTER, first), _bundle(tmp_path / "b", PATIENT, other)]
        places = (f"{paths[1]}:3", f"{paths[0]}:4")
    else:
        export = tmp_path / "export"
        export.mkdir()
        (export / "Patient.000.ndjson").write_text(json.dumps(PATIENT) + "\n")
        (export / "Encounter.000.ndjson").write_text(json.dumps(ENCOUNTER) + "\n")
        (export / "Observation.000.ndjson").write_text(json.dumps(first) + "\n")
        (export / "Observation.001.ndjson").write_text("\n" + json.dumps(other) + "\n")
        paths = [export]
        places = (f"{export}/Observation.001.ndjson:2", f"{export}/Observation.000.ndjson:1")
    result = _run(tmp_path, *map(str, paths))
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"error: {places[0]} (Observation/o1): given again with other content than at "
                             f"{places[1]} (valueQuantity differs): which version is right is for you to decide; "
                             "remove one, or make them identical (identical copies are read once)\n")
    assert not (tmp_path / "out").exists()
    if len(paths) == 1:
        checked = CliRunner().invoke(app, ["check", str(paths[0])])
        assert checked.exit_code == 2 and checked.stderr == result.stderr


# --- records whose own dates contradict each other --------------------------------------------------


def _condition(rid: str = "c1", code: str = "JDM", **kw) -> dict:
    return {"resourceType": "Condition", "id": rid, "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "https://escalation.invalid/fhir/CodeSystem/diagnosis", "code": code}]},
            **kw}


def _procedure(rid: str, **kw) -> dict:
    return {"resourceType": "Procedure", "id": rid, "status": "completed", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "225067007"}]}, **kw}


def test_a_record_whose_dates_contradict_each_other_is_skipped_naming_it_and_the_rest_is_imported(tmp_path):
    """The trial's Condition with its onset after its recordedDate failed the whole import and
    blamed the Patient; a Period that ends before it starts (FHIR invariant per-1) did the same,
    naming the record. Each is now one skipped record, named with its reason."""
    given = _administered("m-psl", "8638")
    del given["effectiveDateTime"]
    given["effectivePeriod"] = {"start": "2021-01-03T20:00:00-05:00", "end": "2021-01-04T09:00:00+09:00"}  # 9 h early
    seen = _obs(id="o-back", effectivePeriod={"start": "2021-01-05", "end": "2021-01-04"},
                valueQuantity={"value": 90, "code": "%"})
    del seen["effectiveDateTime"]
    path = _bundle(tmp_path, PATIENT, ENCOUNTER,
                   _condition("c-jdm", onsetDateTime="2021-02-20", recordedDate="2021-02-10"),
                   _condition("c-ild", "RP-ILD", onsetDateTime="2021-01", recordedDate="2021-01-02"),
                   _procedure("p-pe", performedPeriod={"start": "2021-01-20", "end": "2021-01-12"}),
                   _procedure("p-pe-ok", performedPeriod={"start": "2021-01-12", "end": "2021-01-20"}),
                   given, seen, _obs(id="o-ok", valueQuantity={"value": 92, "code": "%"}))
    result = _run(tmp_path, str(path))
    assert result.exit_code == 0, result.output
    imported = import_paths([path])
    (_, sc), = imported.scenarios
    assert [d.code for d in sc.patient.diagnoses] == ["RP-ILD"]
    assert sorted(events_by_source(sc)) == ["Observation/o-ok", "Procedure/p-pe-ok"]
    skipped = {(s.resource_type, s.reason): s.count for s in imported.summary.skipped}
    assert skipped == {
        ("Condition", "onset (2021-02-20) is after recordedDate (2021-02-10): no day lies between them for "
                      "the diagnosis (Condition/c-jdm)"): 1,
        ("Procedure", "performedPeriod ends (2021-01-12) before it starts (2021-01-20), which FHIR's invariant "
                      "per-1 forbids (Procedure/p-pe)"): 1,
        ("MedicationAdministration", "effectivePeriod ends (2021-01-04T09:00:00+09:00) before it starts "
                                     "(2021-01-03T20:00:00-05:00), which FHIR's invariant per-1 forbids "
                                     "(MedicationAdministration/m-psl)"): 1,
        ("Observation", "effectivePeriod ends (2021-01-04) before it starts (2021-01-05), which FHIR's "
                        "invariant per-1 forbids (Observation/o-back)"): 1,
    }
    assert "(Condition/c-jdm)" in " ".join(result.stdout.split())


def test_a_diagnosis_the_scenario_cannot_hold_is_an_error_naming_the_condition_not_the_patient(tmp_path):
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, _condition("c-old", recordedDate="1850-01-01"),
                   _obs(valueQuantity={"value": 90, "code": "%"}))
    result = _run(tmp_path, str(path))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {path}:4 (Condition/c-old): cannot be a diagnosis: day:"), result.stderr


# --- several codings of one concept --------------------------------------------------------------


SNOMED = "http://snomed.info/sct"


@pytest.mark.parametrize("order", [("233573008", "786453001"), ("786453001", "233573008")])
def test_of_several_codings_that_map_the_most_specific_kind_is_imported_whatever_their_order(tmp_path, order):
    """The trial's Procedure coded [ECMO (mode not stated), VV-ECMO] imported as ECMO: the first
    coding won, and the mode was lost. VV-ECMO is a kind of ECMO (vocabulary KIND_OF)."""
    ecmo = _procedure("p-ecmo", performedDateTime="2021-01-05",
                      code={"coding": [{"system": SNOMED, "code": c} for c in order]})
    diagnosis = _condition("c-ild", "ILD", recordedDate="2021-01-02", verificationStatus={"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]})
    diagnosis["code"]["coding"].append({"system": diagnosis["code"]["coding"][0]["system"], "code": "RP-ILD"})
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, ecmo, diagnosis)
    imported = import_paths([path])
    (_, sc), = imported.scenarios
    assert events_by_source(sc)["Procedure/p-ecmo"].code == "VV-ECMO"
    assert [d.code for d in sc.patient.diagnoses] == ["RP-ILD"]
    assert imported.summary.noted == []  # a narrower and a broader code: nothing to note


def test_codings_that_map_to_unrelated_codes_keep_the_first_and_the_summary_says_so(tmp_path):
    both = _procedure("p-both", performedDateTime="2021-01-05", code={"coding": [
        {"system": SNOMED, "code": "225067007"}, {"system": SNOMED, "code": "786453001"}]})
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, both)
    imported = import_paths([path])
    (_, sc), = imported.scenarios
    assert events_by_source(sc)["Procedure/p-both"].code == "PE"
    (noted,) = imported.summary.noted
    assert (noted.resource_type, noted.count) == ("Procedure", 1)
    assert noted.note == ("its codings map to codes of which neither is a kind of the other (PE, VV-ECMO): "
                          "the first, PE, is imported")
    shown = " ".join(_run(tmp_path, str(path)).stdout.split())
    assert ("Records imported with a note (1 record; listed by note, a record under each of its notes): "
            "- 1 x Procedure: its codings map to codes") in shown
    replayed = " ".join(CliRunner().invoke(app, ["replay", str(path)]).stdout.split())
    assert "no record left out; 1 record imported with a note (`escalation import fhir` lists each)" in replayed


# --- Condition.verificationStatus ----------------------------------------------------------------


def _verified(code: str, system: str | None = "http://terminology.hl7.org/CodeSystem/condition-ver-status") -> dict:
    return {"coding": [{"system": system, "code": code} if system else {"code": code}]}


def test_only_a_confirmed_condition_or_one_without_a_verification_status_is_a_diagnosis(tmp_path):
    """FHIR R4 condition-ver-status: unconfirmed ("not sufficient ... evidence to treat this as a
    confirmed condition") and its kinds provisional and differential are not a diagnosis made; the
    trial's differential RP-ILD met the rules' diagnosis condition. A Condition with no
    verificationStatus is imported (the project's choice) and noted."""
    conditions = [
        _condition("c-confirmed", "JDM", recordedDate="2021-01-02", verificationStatus=_verified("confirmed")),
        _condition("c-absent", "RP-ILD", recordedDate="2021-01-02"),
        _condition("c-differential", "ILD", recordedDate="2021-01-02", verificationStatus=_verified("differential")),
        _condition("c-provisional", "ILD", recordedDate="2021-01-02", verificationStatus=_verified("provisional")),
        _condition("c-unconfirmed", "ILD", recordedDate="2021-01-02", verificationStatus=_verified("unconfirmed")),
        _condition("c-refuted", "ILD", recordedDate="2021-01-02", verificationStatus=_verified("refuted")),
        _condition("c-no-system", "ILD", recordedDate="2021-01-02", verificationStatus=_verified("confirmed", None)),
        _condition("c-snomed", "ILD", recordedDate="2021-01-02",
                   verificationStatus={"coding": [{"system": SNOMED, "code": "410605003"}], "text": "confirmed"}),
    ]
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, *conditions, _obs(valueQuantity={"value": 90, "code": "%"}))
    imported = import_paths([path])
    (_, sc), = imported.scenarios
    assert sorted((d.code, d.source.fhir) for d in sc.patient.diagnoses) == [
        ("ILD", "Condition/c-no-system"), ("JDM", "Condition/c-confirmed"), ("RP-ILD", "Condition/c-absent")]
    skipped = {s.reason: s.count for s in imported.summary.skipped if s.resource_type == "Condition"}
    assert skipped == {
        "not confirmed (verificationStatus differential)": 1, "not confirmed (verificationStatus provisional)": 1,
        "not confirmed (verificationStatus unconfirmed)": 1, "verificationStatus refuted": 1,
        "verificationStatus not read: it has no code of condition-ver-status, and a Condition whose "
        "verification cannot be read is not taken as a diagnosis made": 1}
    assert [(n.resource_type, n.note, n.count) for n in imported.summary.noted] == [
        ("Condition", "no verificationStatus: imported as a diagnosis made (the project's choice where FHIR says "
                      "nothing either way)", 1)]


def test_an_unconfirmed_condition_is_no_reason_for_the_day_zero_encounter_either(tmp_path):
    provisional = _condition("c-ild", "RP-ILD", recordedDate="2021-02-01", verificationStatus=_verified("provisional"))
    first = {**ENCOUNTER, "id": "e-first", "period": {"start": "2021-01-01"}}
    second = {**ENCOUNTER, "id": "e-ild", "period": {"start": "2021-02-01"},
              "diagnosis": [{"condition": {"reference": "Condition/c-ild"}}]}
    path = _bundle(tmp_path, PATIENT, first, second, provisional, _obs(valueQuantity={"value": 90, "code": "%"}))
    (_, sc), = import_paths([path]).scenarios
    assert sc.scenario.day_zero.startswith("start of Encounter/e-first ")
    assert not sc.patient.diagnoses


# --- records and codes counted apart --------------------------------------------------------------


def test_a_record_with_several_unmapped_codes_is_one_record_left_out(tmp_path):
    """The trial's line said "records left out: 4 with a code that maps to nothing" for three
    records: a blood-pressure panel's two unmapped components were counted as two records."""
    loinc = "http://loinc.org"
    bp = _obs(id="o-bp", code={"coding": [{"system": loinc, "code": "85354-9"}]}, component=[
        {"code": {"coding": [{"system": loinc, "code": c}]}, "valueQuantity": {"value": v, "code": "mm[Hg]"}}
        for c, v in (("8480-6", 110), ("8462-4", 70))])
    crp = _obs(id="o-crp", code={"coding": [{"system": loinc, "code": "1988-5"}]}, valueQuantity={"value": 45})
    half = _obs(id="o-half", code={"coding": [{"system": loinc, "code": "85354-9"}]}, component=[
        {"code": {"coding": [{"system": loinc, "code": "8480-6"}]}, "valueQuantity": {"value": 110, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": loinc, "code": "59408-5"}]}, "valueQuantity": {"value": 95, "code": "%"}}])
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, bp, crp, half)
    summary = import_paths([path]).summary
    assert summary.unmapped_records == {"Observation": 2}  # o-half is imported, without its unmapped code
    assert sum(u.count for u in summary.unmapped) == 4
    replayed = " ".join(CliRunner().invoke(app, ["replay", str(path)]).stdout.split())
    assert "records left out: 2 with no code or value that maps (4 unmapped codes in all)" in replayed
    shown = " ".join(_run(tmp_path, str(path)).stdout.split())
    assert "Unmapped codes (4, counted by code, not imported; 2 records left out with no code or value" in shown


def test_unmapped_codes_in_records_otherwise_imported_are_not_records_left_out(tmp_path):
    half = _obs(id="o-half", code={"coding": [{"system": "http://loinc.org", "code": "85354-9"}]}, component=[
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
         "valueQuantity": {"value": 110, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]}, "valueQuantity": {"value": 95, "code": "%"}}])
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, half)
    replayed = " ".join(CliRunner().invoke(app, ["replay", str(path)]).stdout.split())
    assert ("no record left out; 1 unmapped code in records otherwise imported (`escalation import fhir` lists "
            "each)") in replayed


# --- the day-0 rule names the inpatient encounters it passed over ---------------------------------


def _ambulatory(rid: str, start: str) -> dict:
    return {**ENCOUNTER, "id": rid, "period": {"start": start},
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}


@pytest.mark.parametrize("encounters,rule", [
    # the trial's: the stay's start is a month only, so an earlier outpatient visit set day 0
    ([_ambulatory("e-amb", "2021-01-01"), _stay("e-imp", "2021-03", "RP-ILD")],
     "the first encounter (no inpatient encounter whose start can be day 0; inpatient Encounter/e-imp passed "
     "over: its start 2021-03 is not a full date)"),
    ([_inpatient("e-plain", "2021-01-01"), _stay("e-imp", "2021-03", "RP-ILD")],
     "the first inpatient encounter (none whose start can be day 0 has a diagnosis of the rule set: JDM, RP-ILD); "
     "inpatient Encounter/e-imp passed over: its start 2021-03 is not a full date"),
    ([_stay("e-ild", "2021-01-01", "RP-ILD"), {**_stay("e-gone", "2020-12-01", "JDM"), "status": "cancelled"},
      _inpatient("e-plain", "2021-01")],
     "the first inpatient encounter with a diagnosis of the rule set (JDM, RP-ILD); inpatient Encounter/e-gone "
     "passed over: its status is cancelled"),
    ([_ambulatory("e-amb", "2021-01-01")], "the first encounter (no inpatient encounter)"),
])
def test_the_day_zero_rule_names_the_inpatient_encounters_it_passed_over_and_why(tmp_path, encounters, rule):
    path = _bundle(tmp_path, PATIENT, *encounters, _obs(valueQuantity={"value": 90, "code": "%"}))
    (_, sc), = import_paths([path]).scenarios
    assert sc.scenario.day_zero.endswith(rule), sc.scenario.day_zero


# --- events in time order ------------------------------------------------------------------------


def test_readings_of_one_day_are_in_time_order_whatever_the_order_of_the_entries(tmp_path):
    """The trial's SpO2 of 97 % at 06:00 and 85 % at 18:00 (+09:00) on one day: the order of the
    entries decided which was "the latest reading that day" (rb-ecmo fired or not). The events are
    now in the order of their instants, ties by type and id, and the files are identical."""
    def spo2(rid: str, at: str, value: float) -> dict:
        return _obs(id=rid, effectiveDateTime=at, valueQuantity={"value": value, "code": "%"})

    clinical = [spo2("o-evening", "2021-01-05T18:00:00+09:00", 85), spo2("o-morning", "2021-01-05T06:00:00+09:00", 97),
                spo2("o-utc", "2021-01-04T22:00:00Z", 91),  # 07:00 on the 5th at +09:00, the offset of day 0
                spo2("o-same-b", "2021-01-06T06:00:00+09:00", 92), spo2("o-same-a", "2021-01-06T06:00:00+09:00", 93),
                spo2("o-dated", "2021-01-05", 99),  # no time of day: before the timed readings of its day
                {**_procedure("p-pe", performedDateTime="2021-01-05T12:00:00+09:00")},
                _condition("c-jdm", recordedDate="2021-01-02")]
    day_zero = {**ENCOUNTER, "period": {"start": "2021-01-01T08:00:00+09:00"}}
    texts = []
    for n, entries in enumerate((clinical, clinical[::-1])):
        path = _bundle(tmp_path, PATIENT, day_zero, *entries)
        result = CliRunner().invoke(app, ["import", "fhir", str(path), "--out", str(tmp_path / f"out{n}")])
        assert result.exit_code == 0, result.output
        texts.append((tmp_path / f"out{n}" / "fhir-p1.yaml").read_text())
        (_, sc), = import_paths([path]).scenarios
        assert [e.source.fhir.split("/")[1] for e in sc.events] == [
            "o-dated", "o-morning", "o-utc", "p-pe", "o-evening", "o-same-a", "o-same-b"]
    assert texts[0] == texts[1]


def test_dated_readings_listed_out_of_day_order_do_not_change_the_latest_reading_of_a_day(tmp_path):
    """SpO2 85 % dated day 2, 99 % dated day 5 and 97 % at 10:00 on day 2: the dated records were
    merged with the timed ones as if they were in day order, so listing day 5 first put the dated
    85 % after the timed 97 %, and the latest SpO2 of day 2 was 85 or 97 by the order of the
    entries. Whatever the order, each day's events come in one order (date-only first), under
    either placement of a range (a partial date, a Period of days)."""
    from itertools import permutations

    from escalation.derive.features import DayFeatures, MeasureFeature
    from escalation.derive.placement import PASSES, place

    def spo2(rid: str, value: float, **when) -> dict:
        return {**_obs(id=rid, valueQuantity={"value": value, "code": "%"}), **when}

    entries = [spo2("u-day2", 85, effectiveDateTime="2021-01-03"), spo2("u-day5", 99, effectiveDateTime="2021-01-06"),
               spo2("t-day2", 97, effectiveDateTime="2021-01-03T10:00:00Z"),
               spo2("u-month", 90, effectiveDateTime="2021-01"),  # a range: any day of January
               {k: v for k, v in spo2("t-period", 93, effectivePeriod={
                   "start": "2021-01-02T10:00:00Z", "end": "2021-01-06T10:00:00Z"}).items()
                if k != "effectiveDateTime"}]  # timed, days 1 to 5
    seen = set()
    for order in permutations(entries):
        (_, sc), = import_paths([_bundle(tmp_path, PATIENT, ENCOUNTER, *order)]).scenarios
        by_day = []
        for name in PASSES:
            spans = place(sc, name).spans
            by_day.append(tuple(sorted((spans[e.id].start, i, e.id) for i, e in enumerate(sc.events))))
            if name == "early":
                latest = DayFeatures.build(sc, place(sc, name)).value(MeasureFeature("spo2", 0), 2)
                assert latest == {"spo2__w0": 97.0}, [e["id"] for e in order]
        seen.add(tuple(tuple((d, eid) for d, _, eid in days) for days in by_day))
    assert len(seen) == 1, seen


# --- Observations charted at one instant ---------------------------------------------------------


LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _reading(rid: str, loinc: str, value: float, unit: str, at: str = "2021-01-04T06:00:00+09:00", **kw) -> dict:
    return _obs(id=rid, code={"coding": [{"system": LOINC, "code": loinc}]}, effectiveDateTime=at,
                valueQuantity={"value": value, "system": UCUM, "code": unit}, **kw)


VENTILATED = {"resourceType": "Procedure", "id": "p-vent", "status": "in-progress", "subject": {"reference": "Patient/p1"},
              "code": {"coding": [{"system": "https://escalation.invalid/fhir/CodeSystem/code",
                                   "code": "invasive_ventilation"}]},
              "performedDateTime": "2021-01-02T10:00:00+09:00"}
ZONED = {**ENCOUNTER, "period": {"start": "2021-01-01T08:00:00+09:00"}}


def test_observations_of_one_instant_are_one_event_and_give_the_oxygenation_indices(tmp_path):
    """The trial: a normal export writes one Observation per code, and the indices (OI, P/F, S/F,
    OSI), computed from the values of one event, were never computed; pards-oi-severe and
    step3-ecmo-oi could not fire. The same instant may be written in two offsets."""
    from escalation.derive.readings import observation_readings

    gas = [_reading("o-map", "76530-5", 20, "cm[H2O]"), _reading("o-fio2", "3150-0", 100, "%"),
           _reading("o-pao2", "2703-7", 45, "mm[Hg]", at="2021-01-03T21:00:00Z"),
           _reading("o-spo2", "59408-5", 85, "%"), _reading("o-pf", "50984-4", 45, "mm[Hg]")]
    path = _bundle(tmp_path, PATIENT, ZONED, VENTILATED, *gas)
    (_, sc), = import_paths([path]).scenarios
    (event,) = [e for e in sc.events if e.kind == "observation"]
    assert event.id == "observation-at-2021-01-03T21:00:00Z" and event.day.earliest == 3
    assert set(event.values) == {"map", "fio2", "pao2", "spo2"} and set(event.reported) == {"pf"}
    assert [c.fhir for c in (event.source, *event.also)] == [
        "Observation/o-fio2", "Observation/o-map", "Observation/o-pao2", "Observation/o-pf", "Observation/o-spo2"]
    assert event.also[0].detail == "the map reading of this event, charted at the same instant"
    computed = {r.measure: r.value.value for r in observation_readings(event) if r.origin == "computed"}
    assert computed == {"pf": 45.0, "oi": 44.4444, "sf": 85.0, "osi": 23.5294}
    points = [(p.rule_id, p.day) for p in replay(path, PATHWAY).decision_points]
    assert ("pards-oi-severe", 3) in points


@pytest.mark.parametrize("second,together", [
    (_reading("o-fio2", "3150-0", 60, "%", at="2021-01-04T06:05:00+09:00"), False),  # five minutes apart
    (_reading("o-fio2", "3150-0", 60, "%", at="2021-01-04"), False),  # a date: no time of day
    (_reading("o-fio2", "3150-0", 60, "%", at="2021-01-04T06:00:00.000+09:00"), True),
    (_reading("o-spo2-2", "59408-5", 91, "%"), True),  # the same reading twice: kept once, both cited
])
def test_only_readings_at_the_same_instant_are_charted_together(tmp_path, second, together):
    path = _bundle(tmp_path, PATIENT, ZONED, _reading("o-spo2", "59408-5", 91, "%"), second)
    (_, sc), = import_paths([path]).scenarios
    assert len(sc.events) == (1 if together else 2)
    if together:
        assert len(sc.events[0].also) == 1


def test_readings_over_the_same_period_are_charted_together_and_other_periods_are_not(tmp_path):
    def over(rid: str, loinc: str, value: float, unit: str, end: str) -> dict:
        r = _reading(rid, loinc, value, unit)
        del r["effectiveDateTime"]
        return {**r, "effectivePeriod": {"start": "2021-01-04T06:00:00+09:00", "end": end}}

    path = _bundle(tmp_path, PATIENT, ZONED, over("o-spo2", "59408-5", 91, "%", "2021-01-04T08:00:00+09:00"),
                   over("o-fio2", "3150-0", 60, "%", "2021-01-04T08:00:00+09:00"),
                   over("o-map", "76530-5", 12, "cm[H2O]", "2021-01-04T09:00:00+09:00"),
                   _reading("o-point", "2703-7", 80, "mm[Hg]"))  # a point at the periods' start: not together
    (_, sc), = import_paths([path]).scenarios
    assert sorted(len(e.values) for e in sc.events) == [1, 1, 2]
    assert "observation-at-2021-01-03T21:00:00Z--2021-01-03T23:00:00Z" in [e.id for e in sc.events]


def test_one_measure_with_two_values_at_one_instant_is_not_charted_together_and_the_summary_says_so(tmp_path):
    """Which SpO2 goes with the FiO2 is not in the record: no reading of that instant is put
    together, each stays its own event, and the summary notes the records."""
    path = _bundle(tmp_path, PATIENT, ZONED, _reading("o-spo2", "59408-5", 85, "%"),
                   _reading("o-spo2-b", "59408-5", 97, "%"), _reading("o-fio2", "3150-0", 60, "%"))
    imported = import_paths([path])
    (_, sc), = imported.scenarios
    assert sorted(e.source.fhir for e in sc.events) == ["Observation/o-fio2", "Observation/o-spo2",
                                                         "Observation/o-spo2-b"]
    assert all(not e.also for e in sc.events)
    (noted,) = imported.summary.noted
    assert (noted.resource_type, noted.count) == ("Observation", 3)
    assert noted.note == ("spo2 given twice with different values at one instant (2021-01-03T21:00:00Z): readings "
                          "of that instant not charted together, so no index is computed from them "
                          "(Observation/o-fio2, Observation/o-spo2, Observation/o-spo2-b)")


def test_charting_together_does_not_depend_on_the_order_of_the_entries(tmp_path):
    gas = [_reading("o-map", "76530-5", 20, "cm[H2O]"), _reading("o-fio2", "3150-0", 100, "%"),
           _reading("o-pao2", "2703-7", 45, "mm[Hg]")]
    dumped = []
    for entries in (gas, gas[::-1]):
        (data, _), = import_paths([_bundle(tmp_path, PATIENT, ZONED, *entries)]).scenarios
        dumped.append(data["events"])
    assert dumped[0] == dumped[1]


def test_an_exported_bundle_is_not_charted_together_even_with_timestamps(tmp_path):
    """The export writes one resource per scenario event (readings taken together as components):
    its records keep their events, so that a round trip gives back the scenario it exported."""
    from escalation.fhir.export import to_bundle

    scenario = load_scenario(ROOT / "scenarios" / "index_case.yaml")
    bundle = to_bundle(scenario)
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Observation" and "effectiveDateTime" in r:
            r["effectiveDateTime"] = r["effectiveDateTime"] + "T06:00:00Z"  # every reading at one time of day
    path = tmp_path / "exported.json"
    path.write_text(json.dumps(bundle))
    (_, again), = import_paths([path]).scenarios
    assert sorted(e.id for e in again.events) == sorted(e.id for e in scenario.events)  # (now in time order)


def test_an_observation_with_two_different_values_of_one_measure_is_skipped_not_half_read(tmp_path):
    """Two SpO2 components of one Observation, 97 % and 85 %: the second silently replaced the
    first; which one holds is not the import's to say, so the record is skipped with its reason."""
    spo2 = {"system": "http://loinc.org", "code": "59408-5"}
    panel = _obs(id="o2", code={"coding": [{"system": "http://loinc.org", "code": "24336-0"}]},
                 component=[{"code": {"coding": [spo2]}, "valueQuantity": {"value": v, "code": "%"}} for v in (97, 85)])
    same = _obs(id="o3", code=panel["code"], effectiveDateTime="2021-01-03",
                component=[{"code": {"coding": [spo2]}, "valueQuantity": {"value": 90, "code": "%"}}] * 2)
    imported = import_paths([_bundle(tmp_path, PATIENT, ENCOUNTER, _obs(), panel, same)])
    skipped = {(s.resource_type, s.reason): s.count for s in imported.summary.skipped}
    assert skipped == {("Observation", "two different values of spo2 in one Observation"): 1}
    (_, sc), = imported.scenarios
    assert [e.values["spo2"].value for e in sc.events if e.kind == "observation"] == [90]  # the same value twice: one


# --- what the summary counts ---------------------------------------------------------------------


MEASURE = "https://escalation.invalid/fhir/CodeSystem/measure"


def _spo2_or_sf(**kw) -> dict:
    """An Observation coded both spo2 and sf (neither a kind of the other): noted, spo2 read."""
    return _obs(id="o2", code={"coding": [{"system": MEASURE, "code": "spo2"}, {"system": MEASURE, "code": "sf"}]},
                **kw)


@pytest.mark.parametrize("left_out", [
    _obs(id="o2", code={"coding": [{"system": "https://escalation.invalid/fhir/CodeSystem/event", "code": "readings"}]},
         component=[{"code": _spo2_or_sf()["code"], "valueQuantity": {"value": 97, "code": "%"}},
                    {"code": {"coding": [{"system": MEASURE, "code": "spo2"}]},
                     "valueQuantity": {"value": 85, "code": "%"}}]),  # skipped: two values of spo2
    _spo2_or_sf(valueString="normal"),  # left out: no value that maps
])
def test_a_record_left_out_is_not_counted_as_imported_with_a_note(tmp_path, left_out):
    from escalation.fhir.to_scenario import in_memory_note

    imported = import_paths([_bundle(tmp_path, PATIENT, ENCOUNTER, left_out, _obs(valueQuantity={"value": 95,
                                                                                                 "code": "%"}))])
    assert imported.summary.noted == []
    assert sum(s.count for s in imported.summary.skipped) + sum(imported.summary.unmapped_records.values()) == 1
    assert "with a note" not in in_memory_note(imported.summary)


def test_a_record_with_two_notes_is_one_record_imported_with_a_note(tmp_path):
    """A Condition coded JDM and ILD (neither a kind of the other) without a verificationStatus has
    two notes: the summary lists it under each, and counts it once as a record."""
    from escalation.fhir.to_scenario import in_memory_note

    both = _condition(code="JDM", onsetDateTime="2021-01-01")
    both["code"]["coding"].append({"system": "https://escalation.invalid/fhir/CodeSystem/diagnosis", "code": "ILD"})
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, both, _obs(valueQuantity={"value": 95, "code": "%"}))
    summary = import_paths([path]).summary
    assert [(n.resource_type, n.count) for n in summary.noted] == [("Condition", 1), ("Condition", 1)]
    assert summary.noted_records == {"Condition": 1}
    assert "; 1 record imported with a note " in in_memory_note(summary)
    shown = " ".join(_run(tmp_path, str(path)).stdout.split())
    assert "Records imported with a note (1 record; listed by note, a record under each of its notes):" in shown


@pytest.mark.parametrize("encounters,why", [
    ([], "no encounter with a start date to set day 0, and no day 0 given (`import fhir --day-zero` gives one)"),
    ([{**ENCOUNTER, "period": {"start": "2021-03"}},
      {**ENCOUNTER, "id": "e2", "status": "cancelled", "period": {"start": "2021-03-04"}},
      {**ENCOUNTER, "id": "e3", "class": {"code": "AMB"}, "period": {}}],
     "no encounter whose start can be day 0, and no day 0 given (`import fhir --day-zero` gives one); inpatient Encounter/e1 passed over: "
     "its start 2021-03 is not a full date; inpatient Encounter/e2 passed over: its status is cancelled; "
     "Encounter/e3 passed over: it has no start (period.start)"),
])
def test_a_patient_whose_encounters_cannot_set_day_zero_is_told_which_and_why(tmp_path, encounters, why):
    """Encounters with a start date (one partial, one cancelled) were reported as 'no encounter with a
    start date', and none was named; they are named as the day-0 rule names those it passes over."""
    summary = import_paths([_bundle(tmp_path, PATIENT, *encounters, _obs(valueQuantity={"value": 95,
                                                                                       "code": "%"}))]).summary
    assert summary.patients[0].skipped == why
    general = why.split("; ")[0]
    assert {s.reason for s in summary.skipped} == {f"its patient has no scenario ({general})"}  # one line for all


def test_an_autoantibody_result_the_scenario_cannot_hold_is_an_error_naming_its_observation(tmp_path):
    """It was checked only with the whole scenario, so the error named the Patient."""
    from escalation.fhir import codes as C

    antibody = {**_obs(id="ab1", code={"coding": [{"system": C.AUTOANTIBODY_SYSTEM, "code": "anti-MDA5"}]},
                       valueCodeableConcept={"coding": [{"system": C.RESULT_SYSTEM, "code": "equivocal"}]})}
    del antibody["effectiveDateTime"]
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, antibody, _obs(valueQuantity={"value": 95, "code": "%"}))
    with pytest.raises(InputError) as raised:
        import_paths([path])
    assert str(raised.value) == (f"{path}:4 (Observation/ab1): cannot be an autoantibody result: result: Input "
                                 "should be 'positive', 'negative' or 'not_measured'")


@pytest.mark.parametrize("given,ids", [
    (["x", "x-2", "x"], ["x", "x-2", "x-3"]),  # x-2 was taken again: a duplicate the scenario refused
    (["x", "x", "x-2"], ["x", "x-3", "x-2"]),  # nor does a renamed id take one a later record gives
    (["x", "x", "x"], ["x", "x-2", "x-3"]),
])
def test_an_event_id_given_again_becomes_the_next_suffix_no_event_has(tmp_path, given, ids):
    def with_id(n: int, eid: str) -> dict:
        return _obs(id=f"o{n}", effectiveDateTime=f"2021-01-0{n + 2}", valueQuantity={"value": 90 + n, "code": "%"},
                    identifier=[{"system": EVENT_ID, "value": eid}])

    (_, sc), = import_paths([_bundle(tmp_path, PATIENT, ENCOUNTER,
                                     *(with_id(n, eid) for n, eid in enumerate(given)))]).scenarios
    assert [e.id for e in sc.events] == ids


def test_an_error_of_the_whole_imported_scenario_says_where(tmp_path):
    """A check of the whole scenario (as for a duplicate event id) gives its place in the error's
    context: the message had an empty location ('not valid: : duplicate event id')."""
    from escalation.fhir.reader import Located
    from escalation.fhir.to_scenario import _validate

    (data, _), = import_paths([_bundle(tmp_path, PATIENT, ENCOUNTER, _obs(valueQuantity={"value": 95,
                                                                                        "code": "%"}))]).scenarios
    data = {**data, "events": data["events"] * 2}
    with pytest.raises(InputError) as raised:
        _validate(data, [], [], Located("Patient", "p1", None, "in.json", 2))
    assert str(raised.value).endswith("the imported scenario is not valid: events.1.id: duplicate event id "
                                      "'observation-o1'")


def test_a_replay_counts_unmapped_codes_in_imported_records_when_a_record_is_also_left_out(tmp_path):
    """A panel whose SpO2 maps and whose systolic pressure does not, beside a cancelled Observation:
    the replay's note said only '1 skipped', and the unmapped code was in no count."""
    from escalation.fhir.to_scenario import in_memory_note

    panel = _obs(id="o2", code={"coding": [{"system": LOINC, "code": "85354-9"}]}, component=[
        {"code": {"coding": [{"system": MEASURE, "code": "spo2"}]}, "valueQuantity": {"value": 97, "code": "%"}},
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 100, "code": "mm[Hg]"}}])
    cancelled = _obs(id="o3", status="cancelled", valueQuantity={"value": 90, "code": "%"})
    note = in_memory_note(import_paths([_bundle(tmp_path, PATIENT, ENCOUNTER, panel, cancelled)]).summary)
    assert note.endswith("; records left out: 1 skipped; 1 unmapped code in records otherwise imported "
                         "(`escalation import fhir` or `check` lists each)")


def test_an_identical_copy_of_a_resource_of_a_type_not_read_is_counted_once_as_read_once(tmp_path):
    """Two identical Immunizations were two under 'not read' and none under 'read once'; a second
    version of one (not read either way) is still only counted, not an error."""
    shot = {"resourceType": "Immunization", "id": "i1", "status": "completed", "patient": {"reference": "Patient/p1"}}
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, shot, {**shot, "meta": {"versionId": "2"}},
                   _obs(valueQuantity={"value": 95, "code": "%"}))
    summary = import_paths([path]).summary
    assert (summary.not_read, summary.read_once) == ({"Immunization": 1}, {"Immunization": 1})
    path = _bundle(tmp_path, PATIENT, ENCOUNTER, shot, {**shot, "status": "not-done"},
                   _obs(valueQuantity={"value": 95, "code": "%"}))
    summary = import_paths([path]).summary
    assert (summary.not_read, summary.read_once) == ({"Immunization": 2}, {})


def test_the_records_of_a_patient_with_no_event_are_not_counted_as_imported(tmp_path):
    """A JDM Condition without verificationStatus and an unmapped heart rate: no scenario is written,
    yet the Condition was listed under 'imported with a note' (and in no other count)."""
    heart_rate = _obs(id="o9", code={"coding": [{"system": LOINC, "code": "8867-4"}]},
                      valueQuantity={"value": 80, "unit": "/min"})
    summary = import_paths([_bundle(tmp_path, PATIENT, ENCOUNTER, _condition(onsetDateTime="2021-01-01"),
                                    heart_rate)]).summary
    assert summary.patients[0].skipped == "no record maps to an event of the vocabulary"
    assert (summary.noted, summary.noted_records) == ([], {})
    why = "its patient has no scenario (no record maps to an event of the vocabulary)"
    assert {(s.resource_type, s.reason): s.count for s in summary.skipped} == {("Condition", why): 1,
                                                                              ("Encounter", why): 1}
    assert summary.unmapped_records == {"Observation": 1}


@pytest.mark.parametrize("dates", [
    {"onsetDateTime": "2021-02-20", "recordedDate": "2021-02-10"},  # onset after recordedDate: skipped
    {},  # no onset or recorded date: skipped
])
def test_a_condition_the_import_skips_is_no_reason_for_the_day_zero_encounter(tmp_path, dates):
    """As a refuted or unconfirmed one is not (a61486c): the encounter naming it was taken as 'the
    first inpatient encounter with a diagnosis of the rule set', with no diagnosis imported."""
    confirmed = {"verificationStatus": _verified("confirmed")}
    earlier = {**ENCOUNTER, "id": "e0", "period": {"start": "2020-12-01"}}
    naming = {**ENCOUNTER, "diagnosis": [{"condition": {"reference": "Condition/c1"}}]}
    imported = import_paths([_bundle(tmp_path, PATIENT, earlier, naming, _condition(**confirmed, **dates),
                                     _obs(valueQuantity={"value": 95, "code": "%"}))])
    (_, sc), = imported.scenarios
    assert sc.patient.diagnoses == []
    assert imported.summary.patients[0].day_zero_rule == (
        "start of Encounter/e0 (2020-12-01, days counted in UTC): the first inpatient encounter (none has a "
        "diagnosis of the rule set: JDM, RP-ILD)")
