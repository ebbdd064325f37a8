"""The `escalation` command line: a thin layer over `escalation.api`.

Each command parses its arguments, calls the API, and prints. Every command validates all of its
input before it computes anything and writes nothing until the whole result exists, so a bad file
costs one clear line (`error: FILE:LINE (PATH): what is wrong`) and exit status 2, never a
traceback or a half-written report.
"""

from __future__ import annotations

import copy
import gc
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from escalation import api
from escalation.cli.common import (
    EXIT_BAD_INPUT,
    Format,
    FormatOpt,
    Width,
    errors,
    json_text,
)
from escalation.cli.fhir import ReplayFormat, ReplayFormatOpt, render_replay
from escalation.cli.help import PlainCommand
from escalation.load import shipped
from escalation.load.errors import InputError
from escalation.load.loading import load_ruleset
from escalation.load.ruleset import Ruleset
from escalation.match.results import NOTICE
from escalation.report.console import output_width, plain_text
from escalation.report.files import check_output, write_atomically
from escalation.version import __version__

DEFAULT_RULES = "the shipped report-pathway.yaml"

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: placeholders read SCENARIO, FILE, not <path> or <bool>
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Replay a published treatment-escalation pathway against patient timelines. " + NOTICE,
)


class SchemaKind(str, Enum):
    scenario = "scenario"
    rules = "rules"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"escalation {__version__} ({NOTICE.split(' - ')[0]})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Replay a published treatment-escalation pathway against patient timelines (research review only)."""


def parse_overrides(items: list[str]) -> dict[str, float]:
    """`RULE.PARAM=VALUE` strings to a mapping; malformed ones are input errors. The RULE.PARAM
    part is checked against the rule set (api.with_overrides), which can say which rule has a
    parameter given without its rule."""
    out: dict[str, float] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        if not sep or not target:
            raise InputError("--set", f"{item!r} is not of the form RULE.PARAM=VALUE")
        try:
            value = float(raw)
        except ValueError:
            raise InputError("--set", f"{item!r}: {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError("--set", f"{item!r}: {raw!r} is not a finite number")
        if target in out:  # two values for one parameter: which one was meant is not ours to guess
            raise InputError("--set", f"{target} is given more than once ({out[target]:g} and {value:g})")
        out[target] = value
    return out


def apply_overrides(ruleset: Ruleset, overrides: dict[tuple[str, str], float]) -> Ruleset:
    """`ruleset` with (rule, parameter) values replaced; used by the sweep for each value."""
    return api.with_overrides(ruleset, {f"{r}.{p}": v for (r, p), v in overrides.items()})


def _write_or_print(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    with errors():
        write_atomically(output, text)
    typer.echo(f"wrote {output} ({NOTICE.split(' - ')[0]})", err=True)


@app.command(cls=PlainCommand.with_hints(
    rules="`escalation diff RULES_A RULES_B SCENARIO` compares two rule sets on it, and `escalation "
          "report SCENARIO --rules A --rules B` shows both"))
def replay(
    scenario: Annotated[Path, typer.Argument(metavar="SCENARIO", help="scenario YAML file, or a FHIR R4 "
                                             "Bundle JSON file of one patient")],
    rules: Annotated[Optional[Path], typer.Option("--rules", "-r", metavar="FILE",
                                                  help=f"rule set YAML file (default: {DEFAULT_RULES})")] = None,
    set_: Annotated[list[str], typer.Option("--set", metavar="RULE.PARAM=VALUE",
                                            help="override a rule parameter (repeatable)")] = [],  # noqa: B006
    fmt: ReplayFormatOpt = ReplayFormat.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="FILE",
                                                   help="write to this file instead of standard output")] = None,
    through_day: Annotated[Optional[int], typer.Option("--through-day", metavar="DAY",
                                                       help="run the clock at least to this day")] = None,
    width: Width = None,
) -> None:
    """Replay SCENARIO day by day and list every decision point, for research review only."""
    with errors():
        if output is not None:
            check_output(output, inputs=[scenario, rules or shipped.default_rules_named()])
        result = api.replay(scenario, rules, overrides=parse_overrides(set_), through_day=through_day)
    text = render_replay(result, fmt, width)
    _write_or_print(text, output)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on standard error when it is a terminal; silent otherwise."""
    from rich.progress import Progress

    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@app.command("test", cls=PlainCommand)
def test_cmd(
    paths: Annotated[Optional[list[Path]], typer.Argument(
        metavar="PATHS", help="scenario YAML files, FHIR R4 Bundle JSON files of one patient each, or folders "
        "of them (default: the shipped scenarios)")] = None,
    rules: Annotated[Optional[list[Path]], typer.Option(
        "--rules", "-r", metavar="FILE", help="rule set file or folder (repeatable; default: every shipped rule set)")] = None,
    junit: Annotated[Optional[Path], typer.Option(metavar="FILE", help="also write JUnit XML here")] = None,
    through_day: Annotated[Optional[int], typer.Option("--through-day", metavar="DAY",
                                                       help="run every clock at least to this day")] = None,
    fmt: FormatOpt = Format.table,
    width: Width = None,
) -> None:
    """Replay every scenario and compare with the decision points it expects; report coverage.
    For research review only."""
    from escalation.analysis.expectations import junit_xml, to_text

    with errors():
        if junit is not None:
            check_output(junit, inputs=[*api.scenario_files(paths), *api.rule_files(rules)])
        with _progress("replaying") as advance:
            report = api.check_expectations(paths, rules, advance, through_day)
    if junit is not None:
        with errors():
            write_atomically(junit, junit_xml(report))
    sys.stdout.write(json_text(report)
                     if fmt == Format.json else plain_text(to_text(report), output_width(width)))
    if report.failed:
        raise typer.Exit(1)


@app.command(cls=PlainCommand)
def diff(
    rules_a: Annotated[Path, typer.Argument(metavar="RULES_A", help="rule set A")],
    rules_b: Annotated[Path, typer.Argument(metavar="RULES_B", help="rule set B")],
    paths: Annotated[Optional[list[Path]], typer.Argument(
        metavar="SCENARIOS", help="scenario YAML files, FHIR R4 Bundle JSON files of one patient each, or "
        "folders of them (default: the shipped index case)")] = None,
    fmt: FormatOpt = Format.table,
    show_same: Annotated[bool, typer.Option("--all", help="also list decision points that do not move")] = False,
    width: Width = None,
) -> None:
    """Show which decision points appear, disappear or move between two rule sets, for research
    review only."""
    from escalation.analysis.compare import to_text as diff_text

    with errors():
        result = api.compare(rules_a, rules_b, api.scenario_files(paths) if paths else None)
    sys.stdout.write(json_text(result)
                     if fmt == Format.json else diff_text(result, show_same, output_width(width)))


_SEVERAL = ("a sweep varies one parameter under one rule set: for several parameters or rule sets, "
            "`escalation batch SCENARIOS ... --grid RULE.PARAM=START:STOP:STEP --grid ... --rules FILE "
            "--rules FILE --out DIR` replays every combination")


@app.command(cls=PlainCommand.with_hints(set_=_SEVERAL, rules=_SEVERAL))
def sweep(
    set_: Annotated[str, typer.Option("--set", metavar="RULE.PARAM=START:STOP:STEP",
                                      help="the parameter range; STOP is included when the steps reach it")],
    paths: Annotated[list[Path], typer.Argument(metavar="SCENARIOS", help="scenario YAML files, FHIR R4 Bundle "
                                                "JSON files of one patient each, or folders of them")],
    rules: Annotated[Optional[Path], typer.Option("--rules", "-r", metavar="FILE",
                                                  help=f"rule set (default: {DEFAULT_RULES})")] = None,
    workers: Annotated[int, typer.Option(min=1, metavar="N", help="worker processes, each with its own engine")] = 1,
    out: Annotated[Path, typer.Option(metavar="DIR", help="folder for sweep.csv, sweep.png and sweep.txt")] = Path("out/sweep"),
    width: Width = None,
) -> None:
    """Replay scenarios over a range of one parameter and show how each decision point moves, for
    research review only."""
    from escalation.analysis.sweep import parse_range, run_sweep, shared_ids, to_table, write_sweep
    from escalation.match.matching import ruleset_out

    with errors():
        check_output(out, folder=True)
        try:
            rng = parse_range(set_)
        except ValueError as exc:
            raise InputError("--set", str(exc)) from None
        rules_path = rules or shipped.default_rules_named()
        ruleset = load_ruleset(rules_path)
        for value in rng.values():  # every value must be usable before any work starts
            swept = apply_overrides(ruleset, {(rng.rule_id, rng.param): value})
        # the outputs name the rule set as loaded (its content hash before a value is set, as a
        # batch's rows give it), and list its assumptions at a value of the sweep: the swept
        # parameter is overridden, so it is one (as `replay --set` marks it), and the rest are the
        # same at every value
        marks = ruleset_out(swept).model_copy(update={"content_hash": ruleset.content_hash()})
        files = api.scenario_files(paths)
        # every input (FHIR Bundles too) is checked before any work starts; two files may give one
        # scenario id (two sites' exports of Patient/p1): the table then names each with its file
        shared = shared_ids({str(f): api.load_scenario(f, [ruleset]).scenario.id for f in files})
        with _progress("sweeping") as advance:
            points, _ = run_sweep(files, rules_path, rng, workers, _counter(advance, len(files) * len(rng.values())))
    with errors():
        written = write_sweep(out, points, rng, NOTICE, shared, ruleset=marks)
    sys.stdout.write(to_table(points, rng, NOTICE, output_width(width), shared, ruleset=marks))
    typer.echo(f"wrote {', '.join(map(str, written))}", err=True)


def _counter(progress: Callable[[int, int], None], total: int) -> Callable[[], None]:
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        progress(done, total)
    return advance


@app.command(cls=PlainCommand)
def check(
    files: Annotated[list[Path], typer.Argument(
        metavar="PATHS", help="files or folders, walked recursively: scenario, variant, rule set and "
        "published-case record YAML files; FHIR R4 Bundle JSON files (other .json files found in folders "
        "are passed over); a folder with .ndjson files directly inside is one FHIR Bulk Data export, "
        "checked as a whole (YAML files in it are still checked one by one)")],
) -> None:
    """Validate every file named or found under a folder, without replaying anything. FHIR input is
    imported in memory as `import fhir` imports it (nothing is written), and the check says how
    many patients would become scenarios and how many codes and records the import would leave
    out. Research review only."""
    from escalation.cli.check import run_check

    run_check(files)


@app.command(cls=PlainCommand)
def schema(kind: Annotated[SchemaKind, typer.Argument(help="scenario or rules")]) -> None:
    """Print the JSON Schema of the files people write (shorthand forms and variants included),
    for editors; the repository keeps a copy of each in schemas/."""
    from escalation.load.schema import schema_text

    sys.stdout.write(schema_text(kind.value))


@app.command(cls=PlainCommand)
def report(
    scenario: Annotated[Path, typer.Argument(metavar="SCENARIO", help="scenario YAML file, or a FHIR R4 "
                                             "Bundle JSON file of one patient")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="folder for report.html, report.md, "
                                      "course.png, course.svg and replay.json")],
    rules: Annotated[Optional[list[Path]], typer.Option(
        "--rules", "-r", metavar="FILE", help="rule set YAML file; give it twice to compare two rule sets "
        f"(default: {DEFAULT_RULES})")] = None,
) -> None:
    """Write a self-contained research-review report (HTML, Markdown, figure, JSON) for SCENARIO.
    For research review only."""
    with errors():
        check_output(out, folder=True)
        written = api.write_report(scenario, out, rules)
    typer.echo(f"wrote {', '.join(str(p) for p in written)} ({NOTICE.split(' - ')[0]})", err=True)


def _subcommands() -> None:
    from escalation.cli.cohort import cohort_app
    from escalation.cli.fhir import export_app, import_app

    app.add_typer(cohort_app, name="cohort", help="The 18 published cases of Table 1: summary, "
                  "cross-source check and placement on the pathway. For research review only.")
    app.add_typer(import_app, name="import", help="Read FHIR R4 records into scenario files.")
    app.add_typer(export_app, name="export", help="Write a scenario as a FHIR R4 Bundle.")
    from escalation.cli.batch import mount  # batch, batch summary and synth
    mount(app)
    from escalation.cli.explain import mount as mount_explain
    mount_explain(app)


_subcommands()


YOUNG_GENERATION = 50_000  # see main()


def main() -> None:
    """Run the CLI; option errors too print one line, `error: ...`, and exit 2.

    While the command runs, the youngest generation is collected every YOUNG_GENERATION
    allocations instead of CPython's 700: a command makes its objects in bursts that mostly live
    until it ends, and a cold replay otherwise spent about 2 ms walking them in 30 collections
    (unreachable cycles still go, a few megabytes at most later).

    It ends the process. What is left then is frozen out of the garbage collector first, so that
    exiting does not walk it all in a last collection: the command's files are written and closed
    by then, and the process's memory goes back whole (atexit handlers, weakref finalizers and the
    flushing of standard output still run).
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, *thresholds[1:])
    try:
        code = _run()
    finally:
        gc.set_threshold(*thresholds)
        gc.freeze()
    sys.exit(code)


def _dispatch(args: list[str]) -> typer.Typer:
    """The app to run: for a top-level command named first, a copy of the app holding that command
    alone; for anything else (help, a group, an option, a misspelt name) the whole app, whose
    messages list every command.

    Typer builds the options of every command it holds from their signatures before it
    dispatches (about 12 ms for all of them, a twentieth of a cold replay); the copy builds one,
    with the same callback, settings and so the same help and errors."""
    first = args[0] if args else None
    for info in app.registered_commands:
        if first is not None and typer.main.get_command_name(info.name or info.callback.__name__) == first:
            one = copy.copy(app)
            one.registered_commands, one.registered_groups = [info], []
            return one
    return app


def _run() -> int:
    try:
        code = _dispatch(sys.argv[1:])(standalone_mode=False, prog_name="escalation")
    except typer.TyperException as exc:  # a usage or option error, raised before any work
        return _usage_error(exc)
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0


def _usage_error(exc: typer.TyperException) -> int:
    """Print a usage error as one line (or the help, when no arguments were given); its status."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        typer.echo(ctx.get_help())
        return 0
    where = f"{ctx.command_path}: " if ctx is not None else ""
    message = " ".join(exc.format_message().split())
    typer.echo(f"error: {where}{message} (see --help)", err=True)
    return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    main()
