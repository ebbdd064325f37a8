"""Which files a command was pointed at, and what kind of file each one is.

Commands take files and folders. A folder is walked recursively for YAML files in a stable
order, so that two runs list the same files in the same order. What a file is (a scenario, a
rule set, or the published-case records) is read from its top-level keys, not guessed from its
name or folder, so that `check` can validate a mixed tree and `test` can say plainly when it
found nothing to test.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

from escalation.load.errors import InputError

FileKind = Literal["scenario", "rules", "records"]
T = TypeVar("T")
YAML_SUFFIXES = (".yaml", ".yml")
LITERATURE = "literature"  # a folder of published-case records, not timelines
_KEYS: tuple[tuple[str, FileKind], ...] = (("scenario", "scenario"), ("ruleset", "rules"), ("records", "records"))


def kind_of(data: Any) -> FileKind | None:
    """The kind of a parsed file, from the top-level key each format requires."""
    if not isinstance(data, dict):
        return None
    return next((kind for key, kind in _KEYS if key in data), None)


def yaml_files(paths: Iterable[Path], skip_literature: bool = False) -> list[Path]:
    """Files named directly, and YAML files under the folders named, each folder sorted by path.

    `skip_literature` passes over folders named `literature` inside a walked folder: they hold
    the published-case records (`escalation cohort`), not timelines.
    """
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(x for x in p.rglob("*") if x.suffix in YAML_SUFFIXES and x.is_file()
                          and not (skip_literature and LITERATURE in x.relative_to(p).parts))
        elif p.exists():
            out.append(p)
        else:
            raise InputError(str(p), "file not found")
    return out


def require_some(found: list[T], paths: Iterable[Path], what: str,
                 looked_for: str = "*.yaml and *.yml files") -> list[T]:
    """Finding nothing to work on is an error, never a silent pass; the message says what was
    looked for, since a command that also reads FHIR looks for more than YAML."""
    if not found:
        where = ", ".join(str(p) for p in paths) or "(no paths)"
        raise InputError(where, f"no {what} found (looked for {looked_for}, walking folders)")
    return found
