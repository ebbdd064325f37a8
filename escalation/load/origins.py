"""Where each part of a loaded file was written, for errors found after it was read.

A variant (`derives_from`) is validated whole only once it is merged with its base, and the engine
may refuse a rule in the middle of a replay; either error should still say `FILE:LINE (PATH)`
with a line and a path of the file where the offending part is written. Loading therefore keeps,
for each part of a model, where it is written (`Places`): a variant's own parts (its header and
what it replaces or adds) point at the variant, the rest at the file they were inherited from,
through every link of a chain. A rule set keeps, as a private note that is not part of its
content or its hash, the file and line of each rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from escalation.load.errors import Place
from escalation.load.ruleset import Ruleset

Lines = dict[Place, int]
Origin = dict[str | None, tuple[str, int | None]]


@dataclass(frozen=True)
class Written:
    """Where a part of a model is written: the file (as shown in errors), its line index, and the
    path of that part in the file."""

    file: str
    lines: Lines
    path: Place = ()

    @property
    def line(self) -> int | None:
        return closest_line(self.lines, self.path)


# a path in a model -> where the part at that path (and below it) is written; () is always there
Places = dict[Place, Written]


def in_file(name: str, lines: Lines) -> Places:
    """The places of a model read from one file, as it is written."""
    return {(): Written(name, lines)}


def closest_line(lines: Lines, path: Place) -> int | None:
    """The line of `path`, or of the nearest part above it that the file has."""
    for cut in range(len(path), -1, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return None


def written(places: Places, path: Place) -> Written:
    """Where the part of the model at `path` is written: below the longest prefix placed."""
    for cut in range(len(path), -1, -1):
        at = places.get(path[:cut])
        if at is not None:
            return Written(at.file, at.lines, at.path + tuple(path[cut:]))
    raise KeyError(path)  # unreachable: every Places has ()


def rule_origins(name: str, places: Places, model: Ruleset) -> Origin:
    """File and line of every rule of a loaded rule set, from where its rules are written."""
    origin: Origin = {None: (name, None)}
    for j, rule in enumerate(model.rules):
        at = written(places, ("rules", j, "id"))
        origin[rule.id] = (at.file, at.line)
    return origin


def noted(model: Any, name: str, places: Places) -> Any:
    """`model`, and if it is a rule set, with the origin of its rules recorded on it."""
    if isinstance(model, Ruleset):
        model.with_origin(rule_origins(name, places, model))
    return model
