"""Files written as changes to another file: the one merge both variant kinds use."""

from __future__ import annotations

from typing import Generic, Protocol, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class _HasId(Protocol):
    id: str


T = TypeVar("T", bound=_HasId)
Item = TypeVar("Item")


class Changes(BaseModel, Generic[Item]):
    """How a variant differs from the file it derives from: items are matched by their id."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    remove: list[str] = Field(default_factory=list, description="ids to leave out")
    replace: list[Item] = Field(default_factory=list, description="items replacing those with the same id")
    add: list[Item] = Field(default_factory=list)


def merge_by_id(base: Sequence[T], remove: Sequence[str], replace: Sequence[T], add: Sequence[T],
                owner: str, noun: str) -> list[T]:
    """Base items less `remove`, with `replace` swapped in by id, then `add` appended.

    Naming an id the base does not have is an error rather than a no-op, so that a variant
    cannot silently drift from the file it claims to change.
    """
    known = {x.id for x in base}
    for ref in [*remove, *(x.id for x in replace)]:
        if ref not in known:
            raise ValueError(f"{owner} has no {noun} {ref!r} to remove or replace")
    swapped = {x.id: x for x in replace}
    return [swapped.get(x.id, x) for x in base if x.id not in set(remove)] + list(add)
