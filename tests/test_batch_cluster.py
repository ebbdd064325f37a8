"""`escalation batch` when the cluster lets it down: a scheduler lost mid-run, a scheduler with no
worker, a worker that writes where DIR is not, and Ctrl-C while local workers start.

Each ends in bounded time with a clear line and a non-zero exit, and `--resume` completes the
batch. The Dask schedulers and workers are started here on 127.0.0.1, on free ports, and stopped
here; a worker is made slow, or made to write elsewhere, by a preload file (Dask imports it in the
worker as it starts). A command that could hang runs in a subprocess, under a time limit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT
from typer.testing import CliRunner

from escalation.batch import store
from escalation.cli.app import app

BIN = Path(sys.executable).parent
SCENARIO = ROOT / "scenarios" / "index_case.yaml"
ARGS = [str(SCENARIO), "--grid", "step3-ecmo-oi.oi_above=30:59:1", "--chunk-size", "1"]  # 30 chunks
CHUNKS = 30  # more than a run keeps in flight, so that some wait to be submitted
LIMIT = 90  # seconds: a command that takes longer than this hangs
# The preloads replace run_chunk in the worker, where the client's task is looked up by name; Dask
# may run a preload file twice in one process, so the original is kept on the module, once.
SLOW = """
import time
import escalation.batch.work as work

original = work.__dict__.setdefault("original_run_chunk", work.run_chunk)

def run_chunk(task):
    time.sleep(0.3)
    return original(task)

work.run_chunk = run_chunk
"""
ELSEWHERE = """
import escalation.batch.work as work

original = work.__dict__.setdefault("original_run_chunk", work.run_chunk)

def run_chunk(task):  # as a worker whose file system has its own folder at DIR's path
    return original(task.model_copy(update={{"out": {elsewhere!r}}}))

work.run_chunk = run_chunk
"""


def rows(out: Path) -> list[dict]:
    """Every result row over the done chunks, in a stable order."""
    found = [r for i in sorted(store.done_chunks(out)) for r in pq.read_table(store.part(out, store.RESULTS, i)).to_pylist()]
    return sorted(found, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dask_cluster(tmp_path: Path, workers: int = 1, preload: str | None = None) -> Iterator[tuple[str, list]]:
    """A `dask scheduler` and `workers` single-thread workers (each with `preload`, the text of a
    module), all stopped on the way out; yields the address and the processes, scheduler first."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    extra = []
    if preload is not None:
        (tmp_path / "preload_for_test.py").write_text(preload)
        extra = ["--preload", str(tmp_path / "preload_for_test.py")]
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115 - closed below
    common = {"cwd": ROOT, "stdout": log, "stderr": subprocess.STDOUT, "start_new_session": True}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], **common)]
    try:
        for i in range(workers):
            procs.append(subprocess.Popen(
                [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                 "--name", f"w{i}", "--local-directory", str(tmp_path / f"w{i}"), *extra], **common))
        with Client(address, timeout="60s") as client:
            if workers:
                client.wait_for_workers(workers, timeout=120)
        yield address, procs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=20)
        log.close()


def _run(args: list[str], code: str = "") -> subprocess.Popen:
    """`escalation ARGS` in a subprocess of its own process group, after the Python `code`."""
    main = f"{code}\nfrom escalation.cli.app import app\napp()"
    return subprocess.Popen([sys.executable, "-c", main, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str, float]:
    """The exit status and standard error of `proc`, and how long it took to end from now; it is
    killed, with its process group, if it takes longer than LIMIT."""
    t0 = time.monotonic()
    try:
        _, err = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"still running {LIMIT} s later: it hangs")
    return proc.returncode, err, time.monotonic() - t0


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The batch uninterrupted, on one local worker."""
    out = tmp_path_factory.mktemp("cluster") / "reference"
    result = CliRunner().invoke(app, ["batch", *ARGS, "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_a_lost_scheduler_ends_the_run_with_exit_1_and_resume_completes_it(reference, tmp_path):
    out = tmp_path / "out"
    with dask_cluster(tmp_path, preload=SLOW) as (address, procs):
        proc = _run(["batch", *ARGS, "--scheduler", address, "--out", str(out)])
        deadline = time.monotonic() + LIMIT
        while len(store.done_chunks(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the batch ended before the scheduler could be killed"
        os.killpg(procs[0].pid, signal.SIGKILL)
        code, err, took = _finish(proc)
    print(err)
    assert code == 1, err
    assert "connection to the Dask scheduler" in err and "was lost" in err and "--resume" in err, err
    assert "Traceback" not in err and took < 60, (took, err)
    missing = re.search(rf"(\d+) of {CHUNKS} chunks are missing in {re.escape(str(out))}", err)
    # the worker may finish the chunk it had begun after the command ended: no more than that
    assert missing and 0 < CHUNKS - len(store.done_chunks(out)) <= int(missing.group(1)), err
    resumed = CliRunner().invoke(app, ["batch", *ARGS, "--workers", "1", "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert store.done_chunks(out) == set(range(CHUNKS))
    assert rows(out) == rows(reference)


def test_a_scheduler_with_no_worker_says_so_instead_of_waiting_for_ever(tmp_path):
    out = tmp_path / "out"
    with dask_cluster(tmp_path, workers=0) as (address, _):
        proc = _run(["batch", *ARGS, "--scheduler", address, "--out", str(out)],
                    "import escalation.batch.run as run\nrun.NO_WORKERS_SECONDS = 2")
        code, err, _ = _finish(proc)
    assert code == 1, err
    assert f"has had no worker for 2 s; start workers with `dask worker {address}" in err, err
    assert f"{CHUNKS} of {CHUNKS} chunks are missing" in err and "--resume" in err


def test_a_chunk_a_worker_wrote_outside_dir_is_missing_and_the_exit_is_1(reference, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "worker-side"
    with dask_cluster(tmp_path, preload=ELSEWHERE.format(elsewhere=str(elsewhere))) as (address, _):
        result = CliRunner().invoke(app, ["batch", *ARGS, "--scheduler", address, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert store.done_chunks(out) == set() and store.done_chunks(elsewhere) == set(range(CHUNKS))
    line = result.stderr.strip().splitlines()[-1]
    assert f"{CHUNKS} of {CHUNKS} chunks are missing in {out}" in line, line
    assert f"wrote it outside {out}" in line and "every worker must see" in line and "--resume" in line, line
    resumed = CliRunner().invoke(app, ["batch", *ARGS, "--workers", "1", "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert rows(out) == rows(reference)


INTERRUPT_AT_START = """
import os, signal
import distributed

class StartedThenInterrupted(distributed.LocalCluster):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        os.killpg(0, signal.SIGINT)  # Ctrl-C at a terminal, as the workers come up: the whole group

distributed.LocalCluster = StartedThenInterrupted
"""


def test_ctrl_c_while_local_workers_start_stops_the_batch_and_no_worker_prints_a_traceback(tmp_path):
    out = tmp_path / "out"
    proc = _run(["batch", *ARGS, "--workers", "2", "--out", str(out)], INTERRUPT_AT_START)
    code, err, _ = _finish(proc)
    assert code == 130, err
    assert f"error: interrupted before the batch started: no manifest and no chunk is written in {out}" in err, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not (out / "manifest.json").exists() and not store.done_chunks(out)  # the same command runs it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the cluster was shut down: nothing of it is left
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("processes of the interrupted batch are still running")


def test_a_scheduler_that_cannot_be_reached_leaves_dir_as_it_was(tmp_path, monkeypatch):
    """No manifest is written before the cluster answers, so the corrected command is the same
    command, not a --resume."""
    from escalation.batch import run

    monkeypatch.setattr(run, "CONNECT_SECONDS", 1)
    out = tmp_path / "out"
    with socket.socket() as closed:  # a free port on which nothing listens
        closed.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
    result = CliRunner().invoke(app, ["batch", *ARGS, "--scheduler", address, "--out", str(out)])
    assert result.exit_code == 2 and f"cannot reach a Dask scheduler at {address}" in result.stderr, result.output
    assert not (out / "manifest.json").exists()
    again = CliRunner().invoke(app, ["batch", *ARGS, "--workers", "1", "--out", str(out)])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("kind", ["silent", "tls"])
def test_a_scheduler_address_that_never_answers_or_needs_tls_is_one_line(tmp_path, monkeypatch, kind):
    """A port that accepts and stays silent once hung the batch for good; tls:// with no TLS
    settings was a traceback."""
    import threading

    from escalation.batch import run

    monkeypatch.setattr(run, "CONNECT_SECONDS", 1)
    out = tmp_path / "out"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        accepted: list[socket.socket] = []
        threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
        address = f"{'tcp' if kind == 'silent' else 'tls'}://127.0.0.1:{listener.getsockname()[1]}"
        t0 = time.monotonic()
        result = CliRunner().invoke(app, ["batch", *ARGS, "--scheduler", address, "--out", str(out)])
        took = time.monotonic() - t0
        for conn in accepted:
            conn.close()
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: --scheduler: cannot reach a Dask scheduler at {address}: "), result.stderr
    assert len(result.stderr.splitlines()) == 1 and took < 30, (took, result.stderr)
    assert not (out / "manifest.json").exists()
