"""What is made of one object, kept while that very object is in use.

A cohort replays each scenario at every grid point and under every rule set, and each rule set
(with a grid point's values) against every scenario of a chunk. What the replay makes of a
scenario alone (its placements, and their features) or of a rule set alone (its compiled form)
is the same every time, so it is made once and kept. Scenarios and rule sets are frozen models,
so the object itself is the key: an equal object built elsewhere is made again, never mixed up.
(Frozen means its fields cannot be set; the lists and dicts inside could still be changed in
place, which nothing in this package does, and which a kept value would not see.)
An entry goes when one of its objects does (it holds them weakly), or when newer ones push it
out (only the last few are kept), so a worker's memory stays flat over a hundred thousand replays
and nothing made of a scenario outlives it. (A value that holds its own objects lives until it
is pushed out.)
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ByIdentity(Generic[T]):
    """The last `size` values made, each of some objects (by identity) and some plain arguments.

    An entry is dropped when one of its objects is collected, before another object can take
    its id; the identity check on a hit guards the rest.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Hashable, ...], _Entry[T]] = OrderedDict()

    def get(self, owners: tuple[Any, ...], args: tuple[Hashable, ...], make: Callable[[], T]) -> T:
        """The value kept for these very objects and arguments, else `make()`, kept."""
        key = (*map(id, owners), *args)
        hit = self._items.get(key)
        if hit is not None and all(r() is o for r, o in zip(hit.owners, owners)):
            self._items.move_to_end(key)
            return hit.value
        value = make()
        entry = _Entry(value)
        entry.owners = tuple(weakref.ref(o, partial(self._drop, key, entry)) for o in owners)
        self._items[key] = entry
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def _drop(self, key: tuple[Hashable, ...], entry: "_Entry[T]", _gone: object) -> None:
        if self._items.get(key) is entry:
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)


class _Entry(Generic[T]):
    __slots__ = ("owners", "value")

    def __init__(self, value: T) -> None:
        self.value = value
        self.owners: tuple[weakref.ref[Any], ...] = ()
