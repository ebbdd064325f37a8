"""Which files a command was pointed at, and what kind of file each one is.

Commands take files and folders. A folder is walked recursively in a stable order, so that two
runs list the same files in the same order; every command walks with `files_under`, so a
folder in it that cannot be read is an error naming it, never passed over. What a file is (a
scenario, a rule set, or the published-case records) is read from its top-level keys, not
guessed from its name or folder, so that `check` can validate a mixed tree and `test` can say
plainly when it found nothing to test.

A repository path of a shipped file or folder that is not here (`scenarios/variants`, say) reads
the shipped one (`shipped.resolve`); the files found under a shipped folder are named under the
path as given (`scenarios/variants/x.yaml`), so outputs print the same names from every folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

from escalation.load.errors import InputError
from escalation.load.reading import shown_name
from escalation.load.shipped import resolve

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
        real = resolve(p)
        if real.is_dir():
            out += [x for x in files_under(p) if x.suffix in YAML_SUFFIXES
                    and not (skip_literature and LITERATURE in x.relative_to(p).parts)]
        elif real.exists():
            out.append(p)
        else:
            raise InputError(str(p), "file not found")
    return out


def files_under(root: Path) -> list[Path]:
    """The regular files in a folder and all its subfolders, sorted by path (as `sorted` sorts
    paths, part by part). Symbolic links to files are followed and links to folders are not, as
    `Path.rglob` does. A folder that cannot be listed (no permission, an I/O error, removed during
    the walk), the root included, is an input error naming it: `rglob` would pass over it without
    a word, and its files would be missing from the results. A shipped folder's repository path
    (`shipped.resolve`) walks the shipped folder, its files named under `root` as given."""

    def refuse(exc: OSError) -> NoReturn:
        raise _unreadable_folder(exc, root) from None

    real = resolve(root)
    if real != root:
        return [root / p.relative_to(real) for p in files_under(real)]
    found: list[Path] = []
    for folder, _, names in os.walk(root, onerror=refuse):
        for name in names:
            path = Path(folder, name)
            try:
                regular = path.is_file()
            except OSError as exc:  # not "no such file", which is_file takes as "not a file"
                raise InputError(shown_name(path), f"cannot read file: {exc.strerror or exc}") from None
            if regular:
                found.append(path)
    return sorted(found)


def export_folders(files: Iterable[Path]) -> list[Path]:
    """The FHIR Bulk Data exports among the files a walk found: each folder holding NDJSON files
    that is not inside another, since the import of a folder reads its subfolders too. `check`,
    `batch` and the scenario finder all find exports this way."""
    folders = {p.parent for p in files if p.suffix == ".ndjson"}
    return sorted(f for f in folders if not any(other in f.parents for other in folders))


def folder_entries(folder: Path) -> list[Path]:
    """What one folder holds (files and folders), sorted; a folder that cannot be listed is an
    input error naming it, as in `files_under`."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise _unreadable_folder(exc, folder) from None


def _unreadable_folder(exc: OSError, folder: Path) -> InputError:
    """The error for a folder that could not be listed: the one named by `exc` (a subfolder of
    a walk), or `folder`."""
    return InputError(shown_name(exc.filename or folder), f"cannot read folder: {exc.strerror or exc}")


def require_some(found: list[T], paths: Iterable[Path], what: str,
                 looked_for: str = "*.yaml and *.yml files") -> list[T]:
    """Finding nothing to work on is an error, never a silent pass; the message says what was
    looked for, since a command that also reads FHIR looks for more than YAML."""
    if not found:
        where = ", ".join(str(p) for p in paths) or "(no paths)"
        raise InputError(where, f"no {what} found (looked for {looked_for}, walking folders)")
    return found


def each_once(paths: Iterable[Path]) -> list[Path]:
    """The paths in order, a file named twice (`x.yaml ./x.yaml`, a folder and a file in it) kept
    once, as the first name it was given: so no command replays or counts one file twice."""
    seen: set[Path] = set()
    out = []
    for p in paths:
        real = resolve(p).resolve()
        if real not in seen:
            seen.add(real)
            out.append(p)
    return out
