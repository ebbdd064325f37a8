"""Days on the scenario's clock, exact or uncertain.

Day 0 is admission to the treating hospital and earlier history has negative days; calendar
dates are never used. A source often dates a fact only loosely ("on or before day 11", "at 2
months"), so a day is a closed range whose ends may be open. Guessing a single day would make the
replay look more certain than its source; keeping the range lets every flag the fact causes carry
the same doubt.
"""

# Annotations are evaluated as the classes are made (no `from __future__ import annotations`):
# pydantic would otherwise compile and evaluate each one from its string, at every cold start.

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

# A hundred years either side of admission: anything further is a calendar date typed by mistake.
MAX_DAYS = 36525


class DayRange(BaseModel):
    """An inclusive range of days; `None` at an end means the source gives no bound there.

    In a file it is written as a plain integer (exact), or as one of
    `{on_or_before: D}`, `{on_or_after: D}`, `{between: [A, B]}`, optionally with `note`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    earliest: int | None = None
    latest: int | None = None
    note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_file_forms(cls, data: Any) -> Any:
        if isinstance(data, bool):
            raise ValueError("a day must be an integer or a range, not true/false")
        if isinstance(data, int):
            return {"earliest": data, "latest": data}
        if isinstance(data, float):
            raise ValueError(f"a day must be a whole number of days, not {data}")
        if not isinstance(data, dict):
            raise ValueError(
                "a day must be an integer, or one of {on_or_before: D}, {on_or_after: D}, "
                "{between: [A, B]}"
            )
        data = dict(data)
        forms = [k for k in ("on_or_before", "on_or_after", "between") if k in data]
        if not forms:
            return data
        if len(forms) > 1:
            raise ValueError(f"give one of on_or_before, on_or_after, between, not {forms}")
        if "earliest" in data or "latest" in data:
            raise ValueError(f"give {forms[0]} or earliest/latest, not both")
        form = forms[0]
        value = data.pop(form)
        if form == "between":
            if (
                not isinstance(value, list)
                or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            ):
                raise ValueError("between takes two whole days, [A, B]")
            data["earliest"], data["latest"] = value
        else:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{form} takes a whole day")
            data["earliest" if form == "on_or_after" else "latest"] = value
        return data

    @model_validator(mode="after")
    def _ordered(self) -> "DayRange":
        if self.earliest is None and self.latest is None:
            raise ValueError("a day range needs at least one bound")
        for d in (self.earliest, self.latest):
            if d is not None and abs(d) > MAX_DAYS:
                raise ValueError(f"day {d} is more than {MAX_DAYS} days from day 0; days are "
                                 "offsets from admission, not calendar dates")
        if self.earliest is not None and self.latest is not None and self.earliest > self.latest:
            raise ValueError(f"range starts on day {self.earliest} after it ends on day {self.latest}")
        return self

    @property
    def exact(self) -> bool:
        return self.earliest is not None and self.earliest == self.latest

    def resolve(self, lower: int, upper: int) -> tuple[int, int]:
        """Close open ends with the timeline's own first and last day."""
        lo = self.earliest if self.earliest is not None else min(lower, self.latest or lower)
        hi = self.latest if self.latest is not None else max(upper, lo)
        return lo, hi

    def label(self) -> str:
        if self.exact:
            return f"day {self.earliest}"
        if self.earliest is None:
            return f"on or before day {self.latest}"
        if self.latest is None:
            return f"on or after day {self.earliest}"
        return f"days {span_label(self.earliest, self.latest)}"


def span_label(lo: int, hi: int) -> str:
    """How a resolved range of days reads in a table."""
    return f"{lo}" if lo == hi else f"{lo}..{hi}"
