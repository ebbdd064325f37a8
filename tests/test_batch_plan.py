"""A batch's plan and its workers' loading: which files a variant reads (derives_from) and their
hashes, where a load error is reported, and what a file that cannot be read costs.

Most tests call the planner (escalation.batch.run.plan) and the worker's chunk function
(escalation.batch.work.replay_chunk) directly, in this process: the same code a Dask worker runs,
without a cluster. One test runs a local cluster of one worker, for the failed-chunk-then-resume
path that only the cluster reports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import INDEX_CASE, ROOT
from typer.testing import CliRunner

from escalation.batch import store, work
from escalation.batch.plan import (
    FhirInput,
    FileHash,
    InputFile,
    Manifest,
    Place,
    chunk_task,
    fhir_differences,
    first_difference,
    input_file,
    sha256_of,
)
from escalation.batch.run import plan, run_batch
from escalation.cli.app import app
from escalation.load import loading
from escalation.load.errors import InputError, UnreadableFile

runner = CliRunner()
SPO2_ONLY = ROOT / "scenarios" / "variants" / "spo2-only.yaml"
SHIPPED_LINK = "derives_from: ../index_case.yaml"


def _variant(folder: Path, link: str = "derives_from: base.yaml") -> Path:
    """folder/v.yaml, the shipped SpO2-only variant, deriving from folder/base.yaml (the index case)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(INDEX_CASE, folder / "base.yaml")
    text = SPO2_ONLY.read_text()
    assert SHIPPED_LINK in text
    (folder / "v.yaml").write_text(text.replace(SHIPPED_LINK, link))
    return folder / "v.yaml"


def _move_day_11_to_12(base: Path) -> None:
    """A real change to the base: its day-11 events move to day 12, and so does a decision point."""
    text = base.read_text()
    assert "    day: 11\n" in text
    base.write_text(text.replace("    day: 11\n", "    day: 12\n"))


def _chunk(manifest: Manifest) -> work.ChunkOutput:
    """Chunk 0 as a worker replays it (every test plan here has one chunk)."""
    assert manifest.chunking.chunks == 1
    return work.replay_chunk(chunk_task(manifest, 0, None))


def _plasma_exchange_days(output: work.ChunkOutput) -> list[int | None]:
    return [r.day for r in output.results if r.rule_id == "step2-plasma-exchange"]


# --- 1: an error in a base file names the base file and its line ---------------------------------

def test_an_error_in_the_file_a_variant_derives_from_names_that_file_at_its_line(tmp_path, monkeypatch):
    v = _variant(tmp_path / "in")
    base = v.parent / "base.yaml"
    lines = base.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("age_years:"))
    lines[at] = lines[at].split(":")[0] + ": -4"
    base.write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    planned = plan([Path("in/v.yaml")], None, [])
    output = _chunk(planned)
    [error] = output.errors
    assert (error.file, error.line, error.where) == ("in/base.yaml", at + 1, "patient.age_years")
    assert error.scenario_file == "in/v.yaml" and error.stage == "load"
    # named as the planner names it, by the variant's name as given, not by the worker's folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(work, "_SCENARIOS", work._Cache())  # load it again, here
    assert [e.file for e in _chunk(planned).errors] == ["in/base.yaml"]


def test_an_error_in_the_variant_itself_keeps_the_name_it_was_given(tmp_path, monkeypatch):
    v = _variant(tmp_path / "in")
    v.write_text(v.read_text() + "surprise: 1\n")
    monkeypatch.chdir(tmp_path)
    [error] = _chunk(plan([Path("in/v.yaml")], None, [])).errors
    assert (error.file, error.line) == ("in/v.yaml", len(v.read_text().splitlines()))
    assert "surprise" in error.message


def test_an_error_that_arises_in_the_variant_names_it_as_given_at_the_base_line(tmp_path):
    """A base part at fault only once merged (step 2 waits for a step 1 the variant removed) keeps
    the base's file and line, and names the variant as the batch was given it."""
    ref = InputFile(index=0, file="in/v.yaml", path="/abs/in/v.yaml", sha256="0")
    exc = InputError("/abs/in/base.yaml", "rule 'x' waits for step 1, which no rule has "
                     "(in /abs/in/v.yaml, which derives from this file)", 9, "rules[1].conditions[0].step_flagged")
    named = work._named(exc, ref)
    assert (named.file, named.line, named.where) == ("/abs/in/base.yaml", 9, "rules[1].conditions[0].step_flagged")
    assert named.message.endswith("(in in/v.yaml, which derives from this file)")
    own = work._named(InputError("/abs/in/v.yaml", "m", 3, "changes"), ref)
    assert (own.file, own.line, own.where, own.message) == ("in/v.yaml", 3, "changes", "m")


def test_a_base_a_worker_names_by_its_installed_path_is_renamed_as_the_batch_was_given_the_variant():
    """A worker loads each input by its absolute path, so the loader names a base outside the
    worker's folder by that path's folder (here the installed package's): the row names it from
    the name the batch was given, as `escalation check rules/v.yaml` would."""
    site = "/site-packages/escalation/shipped/rules"
    ref = InputFile(index=0, file="rules/v.yaml", path=f"{site}/v.yaml", sha256="0",
                    linked=[FileHash(file=f"{site}/report-pathway.yaml", sha256="0")])
    exc = InputError(f"{site}/report-pathway.yaml", f"m (in {site}/v.yaml, which derives from this file)", 9, "x")
    named = work._named(exc, ref)
    assert (named.file, named.message, named.line) == ("rules/report-pathway.yaml",
                                                       "m (in rules/v.yaml, which derives from this file)", 9)
    other = work._named(InputError("--set", "m"), ref)  # not a file it derives from: as named
    assert other.file == "--set"


# --- 2: the files a variant derives from are the loader's, hashed, and checked by the workers ---

LINKS = [
    "derives_from: base.yaml",
    "derives_from : base.yaml",
    "derives_from:\n  base.yaml",
    "derives_from: 'base.yaml'   # the index case",
    '"deriv\\x65s_from": base.yaml',
    '? "derives\\\n  _from"\n: base.yaml',
    "derives_from: ./sub/../base.yaml",
]


@pytest.mark.parametrize("link", LINKS)
def test_the_files_a_variant_derives_from_are_found_as_the_loader_finds_them(tmp_path, monkeypatch, link):
    v = _variant(tmp_path, link)
    (tmp_path / "sub").mkdir()
    read: list[Path] = []
    real = loading.read_yaml
    monkeypatch.setattr(loading, "read_yaml", lambda p, *name: (read.append(Path(p).resolve()), real(p, *name))[1])
    assert loading.load_scenario(v).scenario.id == "variant-spo2-only"
    base = (tmp_path / "base.yaml").resolve()
    assert read == [v.resolve(), base]
    assert input_file(0, v).linked == [FileHash(file=str(base), sha256=sha256_of(base))]


def test_a_chain_of_variants_is_followed_and_a_link_the_loader_refuses_is_not(tmp_path):
    v = _variant(tmp_path / "scenarios")
    v2 = v.parent / "v2.yaml"
    v2.write_text("derives_from: v.yaml\nscenario:\n  id: v2\n  title: a variant of a variant\n"
                  "  hypothetical: true\n  source: {section: Case presentation}\n")
    assert loading.load_scenario(v2).scenario.id == "v2"
    assert loading.derives_chain(v2) == [v.resolve(), (v.parent / "base.yaml").resolve()]
    (tmp_path / "outside.yaml").write_text(INDEX_CASE.read_text())
    v.write_text(v.read_text().replace("derives_from: base.yaml", "derives_from: ../outside.yaml"))
    with pytest.raises(InputError, match="lies outside"):
        loading.load_scenario(v)
    assert loading.derives_chain(v) == [] and input_file(0, v).linked == []


def test_resume_refuses_a_batch_whose_variant_base_has_changed(tmp_path):
    v = _variant(tmp_path / "in", "derives_from : base.yaml")
    out = tmp_path / "out"
    out.mkdir()
    store.write_manifest(out, plan([v], None, []))
    _move_day_11_to_12(v.parent / "base.yaml")
    result = runner.invoke(app, ["batch", str(v), "--resume", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 2, result.output
    assert "cannot resume" in result.stderr and "base.yaml, which it derives from" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and store.done_chunks(out) == set()


def test_a_base_changed_during_the_run_is_an_error_row_naming_it(tmp_path):
    v = _variant(tmp_path)
    base = tmp_path / "base.yaml"
    manifest = plan([v], None, [])
    original = base.read_text()
    _move_day_11_to_12(base)
    output = _chunk(manifest)
    [error] = output.errors
    assert error.file == str(base.resolve()) and "has changed since the batch was planned" in error.message
    assert [r.status for r in output.replays] == ["error"]
    base.write_text(original)  # back as planned: the verdict was not kept
    assert [r.status for r in _chunk(manifest).replays] == ["ok"]


def test_a_base_that_appears_during_the_run_is_an_error_row(tmp_path):
    v = _variant(tmp_path, "derives_from: later.yaml")
    manifest = plan([v], None, [])
    assert manifest.scenarios[0].linked == []  # no such file: loading v would say so
    shutil.copy(INDEX_CASE, tmp_path / "later.yaml")
    [error] = _chunk(manifest).errors
    assert error.file == str(v) and "now derives from" in error.message and "later.yaml" in error.message


def test_a_long_lived_worker_loads_a_variant_again_when_its_base_changes(tmp_path):
    v = _variant(tmp_path)
    assert _plasma_exchange_days(_chunk(plan([v], None, []))) == [11]
    _move_day_11_to_12(tmp_path / "base.yaml")  # the next batch, on the same worker process
    assert _plasma_exchange_days(_chunk(plan([v], None, []))) == [12]


# --- 3: a file that cannot be read fails the chunk and is never kept -----------------------------

@pytest.mark.parametrize("missing", ["v.yaml", "base.yaml"])
def test_a_file_that_cannot_be_read_fails_the_chunk_and_is_not_kept(tmp_path, missing):
    v = _variant(tmp_path)
    manifest = plan([v], None, [])
    gone = tmp_path / missing
    gone.rename(gone.with_suffix(".away"))  # e.g. the share is not mounted on this worker yet
    with pytest.raises(OSError, match="No such file|file not found"):
        _chunk(manifest)
    gone.with_suffix(".away").rename(gone)
    assert [r.status for r in _chunk(manifest).replays] == ["ok"]  # the same process, readable now


def test_a_file_the_loader_cannot_read_after_hashing_fails_the_chunk(tmp_path, monkeypatch):
    scenario = tmp_path / "a.yaml"
    shutil.copy(INDEX_CASE, scenario)
    manifest = plan([scenario], None, [])

    def unreadable(path: str, **_: object) -> None:
        raise UnreadableFile(path, "cannot read file: Input/output error")

    monkeypatch.setattr(work.api, "load_scenario", unreadable)
    with pytest.raises(OSError, match="Input/output error"):
        _chunk(manifest)
    monkeypatch.undo()
    assert [r.status for r in _chunk(manifest).replays] == ["ok"]


def test_an_unreadable_file_is_a_failed_chunk_that_resume_runs_again(tmp_path):
    scenario = tmp_path / "in" / "a.yaml"
    scenario.parent.mkdir()
    shutil.copy(INDEX_CASE, scenario)
    manifest, out = plan([scenario], None, []), tmp_path / "out"
    scenario.rename(scenario.with_suffix(".away"))  # e.g. the share is not mounted on the workers yet
    first = run_batch(manifest, out, workers=1)
    assert first.chunks_done == 0 and [f.index for f in first.failures] == [0]
    assert "FileNotFoundError" in first.failures[0].message and store.done_chunks(out) == set()
    scenario.with_suffix(".away").rename(scenario)
    again = run_batch(manifest, out, resume=True, workers=1)
    assert again.complete and again.failures == [] and again.replays_failed == 0


# --- 4: inputs are checked to be regular, readable files before they are hashed ------------------

@pytest.mark.parametrize("kind", ["device", "pipe"])
def test_an_input_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind):
    if kind == "device":
        path, problem = Path("/dev/zero"), "is a device, not a regular file"
    else:
        path, problem = tmp_path / "a.yaml", "is a pipe (FIFO), not a regular file"
        os.mkfifo(path)
    result = subprocess.run([sys.executable, "-m", "escalation", "batch", str(path), "--out", str(tmp_path / "o")],
                            check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: {path}: {problem}"
    assert not (tmp_path / "o").exists()


def test_an_input_that_cannot_be_read_is_one_line_and_exit_2(tmp_path):
    path = Path("/proc/self/mem")  # a regular file to stat, whose reading at 0 fails, even for root
    result = runner.invoke(app, ["batch", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {path}: cannot read file: Input/output error"
    with pytest.raises(InputError, match="cannot read file: Not a directory"):
        input_file(0, Path(INDEX_CASE) / "x.yaml")


def test_a_worker_of_another_version_fails_its_chunk_saying_so(tmp_path, monkeypatch):
    manifest = plan([INDEX_CASE], None, [])
    monkeypatch.setattr(work, "__version__", "0.0.0-elsewhere")
    with pytest.raises(RuntimeError, match=r"runs escalation 0\.0\.0-elsewhere, the batch was planned with"):
        _chunk(manifest)
    monkeypatch.undo()
    assert [r.status for r in _chunk(manifest).replays] == ["ok"]


def test_other_code_of_the_same_version_is_refused_by_a_worker_and_on_resume(tmp_path, monkeypatch):
    """Two copies that both say one version but differ (a development tree, another checkout) must not
    mix their replays in one batch: the manifest and each chunk carry a hash of the package."""
    from escalation.batch import plan as P

    manifest = plan([INDEX_CASE], None, [])
    assert manifest.code_sha256 == P.code_sha256() and len(manifest.code_sha256) == 64
    monkeypatch.setattr(work, "code_sha256", lambda: "0" * 64)
    with pytest.raises(RuntimeError, match="other code than the batch was planned with"):
        _chunk(manifest)
    monkeypatch.undo()
    other = manifest.model_copy(update={"code_sha256": "0" * 64})
    assert manifest.differences(other) == [f"written by other escalation code than this, though both are "
                                           f"{manifest.version} (their package files differ)"]
    assert manifest.differences(manifest) == []


def test_resume_knows_files_by_resolved_path_and_names_the_first_that_differs(tmp_path, monkeypatch):
    """The same files named another way (absolute, through `..`, from another folder) are the same
    plan; otherwise the difference names the first file that differs, and how."""
    (tmp_path / "sub").mkdir()
    for name in ("a", "b", "c", "d"):
        shutil.copy(INDEX_CASE, tmp_path / f"{name}.yaml")
    shutil.copy(ROOT / "rules" / "report-pathway.yaml", tmp_path / "r.yaml")
    shutil.copy(ROOT / "rules" / "report-pathway.yaml", tmp_path / "other.yaml")
    monkeypatch.chdir(tmp_path)

    def planned(*names: str, rules: str = "r.yaml") -> Manifest:
        return plan([Path(n) for n in names], [Path(rules)], [])

    then = planned("a.yaml", "b.yaml", "c.yaml")
    assert then.differences(planned(str(tmp_path / "a.yaml"), "./b.yaml", "sub/../c.yaml",
                                    rules=str(tmp_path / "r.yaml"))) == []
    monkeypatch.chdir(tmp_path / "sub")
    assert then.differences(planned("../a.yaml", "../b.yaml", "../c.yaml", rules="../r.yaml")) == []
    assert then.differences(planned("../a.yaml", "../c.yaml", rules="../r.yaml")) == [
        "the scenario files differ (3 then, 2 now): the first that differs is b.yaml, not among them now (removed)",
        "the chunking differs (3 replays in 1 chunks of 10 then, 2 replays in 1 chunks of 10 now)"]
    assert then.differences(planned("../a.yaml", "../b.yaml", "../d.yaml", "../c.yaml", rules="../r.yaml"))[0] == (
        "the scenario files differ (3 then, 4 now): the first that differs is ../d.yaml, new among them (added)")
    assert then.differences(planned("../a.yaml", "../c.yaml", "../b.yaml", rules="../r.yaml")) == [
        "the scenario files differ (3 then, 3 now): the first that differs is b.yaml, at place 2 then and 3 now "
        "(another order)"]
    assert then.differences(planned("../a.yaml", "../b.yaml", "../c.yaml", rules="../other.yaml")) == [
        "the rule set files differ (1 then, 1 now): the first that differs is r.yaml, not among them now (removed)"]
    (tmp_path / "b.yaml").write_text(INDEX_CASE.read_text() + "\n# edited\n")
    assert then.differences(planned("../a.yaml", "../b.yaml", "../c.yaml", rules="../r.yaml")) == [
        "scenario ../b.yaml has changed since the batch was planned"]


@pytest.mark.parametrize(("then", "now", "place"), [
    ("abc", "abc", None),
    ("abc", "ac", Place(1, "removed")),
    ("ac", "abc", Place(1, "added")),
    ("abc", "adc", Place(1, "replaced")),
    ("abc", "acb", Place(1, "moved", 2)),
    ("ab", "abc", Place(2, "added")),
    ("abc", "ab", Place(2, "removed")),
    # an input named twice, in either plan: the index past the end of the shorter is never read
    ("a", "aa", Place(1, "repeated now")),
    ("aa", "a", Place(1, "repeated then")),
    ("aab", "ab", Place(1, "repeated then")),
    ("ab", "aab", Place(1, "moved", 2)),
    ("", "a", Place(0, "added")),
    ("a", "", Place(0, "removed")),
])
def test_the_first_difference_of_two_orders_of_inputs_is_found_whatever_their_lengths(then, now, place):
    assert first_difference(list(then), list(now)) == place


def _fhir(number: int, path: str) -> FhirInput:
    return FhirInput(input=number, kind="export", file=path, path=path, imported=f"{number:02d}-bulk",
                     sha256="0")


def test_an_input_named_twice_in_one_plan_is_a_difference_said_in_words_not_an_index_error(tmp_path):
    """Once `batch bulk ./bulk` listed the export twice and a resume naming it once, or the other
    way round, raised IndexError; scenario and rule set files go through the same comparison."""
    bulk, again = str(tmp_path / "bulk"), f"{tmp_path}/./bulk"  # one folder, named two ways
    once, twice = [_fhir(1, bulk)], [_fhir(1, bulk), _fhir(2, again)]
    assert fhir_differences(once, twice) == [(again, "export", (
        "is named more than once now (again at place 2), and fewer times when the batch was planned"))]
    assert fhir_differences(twice, once) == [(again, "export", (
        "was named more than once when the batch was planned (again at place 2), and fewer times now"))]
    a = InputFile(index=0, file="a.yaml", path=str(tmp_path / "a.yaml"), sha256="0")
    manifest = plan([INDEX_CASE], None, [])
    one, two = (manifest.model_copy(update={"scenarios": s}) for s in ([a], [a, a.model_copy(update={"index": 1})]))
    assert one.differences(two) == ["the scenario files differ (1 then, 2 now): the first that differs is a.yaml, "
                                    "named more than once now (again at place 2) and fewer times then"]
    assert two.differences(one) == ["the scenario files differ (2 then, 1 now): the first that differs is a.yaml, "
                                    "named more than once then (again at place 2) and fewer times now"]


@pytest.mark.parametrize("old", [1, 2])
def test_a_batch_planned_with_a_previous_manifest_format_is_refused_on_resume_saying_so(tmp_path, old: int):
    """Format 2 records the FHIR inputs' hashes, format 3 the batch folder's path (a moved batch finds
    its imported files by it); a manifest of an older format has neither to resume by."""
    import json

    out = tmp_path / "out"
    out.mkdir()
    data = json.loads(plan([INDEX_CASE], None, []).model_dump_json())
    assert data.pop("manifest_format") == 3 and data.pop("folder") == ""
    if old == 1:
        assert data.pop("fhir_inputs") == []
    else:
        data["manifest_format"] = 2
    (out / "manifest.json").write_text(json.dumps(data))
    result = runner.invoke(app, ["batch", str(INDEX_CASE), "--resume", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 2, result.output
    news = ("it records the sha256 of each FHIR Bundle or Bulk Data export the batch imports; " if old == 1 else "") \
        + "it records the batch folder's path, by which a batch moved to another folder finds the scenario files it imported"
    assert result.stderr.strip() == (
        f"error: {out / 'manifest.json'}: cannot resume: its manifest is of format {old}, this escalation's of format 3 "
        f"({news}): it cannot be resumed by this escalation; start a new batch in another folder")
    assert store.done_chunks(out) == set()


def test_a_manifest_with_chunks_of_no_replays_is_refused_on_resume_not_divided_by(tmp_path):
    """A resume takes the planned chunk size; a manifest edited to chunks of 0 replays raised
    ZeroDivisionError, a traceback. It is a manifest this version cannot read, exit 2."""
    import json

    out = tmp_path / "out"
    out.mkdir()
    data = json.loads(plan([INDEX_CASE], None, []).model_dump_json())
    data["chunking"]["chunk_size"] = 0
    (out / "manifest.json").write_text(json.dumps(data))
    result = runner.invoke(app, ["batch", str(INDEX_CASE), "--resume", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {out / 'manifest.json'}: not a batch manifest this version can read")
    assert "Traceback" not in result.output and store.done_chunks(out) == set()
