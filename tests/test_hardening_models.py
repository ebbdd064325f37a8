"""Numbers the models refuse, and divisions the derive stage can always do ("Hardening", items 11, 12).

Item 11: NaN and infinity (YAML's `.nan`, `.inf`, `-.inf`) were accepted wherever a number is,
and ranges could be written the wrong way round; item 12: a zero where the derive stage divides,
or an infinite `every_days`, gave a traceback. Each case is a small file in
tests/regressions/models/, named for the case, with the offending line marked `# refused`.
`escalation check FILE` must refuse it at that line, with one `error:` line and exit 2, and the
command that would use the file later (replay, report, cohort) must refuse it with the same line:
check catches everything a replay would reject. The real CLI runs in a subprocess with a time
limit, since a regression could hang the rule engine.

The property tests feed observations with edge values (zeros, the ends of each physical range,
tiny and huge numbers) through the derive stage: whatever the models accept, every index and
implied dose is a finite number.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from conftest import SRC, make_scenario
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from escalation.derive.checks import consistency_checks
from escalation.derive.doses import implied_doses
from escalation.derive.placement import place
from escalation.derive.readings import observation_readings
from escalation.literature.records import Table1
from escalation.load import numbers
from escalation.load.changes import RulesetVariant, ScenarioVariant
from escalation.load.ruleset import Ruleset
from escalation.load.scenario import MAX_DOSE, Observation, Scenario
from escalation.load.vocabulary import DOSE_UNITS, MEASURES

ROOT = Path(__file__).resolve().parents[1]
CASES = Path("tests/regressions/models")  # relative to ROOT, as a user would type it
TIMEOUT_S = 120
MARKER = "# refused"

# file -> (kind, words the error must contain)
SCENARIO_CASES = {
    "reading-nan.yaml": ("finite", "nan"),
    "reading-span-nan.yaml": ("finite", "nan"),
    "reference-infinite.yaml": ("finite", "inf"),
    "reference-reversed.yaml": ("low", "above", "high"),
    "weight-nan.yaml": ("finite", "nan"),
    "dose-infinite.yaml": ("finite", "inf"),
    "dose-nan.yaml": ("finite", "nan"),
    "trough-target-reversed.yaml": ("low", "above", "high"),
    "oxygen-flow-nan.yaml": ("finite", "nan"),
    "support-flow-nan.yaml": ("finite", "nan"),
    "until-before-start.yaml": ("until", "before the start"),
    "age-nan.yaml": ("finite", "nan"),
    "spo2-zero.yaml": ("spo2", "divides", "modelling bound"),
    "spo2-bound-zero.yaml": ("spo2", "divides", "modelling bound"),
    "spo2-fraction.yaml": ("spo2 = 0.95 %", "fraction", "0.95 for 95 %", "modelling bound"),
    "reported-pf-zero.yaml": ("pf", "divides", "modelling bound"),
    "reported-oi-zero.yaml": ("oi", "MAP x 100 / OI", "modelling bound"),
    "report-kl6-nan.yaml": ("finite", "nan"),
}
RULES_CASES = {
    "parameter-nan.yaml": ("finite", "nan"),
    "parameter-infinite.yaml": ("finite", "-inf"),
    "every-days-infinite.yaml": ("finite", "inf"),
    "every-days-nan.yaml": ("finite", "nan"),
}
RECORDS_CASES = {
    "records-range-reversed.yaml": ("low", "above", "high"),
    "records-span-nan.yaml": ("finite", "nan"),
}


def later_use(kind: str, path: str) -> list[str]:
    """The command that would read the file after `check` has passed it."""
    return {
        "scenario": ["replay", path],
        "rules": ["replay", "scenarios/index_case.yaml", "--rules", path],
        "records": ["cohort", "summary", "--records", path],
    }[kind]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "escalation", *args], capture_output=True, text=True,
                              timeout=TIMEOUT_S, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"escalation {' '.join(args)} ran for more than {TIMEOUT_S} s")


def marked_line(path: Path) -> int:
    hits = [n for n, text in enumerate((ROOT / path).read_text().splitlines(), 1) if MARKER in text]
    assert len(hits) == 1, f"{path}: {MARKER!r} on lines {hits}"
    return hits[0]


def assert_refused(proc: subprocess.CompletedProcess, path: Path, words: tuple[str, ...]) -> str:
    """Exit 2, nothing on stdout, one `error: FILE:LINE (PATH): ...` line with the key words."""
    shown = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr + proc.stdout, shown
    assert proc.returncode == 2, shown
    assert proc.stdout == "", shown
    errors = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(errors) == 1, shown
    prefix = f"error: {path}:{marked_line(path)} ("
    assert errors[0].startswith(prefix), f"expected {prefix!r}...: {shown}"
    for word in words:
        assert word.lower() in errors[0].lower(), f"{word!r} not in {errors[0]!r}"
    return errors[0]


ALL_CASES = [(kind, name, words) for kind, cases in
             (("scenario", SCENARIO_CASES), ("rules", RULES_CASES), ("records", RECORDS_CASES))
             for name, words in cases.items()]


def test_every_regression_file_is_a_case():
    assert sorted(p.name for p in (ROOT / CASES).glob("*.yaml")) == sorted(name for _, name, _ in ALL_CASES)


@pytest.mark.parametrize(("kind", "name", "words"), ALL_CASES, ids=[c[1] for c in ALL_CASES])
def test_check_refuses_what_a_later_command_would(kind, name, words):
    path = CASES / name
    checked = assert_refused(run_cli("check", str(path)), path, words)
    assert assert_refused(run_cli(*later_use(kind, str(path))), path, words) == checked


def test_report_with_a_nan_kl6_is_refused_and_writes_nothing(tmp_path):
    path = CASES / "report-kl6-nan.yaml"
    out = tmp_path / "report"
    checked = assert_refused(run_cli("check", str(path)), path, ("finite",))
    assert assert_refused(run_cli("report", str(path), "--out", str(out)), path, ("finite",)) == checked
    assert not out.exists() or not any(out.iterdir())


# --- the shared finite type is on every number of every file model --------------------------------


def _unchecked_floats(tp: Any, metadata: list[Any], where: str, seen: set[type]) -> list[str]:
    """Places under `tp` where a float is taken without the finite check."""
    if tp is float:
        checked = any(getattr(m, "func", None) is numbers._finite for m in metadata)
        return [] if checked else [where]
    if typing.get_origin(tp) is typing.Annotated:
        inner, *extra = typing.get_args(tp)
        return _unchecked_floats(inner, [*metadata, *extra], where, seen)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return []
        seen.add(tp)
        return [hit for name, f in tp.model_fields.items()
                for hit in _unchecked_floats(f.annotation, list(f.metadata), f"{tp.__name__}.{name}", seen)]
    return [hit for arg in typing.get_args(tp) for hit in _unchecked_floats(arg, [], where, seen)]


@pytest.mark.parametrize("model", [Scenario, ScenarioVariant, Ruleset, RulesetVariant, Table1],
                         ids=lambda m: m.__name__)
def test_every_float_field_of_a_file_model_is_finite(model):
    assert _unchecked_floats(model, [], model.__name__, set()) == []


# --- a range may not be reversed, but may overlap -------------------------------------------------


def test_an_until_that_may_still_follow_the_start_is_kept():
    """Only a certain contradiction is refused: day 5-12 until 8 fits when the start is early."""
    support = {"id": "vent", "kind": "support", "code": "invasive_ventilation", "day": {"between": [5, 12]},
               "until": 8, "source": SRC}
    assert make_scenario(support).events[0].until.latest == 8


# --- the derive stage: no division by zero, no infinite result ------------------------------------

TINY = (5e-324, 1e-300, 1e-9, 4.9e-7, 5e-7, 1e-6, 1.5e-6)


def _number(low: float, high: float) -> st.SearchStrategy[float]:
    """Within [low, high], often on an edge, just inside one, or tiny."""
    edges = [low, high, *(low + t for t in TINY), *(high - t for t in TINY), 0.0, *TINY]
    return st.one_of(st.sampled_from(edges), st.floats(low, high, allow_nan=False, allow_infinity=False))


def _reading(measure: str) -> st.SearchStrategy[Any]:
    m = MEASURES[measure]
    num = _number(m.low, m.high)
    bounded = st.tuples(num, st.sampled_from(["<", "<=", ">", ">="])).map(
        lambda t: {"value": t[0], "comparator": t[1]})
    span = st.tuples(num, num).map(lambda t: {"min": min(t), "max": max(t)})
    return st.one_of(num, num, bounded, span)


def _group(measures: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={m: _reading(m) for m in measures})


MEASURED = ["spo2", "fio2", "pao2", "map", "pip", "peep"]
REPORTED = ["pf", "oi", "sf", "osi"]


def _observation(values: dict[str, Any], reported: dict[str, Any]) -> Observation:
    data = {"id": "obs", "kind": "observation", "day": 1, "source": SRC,
            "values": values, "reported": reported}
    try:
        return Observation.model_validate(data)
    except ValidationError:
        reject()  # not a file the models accept: nothing to derive


def _finite_numbers(readings: list[Any]) -> list[float]:
    return [x for r in readings for x in r.value.numbers()]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_group(MEASURED), _group(REPORTED))
def test_readings_of_any_accepted_observation_are_finite(values, reported):
    obs = _observation(values, reported)
    numbers_ = _finite_numbers(observation_readings(obs))
    assert all(math.isfinite(x) for x in numbers_), numbers_


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_group(MEASURED), _group(REPORTED))
@example({"map": 12, "fio2": 0.5, "pao2": 60}, {"oi": 99, "pf": {"value": 1, "comparator": "<"}})  # found by hypothesis
def test_consistency_checks_of_any_accepted_observation_are_finite(values, reported):
    _observation(values, reported)
    scenario = make_scenario({"id": "obs", "kind": "observation", "day": 1, "source": SRC,
                              "values": values, "reported": reported})
    early, late = place(scenario, "early"), place(scenario, "late")
    for check in consistency_checks(scenario, early, late):
        assert not re.search(r"\b-?(nan|inf)\b", check.message), check.message
        assert all(math.isfinite(x) for x in (check.reported, check.derived) if x is not None), check


_ANY_DOSE = st.one_of(_number(0, MAX_DOSE), st.sampled_from([MAX_DOSE * 1.0001, 1e300, sys.float_info.max]),
                     st.floats(min_value=0, allow_nan=False, allow_infinity=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_number(0, MEASURES["weight"].high), _number(0, MEASURES["height"].high),
       _ANY_DOSE, st.sampled_from(sorted(DOSE_UNITS)))
def test_implied_doses_of_any_accepted_scenario_are_finite(weight, height, dose, unit):
    """Dose times weight or body-surface area: the modelling bound on doses keeps it finite."""
    events = [{"id": "measured", "kind": "observation", "day": 0, "source": SRC,
               "values": {"weight": weight, "height": height}},
              {"id": "given", "kind": "therapy", "code": "MPT", "day": 1, "source": SRC,
               "dose": {"value": dose, "unit": unit}}]
    try:
        scenario = make_scenario(*events)
    except ValidationError:
        reject()
    for implied in implied_doses(scenario, place(scenario, "early")):
        assert math.isfinite(implied.amount) and math.isfinite(implied.basis_value), implied
