"""The code table: standard codes (LOINC, SNOMED CT, RxNorm, UCUM) to the project vocabulary.

The table is data (escalation/load/fhir_codes.yaml) so that a reviewer reads each mapping with
the source it was checked against, and adding one is a one-line change that the vocabulary
still validates: a mapping to a measure, code or unit the vocabulary lacks is refused at load.
The project's own code systems, written by the export, map one to one onto the vocabulary and
need no table.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from escalation.load.vocabulary import (
    AUTOANTIBODIES,
    CODES,
    DIAGNOSES,
    DOSE_UNITS,
    MEASURES,
    AnyCode,
    MeasureName,
    accepted_units,
)

BASE = "https://escalation.invalid/fhir"  # a namespace only: the reserved .invalid never resolves
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


def system(name: str) -> str:
    """One of the project's code systems, e.g. `system("measure")`."""
    return f"{BASE}/CodeSystem/{name}"


def extension(name: str) -> str:
    return f"{BASE}/StructureDefinition/{name}"


MEASURE_SYSTEM = system("measure")
CODE_SYSTEM = system("code")
DIAGNOSIS_SYSTEM = system("diagnosis")
AUTOANTIBODY_SYSTEM = system("autoantibody")
RESULT_SYSTEM = system("antibody-result")
TREND_SYSTEM = system("trend")
EVENT_SYSTEM = system("event")  # panels, imaging, outcome, and the tags
ROUTE_SYSTEM = system("route")
UNIT_SYSTEM = system("unit")
TAG_SYSTEM = system("tag")
# On every Bundle the tool writes (exported scenarios, GuidanceResponse results): none is a record
# of care or an order, whatever reads it.
RESEARCH_TAG = {"system": TAG_SYSTEM, "code": "research-review-only",
                "display": "research review only: not medical advice, not an order"}
EVENT_ID = f"{BASE}/NamingSystem/event-id"
SCENARIO_ID = f"{BASE}/NamingSystem/scenario-id"


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    checked: str = Field(min_length=1, description="where the code was checked")


class _Coded(_Row):
    system: str
    code: str
    seen_as: str = Field(min_length=1, description="how the checking source words the code")
    note: str | None = None


class MeasureMapping(_Coded):
    measure: MeasureName


class CodeMapping(_Coded):
    target: AnyCode
    route: Literal["iv", "oral"] | None = Field(None, description="maps only when the record has this route")


class RouteMapping(_Coded):
    route: Literal["iv", "oral"]


class UnitMapping(_Row):
    ucum: str
    unit: str

    @model_validator(mode="after")
    def _known(self) -> UnitMapping:
        if not any(self.unit in accepted_units(m) for m in MEASURES):
            raise ValueError(f"unit {self.unit!r} is accepted by no measure of the vocabulary")
        return self


class DoseUnitMapping(_Row):
    ucum: str
    unit: str

    @model_validator(mode="after")
    def _known(self) -> DoseUnitMapping:
        if self.unit not in DOSE_UNITS:
            raise ValueError(f"dose unit {self.unit!r} is not in the vocabulary")
        return self


class LeftOut(_Coded):
    why: str


class CodeTable(BaseModel):
    """The whole file; every (system, code) and every UCUM code appears once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    measures: list[MeasureMapping]
    codes: list[CodeMapping]
    routes: list[RouteMapping]
    inpatient_classes: list[_Coded]
    units: list[UnitMapping]
    dose_units: list[DoseUnitMapping]
    left_out: list[LeftOut]

    @model_validator(mode="after")
    def _unique(self) -> CodeTable:
        coded = [(r.system, r.code) for g in (self.measures, self.codes, self.routes, self.left_out) for r in g]
        for group, keys in (("codes", coded), ("units", [u.ucum for u in self.units]),
                            ("dose_units", [u.ucum for u in self.dose_units])):
            twice = sorted({str(k) for k in keys if keys.count(k) > 1})
            if twice:
                raise ValueError(f"{group}: mapped more than once: {', '.join(twice)}")
        return self


TABLE_FILE = "fhir_codes.yaml"


@lru_cache(maxsize=1)
def table() -> CodeTable:
    """The shipped table, validated once per process."""
    text = resources.files("escalation.load").joinpath(TABLE_FILE).read_text(encoding="utf-8")
    return CodeTable.model_validate(yaml.safe_load(text))


# --- look-ups used by the import and the export -------------------------------------------------


def measure_of(sys: str | None, code: str | None) -> str | None:
    """The measure a coding names, from the project system or the table."""
    if sys == MEASURE_SYSTEM:
        return code if code in MEASURES else None
    return next((m.measure for m in table().measures if (m.system, m.code) == (sys, code)), None)


def code_of(sys: str | None, code: str | None, route: str | None) -> str | None:
    """The vocabulary code a coding names; a mapping that needs a route needs that route."""
    if sys == CODE_SYSTEM:
        return code if code in CODES else None
    for m in table().codes:
        if (m.system, m.code) == (sys, code) and (m.route is None or m.route == route):
            return m.target
    return None


def route_needed(sys: str | None, code: str | None) -> str | None:
    """Why a code that maps only with a route did not map, for the summary."""
    row = next((m for m in table().codes if (m.system, m.code) == (sys, code) and m.route), None)
    return None if row is None else f"maps to {row.target} only with route {row.route}"


def diagnosis_of(sys: str | None, code: str | None) -> str | None:
    return code if sys == DIAGNOSIS_SYSTEM and code in DIAGNOSES else None


def autoantibody_of(sys: str | None, code: str | None) -> str | None:
    return code if sys == AUTOANTIBODY_SYSTEM and code in AUTOANTIBODIES else None


def route_of(sys: str | None, code: str | None) -> str | None:
    if sys == ROUTE_SYSTEM and code in ("iv", "oral", "other"):
        return code
    return next((r.route for r in table().routes if (r.system, r.code) == (sys, code)), None)


def inpatient(sys: str | None, code: str | None) -> bool:
    """Whether an Encounter.class coding is an inpatient stay (the day-0 rule's default)."""
    return any((r.system, r.code) == (sys, code) for r in table().inpatient_classes)


def left_out_reason(sys: str | None, code: str | None) -> str | None:
    return next((r.why for r in table().left_out if (r.system, r.code) == (sys, code)), None)


def unit_of(ucum: str) -> str | None:
    """The vocabulary's name for a UCUM unit code."""
    return next((u.unit for u in table().units if u.ucum == ucum), None)


def dose_unit_of(ucum: str) -> str | None:
    return next((u.unit for u in table().dose_units if u.ucum == ucum), None)


def ucum_of(unit: str) -> str | None:
    """The UCUM code of a vocabulary unit, for the export."""
    return next((u.ucum for u in table().units if u.unit == unit), None)


def ucum_of_dose(unit: str) -> str | None:
    return next((u.ucum for u in table().dose_units if u.unit == unit), None)


def standard_codings(kind: Literal["measure", "code"], name: str) -> list[tuple[str, str, str]]:
    """(system, code, wording) of every table row that maps onto `name` unconditionally."""
    rows = table().measures if kind == "measure" else [c for c in table().codes if c.route is None]
    key = "measure" if kind == "measure" else "target"
    return [(r.system, r.code, r.seen_as) for r in rows if getattr(r, key) == name]
