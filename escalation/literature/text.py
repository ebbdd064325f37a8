"""The literature cohort's results as tables for people.

Each table folds its cells to the width it is given, and every text that came from the records
file passes through `printable` before it reaches a terminal.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from escalation.literature.check import CohortCheck
from escalation.literature.placement import CohortPlacement
from escalation.literature.summary import CohortSummary
from escalation.match.results import NOTICE
from escalation.report.console import FALLBACK_WIDTH, buffer_console, plain_text, printable, rendered


def _framed(body: str, width: int) -> str:
    """The notice above and below, folded to the width like everything else."""
    notice = plain_text(NOTICE, width)
    return f"{notice}\n{printable(body)}{notice}\n"


def summary_table(result: CohortSummary, width: int = FALLBACK_WIDTH) -> str:
    buf = io.StringIO()
    console = buffer_console(buf, width)
    console.print(f"Records: {result.records_file}", markup=False)
    table = Table(title="Figures of the report's summary paragraph, recomputed from Table 1", show_lines=True)
    for col, kw in (("figure", {}), ("report", {}), ("Table 1", {}), ("verdict", {}), ("how", {"ratio": 1})):
        table.add_column(col, overflow="fold", **kw)
    for f in result.results:
        table.add_row(f"{f.id}\n{f.statement}", f.stated, f.computed if f.computed is not None else "-",
                      f.verdict, f.basis)
    console.print(table)
    counts = {v: sum(f.verdict == v for f in result.results) for v in ("agrees", "disagrees", "cannot be checked")}
    console.print(", ".join(f"{n} {v}" for v, n in counts.items()), markup=False)
    console.print(f"Units: {result.units}", markup=False)
    return _framed(rendered(buf), width)


def check_table(result: CohortCheck, width: int = FALLBACK_WIDTH) -> str:
    buf = io.StringIO()
    console = buffer_console(buf, width)
    console.print(f"Records: {result.records_file}", markup=False)
    if not result.pairs:
        console.print("No record links a timeline; nothing to compare.")
    for pair in result.pairs:
        table = Table(title=f"{pair.record} (Table 1) against {pair.timeline_file}", show_lines=True)
        for col, kw in (("item", {}), ("Table 1", {}), ("timeline", {"ratio": 1}), ("verdict", {}),
                        ("note", {"ratio": 1})):
            table.add_column(col, overflow="fold", **kw)
        for c in pair.results:
            table.add_row(c.item, c.table1, c.timeline, c.verdict, c.note)
        console.print(table)
        console.print(f"Findings ({len(pair.problems)} that do not simply agree):", markup=False)
        for c in pair.problems:
            console.print(f"  - [{c.verdict}] {c.item}: Table 1 {c.table1!r}, timeline {c.timeline!r}. {c.note}",
                          markup=False)
        for item in pair.not_compared:
            console.print(f"Not compared: {item}", markup=False)
    return _framed(rendered(buf), width)


def placement_table(result: CohortPlacement, width: int = FALLBACK_WIDTH) -> str:
    buf = io.StringIO()
    console = buffer_console(buf, width)
    console.print(f"Records: {result.records_file}; rule set: {result.rules_file}", markup=False)
    steps: dict[int, list[str]] = {}
    for code, step in result.step_map.items():
        steps.setdefault(step, []).append(code)
    console.print("Steps: " + "; ".join(f"{s}: {', '.join(c)}" for s, c in sorted(steps.items()))
                  + " (ECMO from the ECMO column; a step counts when anything of it was given at any time)",
                  markup=False)
    console.print(f"MODELLING ASSUMPTION: {result.placement_assumption}", markup=False)
    console.print(_cases_table(result))
    console.print(_steps_table(result))
    _print_replays(console, result)
    return _framed(rendered(buf), width)


def _cases_table(result: CohortPlacement) -> Table:
    cases = Table(title="Each case: steps reached and outcome", show_lines=False)
    for col in ("row", "case", "treatments", "ECMO", "steps reached", "highest", "outcome", "to death", "replay"):
        cases.add_column(col, overflow="fold")
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
        table.add_column(col, overflow="fold", justify="left" if col == "step" else "right")
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
