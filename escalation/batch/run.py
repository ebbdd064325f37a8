"""Running a batch: plan it, then run its missing chunks on Dask (or, for a small sweep, here).

With no scheduler address a LocalCluster is started: worker processes with one thread each,
since durable_rules allows one live engine session per process. With `--scheduler` the same
chunks go to an existing cluster, whose workers must be able to import escalation and read the
input files and the batch folder under the same paths (one machine, or a shared file system).
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from escalation import api
from escalation.batch.grid import SweepRange, parse_grid
from escalation.batch.inputs import IMPORTED
from escalation.batch.plan import (
    ChunkTask,
    Manifest,
    RulesetInput,
    chunk_task,
    input_file,
    make_manifest,
)
from escalation.batch.store import (
    ERRORS,
    done_chunks,
    locked,
    query_parts,
    read_manifest,
    remove_partial,
    write_manifest,
)
from escalation.batch.work import ChunkStats, run_chunk
from escalation.load import shipped
from escalation.load.errors import InputError

OnResult = Callable[[Any], None]
WORKER_MODULE = run_chunk.__module__  # what a worker runs, and everything it imports


class ChunkFailure(BaseModel):
    """A chunk that did not finish: it is not written, and `--resume` runs it again."""

    model_config = ConfigDict(frozen=True)

    index: int
    message: str


class BatchOutcome(BaseModel):
    """What a run of a batch did, and what the folder holds now."""

    model_config = ConfigDict(frozen=True)

    out: str
    chunks: int
    chunks_done: int
    replays: int
    replays_done: int
    replays_failed: int
    failed_files: list[str]
    ran_chunks: int
    ran_replays: int
    seconds: float
    failures: list[ChunkFailure]

    @property
    def complete(self) -> bool:
        return self.chunks_done == self.chunks


# --- planning ------------------------------------------------------------------------------------

def _unique(paths: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    out = []
    for p in paths:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            out.append(p)
    return out


def _ruleset_input(index: int, path: Path, grid: list[SweepRange]) -> RulesetInput:
    """A rule set loaded and hashed, with every grid value tried on it (an empty `grid`: none)."""
    ruleset = api.load_ruleset(path)
    for r in grid:
        for value in r.values():
            try:
                api.with_overrides(ruleset, {r.target: value}, str(path))
            except InputError as exc:
                raise InputError("--grid", f"{r.target}={value:g} on {path}: "
                                 f"{exc.message.removeprefix('--set: ')}") from None
    base = input_file(index, path)
    info = ruleset.ruleset
    return RulesetInput(**base.model_dump(), id=info.id, version=info.version, title=info.title,
                        content_hash=ruleset.content_hash())


def plan_batch(inputs: Sequence[Path], rules: Sequence[Path] | None, grid: Sequence[str],
               chunk_size: int | None = None) -> Manifest:
    """The batch's manifest from command-line text; a bad range is an input error (`--grid`)."""
    try:
        ranges = parse_grid(list(grid))
    except ValueError as exc:
        raise InputError("--grid", str(exc)) from None
    return plan(inputs, rules, ranges, chunk_size)


def plan(inputs: Sequence[Path], rules: Sequence[Path] | None, grid: list[SweepRange],
         chunk_size: int | None = None, check_values: bool = True) -> Manifest:
    """The manifest. Rule sets and grid values are checked here (bad ones are input errors,
    before any work; `check_values=False` when the caller has tried every value already);
    scenarios are only found and hashed: the workers load them."""
    scenario_paths = _unique(api.scenario_files(inputs))
    rule_paths = _unique(api.rule_files(rules) if rules else [shipped.default_rules()])
    rulesets = [_ruleset_input(i, p, grid if check_values else []) for i, p in enumerate(rule_paths)]
    scenarios = [input_file(i, p) for i, p in enumerate(scenario_paths)]
    return make_manifest(scenarios, rulesets, grid, chunk_size)


# --- executing chunks ----------------------------------------------------------------------------

def run_here(fn: Callable[[ChunkTask], Any], tasks: list[ChunkTask], on_result: OnResult) -> list[ChunkFailure]:
    """Chunks one after another in this process (a sweep with one worker); same task function."""
    for task in tasks:
        on_result(fn(task))
    return []


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, parquet: bool = True) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a new LocalCluster of single-thread workers
    (which import Parquet's writer as they start when `parquet`: a batch writes, a sweep does not)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError("--scheduler", f"cannot reach a Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    # loopback only; the scheduler's HTTP server (there is always one) on a free port, not 8787;
    # no statistical profiler in the workers (it samples every 10 ms and costs a few per cent);
    # each worker imports the replay code and Parquet's writer as it starts, beside the other
    # workers starting, rather than with its first chunk, which would then take longer than the rest
    with _workers_ignore_ctrl_c(), dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                               preload=[WORKER_MODULE, *(["pyarrow.parquet"] if parquet else [])])
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Worker processes started in here ignore SIGINT (a process started with it ignored keeps it
    so): Ctrl-C at a terminal reaches the whole process group, and only this process should act
    on it, by shutting the cluster down, instead of every worker printing a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_on(client: Any, fn: Callable[[ChunkTask], Any], tasks: Iterable[ChunkTask],
           on_result: OnResult) -> list[ChunkFailure]:
    """Submit the chunks and hand each result to `on_result` as it arrives.

    A few chunks per worker are in flight at a time, topped up as they finish, so that a batch
    of any size holds few tasks in memory and an interruption has little to cancel. A chunk
    whose task fails (its worker died too often, the scheduler went away, the folder could not
    be written) is reported, not retried for ever; the others go on.
    """
    from distributed import as_completed

    token = uuid.uuid4().hex[:12]
    pending = iter(tasks)
    running = as_completed(loop=client.loop)
    index: dict[str, int] = {}

    def submit(task: ChunkTask) -> None:
        future = client.submit(fn, task, key=f"escalation-chunk-{token}-{task.index}", pure=False, retries=1)
        index[future.key] = task.index
        running.add(future)

    for task in itertools.islice(pending, max(8, 4 * len(client.scheduler_info()["workers"]))):
        submit(task)
    failures: list[ChunkFailure] = []
    for future in running:
        if future.status == "finished":
            on_result(future.result())
        else:
            failures.append(ChunkFailure(index=index[future.key], message=_why(future)))
        future.release()
        if (task := next(pending, None)) is not None:
            submit(task)
    return sorted(failures, key=lambda f: f.index)


def _why(future: Any) -> str:
    if future.status == "cancelled":
        return "cancelled: the scheduler, or the connection to it, was lost"
    try:
        exc = future.exception(timeout=5)
    except Exception as other:  # noqa: BLE001 - the cluster is gone
        exc = other
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


@contextmanager
def quiet_dask() -> Iterator[None]:
    """Dask's own log lines (a lost connection logs whole tracebacks) stay out of the output; what
    went wrong is reported per chunk instead."""
    import distributed  # noqa: F401 - its logging set-up gives its loggers levels and handlers

    names = ["distributed", "tornado"] + [n for n in logging.root.manager.loggerDict
                                          if n.startswith(("distributed.", "tornado."))]
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


# --- the batch -----------------------------------------------------------------------------------

def _check_folder(out: Path, old: Manifest | None, new: Manifest, resume: bool) -> None:
    if resume:
        if old is None:
            raise InputError(str(out), "holds no batch to resume (no manifest.json)")
        differences = old.differences(new)
        if differences:
            raise InputError(str(out / "manifest.json"), "cannot resume: " + "; ".join(differences[:3]))
        return
    if old is not None:
        raise InputError(str(out), "already holds a batch; --resume completes it, or choose another folder")
    if out.is_dir() and any(p.name not in (".lock", IMPORTED) for p in out.iterdir()):
        raise InputError(str(out), "is not empty; a batch needs a new or empty folder")


def _failed_counts(out: Path, done: set[int]) -> tuple[int, list[str]]:
    """How many replays of the done chunks failed, and in which files: read by DuckDB's SQL."""
    if not done:
        return 0, []
    with query_parts(out, sorted(done), (ERRORS,)) as con:
        n = con.execute("SELECT count(*) FROM errors").fetchone()[0]
        names = con.execute("SELECT DISTINCT file FROM errors ORDER BY file").fetchall()
    return int(n), [r[0] for r in names]


def run_batch(manifest: Manifest, out: Path, *, resume: bool = False, workers: int | None = None,
              scheduler: str | None = None, started: Callable[[int, int], None] | None = None,
              advance: Callable[[int], None] | None = None) -> BatchOutcome:
    """Write the manifest (or check it, to resume), then run and write every chunk not yet done.

    `started(done, total)` is called once with the replays already done; `advance(n)` after each
    chunk written, with its replays. Ctrl-C propagates as KeyboardInterrupt, after the cluster
    is shut down; every chunk written so far stays, and `resume` completes the rest.
    """
    _check_folder(out, read_manifest(out), manifest, resume)  # before the lock creates anything
    with locked(out):
        _check_folder(out, read_manifest(out), manifest, resume)  # and again, holding it
        if resume:
            remove_partial(out)
        else:
            write_manifest(out, manifest)
        chunking = manifest.chunking
        done = done_chunks(out) & set(range(chunking.chunks))
        todo = [i for i in range(chunking.chunks) if i not in done]
        before = sum(len(range(*chunking.bounds(i))) for i in done)
        if started:
            started(before, chunking.jobs)
        stats: list[ChunkStats] = []

        def on_result(s: ChunkStats) -> None:
            stats.append(s)
            if advance:
                advance(s.replays)

        seconds = 0.0
        failures: list[ChunkFailure] = []
        if todo:
            with quiet_dask(), dask_client(workers, scheduler) as client:
                t0 = time.perf_counter()  # the cluster is up: from the first chunk submitted
                failures = run_on(client, run_chunk, (chunk_task(manifest, i, out) for i in todo), on_result)
                seconds = time.perf_counter() - t0  # to the last chunk written, before shutting down
        done = done_chunks(out) & set(range(chunking.chunks))
    failed, files = _failed_counts(out, done)
    return BatchOutcome(
        out=str(out), chunks=chunking.chunks, chunks_done=len(done), replays=chunking.jobs,
        replays_done=sum(len(range(*chunking.bounds(i))) for i in done), replays_failed=failed,
        failed_files=files, ran_chunks=len(stats), ran_replays=sum(s.replays for s in stats),
        seconds=seconds, failures=failures)

