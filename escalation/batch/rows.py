"""The rows of a batch's Parquet tables, as pydantic models, and the Arrow schema of each.

Three tables, one file per chunk each:
- results: one row per decision point; `kind` says "decision_point", or "unflagged_action" for
  an action the timeline records that no rule put up for review (written when the replay reports
  them: see `unflagged_rows`);
- replays: one row per replay, "ok" or "error", so that counts have their denominator;
- errors: one row per failed replay, with the file, line and place the loader names.

Every row names its chunk and job, so a chunk written twice (a resumed run, a retried task)
is seen to replace, never to add.
"""

from __future__ import annotations

import types
import typing
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from escalation.batch.plan import PURPOSE, Job
from escalation.match.results import NOTICE, ReplayResult

if TYPE_CHECKING:  # pyarrow is imported where a table is built: a sweep builds none
    import pyarrow as pa


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk: int
    job: int
    scenario_file: str
    scenario_sha256: str
    ruleset_id: str
    ruleset_file: str
    ruleset_sha256: str
    ruleset_content_hash: str
    grid_point: int
    grid: str


class ResultRow(_Row):
    kind: Literal["decision_point", "unflagged_action"]
    scenario_id: str
    scenario_hypothetical: bool
    ruleset_version: str
    rule_id: str | None
    rule_kind: str | None  # escalation, watch or context: only an escalation proposes an action
    step: int | None
    occurrence: int | None
    timing: str | None
    proposes: list[str]
    code: str | None
    event_id: str | None
    day: int
    day_latest: int
    actual_day: int | None
    actual_day_latest: int | None
    lag_days: int | None
    lag_days_max: int | None
    rests_on_assumption: bool | None
    rests_on_case_specific: bool | None  # a condition copies the index case: the first thing to question
    rests_on_disputed_value: bool | None  # a condition read a recomputed index the source reports otherwise


class ReplayRow(_Row):
    status: Literal["ok", "error"]
    scenario_id: str | None
    decision_points: int
    unflagged_actions: int
    fhir_import: str | None = None  # a Bundle's day 0 and the records its import left out


class ErrorRow(_Row):
    stage: Literal["load", "replay"]
    file: str
    line: int | None
    where: str | None
    message: str


def _arrow_type(annotation: Any) -> pa.DataType:
    import pyarrow as pa

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _arrow_type(args[0])
    if origin is list:
        return pa.list_(_arrow_type(args[0]))
    if origin is Literal or annotation is str:
        return pa.string()
    return {int: pa.int64(), bool: pa.bool_(), float: pa.float64()}[annotation]


def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    """The Parquet schema of a row model, field for field, nullable where the model allows None;
    every file carries the research-only notice in its metadata, as every output does."""
    import pyarrow as pa

    return pa.schema([pa.field(name, _arrow_type(f.annotation),
                               nullable=type(None) in typing.get_args(f.annotation))
                      for name, f in model.model_fields.items()],
                     metadata={"notice": NOTICE, "purpose": PURPOSE})


def to_table(rows: list[BaseModel], model: type[BaseModel]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist([r.model_dump() for r in rows], schema=arrow_schema(model))


def common(chunk: int, job: Job) -> dict[str, Any]:
    """The columns every row of a job shares: where it came from and under what."""
    return {
        "chunk": chunk, "job": job.job, "scenario_file": job.scenario.file,
        "scenario_sha256": job.scenario.sha256, "ruleset_id": job.ruleset.id,
        "ruleset_file": job.ruleset.file, "ruleset_sha256": job.ruleset.sha256,
        "ruleset_content_hash": job.ruleset.content_hash, "grid_point": job.point.id,
        "grid": job.point.label,
    }


def _about(result: ReplayResult) -> dict[str, Any]:
    """What every row of one replay says of its scenario and rule set."""
    return {"scenario_id": result.scenario.id, "scenario_hypothetical": result.scenario.hypothetical,
            "ruleset_version": result.ruleset.version}


def decision_rows(base: dict[str, Any], result: ReplayResult) -> list[ResultRow]:
    """One row per decision point of a replay."""
    return [ResultRow(**base, **_about(result), kind="decision_point", rule_id=dp.rule_id, rule_kind=dp.kind, step=dp.step,
                      occurrence=dp.occurrence, timing=dp.timing, proposes=list(dp.proposes), code=None,
                      event_id=None, day=dp.day, day_latest=dp.day_latest, actual_day=dp.actual_day,
                      actual_day_latest=dp.actual_day_latest, lag_days=dp.lag_days,
                      lag_days_max=dp.lag_days_max, rests_on_assumption=dp.rests_on_assumption,
                      rests_on_case_specific=dp.rests_on_case_specific,
                      rests_on_disputed_value=dp.rests_on_disputed_value)
            for dp in result.decision_points]


def _unflagged_timing(placements: list[str], day: int, day_latest: int) -> str:
    """As a decision point's timing: under both placements exact or a range, else which one alone
    (an action a rule flagged under the other placement is no plain unflagged action)."""
    if len(placements) == 1:
        return f"{placements[0]} placement only"
    return "exact" if day == day_latest else "range"


def unflagged_rows(base: dict[str, Any], result: ReplayResult) -> list[ResultRow]:
    """One row per action the timeline records that no rule flagged: the other side of the
    comparison, with the action's own day as its actual day and no lag; `timing` says whether it
    is unflagged under both placements or one alone."""
    return [ResultRow(**base, **_about(result), kind="unflagged_action", rule_id=None, rule_kind=None, step=None,
                      occurrence=None, timing=_unflagged_timing(a.placements, a.day, a.day_latest),
                      proposes=[], code=a.code, event_id=a.event_id, day=a.day,
                      day_latest=a.day_latest, actual_day=a.day, actual_day_latest=a.day_latest, lag_days=None,
                      lag_days_max=None, rests_on_assumption=None, rests_on_case_specific=None,
                      rests_on_disputed_value=None)
            for a in result.unflagged_actions]
