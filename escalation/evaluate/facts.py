"""One pass's day facts, built as they change rather than from scratch every day.

A day's fact (replay.py) is the day's features and what the engine has flagged so far. Almost all
of it changes only on a few days: a feature on the days `DayFeatures.change_days` names, the
engine's memory when a rule fires. The rest are days-since counts, which grow by one a day. So
this module keeps each feature's value and its JSON members (`CompiledRuleset.members`) from its
last change, recomputes a feature only on its change days, and writes the counts afresh; the
fact's engine text is the cached members joined, plus the counts.

A count is written into the engine's text as min(count, bound) (`engine.saturation`): past the
bound every test the program makes on it answers as at the bound. The Python fact, which results
show, always has the exact count.

The engine's answer to a fact depends on the fact's text alone: every rule tests one fact, and
nothing else in the session (see engine.py). A day whose text equals the last text that fired
nothing would fire nothing, so the replay need not assert it (`quiet_until` says how far such
days run). Whether or not a day is asserted, its values are those that `DayFeatures.value` and
the replay's memory give for that day; tests/test_facts.py compares them day by day.
"""

from __future__ import annotations

from bisect import bisect_right

from escalation.derive.features import DayFeatures, SinceFeature
from escalation.evaluate.engine import (
    CompiledRuleset,
    saturation,
    step_days_key,
    step_key,
)


class _Count:
    """A days-since count in the fact: its key, its engine heads, its start day and bound."""

    __slots__ = ("key", "heads", "bound", "start", "_written")

    def __init__(self, key: str, heads: tuple[str, ...], bound: int | None) -> None:
        self.key, self.heads, self.bound = key, heads, bound
        self.start: int | None = None  # no count until there is something to count from
        self._written: tuple[int, str] = (-1, "")  # the last count written, and its members

    def text(self, day: int) -> str:
        n = day - self.start  # type: ignore[operator]
        if self.bound is not None and n > self.bound:
            n = self.bound
        if n != self._written[0]:
            value = str(n)
            self._written = (n, ",".join(h + value for h in self.heads))
        return self._written[1]

    def settled(self, day: int) -> bool:
        """The count written on any later day is the one written on `day`."""
        return self.start is None or (self.bound is not None and day - self.start >= self.bound)


class DayFacts:
    """The facts of one pass, advanced day by day in order (days may be skipped)."""

    def __init__(self, compiled: CompiledRuleset, features: DayFeatures, first_day: int, last_day: int) -> None:
        self.compiled = compiled
        self.features = features
        self._feats = compiled.features
        bounds = saturation(compiled, [f.key for f in self._feats if isinstance(f, SinceFeature)]
                            + [r.since_key for r in compiled.rules if r.every_days is not None]
                            + [step_days_key(s) for s in compiled.steps])
        # feature index -> its count (a SinceFeature), else its value and members
        self._counts: dict[int, _Count] = {
            i: _Count(f.key, compiled.heads.get(f.key, ()), bounds.get(f.key))
            for i, f in enumerate(self._feats) if isinstance(f, SinceFeature)}
        self._values: list[dict[str, float | int]] = [{} for _ in self._feats]
        self._members: list[str] = ["" for _ in self._feats]
        self._widths: list[int] = [0 for _ in self._feats]  # engine fields in each feature's members
        self._stale: dict[int, int] = {}  # feature index -> the day of a value whose members are not made yet
        changes: dict[int, list[int]] = {}
        for i, f in enumerate(self._feats):
            for d in set(features.change_days(f)):
                if first_day < d <= last_day:
                    changes.setdefault(d, []).append(i)
        self._changes = changes
        self._change_days = sorted(changes)
        # the engine's memory: rule firings and steps, kept by the replay and told here
        self._fired = {r.rule_id: 0 for r in compiled.rules}
        self._since_fired = {r.rule_id: _Count(r.since_key, compiled.heads.get(r.since_key, ()),
                                               bounds.get(r.since_key))
                             for r in compiled.rules if r.every_days is not None}
        self._steps = {s: _Count(step_days_key(s), compiled.heads.get(step_days_key(s), ()),
                                 bounds.get(step_days_key(s))) for s in compiled.steps}
        # the counts the program reads, in the order they are written
        self._written = [c for c in (*self._counts.values(), *self._since_fired.values(), *self._steps.values())
                         if c.heads]
        # the memory's members that are not counts: each rule's firings, then each step flagged
        self._memory_parts = [compiled.members(r.fired_key, 0, first_day) for r in compiled.rules]
        self._memory_parts += [compiled.members(step_key(s), 0, first_day) for s in compiled.steps]
        self._memory_index = {r.rule_id: i for i, r in enumerate(compiled.rules)}
        self._step_index = {s: len(compiled.rules) + i for i, s in enumerate(compiled.steps)}
        self._memory_width = (sum(len(compiled.heads.get(r.fired_key, ())) for r in compiled.rules)
                              + sum(len(compiled.heads.get(step_key(s), ())) for s in compiled.steps))
        self._static: str | None = None
        self._fields = 0
        self.day = first_day
        for i in range(len(self._feats)):
            self._compute(i, first_day)

    # --- moving on ----------------------------------------------------------------------------

    def advance(self, day: int) -> None:
        """Move to `day` (later than the current day): recompute the features that may have
        changed since, at `day`."""
        changed = {i for d in self._change_days[bisect_right(self._change_days, self.day):
                                                bisect_right(self._change_days, day)]
                   for i in self._changes[d]}
        for i in changed:
            self._compute(i, day)
        self.day = day

    def next_change(self, day: int) -> int | None:
        """The first change day of a feature after `day`, if any."""
        i = bisect_right(self._change_days, day)
        return self._change_days[i] if i < len(self._change_days) else None

    def quiet_until(self, last_day: int) -> int:
        """The last day whose engine text is the current day's: the day before the next change
        of a feature, or the current day while a count still moves. (A rule firing changes the
        memory, and only the replay's next assert can make one fire.)"""
        if not all(c.settled(self.day) for c in self._written):
            return self.day
        nxt = self.next_change(self.day)
        return last_day if nxt is None else min(last_day, nxt - 1)

    def fired(self, rule_id: str, step: int | None) -> None:
        """A rule fired on the current day: its count, its days since, and its step."""
        c, day = self.compiled, self.day
        self._fired[rule_id] += 1
        rule = c.rules[self._memory_index[rule_id]]
        self._memory_parts[self._memory_index[rule_id]] = c.members(rule.fired_key, self._fired[rule_id], day)
        if rule_id in self._since_fired:
            self._since_fired[rule_id].start = day
        if step is not None and self._steps[step].start is None:
            self._steps[step].start = day
            self._memory_parts[self._step_index[step]] = c.members(step_key(step), 1, day)
        self._static = None

    # --- the fact -----------------------------------------------------------------------------

    def text(self) -> tuple[str, int]:
        """The current day's fact as the engine reads it, after id and sid, and its field count."""
        if self._static is None:
            self._write_members()
            parts = [self.compiled.constants, *self._members, *self._memory_parts]
            self._static = ",".join(p for p in parts if p)
            self._fields = (3 + self.compiled.constants.count(",")  # id, sid, kind and the parameters
                            + sum(self._widths) + self._memory_width
                            + sum(len(c.heads) for c in self._written if c.start is not None))
        counts = [c.text(self.day) for c in self._written if c.start is not None]
        return (",".join([self._static, *counts]) if counts else self._static), self._fields

    def fact(self) -> dict[str, float | int]:
        """The current day's fact as Python has it, every value exact: the day's features in the
        rule set's order, then the memory, as replay.py has always built it."""
        day = self.day
        out: dict[str, float | int] = {"day": day}
        for i in range(len(self._feats)):
            count = self._counts.get(i)
            if count is None:
                out.update(self._values[i])
            elif count.start is not None:
                out[count.key] = day - count.start
        for r in self.compiled.rules:
            out[r.fired_key] = self._fired[r.rule_id]
            since = self._since_fired.get(r.rule_id)
            if since is not None and since.start is not None:
                out[r.since_key] = day - since.start
        for s, count in self._steps.items():
            out[step_key(s)] = int(count.start is not None)
            if count.start is not None:
                out[step_days_key(s)] = day - count.start
        return out

    # --- inside -------------------------------------------------------------------------------

    def _compute(self, i: int, day: int) -> None:
        value = self.features.value(self._feats[i], day)
        count = self._counts.get(i)
        if count is not None:
            new = None if not value else day - next(iter(value.values()))
            if new != count.start:
                count.start = new
                self._static = None
            return
        self._values[i] = value  # kept as given: 90 and 90.0 are shown differently
        self._stale[i] = day
        self._static = None

    def _write_members(self) -> None:
        """The engine members of the features changed since the last text, made only when a text is
        asked for (explain reads the Python fact alone)."""
        c = self.compiled
        for i, day in self._stale.items():
            value = self._values[i]
            self._members[i] = ",".join(m for k, v in value.items() if (m := c.members(k, v, day)))
            self._widths[i] = sum(len(c.heads.get(k, ())) for k in value)
        self._stale.clear()

