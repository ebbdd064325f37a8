"""Data-consistency checks: where the source's own figures do not fit together.

A disagreement in a published figure is research material, so it is reported, never corrected.
"""

from __future__ import annotations

from dataclasses import dataclass

from escalation.derive.placement import Placement
from escalation.derive.readings import (
    measured_value,
    observation_readings,
    reported_value,
)
from escalation.load.scenario import Observation, Scenario
from escalation.load.vocabulary import MEASURES

# Reported and recomputed values agree when they differ by at most this fraction of the
# reported value. A stated modelling choice (no source gives one): it absorbs the rounding of
# figures printed to two or three significant digits.
RELATIVE_TOLERANCE = 0.05


@dataclass(frozen=True)
class Check:
    """One comparison of two statements that should fit together."""

    kind: str
    event_ids: tuple[str, ...]
    agrees: bool
    message: str
    reported: float | None = None
    derived: float | None = None
    measure: str | None = None  # the index a reported_index check compares


Disputes = dict[tuple[str, str], float]  # (event id, index) -> the value the source reports


def disputed(checks: list[Check]) -> Disputes:
    """(event id, index) -> the value the source reports, where the recomputed index the rules
    read disagrees with it: a decision point resting on such a value says so."""
    return {(c.event_ids[0], c.measure): c.reported for c in checks  # type: ignore[misc]
            if c.kind == "reported_index" and not c.agrees and c.measure is not None and c.reported is not None}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= RELATIVE_TOLERANCE * abs(b)


def consistency_checks(scenario: Scenario, early: Placement, late: Placement) -> list[Check]:
    checks: list[Check] = []
    for ev in scenario.events:
        if isinstance(ev, Observation):
            checks += _index_checks(ev)
            checks += _pressure_checks(ev)
    checks += _interval_checks(scenario, early, late)
    checks += _study_checks(scenario)
    return checks


def _index_checks(obs: Observation) -> list[Check]:
    readings = observation_readings(obs)
    computed = {r.measure: r for r in readings if r.origin == "computed"}
    out = []
    for measure, rep in obs.reported.items():
        reported = rep.canonical(measure).exact
        if reported is None or measure not in computed:
            continue
        mine = computed[measure].value.exact
        if mine is None:
            continue  # a bound, not a value: nothing to compare a reported figure with
        agrees = _close(mine, reported)
        name = MEASURES[measure].name
        text = (
            f"{name}: reported {reported:g}, recomputed {mine:g} from {computed[measure].formula}"
            f" with {_inputs_label(obs)}"
        )
        if not agrees and measure == "oi":
            text += _oi_alternatives(obs, reported)
        out.append(Check("reported_index", (obs.id,), agrees,
                         text + ("" if agrees else " (beyond the 5 % tolerance)"), reported, mine, measure))
    return out


def _oi_alternatives(obs: Observation, oi: float) -> str:
    """What the reported P/F or the measured MAP would have to be for a reported OI to fit
    (OI = MAP x 100 / P/F); said only when both are known as values (a bound says nothing)."""
    map_ = measured_value(obs, "map")
    pf = reported_value(obs, "pf") if "pf" in obs.reported else None
    if not map_ or pf is None or oi == 0:
        return ""
    return f"; for OI {oi:g} the P/F would have to be {map_ * 100 / oi:g}, or MAP {oi * pf / 100:g} cmH2O"


_SHORT = {"map": "MAP", "fio2": "FiO2", "pao2": "PaO2", "spo2": "SpO2", "pf": "P/F"}


def _inputs_label(obs: Observation) -> str:
    parts = [f"{_SHORT[m]} {v.label()}" for m, v in obs.values.items() if m in _SHORT]
    parts += [f"reported {_SHORT[m]} {v.label()}" for m, v in obs.reported.items() if m == "pf"]
    return ", ".join(parts)


def _pressure_checks(obs: Observation) -> list[Check]:
    peep, map_, pip = (measured_value(obs, m) for m in ("peep", "map", "pip"))
    if None in (peep, map_, pip):
        return []
    agrees = peep <= map_ <= pip  # type: ignore[operator]
    return [Check("ventilator_pressures", (obs.id,), agrees,
                  f"PEEP {peep:g} <= MAP {map_:g} <= PIP {pip:g} cmH2O: "
                  + ("in order" if agrees else "out of order"))]


def _interval_checks(scenario: Scenario, early: Placement, late: Placement) -> list[Check]:
    out = []
    def gap(iv, p: Placement) -> int:
        end = p.spans[iv.end]
        return (end.end if iv.end_point == "until" else end.start) - p.spans[iv.start].start

    for iv in scenario.reported_intervals:
        lo, hi = sorted((gap(iv, early), gap(iv, late)))
        agrees = lo <= iv.days <= hi
        span = f"{lo}" if lo == hi else f"{lo} to {hi}"
        out.append(Check("reported_interval", (iv.start, iv.end), agrees,
                         f"{iv.start} to {iv.end} ({iv.end_point}): reported {iv.days} days, "
                         f"timeline gives {span}", iv.days, lo))
    return out


def _study_checks(scenario: Scenario) -> list[Check]:
    studies: dict[str, list] = {}
    for ev in scenario.events:
        if getattr(ev, "study", None):
            studies.setdefault(ev.study, []).append(ev)
    out = []
    for name, evs in sorted(studies.items()):
        for other in evs[1:]:
            a, b = set(evs[0].findings), set(other.findings)
            agrees = a == b
            diff = "" if agrees else (
                f": only in {evs[0].id}: {', '.join(sorted(a - b)) or '-'}; "
                f"only in {other.id}: {', '.join(sorted(b - a)) or '-'}"
            )
            out.append(Check("imaging_study", (evs[0].id, other.id), agrees,
                             f"study {name} described twice ({evs[0].source.label()} / "
                             f"{other.source.label()}): findings " + ("agree" if agrees else "differ") + diff))
    return out
