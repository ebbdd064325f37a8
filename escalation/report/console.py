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
    from rich.console import Console, ConsoleOptions
    from rich.table import Table

FALLBACK_WIDTH = 100  # columns when standard output is not a terminal
MIN_WIDTH = 60  # narrower than this, a table has no room for its day and rule columns

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A table of printable ASCII: one cell a character, box-drawing included. Compiled on first use
# (re caches it), so that commands which print no table never pay for it.
_TABLE_CHARS = r"[ -~\n\u2500-\u257f]*"


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
    """A Rich console that renders into `buf` at exactly `width` columns, with no markup guessing,
    and into `buf` in a notebook too (where Rich would otherwise display it and leave `buf` empty)."""
    from rich.console import Console

    return Console(file=buf, width=width, color_system="standard" if color else None,
                   force_terminal=color, force_jupyter=False, highlight=False, emoji=False, soft_wrap=False)


def _plain_ascii(text: str) -> bool:
    """Printable ASCII and newlines only: what Rich neither strips, expands nor measures as wider."""
    return text.isascii() and "\t" not in text and _CONTROL.search(text) is None


def _narrow(text: str, width: int) -> bool:
    """No line of `text` longer than `width` characters."""
    return len(text) <= width or max(map(len, text.split("\n"))) <= width


class Printer:
    """A report printed at one width, with the bytes Rich's `console.print` gives and less work.

    Without colour, printable ASCII needs little of Rich's console pipeline: a line that fits is
    written as it is, a longer one is folded by Rich's own `Text.wrap`, an item is written as
    `fold` left it, and a table is laid out by Rich with its segments joined here. Colour, wide or
    control characters and markup go through `console.print`, so a line's bytes never depend on
    the way it took (tests/test_terminal.py compares the two).
    """

    def __init__(self, width: int, color: bool = False) -> None:
        self.width = width
        self.buf = io.StringIO()
        self.console = buffer_console(self.buf, width, color)
        self._columns = self.console.width  # the width Rich wraps and crops at
        self._direct = not color and self._columns >= 1  # Rich prints nothing below one column

    def line(self, text: str, style: str = "", markup: bool = False) -> None:
        """`text` folded at the width, as `console.print` would; `style` shows only in colour."""
        if self._direct and (not markup or "[" not in text) and _plain_ascii(text):
            self._wrapped(text)
        elif style:
            from rich.text import Text

            self.console.print(Text(text, style=style))
        else:
            self.console.print(text, markup=markup)

    def _wrapped(self, text: str) -> None:
        """Printable ASCII without colour: as it is when it fits, else folded by Rich's own wrap.

        `console.print` lays text out with the wrap below (justify and overflow at Rich's
        defaults) and crops lines the wrap has already fitted, so only the pipeline is skipped.
        """
        if _narrow(text, self._columns):
            self.buf.write(text + "\n")
            return
        from rich.text import Text

        lines = Text(text).wrap(self.console, self._columns, justify="default", overflow="fold")
        self.buf.write("\n".join(line.plain for line in lines) + "\n")

    def item(self, text: str) -> None:
        """A list item folded by `fold` with a hanging indent, so each item reads as one block.

        `plain_text` leaves no character Rich would strip, and nothing is wrapped or cropped here,
        so without colour Rich would print the folded text as it is.
        """
        folded = plain_text(text, self.width)
        if self._direct:
            self.buf.write(folded + "\n")
        else:
            self.console.print(folded, markup=False, soft_wrap=True)

    def table(self, table: Table) -> None:
        """A Rich table, rendered by Rich; without colour its segments are joined here.

        `console.print` would also crop each line to the width and drop control segments; a line
        of one-cell characters that fits needs no cropping, and the rest are cropped as Rich does.
        """
        if not self._direct:
            self.console.print(table)
            return
        segments = list(self.console.render(table, self._print_options()))
        text = "".join(s.text for s in segments if not s.control)
        if re.fullmatch(_TABLE_CHARS, text) is None or not _narrow(text, self._columns):
            from rich.segment import Segment

            lines = Segment.split_and_crop_lines(segments, self._columns, pad=False)
            text = "".join(s.text for line in lines for s in line if not s.control)
        self.buf.write(text)

    def _print_options(self) -> ConsoleOptions:
        """The options `console.print` renders with when given no arguments."""
        return self.console.options.update(justify=None, overflow=None, height=None, no_wrap=None,
                                           markup=None, highlight=None)

    def text(self) -> str:
        """Everything printed, without Rich's trailing spaces."""
        return rendered(self.buf)


def plural(count: int, one: str, many: str | None = None) -> str:
    """`1 replay`, `2 replays`: a count with its noun."""
    return f"{count} {one if count == 1 else (many or one + 's')}"
