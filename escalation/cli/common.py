"""What every command shares: output formats, the width option, and errors as one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Optional

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
        fail(str(exc))
    except EngineError as exc:
        fail(f"rule engine: {exc}", EXIT_ENGINE)


def json_text(model: BaseModel) -> str:
    """Sorted keys and fixed indentation, so the same inputs give byte-identical output."""
    return json.dumps(model.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
