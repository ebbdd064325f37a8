"""Errors a user can act on: which file, where in it, and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic_core import PydanticCustomError

# A place in a file as its parsed data reaches it: keys and list indices (`rules`, 2, `conditions`).
Place = tuple[str | int, ...]


@dataclass
class InputError(Exception):
    """Bad input from a file or the command line; the CLI prints it and exits non-zero."""

    file: str
    message: str
    line: int | None = None
    where: str | None = None

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f":{self.line}"
        if self.where:
            place += f" ({self.where})"
        return f"{place}: {self.message}"

    def on_command_line(self) -> str:
        """The error as the command line prints it."""
        return str(self)


@dataclass
class ArgumentError(InputError):
    """A bad value of an argument rather than of a file. `file` names the argument as a Python
    caller passes it (`days`); the command line, where the value came from one of its options,
    names that option instead (`option`: `--days`), so that neither reader is sent looking for
    a name they never wrote."""

    option: str = ""

    def on_command_line(self) -> str:
        return f"{self.option or self.file}: {self.message}"


class UnreadableFile(InputError):
    """A file that could not be read at all (missing, no permission, an I/O error), as opposed to
    one read and found wrong: the same file may read fine later, so a batch worker retries its
    chunk rather than recording the failure as the file's."""


def located_error(message: str, path: tuple[str | int, ...]) -> PydanticCustomError:
    """A validation error raised by a whole-file check that still points at one place in the file.

    Pydantic reports a model validator's errors at the model itself; the path travels in the
    error's context so that the loader can give the line of the offending entry instead.
    """
    return PydanticCustomError("located", "{message}", {"message": message, "path": list(path)})
