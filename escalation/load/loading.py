"""Files to validated models, with errors that point at a line.

Files are read and parsed by `escalation.load.reading`: regular files of at most 10 MiB, YAML
with YAML 1.2's plain values, no anchors on lists or mappings, no tags, at most 100 levels of
nesting, no duplicate keys. pydantic validates the result. When validation fails, the error's
location in the data is mapped back to the line of the file, so the person editing a scenario is
told `scenarios/x.yaml:42 (events[3].values.fio2)` rather than a traceback. A variant merged with its
base is mapped part by part to the file that writes each part (escalation.load.origins), and
the base is named from the current folder, or as the variant names it (`_base_name`), not by
the resolved path it was read from.

A variant names the file it derives from (`derives_from`) relative to its own folder, and that
file must lie inside one of the variant's roots: its own tree, which is the nearest enclosing
folder named `scenarios` or `rules` or else the variant's own folder, and the shipped scenarios/
and rules/ folders (the tool's own files, so that a variant kept anywhere can derive from the
index case). Shipped variants need the tree: scenarios/variants/*.yaml derive from
../index_case.yaml. The path is resolved, symlinks included, before it is compared, so neither
`..`, an absolute path nor a link reaches /etc/shadow or /dev/zero; the error points at the
derives_from line. Cycles are refused, and a chain may be at most MAX_DERIVES_CHAIN (16)
derives_from long. `derives_chain` lists the files a load reads after the one named, found the
same way, for a batch to hash them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from escalation.load.errors import InputError, Place
from escalation.load.origins import Places, in_file, noted, written
from escalation.load.reading import json_problem, parse_yaml, read_text, shown_name
from escalation.load.ruleset import Ruleset
from escalation.load.scenario import Scenario
from escalation.load.shipped import named, resolve, shipped

M = TypeVar("M", bound=BaseModel)

MAX_DERIVES_CHAIN = 16  # derives_from links followed from the file named, at most
DERIVES_TREES = ("scenarios", "rules")


def _line_index(node: yaml.Node, path: Place = (), index: dict[Place, int] | None = None) -> dict[Place, int]:
    """Map each path in the document to the 1-based line where its value starts."""
    if index is None:
        index = {}
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            index[path + (key,)] = key_node.start_mark.line + 1
            _line_index(value_node, path + (key,), index)
            index[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), index)
    return index


def format_path(path: Place) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_yaml(path: Path | str, name: str | None = None) -> tuple[Any, dict[Place, int]]:
    """Parse a YAML file into plain data and a map from data paths to line numbers (one parse).

    A repository path of a shipped file that is not here reads the shipped copy
    (`shipped.resolve`); errors name the path as given. JSON is YAML, so a `.json` scenario or
    rule set is read here too; when it is malformed, its name says JSON, so the error is the JSON
    parser's (a `.json` file that is valid JSON but that the YAML reader refuses, such as one with
    duplicate keys, keeps the YAML reader's error). Errors name the file `name`, by default
    the path as given."""
    name = name or shown_name(path)
    text = read_text(resolve(path), name)
    try:
        node, data = parse_yaml(text, name)
    except InputError as exc:
        if Path(path).suffix != ".json" or not exc.message.startswith("malformed YAML"):
            raise
        raise (json_problem(text, name) or exc) from None
    if node is None or data is None:
        raise InputError(name, "the file is empty")
    return data, _line_index(node)


def validate(model: type[M], data: Any, lines: dict[Place, int], name: str, places: Places | None = None) -> M:
    """Validate data against a model; the first error becomes one InputError with its line.

    One message rather than a list: the first problem in file order is the one to fix first,
    and a count tells the user how many more there are. `data` is the file `name` as read, with
    its `lines`, unless `places` says where each part of it is written (a variant merged with its
    base): the error then names the file, line and path where the part at fault is written, and
    if that is the base, says that it arises in `name`.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raw = tuple(err["loc"])
        if err["type"] == "located":
            # a whole-model check: its path is relative to the model that raised it
            raw += tuple(err["ctx"]["path"])
        loc = _strip_tags(raw, data, keep_last=err["type"] in ("missing", "located"))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        elif err["type"] == "missing":
            message = f"missing field {loc[-1]!r}"
        at = written(places or in_file(name, lines), loc)
        if at.file != name:
            message += f" (in {name}, which derives from this file)"
        more = len(exc.errors()) - 1
        if more > 0:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise InputError(at.file, message, line=at.line, where=format_path(at.path) or None) from None


def _strip_tags(loc: tuple[Any, ...], data: Any, keep_last: bool = False) -> Place:
    """Keep only the parts of a pydantic location that exist in the data (drops union tags).

    A union's tag is never a key the data has (ruleset._CONDITION_KEYS): a tag that were also a
    field name would be followed into that field. The last part, if the data lacks it, is kept
    when the error is about it (`keep_last`): a missing field, or a place a whole-model check
    names; otherwise it is a tag (a word for `repeat` that is not one).
    """
    out: list[str | int] = []
    node = data
    for n, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif keep_last and n == len(loc) - 1 and isinstance(node, dict) and isinstance(part, str):
            out.append(part)
    return tuple(out)


def _load(path: Path | str, model: type[M], seen: tuple[Path, ...], name: str | None = None) -> tuple[M, Places]:
    """A file of `model`, or a variant of one (`derives_from`) resolved against its base, and
    where each part of it is written.

    A variant is validated as written (so its errors point at its own lines), then merged with
    its base and the result validated whole, so every rule of the format holds for it too; an
    error there names the file and line where the part at fault is written (origins.Places). The
    variant formats (escalation.load.changes) are imported for a variant only. Errors name the
    file `name`, by default the path as given, and a base as `_base_name` names it.
    """
    name = name or shown_name(path)
    data, lines = read_yaml(path, name)
    path = resolve(path)  # the file read: its derives_from is found next to it
    _refuse_other_kind(data, model, name)
    own = in_file(name, lines)
    if not (isinstance(data, dict) and "derives_from" in data):
        return noted(validate(model, data, lines, name), name, own), own
    from escalation.load.changes import RulesetVariant, ScenarioVariant, UnknownId

    variant_model = ScenarioVariant if model is Scenario else RulesetVariant
    variant = validate(variant_model, data, lines, name)
    base_path = _base_path(path, variant.derives_from, lines.get(("derives_from",)), seen, name)
    base_name = _base_name(name, variant.derives_from, base_path)
    base, base_places = _load(base_path, model, (*seen, path.resolve()), base_name)
    try:
        merged, came = variant.apply(base)
    except UnknownId as exc:
        raise InputError(name, str(exc), line=lines.get(exc.place, lines.get(exc.place[:3])),
                         where=format_path(exc.place)) from None
    except ValueError as exc:
        raise InputError(name, str(exc), line=lines.get(("changes",))) from None
    places = {at: written(own if whence == "own" else base_places, there) for at, (whence, there) in came.items()}
    return noted(validate(model, merged, lines, name, places), name, places), places


def _refuse_other_kind(data: Any, model: type[M], name: str) -> None:
    """A rule set given as a scenario (or the reverse) is named as such, not as 30 missing fields."""
    kinds = {Scenario: ("scenario", "a scenario"), Ruleset: ("ruleset", "a rule set")}
    key, wanted = kinds[model]
    if isinstance(data, dict) and key not in data:
        other = next((n for k, n in kinds.values() if k in data), None)
        if other is not None:
            raise InputError(name, f"this is {other}, not {wanted}", line=1)
        if "records" in data:
            raise InputError(name, f"these are published-case records (escalation cohort), not {wanted}", line=1)


def derives_roots(path: Path) -> tuple[Path, ...]:
    """The folders a variant may derive from: its own tree, and the shipped scenarios and rules.

    Its own tree is the nearest enclosing folder named `scenarios` or `rules` (so that shipped
    variants in scenarios/variants/ can name ../index_case.yaml), else its own folder; found from
    the file's real location, symlinks resolved. The shipped folders are the tool's own files, so
    that a variant kept anywhere may derive from the index case.
    """
    real = path.resolve()
    own = next((p for p in real.parents if p.name in DERIVES_TREES), real.parent)
    return (own, *(shipped(kind).resolve() for kind in DERIVES_TREES))


def _base_path(path: Path, ref: str, line: int | None, seen: tuple[Path, ...], name: str | None = None) -> Path:
    """The resolved file `derives_from: ref` names in `path` (shown as `name`), if it may be read at all."""
    name, shown = name or shown_name(path), shown_name(ref)
    if "\x00" in ref:
        raise InputError(name, "derives_from: the file name contains a NUL character", line=line)
    try:
        base, roots = (path.parent / ref).resolve(), derives_roots(path)
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise InputError(name, f"derives_from: cannot resolve {shown}: {exc}", line=line) from None
    if not base.exists():
        raise InputError(name, f"derives_from: no file {shown}{_shipped_hint(ref)}", line=line)
    if not any(base.is_relative_to(root) for root in roots):
        raise InputError(name, f"derives_from: {shown} lies outside {roots[0]}, the folder this file may "
                         "derive from (its own, or the scenarios or rules folder it is in, or the shipped "
                         "scenarios and rules)", line=line)
    if base in seen or base == path.resolve():
        raise InputError(name, f"derives_from forms a cycle through {shown}", line=line)
    if len(seen) >= MAX_DERIVES_CHAIN:
        raise InputError(name, f"derives_from: a chain of variants may be at most {MAX_DERIVES_CHAIN} "
                         "files long", line=line)
    return base


def _base_name(variant: str, ref: str, base: Path) -> str:
    """How errors name the file a variant derives from (`base`, its path resolved): by its path
    from the current folder when it lies under it, else as the variant's name (as shown) joined
    with what its `derives_from` says, `..` folded. Never by where it was found unless that is
    what the user wrote: a base inside the installed package (the shipped rules and scenarios)
    would otherwise be named by the install's path, and one anywhere by a path the user never
    typed. A batch's worker renames it as the batch was given the variant (batch.work._named)."""
    try:
        return shown_name(base.relative_to(Path.cwd()))
    except (ValueError, OSError):  # not under it, or the current folder is gone
        return shown_name(os.path.normpath(os.path.join(os.path.dirname(variant), ref)))


def _shipped_hint(ref: str) -> str:
    """Where a shipped file of the name asked for lies: a variant copied out of the shipped
    scenarios names its base relative to where it was (`../index_case.yaml`)."""
    hits = named(Path(ref).name)
    if not hits:
        return ""
    return (f" (a shipped file has that name: {hits[0]}; give derives_from that path, or copy the file "
            "to where this one names it)")


# A key reads `derives_from` only if the text spells it so, or builds it from escapes in a quoted
# key: \x, \u and \U write any character, a backslash before a line break joins two lines. YAML's
# other escapes write none of its letters, and line folding adds a space, never removes one.
_MAY_DERIVE = re.compile(r"derives_from|\\[xuU\n]")


def derives_chain(path: Path | str) -> list[Path]:
    """The files that loading `path` reads after it, nearest first: each `derives_from`, resolved
    by `_base_path` as loading resolves it (the same roots, cycle check and chain limit).

    For a caller that must know every file a load depends on (a batch hashes them all). The
    chain ends where loading would stop with an error, which loading the file then reports: a
    file that cannot be read or parsed, or a link `_base_path` refuses.
    """
    chain: list[Path] = []
    current, seen = resolve(path), ()
    while (base := _derives_link(current, seen)) is not None:
        chain.append(base)
        current, seen = base, (*seen, current.resolve())
    return chain


def _derives_link(path: Path, seen: tuple[Path, ...]) -> Path | None:
    """The file `path` derives from, or None; a file with no `derives_from` is not parsed."""
    name = shown_name(path)
    try:
        text = read_text(path, name)
        if _MAY_DERIVE.search(text) is None:
            return None
        data = parse_yaml(text, name)[1]
        ref = data.get("derives_from") if isinstance(data, dict) else None
        return _base_path(path, ref, None, seen) if isinstance(ref, str) else None
    except InputError:
        return None


def load_scenario(path: Path | str) -> Scenario:
    return _load(path, Scenario, ())[0]


def load_ruleset(path: Path | str) -> Ruleset:
    return _load(path, Ruleset, ())[0]
