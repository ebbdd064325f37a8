"""`escalation explain`: why each rule fired on its day, or how near it came; a thin layer over
`escalation.api.explain`, mounted by escalation/cli/app.py.

Same conventions as every command: the input is validated before anything runs, bad input (a
file, an unknown `--rule`, a `--days` that is no range or lies wholly outside the replayed days)
is one `error: ...` line and exit 2, JSON has sorted keys and fixed indentation, and the output
opens and closes with the research-only notice.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from escalation import api
from escalation.cli.common import Format, FormatOpt, Width, errors, json_text
from escalation.cli.help import PlainCommand
from escalation.report.console import output_width


def explain(
    scenario: Annotated[Path, typer.Argument(metavar="SCENARIO", help="scenario YAML file, or a FHIR R4 "
                                             "Bundle JSON file of one patient")],
    rules: Annotated[Optional[Path], typer.Option("--rules", "-r", metavar="FILE", help="rule set YAML file "
                                                  "(default: the shipped report-pathway.yaml)")] = None,
    rule: Annotated[Optional[list[str]], typer.Option("--rule", metavar="RULE", help="explain only this rule "
                                                      "(repeatable; default: every rule of the set)")] = None,
    days: Annotated[Optional[str], typer.Option("--days", metavar="A..B", help="only these days (both "
                                                "included), e.g. 10..30")] = None,
    fmt: FormatOpt = Format.table,
    width: Width = None,
) -> None:
    """For each rule and day, every condition: whether it held and the value read against its
    threshold; the condition met last on the day a rule fired, or the nearest day for one that
    did not. Research review only."""
    from escalation.report.explain_text import to_table

    with errors():
        result = api.explain(scenario, rules, rule_ids=rule, days=days)
    sys.stdout.write(json_text(result) if fmt == Format.json else to_table(result, output_width(width)))


def mount(app: typer.Typer) -> None:
    """Add `explain` to the main command line."""
    app.command("explain", cls=PlainCommand)(explain)
