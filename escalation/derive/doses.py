"""Body-surface area and the absolute doses implied by mg/kg and mg/m2 regimens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from escalation.derive.placement import Placement
from escalation.derive.readings import Reading, dated_readings
from escalation.load.scenario import Scenario, Therapy
from escalation.load.vocabulary import DOSE_UNITS


def mosteller_bsa(height_cm: float, weight_kg: float) -> float:
    """Body-surface area in m2 (Mosteller): sqrt(height x weight / 3600)."""
    return math.sqrt(height_cm * weight_kg / 3600)


@dataclass(frozen=True)
class ImpliedDose:
    event_id: str
    code: str
    course: int | None
    regimen: str
    amount: float
    unit: str
    basis_value: float
    basis_unit: str  # kg or m2
    measured: str  # the measurements the basis comes from, with their days: "weight of day 0"

    def label(self) -> str:
        """'MPT course 1 30 mg/kg/day x 11.2 kg (weight of day 0) = 336 mg/day': the days are
        those of the measurements, not of the dose, which a bare '(day 0)' read as."""
        course = f" course {self.course}" if self.course else ""
        return (
            f"{self.code}{course} {self.regimen} x {self.basis_value:g} {self.basis_unit} "
            f"({self.measured}) = {self.amount:g} {self.unit}"
        )


def _latest_value(readings: list[tuple[int, Reading]], measure: str, day: int) -> tuple[int, float] | None:
    best = None
    for d, r in readings:
        if r.measure == measure and d <= day and r.value.exact is not None:
            if best is None or d >= best[0]:
                best = (d, r.value.exact)
    return best


def implied_doses(scenario: Scenario, placement: Placement) -> list[ImpliedDose]:
    """The absolute dose each weight- or surface-based regimen implies for this patient."""
    dated = dated_readings(scenario, placement)
    out: list[ImpliedDose] = []
    for ev in scenario.events:
        if not isinstance(ev, Therapy) or ev.dose is None:
            continue
        amount_unit, basis, period = DOSE_UNITS[ev.dose.unit]
        if basis is None:
            continue
        start = placement.spans[ev.id].start
        weight = _latest_value(dated, "weight", start)
        if weight is None:
            continue
        unit = amount_unit + (f"/{period}" if period else "")
        if basis == "kg":
            out.append(ImpliedDose(ev.id, ev.code, ev.course, f"{ev.dose.value:g} {ev.dose.unit}",
                                   round(ev.dose.value * weight[1], 2), unit, weight[1], "kg",
                                   f"weight of day {weight[0]}"))
        elif basis == "m2":
            height = _latest_value(dated, "height", start)
            if height is None:
                continue
            bsa = round(mosteller_bsa(height[1], weight[1]), 4)
            measured = (f"height and weight of day {weight[0]}" if height[0] == weight[0]
                        else f"height of day {height[0]} and weight of day {weight[0]}")
            out.append(ImpliedDose(ev.id, ev.code, ev.course, f"{ev.dose.value:g} {ev.dose.unit}",
                                   round(ev.dose.value * bsa, 2), unit, bsa, "m2", f"Mosteller, from the {measured}"))
        else:
            raise ValueError(f"dose basis {basis!r} has no rule to derive a dose by")
    return out
