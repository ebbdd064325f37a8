"""Two rule sets on the same scenario: which decision points appear, disappear or move.

Rule ids differ between rule sets, so decision points are paired by what they put up for review:
the k-th decision point proposing a code under one set is paired with the k-th proposing the
same code under the other. A step that proposes several codes (a combination) takes part once
per code. This reads replay results only.
"""

from __future__ import annotations

import io
from collections import defaultdict

from pydantic import BaseModel, ConfigDict, Field
from rich import box
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from escalation.load.timing import span_label
from escalation.report.console import FALLBACK_WIDTH, buffer_console, printable, rendered
from escalation.match.results import DecisionPoint, ReplayResult


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Side(_Out):
    rule_id: str
    day: int
    day_latest: int


class Change(_Out):
    code: str
    occurrence: int
    status: str = Field(description="same, moved, appears (only in B) or disappears (only in A)")
    a: Side | None
    b: Side | None
    shift_days: int | None = Field(description="B's earliest day minus A's earliest day")
    shift_days_latest: int | None = Field(description="B's latest day minus A's latest day")


class ScenarioDiff(_Out):
    scenario: str
    file: str
    changes: list[Change]


class RulesetDiff(_Out):
    notice: str
    a: str
    b: str
    scenarios: list[ScenarioDiff]


def _by_code(result: ReplayResult) -> dict[tuple[str, int], DecisionPoint]:
    counts: dict[str, int] = defaultdict(int)
    out: dict[tuple[str, int], DecisionPoint] = {}
    for dp in result.decision_points:
        for code in dp.proposes:
            counts[code] += 1
            out[(code, counts[code])] = dp
    return out


def diff_results(a: ReplayResult, b: ReplayResult) -> ScenarioDiff:
    left, right = _by_code(a), _by_code(b)
    changes = []
    for key in sorted(set(left) | set(right), key=lambda k: (
            min(dp.day for dp in (left.get(k), right.get(k)) if dp is not None), k)):
        da, db = left.get(key), right.get(key)
        side = lambda dp: None if dp is None else Side(rule_id=dp.rule_id, day=dp.day, day_latest=dp.day_latest)  # noqa: E731
        if da is None or db is None:
            status, shift, shift_hi = ("appears" if da is None else "disappears"), None, None
        else:
            shift, shift_hi = db.day - da.day, db.day_latest - da.day_latest
            status = "same" if shift == shift_hi == 0 else "moved"
        changes.append(Change(code=key[0], occurrence=key[1], status=status, a=side(da), b=side(db),
                              shift_days=shift, shift_days_latest=shift_hi))
    return ScenarioDiff(scenario=a.scenario.id, file=a.scenario.file, changes=changes)


def _when(s: Side | None) -> str:
    return "-" if s is None else f"{span_label(s.day, s.day_latest)} {s.rule_id}"


def shift_text(c: Change) -> str:
    """The shift in days as '+14', or '-17..-7' when the two ends of a range move differently."""
    if c.shift_days is None:
        return ""
    lo, hi = sorted((c.shift_days, c.shift_days_latest))  # type: ignore[type-var]
    return f"{lo:+d}" if lo == hi else f"{lo:+d}..{hi:+d}"


def _changes_table(changes: list[Change]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    for col in ("for review", "status", "A", "B", "shift (days)"):
        table.add_column(col, overflow="fold")
    for c in changes:
        code = c.code + (f" #{c.occurrence}" if c.occurrence > 1 else "")
        table.add_row(*(Text(printable(x)) for x in (code, c.status, _when(c.a), _when(c.b), shift_text(c))))
    return table


def to_text(diff: RulesetDiff, show_same: bool = False, width: int = FALLBACK_WIDTH) -> str:
    """For people: per scenario, the decision points that appear, disappear or move (all, with show_same)."""
    buf = io.StringIO()
    console = buffer_console(buf, width)
    for line in (diff.notice, "", f"A = {diff.a}", f"B = {diff.b}", ""):
        console.print(printable(line), markup=False)
    for sd in diff.scenarios:
        console.print(printable(f"{sd.scenario} ({sd.file})"), markup=False)
        shown = [c for c in sd.changes if show_same or c.status != "same"]
        if shown:
            console.print(Padding(_changes_table(shown), (0, 0, 0, 2)))
        else:
            console.print("  no decision point appears, disappears or moves")
        console.print()
    return rendered(buf)
