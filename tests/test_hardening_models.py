"""Numbers the models refuse ("Hardening", item 11, and the parts of item 12 it covers).

Item 11: NaN and infinity (YAML's `.nan`, `.inf`, `-.inf`) were accepted wherever a number is,
and ranges could be written the wrong way round; item 12: an infinite `every_days`, or `report`
with `kl6: .nan`, gave a traceback. Each case is a small file in
tests/regressions/models/, named for the case, with the offending line marked `# refused`.
`escalation check FILE` must refuse it at that line, with one `error:` line and exit 2, and the
command that would use the file later (replay, report, cohort) must refuse it with the same line:
check catches everything a replay would reject. The real CLI runs in a subprocess with a time
limit, since a regression could hang the rule engine.
"""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from conftest import SRC, make_scenario
from pydantic import BaseModel

from escalation.literature.records import Table1
from escalation.load import numbers
from escalation.load.ruleset import Ruleset, RulesetVariant
from escalation.load.scenario import Scenario, ScenarioVariant

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
