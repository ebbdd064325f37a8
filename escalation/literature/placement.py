"""Each published case placed on the report's escalation pathway, against its outcome.

The report proposes its pathway from these 18 cases; placing each case on the pathway (the
highest step its treatments reached) beside its outcome shows what the cases can and cannot say
about the steps. Table 1 gives no dates, so only a case with a timeline (the present case) can
be replayed against the rules; for the others the output says why not.

RESEARCH REVIEW ONLY - not medical advice.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from escalation.literature.outputs import Output
from escalation.literature.records import (
    NO_DATA,
    PRESENT,
    UNREADABLE,
    Record,
    Table1,
    records_name,
    timeline_files,
)
from escalation.load.loading import load_ruleset, load_scenario
from escalation.load.ruleset import Ruleset
from escalation.load.shipped import DEFAULT_RULES_FILE, default_rules
from escalation.load.vocabulary import broader_kinds
from escalation.match.results import NOTICE

# The default rule set's name in the repository: what outputs print when it is used, wherever the
# copy actually read lies.
DEFAULT_RULES = f"rules/{DEFAULT_RULES_FILE}"

STEP_OF: dict[str, int] = {
    **{c: 1 for c in ("MPT", "PSL", "mPSL", "CyA", "Tac", "IVCY", "CPM", "IVIG", "AZP", "MTX")},
    "PE": 2,
    "ECMO": 3,
    "RTX": 4,
    "MMF": 5,
}
STEP_LABELS = {1: "1 combination", 2: "2 plasma exchange", 3: "3 ECMO", 4: "4 rituximab", 5: "5 MMF add-on"}

NO_TIMELINE = ("Table 1 gives no dates: not when any treatment began, nor any dated measurement (the anti-MDA5 "
               "titre and its trend, ventilator settings, oxygenation) that the rules' conditions test; a "
               "timeline would have to invent them")


class DecisionPointBrief(Output):
    rule_id: str
    step: int | None
    day: int
    day_latest: int


class ReplayBrief(Output):
    possible: bool
    why: str
    timeline_file: str | None = None
    ruleset: str | None = None
    decision_points: list[DecisionPointBrief] = []
    steps_flagged: list[int] = []
    against_table: str | None = Field(None, description="steps flagged by the replay beside the steps Table 1 reaches")


class CasePlacement(Output):
    record: str
    row: int
    reference: str
    treatments: list[str] | str
    ecmo: str
    steps_reached: dict[str, list[str]] = Field(description="step -> what put the case there")
    highest_step: int | None
    may_be_higher: bool = Field(description="ECMO or treatments are 'ND', so a higher step cannot be ruled out")
    outcome: str
    time_to_death: str
    replay: ReplayBrief


class StepRow(Output):
    step: str
    highest: int = Field(description="cases whose highest step this is")
    highest_deaths: int
    highest_may_be_higher: int
    received: int = Field(description="cases that received something of this step at any time")
    received_deaths: int


# What the placement rests on that no source states: printed with it, and in its JSON.
ASSUMPTION = ("the codes the pathway's rules do not propose (mPSL, CPM, AZP, MTX) are placed by this tool. "
              "'highest' is the largest step number reached, not the last step taken: Table 1 gives no dates "
              "or order, so a case may reach step 5 (MMF) without step 4 (RTX), and MMF may have been given "
              "for another reason.")


class CohortPlacement(Output):
    notice: str = NOTICE
    placements: list[CasePlacement]
    records_file: str
    rules_file: str
    step_map: dict[str, int]
    steps_table: list[StepRow]
    placement_assumption: str = Field(ASSUMPTION, description="the modelling assumption the placement rests on")


def place(record: Record) -> tuple[dict[str, list[str]], int | None, bool]:
    """The steps of rules/report-pathway.yaml a case reached, its highest step, and whether it may be higher.

    How Table 1 maps onto the report's pathway (steps of rules/report-pathway.yaml):
    - step 1, first-line combination: glucocorticoids (MPT, PSL, and mPSL, which the table does not
      define), calcineurin inhibitors (CyA, Tac), cyclophosphamide (IVCY, and CPM, which may be oral),
      IVIG, and the other conventional immunosuppressants the table lists (AZP, MTX);
    - step 2: plasma exchange (PE);
    - step 3: ECMO, read from the ECMO column ("+"), not from the treatment list;
    - step 4: rituximab (RTX);
    - step 5: the MMF add-on.
    A step counts as reached when the case received something of that step at any time: the table
    gives no dates or order, so a case may reach step 4 without steps 2 and 3, and MMF counts as
    step 5 even where it may have been used for another purpose. The highest step may be higher
    than shown when the ECMO column or the treatments are "ND".
    """
    reached: dict[str, list[str]] = {}
    for code in record.treatment_codes:
        reached.setdefault(str(STEP_OF[code]), []).append(code)
    if record.ecmo == PRESENT:
        reached.setdefault("3", []).append("ECMO")
    highest = max((int(k) for k in reached), default=None)
    may_be_higher = record.treatments == NO_DATA or (record.ecmo in (NO_DATA, UNREADABLE) and (highest or 0) < 3)
    return dict(sorted(reached.items())), highest, may_be_higher


def placement(table: Table1, records_file: Path | str | None = None,
              rules_file: Path | str | None = None) -> CohortPlacement:
    """Highest step reached against outcome for every case, and the replay of cases with a timeline.

    None for either file means the shipped one, named in the output by its repository name. The
    rule set is read only when some case has a timeline to replay.
    """
    rules_path = Path(rules_file) if rules_file is not None else default_rules()
    ruleset: Ruleset | None = None
    rows: list[CasePlacement] = []
    for r in table.records:
        reached, highest, maybe = place(r)
        files = timeline_files(records_file, r)
        if files is None:
            brief = _not_replayed(r)
        else:
            ruleset = ruleset or load_ruleset(rules_path)
            brief = _replayed(files, ruleset, reached)
        rows.append(CasePlacement(
            record=r.id, row=r.row, reference=r.reference.printed, treatments=r.treatments, ecmo=r.ecmo,
            steps_reached=reached, highest_step=highest, may_be_higher=maybe, outcome=r.outcome,
            time_to_death=r.time_to_death.printed, replay=brief))
    return CohortPlacement(placements=rows, records_file=records_name(records_file),
                           rules_file=rules_path.as_posix() if rules_file is not None else DEFAULT_RULES,
                           step_map=dict(STEP_OF), steps_table=_steps_table(rows))


def _not_replayed(record: Record) -> ReplayBrief:
    why = NO_TIMELINE + ("; its treatments are not given either" if record.treatments == NO_DATA else "")
    return ReplayBrief(possible=False, why=why)


def _replayed(files: tuple[Path, str], ruleset: Ruleset, reached: dict[str, list[str]]) -> ReplayBrief:
    """Replay the case's timeline and set the steps the rules flag beside the steps Table 1 reaches."""
    from escalation.evaluate.replay import replay as run_replay
    from escalation.match.matching import build_result

    path, shown = files
    result = build_result(run_replay(load_scenario(path), ruleset), path)
    dps = [DecisionPointBrief(rule_id=d.rule_id, step=d.step, day=d.day, day_latest=d.day_latest)
           for d in result.decision_points if d.kind == "escalation"]
    steps = sorted({d.step for d in dps if d.step is not None})
    table_steps = sorted(int(k) for k in reached)
    own = _own_numbering(ruleset)
    if own is not None:
        against = (f"not compared: Table 1's treatments reach the report pathway's steps "
                   f"{', '.join(map(str, table_steps)) or 'none'}, and {ruleset.ruleset.id} numbers its steps "
                   f"its own way ({own})")
    else:
        against = (f"the replay flags steps {', '.join(map(str, steps)) or 'none'}; Table 1's treatments "
                   f"reach steps {', '.join(map(str, table_steps)) or 'none'}"
                   + ("" if steps == table_steps else " (they differ)"))
    return ReplayBrief(possible=True, why="the row links a timeline of the same patient", timeline_file=shown,
                       ruleset=f"{ruleset.ruleset.id} v{ruleset.ruleset.version}",
                       decision_points=dps, steps_flagged=steps, against_table=against)


def _report_step(code: str) -> int | None:
    """The report pathway's step of a code a rule proposes, or of the nearest broader kind of it
    that Table 1 names (a rule proposes ECMO by its mode: VV-ECMO is a kind of ECMO)."""
    return next((STEP_OF[k] for k in (code, *broader_kinds(code)) if k in STEP_OF), None)


def _own_numbering(ruleset: Ruleset) -> str | None:
    """Where a rule set's step numbers are not the report pathway's, onto which Table 1 is placed:
    the first rule whose step differs from the report's step of what it proposes (None: the same
    numbering, so the two lists of steps can be set side by side)."""
    for rule in ruleset.rules:
        if rule.step is None:
            continue
        theirs = sorted({step for step in map(_report_step, rule.proposes) if step is not None})
        if theirs and theirs != [rule.step]:
            return (f"its step {rule.step}, {rule.id}, proposes {', '.join(rule.proposes)}: the report "
                    f"pathway's step{'s' if len(theirs) > 1 else ''} {', '.join(map(str, theirs))}")
    return None


def _steps_table(rows: list[CasePlacement]) -> list[StepRow]:
    """Per step: cases whose highest step it is, and cases that received it at all, with deaths."""
    table_rows = []
    for step in (1, 2, 3, 4, 5, None):
        top = [c for c in rows if c.highest_step == step]
        got = [c for c in rows if step is not None and str(step) in c.steps_reached]
        table_rows.append(StepRow(
            step=STEP_LABELS[step] if step is not None else "unknown (treatments ND)",
            highest=len(top), highest_deaths=sum(c.outcome == "Death" for c in top),
            highest_may_be_higher=sum(c.may_be_higher for c in top),
            received=len(got), received_deaths=sum(c.outcome == "Death" for c in got)))
    return table_rows
