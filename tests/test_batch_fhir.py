"""A FHIR Bulk Data export folder as a batch input: imported once into DIR/imported, then replayed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from escalation.batch.inputs import MARK
from escalation.cli import app

BULK = ROOT / "tests" / "fixtures" / "fhir" / "bulk"


def test_a_bulk_data_folder_is_imported_and_replayed(tmp_path: Path):
    out = tmp_path / "batch"
    result = CliRunner().invoke(app, ["batch", str(BULK), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    imported = sorted((out / "imported").glob("*/*.yaml"))
    assert imported, "no scenario was imported"
    assert (out / "imported" / "01-bulk" / "import-summary.json").is_file() and (out / "imported" / MARK).is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["scenarios"]) == len(imported)
    summary = CliRunner().invoke(app, ["batch", "summary", str(out), "--format", "json"])
    assert summary.exit_code == 0, summary.output
    again = CliRunner().invoke(app, ["batch", str(BULK), "--out", str(out), "--workers", "1", "--resume"])
    assert again.exit_code == 0, again.output  # the import is deterministic: the hashes still match


def test_an_unexpected_error_importing_one_bundle_is_its_error_row_and_the_chunk_goes_on(tmp_path: Path, monkeypatch):
    """A bug the import runs into on one Bundle's content (as the TypeError once raised for a
    date and a timestamp among encounter starts) is that file's load error, not the chunk's: the
    other scenarios of the chunk are replayed. A retry would fail the same way; only a file that
    cannot be read fails the chunk (tests/test_batch_plan.py)."""
    from escalation.batch import work
    from escalation.batch.plan import chunk_task
    from escalation.batch.run import plan
    from escalation.fhir import to_scenario

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.yaml").write_text((ROOT / "scenarios" / "index_case.yaml").read_text())
    (folder / "b.json").write_text((ROOT / "tests" / "fixtures" / "fhir" / "synthea_like.json").read_text())
    manifest = plan([folder], None, [])
    assert manifest.chunking.chunks == 1

    def broken(_value: object) -> object:
        raise TypeError("can't compare datetime.datetime to datetime.date")

    monkeypatch.setattr(to_scenario, "start_order", broken)
    output = work.replay_chunk(chunk_task(manifest, 0, None))
    assert sorted((Path(r.scenario_file).name, r.status) for r in output.replays) == [("a.yaml", "ok"),
                                                                                     ("b.json", "error")]
    (error,) = output.errors
    assert (Path(error.file).name, error.stage) == ("b.json", "load")
    assert error.message == "TypeError: can't compare datetime.datetime to datetime.date"
    assert output.results  # the index case's decision points


def _export(where: Path, drop: str | None = None) -> Path:
    """A copy of the Bulk Data fixture, without the records that mention `drop`."""
    where.mkdir(parents=True)
    for f in BULK.iterdir():
        lines = [line for line in f.read_text().splitlines() if drop is None or drop not in line]
        (where / f.name).write_text("\n".join(lines) + "\n")
    return where


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _batch(*args: str):
    return CliRunner().invoke(app, ["batch", *args, "--workers", "1"])


def test_a_refused_run_and_a_changed_export_leave_the_imported_scenarios_as_the_batch_planned(tmp_path: Path):
    out = tmp_path / "batch"
    first = _export(tmp_path / "a" / "export")
    assert _batch(str(first), "--out", str(out)).exit_code == 0
    planned = _files(out / "imported")
    other = _export(tmp_path / "b" / "export", drop="p-bronchiolitis")  # same folder name, one patient fewer
    refused = _batch(str(other), "--out", str(out))
    assert refused.exit_code == 2 and "already holds a batch" in refused.stderr
    assert _files(out / "imported") == planned  # the refused run imported nothing into DIR
    changed = _batch(str(other), "--out", str(out), "--resume")
    assert changed.exit_code == 2, changed.output
    line = changed.stderr.strip()
    assert line.startswith(f"error: {other}: cannot resume: this export is another input than the batch was planned "
                           f"with in its place, {first} (replaced)") and "\n" not in line, line
    assert line.endswith("or start a new batch in another folder"), line
    assert _files(out / "imported") == planned
    again = _batch(str(first), "--out", str(out), "--resume")
    assert again.exit_code == 0, again.output
    assert _files(out / "imported") == planned


def test_an_import_replaces_the_imported_folder_whole(tmp_path: Path):
    """Files left in DIR/imported by an attempt that stopped before its manifest are not replayed,
    and a staged import left by a run killed while importing is removed."""
    out = tmp_path / "batch"
    stale = out / "imported" / "01-export" / "fhir-p-gone.yaml"
    stale.parent.mkdir(parents=True)
    (out / "imported" / MARK).write_text("")  # the import of an attempt that stopped before its manifest
    stale.write_text((ROOT / "scenarios" / "index_case.yaml").read_text())  # a valid scenario, not in the export
    killed = out / ".imported.k1ll3d.tmp" / "imported" / "01-export" / "half.yaml"
    killed.parent.mkdir(parents=True)
    killed.write_text("scenario:\n")
    result = _batch(str(_export(tmp_path / "a" / "export")), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert not stale.exists() and not (out / ".imported.k1ll3d.tmp").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [Path(s["file"]).name for s in manifest["scenarios"]] == sorted(
        p.name for p in (out / "imported" / "01-export").glob("*.yaml"))
    assert all("p-gone" not in s["file"] for s in manifest["scenarios"])


def test_a_run_refused_by_the_lock_imports_nothing(tmp_path: Path):
    from escalation.batch.store import locked

    out = tmp_path / "batch"
    mine = out / "imported" / "01-export" / "being-read.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("# a file a running batch's workers read\n")
    (out / "imported" / MARK).write_text("")
    with locked(out):  # another run, writing into DIR now
        result = _batch(str(_export(tmp_path / "a" / "export")), "--out", str(out))
    assert result.exit_code == 2 and "another batch is writing into this folder now" in result.stderr
    assert _files(out / "imported") == {"01-export/being-read.yaml": b"# a file a running batch's workers read\n",
                                        MARK: b""}


def test_a_folder_named_imported_that_no_batch_wrote_is_never_replaced(tmp_path: Path):
    out = tmp_path / "study"
    own = {"hand-made.yaml": b"scenario:\n", "my-notes/notes.txt": b"mine\n"}
    for name, data in own.items():
        (out / "imported" / name).parent.mkdir(parents=True, exist_ok=True)
        (out / "imported" / name).write_bytes(data)
    result = _batch(str(_export(tmp_path / "a" / "export")), "--out", str(out))
    assert result.exit_code == 2 and "is not empty; a batch needs a new or empty folder" in result.stderr
    assert _files(out / "imported") == own


def test_a_resume_under_rule_sets_of_other_diagnoses_names_them_as_a_possible_cause(tmp_path: Path):
    """The Romero-Bueno set tests RP-ILD only: under the report pathway (JDM too) the same export
    imports with other days, and the refusal says the rule sets may be why, not only the export."""
    out, export = tmp_path / "batch", _export(tmp_path / "a" / "export")
    romero = str(ROOT / "rules" / "romero-bueno-2020.yaml")
    assert _batch(str(export), "--rules", romero, "--out", str(out)).exit_code == 0
    planned = _files(out / "imported")
    resumed = _batch(str(export), "--out", str(out), "--resume")
    assert resumed.exit_code == 2 and "or the rule sets' diagnoses, which choose day 0" in resumed.stderr
    assert _files(out / "imported") == planned


def test_an_export_inside_a_folder_named_is_refused_naming_it_not_left_out(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.yaml").write_text((ROOT / "scenarios" / "index_case.yaml").read_text())
    export = _export(data / "export")
    result = _batch(str(data), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"error: {data}: holds FHIR Bulk Data (NDJSON files) in {export}, which a "
                                     "batch reads only as an export folder named on its own: name that folder too")
    assert not (tmp_path / "out" / "manifest.json").exists()


def _scenario(path: Path, sid: str) -> Path:
    """The index case as another scenario id, at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((ROOT / "scenarios" / "index_case.yaml").read_text().replace("id: index-case", f"id: {sid}", 1))
    return path


def _scenario_ids(out: Path) -> list[str]:
    import pyarrow.parquet as pq

    from escalation.batch import store

    return sorted(r["scenario_id"] for i in store.done_chunks(out)
                  for r in pq.read_table(store.part(out, store.REPLAYS, i)).to_pylist())


def test_scenario_files_inside_an_export_folder_are_replayed_beside_its_patients(tmp_path: Path):
    """`check` lists an export folder holding YAML files as the export and each YAML file; a batch
    once imported the export and replayed none of the YAML files, exit status 0 (found in a user
    trial). Now each is replayed, at its top and in a subfolder, and a resume plans the same."""
    export, out, alone = _export(tmp_path / "mixed"), tmp_path / "batch", tmp_path / "alone"
    assert _batch(str(BULK), "--out", str(alone)).exit_code == 0
    top, below = _scenario(export / "top.yaml", "beside-top"), _scenario(export / "sub" / "below.yaml", "beside-below")
    shutil.copy(ROOT / "rules" / "report-pathway.yaml", export / "pathway.yaml")  # a rule set, as check says: not replayed
    result = _batch(str(export), "--out", str(out), "--chunk-size", "2")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["file"] for s in manifest["scenarios"]][-2:] == [str(below), str(top)]
    assert len(manifest["fhir_inputs"]) == 1 and sorted(p.name for p in (out / "imported").iterdir()) == [MARK,
                                                                                                         "01-mixed"]
    assert _scenario_ids(out) == sorted([*_scenario_ids(alone), "beside-below", "beside-top"])
    (out / "results" / "part-000000.parquet").unlink()
    resumed = _batch(str(export), "--out", str(out), "--resume")  # the chunk size planned is taken
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "manifest.json").read_text())["chunking"]["chunk_size"] == 2


def test_a_folder_holding_an_export_is_replayed_when_the_export_is_named_too(tmp_path: Path):
    """The refusal of a folder holding an export said to name the export too; doing so gave the
    same refusal. Now the folder's scenario files are replayed and the export imported once, its
    Bundle read by the import alone (not replayed again as a file of the folder). An export
    inside that is not named is still refused, naming it."""
    nest = tmp_path / "nest"
    _scenario(nest / "own.yaml", "own")
    export = _export(nest / "a" / "bulk")
    _scenario(export / "inside.yaml", "inside")
    refused = _batch(str(nest), "--out", str(tmp_path / "refused"))
    assert refused.exit_code == 2 and f"in {export}, which a batch reads only" in refused.stderr
    out, alone = tmp_path / "batch", tmp_path / "alone"
    assert _batch(str(BULK), "--out", str(alone)).exit_code == 0
    for order in ([nest, export], [export, nest]):
        out = tmp_path / f"batch-{order[0].name}"
        result = _batch(*map(str, order), "--out", str(out))
        assert result.exit_code == 0, result.output
        assert [f["file"] for f in json.loads((out / "manifest.json").read_text())["fhir_inputs"]] == [str(export)]
        assert _scenario_ids(out) == sorted([*_scenario_ids(alone), "inside", "own"])
    _cohort_bundle(export / "cohort.json")  # read by the export's import: its patients once, not twice
    other = _export(nest / "b" / "bulk")
    refused = _batch(str(nest), str(export), "--out", str(tmp_path / "refused"))
    assert refused.exit_code == 2 and f"in {other}, which a batch reads only" in refused.stderr
    out = tmp_path / "both"
    result = _batch(str(nest), str(export), str(other), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert _scenario_ids(out) == sorted([*_scenario_ids(alone), *_scenario_ids(alone), "inside", "own"])


@pytest.mark.parametrize("beside", [False, True])
def test_an_ndjson_file_named_is_refused_at_planning_naming_its_folder(tmp_path: Path, beside: bool):
    """It was planned, and failed only in the worker, as an error row; beside an export folder,
    whose import would be written into DIR first, it is refused before that too."""
    export = _export(tmp_path / "export")
    named = export / "Patient.000.ndjson"
    others = [str(BULK)] if beside else []
    result = _batch(*others, str(named), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"error: {named}: a FHIR Bulk Data NDJSON file is not a batch input: a Bulk Data "
                             f"export is given as its folder ({export}), whose NDJSON files the batch imports "
                             "together\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("blocked", ["data/more", "data", "export/more"])
def test_an_input_folder_with_a_subfolder_that_cannot_be_read_is_refused_naming_it_before_dir_is_touched(
        tmp_path: Path, unreadable, blocked: str):
    """Under a folder of scenarios or a Bulk Data export, or the folder named itself: the
    scenarios in it would be missing from the batch without a word."""
    data, export = tmp_path / "data", _export(tmp_path / "export")
    (data / "more").mkdir(parents=True)
    (data / "a.yaml").write_text((ROOT / "scenarios" / "index_case.yaml").read_text())
    (data / "more" / "b.yaml").write_text((ROOT / "scenarios" / "index_case.yaml").read_text())
    (export / "more").mkdir()
    unreadable(tmp_path / blocked)
    given = export if blocked.startswith("export") else data
    result = _batch(str(given), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {tmp_path / blocked}: cannot read folder: Permission denied\n"
    assert not (tmp_path / "out").exists()


def test_an_export_with_no_patient_to_replay_is_refused_naming_the_export(tmp_path: Path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "Patient.000.ndjson").write_text((BULK / "Patient.000.ndjson").read_text())  # no encounter: no day 0
    result = _batch(str(export), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {export}: no patient of this export can be a scenario ("), result.stderr


def test_a_batch_imports_an_export_to_the_same_bytes_as_import_fhir(tmp_path: Path):
    """One writer for both: the scenario files and import-summary.json (keys sorted) that `import
    fhir` writes for an export are those a batch writes for it, byte for byte."""
    out, alone = tmp_path / "batch", tmp_path / "alone"
    assert CliRunner().invoke(app, ["batch", str(BULK), "--out", str(out), "--workers", "1"]).exit_code == 0
    result = CliRunner().invoke(app, ["import", "fhir", str(BULK), "--out", str(alone),
                                      "--rules", str(ROOT / "rules" / "report-pathway.yaml")])
    assert result.exit_code == 0, result.output
    batch_files = {p.name: p.read_bytes() for p in (out / "imported" / "01-bulk").iterdir()}
    assert batch_files == {p.name: p.read_bytes() for p in alone.iterdir()}
    summary = (alone / "import-summary.json").read_text()
    assert summary == json.dumps(json.loads(summary), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_a_bundle_in_a_batch_says_in_its_replay_rows_what_its_import_left_out(tmp_path: Path):
    import pyarrow.parquet as pq

    from escalation.batch import store

    out = tmp_path / "batch"
    bundle = ROOT / "tests" / "fixtures" / "fhir" / "synthea_like.json"
    result = CliRunner().invoke(app, ["batch", str(bundle), str(ROOT / "scenarios" / "index_case.yaml"),
                                      "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    replays = [r for i in store.done_chunks(out) for r in pq.read_table(store.part(out, store.REPLAYS, i)).to_pylist()]
    notes = {r["scenario_id"]: r["fhir_import"] for r in replays}
    assert notes["index-case"] is None
    bundle_note = next(v for k, v in notes.items() if k.startswith("fhir-"))
    assert "day 0 is 2021-03-01" in bundle_note and "2 with no code or value that maps" in bundle_note


def test_a_patient_twice_in_an_export_is_replayed_once(tmp_path: Path):
    """The same Patient in two NDJSON files of the export is one patient (read once), not a
    second scenario that counts it twice in every cohort count."""
    export = _export(tmp_path / "export")
    (export / "Patient.001.ndjson").write_text((BULK / "Patient.000.ndjson").read_text().splitlines()[0] + "\n")
    result = _batch(str(export), "--out", str(tmp_path / "batch"))
    assert result.exit_code == 0, result.output
    once = _batch(str(BULK), "--out", str(tmp_path / "once"))
    assert once.exit_code == 0, once.output
    names = [sorted(p.name for p in (tmp_path / d / "imported").glob("*/*.yaml")) for d in ("batch", "once")]
    assert names[0] == names[1]
    summary = json.loads((tmp_path / "batch" / "imported" / "01-export" / "import-summary.json").read_text())
    assert summary["read_once"] == {"Patient": 1}


def _cohort_bundle(path: Path, export: Path = BULK, kind: str = "searchset") -> Path:
    """A Bundle of every resource of a Bulk Data export (its patients and their records)."""
    resources = [json.loads(line) for f in sorted(export.glob("*.ndjson")) for line in f.read_text().splitlines()
                 if line.strip()]
    path.write_text(json.dumps({"resourceType": "Bundle", "type": kind,
                                "entry": [{"resource": r} for r in resources]}, indent=1))
    return path


def _decision_points(out: Path) -> list[tuple[str, str, int | None]]:
    import pyarrow.parquet as pq

    from escalation.batch import store

    rows = [r for i in store.done_chunks(out) for r in pq.read_table(store.part(out, store.RESULTS, i)).to_pylist()]
    return sorted((r["scenario_id"], r["rule_id"], r["day"]) for r in rows if r["kind"] == "decision_point")


def test_a_bundle_of_several_patients_named_is_imported_per_patient_as_its_export_is(tmp_path: Path):
    """A research group's cohort as one searchset Bundle: imported into DIR/imported/NN-NAME as
    the same patients' Bulk Data export is, one replay per patient, with the same results."""
    bundle = _cohort_bundle(tmp_path / "cohort.json")
    out, bulk_out = tmp_path / "batch", tmp_path / "bulk"
    result = _batch(str(ROOT / "scenarios" / "index_case.yaml"), str(bundle), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert _batch(str(BULK), "--out", str(bulk_out)).exit_code == 0
    imported = sorted(p.name for p in (out / "imported" / "02-cohort").glob("*.yaml"))
    assert imported and imported == sorted(p.name for p in (bulk_out / "imported" / "01-bulk").glob("*.yaml"))
    assert (out / "imported" / "02-cohort" / "import-summary.json").is_file() and (out / "imported" / MARK).is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["scenarios"]) == len(imported) + 1 and manifest["chunking"]["jobs"] == len(imported) + 1
    points = _decision_points(out)
    assert [p for p in points if p[0] != "index-case"] == _decision_points(bulk_out)
    assert any(p[0] == "index-case" for p in points)
    assert _batch(str(ROOT / "scenarios" / "index_case.yaml"), str(bundle), "--out", str(out),
                  "--resume").exit_code == 0  # the import is deterministic


def test_a_resume_after_the_bundle_changed_is_refused_naming_it(tmp_path: Path):
    bundle, out = _cohort_bundle(tmp_path / "cohort.json"), tmp_path / "batch"
    assert _batch(str(bundle), "--out", str(out)).exit_code == 0
    planned = _files(out / "imported")
    _cohort_bundle(bundle, _export(tmp_path / "fewer", drop="p-bronchiolitis"))
    changed = _batch(str(bundle), "--out", str(out), "--resume")
    assert changed.exit_code == 2, changed.output
    line = changed.stderr.strip()
    assert line.startswith(f"error: {bundle}: cannot resume: this Bundle has changed since the batch was planned") \
        and "\n" not in line, line
    assert _files(out / "imported") == planned


def test_a_bundle_of_several_patients_in_a_folder_named_is_an_error_row_that_says_to_name_it(tmp_path: Path):
    """Only an input named on its own is imported (as an export is read only when its folder is
    named): found by walking a folder, a cohort Bundle is a scenario file that fails, as its own
    error row saying what to do; `batch --help` says so."""
    import pyarrow.parquet as pq

    from escalation.batch import store

    help_text = " ".join(CliRunner().invoke(app, ["batch", "--help"]).stdout.split())
    assert "a Bundle of several patients or an export folder, named on its own, is imported" in help_text
    assert "in a folder named, only Bundles of one patient each" in help_text
    patients = [json.loads(line) for line in (BULK / "Patient.000.ndjson").read_text().splitlines()]
    folder = tmp_path / "data"
    folder.mkdir()
    bundle = folder / "several.json"
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": p} for p in patients]}))
    out = tmp_path / "batch"
    result = _batch(str(folder), "--out", str(out))
    assert result.exit_code == 1, result.output
    assert not (out / "imported").exists()
    (error,) = [r for i in store.done_chunks(out) for r in pq.read_table(store.part(out, store.ERRORS, i)).to_pylist()]
    assert error["message"].startswith(f"holds {len(patients)} patient(s) and gives 0 scenario(s); replay takes one "
                                       "patient's Bundle (so do test, sweep and the others, and batch when it finds "
                                       "one in a folder; named on its own, batch imports it): `escalation "
                                       f"import fhir {bundle} --out DIR` writes one scenario file per patient, "
                                       "to name instead")


def test_a_bundle_named_that_cannot_be_parsed_fails_as_before(tmp_path: Path):
    """Counting a Bundle's patients at planning changes nothing for a Bundle that cannot be read
    as JSON: it is a scenario input as before, with the parser's error as its error row."""
    import pyarrow.parquet as pq

    from escalation.batch import store

    bundle = tmp_path / "broken.json"
    bundle.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [')
    out = tmp_path / "batch"
    result = _batch(str(bundle), "--out", str(out))
    assert result.exit_code == 1, result.output
    assert not (out / "imported").exists()
    (error,) = [r for i in store.done_chunks(out) for r in pq.read_table(store.part(out, store.ERRORS, i)).to_pylist()]
    assert Path(error["file"]).name == "broken.json"


def _organization() -> dict:
    return {"resourceType": "Organization", "id": "org-trial", "name": "A hospital of the trial"}


def test_a_bundle_changed_in_a_way_that_imports_the_same_scenarios_is_still_refused_on_resume(tmp_path: Path):
    """The manifest records each FHIR input imported, by name and hash: a cohort Bundle that gained
    an Organization (no scenario file changes, its import summary does) is refused on --resume,
    naming it, before anything is imported."""
    import hashlib

    bundle, out = _cohort_bundle(tmp_path / "cohort.json"), tmp_path / "batch"
    assert _batch(str(bundle), "--out", str(out)).exit_code == 0
    (recorded,) = json.loads((out / "manifest.json").read_text())["fhir_inputs"]
    assert recorded == {"input": 1, "kind": "Bundle", "file": str(bundle), "path": str(bundle),
                        "imported": "01-cohort", "sha256": hashlib.sha256(bundle.read_bytes()).hexdigest()}
    planned = _files(out / "imported")
    data = json.loads(bundle.read_text())
    data["entry"].append({"resource": _organization()})
    bundle.write_text(json.dumps(data, indent=1))
    changed = _batch(str(bundle), "--out", str(out), "--resume")
    assert changed.exit_code == 2, changed.output
    line = changed.stderr.strip()
    assert line.startswith(f"error: {bundle}: cannot resume: this Bundle has changed since the batch was planned "
                           f"(sha256 {recorded['sha256'][:12]}... then, ") and "\n" not in line, line
    assert line.endswith("start a new batch in another folder"), line
    assert _files(out / "imported") == planned


def test_an_export_with_a_file_added_renamed_or_changed_is_refused_on_resume_naming_it(tmp_path: Path):
    from escalation.batch.inputs import fhir_sha256

    export, out = _export(tmp_path / "export"), tmp_path / "batch"
    assert _batch(str(export), "--out", str(out)).exit_code == 0
    (recorded,) = json.loads((out / "manifest.json").read_text())["fhir_inputs"]
    assert (recorded["kind"], recorded["file"], recorded["sha256"]) == ("export", str(export), fhir_sha256(export))
    planned = _files(out / "imported")
    device = export / "Device.000.ndjson"
    text = device.read_text()
    changes = [
        (lambda: (export / "Organization.000.ndjson").write_text(json.dumps(_organization()) + "\n"),
         lambda: (export / "Organization.000.ndjson").unlink()),
        (lambda: device.rename(export / "Device.001.ndjson"), lambda: (export / "Device.001.ndjson").rename(device)),
        (lambda: device.write_text(text + json.dumps(_organization()) + "\n"), lambda: device.write_text(text)),
    ]
    for change, undo in changes:
        change()
        resumed = _batch(str(export), "--out", str(out), "--resume")
        assert resumed.exit_code == 2, resumed.output
        assert resumed.stderr.startswith(f"error: {export}: cannot resume: this export has changed since the batch "
                                         "was planned"), resumed.stderr
        assert _files(out / "imported") == planned
        undo()
    assert fhir_sha256(export) == recorded["sha256"]
    completion = export / "manifest.json"  # the Bulk Data completion manifest is not read, nor hashed
    completion.write_text(completion.read_text().replace("2024-02-01T12:00:00Z", "2024-03-01T12:00:00Z"))
    assert fhir_sha256(export) == recorded["sha256"]


def test_a_cohort_bundle_named_another_way_from_another_folder_resumes_to_the_same_rows(tmp_path: Path, monkeypatch):
    import pyarrow.parquet as pq

    from escalation.batch import store

    _cohort_bundle(tmp_path / "cohort.json")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _batch("cohort.json", "--out", "batch", "--chunk-size", "1").exit_code == 0
    out = tmp_path / "batch"

    def rows() -> list[dict]:
        return sorted((r for i in store.done_chunks(out) for r in pq.read_table(store.part(out, store.REPLAYS, i))
                       .to_pylist()), key=lambda r: json.dumps(r, sort_keys=True, default=str))

    uninterrupted = rows()
    assert uninterrupted and all(r["scenario_file"].startswith("batch/imported/01-cohort/") for r in uninterrupted)
    for table in store.TABLES:
        store.part(out, table, 1).unlink()
    monkeypatch.chdir(tmp_path / "elsewhere")
    resumed = _batch(str(tmp_path / "cohort.json"), "--out", "../batch", "--chunk-size", "1", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert rows() == uninterrupted


def test_an_export_named_twice_is_imported_and_replayed_once_and_a_resume_naming_it_twice_completes(
        tmp_path: Path, monkeypatch):
    """`bulk ./bulk` is one export, as `x.yaml ./x.yaml` is one scenario: imported once (01-bulk),
    each patient replayed once. A resume naming it twice once raised IndexError, comparing a plan
    of one export with a plan of two."""
    export = _export(tmp_path / "bulk")
    monkeypatch.chdir(tmp_path)
    assert _batch("bulk", "--out", "once").exit_code == 0
    twice = _batch("bulk", "./bulk", str(export), "--out", "twice")
    assert twice.exit_code == 0, twice.output
    assert sorted(p.name for p in (tmp_path / "twice" / "imported").iterdir()) == [MARK, "01-bulk"]
    plans = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("once", "twice")]
    assert [len(m["fhir_inputs"]) for m in plans] == [1, 1]
    assert plans[0]["chunking"] == plans[1]["chunking"]
    for table in ("results", "replays"):
        (tmp_path / "once" / table / "part-000000.parquet").unlink()
    resumed = _batch("bulk", "./bulk", "--out", "once", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "Traceback" not in resumed.output and (tmp_path / "once" / "results" / "part-000000.parquet").is_file()


def test_an_export_resumed_through_a_link_or_as_dot_imports_where_it_was_planned(tmp_path: Path, monkeypatch):
    """The same folder named through a symbolic link, or as `.` from inside it, is the same input
    (README: a resume may name the inputs another way): it is imported again into the folder the
    manifest lists (01-bulk), not 01-link or 01-, and the resume completes the batch. A new batch
    of `.` names its import by the folder's own name."""
    export = _export(tmp_path / "bulk")
    (tmp_path / "link").symlink_to(export, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    assert _batch("bulk", "--out", "out", "--chunk-size", "1").exit_code == 0
    planned = _files(tmp_path / "out" / "imported")
    for how, folder in ((["link"], tmp_path), (["."], export)):
        (tmp_path / "out" / "results" / "part-000001.parquet").unlink()
        monkeypatch.chdir(folder)
        resumed = _batch(*how, "--out", str(tmp_path / "out"), "--chunk-size", "1", "--resume")
        assert resumed.exit_code == 0, (how, resumed.output)
        assert _files(tmp_path / "out" / "imported") == planned
        assert (tmp_path / "out" / "results" / "part-000001.parquet").is_file()
    monkeypatch.chdir(export)
    fresh = _batch(".", "--out", str(tmp_path / "fresh"))
    assert fresh.exit_code == 0, fresh.output
    assert sorted(p.name for p in (tmp_path / "fresh" / "imported").iterdir()) == [MARK, "01-bulk"]


@pytest.mark.parametrize("how", ["moved", "copied"])
def test_a_batch_folder_moved_or_copied_resumes_reading_its_imported_files_where_it_is_now(tmp_path: Path, how: str):
    """A resume compared the imported scenario files by their absolute paths, under the folder the
    batch was planned in, and refused a moved batch saying the export had changed (found in a user
    trial). They are compared by their place in DIR, and the workers read them in DIR where it is
    now: the copy left behind, changed, is not read. A real change is still refused, saying so."""
    import shutil

    export, first = _export(tmp_path / "bulk"), tmp_path / "first"
    romero = str(ROOT / "rules" / "romero-bueno-2020.yaml")
    assert _batch(str(export), "--rules", romero, "--out", str(first), "--chunk-size", "1").exit_code == 0
    uninterrupted = _replay_rows(first)
    (first / "results" / "part-000001.parquet").unlink()
    out = tmp_path / "elsewhere" / "second"
    out.parent.mkdir()
    if how == "moved":
        first.rename(out)
    else:
        shutil.copytree(first, out, symlinks=True)
        for left in (first / "imported" / "01-bulk").glob("*.yaml"):  # not what the batch planned: not read
            left.write_text(left.read_text() + "# changed in the copy left behind\n")
    planned = _files(out / "imported")
    other = _batch(str(export), "--out", str(out), "--chunk-size", "1", "--resume")  # other diagnoses
    assert other.exit_code == 2 and "now imports to other scenario files than the batch was planned with " \
        "(different: fhir-" in other.stderr and "new:" not in other.stderr, other.stderr
    assert _files(out / "imported") == planned
    resumed = _batch(str(export), "--rules", romero, "--out", str(out), "--chunk-size", "1", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert _replay_rows(out) == uninterrupted and _files(out / "imported") == planned


def _replay_rows(out: Path) -> list[str]:
    """The replay rows of a batch, each as sorted JSON: a resumed batch's are those of an uninterrupted run."""
    import pyarrow.parquet as pq

    from escalation.batch import store

    return sorted(json.dumps(r, sort_keys=True, default=str) for i in store.done_chunks(out)
                  for r in pq.read_table(store.part(out, store.REPLAYS, i)).to_pylist())
