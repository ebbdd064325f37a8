"""The JSON Schema of the files people write, for editors and for checks outside Python.

`Model.model_json_schema()` describes the models after validation, which is not what a file
holds: a day is written `11` or `{between: [10, 12]}`, a reading `0.8`, and a variant is a few
changes to another file. A schema of the models would reject the shipped files, so an editor
using it would mark correct files as wrong. The schema here is still generated from the same
models, so it cannot drift from them field by field; on top of that, model by model, it adds the
forms the before-validators accept and the closed vocabulary as enums, so that an editor can
complete names and a typo shows before the file is loaded.

Only what can be judged one field at a time is here. What needs several fields or the file as a
whole (a range in order, a reading within its physical range in its unit, ids and parameters
that exist, wording of titles) is left to the loader, which remains the authority.

The schema is draft-07, the newest draft that YAML editors (yaml-language-server) fully support.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Literal

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from escalation.load import vocabulary
from escalation.load.changes import RulesetVariant, ScenarioVariant
from escalation.load.citations import REPORT_REFERENCES, REPORT_SECTIONS, Citation
from escalation.load.ruleset import Rule, Ruleset
from escalation.load.scenario import Dose, Observation, Scenario, Value
from escalation.load.timing import MAX_DAYS, DayRange
from escalation.load.vocabulary import (
    AUTOANTIBODIES,
    CODES,
    DIAGNOSES,
    DOSE_UNITS,
    MEASURES,
)

DIALECT = "http://json-schema.org/draft-07/schema#"
Kind = Literal["scenario", "rules"]

_FILES: dict[str, tuple[type[BaseModel], type[BaseModel], str]] = {
    "scenario": (Scenario, ScenarioVariant, "scenario"),
    "rules": (Ruleset, RulesetVariant, "rule set"),
}

NOTICE = (
    "For research review only: not medical advice, and not for use in the care of any patient. "
    "Generated from the escalation package's models by `escalation schema {kind}`; do not edit "
    "by hand. A file passing this schema may still be refused by `escalation check`, which also "
    "checks what spans several fields (ranges in order, readings within physical limits in their "
    "unit, ids and parameters that exist, titles not worded as orders)."
)


def file_schema(kind: Kind) -> dict[str, Any]:
    """The schema of a whole file of this kind or a variant of one (`derives_from` + `changes`)."""
    whole, variant, noun = _FILES[kind]
    refs, defs = models_json_schema(
        [(whole, "validation"), (variant, "validation")], schema_generator=FileSchemaGenerator
    )
    return {
        "$schema": DIALECT,
        "title": f"escalation {noun} file (research review only)",
        "description": NOTICE.format(kind=kind),
        "oneOf": [refs[(whole, "validation")], refs[(variant, "validation")]],
        **defs,
    }


def schema_text(kind: Kind) -> str:
    """The schema as the CLI prints it and the repository keeps it: sorted keys, so diffs stay small."""
    return json.dumps(file_schema(kind), indent=2, sort_keys=True) + "\n"


class FileSchemaGenerator(GenerateJsonSchema):
    """Pydantic's generator, told about the written forms and the vocabulary."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        cls = schema["cls"]
        for (owner, field), keywords in FIELD_KEYWORDS.items():
            if owner is cls:
                _narrow(json_schema["properties"][field], keywords)
        refine = REFINEMENTS.get(cls)
        return refine(json_schema) if refine else json_schema

    def function_after_schema(self, schema: core_schema.AfterValidatorFunctionSchema) -> JsonSchemaValue:
        json_schema = super().function_after_schema(schema)
        names = vocabulary_names(schema["function"]["function"])
        return {**json_schema, "enum": names} if names else json_schema

    def normalize_name(self, name: str) -> str:
        """`Changes[Rule]` and `Changes[Event]` get readable names instead of their type's repr."""
        name = super().normalize_name(name)
        if name == "Changes_Rule_":
            return "RuleChanges"
        if name.startswith("Changes_Annotated_Union_Observation_"):
            return "EventChanges"
        return name


# --- the closed vocabulary ------------------------------------------------------------------

_ALL_NAMES = sorted({*MEASURES, *CODES, *DIAGNOSES, *AUTOANTIBODIES})


def vocabulary_names(check: Callable[[Any], Any]) -> list[str] | None:
    """The names a vocabulary type accepts, found by asking its own validator.

    Every annotated name type in `vocabulary` is a closed list checked by an after-validator;
    probing that validator with every known name gives the enum without a second copy of the list.
    """
    if getattr(check, "__module__", None) != vocabulary.__name__:
        return None
    return [name for name in _ALL_NAMES if _accepts(check, name)]


def _accepts(check: Callable[[Any], Any], name: str) -> bool:
    try:
        check(name)
    except ValueError:
        return False
    return True


def _narrow(prop: JsonSchemaValue, keywords: dict[str, Any]) -> None:
    """Add keywords to a property's non-null branch, or to its items if it is a list."""
    branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
    for branch in branches:
        (branch["items"] if branch.get("type") == "array" else branch).update(keywords)


# Fields a model validator checks against a closed list or range, one field at a time.
FIELD_KEYWORDS: dict[tuple[type[BaseModel], str], dict[str, Any]] = {
    (Dose, "unit"): {"enum": list(DOSE_UNITS)},
    (Citation, "section"): {"enum": sorted(REPORT_SECTIONS)},
    (Citation, "reference"): {"minimum": REPORT_REFERENCES.start, "maximum": REPORT_REFERENCES.stop - 1},
    (Rule, "matched_by"): {"enum": list(CODES)},
}


# --- forms a before-validator accepts -------------------------------------------------------

_DAY = {"type": "integer", "minimum": -MAX_DAYS, "maximum": MAX_DAYS}


def _day_forms(model: JsonSchemaValue) -> JsonSchemaValue:
    """DayRange: a bare day, one of the three range forms, or the model's own fields.

    A range form carries only a `note` besides its own key: the loader refuses a form mixed
    with `earliest`/`latest` (`{on_or_before: 5, earliest: 3}`), so the schema refuses it too.
    """
    fields = model["properties"]
    _narrow(fields["earliest"], _DAY)
    _narrow(fields["latest"], _DAY)

    def form(key: str, value: JsonSchemaValue, text: str) -> JsonSchemaValue:
        return {"type": "object", "description": text, "properties": {key: value, "note": fields["note"]},
                "required": [key], "additionalProperties": False}

    between = {"type": "array", "items": _DAY, "minItems": 2, "maxItems": 2}
    shape = {k: v for k, v in model.items() if k not in ("title", "description")}
    return {
        "title": model["title"],
        "description": model["description"],
        "anyOf": [
            {**_DAY, "description": "exactly this day"},
            form("on_or_before", _DAY, "on or before this day"),
            form("on_or_after", _DAY, "on or after this day"),
            form("between", between, "between these two days, both included"),
            shape,
        ],
    }


def _bare_number(model: JsonSchemaValue) -> JsonSchemaValue:
    """Value: a bare number is an exact reading in the measure's canonical unit."""
    shape = {k: v for k, v in model.items() if k not in ("title", "description")}
    bare = {"type": "number", "description": "an exact reading in the measure's canonical unit"}
    return {"title": model["title"], "description": model["description"], "anyOf": [bare, shape]}


def _readings_by_measure(model: JsonSchemaValue) -> JsonSchemaValue:
    """Observation: `values` holds measured quantities, `reported` derived ones, each in its units."""
    for group, derived in (("values", False), ("reported", True)):
        prop = model["properties"][group]
        reading = prop.pop("additionalProperties")
        prop["properties"] = {
            code: _reading(reading, code) for code, m in MEASURES.items() if m.derived == derived
        }
        prop["additionalProperties"] = False
    return model


def _reading(reading: JsonSchemaValue, code: str) -> JsonSchemaValue:
    """One measure's reading: its units, and its physical range where no conversion is needed.

    A reading in another unit is left to the loader, which converts before it checks the range.
    """
    m = MEASURES[code]
    low = "minimum" if m.low_inclusive else "exclusiveMinimum"
    number = {"type": "number", low: m.low, "maximum": m.high}
    optional = {"anyOf": [number, {"type": "null"}]}
    in_unit = {"type": "object", "properties": {
        "unit": {"enum": [m.unit, None]}, "value": optional, "min": optional, "max": optional}}
    converted = {"type": "object", "required": ["unit"], "properties": {"unit": {"enum": list(m.conversions)}}}
    forms = [number, in_unit, converted] if m.conversions else [number, in_unit]
    return {
        "description": f"{m.name}: a bare number is in {m.unit}"
                       + (f"; other units: {', '.join(m.conversions)}" if m.conversions else ""),
        "allOf": [reading, {"anyOf": forms}],
    }


# Every model with a before-validator that widens what a file may say has an entry here
# (tests/test_schema.py keeps the list complete); the others only narrow the generated schema.
SHORTHANDS: dict[type[BaseModel], Callable[[JsonSchemaValue], JsonSchemaValue]] = {
    DayRange: _day_forms,
    Value: _bare_number,
}
REFINEMENTS: dict[type[BaseModel], Callable[[JsonSchemaValue], JsonSchemaValue]] = {
    **SHORTHANDS,
    Observation: _readings_by_measure,
}
