"""Hypothesis strategies for random but valid timelines that exercise every rule of the pathway."""

from __future__ import annotations

from conftest import SRC, make_scenario
from hypothesis import strategies as st

DAYS = st.integers(min_value=-3, max_value=40)


def _day_spec(exact_only: bool):
    exact = DAYS
    if exact_only:
        return exact
    ranged = st.tuples(DAYS, st.integers(0, 6)).map(lambda t: {"between": [t[0], t[0] + t[1]]})
    return st.one_of(exact, exact, ranged)


def _value(lo: float, hi: float, places: int = 1, edges: tuple[float, ...] = ()):
    """Readings in range, often exactly on a rule's threshold or a millionth either side (readings
    are kept to 6 decimals), sometimes only bounded."""
    num = st.floats(min_value=lo, max_value=hi, allow_nan=False).map(lambda x: round(x, places))
    if edges:
        near = tuple(round(e + d, 6) for e in edges for d in (-1e-6, 1e-6) if lo <= e + d <= hi)
        num = st.one_of(num, st.sampled_from(edges), st.sampled_from(near))
    bounded = st.tuples(num, st.sampled_from(["<", ">", "<=", ">="])).map(
        lambda t: {"value": t[0], "comparator": t[1]})
    return st.one_of(num, num, num, bounded)


OBS_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "spo2": _value(70, 100, 0, edges=(90, 97)),
        "fio2": st.sampled_from([0.21, 0.4, 0.6, 0.8, 0.9, 1.0]),
        "map": _value(5, 30, 0, edges=(18,)),
        "pip": _value(10, 40, 0, edges=(30,)),
        "ino": st.sampled_from([0, 5, 10]),
        "pao2": _value(30, 200, 1, edges=(25, 50, 100)),
        "anti_mda5": _value(50, 9000, 0, edges=(500,)),
    },
).filter(bool)


@st.composite
def timelines(draw, exact_only: bool = False, max_events: int = 14):
    """A scenario of up to `max_events` events with random days, readings and interventions."""
    day = _day_spec(exact_only)
    n = draw(st.integers(1, max_events))
    events = []
    for i in range(n):
        kind = draw(st.sampled_from(["observation", "observation", "observation", "therapy",
                                     "support", "procedure", "finding", "trend_report"]))
        base = {"id": f"e{i}", "kind": kind, "day": draw(day), "source": SRC}
        if kind == "observation":
            base["values"] = draw(OBS_VALUES)
        elif kind == "therapy":
            base["code"] = draw(st.sampled_from(["MPT", "PSL", "CyA", "IVCY", "IVIG", "RTX", "MMF", "TMP-SDZ"]))
        elif kind == "support":
            base["code"] = draw(st.sampled_from(["invasive_ventilation", "VV-ECMO", "oxygen_mask"]))
            if draw(st.booleans()):
                start = base["day"] if isinstance(base["day"], int) else base["day"]["between"][1]
                base["until"] = start + draw(st.integers(0, 20))
        elif kind == "procedure":
            base["code"] = "PE"
        elif kind == "finding":
            base["code"] = draw(st.sampled_from(["respiratory_not_improving", "b_cell_recovery"]))
        else:
            base["marker"] = "anti_mda5"
            base["direction"] = draw(st.sampled_from(["decreasing", "not_decreasing", "stable", "rising"]))
        events.append(base)
    dx = draw(st.sampled_from([(), (("JDM", 0),), (("JDM", -2), ("RP-ILD", 1))]))
    return make_scenario(*events, diagnoses=dx, sid="generated")


# Moves of a threshold too small for 6 decimals, or for the engine's JSON parser to read as
# written (5e-05 is printed in exponent form): the engine must compare the value as given.
THRESHOLD_OFFSETS = st.one_of(
    st.sampled_from([4e-7, -4e-7, 1e-9, -1e-9, 1e-13, -1e-13, 5e-5, -5e-5]),
    st.floats(min_value=-1e-3, max_value=1e-3, allow_nan=False).filter(lambda x: x != 0),
)


def threshold_shifts(parameters: list[tuple[str, str]]):
    """Up to three (rule, parameter) thresholds each moved by a small offset with many decimals."""
    return st.dictionaries(st.sampled_from(parameters), THRESHOLD_OFFSETS, max_size=3)
