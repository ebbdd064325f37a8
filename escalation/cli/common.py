"""What every command shares: output formats, the width option, errors as one line, and options
that take one value given once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel

from escalation.evaluate.engine import EngineError
from escalation.load.errors import InputError
from escalation.report.console import MIN_WIDTH

EXIT_BAD_INPUT = 2
EXIT_ENGINE = 3


class Format(str, Enum):
    table = "table"
    json = "json"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", metavar="[table|json]",
                                           help="table for people, json for programs")]
Width = Annotated[Optional[int], typer.Option(
    "--width", min=MIN_WIDTH, metavar="COLUMNS",
    help="width of tables in columns (default: the terminal's; 100 when not a terminal)")]


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """One line on standard error, `error: ...`, and the exit status."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Bad input and engine refusals as one line and an exit status, never a traceback."""
    try:
        yield
    except InputError as exc:
        fail(exc.on_command_line())
    except EngineError as exc:
        fail(f"rule engine: {exc}", EXIT_ENGINE)


def json_text(model: BaseModel) -> str:
    """Sorted keys and fixed indentation, so the same inputs give byte-identical output."""
    return json.dumps(model.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def refuse_repeats(ctx: Any, command: Any, args: Sequence[str], hints: Mapping[str, str] | None = None) -> None:
    """A usage error when an option that takes one value is given more than once.

    Click (vendored by typer) keeps the last value of such an option and drops the others without
    a word, so `replay --rules a.yaml --rules b.yaml` would replay b.yaml alone, and `sweep --set A
    --set B` sweep B alone. A repeated option is refused instead, whichever it is: one that changes
    the result (--rules, --set, --day-zero, --through-day), and one that changes where it goes or
    how it looks (--out, --format, --width) alike, since the command line cannot say which of the
    values was meant. Options marked repeatable (`--grid`, batch's `--rules`) and flags
    (`--resume`, `--all`) are not concerned. `hints` (parameter name: text) says what to do
    instead. Every command calls this (escalation.cli.help.PlainCommand) before it parses its
    arguments; a command line the parser refuses anyway is left for it to report, and --help still
    helps."""
    try:
        _, _, order = command.make_parser(ctx).parse_args(list(args))
    except typer.TyperException:  # a usage error: the command's own parse reports it
        return
    if any(getattr(p, "is_eager", False) for p in order):  # --help (or --version) wins, as it would
        return
    counts = Counter(p for p in order if p.param_type_name == "option"
                     and not (p.multiple or p.count or p.is_flag))
    for param, n in counts.items():
        if n > 1:
            name = max(param.opts, key=len)
            values = _values_given(param, args)
            shown = f" ({' and '.join(values)})" if len(values) == n else ""
            hint = (hints or {}).get(param.name or "", "give it once")
            ctx.fail(f"{name} is given more than once{shown}: it takes one value; {hint}")


def _values_given(param: Any, args: Sequence[str]) -> list[str]:
    """The values given to `param` in `args`, as far as a plain scan finds them (for the message
    only: the parser has already counted them)."""
    found: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        if arg in param.opts:
            found += args[i + 1:i + 2]
            i += 2
            continue
        for opt in param.opts:
            if opt.startswith("--") and arg.startswith(opt + "="):
                found.append(arg[len(opt) + 1:])
            elif not opt.startswith("--") and not arg.startswith("--") and arg.startswith(opt) and len(arg) > len(opt):
                found.append(arg[len(opt):])
        i += 1
    return found
