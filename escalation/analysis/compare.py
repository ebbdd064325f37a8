"""Two rule sets on the same scenario: which decision points appear, disappear or move.

Rule ids differ between rule sets, so decision points are paired by what they put up for review:
the k-th decision point proposing a code under one set is paired with the k-th proposing the
same code under the other. A step that proposes several codes (a combination) takes part once
per code. This reads replay results only.
"""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from rich import box
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from escalation.load.timing import span_label
from escalation.report.console import FALLBACK_WIDTH, buffer_console, plain_text, printable, rendered
from escalation.match.results import DecisionPoint, ReplayResult, RulesetOut, marks
from escalation.report.text import ruleset_notes_text


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Side(_Out):
    rule_id: str
    day: int
    day_latest: int
    timing: str = Field(description="as the decision point's: exact, range, or early/late placement only")
    rests_on_assumption: bool = Field(description="the rule uses a threshold no source states (the decision "
                                      "point's own mark in a replay)")
    rests_on_case_specific: bool = Field(description="a condition it met copies the index case (as in a replay)")
    rests_on_disputed_value: bool = Field(description="a condition it met read an index the rules recompute "
                                          "where the source reports another figure (as in a replay)")


class Change(_Out):
    code: str
    occurrence: int
    status: str = Field(description="same, moved, appears (only in B), disappears (only in A), or placements "
                                    "(the same days, under other timing placements: one side fires under one alone)")
    a: Side | None
    b: Side | None
    shift_days: int | None = Field(description="B's earliest day minus A's earliest day")
    shift_days_latest: int | None = Field(description="B's latest day minus A's latest day")


class ActionSide(_Out):
    """What one rule set made of an action in the timeline."""

    status: Literal["flagged", "unflagged", "not proposed"] = Field(
        description="flagged: a decision point was matched to it under every placement; unflagged: under "
        "some placement none was; not proposed: no rule of the set proposes its code")
    placements: list[Literal["early", "late"]] = Field(description="the placements it is unflagged under")
    flagged_by: list[str] = Field(description="rules whose decision points were matched to it")
    could_flag: list[str] = Field(description="for an unflagged action, the rules that could have proposed it")


class ActionChange(_Out):
    """An action unflagged under at least one of the two rule sets, and how each set treats it."""

    code: str
    event_id: str
    day: int
    day_latest: int
    status: Literal["same", "changed"]
    a: ActionSide
    b: ActionSide


class ScenarioDiff(_Out):
    scenario: str
    file: str
    changes: list[Change]
    unflagged: list[ActionChange] = Field(
        default=[], description="actions without a decision point under A or B (or both)")


class RulesetDiff(_Out):
    notice: str
    a: str
    b: str
    ruleset_a: RulesetOut = Field(description="rule set A as a replay's JSON names it: id, version, content "
                                  "hash, its modelling assumptions and case-specific conditions")
    ruleset_b: RulesetOut = Field(description="rule set B, the same way")
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
        side = lambda dp: None if dp is None else Side(  # noqa: E731
            rule_id=dp.rule_id, day=dp.day, day_latest=dp.day_latest, timing=dp.timing,
            rests_on_assumption=dp.rests_on_assumption, rests_on_case_specific=dp.rests_on_case_specific,
            rests_on_disputed_value=dp.rests_on_disputed_value)
        if da is None or db is None:
            status, shift, shift_hi = ("appears" if da is None else "disappears"), None, None
        else:
            shift, shift_hi = db.day - da.day, db.day_latest - da.day_latest
            status = "moved" if shift or shift_hi else "same" if da.timing == db.timing else "placements"
        changes.append(Change(code=key[0], occurrence=key[1], status=status, a=side(da), b=side(db),
                              shift_days=shift, shift_days_latest=shift_hi))
    return ScenarioDiff(scenario=a.scenario.id, file=a.scenario.file, changes=changes,
                        unflagged=diff_unflagged(a, b))


def _action_side(result: ReplayResult, event_id: str) -> ActionSide:
    flagged_by = sorted({dp.rule_id for dp in result.decision_points
                         if any(x.event_id == event_id for x in dp.actions)})
    action = next((x for x in result.unflagged_actions if x.event_id == event_id), None)
    if action is not None:
        could = list(dict.fromkeys(c.rule_id for c in action.candidates))
        return ActionSide(status="unflagged", placements=action.placements, flagged_by=flagged_by, could_flag=could)
    return ActionSide(status="flagged" if flagged_by else "not proposed", placements=[], flagged_by=flagged_by,
                      could_flag=[])


def diff_unflagged(a: ReplayResult, b: ReplayResult) -> list[ActionChange]:
    """Every action unflagged under A or B, with what the other set made of it: an action can be
    unflagged under one rule set and flagged under another."""
    actions = {x.event_id: x for x in [*b.unflagged_actions, *a.unflagged_actions]}
    out = []
    for x in sorted(actions.values(), key=lambda x: (x.day, x.day_latest, x.code, x.event_id)):
        sa, sb = _action_side(a, x.event_id), _action_side(b, x.event_id)
        same = (sa.status, sa.placements) == (sb.status, sb.placements)
        out.append(ActionChange(code=x.code, event_id=x.event_id, day=x.day, day_latest=x.day_latest,
                                status="same" if same else "changed", a=sa, b=sb))
    return out


def action_text(side: ActionSide) -> str:
    """`unflagged (could: step4-rituximab)`, `flagged by rb-refractory-add-on`, `no rule proposes it`."""
    if side.status == "unflagged":
        where = "" if len(side.placements) == 2 else f" under the {side.placements[0]} placement"
        return f"UNFLAGGED{where} (could: {', '.join(side.could_flag)})"
    if side.status == "flagged":
        return f"flagged by {', '.join(side.flagged_by)}"
    return "no rule proposes it"


DISPUTED_LEGEND = ("DISPUTED-VALUE: a condition the decision point met read an index the rules recompute from "
                   "the record where the source reports another figure (`escalation replay` shows both)")


def side_marks(s: Side | None) -> list[str]:
    """The marks a replay gives the side's decision point (results.marks); none for no side."""
    return [] if s is None else marks(s)


def _when(s: Side | None) -> str:
    """The side's days and rule, with the marks a replay gives its decision point."""
    if s is None:
        return "-"
    return " ".join([f"{span_label(s.day, s.day_latest)} {s.rule_id}" + (
        f" ({s.timing})" if s.timing.endswith("only") else ""), *side_marks(s)])


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
    """For people: per scenario, the decision points that appear, disappear or move (all, with show_same),
    each marked as a replay marks it (ASSUMPTION, CASE-SPECIFIC, and DISPUTED-VALUE, explained
    below the tables where it is shown); then each rule set's modelling
    assumptions and case-specific conditions, as a replay lists them."""
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
        actions = [c for c in sd.unflagged if show_same or c.status != "same"]
        if actions:
            console.print("  Actions without a decision point under A or B:")
            console.print(Padding(_actions_table(actions), (0, 0, 0, 2)))
        else:
            console.print("  no action is flagged under one rule set and unflagged under the other")
        console.print()
    sides = [side for sd in diff.scenarios for c in sd.changes if show_same or c.status != "same"
             for side in (c.a, c.b) if side is not None]
    if any(side.rests_on_disputed_value for side in sides):
        console.print(plain_text(DISPUTED_LEGEND, width), markup=False)
        console.print()
    notes = [f"Rule set {name}, {label}:\n"
             + (ruleset_notes_text(rs) or "no modelling assumptions, no case-specific conditions")
             for name, label, rs in (("A", diff.a, diff.ruleset_a), ("B", diff.b, diff.ruleset_b))]
    console.print(plain_text("\n\n".join(notes), width), markup=False)
    return rendered(buf)


def _actions_table(changes: list[ActionChange]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    for col in ("action", "day", "status", "A", "B"):
        table.add_column(col, overflow="fold")
    for c in changes:
        table.add_row(*(Text(printable(x)) for x in (
            f"{c.code} ({c.event_id})", span_label(c.day, c.day_latest), c.status, action_text(c.a), action_text(c.b))))
    return table
