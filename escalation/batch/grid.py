"""Parameter grids: the Cartesian product of several `RULE.PARAM=START:STOP:STEP` ranges.

A grid point is a set of what-if overrides for one replay. Points are numbered in product order
(the last range varies fastest), and each carries a canonical JSON label, so that a row of the
results names its point both by number and by value.
"""

from __future__ import annotations

import itertools
import json
import math

from pydantic import BaseModel, ConfigDict

MAX_VALUES = 10_000  # values in one range, and points in one grid


class SweepRange(BaseModel):
    """One parameter's range; STOP is included when the steps reach it exactly."""

    model_config = ConfigDict(frozen=True)

    rule_id: str
    param: str
    start: float
    stop: float
    step: float

    @property
    def target(self) -> str:
        return f"{self.rule_id}.{self.param}"

    def values(self) -> list[float]:
        """START to STOP inclusive, in STEP increments (rounded to hide float drift)."""
        n = int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return [round(self.start + i * self.step, 10) for i in range(n)]


def parse_range(text: str) -> SweepRange:
    """`RULE.PARAM=START:STOP:STEP`; ValueError with a readable reason otherwise."""
    target, sep, spec = text.partition("=")
    rule_id, dot, param = target.partition(".")
    parts = spec.split(":")
    if not sep or not dot or len(parts) != 3:
        raise ValueError(f"{text!r} is not of the form RULE.PARAM=START:STOP:STEP")
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r}: START, STOP and STEP must be numbers") from None
    if not all(math.isfinite(x) for x in (start, stop, step)) or step <= 0 or stop < start:
        raise ValueError(f"{text!r}: need finite numbers, STEP > 0 and STOP >= START")
    if (stop - start) / step > MAX_VALUES:
        raise ValueError(f"{text!r}: more than {MAX_VALUES:,} values")
    return SweepRange(rule_id=rule_id, param=param, start=start, stop=stop, step=step)


class GridPoint(BaseModel):
    """One combination of parameter values; `id` is its place in the product."""

    model_config = ConfigDict(frozen=True)

    id: int
    values: dict[str, float]

    @property
    def label(self) -> str:
        """Canonical JSON of the values (sorted keys), the same text in every row and file."""
        return json.dumps(self.values, sort_keys=True, separators=(",", ":"))


def parse_grid(texts: list[str]) -> list[SweepRange]:
    """Several ranges; a parameter named twice, or a product too large, is a ValueError."""
    ranges = [parse_range(t) for t in texts]
    seen: set[str] = set()
    for r in ranges:
        if r.target in seen:
            raise ValueError(f"{r.target} is given more than once")
        seen.add(r.target)
    if math.prod(len(r.values()) for r in ranges) > MAX_VALUES:
        raise ValueError(f"the grid has more than {MAX_VALUES:,} points")
    return ranges


def grid_points(ranges: list[SweepRange]) -> list[GridPoint]:
    """Every combination, in product order; no ranges gives the one point with no overrides."""
    axes = [[(r.target, v) for v in r.values()] for r in ranges]
    return [GridPoint(id=i, values=dict(combo)) for i, combo in enumerate(itertools.product(*axes))]
