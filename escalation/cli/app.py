"""The `escalation` command line.

Every command validates all of its input before it computes anything and writes nothing until
the whole result exists, so a bad file costs one clear message (file, line, what is wrong) and a
non-zero exit, never a half-written report.
"""

from __future__ import annotations

import json
import math
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from escalation.evaluate.engine import EngineError
from escalation.evaluate.replay import replay as run_replay
from escalation.load.errors import InputError
from escalation.load.loading import load_ruleset, load_scenario, read_yaml
from escalation.load.ruleset import Ruleset
from escalation.load.scenario import Scenario
from escalation.match.matching import build_result
from escalation.match.results import NOTICE
from escalation.report.files import check_output, write_atomically
from escalation.report.text import to_json, to_table

DEFAULT_RULES = "rules/report-pathway.yaml"
LITERATURE = "literature"
EXIT_BAD_INPUT = 2
EXIT_ENGINE = 3

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Replay a published treatment-escalation pathway against patient timelines. " + NOTICE,
)


class Format(str, Enum):
    table = "table"
    json = "json"


class SchemaKind(str, Enum):
    scenario = "scenario"
    rules = "rules"


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def default_rules_path() -> Path:
    """The report's pathway: from the working directory, else from the source checkout."""
    here = Path(DEFAULT_RULES)
    if here.exists():
        return here
    return Path(__file__).resolve().parents[1] / DEFAULT_RULES


def parse_overrides(items: list[str]) -> dict[tuple[str, str], float]:
    """`RULE.PARAM=VALUE` strings to a mapping; malformed ones are input errors."""
    out: dict[tuple[str, str], float] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        rule_id, dot, name = target.partition(".")
        if not sep or not dot or not rule_id or not name:
            raise InputError("--set", f"{item!r} is not of the form RULE.PARAM=VALUE")
        try:
            value = float(raw)
        except ValueError:
            raise InputError("--set", f"{item!r}: {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError("--set", f"{item!r}: {raw!r} is not a finite number")
        out[(rule_id, name)] = value
    return out


def apply_overrides(ruleset: Ruleset, overrides: dict[tuple[str, str], float], file: str) -> Ruleset:
    try:
        return ruleset.with_overrides(overrides)
    except KeyError as exc:
        raise InputError(file, f"--set: {exc.args[0]}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["ctx"]["message"] if err["type"] == "located" else err["msg"]
        raise InputError("--set", message) from None


@app.command()
def replay(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    rules: Annotated[Optional[Path], typer.Option("--rules", "-r", help="rule set YAML file "
                                                  f"(default: {DEFAULT_RULES})")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="override a rule parameter: RULE.PARAM=VALUE "
                                            "(repeatable)")] = [],  # noqa: B006 - typer needs a literal
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table for people, json for programs")] = Format.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write to this file "
                                                   "instead of standard output")] = None,
    through_day: Annotated[Optional[int], typer.Option(help="run the clock at least to this day")] = None,
    width: Annotated[int, typer.Option(min=80, help="width of the table in characters")] = 160,
) -> None:
    """Replay SCENARIO day by day and list every decision point, for research review only."""
    try:
        if output is not None:
            check_output(output)
        rules_path = rules or default_rules_path()
        overrides = parse_overrides(set_)
        sc: Scenario = load_scenario(scenario)
        rs = apply_overrides(load_ruleset(rules_path), overrides, str(rules_path))
        result = build_result(run_replay(sc, rs, through_day), scenario,
                              {f"{r}.{p}": v for (r, p), v in overrides.items()})
    except InputError as exc:
        _fail(str(exc))
    except EngineError as exc:
        _fail(f"rule engine: {exc}", EXIT_ENGINE)
    text = to_json(result) if fmt == Format.json else to_table(result, width=width)
    if output is not None:
        try:
            write_atomically(output, text)
        except InputError as exc:
            _fail(str(exc))
        typer.echo(f"wrote {output} ({NOTICE.split(' - ')[0]})", err=True)
    else:
        sys.stdout.write(text)


def scenario_files(paths: list[Path]) -> list[Path]:
    """YAML files named directly, or found under the folders named, in a stable order.

    A folder named `literature` holds the published-case records (`escalation cohort`), not
    timelines, so walking a folder passes over it.
    """
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(x for x in p.rglob("*.yaml")
                          if x.is_file() and LITERATURE not in x.relative_to(p).parts)
        elif p.exists():
            out.append(p)
        else:
            raise InputError(str(p), "file not found")
    return out


def default_rule_files() -> list[Path]:
    folder = default_rules_path().parent
    return sorted(folder.glob("*.yaml"))


@app.command("test")
def test_cmd(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="scenario files or folders "
                                                          "(default: scenarios/)")] = None,
    rules: Annotated[Optional[list[Path]], typer.Option("--rules", "-r", help="rule set file "
                     "(repeatable; default: every file in rules/)")] = None,
    junit: Annotated[Optional[Path], typer.Option(help="also write JUnit XML here")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Replay every scenario and compare with the decision points it expects; report coverage."""
    from escalation.analysis.expectations import (
        TestReport,
        coverage,
        junit_xml,
        outcome,
        to_text,
    )

    try:
        if junit is not None:
            check_output(junit)
        files = scenario_files(paths or [Path("scenarios")])
        if not files:
            raise InputError(", ".join(map(str, paths or [Path("scenarios")])), "no scenario files found")
        rule_files = rules or default_rule_files()
        rulesets = [load_ruleset(p) for p in rule_files]
        scenarios = [(f, load_scenario(f)) for f in files]
        results, outcomes = [], []
        with _progress(len(scenarios) * len(rulesets), "replaying") as advance:
            for rs in rulesets:
                for f, sc in scenarios:
                    result = build_result(run_replay(sc, rs), f)
                    results.append(result)
                    outcomes.append(outcome(result, sc.expected.get(rs.ruleset.id)))
                    advance()
    except InputError as exc:
        _fail(str(exc))
    except EngineError as exc:
        _fail(f"rule engine: {exc}", EXIT_ENGINE)
    report = TestReport(
        notice=NOTICE,
        passed=sum(o.status == "pass" for o in outcomes),
        failed=sum(o.status == "fail" for o in outcomes),
        unchecked=sum(o.status == "unchecked" for o in outcomes),
        scenarios=outcomes,
        coverage=coverage(results, {rs.ruleset.id: [r.id for r in rs.rules] for rs in rulesets}),
    )
    if junit is not None:
        try:
            write_atomically(junit, junit_xml(report))
        except InputError as exc:
            _fail(str(exc))
    text = (json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
            if fmt == Format.json else to_text(report))
    sys.stdout.write(text)
    if report.failed:
        raise typer.Exit(1)


class _progress:
    """A progress bar on standard error when it is a terminal; silent otherwise."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label

    def __enter__(self):
        from rich.progress import Progress

        self._bar = Progress(transient=True, disable=not sys.stderr.isatty())
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)  # type: ignore[arg-type]


@app.command()
def diff(
    rules_a: Annotated[Path, typer.Argument(help="rule set A")],
    rules_b: Annotated[Path, typer.Argument(help="rule set B")],
    paths: Annotated[Optional[list[Path]], typer.Argument(help="scenario files or folders "
                                                          "(default: scenarios/index_case.yaml)")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    show_same: Annotated[bool, typer.Option("--all", help="also list decision points that do not move")] = False,
) -> None:
    """Show which decision points appear, disappear or move between two rule sets."""
    from escalation.analysis.compare import RulesetDiff, diff_results
    from escalation.analysis.compare import to_text as diff_text

    try:
        a, b = load_ruleset(rules_a), load_ruleset(rules_b)
        files = scenario_files(paths or [Path("scenarios/index_case.yaml")])
        diffs = []
        for f in files:
            sc = load_scenario(f)
            diffs.append(diff_results(build_result(run_replay(sc, a), f), build_result(run_replay(sc, b), f)))
    except InputError as exc:
        _fail(str(exc))
    except EngineError as exc:
        _fail(f"rule engine: {exc}", EXIT_ENGINE)
    label = lambda rs, p: f"{rs.ruleset.id} v{rs.ruleset.version} ({p})"  # noqa: E731
    result = RulesetDiff(notice=NOTICE, a=label(a, rules_a), b=label(b, rules_b), scenarios=diffs)
    sys.stdout.write(json.dumps(result.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
                     if fmt == Format.json else diff_text(result, show_same))


@app.command()
def sweep(
    set_: Annotated[str, typer.Option("--set", help="the parameter range: RULE.PARAM=START:STOP:STEP")],
    paths: Annotated[list[Path], typer.Argument(help="scenario files or folders")],
    rules: Annotated[Optional[Path], typer.Option("--rules", "-r", help=f"rule set (default: {DEFAULT_RULES})")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes, each with its own engine")] = 1,
    out: Annotated[Path, typer.Option(help="folder for sweep.csv, sweep.png and sweep.txt")] = Path("out/sweep"),
) -> None:
    """Replay scenarios over a range of one parameter and show how each decision point moves."""
    from escalation.analysis.sweep import parse_range, plot, run_sweep, to_csv, to_table

    try:
        check_output(out, folder=True)
        try:
            rng = parse_range(set_)
        except ValueError as exc:
            raise InputError("--set", str(exc)) from None
        rules_path = rules or default_rules_path()
        ruleset = load_ruleset(rules_path)
        for value in rng.values():  # every value must be usable before any work starts
            apply_overrides(ruleset, {(rng.rule_id, rng.param): value}, str(rules_path))
        files = scenario_files(paths)
        for f in files:
            load_scenario(f)  # every input is checked before any work starts
        with _progress(len(files) * len(rng.values()), "sweeping") as advance:
            points, _ = run_sweep(files, rules_path, rng, workers, advance)
    except InputError as exc:
        _fail(str(exc))
    except EngineError as exc:
        _fail(f"rule engine: {exc}", EXIT_ENGINE)
    table = to_table(points, rng, NOTICE)
    try:
        write_atomically(out / "sweep.csv", to_csv(points, rng, NOTICE))
        write_atomically(out / "sweep.txt", table)
        tmp_png = out / ".sweep.png.tmp.png"
        plot(points, rng, tmp_png, NOTICE)
        os.replace(tmp_png, out / "sweep.png")
    except InputError as exc:
        _fail(str(exc))
    sys.stdout.write(table)
    typer.echo(f"wrote {out / 'sweep.csv'}, {out / 'sweep.png'}, {out / 'sweep.txt'}", err=True)


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="scenario or rule files to validate")],
) -> None:
    """Validate scenario and rule files without replaying them."""
    failed = False
    for path in files:
        try:
            data, _ = read_yaml(path)
            loader = load_ruleset if isinstance(data, dict) and "ruleset" in data else load_scenario
            loader(path)
            typer.echo(f"ok: {path}")
        except InputError as exc:
            typer.echo(f"error: {exc}", err=True)
            failed = True
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def schema(kind: Annotated[SchemaKind, typer.Argument(help="scenario or rules")]) -> None:
    """Print the JSON Schema of the files people write (shorthand forms and variants included),
    for editors; the repository keeps a copy of each in schemas/."""
    from escalation.load.schema import schema_text

    sys.stdout.write(schema_text(kind.value))


@app.command()
def report(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for report.html, report.md, "
                                      "course.png, course.svg and replay.json")],
    rules: Annotated[Optional[list[Path]], typer.Option(
        "--rules", "-r", help="rule set YAML file; give it twice to compare two rule sets "
        f"(default: {DEFAULT_RULES})")] = None,
) -> None:
    """Write a self-contained research-review report (HTML, Markdown, figure, JSON) for SCENARIO."""
    from escalation.report.html import write_report

    try:
        check_output(out, folder=True)
        written = write_report(scenario, list(rules or [default_rules_path()]), out)
    except InputError as exc:
        _fail(str(exc))
    except EngineError as exc:
        _fail(f"rule engine: {exc}", EXIT_ENGINE)
    typer.echo(f"wrote {', '.join(str(p) for p in written)} ({NOTICE.split(' - ')[0]})", err=True)


def _subcommands() -> None:
    from escalation.cli.cohort import cohort_app

    app.add_typer(cohort_app, name="cohort", help="The 18 published cases of Table 1: summary, "
                  "cross-source check and placement on the pathway.")


_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
