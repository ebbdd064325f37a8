"""`escalation cohort ...`: the literature cohort of Table 1 on the command line.

A Typer sub-app; the main app mounts it with `app.add_typer(cohort_app, name="cohort")`. Same
conventions as escalation/cli/app.py: every input is validated before anything is computed, a bad
file costs one `error: FILE:LINE (PATH): message` line on standard error and exit code 2, JSON is
written with sorted keys and fixed indentation, and every output opens with the research-only
notice.
"""

from __future__ import annotations

import io
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from escalation.evaluate.engine import EngineError
from escalation.literature.check import CohortCheck, check
from escalation.literature.placement import DEFAULT_RULES, CohortPlacement, placement
from escalation.literature.records import DEFAULT_RECORDS, load_records
from escalation.literature.summary import CohortSummary, summary
from escalation.load.errors import InputError
from escalation.match.results import NOTICE

EXIT_BAD_INPUT = 2
EXIT_ENGINE = 3
WIDTH = 160

cohort_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Table 1 of the report (18 published cases) as data: summary figures recomputed, the index "
         "case cross-checked, each case placed on the pathway. " + NOTICE,
)


class Format(str, Enum):
    table = "table"
    json = "json"


RecordsOpt = Annotated[Optional[Path], typer.Option("--records", help=f"records file (default: {DEFAULT_RECORDS})")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table for people, json for programs")]


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def to_json(model: BaseModel) -> str:
    """Sorted keys, fixed indentation; every output model's first key is `notice`."""
    return json.dumps(model.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _console(buf: io.StringIO) -> Console:
    return Console(file=buf, width=WIDTH, color_system=None, force_terminal=False, highlight=False, emoji=False)


def summary_table(result: CohortSummary) -> str:
    buf = io.StringIO()
    console = _console(buf)
    console.print(f"Records: {result.records_file}", markup=False)
    table = Table(title="Figures of the report's summary paragraph, recomputed from Table 1", show_lines=True)
    for col, kw in (("figure", {}), ("report", {}), ("Table 1", {}), ("verdict", {}), ("how", {"ratio": 1})):
        table.add_column(col, **kw)
    for f in result.results:
        table.add_row(f"{f.id}\n{f.statement}", f.stated, f.computed if f.computed is not None else "-",
                      f.verdict, f.basis)
    console.print(table)
    counts = {v: sum(f.verdict == v for f in result.results) for v in ("agrees", "disagrees", "cannot be checked")}
    console.print(", ".join(f"{n} {v}" for v, n in counts.items()), markup=False)
    console.print(f"Units: {result.units}", markup=False)
    return NOTICE + "\n" + buf.getvalue() + NOTICE + "\n"


def check_table(result: CohortCheck) -> str:
    buf = io.StringIO()
    console = _console(buf)
    console.print(f"Records: {result.records_file}", markup=False)
    if not result.pairs:
        console.print("No record links a timeline; nothing to compare.")
    for pair in result.pairs:
        table = Table(title=f"{pair.record} (Table 1) against {pair.timeline_file}", show_lines=True)
        for col, kw in (("item", {}), ("Table 1", {}), ("timeline", {"ratio": 1}), ("verdict", {}),
                        ("note", {"ratio": 1})):
            table.add_column(col, **kw)
        for c in pair.results:
            table.add_row(c.item, c.table1, c.timeline, c.verdict, c.note)
        console.print(table)
        console.print(f"Findings ({len(pair.problems)} that do not simply agree):", markup=False)
        for c in pair.problems:
            console.print(f"  - [{c.verdict}] {c.item}: Table 1 {c.table1!r}, timeline {c.timeline!r}. {c.note}",
                          markup=False)
        for item in pair.not_compared:
            console.print(f"Not compared: {item}", markup=False)
    return NOTICE + "\n" + buf.getvalue() + NOTICE + "\n"


def placement_table(result: CohortPlacement) -> str:
    buf = io.StringIO()
    console = _console(buf)
    console.print(f"Records: {result.records_file}; rule set: {result.rules_file}", markup=False)
    steps: dict[int, list[str]] = {}
    for code, step in result.step_map.items():
        steps.setdefault(step, []).append(code)
    console.print("Steps: " + "; ".join(f"{s}: {', '.join(c)}" for s, c in sorted(steps.items()))
                  + " (ECMO from the ECMO column; a step counts when anything of it was given at any time)",
                  markup=False)
    console.print(_cases_table(result))
    console.print(_steps_table(result))
    _print_replays(console, result)
    return NOTICE + "\n" + buf.getvalue() + NOTICE + "\n"


def _cases_table(result: CohortPlacement) -> Table:
    cases = Table(title="Each case: steps reached and outcome", show_lines=False)
    for col in ("row", "case", "treatments", "ECMO", "steps reached", "highest", "outcome", "to death", "replay"):
        cases.add_column(col)
    for c in result.placements:
        highest = "?" if c.highest_step is None else str(c.highest_step)
        if c.may_be_higher and c.highest_step is not None:
            highest += " (or higher)"
        treatments = c.treatments if isinstance(c.treatments, str) else ", ".join(c.treatments)
        replay = ("yes: steps " + ", ".join(map(str, c.replay.steps_flagged))) if c.replay.possible else "no"
        cases.add_row(str(c.row), f"{c.record}\n{c.reference}", treatments, c.ecmo, ", ".join(c.steps_reached) or "-",
                      highest, c.outcome, c.time_to_death, replay)
    return cases


def _steps_table(result: CohortPlacement) -> Table:
    table = Table(title="Highest step reached against outcome", show_lines=False)
    for col in ("step", "cases (highest)", "deaths", "of which may be higher", "received at all", "deaths"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for r in result.steps_table:
        table.add_row(r.step, str(r.highest), str(r.highest_deaths), str(r.highest_may_be_higher),
                      str(r.received), str(r.received_deaths))
    return table


def _print_replays(console: Console, result: CohortPlacement) -> None:
    """The replayed cases with their decision points; the others grouped by why they were not replayed."""
    console.print("Replays:", markup=False)
    for c in result.placements:
        if c.replay.possible:
            console.print(f"  {c.record}: {c.replay.timeline_file} with {c.replay.ruleset}; {c.replay.against_table}",
                          markup=False)
            for d in c.replay.decision_points:
                day = str(d.day) if d.day == d.day_latest else f"{d.day}..{d.day_latest}"
                console.print(f"    day {day}: {d.rule_id} (step {d.step})", markup=False)
    reasons: dict[str, list[str]] = {}
    for c in result.placements:
        if not c.replay.possible:
            reasons.setdefault(c.replay.why, []).append(c.record)
    for why, ids in reasons.items():
        console.print(f"  not replayed ({len(ids)}: {', '.join(ids)}): {why}", markup=False)


@cohort_app.command("summary")
def summary_cmd(fmt: FormatOpt = Format.table, records: RecordsOpt = None) -> None:
    """Every figure the report states about the 18 cases, recomputed from Table 1, with a verdict."""
    try:
        result = summary(load_records(records), records)
    except InputError as exc:
        _fail(str(exc))
    sys.stdout.write(to_json(result) if fmt == Format.json else summary_table(result))


@cohort_app.command("check")
def check_cmd(fmt: FormatOpt = Format.table, records: RecordsOpt = None) -> None:
    """Compare the present case's row of Table 1 with its timeline (scenarios/index_case.yaml)."""
    try:
        result = check(load_records(records), records)
    except InputError as exc:
        _fail(str(exc))
    sys.stdout.write(to_json(result) if fmt == Format.json else check_table(result))


@cohort_app.command("placement")
def placement_cmd(
    fmt: FormatOpt = Format.table,
    records: RecordsOpt = None,
    rules: Annotated[Optional[Path], typer.Option("--rules", "-r", help=f"rule set (default: {DEFAULT_RULES})")] = None,
) -> None:
    """Highest pathway step each case reached, against outcome; replays where a timeline exists."""
    try:
        result = placement(load_records(records), records, rules)
    except InputError as exc:
        _fail(str(exc))
    except EngineError as exc:
        _fail(f"rule engine: {exc}", EXIT_ENGINE)
    sys.stdout.write(to_json(result) if fmt == Format.json else placement_table(result))
