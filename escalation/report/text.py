"""Replay results rendered for people (a table) and for programs (JSON).

Both renderings come from the same `ReplayResult` and both open with the research-only notice.
The JSON is produced with sorted keys and fixed indentation so that the same inputs give
byte-identical output, which is what lets a rule-set change be reviewed as a text diff.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from escalation.load.ruleset import shown_value
from escalation.load.timing import span_label
from escalation.match.results import (
    CandidateRule,
    ConditionNotMet,
    DecisionPoint,
    ReplayResult,
    RulesetOut,
    actual_text,
    lag_text,
    marks,
)
from escalation.report.console import FALLBACK_WIDTH, Printer, printable

if TYPE_CHECKING:  # Rich is imported by the table, so that JSON output never loads it
    from rich.table import Table
    from rich.text import Text


def to_json(result: ReplayResult) -> str:
    return json.dumps(result.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _met(dp: DecisionPoint) -> str:
    """One line per condition; a copy of the index case and a match through the kinds say so."""
    return "\n".join(f"{c.condition}: {c.met_by}" + "".join(f" ({k})" for k in c.kinds)
                     + (" (case-specific)" if c.case_specific else "") for c in dp.conditions)


def _why(dp: DecisionPoint, styled: bool) -> Text:
    """What a rule puts up for review, the conditions met, and the sources.

    In colour the cell is bold (the Text's own style covers all of it) and the sources italic too.
    Without colour no style shows, so the cell is one plain Text: the same bytes, and Rich lays out
    a cell with no style spans faster.
    """
    from rich.text import Text

    head, met = printable("for review: " + ", ".join(dp.proposes)), printable(_met(dp))
    in_place = [f"{a.code} already in place since day {span_label(a.day, a.day_latest)}"
                for a in dp.actions if a.already_in_place]
    if in_place:  # what makes the lag negative, said where it is read
        met += "\n" + printable("in the timeline: " + "; ".join(in_place))
    sources = printable("; ".join(dp.sources))
    if not styled:
        return Text(f"{head}\n{met}\n{sources}")
    why = Text(head, style="bold")
    why.append("\n" + met)
    why.append("\n" + sources, style="italic")
    return why


# The least width of the conditions column; below it the narrow columns fold instead.
CONDITIONS_MIN = 20
_BORDERS = 16  # five columns: six rules and a space either side of each cell


def _decision_table(result: ReplayResult, styled: bool, width: int = FALLBACK_WIDTH) -> Table:
    """One row per decision point; cells fold at any width, and rule ids are never cut where
    the width allows.

    What a rule puts up for review heads its conditions, and the sources follow them, so that
    all the wide text shares one column and the table still reads at 80 columns. Below that,
    where the day, rule, actual and lag columns kept whole would leave the conditions fewer than
    CONDITIONS_MIN columns (at 60, one), those columns fold too.
    """
    from rich.table import Table
    from rich.text import Text

    rows = []
    for dp in result.decision_points:
        rule = dp.rule_id + (f"\nstep {dp.step}" if dp.step else f"\n{dp.kind}")
        rule += "".join(f"\n{m}" for m in marks(dp))
        day = span_label(dp.day, dp.day_latest) + (f"\n({dp.timing})" if dp.timing.endswith("only") else "")
        rows.append((day, printable(rule), dp, actual_text(dp), lag_text(dp)))
    shares, rule_min = _narrow_widths(rows, width)
    table = Table(title="Decision points (put up for research review; not orders)", show_lines=True,
                  expand=True)
    for col, kw in (("day", {"justify": "right", "no_wrap": True}),
                    ("rule / step", {"no_wrap": True, "min_width": rule_min}),
                    ("for review; conditions met (values); sources", {"ratio": 1}),
                    ("actual", {"justify": "right", "no_wrap": True}),
                    ("lag", {"justify": "right", "no_wrap": True})):
        table.add_column(col, overflow="fold", **kw)
    if shares:  # too narrow to keep them whole: each folds within a share of what is left
        for column, share in zip([table.columns[i] for i in (0, 1, 3, 4)], shares):
            column.width, column.no_wrap, column.min_width = share, False, None
    for day, rule, dp, actual, lag in rows:
        table.add_row(Text(day), Text(rule), _why(dp, styled),
                      Text(actual), Text(lag))  # file text as written, never as markup
    return table


def _narrow_widths(rows: list[tuple], width: int) -> tuple[list[int], int | None]:
    """The widths of the day, rule, actual and lag columns, and the rule column's least width.

    Kept whole (widths [] and the longest rule id) where that leaves the conditions at least
    CONDITIONS_MIN columns; else each is given a share of what the conditions leave, in
    proportion to its longest line (at least 3), and folds inside it."""
    heads = ("day", "rule / step", "actual", "lag")
    natural = [max([len(h)] + [len(line) for r in rows for line in r[i].splitlines()])
               for i, h in zip((0, 1, 3, 4), heads)]
    room = width - _BORDERS - CONDITIONS_MIN
    if sum(natural) <= room:
        return [], natural[1]
    shares = [max(3, n * room // sum(natural)) for n in natural]
    return shares, None


def _not_met(c: ConditionNotMet) -> str:
    return (f"{c.condition}: {c.read_as}" + "".join(f" ({k})" for k in c.kinds)
            + (" (case-specific)" if c.case_specific else ""))


def candidate_text(cand: CandidateRule) -> str:
    """A rule that could have put the action up for review, and what did not hold that day."""
    where = "" if len(cand.placements) != 1 else f", {cand.placements[0]} placement"
    head = f"{cand.rule_id}{f' (step {cand.step})' if cand.step else ''}, day {cand.day}{where}:"
    body = [cand.note] if cand.note else ["not met: " + _not_met(c) for c in cand.not_met]
    return "\n".join([head, *body])


def _unflagged_table(result: ReplayResult) -> Table:
    """One row per action no decision point was matched to, with the rules that could have been."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Actions without a decision point (UNFLAGGED: research material about the rules, "
                  "not about the care given)", show_lines=True, expand=True)
    for col, kw in (("day", {"justify": "right", "no_wrap": True}),
                    ("action", {"no_wrap": True}),
                    ("rules that could have proposed it; conditions not met that day (values)", {"ratio": 1})):
        table.add_column(col, overflow="fold", **kw)
    for a in result.unflagged_actions:
        placements = "" if len(a.placements) == 2 else f"\n({a.placements[0]} placement only)"
        action = f"{a.code}\nUNFLAGGED\n{a.event_id}"
        why = "\n".join(candidate_text(c) for c in a.candidates)
        table.add_row(Text(span_label(a.day, a.day_latest) + placements), Text(printable(action)),
                      Text(printable(why)))
    return table


def to_table(result: ReplayResult, width: int = FALLBACK_WIDTH, color: bool = False) -> str:
    """A plain-text report: notice, decision points, findings, derived doses, assumptions."""
    out = Printer(width, color)
    out.line(result.notice, style="bold")
    out.line(printable(f"Scenario {result.scenario.id}: {result.scenario.title} "
                       f"(days {result.scenario.first_day}..{result.scenario.last_day}; day 0 = "
                       f"{result.scenario.day_zero})"))
    if result.scenario.hypothetical or result.scenario.hypothetical_events:
        out.line(printable("HYPOTHETICAL: counterfactual events, in no source: "
                           + (", ".join(result.scenario.hypothetical_events) or "none")))
    if result.scenario.fhir_import:
        out.line(printable(f"FHIR: {result.scenario.fhir_import}"))
    rs = result.ruleset
    out.line(printable(f"Rule set {rs.id} v{rs.version} sha256:{rs.content_hash[:16]}"
                       + (f" overrides: {', '.join(f'{k}={shown_value(v)}' for k, v in rs.overrides.items())}"
                          if rs.overrides else "")))
    if result.decision_points:
        out.table(_decision_table(result, styled=color, width=width))
    else:
        out.line("No decision points: no rule of this rule set fired on any day.", style="bold")
    if result.unflagged_actions:
        out.table(_unflagged_table(result))
    else:
        out.line("No actions without a decision point: every action a rule of this set can propose "
                 "was matched to one.", markup=True)
    out.line("Day ranges (a..b) come from timing the source gives only as a range; "
             "lag = actual day - flag day.", markup=True)
    _findings(out, result)
    if result.derived_doses:
        out.line("Doses implied by the regimens (derived, for review):", style="bold")
        for d in result.derived_doses:
            out.item(f"  - {d.implied}")
    _ruleset_notes(out, rs)
    _why_not(out, result)
    out.line(result.notice, style="bold")
    return out.text()


def _findings(out: Printer, result: ReplayResult) -> None:
    """The data-consistency findings, the checks that agree, and the tolerance they were read with."""
    out.line("Data-consistency findings (research material about the source, not errors):", style="bold")
    for f in result.findings:
        out.item(f"  - [{f.kind}] {f.message}")
    if not result.findings:
        out.line("  none", markup=True)
    agreeing = [c for c in result.checks if c.agrees]
    if agreeing:
        out.line(f"Checks that agree ({len(agreeing)}):", markup=True)
        for c in agreeing:
            out.item(f"  - [{c.kind}] {c.message}")
    out.line(f"Tolerance: {result.tolerance}.", markup=True)


def ruleset_notes(rs: RulesetOut) -> list[tuple[str, list[str]]]:
    """The rule set's modelling assumptions and its conditions that copy the index case, as
    (heading, items): the list every text output closes with (none when it has neither)."""
    notes = []
    if rs.assumptions:
        notes.append(("Modelling assumptions (thresholds no source states):", ["  " + ", ".join(rs.assumptions)]))
    if rs.case_specific:
        notes.append(("Case-specific conditions (they copy the index case; no source states them "
                      "as criteria; the rule files say why):", [f"  - {c}" for c in rs.case_specific]))
    return notes


def ruleset_notes_text(rs: RulesetOut) -> str:
    """`ruleset_notes` as plain lines, for outputs not printed through a Printer (fold them with
    `plain_text`); empty when the rule set has neither."""
    return "\n".join(line for heading, items in ruleset_notes(rs) for line in (heading, *items))


def _ruleset_notes(out: Printer, rs: RulesetOut) -> None:
    """The rule set's modelling assumptions and its conditions that copy the index case."""
    for heading, items in ruleset_notes(rs):
        out.line(heading, style="bold")
        for item in items:
            out.item(item)


def _why_not(out: Printer, result: ReplayResult) -> None:
    """One line for each rule that never fired: its closest day and what failed then."""
    out.line("Why not (rules that never fired, and the day they came closest):", style="bold")
    if not result.why_not:
        out.line("  none: every rule fired", markup=True)
    for w in result.why_not:
        out.item(f"  - {w.text}")
