"""`escalation cohort ...`: the literature cohort of Table 1 on the command line.

A Typer sub-app mounted by escalation/cli/app.py, with the same conventions: every input is
validated before anything is computed, a bad file costs one `error: FILE:LINE (PATH): message`
line and exit 2, JSON has sorted keys and fixed indentation, and every output opens with the
research-only notice.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from escalation.cli.common import Format, FormatOpt, Width, errors, json_text
from escalation.cli.help import PlainCommand
from escalation.load.shipped import DEFAULT_RULES_FILE, LITERATURE_FILE
from escalation.match.results import NOTICE
from escalation.report.console import output_width

# the literature modules are imported by the commands that use them, so that every other command
# starts without them; these are literature.records.DEFAULT_RECORDS and .placement.DEFAULT_RULES
DEFAULT_RECORDS = "/".join(("scenarios", *LITERATURE_FILE))
DEFAULT_RULES = f"rules/{DEFAULT_RULES_FILE}"

cohort_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Table 1 of the report (18 published cases) as data: summary figures recomputed, the index "
         "case cross-checked, each case placed on the pathway. " + NOTICE,
)

RecordsOpt = Annotated[Optional[Path], typer.Option("--records", metavar="FILE",
                                                    help=f"records file (default: the shipped {DEFAULT_RECORDS})")]


@cohort_app.command("summary", cls=PlainCommand)
def summary_cmd(fmt: FormatOpt = Format.table, records: RecordsOpt = None, width: Width = None) -> None:
    """Every figure the report states about the 18 cases, recomputed from Table 1, with a verdict."""
    from escalation.literature.records import load_records
    from escalation.literature.summary import summary
    from escalation.literature.text import summary_table

    with errors():
        result = summary(load_records(records, timelines=False), records)
    sys.stdout.write(json_text(result) if fmt == Format.json else summary_table(result, output_width(width)))


@cohort_app.command("check", cls=PlainCommand)
def check_cmd(fmt: FormatOpt = Format.table, records: RecordsOpt = None, width: Width = None) -> None:
    """Compare the present case's row of Table 1 with its timeline (scenarios/index_case.yaml)."""
    from escalation.literature.check import check
    from escalation.literature.records import load_records
    from escalation.literature.text import check_table

    with errors():
        result = check(load_records(records), records)
    sys.stdout.write(json_text(result) if fmt == Format.json else check_table(result, output_width(width)))


@cohort_app.command("placement", cls=PlainCommand)
def placement_cmd(
    fmt: FormatOpt = Format.table,
    records: RecordsOpt = None,
    rules: Annotated[Optional[Path], typer.Option("--rules", "-r", metavar="FILE",
                                                  help=f"rule set (default: the shipped {DEFAULT_RULES})")] = None,
    width: Width = None,
) -> None:
    """Highest pathway step each case reached, against outcome; replays where a timeline exists.
    For research review only."""
    from escalation.literature.placement import placement
    from escalation.literature.records import load_records
    from escalation.literature.text import placement_table

    with errors():
        result = placement(load_records(records), records, rules)
    sys.stdout.write(json_text(result) if fmt == Format.json else placement_table(result, output_width(width)))
