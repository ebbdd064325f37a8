"""`escalation batch`: Dask workers, Parquet chunks, resume, load errors and the DuckDB summary.

Small inputs only (the shipped scenarios at a few grid points, a few dozen replays), so that each
test runs in seconds on two cores. The Dask scheduler and workers a test needs are started by the
test on 127.0.0.1, on free ports, and stopped by it.
"""

from __future__ import annotations

import json
import re
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT
from typer.testing import CliRunner

from escalation import api
from escalation.batch import store
from escalation.cli.app import app

runner = CliRunner()
SCENARIOS = ROOT / "scenarios"
GRID = "step3-ecmo-oi.oi_above=30:40:5"
CHUNK = "2"
BIN = Path(sys.executable).parent
N_SCENARIOS = len(api.scenario_files([SCENARIOS]))  # the shipped timelines, variants included
JOBS = N_SCENARIOS * 3  # one rule set, three grid points


def batch(out: Path, *extra: str, inputs: tuple[str, ...] = (str(SCENARIOS),)):
    return runner.invoke(app, ["batch", *inputs, "--grid", GRID, "--chunk-size", CHUNK, "--out", str(out), *extra])


def rows(out: Path, table: str = store.RESULTS) -> list[dict]:
    """Every row of a table over the done chunks, in a stable order."""
    parts = [store.part(out, table, i) for i in sorted(store.done_chunks(out))]
    found = [r for p in parts for r in pq.read_table(p).to_pylist()]
    return sorted(found, key=lambda r: json.dumps(r, sort_keys=True, default=str))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted batch on the default local cluster: what every other run must equal."""
    out = tmp_path_factory.mktemp("batch") / "reference"
    result = batch(out)
    assert result.exit_code == 0, result.output
    return out


def test_a_batch_writes_a_manifest_and_one_file_per_chunk_and_table(reference: Path):
    manifest = store.read_manifest(reference)
    assert manifest is not None and manifest.notice.startswith("RESEARCH REVIEW ONLY")
    assert manifest.chunking.jobs == JOBS and manifest.chunking.chunk_size == 2
    assert store.done_chunks(reference) == set(range(manifest.chunking.chunks))
    assert {s.sha256 for s in manifest.scenarios} and all(len(s.sha256) == 64 for s in manifest.scenarios)
    variants = [s for s in manifest.scenarios if "variants" in s.file]
    assert variants and all(s.linked and s.linked[0].file.endswith("index_case.yaml") for s in variants)
    replays = rows(reference, store.REPLAYS)
    assert sorted(r["job"] for r in replays) == list(range(JOBS))  # each replay once, none missing
    assert {r["status"] for r in replays} == {"ok"}
    found = rows(reference)
    meta = pq.read_schema(store.part(reference, store.RESULTS, 0)).metadata
    assert meta[b"notice"].startswith(b"RESEARCH REVIEW ONLY")
    assert {r["kind"] for r in found} == {"decision_point", "unflagged_action"}  # replays report both now
    assert {json.loads(r["grid"])["step3-ecmo-oi.oi_above"] for r in found} == {30.0, 35.0, 40.0}
    keys = [(r["job"], r["rule_id"], r["occurrence"]) for r in found if r["kind"] == "decision_point"]
    assert len(keys) == len(set(keys))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in reversed(procs):
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def test_a_dask_scheduler_and_two_workers_give_the_same_rows_as_the_local_cluster(reference, tmp_path):
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    with open(tmp_path / "dask.log", "w") as log:
        common = {"cwd": ROOT, "stdout": log, "stderr": subprocess.STDOUT}
        procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-dashboard"], **common)]
        try:
            for i in range(2):
                procs.append(subprocess.Popen(
                    [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                     "--no-dashboard", "--name", f"w{i}", "--death-timeout", "60",
                     "--local-directory", str(tmp_path / f"w{i}")], **common))
            with Client(address, timeout="60s") as client:
                client.wait_for_workers(2, timeout=120)
                assert sorted(w["nthreads"] for w in client.scheduler_info()["workers"].values()) == [1, 1]
            out = tmp_path / "on-scheduler"
            result = batch(out, "--scheduler", address)
            assert result.exit_code == 0, result.output
            assert rows(out) == rows(reference)
            assert rows(out, store.REPLAYS) == rows(reference, store.REPLAYS)
        finally:
            _stop(procs)


def _interrupted_run(out: Path) -> tuple[int, int]:
    """A batch in a subprocess, interrupted once two chunks are written; its exit status, and how
    many chunks were written when Ctrl-C was pressed."""
    cmd = [str(BIN / "escalation"), "batch", str(SCENARIOS), "--grid", GRID, "--chunk-size", CHUNK,
           "--workers", "1", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(store.done_chunks(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        written = len(store.done_chunks(out))
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C at a terminal: the whole process group
        _, err = proc.communicate(timeout=120)
        assert "error: interrupted" in err or proc.returncode == 0, err
        assert "Traceback" not in err, err
        return proc.returncode, written
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # any worker left behind
        except ProcessLookupError:
            pass


def test_an_interrupted_batch_resumes_to_the_same_rows_with_no_chunk_twice(reference, tmp_path):
    out = tmp_path / "interrupted"
    code, written = _interrupted_run(out)
    total = store.read_manifest(out).chunking.chunks
    done_before = store.done_chunks(out)
    print(f"interrupted with exit {code} after {len(done_before)} of {total} chunks ({written} when pressed)")
    assert done_before and code in (0, 130), (code, done_before)
    # a Ctrl-C pressed with chunks still to write stops the batch (SIGINT ignored, it ran to the end)
    assert code == 130 or written == total, (code, written, total)
    (out / store.RESULTS / ".part-000099.parquet.half.tmp").write_bytes(b"PAR1 half")  # a torn write
    result = batch(out, "--resume")
    assert result.exit_code == 0, result.output
    assert not list((out / store.RESULTS).glob(".*.tmp"))
    assert store.done_chunks(out) == set(range(total))
    assert rows(out) == rows(reference)
    assert sorted(r["job"] for r in rows(out, store.REPLAYS)) == list(range(JOBS))  # none twice, none missing


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def test_a_worker_killed_midway_costs_nothing(reference, tmp_path):
    """Dask's nanny starts a new worker and the scheduler runs the lost chunk again."""
    out = tmp_path / "killed"
    cmd = [str(BIN / "escalation"), "batch", str(SCENARIOS), "--grid", GRID, "--chunk-size", CHUNK,
           "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not store.done_chunks(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        workers = [c for c in children if "spawn_main" in _cmdline(c)]
        if proc.poll() is None and workers:
            os.kill(int(workers[0]), signal.SIGKILL)
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert rows(out) == rows(reference)
    assert sorted(r["job"] for r in rows(out, store.REPLAYS)) == list(range(JOBS))


def test_resume_refuses_changed_inputs_and_a_batch_folder_is_never_reused(tmp_path):
    from escalation.batch.run import plan_batch

    files = tmp_path / "in"
    shutil.copytree(SCENARIOS, files, ignore=shutil.ignore_patterns("literature"))
    out = tmp_path / "out"
    out.mkdir()
    store.write_manifest(out, plan_batch([files], None, [GRID], 2))
    again = batch(out, inputs=(str(files),))
    assert again.exit_code == 2 and "already holds a batch" in again.stderr
    (files / "index_case.yaml").write_text((files / "index_case.yaml").read_text() + "\n# edited\n")
    changed = batch(out, "--resume", inputs=(str(files),))
    assert changed.exit_code == 2
    assert "cannot resume" in changed.stderr and "index_case.yaml has changed" in changed.stderr
    assert len(changed.stderr.strip().splitlines()) == 1
    assert store.done_chunks(out) == set()
    fewer = batch(out, "--resume", inputs=(str(files / "index_case.yaml"),))
    assert fewer.exit_code == 2 and "the scenario files differ" in fewer.stderr
    assert re.search(r"the chunking differs \(\d+ replays in \d+ chunks of 2 then, 3 replays in 2 chunks of 2 now\)",
                     fewer.stderr), fewer.stderr
    nowhere = batch(tmp_path / "new", "--resume", inputs=(str(files),))
    assert nowhere.exit_code == 2 and nowhere.stderr == (f"error: {tmp_path / 'new'}: no such folder, so no batch to "
                                                         "resume; without --resume, the same command starts one\n")
    (tmp_path / "new").mkdir()
    empty = batch(tmp_path / "new", "--resume", inputs=(str(files),))
    assert empty.exit_code == 2 and "holds no batch to resume (no manifest.json)" in empty.stderr
    (tmp_path / "new").rmdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    full = batch(tmp_path / "full", inputs=(str(files),))
    assert full.exit_code == 2 and "is not empty" in full.stderr
    assert not (tmp_path / "new").exists() and [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]


def test_a_scenario_that_fails_to_load_is_an_error_row_and_the_others_go_on(tmp_path):
    good = tmp_path / "in"
    good.mkdir()
    shutil.copy(SCENARIOS / "index_case.yaml", good / "a.yaml")
    text = (SCENARIOS / "index_case.yaml").read_text()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("age_years:"))
    lines[at] = lines[at].split(":")[0] + ": -4"
    (good / "b-bad.yaml").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(good), "--workers", "1", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert f"1 of 2 replays failed (1 file, first {good / 'b-bad.yaml'})" in result.stderr  # not "1 files"
    assert "2 of 2 replays, 1 of them failed, in 1 of 1 chunks" in result.stderr  # not "wrote 2 of 2" alone
    errors = rows(out, store.ERRORS)
    assert len(errors) == 1
    assert errors[0]["file"].endswith("b-bad.yaml") and errors[0]["line"] == at + 1
    assert errors[0]["stage"] == "load" and errors[0]["scenario_file"].endswith("b-bad.yaml")
    assert {r["status"] for r in rows(out, store.REPLAYS)} == {"ok", "error"}
    assert {r["scenario_file"] for r in rows(out)} == {str(good / "a.yaml")}
    text = runner.invoke(app, ["batch", "summary", str(out)])
    assert text.exit_code == 0 and "b-bad.yaml:" in text.stdout and "[load; 1 replay]" in text.stdout


def _quartiles(lags: list[int]) -> tuple[float, float, float] | tuple[None, None, None]:
    if not lags:
        return None, None, None
    if len(lags) == 1:
        return float(lags[0]), float(lags[0]), float(lags[0])
    q1, q2, q3 = statistics.quantiles(lags, n=4, method="inclusive")
    return q2, q1, q3


def test_summary_numbers_equal_the_api_replays(reference):
    result = runner.invoke(app, ["batch", "summary", str(reference), "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["notice"].startswith("RESEARCH REVIEW ONLY") and summary["complete"]
    assert (summary["replays_ok"], summary["replays_failed"]) == (JOBS, 0)
    assert summary["shared_ids"] == []  # every shipped scenario has an id of its own
    expected: dict[tuple[int, str], dict] = {}
    files = api.scenario_files([SCENARIOS])
    for point, value in enumerate([30.0, 35.0, 40.0]):
        for f in files:
            r = api.replay(f, overrides={"step3-ecmo-oi.oi_above": value})
            for rule_id in {dp.rule_id for dp in r.decision_points}:
                e = expected.setdefault((point, rule_id), {"flagged": 0, "lags": [], "maxes": [], "dps": 0,
                                                           "none": 0, "escalation": False})
                e["flagged"] += 1
            for dp in r.decision_points:
                e = expected[(point, dp.rule_id)]
                e["dps"] += 1
                e["none"] += dp.actual_day is None
                e["escalation"] |= dp.kind == "escalation"
                if dp.lag_days is not None:
                    e["lags"].append(dp.lag_days)
                    e["maxes"].append(dp.lag_days_max)
    got = {(s["grid_point"], s["rule_id"]): s for s in summary["rules"]}
    assert set(got) == set(expected)
    for key, e in expected.items():
        s = got[key]
        no_action = e["none"] if e["escalation"] else None  # a watch or context rule proposes no action
        assert (s["replays"], s["flagged"], s["decision_points"], s["no_action"]) == (N_SCENARIOS, e["flagged"], e["dps"], no_action), key
        assert (s["lag_median"], s["lag_q1"], s["lag_q3"]) == pytest.approx(_quartiles(e["lags"])), key
        assert (s["lag_max_median"], s["lag_max_q1"], s["lag_max_q3"]) == pytest.approx(_quartiles(e["maxes"])), key
    assert {r["no_action"] is None for r in summary["rules"]} == {True, False}
    assert any(r["lag_max_median"] != r["lag_median"] for r in summary["rules"])  # rtx-redose: 0 to 120
    table = runner.invoke(app, ["batch", "summary", str(reference), "--width", "80"])
    assert table.exit_code == 0 and max(len(line) for line in table.stdout.splitlines()) <= 80
    assert "step3-ecmo-oi (3)" in table.stdout and "RESEARCH REVIEW ONLY" in table.stdout


def test_decision_rows_say_what_each_decision_point_rests_on(reference):
    """The flags of the replay's JSON travel into the rows: resting on a modelling assumption, on
    a condition that copies the index case, and on an index recomputed where the source reports
    another figure (the first things to question)."""
    found = sorted((r["rule_id"], r["day"], r["rests_on_assumption"], r["rests_on_case_specific"],
                    r["rests_on_disputed_value"])
                   for r in rows(reference) if r["kind"] == "decision_point" and r["grid_point"] == 0
                   and r["scenario_file"].endswith("/index_case.yaml"))
    replayed = api.replay(SCENARIOS / "index_case.yaml", overrides={"step3-ecmo-oi.oi_above": 30.0})
    assert found == sorted((d.rule_id, d.day, d.rests_on_assumption, d.rests_on_case_specific,
                            d.rests_on_disputed_value) for d in replayed.decision_points)
    assert {f[3] for f in found} == {True, False} and {f[4] for f in found} == {True, False}


@pytest.mark.parametrize("args, message", [
    (["--grid", "step3-ecmo-oi.nope=1:2:1"], "has no parameter 'nope'"),
    (["--grid", "step3-ecmo-oi.oi_above=30:40:5", "--grid", "step3-ecmo-oi.oi_above=1:2:1"], "more than once"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "one or the other"),
])
def test_bad_command_lines_are_one_line_and_exit_2(tmp_path, args, message):
    result = runner.invoke(app, ["batch", str(SCENARIOS / "index_case.yaml"), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_unflagged_actions_become_rows_and_the_summary_counts_them(tmp_path):
    """The hook for ReplayResult.unflagged_actions: read when the replay reports them."""
    from types import SimpleNamespace

    from escalation.batch import rows as R
    from escalation.batch.plan import chunk_task
    from escalation.batch.run import plan_batch
    from escalation.batch.summary import summarize, to_text

    manifest = plan_batch([SCENARIOS / "index_case.yaml"], None, [], None)
    out = tmp_path / "b"
    out.mkdir()
    store.write_manifest(out, manifest)
    job = chunk_task(manifest, 0, out).jobs[0]
    base = R.common(0, job)
    action = SimpleNamespace(code="MMF", event_id="mmf", day=40, day_latest=42, placements=["early", "late"])
    alone = SimpleNamespace(code="MMF", event_id="mmf2", day=50, day_latest=50, placements=["late"])
    result = SimpleNamespace(scenario=SimpleNamespace(id="index-case", hypothetical=False),
                             ruleset=SimpleNamespace(version="1.0.0"), unflagged_actions=[action, alone])
    found = R.unflagged_rows(base, result)
    assert [(r.kind, r.code, r.day, r.day_latest, r.rule_id, r.timing) for r in found] == \
        [("unflagged_action", "MMF", 40, 42, None, "range"), ("unflagged_action", "MMF", 50, 50, None, "late placement only")]
    replayed = R.ReplayRow(**base, status="ok", scenario_id="index-case", decision_points=0, unflagged_actions=1)
    store.write_chunk(out, 0, {store.RESULTS: R.to_table(found, R.ResultRow),
                               store.REPLAYS: R.to_table([replayed], R.ReplayRow),
                               store.ERRORS: R.to_table([], R.ErrorRow)})
    summary = summarize(out)
    assert [(u.code, u.replays, u.actions, u.one_placement) for u in summary.unflagged] == [("MMF", 1, 2, 1)]
    assert summary.rules == [] and summary.complete
    assert "MMF in 1 replay (2 actions, 1 of them under one timing placement only)" in to_text(summary, width=200)


def test_unflagged_rows_say_under_which_placements_as_the_replay_does(reference):
    """Found in a user trial: an action a rule flagged under the early placement alone (MMF on day
    40 of no-anti-mda5) was a row like any unflagged action, and the summary counted it as one."""
    found = sorted((r["code"], r["event_id"], r["timing"]) for r in rows(reference)
                   if r["kind"] == "unflagged_action" and r["grid_point"] == 0
                   and r["scenario_file"].endswith("no-anti-mda5.yaml"))
    replayed = api.replay(SCENARIOS / "variants" / "no-anti-mda5.yaml", overrides={"step3-ecmo-oi.oi_above": 30.0})
    assert found == sorted((a.code, a.event_id, "late placement only" if a.placements == ["late"] else
                            "early placement only" if a.placements == ["early"] else
                            "exact" if a.day == a.day_latest else "range") for a in replayed.unflagged_actions)
    assert any(t == "late placement only" for _, _, t in found)


# Asked of a worker as text: a function of this module would be sent by reference, and the
# worker would import this module, and pyarrow.parquet with it, to run it.
_IMPORTED = "tuple(m in __import__('sys').modules for m in ('escalation.batch.work', 'pyarrow.parquet'))"


@pytest.mark.parametrize(("parquet", "expected"), [(True, (True, True)), (False, (True, False))])
def test_local_workers_import_the_replay_code_as_they_start(parquet, expected):
    """The first chunk a worker gets costs what the others do: the worker has imported the replay
    code, and for a batch Parquet's writer, before any task reached it (a sweep writes no Parquet)."""
    from escalation.batch.run import dask_client

    with dask_client(2, parquet=parquet) as client:
        found = client.run(eval, _IMPORTED)
    assert len(found) == 2 and all(v == expected for v in found.values())


def test_the_summary_notes_files_that_share_a_scenario_id(tmp_path):
    """Two exports of one patient are two replays, each counted: the summary says so, naming the
    files, so that a cohort count is not read as one of distinct patients."""
    copy = tmp_path / "again" / "index_case.yaml"
    copy.parent.mkdir()
    shutil.copy(SCENARIOS / "index_case.yaml", copy)
    out = tmp_path / "b"
    result = runner.invoke(app, ["batch", str(SCENARIOS / "index_case.yaml"), str(copy), str(SCENARIOS / "variants"),
                                 "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(runner.invoke(app, ["batch", "summary", str(out), "--format", "json"]).stdout)
    assert summary["shared_ids"] == [{"scenario_id": "index-case",
                                      "files": sorted([str(SCENARIOS / "index_case.yaml"), str(copy)])}]
    step1 = next(r for r in summary["rules"] if r["rule_id"] == "step1-combination")
    assert step1["replays"] == N_SCENARIOS + 1
    text = runner.invoke(app, ["batch", "summary", str(out), "--width", "200"]).stdout
    assert "Note: 1 scenario id is given by more than one file" in text and str(copy) in text


def _synth(n: int, seed: int, out: str) -> None:
    result = runner.invoke(app, ["synth", str(n), "--seed", str(seed), "--out", out])
    assert result.exit_code == 0, result.output


def test_an_input_named_run_is_an_input_not_the_hidden_command(tmp_path, monkeypatch):
    """`batch INPUTS ...` runs a hidden command named `run`, and a first input named `run` was taken
    for it: `batch run other` replayed `other` alone and `batch run --out DIR` said INPUTS were
    missing (found in a user trial). Only `summary`, which the help names, is a command."""
    monkeypatch.chdir(tmp_path)
    _synth(2, 3, "run")
    _synth(1, 4, "other")
    result = runner.invoke(app, ["batch", "run", "other", "--out", "out/r1", "--workers", "1"])
    assert result.exit_code == 0, result.output
    files = [s.file for s in store.read_manifest(Path("out/r1")).scenarios]
    assert sorted(files) == ["other/synth-000001.yaml", "run/synth-000001.yaml", "run/synth-000002.yaml"]
    result = runner.invoke(app, ["batch", "run", "--out", "out/r3", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(s.file for s in store.read_manifest(Path("out/r3")).scenarios) == [
        "run/synth-000001.yaml", "run/synth-000002.yaml"]
    assert "6 of 6 replays" not in result.stderr and "2 of 2 replays" in result.stderr


def test_a_folder_named_summary_is_written_dot_slash_summary(tmp_path, monkeypatch):
    """`summary` given first is the command; the folder is replayed as ./summary, and a command line
    that reads as a batch of it (an option `batch summary` has not) says so."""
    monkeypatch.chdir(tmp_path)
    _synth(1, 5, "summary")
    result = runner.invoke(app, ["batch", "summary", "--out", "out/s", "--workers", "1"])
    assert result.exit_code == 2
    assert "write it ./summary (`escalation batch ./summary ...`)" in " ".join(result.output.split())
    assert not Path("out/s").exists()
    result = runner.invoke(app, ["batch", "./summary", "--out", "out/s", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert [s.file for s in store.read_manifest(Path("out/s")).scenarios] == ["summary/synth-000001.yaml"]
    result = runner.invoke(app, ["batch", "summary", "out/s"])
    assert result.exit_code == 0 and "1 of 1 chunks done, complete" in result.stdout


def test_the_same_files_named_another_way_resume_to_the_rows_of_an_uninterrupted_run(tmp_path, monkeypatch):
    """Files are the same input when their resolved path and content are: a resume from another
    folder, naming them by other paths, runs the missing chunks, and those record the names the
    batch was planned with, so every row equals the uninterrupted run's."""
    here = tmp_path / "here"
    (here / "s").mkdir(parents=True)
    (here / "r").mkdir()
    shutil.copy(SCENARIOS / "index_case.yaml", here / "s" / "index_case.yaml")
    variant = (SCENARIOS / "variants" / "spo2-only.yaml").read_text()
    assert "derives_from: ../index_case.yaml" in variant
    (here / "s" / "spo2-only.yaml").write_text(variant.replace("../index_case.yaml", "index_case.yaml"))
    shutil.copy(ROOT / "rules" / "report-pathway.yaml", here / "r" / "pathway.yaml")
    monkeypatch.chdir(here)
    first = runner.invoke(app, ["batch", "s", "--rules", "r/pathway.yaml", "--grid", GRID, "--chunk-size", CHUNK,
                                "--out", "out", "--workers", "1"])
    assert first.exit_code == 0, first.output
    out = here / "out"
    uninterrupted = {t: rows(out, t) for t in (store.RESULTS, store.REPLAYS)}
    assert store.read_manifest(out).chunking.chunks == 3
    for table in store.TABLES:
        store.part(out, table, 1).unlink()
    monkeypatch.chdir(tmp_path)
    resumed = runner.invoke(app, ["batch", str(here / "s"), "--rules", "here/s/../r/pathway.yaml", "--grid", GRID,
                                  "--chunk-size", CHUNK, "--out", "here/out", "--workers", "1", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "2 of 6 replays" not in resumed.stdout and store.done_chunks(out) == {0, 1, 2}
    assert {t: rows(out, t) for t in (store.RESULTS, store.REPLAYS)} == uninterrupted
    assert {r["scenario_file"] for r in uninterrupted[store.REPLAYS]} == {"s/index_case.yaml", "s/spo2-only.yaml"}


def test_the_default_rule_set_is_named_as_the_readme_names_it(reference):
    """Found in a user trial: with no --rules, ruleset_file held the installed package's path
    (site-packages/...), so rows pooled from two installs differed in that column."""
    manifest = store.read_manifest(reference)
    assert [r.file for r in manifest.rulesets] == ["rules/report-pathway.yaml"]
    assert {r["ruleset_file"] for r in rows(reference, store.REPLAYS)} == {"rules/report-pathway.yaml"}


def test_two_files_holding_one_rule_set_are_refused(tmp_path):
    """Found in a user trial: two copies of one rule set were replayed and counted together in
    the summary as one rule set ('14/16' for 8 scenarios)."""
    from escalation.batch.run import plan_batch
    from escalation.load.errors import InputError

    copy = tmp_path / "copy.yaml"
    shutil.copy(ROOT / "rules" / "report-pathway.yaml", copy)
    with pytest.raises(InputError, match="hold the same rule set .*: give one, or each scenario is counted twice"):
        plan_batch([SCENARIOS / "index_case.yaml"], [ROOT / "rules" / "report-pathway.yaml", copy], [])


def test_an_empty_scheduler_address_is_refused(tmp_path):
    """`--scheduler ""` ran on local workers without a word."""
    result = runner.invoke(app, ["batch", str(SCENARIOS / "index_case.yaml"), "--scheduler", "", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--scheduler: give the scheduler's address" in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_resume_takes_the_planned_chunk_size_and_another_one_is_refused_naming_it(tmp_path):
    """A resume with no --chunk-size was refused when the batch had been planned with one (15
    chunks of 7 then, 10 of 10 now): it now cuts the replays as planned. Another size is still
    refused, and the refusal names the option that resumes the batch."""
    from escalation.batch.run import plan_batch

    out = tmp_path / "out"
    out.mkdir()
    inputs = [str(SCENARIOS / "index_case.yaml")]
    store.write_manifest(out, plan_batch(inputs, None, [GRID], 2))
    args = ["batch", *inputs, "--grid", GRID, "--out", str(out), "--resume", "--workers", "1"]
    refused = runner.invoke(app, [*args, "--chunk-size", "3"])
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.strip().endswith("cannot resume: the chunking differs (3 replays in 2 chunks of 2 then, "
                                           "3 replays in 1 chunks of 3 now): give --chunk-size 2, as the batch "
                                           "was planned"), refused.stderr
    assert not store.done_chunks(out)
    resumed = runner.invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert store.done_chunks(out) == {0, 1} and store.read_manifest(out).chunking.chunk_size == 2
    other = runner.invoke(app, ["batch", *inputs, str(SCENARIOS / "variants" / "pe-responder.yaml"), "--grid", GRID,
                                "--out", str(out), "--resume", "--workers", "1"])
    assert other.exit_code == 2 and "chunks of 2 now)" in other.stderr and "--chunk-size" not in other.stderr


def test_summary_of_a_folder_that_does_not_exist_says_so(tmp_path):
    missing = runner.invoke(app, ["batch", "summary", str(tmp_path / "nonexist")])
    assert missing.exit_code == 2 and missing.stderr == (
        f"error: {tmp_path / 'nonexist'}: no such folder: give a batch folder, the --out DIR of `escalation batch`\n")
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["batch", "summary", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and empty.stderr == f"error: {tmp_path / 'empty'}: holds no batch (no manifest.json)\n"


def test_the_summary_tells_two_rule_sets_of_one_id_apart_in_the_order_given(tmp_path):
    """Two rule sets of one id and other content (allowed): the lines of actions no rule flagged
    named the id alone, the same line twice; and the tables came in the order of their hashes,
    not as the rule sets were given."""
    from escalation.batch.summary import summarize, to_text

    lower = tmp_path / "oi-35.yaml"
    text = (ROOT / "rules" / "report-pathway.yaml").read_text()
    assert text.count("        value: 40\n") == 1
    lower.write_text(text.replace("        value: 40\n", "        value: 35\n"))
    files = sorted([lower, ROOT / "rules" / "report-pathway.yaml"], key=lambda f: api.load_ruleset(f).content_hash(),
                   reverse=True)  # given so that the hashes' order is not the order given
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(SCENARIOS / "index_case.yaml"), "--rules", str(files[0]), "--rules",
                                 str(files[1]), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    given = [(r.id, r.content_hash) for r in store.read_manifest(out).rulesets]
    assert given[0][1] > given[1][1]
    summary = summarize(out)
    assert list(dict.fromkeys((r.ruleset_id, r.ruleset_content_hash) for r in summary.rules)) == given
    assert list(dict.fromkeys((u.ruleset_id, u.ruleset_content_hash) for u in summary.unflagged)) == given
    plain = to_text(summary, width=200)
    titles = [plain.index(f"report-pathway sha256:{h[:16]}: decision points") for _, h in given]
    assert titles == sorted(titles)
    lines = [line for line in plain.splitlines() if line.startswith("  - report-pathway ")]
    assert lines and len(set(lines)) == len(lines)
    assert lines[0].startswith(f"  - report-pathway sha256:{given[0][1][:16]} #0 (no overrides): ")
    assert lines[-1].startswith(f"  - report-pathway sha256:{given[1][1][:16]} #0 (no overrides): ")


def test_an_output_folder_inside_an_input_folder_with_fhir_input_is_refused(tmp_path):
    """Noticed while fixing a trial's findings: with DIR inside an export folder given as input,
    the batch's own manifest and imported files were read as the export's on --resume, which
    refused the unchanged batch. Nothing is written. A folder of YAML scenarios may hold DIR."""
    from conftest import ROOT as root

    export = tmp_path / "x"
    shutil.copytree(root / "tests" / "fixtures" / "fhir" / "bulk", export)
    result = runner.invoke(app, ["batch", str(export), "--out", str(export / "out"), "--workers", "1"])
    assert result.exit_code == 2 and f"lies inside the input folder {export}" in result.stderr
    assert not (export / "out").exists()
    plain = tmp_path / "y"
    plain.mkdir()
    shutil.copy(SCENARIOS / "index_case.yaml", plain)
    assert runner.invoke(app, ["batch", str(plain), "--out", str(plain / "out"), "--workers", "1"]).exit_code == 0
