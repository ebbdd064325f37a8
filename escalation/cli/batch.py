"""`escalation batch`, `escalation batch summary` and `escalation synth`: replays at cohort scale.

`batch` replays every scenario under every rule set at every grid point on Dask workers and
writes a Parquet dataset chunk by chunk (see escalation/batch/). Its exit status: 0 when every
replay ran, 1 when some replays failed or some chunks were not written (the rest is kept, and
`--resume` completes the chunks), 2 for bad command-line input, 130 when interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from escalation.cli.common import Format, FormatOpt, Width, errors, fail, json_text
from escalation.cli.help import PlainCommand
from escalation.match.results import NOTICE
from escalation.report.console import output_width
from escalation.report.files import check_output

DEFAULT = "run"  # the hidden command `escalation batch INPUTS ...` runs; never typed
EXIT_SOME_FAILED = 1
EXIT_INTERRUPTED = 130
SHORT_NOTICE = NOTICE.split(" - ")[0]
SYNTH_NOTE = ("For load and robustness testing only: the timelines are hypothetical, not patients and "
              "not evidence.")


class _BatchGroup(TyperGroup):
    """`batch INPUTS ...` runs the hidden default command; `batch summary DIR` reads a batch.

    Only a command the help names (`summary`), given first, is taken as one: every other first
    word is an input, `run` included (the default command's name, which no help shows: `batch run
    other` once replayed `other` alone, its folder `run` taken for the command). A folder named
    `summary` is given as `./summary`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args:
            args = [DEFAULT, "--help"]
        elif args[0] not in self.commands or self.commands[args[0]].hidden:
            args = [DEFAULT, *args]
        return super().parse_args(ctx, args)


class _GroupPath(typer.Context):
    """The default command's context goes by the group's name, `escalation batch`, as it is typed:
    its option errors say `escalation batch: ...`, never `escalation batch run: ...`."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else super().command_path


class _DefaultCommand(PlainCommand):
    """The default command's usage reads `escalation batch [OPTIONS] INPUTS...`, as it is typed;
    its help is `batch --help`, so it also lists the group's other commands (`batch summary DIR`),
    which the group's own help, never shown, would have listed."""

    context_class = _GroupPath

    def _others(self, ctx: Any) -> list[tuple[str, Any]]:
        group = ctx.parent.command if ctx.parent is not None else None
        return [(name, cmd) for name, cmd in getattr(group, "commands", {}).items()
                if cmd is not self and not cmd.hidden]

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        path = ctx.command_path  # the group's: see _GroupPath
        formatter.write_usage(path, " ".join(self.collect_usage_pieces(ctx)))
        for name, cmd in self._others(ctx):
            pieces = cmd.collect_usage_pieces(ctx) if isinstance(cmd, PlainCommand) else ["[OPTIONS]"]
            formatter.write_usage(f"{path} {name}", " ".join(pieces), prefix="   or: ")

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, cmd.get_short_help_str(limit=300)) for name, cmd in self._others(ctx)]
        if rows:
            with formatter.section("Commands (see `escalation batch COMMAND --help`)"):
                formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


batch_app = typer.Typer(cls=_BatchGroup, rich_markup_mode=None, add_completion=False,
                        context_settings={"help_option_names": ["-h", "--help"]})


# --- progress ------------------------------------------------------------------------------------

@contextmanager
def _progress() -> Iterator[tuple[Callable[[int, int], None], Callable[[int], None]]]:
    """A bar on standard error when it is a terminal: replays done, replays/s and time left."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Speed(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text("-- replays/s" if task.speed is None else f"{task.speed:,.1f} replays/s")

    console = Console(stderr=True)
    with Progress(TextColumn("replays"), BarColumn(), MofNCompleteColumn(), Speed(), TextColumn("left"),
                  TimeRemainingColumn(), console=console, transient=True,
                  disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("replays", total=None)

        def started(done: int, total: int) -> None:
            bar.reset(task, total=total, completed=done)

        yield started, lambda n: bar.advance(task, n)


# --- batch ---------------------------------------------------------------------------------------

def _finish(outcome: Any, out: Path) -> None:
    """One line on how it went; the exit status says whether anything is missing."""
    from escalation.batch.run import BatchOutcome

    assert isinstance(outcome, BatchOutcome)
    rate = outcome.ran_replays / outcome.seconds if outcome.seconds > 0 else 0.0
    failed = f", {outcome.replays_failed} of them failed," if outcome.replays_failed else ""
    typer.echo(f"wrote {out}: {outcome.replays_done} of {outcome.replays} replays{failed} in "
               f"{outcome.chunks_done} of {outcome.chunks} chunks ({outcome.ran_replays} this run, "
               f"{rate:,.1f} replays/s) ({SHORT_NOTICE})", err=True)
    if not outcome.complete:  # whatever the reason: a chunk not in DIR is missing
        first = f" (chunk {outcome.failures[0].index}: {outcome.failures[0].message})" if outcome.failures else ""
        fail(f"{outcome.chunks - outcome.chunks_done} of {outcome.chunks} chunks are missing in {out}{first}; "
             "the same command with --resume completes them", EXIT_SOME_FAILED)
    if outcome.replays_failed:
        n = len(outcome.failed_files)
        fail(f"{outcome.replays_failed} of {outcome.replays} replays failed ({n} file{'' if n == 1 else 's'}, "
             f"first {outcome.failed_files[0]}); the others are written; see {out / 'errors'} or "
             f"`escalation batch summary {out}`", EXIT_SOME_FAILED)


@batch_app.command(DEFAULT, cls=_DefaultCommand, hidden=True)
def run(
    inputs: Annotated[list[Path], typer.Argument(metavar="INPUTS", help="scenario files or folders, FHIR "
                                                 "Bundles, or FHIR Bulk Data export folders (a Bundle of "
                                                 "several patients or an export folder, named on its own, "
                                                 "is imported into DIR/imported, one scenario per patient, "
                                                 "and the YAML files in an export folder replayed too; "
                                                 "in a folder named, only Bundles of one patient each; a "
                                                 "folder named summary, given first, is written ./summary)")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="folder for the manifest and the "
                                      "Parquet results (new or empty, or a batch to --resume)")],
    rules: Annotated[Optional[list[Path]], typer.Option(
        "--rules", "-r", metavar="FILE", help="rule set file or folder (repeatable; default: the shipped "
        "report-pathway.yaml)")] = None,
    grid: Annotated[list[str], typer.Option(
        "--grid", metavar="RULE.PARAM=START:STOP:STEP", help="a parameter range (repeatable: the grid is "
        "every combination)")] = [],  # noqa: B006
    workers: Annotated[Optional[int], typer.Option(
        min=1, metavar="N", help="local worker processes, one engine each (default: one per core)")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        metavar="ADDRESS", help="run on this Dask scheduler (tcp://HOST:PORT) instead of local workers")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="complete the chunks an interrupted run did not write")] = False,
    chunk_size: Annotated[Optional[int], typer.Option(
        min=1, max=10_000, metavar="N", help="replays per chunk (default: about 32 chunks of 10 to 200)")] = None,
) -> None:
    """Replay every scenario under every rule set at every grid point, on Dask workers, into a
    Parquet dataset in DIR; `escalation batch summary DIR` reads it. For research review only."""
    from escalation.batch.run import batch_planner, run_batch

    if workers is not None and scheduler is not None:
        fail("--workers and --scheduler: give one or the other (a scheduler has its own workers)")
    if scheduler is not None and not scheduler.strip():
        fail("--scheduler: give the scheduler's address, tcp://HOST:PORT (without the option, local workers run)")
    with errors():
        check_output(out, folder=True)
        planner = batch_planner(inputs, rules, grid, chunk_size, out)  # Bulk Data is imported under DIR's lock
        try:
            with _progress() as (started, advance):
                outcome = run_batch(planner, out, resume=resume, workers=workers, scheduler=scheduler,
                                    started=started, advance=advance)
        except KeyboardInterrupt:
            _interrupted(out)
    _finish(outcome, out)


def _interrupted(out: Path) -> None:
    from escalation.batch.store import done_chunks, read_manifest

    manifest = read_manifest(out)
    if manifest is None:  # stopped while the cluster started: nothing of the batch is in DIR
        fail(f"interrupted before the batch started: no manifest and no chunk is written in {out}; the same "
             "command starts it", EXIT_INTERRUPTED)
    fail(f"interrupted: {len(done_chunks(out))} of {manifest.chunking.chunks} chunks are written in {out}; "
         "the same command with --resume completes the rest", EXIT_INTERRUPTED)


class _SummaryCommand(PlainCommand):
    """`batch summary`, whose usage error says how to replay a folder named `summary`, when there is
    one here and the command line holds an option of a batch run: `escalation batch summary --out
    DIR` reads as this command, not as a batch of that folder."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = list(args)  # the parser consumes `args`
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:
            group = ctx.parent.command if ctx.parent is not None else None
            default = getattr(group, "commands", {}).get(DEFAULT)
            run_options = {o for p in getattr(default, "params", []) for o in p.opts if o.startswith("-")}
            if not Path("summary").exists() or not any(a.split("=")[0] in run_options for a in given):
                raise
            said = " ".join(exc.format_message().split()).rstrip(".")
            ctx.fail(f"{said}; `escalation batch summary` reads a batch: to replay the folder summary, write "
                     "it ./summary (`escalation batch ./summary ...`)")


@batch_app.command("summary", cls=_SummaryCommand)
def summary(
    out: Annotated[Path, typer.Argument(metavar="DIR", help="a batch folder")],
    fmt: FormatOpt = Format.table,
    width: Width = None,
) -> None:
    """For each rule set, grid point and rule: how many replays flagged it, the lag median and
    interquartile range, the actions no rule flagged, and the replays that failed. For research
    review only."""
    from escalation.batch.summary import summarize, to_text

    with errors():
        result = summarize(out)
    sys.stdout.write(json_text(result) if fmt == Format.json else to_text(result, output_width(width)) + "\n")


# --- synth ---------------------------------------------------------------------------------------

def synth(
    n: Annotated[int, typer.Argument(metavar="N", min=1, max=1_000_000, help="how many timelines")],
    seed: Annotated[int, typer.Option(metavar="S", help="the same seed writes the same files")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="new or empty folder for synth-NNNNNN.yaml")],
) -> None:
    """Write N hypothetical timelines (scenario files) for load and robustness testing only: not
    patients, not evidence. Every scenario and event is marked hypothetical: true."""
    from escalation.analysis.synth import write_synth

    with errors():
        check_output(out, folder=True)
        written = write_synth(n, seed, out)
    typer.echo(f"wrote {len(written)} hypothetical timelines to {out} (load and robustness testing only; "
               f"{SHORT_NOTICE})", err=True)


def mount(app: typer.Typer) -> None:
    """Add `batch` (with `batch summary`) and `synth` to the main command line."""
    app.add_typer(batch_app, name="batch", help="Replay scenarios x rule sets x a parameter grid on Dask "
                  "workers into Parquet (`batch INPUTS ... --out DIR`), and summarise it (`batch summary DIR`).")
    app.command("synth", cls=PlainCommand, help=synth.__doc__)(synth)
