"""`escalation import fhir` and `escalation export fhir`, and replay's CDS Hooks and FHIR formats.

Two Typer sub-apps mounted by escalation/cli/app.py, with the same conventions as every command:
all input is read and validated before anything is written, scenario files are rendered into a
staging folder and published only when all of them exist, and a bad file costs one line,
`error: FILE:LINE (Type/id): message`, and exit 2. Research review only.
"""

from __future__ import annotations

import sys
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from escalation.cli.common import Format, FormatOpt, Width, errors, json_text
from escalation.cli.help import PlainCommand
from escalation.load import shipped
from escalation.load.errors import InputError
from escalation.match.results import NOTICE, ReplayResult
from escalation.report.console import output_width

_SETTINGS = {"help_option_names": ["-h", "--help"]}
import_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                         context_settings=_SETTINGS, help="Read patient records into scenario files. " + NOTICE)
export_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                         context_settings=_SETTINGS, help="Write scenarios in other formats. " + NOTICE)


class ReplayFormat(str, Enum):
    """replay's own formats: the shared ones plus the two for decision-support tools."""

    table = "table"
    json = "json"
    cds_hooks = "cds-hooks"
    fhir = "fhir"


ReplayFormatOpt = Annotated[ReplayFormat, typer.Option(
    "--format", "-f", metavar="[table|json|cds-hooks|fhir]",
    help="table for people, json for programs, cds-hooks (a CDS Hooks 2.0 response of cards) or "
         "fhir (a Bundle of GuidanceResponse) for decision-support tools")]


def render_replay(result: ReplayResult, fmt: ReplayFormat, width: int | None) -> str:
    """The replay in the format asked for; every format carries the research-only notice."""
    if fmt == ReplayFormat.cds_hooks:
        from escalation.report.cds_hooks import to_json as cards
        return cards(result)
    if fmt == ReplayFormat.fhir:
        from escalation.report.fhir_out import to_json as guidance
        return guidance(result)
    from escalation.report.text import to_json, to_table
    return to_json(result) if fmt == ReplayFormat.json else to_table(result, width=output_width(width))


@import_app.command("fhir", cls=PlainCommand)
def import_fhir(
    paths: Annotated[list[Path], typer.Argument(metavar="PATHS", help="FHIR R4 Bundle JSON files or "
                                                "Bulk Data export folders (Type.NNN.ndjson)")],
    # import-summary.json is escalation.fhir.SUMMARY_FILE, written out: every command loads this
    # module, and escalation.fhir is loaded only with FHIR input (tests/test_cold_start.py)
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="folder for one scenario file "
                                      "per patient and import-summary.json")],
    rules: Annotated[Optional[list[Path]], typer.Option(
        "--rules", "-r", metavar="FILE", help="rule set whose diagnosis codes pick day 0 (repeatable; "
        "default: the shipped report-pathway.yaml)")] = None,
    day_zero: Annotated[Optional[str], typer.Option("--day-zero", metavar="DATE", help="day 0 for every "
                                                    "patient: YYYY-MM-DD or a timestamp with its offset")] = None,
    day_zero_encounter: Annotated[Optional[list[str]], typer.Option(
        "--day-zero-encounter", metavar="ID", help="the Encounter whose start is day 0 for its patient, "
        "as ID or Encounter/ID (repeatable)")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="an unmapped code is an error")] = False,
    fmt: FormatOpt = Format.table,
    width: Width = None,
) -> None:
    """Import patients from FHIR R4 into scenario files, one per patient, and summarise what was not used."""
    from escalation.fhir import SUMMARY_FILE
    from escalation.fhir.scenario_file import import_files
    from escalation.fhir.to_scenario import Options, import_paths, rule_diagnoses
    from escalation.load.loading import load_ruleset
    from escalation.report.files import check_output, publish, staged
    from escalation.report.import_summary import summary_table

    with errors():
        check_output(out, folder=True, inputs=paths)
        rule_paths = rules or [shipped.default_rules_named()]
        if day_zero is not None and day_zero_encounter:  # --day-zero would win for every patient
            raise InputError("--day-zero", "give --day-zero or --day-zero-encounter, not both")
        options = Options(day_zero=day_zero, day_zero_encounters=tuple(day_zero_encounter or ()),
                          diagnoses=rule_diagnoses(load_ruleset(p) for p in rule_paths), strict=strict)
        imported = import_paths(paths, options)
        files = import_files(imported)
        with staged(out) as stage:
            for name, text in files:
                (stage / name).write_text(text, encoding="utf-8")
            publish(stage, out, [name for name, _ in files])
    summary = imported.summary
    sys.stdout.write(json_text(summary) if fmt == Format.json else summary_table(summary, output_width(width)))
    typer.echo(f"wrote {len(imported.scenarios)} scenario file(s) and {SUMMARY_FILE} to {out} ({NOTICE.split(' - ')[0]})",
               err=True)


@export_app.command("fhir", cls=PlainCommand)
def export_fhir(
    scenario: Annotated[Path, typer.Argument(metavar="SCENARIO", help="scenario YAML file (variants resolved), "
                                             "or a FHIR R4 Bundle JSON file of one patient, imported as `import "
                                             "fhir` imports it without --rules")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="the Bundle JSON file to write")],
    day_zero: Annotated[Optional[str], typer.Option("--day-zero", metavar="DATE",
                                                    help="calendar date of day 0 (default: 2000-01-01)")] = None,
) -> None:
    """Write SCENARIO as a FHIR R4 Bundle (collection) that validates and imports back."""
    from escalation.api import load_scenario
    from escalation.fhir.export import DEFAULT_DAY_ZERO, to_json
    from escalation.report.files import check_output, write_atomically

    with errors():
        check_output(out, inputs=[scenario])
        anchor = _date(day_zero) if day_zero else DEFAULT_DAY_ZERO
        text = to_json(load_scenario(scenario), anchor)
        write_atomically(out, text)
    typer.echo(f"wrote {out} ({NOTICE.split(' - ')[0]})", err=True)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError("--day-zero", f"{text!r} is not a date YYYY-MM-DD") from None
