"""What runs on a worker: replay the jobs of one chunk, and write them or hand them back.

Each worker process keeps its own engine, so replays in one process run one at a time (a lock
guards against a worker started with several threads). Files are loaded once per process and
kept by content hash: a scenario replayed at twenty grid points is read and validated once, and
a rule set with a grid point's overrides is built once per process (the engine then compiles
and registers each rule set shape once per process, see escalation/evaluate/engine.py).

A file that fails to load (its content, or a file it derives from, is wrong or has changed since
planning), or a replay the engine refuses, becomes an error row: the other replays of the chunk
go on. So does an unexpected exception while loading one file (a bug its content runs into): it
is that file's error row, stage load, as it would be again on a retry. A file that cannot be read
at all (missing, no permission, an I/O error) fails the chunk instead, and is not kept: the chunk
is reported as not written and `--resume` runs it again, once the file system serves the file.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from escalation import api
from escalation.batch import rows as R
from escalation.batch.plan import ChunkTask, InputFile, Job, code_sha256, sha256_of
from escalation.batch.store import ERRORS, REPLAYS, RESULTS, write_chunk
from escalation.load.errors import ArgumentError, InputError, UnreadableFile
from escalation.load.loading import derives_chain
from escalation.load.reading import shown_name
from escalation.load.ruleset import Ruleset
from escalation.load.scenario import Scenario
from escalation.version import __version__

T = TypeVar("T")
_ENGINE = threading.Lock()  # one live engine session per process (durable_rules)
_CACHE_SIZE = 256


class _Cache:
    """A small least-recently-used cache; what it keeps is rebuilt on demand when evicted."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self.size, self.items = size, OrderedDict[Any, Any]()

    def get(self, key: Any, make: Callable[[], T]) -> T:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = make()
        self.items[key] = value
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value


_SCENARIOS, _RULESETS, _POINTS = _Cache(), _Cache(), _Cache()


class ChunkOutput(BaseModel):
    """The rows of one chunk, and how long its replays took."""

    model_config = ConfigDict(frozen=True)

    index: int
    results: list[R.ResultRow]
    replays: list[R.ReplayRow]
    errors: list[R.ErrorRow]
    seconds: float
    pid: int


class ChunkStats(BaseModel):
    """What a worker hands back after writing a chunk: counts only, the rows are on disk."""

    model_config = ConfigDict(frozen=True)

    index: int
    replays: int
    failed: int
    rows: int
    seconds: float
    pid: int


def _key(ref: InputFile) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """What a loaded file is kept by: its path and the content of it and of every file it derives
    from, so that a long-lived worker never serves one batch a file loaded for another."""
    return ref.path, *ref.contents()


def _changed(file: str, message: str = "has changed since the batch was planned (sha256 differs)") -> InputError:
    return InputError(shown_name(file), f"{message}; plan the batch again")


def _as_planned(ref: InputFile) -> None:
    """Refuse a file, or a file it derives from, that differs from the plan (InputError, naming
    that file). A file that cannot be read at all raises OSError: the chunk fails and is retried."""
    if sha256_of(Path(ref.path)) != ref.sha256:
        raise _changed(ref.file)
    for linked in ref.linked:
        if sha256_of(Path(linked.file)) != linked.sha256:
            raise _changed(linked.file)
    found = [str(p) for p in derives_chain(ref.path)]
    if found != [f.file for f in ref.linked]:
        raise _changed(ref.file, f"now derives from {', '.join(found) or 'no file'}, not from the files planned")


def _named(exc: InputError, ref: InputFile) -> InputError:
    """The error under the input's name as given when it is about the input itself; an error in
    a file it derives from names that file, since its line is a line of that file, as the batch
    was given the input (`_base_named`), and names the input as given when it arises only in the
    input, `(in FILE, which derives ...)`."""
    own, given = shown_name(ref.path), shown_name(ref.file)
    if exc.file == own:
        return InputError(given, exc.message, exc.line, exc.where)
    return InputError(_base_named(exc.file, ref), exc.message.replace(f" (in {own}, which derives ",
                                                                      f" (in {given}, which derives "),
                      exc.line, exc.where)


def _base_named(file: str, ref: InputFile) -> str:
    """A file the input derives from (one of `ref.linked`), named by the loader here, where the input
    was loaded by its absolute path (loading._base_name: from this worker's folder when under it,
    else that path's folder joined with derives_from), renamed as the planner would name it from
    the name the batch was given: that name's folder joined with the base's path from the input's
    folder. So the rows do not depend on the worker's folder, nor name a base by where a shipped
    file is installed. Any other file is left as named."""
    where = os.path.abspath(file)
    if os.path.realpath(where) not in {os.path.realpath(f.file) for f in ref.linked}:
        return file
    from_input = os.path.relpath(where, os.path.dirname(ref.path))
    return shown_name(os.path.normpath(os.path.join(os.path.dirname(ref.file), from_input)))


def _checked(ref: InputFile, load: Callable[[str], T]) -> T | InputError:
    """The loaded file, or the error its content raises (kept: the same content fails the same
    way). A file changed since planning raises InputError, and one that cannot be read raises
    OSError; neither is returned, so neither is kept."""
    _as_planned(ref)
    try:
        return load(ref.path)
    except UnreadableFile as exc:  # it was read a moment ago, to be hashed
        raise OSError(f"{exc.file}: {exc.message}") from None
    except InputError as exc:
        return _named(exc, ref)


def _scenario(ref: InputFile, diagnoses: list[str]) -> Scenario:
    load = functools.partial(api.load_scenario, diagnoses=diagnoses or None)
    found = _SCENARIOS.get((*_key(ref), tuple(diagnoses)), lambda: _checked(ref, load))
    if isinstance(found, InputError):
        raise found
    return found


def _ruleset(job: Job) -> Ruleset:
    base = _RULESETS.get(_key(job.ruleset), lambda: _checked(job.ruleset, api.load_ruleset))
    if isinstance(base, InputError):
        raise base
    if not job.point.values:
        return base
    key = (*_key(job.ruleset), job.point.label)
    return _POINTS.get(key, lambda: api.with_overrides(base, job.point.values))


def _error(base: dict[str, Any], stage: str, exc: Exception, fallback_file: str) -> R.ErrorRow:
    if isinstance(exc, ArgumentError):  # grid values the rule set refused: the row names the rule set
        return R.ErrorRow(**base, stage=stage, file=fallback_file, line=None, where=None,
                          message=f"at this grid point: {exc.message}")
    if isinstance(exc, InputError):
        return R.ErrorRow(**base, stage=stage, file=exc.file, line=exc.line, where=exc.where, message=exc.message)
    message = str(exc) or type(exc).__name__
    return R.ErrorRow(**base, stage=stage, file=getattr(exc, "file", None) or fallback_file,
                      line=getattr(exc, "line", None), where=None, message=f"{type(exc).__name__}: {message}")


Replayed = tuple[list[R.ResultRow], R.ReplayRow, "R.ErrorRow | None"]


def _failed(base: dict[str, Any], scenario_id: str | None, stage: str, exc: Exception, file: str) -> Replayed:
    row = R.ReplayRow(**base, status="error", scenario_id=scenario_id, decision_points=0, unflagged_actions=0)
    return [], row, _error(base, stage, exc, file)


def replay_job(chunk: int, job: Job, diagnoses: list[str]) -> Replayed:
    """One replay as rows; a load or replay failure as an error row instead of results."""
    base = R.common(chunk, job)
    loading = job.scenario.file
    try:
        scenario = _scenario(job.scenario, diagnoses)
        loading = job.ruleset.file
        ruleset = _ruleset(job)
    except OSError:
        raise  # cannot be read now: the chunk fails, and --resume runs it again
    except Exception as exc:  # noqa: BLE001 - one file the loader fails on must not stop the others
        return _failed(base, None, "load", exc, loading)  # an InputError names its own file
    try:
        result = api.replay(scenario, ruleset)
    except Exception as exc:  # noqa: BLE001 - one bad replay must not stop the others
        return _failed(base, scenario.scenario.id, "replay", exc, job.scenario.file)
    found = R.decision_rows(base, result) + R.unflagged_rows(base, result)
    n_dp = sum(r.kind == "decision_point" for r in found)
    return found, R.ReplayRow(**base, status="ok", scenario_id=result.scenario.id, decision_points=n_dp,
                              unflagged_actions=len(found) - n_dp, fhir_import=result.scenario.fhir_import), None


def replay_chunk(task: ChunkTask) -> ChunkOutput:
    """Every job of the chunk, in order, one engine session at a time.

    A worker of another escalation version (a `dask worker` on another machine, installed apart)
    could replay the same plan differently: it fails the chunk instead, saying so.
    """
    if task.version != __version__:
        raise RuntimeError(f"this worker runs escalation {__version__}, the batch was planned with "
                           f"{task.version}: install the same version on every worker")
    if task.code_sha256 and task.code_sha256 != code_sha256():
        raise RuntimeError(f"this worker's escalation {__version__} is other code than the batch was planned "
                           "with (its package files differ): install the same copy on every worker")
    results: list[R.ResultRow] = []
    replays: list[R.ReplayRow] = []
    errors: list[R.ErrorRow] = []
    t0 = time.perf_counter()
    with _ENGINE:
        for job in task.jobs:
            found, replayed, error = replay_job(task.index, job, task.diagnoses)
            results += found
            replays.append(replayed)
            if error is not None:
                errors.append(error)
    return ChunkOutput(index=task.index, results=results, replays=replays, errors=errors,
                       seconds=time.perf_counter() - t0, pid=os.getpid())


def run_chunk(task: ChunkTask) -> ChunkStats:
    """Replay a chunk and write its files into the batch folder (the batch's task)."""
    if task.out is None:
        raise ValueError("run_chunk needs the batch folder; replay_chunk returns the rows instead")
    output = replay_chunk(task)
    write_chunk(Path(task.out), task.index, {
        RESULTS: R.to_table(output.results, R.ResultRow),
        REPLAYS: R.to_table(output.replays, R.ReplayRow),
        ERRORS: R.to_table(output.errors, R.ErrorRow),
    })
    return ChunkStats(index=task.index, replays=len(output.replays), failed=len(output.errors),
                      rows=len(output.results), seconds=output.seconds, pid=output.pid)
