"""Each clinical resource type read into scenario entries (see mapping.py for the shared rules).

Statuses that say a record did not happen (entered-in-error, not-done, cancelled, not-taken, a
proposal or plan) are skipped and counted. A MedicationRequest is an order: it is imported as a
therapy started on its planned start (or the day it was written), with a note saying that the
administration itself is not in the record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from escalation.fhir import codes as C
from escalation.fhir.dates import Clock, day_form
from escalation.fhir.mapping import (
    Contradiction,
    Yield,
    base_event,
    codings,
    extensions,
    extra_fields,
    fail,
    first,
    instant,
    kind_of_code,
    measure_is_derived,
    most_specific,
    point_day,
    reading,
    reference_range,
    shown,
    skipped,
    span_days,
    unmapped_codes,
    with_note,
)
from escalation.fhir.reader import Located
from escalation.load.vocabulary import CodeKind

NOT_DONE = {
    "Observation": {"cancelled", "entered-in-error"},
    "Condition": set(),
    "MedicationAdministration": {"not-done", "entered-in-error"},
    "MedicationRequest": {"cancelled", "entered-in-error", "draft"},
    "MedicationStatement": {"not-taken", "entered-in-error", "intended"},
    "Procedure": {"not-done", "entered-in-error", "preparation"},
    "DeviceUseStatement": {"entered-in-error", "intended"},
}
Lookup = Callable[[Located, Any], Located | None]  # a Reference to the resource it names


def read(res: Located, clock: Clock, lookup: Lookup) -> Yield:
    """What one resource adds to its patient's scenario."""
    status = getattr(res.model, "status", None)
    if status in NOT_DONE.get(res.type, set()):
        return skipped(f"status {status}")
    handler = {
        "Observation": observation, "Condition": condition, "Procedure": procedure,
        "DeviceUseStatement": device_use, "MedicationAdministration": medication,
        "MedicationRequest": medication, "MedicationStatement": medication,
    }[res.type]
    try:
        return handler(res, clock, lookup)
    except Contradiction as exc:
        return skipped(str(exc))


def timing(res: Located) -> tuple[Any, Any, str]:
    """(dateTime, Period, the Period's element name): where a record's day is read from."""
    m = res.model
    if res.type == "Observation":
        return m.effectiveDateTime or m.effectiveInstant, m.effectivePeriod, "effectivePeriod"
    if res.type == "Procedure":
        return m.performedDateTime, m.performedPeriod, "performedPeriod"
    if res.type == "DeviceUseStatement":
        return m.timingDateTime, m.timingPeriod, "timingPeriod"
    if res.type == "MedicationRequest":
        dosage = _dosage(res)
        repeat = dosage.timing.repeat if dosage is not None and dosage.timing is not None else None
        bounds = repeat.boundsPeriod if repeat is not None else None
        if bounds is not None and bounds.start is not None:
            return None, bounds, "dosageInstruction.timing.repeat.boundsPeriod"
        return m.authoredOn, None, "authoredOn"
    if res.type in ("MedicationAdministration", "MedicationStatement"):
        return m.effectiveDateTime, m.effectivePeriod, "effectivePeriod"
    return None, None, ""  # a Condition: its day is read from onset and recordedDate


def charted_at(res: Located, clock: Clock) -> tuple[datetime, ...] | None:
    """When an Observation's readings were charted, as a key under which readings of one patient
    at the same time are put together (to_scenario._charted_together): its effectiveDateTime or
    effectiveInstant as an instant, or its effectivePeriod's start and end, each a timestamp.
    None for a date or partial date (no time of day, so not known to be simultaneous with
    anything), and for a record this project's export wrote (its event id, its extensions or
    its tags): the export writes one resource per scenario event and charts readings taken
    together as components already, and a round trip must give back the same events."""
    if res.type != "Observation" or _exported(res):
        return None
    m = res.model
    when = m.effectiveDateTime or m.effectiveInstant
    if when is not None:
        return (instant(when, clock),) if isinstance(when, datetime) else None
    period = m.effectivePeriod
    if period is not None and isinstance(period.start, datetime) and isinstance(period.end, datetime):
        return instant(period.start, clock), instant(period.end, clock)
    return None


def _exported(res: Located) -> bool:
    m = res.model
    ours = C.extension("")
    return (any(i.system == C.EVENT_ID for i in m.identifier or [])
            or any((e.url or "").startswith(ours) for e in m.extension or [])
            or any(t.system == C.TAG_SYSTEM for t in (m.meta.tag if m.meta else None) or []))


def start_instant(res: Located, clock: Clock) -> datetime | None:
    """The instant a record's event starts, where the record gives it as a timestamp; None for a
    date or a partial date (no time of day), and where the export's uncertain-timing extension
    gives the day instead. This orders the events of one day (see to_scenario._in_time_order)."""
    if extensions(res.model, "uncertain-timing"):
        return None
    when, period, _ = timing(res)
    start = when if when is not None else getattr(period, "start", None)
    return instant(start, clock) if isinstance(start, datetime) else None


# --- Observation -----------------------------------------------------------------------------


def observation(res: Located, clock: Clock, lookup: Lookup) -> Yield:
    m = res.model
    antibody = first(m.code, C.autoantibody_of)
    if antibody is not None:
        return _antibody(res, antibody)  # a result of the patient's, with no day in the format
    day = point_day(res, clock, *timing(res))
    if day is None:
        return skipped("no effective date")
    kind = first(m.code, lambda s, c: c if s == C.EVENT_SYSTEM else None)
    if kind in ("imaging", "outcome"):
        return _imaging(res, day) if kind == "imaging" else _outcome(res, day)
    noted: list[str] = []
    code = most_specific(m.code, lambda s, c: C.code_of(s, c, None),
                         lambda c: kind_of_code(c) in (CodeKind.finding, CodeKind.milestone), noted)
    if code is not None:
        return Yield(events=[{**base_event(res, kind_of_code(code).value, day), "code": code}], noted=noted)
    return _readings(res, day, kind == "readings")


def _readings(res: Located, day: Any, panel: bool) -> Yield:
    m, out = res.model, Yield()
    values: dict[str, Any] = {}
    reported: dict[str, Any] = {}
    measure = None if panel else most_specific(m.code, C.measure_of, noted=out.noted)
    trend = first(m.valueCodeableConcept, lambda s, c: c if s == C.TREND_SYSTEM else None)
    if measure is not None and trend is not None:
        return Yield(events=[{**base_event(res, "trend_report", day), "marker": measure, "direction": trend}],
                     noted=out.noted)
    if measure is not None:
        _put(res, measure, m, values, reported, out)
    elif not panel and (m.valueQuantity is not None or m.valueRange is not None or not m.component):
        out.unmapped += unmapped_codes(res, m.code)
    for comp in m.component or []:
        cm = most_specific(comp.code, C.measure_of, noted=out.noted)
        if cm is None:
            out.unmapped += unmapped_codes(res, comp.code)
            continue
        held = reported if measure_is_derived(cm) else values  # where _put puts it
        before = held.get(cm)
        _put(res, cm, comp, values, reported, out)
        if before is not None and held[cm] != before:  # which one holds is not ours to say
            return Yield(skipped=f"two different values of {cm} in one Observation", noted=out.noted)
    if values or reported:
        event = {**base_event(res, "observation", day), **extra_fields(res, "observation")}
        out.events.append({**event, **({"values": values} if values else {}),
                           **({"reported": reported} if reported else {})})
    elif not out.unmapped:
        out.skipped = "no value"
    return out


def _put(res: Located, measure: str, holder: Any, values: dict, reported: dict, out: Yield) -> None:
    """One reading into `values`, or `reported` for an index the source computed (P/F, OI)."""
    if holder.valueQuantity is None and holder.valueRange is None:
        out.unmapped += [replace(u, why=f"{measure}: the value is not a quantity or range")
                         for u in unmapped_codes(res, holder.code)]
        return
    r = reading(res, measure, holder.valueQuantity, holder.valueRange)
    ref = reference_range(getattr(holder, "referenceRange", None))
    if ref:
        r["reference"] = ref
    (reported if measure_is_derived(measure) else values)[measure] = r


def _imaging(res: Located, day: Any) -> Yield:
    return Yield(events=[{**base_event(res, "imaging", day), **extra_fields(res, "imaging")}])


def _outcome(res: Located, day: Any) -> Yield:
    status = first(res.model.valueCodeableConcept, lambda s, c: c if s == C.EVENT_SYSTEM else None)
    if status not in ("alive", "dead"):
        raise fail(res, "an outcome needs valueCodeableConcept alive or dead")
    return Yield(events=[{**base_event(res, "outcome", day), "status": status}])


def _antibody(res: Located, name: str) -> Yield:
    result = first(res.model.valueCodeableConcept, lambda s, c: c if s == C.RESULT_SYSTEM else None)
    if result is None:
        return skipped(f"{name}: no result the code table reads")
    return Yield(autoantibodies=[{"name": name, "result": result, "source": {"fhir": f"{res.type}/{res.id}"}}])


# --- Condition -------------------------------------------------------------------------------


# Condition.verificationStatus (FHIR R4, required binding to ConditionVerificationStatus). The
# code system's own definitions settle which Conditions are a diagnosis made:
# - confirmed: "There is sufficient diagnostic and/or clinical evidence to treat this as a
#   confirmed condition." Imported.
# - unconfirmed: "There is not sufficient diagnostic and/or clinical evidence to treat this as a
#   confirmed condition."; provisional ("a tentative diagnosis - still a candidate that is under
#   consideration") and differential ("one of a set of potential ... diagnoses") are kinds of
#   unconfirmed in the code system. Not a diagnosis made: skipped, so that no rule's `diagnosis:`
#   condition is met by a candidate diagnosis.
# - refuted (ruled out) and entered-in-error (not valid): skipped.
# The element is optional, and FHIR gives its absence no meaning either way. The project's choice:
# a Condition without it is imported as a diagnosis made, and the summary notes each one. An
# export that lists a diagnosis states it by listing it (many EHR exports write no
# verificationStatus; this project's own export writes `confirmed`); skipping them all would leave most
# real records without a diagnosis. A verificationStatus with no code of the code system cannot be
# read, and the element is a modifier (it can say the Condition is not so): skipped.
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
NOT_CONFIRMED = ("unconfirmed", "provisional", "differential")
NO_VERIFICATION = ("no verificationStatus: imported as a diagnosis made (the project's choice where FHIR "
                   "says nothing either way)")


def not_asserted(model: Any) -> str | None:
    """Why a Condition is not a diagnosis made, by its verificationStatus; None when it is one."""
    if model.verificationStatus is None:
        return None
    found = [c.code for c in codings(model.verificationStatus) if c.system in (VERIFICATION, None) and c.code]
    for code in ("entered-in-error", "refuted"):
        if code in found:
            return f"verificationStatus {code}"
    for code in NOT_CONFIRMED:
        if code in found:
            return f"not confirmed (verificationStatus {code})"
    if "confirmed" in found:
        return None
    return ("verificationStatus not read: it has no code of condition-ver-status, and a Condition whose "
            "verification cannot be read is not taken as a diagnosis made")


def condition(res: Located, clock: Clock, lookup: Lookup) -> Yield:
    """A diagnosis was made no earlier than its onset and no later than it was recorded."""
    m = res.model
    why = not_asserted(m)
    if why is not None:
        return skipped(why)
    noted: list[str] = [] if m.verificationStatus is not None else [NO_VERIFICATION]
    code = most_specific(m.code, C.diagnosis_of, noted=noted)
    if code is None:
        return Yield(unmapped=unmapped_codes(res, m.code))
    onset_value = m.onsetDateTime or (m.onsetPeriod.start if m.onsetPeriod else None)
    onset, recorded = clock.days(onset_value), clock.days(m.recordedDate)
    if onset is None and recorded is None:
        return skipped("no onset or recorded date")
    if onset is not None and recorded is not None and onset[0] > recorded[1]:
        # Days, not instants: the diagnosis is placed on whole days, and onset and recordedDate
        # only bound that day; they contradict each other only when no day lies between them.
        raise Contradiction(f"onset ({shown(onset_value)}) is after recordedDate ({shown(m.recordedDate)}): "
                            f"no day lies between them for the diagnosis ({res.name})")
    day = with_note(res, day_form(onset[0] if onset else None, recorded[1] if recorded else None), "day-note")
    return Yield(diagnoses=[{"code": code, "day": day, "source": {"fhir": f"{res.type}/{res.id}"}}], noted=noted)


# --- Procedure and DeviceUseStatement --------------------------------------------------------


def procedure(res: Located, clock: Clock, lookup: Lookup) -> Yield:
    return _support_or_procedure(res, res.model.code, *span_days(res, clock, *timing(res)))


def device_use(res: Located, clock: Clock, lookup: Lookup) -> Yield:
    """Support where the device's type is coded: the code is on the Device it names."""
    m = res.model
    device = lookup(res, m.device)
    if device is None:
        return skipped("device not in the input")
    return _support_or_procedure(res, device.model.type, *span_days(res, clock, *timing(res)))


def _support_or_procedure(res: Located, concept: Any, day: Any, until: Any) -> Yield:
    noted: list[str] = []
    code = most_specific(concept, lambda s, c: C.code_of(s, c, None),
                         lambda c: kind_of_code(c) in (CodeKind.support, CodeKind.procedure), noted)
    if code is None:
        return Yield(unmapped=unmapped_codes(res, concept))
    if day is None:
        return skipped("no performed date")
    kind = kind_of_code(code).value
    event = {**base_event(res, kind, day), "code": code, **extra_fields(res, kind)}
    until = with_note(res, until, "until-note")
    return Yield(events=[{**event, **({"until": until} if until is not None else {})}], noted=noted)


# --- the three medication resources ----------------------------------------------------------


def medication(res: Located, clock: Clock, lookup: Lookup) -> Yield:
    m = res.model
    if res.type == "MedicationRequest" and m.intent in ("proposal", "plan"):
        return skipped(f"intent {m.intent}")
    concept = m.medicationCodeableConcept
    if concept is None and m.medicationReference is not None:
        med = lookup(res, m.medicationReference)
        concept = med.model.code if med is not None else None
    dosage = _dosage(res)
    route = first(dosage.route, C.route_of) if dosage is not None else None
    noted: list[str] = []
    code = most_specific(concept, lambda s, c: C.code_of(s, c, route), lambda c: kind_of_code(c) == CodeKind.therapy,
                         noted)
    if code is None:
        needs = first(concept, C.route_needed)
        missed = unmapped_codes(res, concept)
        return Yield(unmapped=[replace(u, why=u.why or needs) for u in missed])
    day, until = span_days(res, clock, *timing(res))
    if day is None:
        return skipped("no date")
    event = {**base_event(res, "therapy", day), "code": code, **extra_fields(res, "therapy")}
    if until is not None:
        event["until"] = with_note(res, until, "until-note")
    if route is not None:
        event["route"] = route
    dose = _dose(res, dosage)
    if dose is not None:
        event["dose"] = dose
    if res.type == "MedicationRequest":
        order = "an order (MedicationRequest): the administration is not in the record"
        event["note"] = "; ".join(x for x in (event.get("note"), order) if x)
    return Yield(events=[event], noted=noted)


def _dosage(res: Located) -> Any:
    m = res.model
    if res.type == "MedicationAdministration":
        return m.dosage
    listed = m.dosageInstruction if res.type == "MedicationRequest" else m.dosage
    return listed[0] if listed else None


def _dose(res: Located, dosage: Any) -> dict[str, Any] | None:
    """The dose as written, in a dose unit of the vocabulary; an unknown unit is an error."""
    if dosage is None:
        return None
    quantity = getattr(dosage, "dose", None) if res.type == "MedicationAdministration" else None
    if res.type != "MedicationAdministration" and dosage.doseAndRate:
        quantity = dosage.doseAndRate[0].doseQuantity
    if quantity is None or quantity.value is None:
        return None
    ucum = quantity.code or quantity.unit
    unit = C.dose_unit_of(ucum) if quantity.system in (None, C.UCUM) and ucum else None
    if unit is None:
        raise fail(res, f"dose unit {ucum!r} ({quantity.system or 'no system'}) is not in the code table's "
                        "dose units")
    return {"value": float(quantity.value), "unit": unit}
