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

What does not depend on the pass is made once and kept (derive/memo.py): the plan a pass starts
from (bounds, change days, first values), per compiled rule set and placement; and for a record
of at most `_Tracks.LIMIT` feature changes, each feature's value and members on each day computed,
per placement and binding of fact keys to engine fields, which the next grid point looks up.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from escalation.derive.features import DayFeatures, SinceFeature
from escalation.derive.memo import ByIdentity
from escalation.evaluate.engine import (
    CompiledRuleset,
    saturation,
    step_days_key,
    step_key,
)


class _Count:
    """A days-since count in the fact: its key, its engine heads, its start day and bound."""

    __slots__ = ("_written", "bound", "heads", "key", "start")

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

    def settles(self) -> float:
        """The first day from which the count written no longer changes (inf: never)."""
        if self.start is None:
            return -math.inf
        return math.inf if self.bound is None else self.start + self.bound


Spec = tuple[str, tuple[str, ...], "int | None"]  # a count's key, engine heads and bound


@dataclass(frozen=True)
class _Plan:
    """What every pass of one rule set over one placement starts from: the counts' bounds, each
    feature's change days, the first day's values and the empty memory. Made once per compiled
    rule set and placement's features (a cohort replays both many times)."""

    counts: dict[int, Spec]  # feature index -> its count's spec (a SinceFeature)
    since_fired: dict[str, Spec]  # rule id -> the spec of its days since it last fired
    steps: dict[int, Spec]  # step -> the spec of its days since flagged
    changes: dict[int, tuple[int, ...]]  # day -> the features that may change on it
    change_count: int  # how many (day, feature) changes there are
    change_days: list[int]
    first_values: list[dict[str, float | int]]  # each feature on the first day ({} for a count)
    first_starts: dict[int, int | None]  # each count's start on the first day
    memory_parts: list[str]  # each rule fired 0 times, then each step not flagged
    memory_width: int
    constant_fields: int  # id, sid, kind and the parameters


_PLANS: ByIdentity[_Plan] = ByIdentity(8)

Track = dict[int, tuple[dict[str, float | int], str, int]]  # day -> the value, its members and width


class _Tracks:
    """Each feature's value and engine members on the days a pass computed them, for one placement
    and one binding of fact keys to engine fields (the members name the fields): kept with the
    placement's features, so that the next pass of another rule set with that binding (a grid
    point of a threshold, say) looks them up. Kept for a record of at most LIMIT feature changes
    (the index case has about 110 a placement); a longer one is computed as it goes, as before,
    and costs no more memory than before."""

    LIMIT = 4_000

    def __init__(self) -> None:
        self.by_key: dict[str, Track] = {}
        self.size = 0


_TRACKS: ByIdentity[_Tracks] = ByIdentity(8)
_HEADS: ByIdentity[tuple[tuple[str, tuple[str, ...]], ...]] = ByIdentity(64)


def _heads_key(compiled: CompiledRuleset) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Which engine fields each fact key fills: what a feature's members depend on besides its
    value. Rule sets of one shape can differ here (a window's value is part of a feature's key,
    and a key shared by two rules at one value is read by one of them at another), so tracks are
    shared only between rule sets that agree on all of it."""
    return _HEADS.get((compiled,), (), lambda: tuple(sorted(compiled.heads.items())))


def _plan(compiled: CompiledRuleset, features: DayFeatures, first_day: int, last_day: int) -> _Plan:
    feats = compiled.features
    bounds = saturation(compiled, [f.key for f in feats if isinstance(f, SinceFeature)]
                        + [r.since_key for r in compiled.rules if r.every_days is not None]
                        + [step_days_key(s) for s in compiled.steps])

    def spec(key: str) -> Spec:
        return key, compiled.heads.get(key, ()), bounds.get(key)

    lists: dict[int, list[int]] = {}
    for i, f in enumerate(feats):
        for d in set(features.change_days(f)):
            if first_day < d <= last_day:
                lists.setdefault(d, []).append(i)
    same: dict[tuple[int, ...], tuple[int, ...]] = {}  # a dense record changes the same features daily
    changes = {d: same.setdefault(t, t) for d, t in ((d, tuple(v)) for d, v in lists.items())}
    counts = {i: spec(f.key) for i, f in enumerate(feats) if isinstance(f, SinceFeature)}
    values = [{} if i in counts else features.value(f, first_day) for i, f in enumerate(feats)]
    starts = {i: (first_day - next(iter(v.values())) if (v := features.value(feats[i], first_day)) else None)
              for i in counts}
    memory = [compiled.members(r.fired_key, 0, first_day) for r in compiled.rules]
    memory += [compiled.members(step_key(s), 0, first_day) for s in compiled.steps]
    return _Plan(
        counts, {r.rule_id: spec(r.since_key) for r in compiled.rules if r.every_days is not None},
        {s: spec(step_days_key(s)) for s in compiled.steps}, changes, sum(map(len, changes.values())),
        sorted(changes), values, starts, memory,
        sum(len(compiled.heads.get(r.fired_key, ())) for r in compiled.rules)
        + sum(len(compiled.heads.get(step_key(s), ())) for s in compiled.steps),
        3 + compiled.constants.count(","))


class DayFacts:
    """The facts of one pass, advanced day by day in order (days may be skipped)."""

    def __init__(self, compiled: CompiledRuleset, features: DayFeatures, first_day: int, last_day: int) -> None:
        plan = _PLANS.get((compiled, features), (first_day, last_day),
                          lambda: _plan(compiled, features, first_day, last_day))
        self.compiled, self.features, self._plan = compiled, features, plan
        self._feats = compiled.features
        self._tracks: _Tracks | None = None
        self._track: list[Track] = []
        if plan.change_count <= _Tracks.LIMIT:
            self._tracks = _TRACKS.get((features,), (_heads_key(compiled),), _Tracks)
            self._track = [self._tracks.by_key.setdefault(f.key, {}) for f in self._feats]
        self._counts = {i: _Count(*spec) for i, spec in plan.counts.items()}
        for i, start in plan.first_starts.items():
            self._counts[i].start = start
        self._values = list(plan.first_values)
        self._members: list[str] = ["" for _ in self._feats]
        self._widths: list[int] = [0 for _ in self._feats]  # engine fields in each feature's members
        # feature index -> the day of a value whose members are not made yet
        self._stale: dict[int, int] = {i: first_day for i in range(len(self._feats)) if i not in plan.counts}
        self._changes, self._change_days = plan.changes, plan.change_days
        # the engine's memory: rule firings and steps, kept by the replay and told here
        self._fired = {r.rule_id: 0 for r in compiled.rules}
        self._since_fired = {rule_id: _Count(*spec) for rule_id, spec in plan.since_fired.items()}
        self._steps = {s: _Count(*spec) for s, spec in plan.steps.items()}
        # the counts the program reads, in the order they are written; those counting, and the
        # day from which none of them changes any more
        self._written = [c for c in (*self._counts.values(), *self._since_fired.values(), *self._steps.values())
                         if c.heads]
        self._active: list[_Count] = []
        self._moving: list[_Count] = []
        self._settled_text = ""
        self._settles = self._next_settle = -math.inf
        self._count_fields = 0
        self.day = first_day
        self._counts_changed()
        # the memory's members that are not counts: each rule's firings, then each step flagged
        self._memory_parts = list(plan.memory_parts)
        self._memory_index = {r.rule_id: i for i, r in enumerate(compiled.rules)}
        self._step_index = {s: len(compiled.rules) + i for i, s in enumerate(compiled.steps)}
        self._static: str | None = None
        self._fields = 0
        # the order fact() writes the fact in: features, then each rule's memory, then each step's
        self._layout = [(i, self._counts.get(i)) for i in range(len(self._feats))]
        self._rule_layout = [(r.fired_key, r.rule_id, self._since_fired.get(r.rule_id)) for r in compiled.rules]
        self._step_layout = [(step_key(s), count) for s, count in self._steps.items()]

    def _counts_changed(self) -> None:
        """A count started (or its start moved): which counts are written, and until when they move."""
        self._active = [c for c in self._written if c.start is not None]
        self._settles = max((c.settles() for c in self._active), default=-math.inf)
        self._count_fields = sum(len(c.heads) for c in self._active)
        self._split()

    def _split(self) -> None:
        """Which written counts still move on the current day (written afresh each day) and which
        have settled (written once, with the rest of the text that stays)."""
        day, moving, settled, nxt = self.day, [], [], math.inf
        for c in self._active:
            t = c.settles()
            if t > day:
                moving.append(c)
                nxt = min(nxt, t)
            else:
                settled.append(c.text(day))
        self._moving, self._settled_text, self._next_settle = moving, ",".join(settled), nxt
        self._static = None

    # --- moving on ----------------------------------------------------------------------------

    def advance(self, day: int) -> None:
        """Move to `day` (later than the current day): recompute the features that may have
        changed since, at `day`."""
        if day == self.day + 1:  # the usual step: only that day's changes
            changed = self._changes.get(day, ())
        else:
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
        if self.day < self._settles:
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
            self._counts_changed()
        if step is not None and self._steps[step].start is None:
            self._steps[step].start = day
            self._memory_parts[self._step_index[step]] = c.members(step_key(step), 1, day)
            self._counts_changed()
        self._static = None

    # --- the fact -----------------------------------------------------------------------------

    def text(self) -> tuple[str, int]:
        """The current day's fact as the engine reads it, after id and sid, and its field count."""
        day = self.day
        if day >= self._next_settle:
            self._split()
        if self._static is None:
            self._write_members()
            self._static = ",".join(filter(None, [self.compiled.constants, *self._members, *self._memory_parts,
                                                  self._settled_text]))
            self._fields = self._plan.constant_fields + sum(self._widths) + self._plan.memory_width + self._count_fields
        if not self._moving:
            return self._static, self._fields
        return ",".join([self._static, *[c.text(day) for c in self._moving]]), self._fields

    def fact(self) -> dict[str, float | int]:
        """The current day's fact as Python has it, every value exact: the day's features in the
        rule set's order, then the memory, as replay.py has always built it."""
        day, values = self.day, self._values
        out: dict[str, float | int] = {"day": day}
        for i, count in self._layout:
            if count is None:
                out.update(values[i])
            elif count.start is not None:
                out[count.key] = day - count.start
        fired = self._fired
        for fired_key, rule_id, since in self._rule_layout:
            out[fired_key] = fired[rule_id]
            if since is not None and since.start is not None:
                out[since.key] = day - since.start
        for flagged_key, count in self._step_layout:
            out[flagged_key] = int(count.start is not None)
            if count.start is not None:
                out[count.key] = day - count.start
        return out

    # --- inside -------------------------------------------------------------------------------

    def _compute(self, i: int, day: int) -> None:
        count = self._counts.get(i)
        if count is None and self._tracks is not None:
            known = self._track[i].get(day)
            if known is not None:
                self._values[i], self._members[i], self._widths[i] = known
                self._stale.pop(i, None)
                self._static = None
                return
        value = self.features.value(self._feats[i], day)
        if count is not None:
            new = None if not value else day - next(iter(value.values()))
            if new != count.start:
                count.start = new
                self._counts_changed()
            return
        self._values[i] = value  # kept as given: 90 and 90.0 are shown differently
        self._stale[i] = day
        self._static = None

    def _write_members(self) -> None:
        """The engine members of the features changed since the last text, made only when a text is
        asked for (explain reads the Python fact alone)."""
        c, heads = self.compiled, self.compiled.heads
        for i, day in self._stale.items():
            parts, width = [], 0
            for k, v in self._values[i].items():
                if heads.get(k):
                    parts.append(c.members(k, v, day))
                    width += len(heads[k])
            self._members[i], self._widths[i] = ",".join(parts), width
            if self._tracks is not None and self._tracks.size < _Tracks.LIMIT:
                self._track[i][day] = (self._values[i], self._members[i], width)
                self._tracks.size += 1
        self._stale.clear()

