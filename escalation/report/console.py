"""Text for a terminal: how wide to print, how to fold, and what never reaches the terminal raw.

Every plain-text output goes through here, so that three promises hold in one place:
- it follows the terminal's width, and falls back to a fixed width when the output is a file or a
  pipe, so that the same inputs print the same bytes (the README excerpt depends on it);
- a line longer than the width folds onto the next line, indented; content is never cut;
- text that comes from a file (titles, ids, file names) cannot carry control characters to the
  terminal: escape sequences in a scenario title would otherwise retitle or recolour the
  reader's terminal.
"""

from __future__ import annotations

import io
import re
import shutil
import sys
import textwrap
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # Rich is imported when something is printed, not by every command that imports this
    from rich.console import Console

FALLBACK_WIDTH = 100  # columns when standard output is not a terminal
MIN_WIDTH = 60  # narrower than this, a table has no room for its day and rule columns

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def output_width(requested: int | None = None, stream: TextIO | None = None) -> int:
    """The width asked for, else the terminal's, else FALLBACK_WIDTH for files and pipes."""
    if requested is not None:
        return requested
    stream = stream if stream is not None else sys.stdout
    if stream.isatty():
        return max(MIN_WIDTH, shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns)
    return FALLBACK_WIDTH


def printable(text: str) -> str:
    """Control characters shown as visible escapes (`\\x1b`), tabs as spaces, newlines kept."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text.replace("\t", " "))


def fold(text: str, width: int) -> str:
    """Every line longer than `width` folded at spaces; an indented line continues 2 further in."""
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        lead = len(line) - len(line.lstrip(" "))
        indent = " " * (lead + 2 if lead else 0)  # list items hang; prose folds flush
        out += textwrap.wrap(line, width=width, subsequent_indent=indent, break_long_words=True,
                             break_on_hyphens=False, drop_whitespace=True)
    return "\n".join(out)


def plain_text(text: str, width: int) -> str:
    """Text built from file content, made safe and folded to `width`."""
    return fold(printable(text), width)


def rendered(buf: io.StringIO) -> str:
    """What a buffer console printed, without the trailing spaces Rich pads wrapped lines with."""
    return "\n".join(line.rstrip() for line in buf.getvalue().split("\n"))


def buffer_console(buf: io.StringIO, width: int, color: bool = False) -> Console:
    """A Rich console that renders into `buf` at exactly `width` columns, with no markup guessing."""
    from rich.console import Console

    return Console(file=buf, width=width, color_system="standard" if color else None,
                   force_terminal=color, highlight=False, emoji=False, soft_wrap=False)
