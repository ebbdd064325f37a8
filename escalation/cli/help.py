"""Help text that reads as the README does: `SCENARIO`, `FILE`, `[PATHS]...`, no type tags.

Typer's own help shows Python types (`<path>`, `<list[Path]>`) beside argument names and braces
around required ones. The commands use this class instead, so that `--help` and the README name
every placeholder the same way (a test compares them). The class also refuses an option that takes
one value given twice (escalation.cli.common.refuse_repeats), so every command does.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from typer.core import TyperCommand

from escalation.cli.common import refuse_repeats


def argument_name(param: Any) -> str:
    """`NAME`, `NAME...` for several, in brackets when it may be left out."""
    name = param.metavar or param.name.upper()
    if param.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name if param.required else f"[{name}]"


def option_record(param: Any, record: tuple[str, str]) -> tuple[str, str]:
    """An option's help row with a Python type tag (`<path>`) replaced by a placeholder (`OUT`)."""
    return re.sub(r"<[^>]*>", param.metavar or param.name.upper(), record[0]), record[1]


class PlainCommand(TyperCommand):
    """A command whose usage line and argument list name placeholders plainly, and which refuses an
    option that takes one value given more than once; `once_hints` (parameter name: text) says
    what to do instead, for a command that has a better way."""

    once_hints: ClassVar[dict[str, str]] = {}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        refuse_repeats(ctx, self, args, self.once_hints)
        return super().parse_args(ctx, args)

    @classmethod
    def with_hints(cls, **hints: str) -> type[PlainCommand]:
        """This class with `once_hints`: `cls=PlainCommand.with_hints(rules="...")`."""
        return type(cls.__name__, (cls,), {"once_hints": {**cls.once_hints, **hints}})

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        params = self.get_params(ctx)
        pieces = ["[OPTIONS]"] if any(p.param_type_name == "option" for p in params) else []
        return pieces + [argument_name(p) for p in params if p.param_type_name == "argument"]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        params = [p for p in self.get_params(ctx) if not getattr(p, "hidden", False)]
        args = [(argument_name(p), p.help or "") for p in params if p.param_type_name == "argument"]
        opts = [option_record(p, r) for p in params
                if p.param_type_name == "option" and (r := p.get_help_record(ctx))]
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
