"""A scenario as a FHIR R4 Bundle (type collection) that other tools read, and that imports back.

Each coded thing carries the project's own coding (so a round trip loses nothing) and, where
the code table has one, the standard coding. Scenario days become calendar dates counted from
a day 0 that the scenario does not have: 2000-01-01 unless given, on an Encounter tagged
`day-zero`. What FHIR has no element for travels in the project's extensions, documented at
https://escalation.invalid/fhir/StructureDefinition/NAME (a namespace, not a live page):

- `uncertain-timing` (on an event resource): sub-extensions `day` and `until`, each a Period
  the day lies somewhere within; present whenever a day or an end is not exact. The standard
  element then holds the widest Period (open where the scenario has no bound).
- `citation`: one per citation of the fact, its sub-extensions named as the citation's fields.
- `day-note`, `until-note`: the scenario's note on why a day or an end is what it is.
- `scenario-fields`: a JSON object of fields with no FHIR element, in the scenario file's shape.
  On an event resource: course numbers, trough targets, oxygen device and flow, PE sessions,
  imaging study and findings (mapping.EXTRA_FIELDS). On the Patient, which the import takes for
  the scenario: the scenario's title, description and day-0 wording, the patient's note,
  `reported_intervals` (with their citations) and `expected` (mapping.SCENARIO_LEVEL); events are
  named by the ids every event resource carries (identifier system NamingSystem/event-id).
Hypothetical events and scenarios carry meta.tag `hypothetical`. Research review only.

What does not come back as it was: an import cites the resource a fact was read from (an event
keeps its original citations as `also`; the scenario, the patient, a diagnosis or an antibody
result has no `also`, so its original citation is only in the `citation` extension), writes out a
unit the scenario left implicit, and keeps the age to two decimals (a birth date holds whole
days). The day-0 wording comes back while day 0 is the encounter tagged `day-zero`, not when an
import sets another. tests/test_fhir_roundtrip.py checks that nothing else differs, in the
scenario or in its replay.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import date, timedelta, timezone
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from escalation.fhir import codes as C
from escalation.fhir.dates import Clock, day_form
from escalation.fhir.mapping import EXTRA_FIELDS
from escalation.fhir.records import VERIFICATION
from escalation.load.citations import Citation
from escalation.load.errors import InputError
from escalation.load.scenario import Expectation, Scenario, Value
from escalation.load.timing import DayRange
from escalation.load.vocabulary import CODES, DIAGNOSES, MEASURES

DEFAULT_DAY_ZERO = date(2000, 1, 1)
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, C.BASE)
_FHIR_ID = re.compile(r"[^A-Za-z0-9.-]")
ROUTES = {"iv": (C.SNOMED, "47625008"), "oral": (C.SNOMED, "26643006")}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def to_bundle(scenario: Scenario, day_zero: date = DEFAULT_DAY_ZERO) -> dict[str, Any]:
    """The Bundle as JSON-ready data, validated against the FHIR R4 models before it is returned."""
    ex = _Exporter(scenario, Clock(day_zero, timezone.utc))
    bundle = {
        "resourceType": "Bundle",
        "id": _fhir_id(scenario.scenario.id),
        "meta": {"tag": [C.RESEARCH_TAG, *ex.tags(scenario.scenario.hypothetical)]},
        "identifier": {"system": C.SCENARIO_ID, "value": scenario.scenario.id},
        "type": "collection",
        "entry": [{"fullUrl": ex.full_url(r), "resource": r} for r in ex.resources()],
    }
    bundle = _pruned(bundle)
    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:  # a bug here, not bad input: the scenario was valid
        raise InputError(scenario.scenario.id, f"the export is not valid FHIR R4: {exc.errors()[0]}") from None
    return bundle


def to_json(scenario: Scenario, day_zero: date = DEFAULT_DAY_ZERO) -> str:
    return json.dumps(to_bundle(scenario, day_zero), indent=2, ensure_ascii=False) + "\n"


def _pruned(data: Any) -> Any:
    """Absent values left out, as FHIR requires (no nulls, no empty lists or objects)."""
    if isinstance(data, dict):
        out = {k: _pruned(v) for k, v in data.items()}
        return {k: v for k, v in out.items() if v not in (None, [], {})}
    if isinstance(data, list):
        return [x for x in (_pruned(v) for v in data) if x not in (None, [], {})]
    return data


def _expectation(x: Expectation) -> dict[str, Any]:
    """An expectation as a scenario file writes it: its windows of days in the file's forms."""
    out = x.model_dump(mode="json", exclude_defaults=True)
    for key in ("day", "actual_day", "lag"):
        if key in out:
            out[key] = _day_file_form(getattr(x, key))
    for i, u in enumerate(x.unflagged or []):
        if u.day is not None:
            out["unflagged"][i]["day"] = _day_file_form(u.day)
    return out


def _day_file_form(day: DayRange) -> Any:
    form = day_form(day.earliest, day.latest)
    if day.note is None:
        return form
    return {**(form if isinstance(form, dict) else {"between": [form, form]}), "note": day.note}


def _fhir_id(text: str) -> str:
    return _FHIR_ID.sub("-", text)[:64]


def _prefix(scenario_id: str) -> str:
    """What every resource id of one scenario's export starts with: its scenario id, with a hash
    of it where FHIR's id characters could not carry it as it is (`index_case` would otherwise
    meet `index-case`) or where it is long. It holds no `.`, and a `.` follows it in every id, so
    the exports of two scenarios never share a resource id, and can be imported together or
    pooled into one Bulk Data folder."""
    sid = _fhir_id(scenario_id)
    if sid == scenario_id and len(sid) <= 32:
        return sid
    return f"{sid[:24]}-{hashlib.sha256(scenario_id.encode()).hexdigest()[:7]}"


class _Exporter:
    """One scenario's resources; ids are made unique, stable, at most 64 characters (FHIR's
    limit), and distinct from any other scenario's (each starts with the scenario's prefix)."""

    def __init__(self, scenario: Scenario, clock: Clock) -> None:
        self.sc, self.clock = scenario, clock
        self.ids: set[str] = set()
        self.prefix = _prefix(scenario.scenario.id)
        self.patient_id = f"patient-{self.prefix}"
        self.ids.add(self.patient_id)

    def unique(self, wanted: str) -> str:
        rid, n = f"{self.prefix}.{wanted}"[:64], 1
        while rid in self.ids:
            n += 1
            rid = f"{self.prefix}.{wanted}"[:64 - len(f"-{n}")] + f"-{n}"
        self.ids.add(rid)
        return rid

    def full_url(self, resource: dict[str, Any]) -> str:
        name = f"{self.sc.scenario.id}/{resource['resourceType']}/{resource['id']}"
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, name)}"

    def tags(self, *flags: bool | str) -> list[dict[str, str]]:
        codes = ["hypothetical" if f is True else f for f in flags if f]
        return [{"system": C.TAG_SYSTEM, "code": str(c)} for c in codes]

    def resources(self) -> list[dict[str, Any]]:
        conditions = [self.condition(d) for d in self.sc.patient.diagnoses]
        antibodies = [self.antibody(a) for a in self.sc.patient.autoantibodies]
        events = [self.event(e) for e in self.sc.events]
        return [self.patient(), self.encounter(conditions), *conditions, *antibodies, *events]

    # --- patient, day 0, diagnoses --------------------------------------------------------

    def patient(self) -> dict[str, Any]:
        p = self.sc.patient
        born = self.clock.day_zero - timedelta(days=round(p.age_years * 365.25))
        return {"resourceType": "Patient", "id": self.patient_id,
                "meta": {"tag": self.tags(self.sc.scenario.hypothetical)},
                "extension": [*self.citations(p.source, []),
                              {"url": C.extension("scenario-fields"),
                               "valueString": json.dumps(self.scenario_fields(), ensure_ascii=False)}],
                "identifier": [{"system": C.SCENARIO_ID, "value": self.sc.scenario.id}],
                "gender": p.sex, "birthDate": born.isoformat()}

    def scenario_fields(self) -> dict[str, Any]:
        """The scenario's own fields that no FHIR element holds, in the file's shape (mapping.py
        SCENARIO_LEVEL): on the Patient, the resource that stands for the scenario on import."""
        info, p = self.sc.scenario, self.sc.patient
        fields = {"scenario": {k: v for k, v in (("title", info.title), ("description", info.description),
                                                 ("day_zero", info.day_zero)) if v is not None},
                  "patient": {"note": p.note} if p.note else {},
                  "reported_intervals": [iv.model_dump(mode="json", exclude_defaults=True)
                                         for iv in self.sc.reported_intervals],
                  "expected": {rs: [_expectation(x) for x in xs] for rs, xs in self.sc.expected.items()}}
        return {k: v for k, v in fields.items() if v}  # only the top level: `unflagged: []` means none

    def subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.patient_id}"}

    def encounter(self, conditions: list[dict[str, Any]]) -> dict[str, Any]:
        return {"resourceType": "Encounter", "id": self.unique("day-zero"), "meta": {"tag": self.tags("day-zero")},
                "status": "unknown", "class": {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
                "subject": self.subject(), "period": {"start": self.clock.day_zero.isoformat()},
                "reasonCode": [{"text": f"day 0 of the scenario: {self.sc.scenario.day_zero}"}],
                "diagnosis": [{"condition": {"reference": f"Condition/{c['id']}"}} for c in conditions]}

    def condition(self, d: Any) -> dict[str, Any]:
        lo, hi = d.day.earliest, d.day.latest
        return {"resourceType": "Condition", "id": self.unique(f"diagnosis-{_fhir_id(d.code)}"),
                "extension": [*self.citations(d.source, []), *self.notes(d.day, None)],
                # a scenario lists a diagnosis as made: said, so that an import need not assume it
                "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
                "code": self.concept(C.DIAGNOSIS_SYSTEM, d.code, DIAGNOSES[d.code]),
                "subject": self.subject(),
                "onsetDateTime": self.date(lo), "recordedDate": self.date(hi)}

    def antibody(self, a: Any) -> dict[str, Any]:
        return {"resourceType": "Observation", "id": self.unique(f"antibody-{_fhir_id(a.name)}"),
                "extension": self.citations(a.source, []), "status": "final",
                "code": self.concept(C.AUTOANTIBODY_SYSTEM, a.name, a.name),
                "subject": self.subject(),
                "valueCodeableConcept": self.concept(C.RESULT_SYSTEM, a.result, a.result.replace("_", " "))}

    # --- events ---------------------------------------------------------------------------

    def event(self, e: Any) -> dict[str, Any]:
        build = {"observation": self.observation, "trend_report": self.trend, "therapy": self.therapy,
                 "support": self.procedure, "procedure": self.procedure, "imaging": self.imaging,
                 "finding": self.coded_observation, "milestone": self.coded_observation,
                 "outcome": self.outcome}[e.kind]
        body = build(e)
        extra = {k: v for k, v in e.model_dump(mode="json", exclude_none=True).items()
                 if k in EXTRA_FIELDS.get(e.kind, ())}
        head = {"resourceType": body.pop("resourceType"), "id": self.unique(_fhir_id(e.id)),
                "meta": {"tag": self.tags(e.hypothetical)},
                "extension": [*self.citations(e.source, e.also), *self.timing_extension(e),
                              *self.notes(e.day, getattr(e, "until", None)),
                              *([{"url": C.extension("scenario-fields"),
                                  "valueString": json.dumps(extra, sort_keys=True)}] if extra else [])],
                "identifier": [{"system": C.EVENT_ID, "value": e.id}]}
        note = [{"text": e.note}] if e.note else None
        return {**head, **body, "subject": self.subject(), "note": note}

    def observation(self, e: Any) -> dict[str, Any]:
        readings = [(m, v) for m, v in e.values.items()] + [(m, v) for m, v in e.reported.items()]
        timing = self.point_timing(e.day, "effective")
        if len(readings) == 1:
            m, v = readings[0]
            return {"resourceType": "Observation", "status": "final", "code": self.measure(m), **timing,
                    **self.value(m, v)}
        return {"resourceType": "Observation", "status": "final",
                "code": self.concept(C.EVENT_SYSTEM, "readings", "readings taken together"), **timing,
                "component": [{"code": self.measure(m), **self.value(m, v)} for m, v in readings]}

    def trend(self, e: Any) -> dict[str, Any]:
        return {"resourceType": "Observation", "status": "final", "code": self.measure(e.marker),
                **self.point_timing(e.day, "effective"),
                "valueCodeableConcept": self.concept(C.TREND_SYSTEM, e.direction, e.direction.replace("_", " "))}

    def coded_observation(self, e: Any) -> dict[str, Any]:
        return {"resourceType": "Observation", "status": "final", "code": self.code(e.code),
                **self.point_timing(e.day, "effective"), "valueBoolean": True}

    def imaging(self, e: Any) -> dict[str, Any]:
        return {"resourceType": "Observation", "status": "final",
                "code": self.concept(C.EVENT_SYSTEM, "imaging", f"{e.modality} {e.region}"),
                **self.point_timing(e.day, "effective"), "valueString": "; ".join(e.findings)}

    def outcome(self, e: Any) -> dict[str, Any]:
        return {"resourceType": "Observation", "status": "final",
                "code": self.concept(C.EVENT_SYSTEM, "outcome", "outcome"), **self.point_timing(e.day, "effective"),
                "valueCodeableConcept": self.concept(C.EVENT_SYSTEM, e.status, e.status)}

    def therapy(self, e: Any) -> dict[str, Any]:
        dosage = {"route": self.route(e.route) if e.route else None,
                  "doseAndRate": [{"doseQuantity": self.dose(e.dose)}] if e.dose else None}
        return {"resourceType": "MedicationStatement", "status": "completed" if e.until else "unknown",
                "medicationCodeableConcept": self.code(e.code), **self.span_timing(e, "effective"),
                "dosage": [dosage]}

    def procedure(self, e: Any) -> dict[str, Any]:
        return {"resourceType": "Procedure", "status": "completed" if e.until else "unknown",
                "code": self.code(e.code), **self.span_timing(e, "performed")}

    # --- codes and quantities -------------------------------------------------------------

    def concept(self, system: str, code: str, text: str) -> dict[str, Any]:
        return {"coding": [{"system": system, "code": code}], "text": text}

    def measure(self, name: str) -> dict[str, Any]:
        standard = [{"system": s, "code": c, "display": d} for s, c, d in C.standard_codings("measure", name)]
        return {"coding": [{"system": C.MEASURE_SYSTEM, "code": name}, *standard], "text": MEASURES[name].name}

    def code(self, name: str) -> dict[str, Any]:
        standard = [{"system": s, "code": c, "display": d} for s, c, d in C.standard_codings("code", name)]
        return {"coding": [{"system": C.CODE_SYSTEM, "code": name}, *standard], "text": CODES[name].name}

    def route(self, route: str) -> dict[str, Any]:
        coding = [{"system": C.ROUTE_SYSTEM, "code": route}]
        if route in ROUTES:
            coding.append({"system": ROUTES[route][0], "code": ROUTES[route][1]})
        return {"coding": coding, "text": route}

    def quantity(self, value: float, unit: str) -> dict[str, Any]:
        ucum = C.ucum_of(unit)
        return {"value": value, "unit": unit, "system": C.UCUM if ucum else C.UNIT_SYSTEM, "code": ucum or unit}

    def value(self, measure: str, v: Value) -> dict[str, Any]:
        unit = v.unit or MEASURES[measure].unit
        out: dict[str, Any]
        if v.value is not None:
            q = self.quantity(v.value, unit)
            out = {"valueQuantity": {**q, "comparator": v.comparator} if v.comparator != "=" else q}
        else:
            out = {"valueRange": {"low": self.quantity(v.min, unit), "high": self.quantity(v.max, unit)}}
        ref = v.reference
        if ref is not None:
            high = ref.below if ref.below is not None else ref.high
            out["referenceRange"] = [{"low": self.quantity(ref.low, unit) if ref.low is not None else None,
                                      "high": self.quantity(high, unit) if high is not None else None,
                                      "text": "below" if ref.below is not None else None}]
        return out

    def dose(self, dose: Any) -> dict[str, Any]:
        return {"value": dose.value, "unit": dose.unit, "system": C.UCUM, "code": C.ucum_of_dose(dose.unit)}

    def citations(self, source: Citation, also: list[Citation]) -> list[dict[str, Any]]:
        out = []
        for c in [source, *also]:
            fields = c.model_dump(mode="json", exclude_none=True)
            subs = [{"url": k, "valueInteger" if isinstance(v, int) else "valueString": v} for k, v in fields.items()]
            out.append({"url": C.extension("citation"), "extension": subs})
        return out

    # --- timing ---------------------------------------------------------------------------

    def date(self, day: int | None) -> str | None:
        return None if day is None else self.clock.on(day).isoformat()

    def period(self, lo: int | None, hi: int | None) -> dict[str, str]:
        return {k: v for k, v in (("start", self.date(lo)), ("end", self.date(hi))) if v is not None}

    def point_timing(self, day: DayRange, prefix: str) -> dict[str, Any]:
        if day.exact:
            return {f"{prefix}DateTime": self.date(day.earliest)}
        return {f"{prefix}Period": self.period(day.earliest, day.latest)}

    def span_timing(self, e: Any, prefix: str) -> dict[str, Any]:
        if e.until is None and e.day.exact:
            return {f"{prefix}DateTime": self.date(e.day.earliest)}
        end = e.until.latest if e.until is not None else None
        return {f"{prefix}Period": self.period(e.day.earliest, end)}

    def notes(self, day: DayRange, until: DayRange | None) -> list[dict[str, Any]]:
        """Why a day is what it is (`day-note`, `until-note`): the scenario's own words, kept."""
        pairs = (("day-note", day.note), ("until-note", until.note if until is not None else None))
        return [{"url": C.extension(name), "valueString": text} for name, text in pairs if text]

    def timing_extension(self, e: Any) -> list[dict[str, Any]]:
        until = getattr(e, "until", None)
        if e.day.exact and (until is None or until.exact):
            return []
        subs = [{"url": "day", "valuePeriod": self.period(e.day.earliest, e.day.latest)}]
        if until is not None:
            subs.append({"url": "until", "valuePeriod": self.period(until.earliest, until.latest)})
        return [{"url": C.extension("uncertain-timing"), "extension": subs}]
