"""Readings in canonical units, and the oxygenation indices recomputed from them.

Where the source also states an index, both are kept: the rules see the recomputed one, and the
consistency checks compare the two.

No divisor here can be zero, and no quotient infinite, for any observation the scenario model
accepts: FiO2 is at least 0.21; PaO2, SpO2 and a reported P/F (which implies PaO2 = P/F x FiO2)
are refused at 0 by the vocabulary; and canonical values are kept to six decimal places, so an
accepted divisor is at least 1e-6 and every index stays a finite number.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Literal

from escalation.derive.placement import Placement
from escalation.load.scenario import Observation, Scenario, Value

# SpO2-based indices are meaningful only at SpO2 <= 97 % (PALICC 2015).
SPO2_INDEX_CEILING = 97.0


@dataclass(frozen=True, slots=True)  # no __dict__: a long record has tens of thousands
class Reading:
    """One value of one measure on one event, in canonical units."""

    event_id: str
    measure: str
    value: Value
    origin: Literal["measured", "computed", "reported", "implied"]
    formula: str | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """The interval the true value lies in (open ends as infinities)."""
        v = self.value
        if v.value is None:
            return (v.min, v.max)  # type: ignore[return-value]
        if v.comparator == "=":
            return (v.value, v.value)
        if v.comparator in ("<", "<="):
            return (-math.inf, v.value)
        return (v.value, math.inf)


def measured_value(obs: Observation, measure: str) -> float | None:
    """The exact measured value in the canonical unit (from the observation's readings, made once)."""
    return _value_of(obs, measure, "measured") if measure in obs.values else None


def reported_value(obs: Observation, measure: str) -> float | None:
    """The exact reported value in the canonical unit (from the observation's readings, made once)."""
    return _value_of(obs, measure, "reported") if measure in obs.reported else None


def _value_of(obs: Observation, measure: str, origin: str) -> float | None:
    return next(r.value.exact for r in observation_readings(obs) if r.measure == measure and r.origin == origin)


def _measured(obs: Observation, measure: str) -> float | None:
    v = obs.values.get(measure)
    return v.canonical(measure).exact if v is not None else None


def _reported(obs: Observation, measure: str) -> float | None:
    v = obs.reported.get(measure)
    return v.canonical(measure).exact if v is not None else None


def _num(x: float) -> Value:
    return Value(value=round(x, 4))


_MEMO: dict[int, "_Ref"] = {}  # id(observation) -> a weak reference to it, holding its readings
_VALUES: weakref.WeakValueDictionary[tuple, Value] = weakref.WeakValueDictionary()  # see _shared


def _shared(r: Reading) -> Reading:
    """The reading with an equal value already in use, if there is one. A long record repeats the
    same values (an SpO2 of 92 %, an FiO2 of 0.6) thousands of times; its readings keep one copy
    of each (Values are frozen). Equal means the same numbers as written (90 and 90.0 are not),
    comparator, unit and fields set."""
    v = r.value
    if v.reference is not None:
        return r
    key = (repr(v.value), v.comparator, repr(v.min), repr(v.max), v.unit, tuple(sorted(v.model_fields_set)))
    shared = _VALUES.setdefault(key, v)
    return r if shared is v else Reading(r.event_id, r.measure, shared, r.origin, r.formula)


class _Ref(weakref.ref):
    """A weak reference to an observation, with its key in _MEMO and its readings."""

    __slots__ = ("key", "readings")


def _forget(ref: _Ref) -> None:
    if _MEMO.get(ref.key) is ref:
        del _MEMO[ref.key]


def observation_readings(obs: Observation) -> list[Reading]:
    """Measured values, then indices recomputed from them, then the indices the source reports.

    An observation is frozen, so its readings are computed once and kept for as long as it lives
    (a replay and its report ask for them six times; unit conversion copies pydantic models).
    """
    key = id(obs)
    ref = _MEMO.get(key)
    if ref is None or ref() is not obs:
        ref = _MEMO[key] = _Ref(obs, _forget)
        ref.key, ref.readings = key, tuple(map(_shared, _observation_readings(obs)))
    return list(ref.readings)


def _observation_readings(obs: Observation) -> list[Reading]:
    out = [Reading(obs.id, m, v.canonical(m), "measured") for m, v in obs.values.items()]
    fio2, map_, spo2 = _measured(obs, "fio2"), _measured(obs, "map"), _measured(obs, "spo2")
    pao2 = _measured(obs, "pao2")
    pao2_formula = "PaO2"
    if pao2 is None and fio2 is not None and _reported(obs, "pf") is not None:
        # The source gives P/F but not PaO2: the PaO2 it implies is what OI must be computed from.
        pao2 = _reported(obs, "pf") * fio2  # type: ignore[operator]
        pao2_formula = "PaO2 implied by reported P/F x FiO2"
        out.append(Reading(obs.id, "pao2", _num(pao2), "implied", "reported P/F x FiO2"))
    if pao2 is not None and fio2 is not None and _measured(obs, "pao2") is not None:
        out.append(Reading(obs.id, "pf", _num(pao2 / fio2), "computed", "PaO2 / FiO2"))
    if pao2 is not None and fio2 is not None and map_ is not None:
        out.append(
            Reading(obs.id, "oi", _num(map_ * fio2 * 100 / pao2), "computed",
                    f"MAP x FiO2 x 100 / {pao2_formula}")
        )
    if spo2 is not None and fio2 is not None and spo2 <= SPO2_INDEX_CEILING:
        out.append(Reading(obs.id, "sf", _num(spo2 / fio2), "computed", "SpO2 / FiO2"))
        if map_ is not None:
            out.append(Reading(obs.id, "osi", _num(map_ * fio2 * 100 / spo2), "computed",
                               "MAP x FiO2 x 100 / SpO2"))
    elif spo2 is None and fio2 is not None and "spo2" in obs.values:
        out += _bounded_spo2_indices(obs.id, obs.values["spo2"].canonical("spo2"), fio2, map_)
    out += [Reading(obs.id, m, v.canonical(m), "reported") for m, v in obs.reported.items()]
    return out


def _bounded_spo2_indices(event_id: str, spo2: Value, fio2: float, map_: float | None) -> list[Reading]:
    """S/F and OSI from an SpO2 known only as an upper bound ("could not be kept at 90 %").

    SpO2 < x gives S/F < x / FiO2 and OSI > MAP x FiO2 x 100 / x: bounds the rules can use.
    A lower bound on SpO2 gives nothing, since the SpO2 could then exceed the 97 % ceiling.
    """
    if spo2.value is None or spo2.comparator not in ("<", "<=") or spo2.value > SPO2_INDEX_CEILING:
        return []
    x, op = spo2.value, spo2.comparator
    out = [Reading(event_id, "sf", Value(value=round(x / fio2, 4), comparator=op), "computed",
                   "SpO2 / FiO2, from an upper bound on SpO2")]
    if map_ is not None:
        flipped = ">" if op == "<" else ">="
        out.append(Reading(event_id, "osi", Value(value=round(map_ * fio2 * 100 / x, 4), comparator=flipped),
                           "computed", "MAP x FiO2 x 100 / SpO2, from an upper bound on SpO2"))
    return out


def engine_readings(readings: list[Reading]) -> list[Reading]:
    """The readings the rules see: a recomputed index wins over the reported one it was checked
    against, and an implied input is not shown to rules as if it had been measured."""
    computed = {(r.event_id, r.measure) for r in readings if r.origin == "computed"}
    return [
        r
        for r in readings
        if r.origin in ("measured", "computed")
        or (r.origin == "reported" and (r.event_id, r.measure) not in computed)
    ]

def dated_readings(scenario: Scenario, placement: Placement) -> list[tuple[int, Reading]]:
    """Every observation's readings with the day it falls on under one placement."""
    out = []
    for ev in scenario.events:
        if isinstance(ev, Observation):
            day = placement.spans[ev.id].start
            out += [(day, r) for r in observation_readings(ev)]
    return out
