"""`escalation batch summary DIR`: what a batch found, read with DuckDB SQL over its Parquet files.

Only done chunks are read (those whose results file exists), so the summary of a batch that is
still running, or was interrupted, counts no replay twice and no half-written chunk; it says how
many chunks are done. For each rule set, grid point and rule: how many replays flagged it (of the
replays that ran), and the distribution of the lag between the flag and the action actually
taken (median and interquartile range of `lag_days`, the smaller lag over the two placements,
and of `lag_days_max`, the larger, since the two differ wherever the source gives only a range).
Rules that never fired at a grid point are not listed there.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from rich.table import Table
from rich.text import Text

from escalation.batch.plan import PURPOSE
from escalation.batch.store import done_chunks, query_parts, read_manifest
from escalation.load.errors import InputError
from escalation.match.results import NOTICE
from escalation.report.console import FALLBACK_WIDTH, buffer_console, plural, printable, rendered


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleStat(_Out):
    ruleset_id: str
    ruleset_content_hash: str
    grid_point: int
    grid: str
    rule_id: str
    step: int | None
    replays: int = Field(description="replays that ran at this grid point under this rule set")
    flagged: int = Field(description="replays in which the rule fired at least once")
    decision_points: int
    lag_n: int = Field(description="decision points matched to an action (with a lag)")
    lag_median: float | None
    lag_q1: float | None
    lag_q3: float | None
    lag_max_median: float | None = Field(description="the same for the larger lag over the placements")
    lag_max_q1: float | None
    lag_max_q3: float | None
    no_action: int | None = Field(description="decision points of an escalation rule with no matching action "
                                  "in the timeline (None for a watch or context rule, which proposes no step)")


class UnflaggedStat(_Out):
    ruleset_id: str
    ruleset_content_hash: str
    grid_point: int
    grid: str
    code: str | None
    replays: int = Field(description="replays with this action that no rule flagged")
    actions: int
    one_placement: int = Field(0, description="of the actions, those unflagged under one timing placement "
                                              "alone: a rule flagged them under the other")


class ErrorStat(_Out):
    stage: str
    file: str
    line: int | None
    where: str | None
    message: str
    replays: int = Field(description="replays that failed with this error")


class SharedId(_Out):
    scenario_id: str
    files: list[str]


class BatchSummary(_Out):
    notice: str = NOTICE
    purpose: str = PURPOSE
    out: str
    complete: bool
    chunks: int
    chunks_done: int
    replays_planned: int
    replays_ok: int
    replays_failed: int
    rulesets: list[str]
    grid: list[str]
    unflagged_actions_recorded: bool
    rules: list[RuleStat]
    unflagged: list[UnflaggedStat]
    errors: list[ErrorStat]
    shared_ids: list[SharedId] = Field(
        default_factory=list, description="scenario ids that more than one file gives: each file is replayed and "
                                          "counted on its own, so two exports of one patient count twice")


_RULES = """
WITH ok AS (
    SELECT ruleset_id, ruleset_content_hash, grid_point, count(*) AS replays
    FROM replays WHERE status = 'ok'
    GROUP BY ruleset_id, ruleset_content_hash, grid_point
)
SELECT d.ruleset_id, d.ruleset_content_hash, d.grid_point, any_value(d.grid) AS grid, d.rule_id,
       min(d.step) AS step, any_value(ok.replays) AS replays, count(DISTINCT d.job) AS flagged,
       count(*) AS decision_points, count(d.lag_days) AS lag_n,
       quantile_cont(d.lag_days, 0.5) AS lag_median, quantile_cont(d.lag_days, 0.25) AS lag_q1,
       quantile_cont(d.lag_days, 0.75) AS lag_q3, quantile_cont(d.lag_days_max, 0.5) AS lag_max_median,
       quantile_cont(d.lag_days_max, 0.25) AS lag_max_q1, quantile_cont(d.lag_days_max, 0.75) AS lag_max_q3,
       CASE WHEN bool_or(d.rule_kind = 'escalation') THEN count(*) - count(d.actual_day) END AS no_action
FROM results AS d
JOIN ok USING (ruleset_id, ruleset_content_hash, grid_point)
WHERE d.kind = 'decision_point'
GROUP BY d.ruleset_id, d.ruleset_content_hash, d.grid_point, d.rule_id
ORDER BY d.ruleset_id, d.ruleset_content_hash, d.grid_point, step NULLS LAST, d.rule_id
"""

_UNFLAGGED = """
SELECT ruleset_id, ruleset_content_hash, grid_point, any_value(grid) AS grid, code,
       count(DISTINCT job) AS replays, count(*) AS actions,
       count(*) FILTER (timing LIKE '% placement only') AS one_placement
FROM results WHERE kind = 'unflagged_action'
GROUP BY ruleset_id, ruleset_content_hash, grid_point, code
ORDER BY ruleset_id, ruleset_content_hash, grid_point, code
"""

_ERRORS = """
SELECT stage, file, line, "where", message, count(*) AS replays
FROM errors
GROUP BY stage, file, line, "where", message
ORDER BY file, line NULLS FIRST, message
"""

_SHARED = """
SELECT scenario_id, list(DISTINCT scenario_file ORDER BY scenario_file) AS files
FROM replays WHERE scenario_id IS NOT NULL
GROUP BY scenario_id HAVING count(DISTINCT scenario_file) > 1
ORDER BY scenario_id
"""

_COUNTS = "SELECT count(*) FILTER (status = 'ok'), count(*) FILTER (status = 'error') FROM replays"


def _records(con: Any, sql: str, model: type[BaseModel]) -> list[Any]:
    cursor = con.execute(sql)
    names = [c[0] for c in cursor.description]
    return [model(**dict(zip(names, row))) for row in cursor.fetchall()]


def summarize(out: Path) -> BatchSummary:
    """The summary of the done chunks of the batch in `out`."""
    if not out.exists():
        raise InputError(str(out), "no such folder: give a batch folder, the --out DIR of `escalation batch`")
    manifest = read_manifest(out)
    if manifest is None:
        raise InputError(str(out), "holds no batch (no manifest.json)")
    done = sorted(done_chunks(out) & set(range(manifest.chunking.chunks)))
    rules, unflagged, errors, shared, (ok, failed) = [], [], [], [], (0, 0)
    if done:
        with query_parts(out, done) as con:
            rules = _records(con, _RULES, RuleStat)
            unflagged = _records(con, _UNFLAGGED, UnflaggedStat)
            errors = _records(con, _ERRORS, ErrorStat)
            shared = _records(con, _SHARED, SharedId)
            ok, failed = con.execute(_COUNTS).fetchone()
    # each rule set's rows in the order the rule sets were given (the manifest's), not by id and hash
    order = {(r.id, r.content_hash): i for i, r in enumerate(manifest.rulesets)}
    rules.sort(key=lambda r: order.get((r.ruleset_id, r.ruleset_content_hash), len(order)))
    unflagged.sort(key=lambda u: order.get((u.ruleset_id, u.ruleset_content_hash), len(order)))
    return BatchSummary(
        out=str(out), complete=len(done) == manifest.chunking.chunks, chunks=manifest.chunking.chunks,
        chunks_done=len(done), replays_planned=manifest.chunking.jobs, replays_ok=ok, replays_failed=failed,
        rulesets=[f"{r.id} v{r.version} sha256:{r.content_hash[:16]} ({r.file})" for r in manifest.rulesets],
        grid=[f"{g.target}={g.start:g}:{g.stop:g}:{g.step:g}" for g in manifest.grid],
        unflagged_actions_recorded=manifest.unflagged_actions_recorded,
        rules=rules, unflagged=unflagged, errors=errors, shared_ids=shared)


# --- as text ---------------------------------------------------------------------------------------

def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _rule_tables(summary: BatchSummary, width: int) -> list[Table]:
    """One table per rule set; the grid point column only when there is more than one point.

    Rule ids stay whole where the width allows; below that they fold like everything else.
    """
    groups: dict[tuple[str, str], list[RuleStat]] = {}
    for r in summary.rules:
        groups.setdefault((r.ruleset_id, r.ruleset_content_hash), []).append(r)
    several = len({r.grid_point for r in summary.rules}) > 1
    tables = []
    for (rs_id, content_hash), stats in groups.items():
        table = Table(title=printable(f"{rs_id} sha256:{content_hash[:16]}: decision points (for research "
                                      "review; not orders)"), show_lines=False)
        longest = max(len(r.rule_id) + 4 for r in stats)
        whole = longest if width - (57 if several else 49) >= longest else None  # the other columns' need
        for col in (["point"] if several else []) + ["rule (step)", "flagged", "lag: median (IQR)", "no action"]:
            table.add_column(col, overflow="fold", justify="left" if col in ("point", "rule (step)") else "right",
                             min_width=whole if col == "rule (step)" else None)
        for r in stats:
            share = f"{r.flagged}/{r.replays} ({100 * r.flagged / r.replays:.0f}%)" if r.replays else "0/0"
            rule = printable(r.rule_id) + (f" ({r.step})" if r.step is not None else "")
            no_action = "-" if r.no_action is None else str(r.no_action)
            table.add_row(*([f"#{r.grid_point}"] if several else []), rule, share, _lag(r), no_action)
        tables.append(table)
    return tables


def _lag(r: RuleStat) -> str:
    """Median (IQR) of the smaller lag; of the larger too, where the placements make them differ."""
    if r.lag_median is None:
        return "-"
    low = f"{_num(r.lag_median)} ({_num(r.lag_q1)}..{_num(r.lag_q3)})"
    high = f"{_num(r.lag_max_median)} ({_num(r.lag_max_q1)}..{_num(r.lag_max_q3)})"
    return low if high == low else f"{low} to {high}"


def _grid_text(label: str) -> str:
    values = json.loads(label)
    return ", ".join(f"{k}={v:g}" for k, v in values.items()) or "(no overrides)"


def _points(summary: BatchSummary) -> str:
    seen = dict(sorted({r.grid_point: r.grid for r in summary.rules}.items()))
    return "Grid points: " + "; ".join(f"#{i} {_grid_text(g)}" for i, g in seen.items())


def to_text(summary: BatchSummary, width: int = FALLBACK_WIDTH) -> str:
    """The summary for people: notice, progress, the rule table, unflagged actions, errors."""
    buf = io.StringIO()
    console = buffer_console(buf, width)
    console.print(Text(summary.notice, style="bold"))
    state = "complete" if summary.complete else "INCOMPLETE (run the batch again with --resume)"
    console.print(printable(f"Batch {summary.out}: {summary.chunks_done} of {summary.chunks} chunks done, "
                            f"{state}; replays: {summary.replays_ok} ran, {summary.replays_failed} failed, "
                            f"{summary.replays_planned} planned."), markup=False)
    for rs in summary.rulesets:
        console.print(printable(f"Rule set {rs}"), markup=False)
    console.print(printable("Grid: " + ("; ".join(summary.grid) or "none (each rule set as written)")),
                  markup=False)
    _shared_text(console, summary)
    if summary.rules:
        if len({r.grid_point for r in summary.rules}) > 1:
            console.print(printable(_points(summary)), markup=False)
        for table in _rule_tables(summary, width):
            console.print(table)
        console.print("flagged = replays in which the rule fired, of those that ran; lag = actual day - flag "
                      "day (days, the smaller over the two placements, then 'to' the larger where they differ); "
                      "no action = decision points with no matching action ('-' for a watch or context rule, "
                      "which proposes no step; a watch matched to an action, such as prophylaxis, still has "
                      "a lag). Rules that never fired are not listed.")
    else:
        console.print(Text("No decision points in the done chunks.", style="bold"))
    _unflagged_text(console, summary)
    _errors_text(console, summary)
    console.print(Text(summary.notice, style="bold"))
    return rendered(buf)


def _shared_text(console: Any, summary: BatchSummary, shown: int = 5) -> None:
    """A note when files share a scenario id: two exports of one patient are two replays here."""
    if not summary.shared_ids:
        return
    n = len(summary.shared_ids)
    listed = "; ".join(f"{s.scenario_id} ({', '.join(s.files)})" for s in summary.shared_ids[:shown])
    console.print(printable(f"Note: {n} scenario id{'s are' if n > 1 else ' is'} given by more than one file, and "
                            f"each file is replayed and counted on its own (the same patient twice counts twice): "
                            f"{listed}{f'; and {n - shown} more' if n > shown else ''}."), markup=False)


def _unflagged_text(console: Any, summary: BatchSummary) -> None:
    console.print(Text("Actions no rule flagged:", style="bold"))
    if not summary.unflagged_actions_recorded:
        console.print("  not recorded: this version's replay does not report them yet")
    elif not summary.unflagged:
        console.print("  none")
    for u in summary.unflagged:
        alone = f", {u.one_placement} of them under one timing placement only" if u.one_placement else ""
        console.print(printable(f"  - {u.ruleset_id} sha256:{u.ruleset_content_hash[:16]} #{u.grid_point} "
                                f"{_grid_text(u.grid)}: {u.code or '?'} "
                                f"in {plural(u.replays, 'replay')} ({plural(u.actions, 'action')}{alone})"), markup=False)


def _errors_text(console: Any, summary: BatchSummary) -> None:
    console.print(Text("Replays that failed (the others went on):", style="bold"))
    if not summary.errors:
        console.print("  none")
    for e in summary.errors:
        place = e.file + (f":{e.line}" if e.line is not None else "") + (f" ({e.where})" if e.where else "")
        console.print(printable(f"  - {place}: {e.message} [{e.stage}; {plural(e.replays, 'replay')}]"), markup=False)
