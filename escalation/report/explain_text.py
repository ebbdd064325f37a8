"""`escalation explain` for people: per rule and placement, what decided its day, then every
condition day by day.

Days on which the same conditions held (and the rule did or did not fire) are one row, `a..b`,
with the value read on the first and last of them; the JSON (`--format json`) keeps every day.
Like every output it opens and closes with the research-only notice.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from escalation.load.timing import span_label
from escalation.match.explanation import ConditionInfo, DayRow, Explanation, PlacementExplanation, RuleExplanation
from escalation.report.console import FALLBACK_WIDTH, buffer_console, plain_text, printable, rendered
from escalation.report.text import ruleset_notes_text

HELD, FAILED = "✓", "✗"


def _marks(c: ConditionInfo) -> str:
    """A condition that copies the index case, or compares with a value no source states, says so."""
    return (" (case-specific)" if c.case_specific else "") + (" (assumption)" if c.assumptions else "")


def _label(rule: RuleExplanation, index: int) -> str:
    c = rule.conditions[index - 1]
    return f"{index}. {c.label}" + _marks(c)


_DAY_COUNTS = ("since_", "step_days__")  # values that grow by one a day: they alone never split a run


def _signature(row: DayRow) -> tuple:
    """What must stay the same for two days to share a row: which conditions held, and every
    value read except the day counts."""
    return tuple((c.held, tuple(sorted((k, v) for k, v in c.values.items() if not k.startswith(_DAY_COUNTS))))
                 for c in row.conditions)


def _runs(rows: list[DayRow]) -> list[list[DayRow]]:
    """Consecutive days with the same signature, grouped; a day the rule fired is a row of its own."""
    runs: list[list[DayRow]] = []
    for row in rows:
        last = runs[-1][-1] if runs else None
        if (last is not None and last.day + 1 == row.day and not row.fired and not last.fired
                and _signature(last) == _signature(row)):
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _cell(run: list[DayRow], j: int) -> str:
    first, last = run[0].conditions[j], run[-1].conditions[j]
    read = first.read_as if first.read_as == last.read_as else f"{first.read_as} … {last.read_as}"
    return f"{HELD if first.held else FAILED} {read}"


def _days_table(rule: RuleExplanation, p: PlacementExplanation, which: str) -> Table:
    table = Table(title=f"{rule.rule_id}, {which}: {HELD} held, {FAILED} failed (values read)",
                  show_lines=True, expand=True)
    table.add_column("days", justify="right", no_wrap=True, overflow="fold")
    for c in rule.conditions:
        table.add_column(str(c.index), ratio=1, overflow="fold")
    table.add_column("fired", no_wrap=True)
    for run in _runs(p.days):
        table.add_row(Text(span_label(run[0].day, run[-1].day)),
                      *(Text(printable(_cell(run, j))) for j in range(len(rule.conditions))),
                      Text("FIRED" if run[0].fired else ""))
    return table


def _summary(rule: RuleExplanation, p: PlacementExplanation, days: str, whole: bool) -> list[str]:
    """What decided the day (or how near the rule came), then the first day each condition held:
    "never" only when the days shown are the whole replay."""
    lines = []
    for f in p.fired:
        met = "; ".join(_label(rule, j) for j in f.met_last)
        how = (f"condition met last: {met} (held from day {f.met_last_day})" if f.decided_by == "conditions"
               else f"every condition held since day {f.met_last_day} (last: {met}); the rule waited for its "
               "repeat interval")
        lines.append(f"  fired on day {f.day}{f' (#{f.occurrence})' if f.occurrence > 1 else ''}: {how}")
    outside = ", ".join(map(str, p.fired_outside))
    if p.fired_outside:
        lines.append(f"  fired outside days {days}: on day{'s' if len(p.fired_outside) > 1 else ''} {outside}")
    if p.nearest is not None and not p.nearest.failed:
        lines.append(f"  did not fire in days {days}, though every condition held on day {p.nearest.day}: "
                     + (f"it had fired on day {p.fired_outside[0]}" if p.fired_outside else "it was waiting to repeat"))
    elif p.nearest is not None:
        n = p.nearest
        index = {c.condition: c.index for c in rule.conditions}
        failed = "; ".join(f"{_label(rule, index[c.condition])} failed ({c.read_as})" for c in n.failed)
        lines.append(f"  did not fire in days {days}; nearest day {n.day} ({n.held} of {len(rule.conditions)} "
                     f"held): {failed}")
    not_held = "never" if whole else f"not within days {days}"
    first = "; ".join(f"{t.index}. " + (not_held if t.first_held is None else f"day {t.first_held}")
                      for t in p.conditions)
    lines.append(f"  first day held in days {days}: {first}")
    for t in p.conditions:
        for k in t.kinds:
            lines.append(f"  {t.index}. through the code kinds: {k}")
    return lines


def _same(a: PlacementExplanation, b: PlacementExplanation) -> bool:
    return a.model_copy(update={"placement": "early"}) == b.model_copy(update={"placement": "early"})


def _rule(console: Console, rule: RuleExplanation, days: str, whole: bool, width: int) -> None:
    step = f"step {rule.step}, " if rule.step else ""
    console.print(Text(printable(f"Rule {rule.rule_id} ({step}fires {rule.repeat.replace('_', ' ')}): {rule.title}"),
                       style="bold"))
    if rule.assumptions:
        console.print(plain_text(f"ASSUMPTION: {', '.join(rule.assumptions)} (no source states "
                                 f"{'this value' if len(rule.assumptions) == 1 else 'these values'})", width),
                      markup=False)
    console.print("Conditions:")
    for c in rule.conditions:
        console.print(plain_text(f"  {c.index}. {c.condition}" + _marks(c), width), markup=False)
    early, late = rule.placements
    shown = [early] if _same(early, late) else [early, late]
    for p in shown:
        which = "early and late placements (the same)" if len(shown) == 1 else f"{p.placement} placement"
        console.print(Text(which[0].upper() + which[1:] + ":", style="bold"))
        for line in _summary(rule, p, days, whole):
            console.print(plain_text(line, width), markup=False)
        console.print(_days_table(rule, p, which))
    console.print()


def to_table(explanation: Explanation, width: int = FALLBACK_WIDTH) -> str:
    """The explanation for people: notice, scenario and rule set, then each rule."""
    buf = io.StringIO()
    console = buffer_console(buf, width)
    console.print(Text(explanation.notice, style="bold"))
    sc, rs = explanation.scenario, explanation.ruleset
    days = span_label(explanation.first_day, explanation.last_day)
    whole = (explanation.first_day, explanation.last_day) == (sc.first_day, sc.last_day)
    asked = explanation.days_asked
    cut = (f" (of days {span_label(*asked)} asked: the replay covers days {span_label(sc.first_day, sc.last_day)})"
           if asked is not None else "")
    console.print(plain_text(f"Scenario {sc.id}: {sc.title}; rule set {rs.id} v{rs.version} "
                             f"sha256:{rs.content_hash[:16]}; days {days}{cut} (day 0 = {sc.day_zero})", width), markup=False)
    if sc.hypothetical or sc.hypothetical_events:
        console.print(plain_text("HYPOTHETICAL: counterfactual events, in no source: "
                                 + (", ".join(sc.hypothetical_events) or "none"), width), markup=False)
    if sc.fhir_import:
        console.print(plain_text(f"FHIR: {sc.fhir_import}", width), markup=False)
    console.print(plain_text("Which conditions held is the engine's answer: each condition is a rule of its own in "
                             "an explain rule set, on the replay's fact of each day. A condition 'met last' is the "
                             "one whose unbroken run of held days began last: it decided the rule's day.", width),
                  markup=False)
    console.print()
    for rule in explanation.rules:
        _rule(console, rule, days, whole, width)
    notes = ruleset_notes_text(rs)
    if notes:
        console.print(plain_text(notes, width), markup=False)
    console.print(Text(explanation.notice, style="bold"))
    return rendered(buf)
