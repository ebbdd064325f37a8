"""One FHIR resource to what it adds to a scenario: events, diagnoses, antibody results.

Each function reads one resource type and returns a `Yield`: the scenario entries it makes, in
the file format's own shape, and every code it could not map (with the reason, where the table
gives one). Nothing is guessed: a value the resource does not carry is left out, a record with no
date is skipped and counted, and a unit that cannot be converted is an error naming the resource.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from escalation.fhir import codes as C
from escalation.fhir.dates import Clock, day_form
from escalation.fhir.reader import Located
from escalation.load.errors import InputError
from escalation.load.vocabulary import CODES, MEASURES, CodeKind, accepted_units, narrower

EVENT_ID = re.compile(r"[^A-Za-z0-9_.:-]")
# Project fields that FHIR has no element for, carried by the export in one extension.
EXTRA_FIELDS: dict[str, frozenset[str]] = {
    "therapy": frozenset({"course", "courses_total", "days_per_course", "interval", "target_trough"}),
    "support": frozenset({"flow"}),
    "procedure": frozenset({"sessions_total"}),
    "imaging": frozenset({"modality", "region", "findings", "study"}),
    "observation": frozenset({"oxygen_device", "oxygen_flow"}),
}

# Scenario-level fields FHIR has no element for, carried by the export in the same extension on
# the Patient (the resource that stands for the scenario): the file's sections and their fields;
# None for a section carried whole (validated as the file format's own).
SCENARIO_LEVEL: dict[str, frozenset[str] | None] = {
    "scenario": frozenset({"title", "description", "day_zero"}),
    "patient": frozenset({"note"}),
    "reported_intervals": None,
    "expected": None,
}


@dataclass(frozen=True)
class Unmapped:
    resource_type: str
    system: str | None
    code: str | None
    display: str | None
    why: str | None
    resource: Located


@dataclass
class Yield:
    """What one resource adds: scenario entries, unmapped codes, or the reason it was skipped."""

    events: list[dict[str, Any]] = field(default_factory=list)
    diagnoses: list[dict[str, Any]] = field(default_factory=list)
    autoantibodies: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    skipped: str | None = None
    noted: list[str] = field(default_factory=list)  # imported, with something a reader should know

    @property
    def used(self) -> bool:
        """Whether the resource gave the scenario anything."""
        return bool(self.events or self.diagnoses or self.autoantibodies)


def skipped(reason: str) -> Yield:
    return Yield(skipped=reason)


class Contradiction(Exception):
    """A record whose own dates contradict each other: a Period that ends before it starts, a
    Condition with its onset after its recordedDate. No day can be read from it, and which of
    its dates is wrong is not known: the record is skipped with this reason (naming it) and the
    rest of the import goes on. One such record must not stop a whole export from importing."""


def shown(value: Any) -> str:
    """A FHIR date or dateTime as written (a partial date stays as given)."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def fail(res: Located, message: str) -> InputError:
    return InputError(res.file, message, line=res.line, where=res.name)


# --- shared pieces ---------------------------------------------------------------------------


def codings(concept: Any) -> list[Any]:
    return list(getattr(concept, "coding", None) or []) if concept is not None else []


def unmapped_codes(res: Located, concept: Any) -> list[Unmapped]:
    """Each coding of a concept that mapped to nothing; a concept with only text counts once."""
    found = [Unmapped(res.type, c.system, c.code, c.display, C.left_out_reason(c.system, c.code), res)
             for c in codings(concept)]
    if not found:
        text = getattr(concept, "text", None) if concept is not None else None
        found = [Unmapped(res.type, None, None, text, "no coding, only text" if text else "no code", res)]
    return found


def first(concept: Any, look: Callable[[str | None, str | None], Any]) -> Any:
    """The first coding of a concept that `look` maps, mapped."""
    for c in codings(concept):
        hit = look(c.system, c.code)
        if hit is not None:
            return hit
    return None


def most_specific(concept: Any, look: Callable[[str | None, str | None], Any],
                  accept: Callable[[Any], bool] = lambda hit: True, noted: list[str] | None = None) -> Any:
    """The code a concept maps to where several of its codings map: the most specific by the
    vocabulary's kinds (KIND_OF), whatever the order of the codings. A Procedure coded both
    ECMO (mode not stated) and VV-ECMO is VV-ECMO: the codings describe one procedure, and the
    broader code adds nothing the narrower one does not say, while the first-listed ECMO would
    lose the mode. Codings that map to codes unrelated by kind (neither a kind of the other) are
    a choice the record does not settle: the first of them in the record's order is kept, as a
    reader takes the first coding, and the choice is added to `noted` for the summary.
    Only mappings that `accept` takes count (a therapy code on a Procedure does not)."""
    hits: list[Any] = []
    for c in codings(concept):
        hit = look(c.system, c.code)
        if hit is not None and accept(hit) and hit not in hits:
            hits.append(hit)
    if not hits:
        return None
    kept = [h for h in hits if not any(narrower(other, h) for other in hits)]
    if len(kept) > 1 and noted is not None:
        noted.append(f"its codings map to codes of which neither is a kind of the other ({', '.join(kept)}): "
                     f"the first, {kept[0]}, is imported")
    return kept[0]


def extensions(model: Any, name: str) -> list[Any]:
    url = C.extension(name)
    return [e for e in (getattr(model, "extension", None) or []) if e.url == url]


def tagged(model: Any, code: str) -> bool:
    meta = getattr(model, "meta", None)
    return any(t.system == C.TAG_SYSTEM and t.code == code for t in (getattr(meta, "tag", None) or []))


def event_id(res: Located) -> str:
    """The id an event had when it was exported, else one made from the resource's type and id."""
    for ident in getattr(res.model, "identifier", None) or []:
        if ident.system == C.EVENT_ID and ident.value:
            return ident.value
    return EVENT_ID.sub("-", f"{res.type.lower()}-{res.id or 'no-id'}")


def citations(res: Located) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The resource as the source, and the citations it carried from an export as `also`."""
    also = []
    for ext in extensions(res.model, "citation"):
        also.append({sub.url: sub.valueInteger if sub.valueInteger is not None else sub.valueString
                     for sub in ext.extension or []})
    return {"fhir": f"{res.type}/{res.id}"}, also


def with_note(res: Located, form: Any, name: str) -> Any:
    """A day form with the note the export carried (`day-note`, `until-note`), if any."""
    found = extensions(res.model, name)
    if form is None or not found or not found[0].valueString:
        return form
    if isinstance(form, int):
        form = {"between": [form, form]}
    return {**form, "note": found[0].valueString}


def base_event(res: Located, kind: str, day: Any) -> dict[str, Any]:
    if not res.id:
        raise fail(res, "a resource the import uses needs an id, so that the event can cite it")
    source, also = citations(res)
    day = with_note(res, day, "day-note")
    out: dict[str, Any] = {"id": event_id(res), "kind": kind, "day": day, "source": source}
    if also:
        out["also"] = also
    if tagged(res.model, "hypothetical"):
        out["hypothetical"] = True
    notes = [n.text for n in getattr(res.model, "note", None) or [] if n.text]
    if notes:
        out["note"] = "; ".join(notes)
    return out


def _fields_json(res: Located) -> Any:
    """The JSON of the `scenario-fields` extension, None when the resource has none."""
    found = extensions(res.model, "scenario-fields")
    if not found:
        return None
    try:
        return json.loads(found[0].valueString or "")
    except json.JSONDecodeError as exc:
        raise fail(res, f"extension scenario-fields is not JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise fail(res, "extension scenario-fields is JSON nested too deeply to read") from None


def extra_fields(res: Located, kind: str) -> dict[str, Any]:
    """Project fields the export carried in its `scenario-fields` extension."""
    data = _fields_json(res)
    if data is None:
        return {}
    allowed = EXTRA_FIELDS.get(kind, frozenset())
    if not isinstance(data, dict) or not set(data) <= allowed:
        raise fail(res, f"extension scenario-fields may hold only {', '.join(sorted(allowed)) or 'nothing'} "
                        f"for a {kind}")
    return data


def scenario_level(res: Located) -> dict[str, Any]:
    """The scenario's own fields the export carried on its Patient (`scenario-fields`), in the
    scenario file's shape and checked as a file's are; {} for a Patient without the extension, as
    every Patient from elsewhere is. Event ids the fields name are checked once the events are read."""
    data = _fields_json(res)
    if data is None:
        return {}
    if not isinstance(data, dict) or not set(data) <= set(SCENARIO_LEVEL):
        raise fail(res, f"extension scenario-fields may hold only {', '.join(SCENARIO_LEVEL)} for a Patient")
    for section, allowed in SCENARIO_LEVEL.items():
        part = data.get(section)
        if allowed is None or part is None:
            continue
        if not isinstance(part, dict) or not set(part) <= allowed:
            raise fail(res, f"extension scenario-fields: {section} may hold only {', '.join(sorted(allowed))}")
        for key, value in part.items():
            if not isinstance(value, str):
                raise fail(res, f"extension scenario-fields: {section}.{key} must be text")
    from pydantic import TypeAdapter, ValidationError  # built only for a Patient that has the extension

    from escalation.load.scenario import Expectation, ReportedInterval

    for key, shape in (("reported_intervals", list[ReportedInterval]), ("expected", dict[str, list[Expectation]])):
        if key in data:
            try:
                TypeAdapter(shape).validate_python(data[key])
            except ValidationError as exc:
                err = exc.errors()[0]
                located = err["type"] == "located"
                path = [key, *err["loc"], *(err["ctx"]["path"] if located else [])]
                msg = err["ctx"]["message"] if located else err["msg"].removeprefix("Value error, ")
                raise fail(res, f"extension scenario-fields: {'.'.join(map(str, path))}: {msg}") from None
    return data


# --- timing ----------------------------------------------------------------------------------


def point_day(res: Located, clock: Clock, when: Any, period: Any, element: str) -> Any:
    """The day of something that happened once: a dateTime, or a Period it lies within."""
    exported = _exported_timing(res, clock)
    if exported is not None:
        return exported[0]
    if when is not None:
        lo, hi = clock.days(when)  # type: ignore[misc]
        return day_form(lo, hi)
    if period is not None:
        check_period(res, clock, period, element)
        start, end = clock.days(period.start), clock.days(period.end)
        if start is None and end is None:
            return None
        return day_form(start[0] if start else None, end[1] if end else None)
    return None


def span_days(res: Located, clock: Clock, when: Any, period: Any, element: str) -> tuple[Any, Any]:
    """(day, until) of something that lasted: a Period's start and end, or a dateTime start."""
    exported = _exported_timing(res, clock)
    if exported is not None:
        return exported
    if when is not None:
        lo, hi = clock.days(when)  # type: ignore[misc]
        return day_form(lo, hi), None
    if period is None:
        return None, None
    check_period(res, clock, period, element)
    start, end = clock.days(period.start), clock.days(period.end)
    if start is None:
        return (day_form(None, end[1]) if end else None), (day_form(*end) if end else None)
    return day_form(*start), (day_form(*end) if end else None)


def check_period(res: Located, clock: Clock, period: Any, element: str) -> None:
    """A Period that ends before it starts is a contradiction (FHIR R4 invariant per-1: "If
    present, start SHALL have a lower value than end"). Two timestamps are compared as instants;
    otherwise the Period is reversed when the first day its start may fall on is after the last
    day its end may fall on (days on the calendar of day 0, as every day of the import)."""
    start = getattr(period, "start", None)
    end = getattr(period, "end", None)
    if start is None or end is None:
        return
    if isinstance(start, datetime) and isinstance(end, datetime):
        backwards = instant(start, clock) > instant(end, clock)
    else:
        backwards = clock.days(start)[0] > clock.days(end)[1]  # type: ignore[index]
    if backwards:
        raise Contradiction(f"{element} ends ({shown(end)}) before it starts ({shown(start)}), which FHIR's "
                            f"invariant per-1 forbids ({res.name})")


def instant(value: datetime, clock: Clock) -> datetime:
    """A timestamp as a point in time; one without a zone (which FHIR forbids) is read in the
    offset of day 0, as its day is (dates.py)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=clock.zone)


def _exported_timing(res: Located, clock: Clock) -> tuple[Any, Any] | None:
    """The export's `uncertain-timing` extension: the day (and until) as Periods they lie within."""
    found = extensions(res.model, "uncertain-timing")
    if not found:
        return None
    parts = {sub.url: sub.valuePeriod for sub in found[0].extension or []}
    if "day" not in parts:
        raise fail(res, "extension uncertain-timing needs a day")
    day, until = (_period_form(clock, parts[k]) if k in parts else None for k in ("day", "until"))
    return day, until


def _period_form(clock: Clock, period: Any) -> Any:
    start, end = clock.days(period.start), clock.days(period.end)
    return day_form(start[0] if start else None, end[1] if end else None)


# --- quantities ------------------------------------------------------------------------------


def unit_for(res: Located, quantity: Any, measure: str) -> str:
    """The vocabulary unit of a Quantity for a measure; an unknown unit is an error."""
    sys, code = quantity.system, quantity.code or quantity.unit
    if sys == C.UNIT_SYSTEM:
        unit = code
    elif sys in (None, C.UCUM) and code:
        unit = C.unit_of(code)
    else:
        unit = None
    if unit is None or unit not in accepted_units(measure):
        shown = code if code else "no unit"
        raise fail(res, f"unit {shown!r} ({sys or 'no system'}) cannot be converted for {measure}: "
                        f"the code table maps UCUM units onto {', '.join(accepted_units(measure))}")
    return unit


def reading(res: Located, measure: str, quantity: Any = None, rng: Any = None) -> dict[str, Any]:
    """A Quantity (with its comparator) or a Range as the scenario's reading, in its own unit."""
    if quantity is not None:
        if quantity.value is None:
            raise fail(res, f"a {measure} quantity without a value")
        out: dict[str, Any] = {"value": float(quantity.value), "unit": unit_for(res, quantity, measure)}
        if quantity.comparator == "ad":
            raise fail(res, "comparator 'ad' (sufficient to achieve) is not a reading")
        if quantity.comparator:
            out["comparator"] = quantity.comparator
        return out
    if rng.low is None or rng.high is None or rng.low.value is None or rng.high.value is None:
        raise fail(res, f"a {measure} range needs both low and high")
    unit = unit_for(res, rng.low, measure)
    if unit_for(res, rng.high, measure) != unit:
        raise fail(res, f"a {measure} range with two units")
    return {"min": float(rng.low.value), "max": float(rng.high.value), "unit": unit}


def reference_range(ranges: Any) -> dict[str, float] | None:
    """low/high as printed; the export writes a strict upper bound as text `below`."""
    if not ranges:
        return None
    r = ranges[0]
    high = float(r.high.value) if r.high is not None and r.high.value is not None else None
    if r.text == "below" and high is not None:
        return {"below": high}
    out = {k: float(q.value) for k, q in (("low", r.low), ("high", r.high)) if q is not None and q.value is not None}
    return out or None


def kind_of_code(code: str) -> CodeKind:
    return CODES[code].kind


def measure_is_derived(measure: str) -> bool:
    return MEASURES[measure].derived
