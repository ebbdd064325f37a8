"""The JSON Schema of the files as people write them: what editors check a scenario or rule set against.

The loader stays the authority; the schema must never refuse a file the loader takes (apart from
the type coercions pydantic allows, such as "5" for a day), and it should refuse as much as can
be judged one field at a time, so that an editor flags it while the file is being written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import INDEX_CASE, PATHWAY, ROOT
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from escalation.cli.app import app
from escalation.load import changes, citations, ruleset, scenario, timing
from escalation.load.errors import InputError
from escalation.load.loading import load_ruleset, load_scenario
from escalation.load.schema import SHORTHANDS, file_schema, schema_text
from escalation.load.scenario import Dose, Value
from escalation.load.timing import MAX_DAYS, DayRange

SCHEMAS = ROOT / "schemas"
SCENARIOS = [INDEX_CASE, *sorted((ROOT / "scenarios" / "variants").glob("*.yaml"))]
RULE_SETS = sorted((ROOT / "rules").glob("*.yaml"))
VALIDATORS = {kind: Draft7Validator(file_schema(kind)) for kind in ("scenario", "rules")}


def errors(kind: str, data: Any) -> list[str]:
    return [e.message for e in VALIDATORS[kind].iter_errors(data)]


def definition(kind: str, name: str) -> Draft7Validator:
    """A validator for one definition of a file schema, with the others there for its $refs."""
    whole = file_schema(kind)
    return Draft7Validator({"$ref": f"#/$defs/{name}", "$defs": whole["$defs"]})


# --- the schema files and the command ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["scenario", "rules"])
def test_the_schema_files_are_what_the_command_prints(kind):
    result = CliRunner().invoke(app, ["schema", kind])
    assert result.exit_code == 0, result.output
    assert result.stdout == schema_text(kind)
    kept = SCHEMAS / f"{kind}.schema.json"
    assert kept.read_text(encoding="utf-8") == result.stdout, (
        f"{kept} is out of date: run `escalation schema {kind} > schemas/{kind}.schema.json`")


@pytest.mark.parametrize("kind", ["scenario", "rules"])
def test_the_schema_is_draft_07_and_says_what_it_is_for(kind):
    schema = file_schema(kind)
    Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "$id" not in schema
    assert "research review only" in schema["title"]
    assert "research review only" in schema["description"].lower()
    assert len(schema["oneOf"]) == 2, "a whole file or a variant of one"


# --- shipped files ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_passes(path):
    assert errors("scenario", yaml.safe_load(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("path", RULE_SETS, ids=lambda p: p.stem)
def test_every_shipped_rule_set_passes(path):
    assert errors("rules", yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def test_files_of_the_other_formats_are_refused():
    assert errors("scenario", yaml.safe_load(PATHWAY.read_text(encoding="utf-8")))
    assert errors("rules", yaml.safe_load(INDEX_CASE.read_text(encoding="utf-8")))
    table = ROOT / "scenarios" / "literature" / "table1.yaml"
    assert errors("scenario", yaml.safe_load(table.read_text(encoding="utf-8")))


# --- the bad-input cases ------------------------------------------------------------------------

CAUGHT, LOADER_ONLY = True, False
BAD_FILES = [
    # tests/test_bad_input.py, scenario contents
    ("unknown-event-field", INDEX_CASE, "  - id: transfer\n", "  - id: transfer\n    colour: red\n", CAUGHT),
    ("fio2-above-1", INDEX_CASE, "      fio2: 0.8\n", "      fio2: 1.3\n", CAUGHT),
    ("fio2-below-0.21", INDEX_CASE, "      fio2: 0.24\n", "      fio2: 0.15\n", CAUGHT),
    ("spo2-above-100", INDEX_CASE, 'spo2: {value: 96, unit: "%"}', 'spo2: {value: 104, unit: "%"}', CAUGHT),
    ("negative-dose", INDEX_CASE, "dose: {value: 1, unit: mg/kg/day}", "dose: {value: -1, unit: mg/kg/day}", CAUGHT),
    ("zero-dose", INDEX_CASE, "dose: {value: 1, unit: mg/kg/day}", "dose: {value: 0, unit: mg/kg/day}", CAUGHT),
    ("unknown-measure-unit", INDEX_CASE, "pao2: {value: 68.7, unit: mmHg}", "pao2: {value: 68.7, unit: mmHG}",
     CAUGHT),
    ("unknown-dose-unit", INDEX_CASE, "dose: {value: 1, unit: mg/kg/day}", "dose: {value: 1, unit: mg/kilo/day}",
     CAUGHT),
    ("duplicate-yaml-key", INDEX_CASE, "    code: transfer\n    day: 0\n",
     "    code: transfer\n    day: 0\n    day: 1\n", LOADER_ONLY),
    ("duplicate-event-id", INDEX_CASE, "  - id: ivig\n", "  - id: cya\n", LOADER_ONLY),
    # tests/test_validation.py
    ("calendar-date", INDEX_CASE, "    code: transfer\n    day: 0\n", "    code: transfer\n    day: 20220804\n",
     CAUGHT),
    # tests/test_bad_input.py, rule contents
    ("unknown-rule-field", PATHWAY, "  - id: step2-plasma-exchange\n",
     "  - id: step2-plasma-exchange\n    severity: high\n", CAUGHT),
    ("unknown-measure", PATHWAY, "      - measure: pip\n", "      - measure: pipp\n", CAUGHT),
    ("unknown-given-code", PATHWAY, "      - given: [RTX]\n", "      - given: [RTX2]\n", CAUGHT),
    ("unknown-proposed-step", PATHWAY, "    proposes: [PE]\n", "    proposes: [XYZ]\n", LOADER_ONLY),
    ("step-flagged-no-rule", PATHWAY, "      - step_flagged: 4\n", "      - step_flagged: 9\n", LOADER_ONLY),
    ("undefined-parameter", PATHWAY, "        threshold: pip_limit\n", "        threshold: pip_limt\n", LOADER_ONLY),
    ("title-as-order", PATHWAY, 'title: "Step 2 for review: plasma exchange (PE)"', 'title: "Start plasma exchange"',
     LOADER_ONLY),
    # tests/test_validation.py
    ("any-as-threshold", PATHWAY, "        threshold: pip_limit\n", "        threshold: any\n", LOADER_ONLY),
    ("threshold-in-wrong-unit", PATHWAY, "      pip_limit:\n        value: 30\n        unit: cmH2O\n",
     "      pip_limit:\n        value: 30\n        unit: mmHg\n", LOADER_ONLY),
]


@pytest.mark.parametrize("case, source, old, new, caught", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_input_cases(tmp_path: Path, case: str, source: Path, old: str, new: str, caught: bool):
    """Each bad-input case is refused by the loader; the structural ones by the schema as well.

    Caught by the schema: an unknown field on an event or a rule; a reading outside its physical
    range when it is a bare number or in the measure's own unit (fio2 1.3 or 0.15, spo2 104 %);
    a dose of zero or less; an unknown unit for a measure or a dose; a calendar date as a day;
    an unknown measure or code in a condition; a rule set given as a scenario and back.

    Left to the loader, because JSON Schema cannot see them one field at a time: a duplicate YAML
    key (the parser keeps one, so the schema never sees the other), a duplicate event id, a
    proposal that is neither a step nor a label the same file declares, step_flagged naming a
    step no rule has, a condition naming a parameter the rule does not define, `any` outside a
    measure look-back, a threshold in a unit other than its measure's, and a title worded as an
    order or without 'for review'. Not listed: malformed YAML and missing or empty files, which
    fail before there is anything to check, and the --set cases, which are not files.
    """
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / source.name
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(InputError):
        (load_scenario if source == INDEX_CASE else load_ruleset)(path)
    kind = "scenario" if source == INDEX_CASE else "rules"
    assert bool(errors(kind, yaml.safe_load(path.read_text(encoding="utf-8")))) is caught


def test_a_variant_needs_derives_from_and_no_events():
    variant = yaml.safe_load((ROOT / "scenarios" / "variants" / "ranges-only.yaml").read_text(encoding="utf-8"))
    assert errors("scenario", {k: v for k, v in variant.items() if k != "derives_from"})
    assert errors("scenario", {**variant, "events": []})
    assert errors("scenario", {**variant, "changes": {"swap": []}})


# --- the shorthand forms agree with the before-validators ----------------------------------------


def test_every_widening_before_validator_has_its_form_in_the_schema():
    """A model-level before-validator exists to accept a shorthand; the schema must know each one.

    Field-level before-validators are listed too: today only Dose.value has one, and it only
    refuses (zero or less), which `exclusiveMinimum` already says; a new one must be looked at.
    """
    models = [obj for module in (timing, citations, changes, scenario, ruleset) for obj in vars(module).values()
              if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__]
    widening = {m for m in models
                if any(d.info.mode == "before" for d in m.__pydantic_decorators__.model_validators.values())}
    assert widening == set(SHORTHANDS)
    fields = {(m, f) for m in models for d in m.__pydantic_decorators__.field_validators.values()
              if d.info.mode == "before" for f in d.info.fields}
    assert fields == {(Dose, "value")}


def _accepts(model: type[BaseModel], data: Any) -> tuple[bool, str]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return False, str(exc)
    return True, ""


def _agrees(model: type[BaseModel], data: Any, loader_only: tuple[str, ...]) -> None:
    """The schema takes what the model takes; what only the model refuses is a known cross-field rule."""
    model_ok, why = _accepts(model, data)
    schema_ok = definition("scenario", model.__name__).is_valid(data)
    if model_ok:
        assert schema_ok, data
    elif schema_ok:
        assert any(reason in why for reason in loader_only), (data, why)


_names = st.text("abcxyz_", min_size=1, max_size=4)
_day = st.integers(-2 * MAX_DAYS, 2 * MAX_DAYS) | st.sampled_from([0, MAX_DAYS, -MAX_DAYS, MAX_DAYS + 1])
_leaf = _day | st.none() | _names | st.lists(_day | _names, max_size=3)
_fraction = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())


@given(_day | st.booleans() | _fraction | _names
       | st.dictionaries(st.sampled_from(["between", "on_or_before", "on_or_after", "earliest", "latest",
                                          "note", "day"]), _leaf, max_size=3))
def test_day_forms_agree(data):
    _agrees(DayRange, data, ("needs at least one bound", "after it ends"))


_number = st.integers(-10, 10) | st.floats(-10, 10, allow_nan=False)


@given(_number | st.booleans() | _names | st.none()
       | st.dictionaries(st.sampled_from(["value", "min", "max", "comparator", "unit", "colour"]),
                         _number | st.none() | st.sampled_from(["<", "=", "%", "mmHg"]), max_size=3))
def test_value_forms_agree(data):
    _agrees(Value, data, ("give either value", "a span needs"))


def test_examples_of_each_day_form():
    day = definition("scenario", "DayRange")
    for good in (11, -6, {"between": [10, 12]}, {"on_or_before": 0, "note": "n"}, {"on_or_after": 12},
                 {"earliest": 3, "latest": 5}):
        assert day.is_valid(good), good
    for bad in (True, "11", 11.5, {"between": [10]}, {"between": [1, 2], "on_or_after": 3}, {"when": 3}, {"on_or_after": 1.5},
                {"on_or_before": MAX_DAYS + 1}, [1, 2]):
        assert not day.is_valid(bad), bad


@pytest.mark.parametrize("path", [*SCENARIOS, *RULE_SETS], ids=lambda p: p.stem)
def test_every_shipped_file_names_its_schema_for_editors(path):
    prefix = "# yaml-language-server: $schema="
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(prefix), f"{path} does not start with {prefix}..."
    kind = "rules" if path in RULE_SETS else "scenario"
    assert (path.parent / first[len(prefix):]).resolve() == (SCHEMAS / f"{kind}.schema.json").resolve()
