"""Where the shipped rule sets, scenarios and literature table live.

They sit at the top of the repository (`rules/`, `scenarios/`), where people look for them, and
the build copies them into the installed package as `escalation/shipped/`. Defaults are always
these files, never whatever happens to lie in the working directory, so a command gives the same
answer from any folder.

A path the user types is read as given, with one fallback (`resolve`): a relative path under
`rules/` or `scenarios/` that names nothing where the command runs, but names a shipped file or
folder, reads the shipped copy. So the repository paths the README uses
(`escalation replay scenarios/index_case.yaml`) work from any folder after an install, and what
a command prints names the file as the user gave it, the same inside and outside the repository.
Only inputs are resolved: an output path is always written where the user said.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

Kind = Literal["rules", "scenarios"]
KINDS: tuple[Kind, ...] = ("rules", "scenarios")

_PACKAGE = Path(__file__).resolve().parent.parent


def shipped_root() -> Path:
    """The folder holding `rules/` and `scenarios/`: inside the installed package, or the checkout."""
    installed = _PACKAGE / "shipped"
    return installed if installed.is_dir() else _PACKAGE.parent


def resolve(path: Path | str) -> Path:
    """The file or folder to read for an input path: `path` itself, unless it is a relative path
    under `rules/` or `scenarios/` (their repository names) that names nothing here and names a
    shipped file or folder, in which case the shipped one.

    Whatever exists at `path` where the command runs always wins, even a dangling link or a
    file that cannot be read (its own error is the one to see), so a user's own `scenarios/`
    folder is never shadowed. An absolute path, or one with a `..`, is never resolved. Applied
    to input paths only: an output path never goes through here, so nothing is ever written into
    the installed package.
    """
    path = Path(path)
    if path.is_absolute() or not path.parts or path.parts[0] not in KINDS or ".." in path.parts:
        return path
    try:
        os.lstat(path)
        return path
    except (FileNotFoundError, NotADirectoryError):
        pass
    except (OSError, ValueError):  # here but unreadable, or a NUL: the reader says what is wrong
        return path
    candidate = shipped_root() / path
    return candidate if os.path.exists(candidate) else path


def as_written(path: Path) -> Path:
    """A shipped file or folder by its repository name (`scenarios/index_case.yaml`) where that
    name reads it from the folder the command runs in, else by its full path.

    For defaults only, so that outputs name a shipped file as the README writes it rather than
    by its place inside the installed package; where a local file of that name would be read
    instead, the full path keeps the default unambiguous.
    """
    try:
        written = path.relative_to(shipped_root())
    except ValueError:
        return path
    try:
        return written if os.path.samefile(resolve(written), path) else path
    except OSError:
        return path


def named(name: str) -> list[Path]:
    """The shipped files called `name`, in any of their folders, sorted: for a hint when a file a
    user copied out of them refers to one of its neighbours that did not come along."""
    return sorted(p for kind in KINDS for p in shipped(kind).rglob(name) if p.is_file()) if name else []


def shipped(kind: Kind, *parts: str) -> Path:
    """A shipped file or folder, e.g. `shipped("rules", "report-pathway.yaml")`."""
    return shipped_root().joinpath(kind, *parts)


DEFAULT_RULES_FILE = "report-pathway.yaml"
INDEX_CASE_FILE = "index_case.yaml"
LITERATURE_FILE = ("literature", "table1.yaml")


def default_rules() -> Path:
    """The report's own pathway, the rule set used when none is named."""
    return shipped("rules", DEFAULT_RULES_FILE)


def default_rules_named() -> Path:
    """The default rule set as outputs name it: `rules/report-pathway.yaml` (see `as_written`)."""
    return as_written(default_rules())


def shipped_rule_files() -> list[Path]:
    """Every shipped rule set, in name order."""
    return sorted(shipped("rules").glob("*.yaml"))


def index_case() -> Path:
    return shipped("scenarios", INDEX_CASE_FILE)


def literature_table() -> Path:
    return shipped("scenarios", *LITERATURE_FILE)
