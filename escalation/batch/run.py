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
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from escalation import api
from escalation.batch.grid import SweepRange, parse_grid
from escalation.batch.inputs import expand_inputs, is_import_folder, refuse_nested_exports, to_import
from escalation.batch.plan import (
    ChunkTask,
    Chunking,
    InputFile,
    Manifest,
    RulesetInput,
    chunk_task,
    day_zero_diagnoses,
    input_file,
    make_manifest,
)
from escalation.batch.store import (
    ERRORS,
    RESULTS,
    done_chunks,
    locked,
    part,
    query_parts,
    read_manifest,
    remove_partial,
    write_manifest,
)
from escalation.batch.work import ChunkStats, run_chunk
from escalation.load import shipped
from escalation.load.errors import ArgumentError, InputError

OnResult = Callable[[Any], None]
Planner = Callable[[Manifest | None], Manifest]  # the manifest to resume, if any -> the plan
WORKER_MODULE = run_chunk.__module__  # what a worker runs, and everything it imports
WORKER_START = "escalation.batch.local_worker"  # a local worker's first preload: it ignores Ctrl-C


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

def _ruleset_input(index: int, path: Path, grid: list[SweepRange]) -> RulesetInput:
    """A rule set loaded and hashed, with every grid value tried on it (an empty `grid`: none)."""
    ruleset = api.load_ruleset(path)
    for r in grid:
        for value in r.values():
            try:
                api.with_overrides(ruleset, {r.target: value})
            except InputError as exc:
                raise ArgumentError("grid", f"{r.target}={value:g} on {path}: {exc.message}", option="--grid") from None
    base = input_file(index, path)
    info = ruleset.ruleset
    return RulesetInput(**base.model_dump(), id=info.id, version=info.version, title=info.title,
                        content_hash=ruleset.content_hash(), diagnoses=list(ruleset.diagnosis_codes()))


def plan_batch(inputs: Sequence[Path], rules: Sequence[Path] | None, grid: Sequence[str],
               chunk_size: int | None = None) -> Manifest:
    """The batch's manifest from command-line text; a bad range is an input error (`--grid`)."""
    return plan(inputs, rules, _ranges(grid), chunk_size)


def _refuse_out_inside(inputs: Sequence[Path], out: Path) -> None:
    """With FHIR input, DIR inside a folder given as input would become input itself: the scenario
    files imported into it and its manifest read again as the folder's on --resume, which then
    refuses a batch unchanged. (Without, the folder's scenarios are YAML files, and DIR holds none.)"""
    where = out.resolve()
    for given in inputs:
        folder = shipped.resolve(given).resolve()
        if folder.is_dir() and where.is_relative_to(folder):
            raise InputError("--out", f"{out} lies inside the input folder {given}: its files would be read as "
                             "that folder's on --resume; name a folder outside it")


def batch_planner(inputs: Sequence[Path], rules: Sequence[Path] | None, grid: Sequence[str],
                  chunk_size: int | None, out: Path) -> Planner:
    """What `escalation batch` plans, checked as far as it can be without writing anything: a
    bad grid, or a rule set that cannot take a grid value, is an input error before DIR is
    touched. With a Bulk Data folder or a Bundle of several patients among the inputs, the
    scenarios are known only once it is imported into DIR, and that waits until `run_batch` holds
    DIR's lock and calls the function returned; with none, the plan is made here.

    A resume with no `chunk_size` cuts the replays as the batch was planned, whatever size it
    was given then: the default depends on how many replays there are, and a resume that cut them
    otherwise would be refused."""
    refuse_nested_exports(inputs)
    ranges = _ranges(grid)
    rulesets = _distinct([_ruleset_input(i, p, ranges) for i, p in enumerate(_rule_paths(rules))])
    imports = to_import(inputs)  # a Bundle's patients counted once, here, before DIR is touched
    if imports:
        _refuse_out_inside(inputs, out)

    def chunked(manifest: Manifest, old: Manifest | None) -> Manifest:
        if chunk_size is not None or old is None:
            return manifest
        return manifest.model_copy(update={"chunking": Chunking.of(manifest.chunking.jobs, old.chunking.chunk_size)})

    def planned(old: Manifest | None) -> Manifest:
        paths, fhir = expand_inputs(inputs, out, day_zero_diagnoses(rulesets), old, imports)
        return chunked(make_manifest(_scenario_inputs(paths), rulesets, ranges, chunk_size, fhir, out), old)

    if imports:
        return planned
    now = planned(None)  # every input checked here, before DIR is touched
    return lambda old: chunked(now, old)


def plan(inputs: Sequence[Path], rules: Sequence[Path] | None, grid: list[SweepRange],
         chunk_size: int | None = None, check_values: bool = True) -> Manifest:
    """The manifest. Rule sets and grid values are checked here (bad ones are input errors,
    before any work; `check_values=False` when the caller has tried every value already);
    scenarios are only found and hashed: the workers load them."""
    scenarios = _scenario_inputs(inputs)
    rulesets = _distinct([_ruleset_input(i, p, grid if check_values else []) for i, p in enumerate(_rule_paths(rules))])
    return make_manifest(scenarios, rulesets, grid, chunk_size)


def _ranges(grid: Sequence[str]) -> list[SweepRange]:
    try:
        return parse_grid(list(grid))
    except ValueError as exc:
        raise InputError("--grid", str(exc)) from None


def _rule_paths(rules: Sequence[Path] | None) -> list[Path]:
    """The rule set files, each once; the default named as the README names it, not by its place
    in the installed package, so that rows from two installs agree."""
    return api.rule_files(rules) if rules else [shipped.default_rules_named()]


def _distinct(rulesets: list[RulesetInput]) -> list[RulesetInput]:
    """Two files holding the same rule set (same id and content) would both be replayed and
    counted together in the summary as one rule set, every scenario twice: an input error."""
    seen: dict[tuple[str, str], RulesetInput] = {}
    for rs in rulesets:
        first = seen.setdefault((rs.id, rs.content_hash), rs)
        if first is not rs:
            raise InputError("--rules", f"{first.file} and {rs.file} hold the same rule set ({rs.id} v{rs.version}, "
                             f"sha256:{rs.content_hash[:16]}): give one, or each scenario is counted twice")
    return rulesets


def _scenario_inputs(inputs: Sequence[Path]) -> list[InputFile]:
    return [input_file(i, p) for i, p in enumerate(api.scenario_files(inputs))]


# --- executing chunks ----------------------------------------------------------------------------

def run_here(fn: Callable[[ChunkTask], Any], tasks: list[ChunkTask], on_result: OnResult) -> list[ChunkFailure]:
    """Chunks one after another in this process (a sweep with one worker); same task function."""
    for task in tasks:
        on_result(fn(task))
    return []


def _connected(scheduler: str) -> Any:
    """A client of the scheduler at `scheduler`, or an InputError within CONNECT_SECONDS or so.

    Dask's own timeout does not hold for an address that accepts the connection and never
    answers (a dashboard port given by mistake, say): the client is made in a thread that is
    left behind if it has not returned by the deadline. Any error of Dask's (a bad address, a
    tls:// address with no TLS settings) is the same one line."""
    from distributed import Client

    made: dict[str, Any] = {}

    def connect() -> None:
        try:
            made["client"] = Client(scheduler, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - reported below, as one line
            made["error"] = exc

    thread = threading.Thread(target=connect, name="escalation-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_SECONDS + 5)
    if "client" in made:
        return made["client"]
    why = _text(made["error"]) if "error" in made else f"no answer in {CONNECT_SECONDS} s"
    raise InputError("--scheduler", f"cannot reach a Dask scheduler at {scheduler}: {why}")


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, parquet: bool = True) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a new LocalCluster of single-thread workers
    (which import Parquet's writer as they start when `parquet`: a batch writes, a sweep does not)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with _connected(scheduler) as client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    # loopback only; the scheduler's HTTP server (there is always one) on a free port, not 8787;
    # no statistical profiler in the workers (it samples every 10 ms and costs a few per cent);
    # each worker imports the replay code and Parquet's writer as it starts, beside the other
    # workers starting, rather than with its first chunk, which would then take longer than the rest
    with ExitStack() as stack:
        with _ctrl_c_held(), dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = stack.enter_context(LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                preload=[WORKER_START, WORKER_MODULE, *(["pyarrow.parquet"] if parquet else [])]))
        # a Ctrl-C held while the cluster started is raised on leaving the block above: the cluster
        # is already in the stack, so it is shut down
        yield stack.enter_context(Client(cluster, set_as_default=False))


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Hold Ctrl-C back while local workers start, then act on it.

    Ctrl-C at a terminal reaches the whole process group. Worker processes started in here
    inherit SIGINT blocked (a signal mask survives fork and exec, and so does the mask of the
    threads that start them), so that one still starting is not killed by it; each then ignores
    it (`local_worker`), and only this process acts on it, by shutting the cluster down. This
    process blocks it only until the cluster is up: a Ctrl-C that came meanwhile is pending, or
    caught by the handler below if another thread took it, and is raised as KeyboardInterrupt on
    the way out, not lost (ignoring SIGINT here, as an earlier version did, lost it).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # the resource tracker, started with the first worker, unblocks SIGINT in the thread that
    # starts it, and every worker after it would start unprotected: it is started here, first
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    caught: list[Any] = []
    previous = signal.getsignal(signal.SIGINT)
    if callable(previous):  # not when this process was started with Ctrl-C ignored
        signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending Ctrl-C is delivered here
    if caught and callable(previous):
        previous(signal.SIGINT, caught[0])  # Python's own handler raises KeyboardInterrupt


POLL_SECONDS = 0.2  # how long a wait for a chunk goes without looking at the connection
WORKER_CHECK_SECONDS = 2.0  # how often an idle wait asks the scheduler how many workers it has
NO_WORKERS_SECONDS = 60.0  # how long a scheduler may have no worker before the run stops
CONNECT_SECONDS = 20  # how long a --scheduler address may take to answer at the start
ASK_SECONDS = 20.0  # a question to the scheduler, or a chunk's result, that takes longer: it is gone


def run_on(client: Any, fn: Callable[[ChunkTask], Any], tasks: Iterable[ChunkTask],
           on_result: OnResult) -> list[ChunkFailure]:
    """Submit the chunks and hand each result to `on_result` as it arrives.

    A few chunks per worker are in flight at a time, topped up as they finish, so that a batch
    of any size holds few tasks in memory and an interruption has little to cancel. A chunk
    whose task fails (its worker died too often, the folder could not be written) is reported,
    not retried for ever; the others go on. When the connection to the scheduler is lost, or the
    scheduler has no worker for NO_WORKERS_SECONDS, nothing more can finish: no chunk is
    submitted after that, and every chunk not yet finished is reported with the reason, rather
    than waited for (Dask would never finish it).
    """
    flight = _Flight(client, fn, iter(tasks))
    workers, flight.stopped = _workers(client, NO_WORKERS_SECONDS)
    flight.fill(max(8, 4 * workers))
    watch = _Watch(client)
    while flight.stopped is None and flight.inflight:
        future = flight.next_done()
        if future is None:
            flight.stopped = watch.check()
            continue
        watch.progressed()
        flight.handle(future, on_result)
        flight.fill(1)
    return flight.failures()


class _Flight:
    """The chunks submitted and not yet handled, those not submitted yet, and what failed."""

    def __init__(self, client: Any, fn: Callable[[ChunkTask], Any], pending: Iterator[ChunkTask]) -> None:
        from distributed import as_completed

        self.client, self.fn, self.pending = client, fn, pending
        self.token = uuid.uuid4().hex[:12]
        self.running = as_completed(loop=client.loop)
        self.inflight: dict[str, int] = {}  # future key: chunk
        self.failed: list[ChunkFailure] = []
        self.stopped: str | None = None  # why no chunk can finish any more

    def fill(self, n: int) -> None:
        """Submit up to `n` more chunks; none once the client has lost its scheduler (Dask would
        hold them for a reconnection that may never come)."""
        if self.stopped is not None or self.client.status != "running":
            self.stopped = self.stopped or _lost(self.client)
            return
        for task in itertools.islice(self.pending, n):
            future = self.client.submit(self.fn, task, key=f"escalation-chunk-{self.token}-{task.index}",
                                        pure=False, retries=1)
            self.inflight[future.key] = task.index
            self.running.add(future)

    def next_done(self) -> Any | None:
        """The next finished future, or None after POLL_SECONDS with none: as_completed's own
        iterator would wait for ever for a future that a lost scheduler will never finish."""
        with self.running.thread_condition:
            if not self.running.has_ready():
                self.running.thread_condition.wait(POLL_SECONDS)
        return next(self.running) if self.running.has_ready() else None

    def handle(self, future: Any, on_result: OnResult) -> None:
        """A future done: its result to `on_result`, or its failure recorded. Dask cancels every
        future in flight when the connection drops: a cancelled one stops the run."""
        status = future.status
        if status == "cancelled":
            self.stopped = _lost(self.client)
            future.release()
            return
        index = self.inflight.pop(future.key)
        try:
            result = future.result(timeout=ASK_SECONDS) if status == "finished" else None
            message = None if status == "finished" else _why(future)
        except Exception as exc:  # noqa: BLE001 - finished, but its result could not be fetched
            message = _text(exc)
        finally:
            future.release()
        if message is None:
            on_result(result)
        else:
            self.failed.append(ChunkFailure(index=index, message=message))

    def failures(self) -> list[ChunkFailure]:
        """What failed; after a stop, every chunk not finished too, with the reason."""
        if self.stopped is not None:
            left = [*self.inflight.values(), *(t.index for t in self.pending)]
            self.failed += [ChunkFailure(index=i, message=self.stopped) for i in left]
        return sorted(self.failed, key=lambda f: f.index)


class _Watch:
    """Notices, while no chunk finishes, that the client lost its scheduler or that the
    scheduler has had no worker for NO_WORKERS_SECONDS."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.asked = time.monotonic()
        self.no_workers_since: float | None = None

    def progressed(self) -> None:
        self.asked = time.monotonic()
        self.no_workers_since = None

    def check(self) -> str | None:
        if self.client.status != "running":
            return _lost(self.client)
        now = time.monotonic()
        if now - self.asked < WORKER_CHECK_SECONDS:
            return None
        self.asked = now
        try:
            count = _worker_count(self.client)
        except Exception as exc:  # noqa: BLE001 - the scheduler does not answer
            return _silent(exc)
        if count:
            self.no_workers_since = None
            return None
        self.no_workers_since = self.no_workers_since or now
        return _no_workers_text(self.client, NO_WORKERS_SECONDS) \
            if now - self.no_workers_since >= NO_WORKERS_SECONDS else None


def _worker_count(client: Any) -> int:
    """How many workers the scheduler has now; asked with a time limit (a dead one never answers)."""
    info = client.sync(client.scheduler.identity, callback_timeout=ASK_SECONDS)
    return len(info.get("workers", {}))


def _workers(client: Any, seconds: float) -> tuple[int, str | None]:
    """How many workers the scheduler has, waiting up to `seconds` for a first one; with no
    worker by then, or no answer, 0 and why nothing can run."""
    try:
        if count := _worker_count(client):
            return count, None
        client.wait_for_workers(1, timeout=seconds)
        return _worker_count(client), None
    except TimeoutError:  # asyncio.TimeoutError too, since Python 3.11
        return 0, _no_workers_text(client, seconds)
    except Exception as exc:  # noqa: BLE001 - the scheduler does not answer
        return 0, _silent(exc)


def _address(client: Any) -> str:
    return str(getattr(client.scheduler, "address", None) or "the scheduler")


def _no_workers_text(client: Any, seconds: float) -> str:
    address = _address(client)
    return (f"the Dask scheduler at {address} has had no worker for {seconds:g} s; start "
            f"workers with `dask worker {address} --nthreads 1`")


def _silent(exc: BaseException) -> str:
    return f"the Dask scheduler does not answer ({_text(exc)})"


def _lost(client: Any) -> str:
    return f"the connection to the Dask scheduler at {_address(client)} was lost"


def _why(future: Any) -> str:
    try:
        exc = future.exception(timeout=5)
    except Exception as other:  # noqa: BLE001 - the cluster is gone
        exc = other
    return _text(exc)


def _text(exc: BaseException | None) -> str:
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

def _check_folder(out: Path, old: Manifest | None, resume: bool) -> None:
    """DIR holds a batch to resume, or (a new batch) nothing but what an earlier attempt that
    stopped before its manifest left: the lock file and imported scenarios, which are replaced."""
    if resume:
        if old is None:
            raise InputError(str(out), "holds no batch to resume (no manifest.json)" if out.exists() else
                             "no such folder, so no batch to resume; without --resume, the same command starts one")
        return
    if old is not None:
        raise InputError(str(out), "already holds a batch; --resume completes it, or choose another folder")
    if out.is_dir() and any(p.name != ".lock" and not is_import_folder(p) for p in out.iterdir()):
        raise InputError(str(out), "is not empty; a batch needs a new or empty folder")


def _refuse(out: Path, differences: list[str]) -> None:
    if differences:
        raise InputError(str(out / "manifest.json"), "cannot resume: " + "; ".join(differences[:3]))


def _failed_counts(out: Path, done: set[int]) -> tuple[int, list[str]]:
    """How many replays of the done chunks failed, and in which files: read by DuckDB's SQL."""
    if not done:
        return 0, []
    with query_parts(out, sorted(done), (ERRORS,)) as con:
        n = con.execute("SELECT count(*) FROM errors").fetchone()[0]
        names = con.execute("SELECT DISTINCT file FROM errors ORDER BY file").fetchall()
    return int(n), [r[0] for r in names]


def run_batch(manifest: Manifest | Planner, out: Path, *, resume: bool = False, workers: int | None = None,
              scheduler: str | None = None, started: Callable[[int, int], None] | None = None,
              advance: Callable[[int], None] | None = None) -> BatchOutcome:
    """Write the manifest (or check it, to resume), then run and write every chunk not yet done.

    `manifest` may be a `Planner` (see `batch_planner`): it is called once DIR is checked and
    locked, since planning may import into DIR. `started(done, total)` is called once with the
    replays already done; `advance(n)` after each chunk reported, with its replays. Ctrl-C
    propagates as KeyboardInterrupt, after the cluster is shut down; every chunk written so far
    stays, and `resume` completes the rest.
    """
    planner = manifest if callable(manifest) else (lambda old: manifest)
    _check_folder(out, read_manifest(out), resume)  # before the lock creates anything
    with locked(out):
        old = read_manifest(out)
        _check_folder(out, old, resume)  # and again, holding it
        if old is not None:  # resuming: a batch of another escalation is refused before any import
            _refuse(out, old.made_elsewhere())
            old = old.moved_to(out)  # its imported files where DIR is now: it may have been moved
        manifest = planner(old if resume else None)
        if old is not None:  # resuming (checked above)
            _refuse(out, old.differences(manifest))
            remove_partial(out)
            # the same files, perhaps named otherwise now: the chunks record them as the batch
            # was planned, as the chunks already written do, so its rows do not depend on
            # how it was resumed (each file's planned absolute path is that same file)
            manifest = old
        chunking = manifest.chunking
        done = done_chunks(out) & set(range(chunking.chunks))
        todo = [i for i in range(chunking.chunks) if i not in done]
        stats: list[ChunkStats] = []

        def on_result(s: ChunkStats) -> None:
            stats.append(s)
            if advance:
                advance(s.replays)

        seconds = 0.0
        failures: list[ChunkFailure] = []
        # the cluster first: a scheduler that cannot be reached leaves DIR with no manifest (a Bulk Data
        # import may be there), so the corrected command is the same command and not a --resume
        with ExitStack() as stack:
            if todo:
                stack.enter_context(quiet_dask())
                client = stack.enter_context(dask_client(workers, scheduler))
            if old is None:
                write_manifest(out, manifest)
            if started:
                started(chunking.replays_in(done), chunking.jobs)
            if todo:
                t0 = time.perf_counter()  # the cluster is up: from the first chunk submitted
                failures = run_on(client, run_chunk, (chunk_task(manifest, i, out) for i in todo), on_result)
                seconds = time.perf_counter() - t0  # to the last chunk written, before shutting down
        done = done_chunks(out) & set(range(chunking.chunks))
        failures = _not_written(out, done, stats, failures)
        stats = [s for s in stats if s.index in done]
    failed, files = _failed_counts(out, done)
    return BatchOutcome(
        out=str(out), chunks=chunking.chunks, chunks_done=len(done), replays=chunking.jobs,
        replays_done=chunking.replays_in(done), replays_failed=failed,
        failed_files=files, ran_chunks=len(stats), ran_replays=sum(s.replays for s in stats),
        seconds=seconds, failures=failures)


def _not_written(out: Path, done: set[int], stats: list[ChunkStats], failures: list[ChunkFailure]) -> list[ChunkFailure]:
    """The chunks of this run that are not in DIR now: those that failed, and those a worker
    reported written that are not there, because it wrote them where it sees DIR's path, a folder
    this process does not see. DIR is listed once, at the end, rather than each file looked up as
    it is reported, since a shared file system may show a file written elsewhere a little late."""
    unseen = [ChunkFailure(index=s.index, message=(
        f"worker pid {s.pid} wrote it outside {out}, where it sees that path ({part(out, RESULTS, s.index)} "
        f"is not here); every worker must see {out.absolute()} under that same path"))
        for s in stats if s.index not in done]
    return sorted([f for f in failures if f.index not in done] + unseen, key=lambda f: f.index)
