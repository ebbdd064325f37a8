"""Numbers as every file model takes them: finite, and ranges the right way round.

YAML has words for not-a-number and infinity (`.nan`, `.inf`, `-.inf`), and a number too large
for a float (`1e400`) reads as infinity. None of them is a reading, a dose or a threshold: NaN
compares false with everything, so it slips past every range check, and either one turns into
"nan mg/day" in a report or a crash in a figure long after the file was accepted. So every number
field of a file model is `Finite`, and the file is refused where the number is written.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from escalation.load.errors import located_error


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"must be a finite number, not {x} (YAML's .nan, .inf and -.inf, and numbers "
                         "too large for a float, are not values)")
    return x


# Checked before the float's own constraints (so `.nan` is named as such, not as "not greater than
# 0"), and again after, for text such as "nan" that pydantic turns into a float.
Finite = Annotated[float, BeforeValidator(_finite), AfterValidator(_finite)]


def check_order(low: float | None, high: float | None, names: tuple[str, str], at: str) -> None:
    """Refuse a range written the wrong way round (`low: 200, high: 5`), pointing at `at`.

    A reversed range is never a typo the tool can resolve: swapping the ends would be a guess.
    """
    if low is not None and high is not None and low > high:
        raise located_error(f"{names[0]} ({low:g}) is above {names[1]} ({high:g}): a range is written "
                            f"from its low end to its high end", (at,))
