"""Where each rule of a loaded rule set was written, for errors raised long after loading.

The engine may refuse something in the middle of a replay; its error should still say
`FILE:LINE (rule 'x')`. A rule set therefore keeps, as a private note that is not part of its
content or its hash, the file and line of each rule: a variant's own rules (replaced or added)
point at the variant, the rest at the file they were inherited from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from escalation.load.ruleset import Ruleset

Origin = dict[str | None, tuple[str, int | None]]


def _items(data: Any, where: tuple[str, ...]) -> list[Any]:
    node = data
    for key in where:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, list) else []


def rule_origins(name: str | Path, data: Any, lines: dict[tuple[str | int, ...], int],
                 base: Ruleset | None = None) -> Origin:
    """File and line of every rule written in `data` (a rule set or a variant), over its base's."""
    origin: Origin = {None: (str(name), None)}
    if base is not None:
        origin.update({r.id: base.origin(r.id) for r in base.rules})  # type: ignore[misc]
    for where in (("rules",), ("changes", "replace"), ("changes", "add")):
        for j, item in enumerate(_items(data, where)):
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                origin[item["id"]] = (str(name), lines.get((*where, j, "id")))
    return origin


def noted(model: Any, name: str | Path, data: Any, lines: dict[tuple[str | int, ...], int],
          base: Any = None) -> Any:
    """`model`, and if it is a rule set, with the origin of its rules recorded on it."""
    if isinstance(model, Ruleset):
        model.with_origin(rule_origins(name, data, lines, base if isinstance(base, Ruleset) else None))
    return model
