"""`escalation check` on FHIR R4 input: Bundles and Bulk Data folders, checked by importing them.

The Bundles are the project's own exports (`escalation.fhir.export.to_bundle`) of shipped
scenarios, written one entry a line so that the line of each resource is known here without the
reader's help; the Bulk Data folder and the HL7 Bundle are the fixtures of test_fhir_import.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import INDEX_CASE, ROOT, SRC, ev
from typer.testing import CliRunner

from escalation.api import replay
from escalation.cli.app import app
from escalation.fhir.export import to_bundle
from escalation.fhir.to_scenario import import_paths
from escalation.load.errors import InputError
from escalation.load.loading import load_scenario

FIXTURES = ROOT / "tests" / "fixtures" / "fhir"
BULK, HL7 = FIXTURES / "bulk", FIXTURES / "hl7_examples.json"
EXPORTED_INDEX_CASE_FIRST_ENTRY_LINE = 2  # `write_bundle` puts entry i on line i + 2


def check(*paths: Path):
    return CliRunner().invoke(app, ["check", *map(str, paths)])


@pytest.fixture(scope="module")
def index_bundle() -> dict[str, Any]:
    return to_bundle(load_scenario(INDEX_CASE))


def write_bundle(path: Path, bundle: dict[str, Any]) -> Path:
    """The Bundle with one entry a line: entry i starts on line i + 2."""
    head = {k: v for k, v in bundle.items() if k != "entry"}
    entries = ",\n".join(json.dumps(e) for e in bundle["entry"])
    path.write_text(json.dumps(head)[:-1] + ', "entry": [\n' + entries + "\n]}\n", encoding="utf-8")
    return path


def test_an_exported_bundle_is_ok_with_what_its_import_gives(tmp_path, index_bundle):
    path = write_bundle(tmp_path / "index.json", index_bundle)
    result = check(path)
    assert result.exit_code == 0, result.output
    summary = import_paths([path]).summary
    unmapped, skipped = sum(u.count for u in summary.unmapped), sum(s.count for s in summary.skipped)
    assert result.stdout == (f"ok: {path} (FHIR Bundle: 1 of 1 patient importable as a scenario; "
                             f"{unmapped} unmapped code{'s' * (unmapped != 1)}, "
                             f"{skipped} record{'s' * (skipped != 1)} skipped)\n")
    assert result.stderr == ""


def test_a_bundle_whose_patient_is_left_out_is_valid_and_says_why():
    result = check(HL7)
    assert result.exit_code == 0, result.output
    first, second = result.stdout.splitlines()
    assert first.startswith(f"ok: {HL7} (FHIR Bundle: valid, but its patient cannot be imported as a scenario; ")
    assert second == ("  left out: Patient/example: no encounter whose start can be day 0, and no day 0 given "
                      "(`import fhir --day-zero` gives one); inpatient Encounter/example passed over: it has no start (period.start)")


def test_a_bundle_of_two_patients_says_that_replay_takes_one(tmp_path, index_bundle):
    patient = next(e for e in index_bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    other = {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002",
             "resource": {**patient["resource"], "id": "second-patient"}}
    path = write_bundle(tmp_path / "two.json", {**index_bundle, "entry": [*index_bundle["entry"], other]})
    result = check(path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "(FHIR Bundle: 1 of 2 patients importable as a scenario; " in lines[0]
    assert lines[0].endswith("; `replay` and `test` take a Bundle of one patient, `import fhir` takes this one)")
    assert lines[1].startswith("  left out: Patient/second-patient: ")
    with pytest.raises(InputError, match="replay takes one"):  # what the line warns of
        replay(path)


def test_only_the_first_five_patients_left_out_are_named(tmp_path, index_bundle):
    patient = next(e for e in index_bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    others = [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000001{i}",
               "resource": {**patient["resource"], "id": f"other-{i}"}} for i in range(6)]
    path = write_bundle(tmp_path / "seven.json", {**index_bundle, "entry": [*index_bundle["entry"], *others]})
    lines = check(path).stdout.splitlines()
    assert "(FHIR Bundle: 1 of 7 patients importable as a scenario; " in lines[0]
    assert [line.split(":")[1].strip() for line in lines[1:6]] == [f"Patient/other-{i}" for i in range(5)]
    assert lines[6:] == ["  ... and 1 more left out (`escalation import fhir` lists each with its reason)"]


def test_a_bundle_without_a_patient_is_valid_and_says_nothing_can_be_imported(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text('{"resourceType": "Bundle", "type": "collection", "entry": []}\n', encoding="utf-8")
    result = check(path)
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"ok: {path} (FHIR Bundle: valid, but it holds no Patient, so no scenario can be "
                             "imported; 0 unmapped codes, 0 records skipped)\n")


def test_a_bulk_data_folder_is_checked_as_one_export():
    result = check(BULK)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [  # one line for the export: no line per NDJSON file or for the manifest
        (f"ok: {BULK} (FHIR Bulk Data export: 3 of 4 patients importable as scenarios; 11 unmapped codes, "
         "3 records skipped)"),
        "  left out: Patient/p-adult: aged 57.17 at day 0: the scenario format covers ages 0-18",
    ]


def test_a_folder_of_yaml_and_ndjson_checks_the_export_once_and_each_yaml_file(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(BULK, data / "export")
    shutil.copy(INDEX_CASE, data / "a.yaml")
    shutil.copy(ROOT / "rules" / "report-pathway.yaml", data / "export" / "rules.yaml")
    result = check(data)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("ok: ")]
    assert lines == [f"ok: {data / 'a.yaml'} (scenario)",
                     (f"ok: {data / 'export'} (FHIR Bulk Data export: 3 of 4 patients importable as scenarios; "
                      "11 unmapped codes, 3 records skipped)"),
                     f"ok: {data / 'export' / 'rules.yaml'} (rules)"]


def test_a_folder_with_an_export_whose_subfolder_cannot_be_read_is_one_line_naming_it(tmp_path, unreadable):
    data = tmp_path / "data"
    shutil.copytree(BULK, data / "export")
    shutil.copy(INDEX_CASE, data / "a.yaml")
    (data / "export" / "more").mkdir()
    shutil.copy(BULK / "Observation.000.ndjson", data / "export" / "more" / "Observation.001.ndjson")
    unreadable(data / "export" / "more")
    for named in (data, data / "export"):
        result = check(named)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: {data / 'export' / 'more'}: cannot read folder: Permission denied\n"
        assert result.stdout == ""


def test_a_broken_bundle_is_one_line_with_file_and_line_and_the_other_files_are_still_checked(tmp_path, index_bundle):
    entries = [json.loads(json.dumps(e)) for e in index_bundle["entry"]]
    broken = next(i for i, e in enumerate(entries) if e["resource"]["resourceType"] == "Observation")
    entries[broken]["resource"]["status"] = 5  # a code must be a string
    bad = write_bundle(tmp_path / "a-broken.json", {**index_bundle, "entry": entries})
    shutil.copy(INDEX_CASE, tmp_path / "b.yaml")
    good = write_bundle(tmp_path / "c-good.json", index_bundle)
    result = check(tmp_path)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    rid = entries[broken]["resource"]["id"]
    assert line.startswith(f"error: {bad}:{broken + EXPORTED_INDEX_CASE_FIRST_ENTRY_LINE} (Observation/{rid}): "
                           "not valid FHIR R4 Observation: status"), line
    assert [x.split(" (")[0] for x in result.stdout.splitlines()] == [f"ok: {tmp_path / 'b.yaml'}", f"ok: {good}"]


def test_a_json_that_is_not_a_bundle_is_an_error_when_named_and_passed_over_in_a_folder(tmp_path, index_bundle):
    patient = next(e["resource"] for e in index_bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "patient.json"
    path.write_text(json.dumps(patient), encoding="utf-8")
    shutil.copy(INDEX_CASE, folder / "index.yaml")
    named = check(path)
    assert named.exit_code == 2 and named.stdout == ""
    assert named.stderr == (f"error: {path}:1: not a FHIR Bundle (a Patient resource), nor a scenario, rule set or "
                            "records file: give a Bundle JSON file, a Bulk Data folder of NDJSON files, or a file "
                            "with a top-level scenario:, ruleset: or records: key\n")
    walked = check(folder)  # as `escalation test` finds scenarios: a .json that is no Bundle is not one
    assert walked.exit_code == 0, walked.output
    assert walked.stdout == f"ok: {folder / 'index.yaml'} (scenario)\n"


def test_a_bulk_data_manifest_named_alone_points_at_its_folder():
    result = check(BULK / "manifest.json")
    assert result.exit_code == 2
    assert "(a Bulk Data completion manifest: name the export's folder)" in result.stderr


def test_a_scenario_written_as_json_is_still_checked_as_a_scenario(tmp_path):
    data = {"scenario": {"id": "as-json", "title": "a scenario in JSON syntax", "source": SRC},
            "patient": {"age_years": 5, "sex": "female", "source": SRC, "diagnoses": []},
            "events": [ev("procedure", 3, code="PE")]}
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = check(path)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: {path} (scenario)\n"


@pytest.mark.parametrize("text,message", [
    ('{"scenario": {"id": "x",\n "title": }\n', ":2: malformed JSON: Expecting value (column 11)"),
    ("ruleset: [\n", ":1: malformed JSON: Expecting value (column 1)"),
])
def test_a_malformed_json_file_that_is_not_a_bundle_gets_the_json_parsers_error(tmp_path, text, message):
    """`check` reads a .json file that is no Bundle as YAML (JSON is YAML); when neither parser can
    read it, the name says JSON, so the error is the JSON parser's, as `replay` says it."""
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = check(path)
    assert result.exit_code == 2 and result.stderr == f"error: {path}{message}\n"


def test_a_rule_set_given_as_json_gets_the_json_parsers_error_from_every_command(tmp_path):
    bad = tmp_path / "rules.json"
    bad.write_text('{"ruleset": {"id": "x",\n  "rules": [}\n')
    wanted = f"error: {bad}:2: malformed JSON: Expecting value (column 13)\n"
    for args in (["check", str(bad)], ["replay", str(INDEX_CASE), "--rules", str(bad)],
                 ["test", str(INDEX_CASE), "--rules", str(bad)], ["explain", str(INDEX_CASE), "--rules", str(bad)]):
        result = CliRunner().invoke(app, args)
        assert (result.exit_code, result.stderr) == (2, wanted), args
    good = tmp_path / "pathway.json"  # a rule set in YAML syntax under a .json name still loads
    good.write_text((ROOT / "rules" / "report-pathway.yaml").read_text())
    assert check(good).exit_code == 0
    duplicate = tmp_path / "dup.json"  # valid JSON the YAML reader refuses keeps the YAML reader's error
    duplicate.write_text('{"ruleset": 1, "ruleset": 2}')
    assert "duplicate key 'ruleset'" in check(duplicate).stderr


def test_a_folder_with_nothing_to_check_says_what_was_looked_for(tmp_path):
    (tmp_path / "schema.json").write_text("{}", encoding="utf-8")
    result = check(tmp_path)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {tmp_path}: no files to check found (looked for *.yaml and *.yml files, "
                             "FHIR Bundle *.json files and Bulk Data folders of *.ndjson files, walking folders)\n")


def _with_expected(bundle: dict[str, Any], edit) -> dict[str, Any]:
    """The Bundle with its Patient's carried `expected` changed by `edit`."""
    bundle = json.loads(json.dumps(bundle))
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    ext = next(x for x in patient["extension"] if x["url"].endswith("scenario-fields"))
    fields = json.loads(ext["valueString"])
    edit(fields["expected"])
    ext["valueString"] = json.dumps(fields)
    return bundle


def test_expectations_a_bundle_carries_are_checked_against_the_rule_sets(tmp_path, index_bundle):
    """An exported scenario's `expected` travels in the Patient's scenario-fields; a misspelt rule
    id there passed `check` although `test` fails on it. The error names the Patient and its line."""
    def misspell(expected):
        expected["report-pathway"][1]["rule"] = "step2-plasma-exchang"
        expected["report-pathway"][2]["rule"] = "step3-ecmo-oxygen"

    bad = write_bundle(tmp_path / "bad.json", _with_expected(index_bundle, misspell))
    good = write_bundle(tmp_path / "good.json", index_bundle)
    result = check(bad, good)
    assert result.exit_code == 2
    line = next(i for i, e in enumerate(index_bundle["entry"]) if e["resource"]["resourceType"] == "Patient")
    assert result.stderr.strip() == (
        f"error: {bad}:{line + EXPORTED_INDEX_CASE_FIRST_ENTRY_LINE} (Patient/patient-index-case, extension "
        "scenario-fields: expected.report-pathway[1].rule): rule set report-pathway has no rule "
        "'step2-plasma-exchang', so this expectation checks nothing; did you mean 'step2-plasma-exchange'? "
        "(and 1 more problem)")
    assert f"ok: {good} (FHIR Bundle" in result.stdout


def test_a_bundle_expecting_a_rule_set_checked_beside_it_is_ok(tmp_path, index_bundle):
    """Expectations keyed by a rule set named in the same check are checked against it."""
    rules = tmp_path / "mine.yaml"
    rules.write_text((ROOT / "rules" / "report-pathway.yaml").read_text(encoding="utf-8")
                     .replace("id: report-pathway", "id: mine", 1), encoding="utf-8")

    def rekey(expected):
        expected["mine"] = expected.pop("report-pathway")

    bundle = write_bundle(tmp_path / "b.json", _with_expected(index_bundle, rekey))
    assert check(bundle).exit_code == 2  # `mine` is neither checked here nor shipped
    result = check(bundle, rules)
    assert result.exit_code == 0, result.output


def test_a_file_named_twice_or_also_in_a_folder_named_is_checked_once(tmp_path):
    """Found in review: `check x.yaml x.yaml` and `check . x.yaml` printed `ok:` twice for one file."""
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(INDEX_CASE, folder / "x.yaml")
    result = check(folder / "x.yaml", folder, folder / "x.yaml")
    assert result.exit_code == 0 and result.stdout.count("ok: ") == 1, result.output
