"""What the summary, the check and the placement outputs share.

Output models are frozen and reject unknown fields so that the JSON a program reads has exactly
the keys documented by the models; numbers are printed the one way the table prints them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Output(BaseModel):
    """Base of every output model of the literature cohort."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def fmt_number(x: float) -> str:
    """At most two decimals and no trailing zeros, so 6.5 stays '6.5' and 2.0 reads '2'."""
    return f"{x:.2f}".rstrip("0").rstrip(".")
