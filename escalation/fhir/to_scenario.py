"""FHIR R4 input to one validated scenario per patient, with a summary of what was not used.

Day 0 is chosen by a rule written into each scenario (`scenario.day_zero`, and the file's header)
and the summary; a Bundle this tool exported keeps the scenario's own words for day 0 in
`scenario.day_zero` while day 0 is its encounter tagged `day-zero`. The rules, in this order:
1. `--day-zero DATE`, or `--day-zero-encounter ID` for the patient whose encounter it is;
2. an Encounter the export tagged `day-zero`;
3. the start of the first inpatient encounter (Encounter.class IMP) whose reason or diagnosis
   is one of the rule set's diagnosis codes;
4. otherwise the start of the first inpatient encounter, then of the first encounter of any class.
"First" is by start, a plain date counting from 00:00 UTC of its date (dates.start_order), so
that dates and timestamps compare and no other start falls before day 0. An inpatient encounter
whose start cannot be day 0 (a partial date, none, cancelled) is passed over, and rules 3 and 4
name it and why: it may be the stay they look for.
A patient with none of these is skipped and counted; so is one the scenario format cannot hold
(no sex or birth date, or older than 18 at day 0). Days are whole calendar days from day 0, timestamps
read in the UTC offset of day 0 (see dates.py).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from escalation.fhir import codes as C
from escalation.fhir import records
from escalation.fhir.dates import Clock, clock_from, offset_label, parse_day_zero, span, start_order
from escalation.fhir.mapping import Unmapped, Yield, fail, most_specific, scenario_level
from escalation.fhir.reader import Located, read_paths
from escalation.load.errors import InputError
from escalation.load.scenario import Autoantibody, Diagnosis, Event, Scenario

NOTICE = ("RESEARCH REVIEW ONLY - not medical advice. An imported timeline is material for a "
          "research replay, not a clinical record.")
CLINICAL = frozenset(records.NOT_DONE)
DEFAULT_DIAGNOSES = ("JDM", "RP-ILD")
_EVENT = TypeAdapter(Event)
TAGGED = "the encounter the export tagged day-zero"  # the day-0 rule that keeps an export's day 0
_DIAGNOSIS = TypeAdapter(Diagnosis)
_AUTOANTIBODY = TypeAdapter(Autoantibody)
_SLUG = re.compile(r"[^a-z0-9_-]+")


class Options(BaseModel):
    """How an import chooses day 0 and treats unmapped codes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day_zero: str | None = Field(None, description="a date or timestamp for every patient")
    day_zero_encounters: tuple[str, ...] = Field((), description="Encounter ids, one per patient")
    diagnoses: tuple[str, ...] = Field(DEFAULT_DIAGNOSES, description="the rule set's diagnosis codes")
    strict: bool = False

    @model_validator(mode="after")
    def _one_day_zero_rule(self) -> "Options":
        """A day 0 for every patient beside encounters named for theirs: the first would win for
        every patient and the encounters go unused, so the two are refused together."""
        if self.day_zero is not None and self.day_zero_encounters:
            raise ValueError("give day_zero or day_zero_encounters, not both")
        return self


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnmappedCode(_Out):
    resource_type: str
    system: str | None
    code: str | None
    display: str | None
    count: int
    why: str | None = Field(description="the code table's reason, where it gives one")


class SkippedRecords(_Out):
    resource_type: str
    reason: str
    count: int


class NotedRecords(_Out):
    """Records imported, with something a reader of the scenario should know (a choice the record
    did not settle), counted by what."""

    resource_type: str
    note: str
    count: int


class PatientImport(_Out):
    patient: str
    scenario_id: str | None
    day_zero: str | None = Field(description="the calendar date of day 0")
    day_zero_rule: str | None
    events: int
    diagnoses: int
    skipped: str | None = Field(None, description="why no scenario was written for this patient")


class ImportSummary(_Out):
    notice: str = NOTICE
    inputs: list[str]
    resources: dict[str, int] = Field(description="resources read, by type")
    read_once: dict[str, int] = Field(default_factory=dict, description="identical copies of a resource "
                                      "given again (same type, id and content), read once: the copies, by type")
    not_read: dict[str, int] = Field(description="resources of types the import does not use, by type")
    patients: list[PatientImport]
    unmapped: list[UnmappedCode] = Field(description="codes that map to nothing, by type, system and code")
    unmapped_records: dict[str, int] = Field(
        {}, description="records left out because no code or value of theirs maps, by type: each record once, "
                        "however many of its codes are counted under unmapped")
    skipped: list[SkippedRecords]
    noted: list[NotedRecords] = Field([], description="records imported with a note, by type and note: a record "
                                      "with two notes is counted under each")
    noted_records: dict[str, int] = Field(
        {}, description="records imported with a note, by type: each record once, however many notes it has")


@dataclass(frozen=True)
class Imported:
    """Scenarios as file data (to write) and as models (to replay), with the summary."""

    scenarios: list[tuple[dict[str, Any], Scenario]]
    summary: ImportSummary
    origins: dict[str, str] = field(default_factory=dict)  # scenario id -> `Patient/id (file)`
    patients: dict[str, Located] = field(default_factory=dict)  # scenario id -> the Patient, for errors


def import_paths(paths: Sequence[Path], options: Options | None = None) -> Imported:
    """Read Bundle files and Bulk Data folders; one scenario per patient that can have one."""
    read = read_paths(paths)
    return import_resources(read.resources, [str(p) for p in paths], options or Options(), read.read_once)


def import_resources(resources: list[Located], inputs: list[str], options: Options,
                     read_once: dict[str, int] | None = None) -> Imported:
    index = _Index(resources)
    patients = [r for r in resources if r.type == "Patient"]
    by_patient = index.group(r for r in resources if r.type in CLINICAL or r.type == "Encounter")
    named = _named_encounters(options.day_zero_encounters, resources)
    _one_each(named, by_patient)
    options = options.model_copy(update={"day_zero_encounters": named})
    reports, scenarios, unmapped, skipped, noted, left_out = [], [], [], Counter(), Counter(), Counter()
    noted_records: dict[int, str] = {}
    ids: set[str] = set()
    origins: dict[str, str] = {}
    sources: dict[str, Located] = {}
    for patient in patients:
        report, built, missed = _one(patient, by_patient.get(patient.id or "", []), index, options, ids,
                                     _Tally(skipped, noted, left_out, noted_records))
        reports.append(report)
        unmapped += missed
        if built is not None:
            scenarios.append(built)
            origins[built[1].scenario.id] = _origin_of(patient)
            sources[built[1].scenario.id] = patient
    if options.strict and unmapped:
        u = unmapped[0]
        raise fail(u.resource, f"unmapped code {u.system or '(no system)'}|{u.code or u.display} "
                               f"(--strict){f': {u.why}' if u.why else ''}")
    summary = ImportSummary(
        inputs=inputs, resources=dict(sorted(Counter(r.type for r in resources if r.model is not None).items())),
        read_once=read_once or {},
        not_read=dict(sorted(Counter(r.type for r in resources if r.model is None).items())),
        patients=reports, unmapped=_count_unmapped(unmapped), unmapped_records=dict(sorted(left_out.items())),
        skipped=[SkippedRecords(resource_type=t, reason=why, count=n) for (t, why), n in sorted(skipped.items())],
        noted=[NotedRecords(resource_type=t, note=what, count=n) for (t, what), n in sorted(noted.items())],
        noted_records=dict(sorted(Counter(noted_records.values()).items())))
    return Imported(scenarios, summary, origins, sources)


def _count_unmapped(found: list[Unmapped]) -> list[UnmappedCode]:
    counts = Counter((u.resource_type, u.system, u.code, u.display, u.why) for u in found)
    return [UnmappedCode(resource_type=t, system=s, code=c, display=d, count=n, why=w)
            for (t, s, c, d, w), n in sorted(counts.items(), key=lambda kv: tuple(str(x) for x in kv[0]))]


# --- references ------------------------------------------------------------------------------


class _Index:
    """Resources by every name a reference may use: Type/id, an absolute URL, a urn:uuid fullUrl."""

    def __init__(self, resources: list[Located]) -> None:
        self.by_name: dict[str, Located] = {}
        for r in resources:
            if r.id:
                self.by_name.setdefault(f"{r.type}/{r.id}", r)
            for url in filter(None, (r.full_url, *r.aliases)):  # aliases: of identical copies read once
                self.by_name.setdefault(url, r)

    def resolve(self, holder: Located, ref: Any) -> Located | None:
        """The resource a Reference names: contained in `holder`, or anywhere in the input."""
        text = getattr(ref, "reference", None)
        if not text:
            return None
        if text.startswith("#"):
            return _contained(holder, text[1:])
        if text in self.by_name:
            return self.by_name[text]
        parts = [p for p in text.split("/_history/")[0].split("/") if p]
        return self.by_name.get("/".join(parts[-2:])) if len(parts) >= 2 else None

    def group(self, resources: Iterable[Located]) -> dict[str, list[Located]]:
        """Resources by the id of the Patient they are about; any other subject is an error."""
        out: dict[str, list[Located]] = {}
        for r in resources:
            subject = getattr(r.model, "subject", None)
            target = self.resolve(r, subject)
            if target is None or target.type != "Patient":
                named = getattr(subject, "reference", None)
                raise fail(r, f"refers to patient {named!r}, which is not in the input" if named
                           else "names no patient (subject)")
            out.setdefault(target.id or "", []).append(r)
        return out


def _contained(holder: Located, local: str) -> Located | None:
    for c in getattr(holder.model, "contained", None) or []:
        if getattr(c, "id", None) == local:
            return Located(c.get_resource_type(), local, c, holder.file, holder.line)
    return None


# --- one patient -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tally:
    """The summary's counts by resource type: records skipped (by reason), imported with a note
    (by note, and each record once), and left out because nothing in them maps."""

    skipped: Counter
    noted: Counter
    unmapped: Counter
    noted_records: dict[int, str]  # id() of each record imported with a note -> its type

    def note(self, record: Located, what: str) -> None:
        self.noted[(record.type, what)] += 1
        self.noted_records[id(record)] = record.type


def _one(patient: Located, resources: list[Located], index: _Index, options: Options, ids: set[str],
         tally: _Tally) -> tuple[PatientImport, tuple[dict[str, Any], Scenario] | None, list[Unmapped]]:
    name = patient.name
    carried = scenario_level(patient)  # {} unless this tool exported the Bundle
    encounters = [r for r in resources if r.type == "Encounter"]
    chosen = _day_zero(encounters, index, options)
    if isinstance(chosen, str):  # records counted under the reason without the encounters named: one line for all
        return _left(name, chosen, resources, tally.skipped, counted=chosen.split("; ")[0]), None, []
    clock, rule = chosen
    demographics = _demographics(patient, clock)
    if isinstance(demographics, str):
        return _left(name, demographics, resources, tally.skipped, clock, rule), None, []
    read = [(records.read(r, clock, index.resolve), r) for r in resources if r.type != "Encounter"]
    for y, r in read:
        if y.skipped and not y.used:
            tally.skipped[(r.type, y.skipped)] += 1
        elif y.unmapped and not y.used:
            tally.unmapped[r.type] += 1  # once, however many of its codes are unmapped (a BP panel has two)
    yields = [y for y, _ in read]
    missed = [u for y in yields for u in y.unmapped]
    events = _events(read, clock, tally)
    gave = [(y, r) for y, r in read if y.used]
    if not events:  # nothing is written: what the other records gave (a diagnosis) is skipped with the patient
        return _left(name, "no record maps to an event of the vocabulary", encounters + [r for _, r in gave],
                     tally.skipped, clock, rule), None, missed
    for y, r in gave:  # a note is on something imported: a record skipped or left out is counted there alone
        for what in dict.fromkeys(y.noted):
            tally.note(r, what)
    _check_event_ids(patient, carried, events)
    sid = _scenario_id(patient, ids)
    data = _scenario_data(sid, patient, rule, demographics, yields, events, carried)
    diagnosed = [(d, r) for y, r in read for d in y.diagnoses]
    tested = [(a, r) for y, r in read for a in y.autoantibodies]
    scenario = _validate(data, diagnosed, tested, patient)
    report = PatientImport(patient=name, scenario_id=sid, day_zero=clock.day_zero.isoformat(), day_zero_rule=rule,
                           events=len(events), diagnoses=len(data["patient"]["diagnoses"]))
    return report, (data, scenario), missed


def _left(name: str, why: str, resources: list[Located], skipped: Counter, clock: Clock | None = None,
          rule: str | None = None, counted: str | None = None) -> PatientImport:
    """A patient without a scenario: each of its records is counted as skipped, with the reason
    (`counted`, where the patient's own reason names its records)."""
    for r in resources:
        skipped[(r.type, f"its patient has no scenario ({counted or why})")] += 1
    return _not_written(name, why, clock, rule)


def _not_written(name: str, why: str, clock: Clock | None = None, rule: str | None = None) -> PatientImport:
    return PatientImport(patient=name, scenario_id=None, day_zero=clock.day_zero.isoformat() if clock else None,
                         day_zero_rule=rule, events=0, diagnoses=0, skipped=why)


_Timed = tuple[dict[str, Any], Located, datetime | None]  # an event, its record, the instant it starts


def _events(read: Iterable[tuple[Yield, Located]], clock: Clock, tally: _Tally) -> list[dict[str, Any]]:
    """Every event, each checked alone (so that an error names its resource); Observations charted at one instant as one event (_charted_together); in time
    order (_in_time_order); each id unique within the scenario (an id given again becomes `ID-2`,
    or the next suffix that no other event has)."""
    items: list[_Timed] = []
    charted: dict[tuple[datetime, ...], list[int]] = {}
    for y, r in read:
        if not y.events:
            continue
        for e in y.events:
            _check(_EVENT, "a scenario event", e, r, 1)
        key = records.charted_at(r, clock) if [e["kind"] for e in y.events] == ["observation"] else None
        if key is not None:
            charted.setdefault(key, []).append(len(items))
        at = records.start_instant(r, clock)
        items += [(e, r, at) for e in y.events]
    items = _charted_together(items, charted, tally)
    given = {e["id"] for e, _, _ in items}
    used: set[str] = set()
    tried: Counter[str] = Counter()  # the last suffix tried for each id given twice
    out = []
    for e, _ in _in_time_order(items):
        if e["id"] in used:  # the next `ID-N` that no event has, nor is given by another record
            base = e["id"]
            tried[base] = max(tried[base], 2)
            while f"{base}-{tried[base]}" in used or f"{base}-{tried[base]}" in given:
                tried[base] += 1
            e = {**e, "id": f"{base}-{tried[base]}"}
        used.add(e["id"])
        out.append(e)
    return out


def _charted_together(items: list[_Timed], charted: dict[tuple[datetime, ...], list[int]],
                      tally: _Tally) -> list[_Timed]:
    """Observations of one patient charted at the same instant become one observation event.

    A normal export writes one Observation per code (MAP, FiO2, PaO2, SpO2 each on its own),
    while the oxygenation indices (OI, P/F, S/F, OSI) are computed from the values of one
    observation event (derive/readings.py): read one event per resource, no index was ever
    computed, and the rules on them could not fire. Readings are charted together when their
    records' effectiveDateTime (or effectiveInstant) is the same instant after parsing, or their
    effectivePeriod has the same start and end, each a timestamp. An index needs simultaneous
    values: readings at different times of one day, or given as a date only (no time of day),
    are not put together (the derive stage's contract, one event's values taken together, is
    kept; only the import decides what one event holds).

    Only records whose measures differ are charted together; a measure given twice with the same
    reading is kept once and both records cited. A measure given twice with different values is
    a conflict the record does not settle (which PaO2 goes with the MAP?): none of the readings of
    that instant are put together, each stays its own event as before, and the summary notes it.
    Records this project's export wrote are left as they are: the export writes one resource per
    scenario event, readings taken together already as components (records.charted_at).

    The event cites every record (`source` the first by id, the others under `also`, each with
    the readings it gave); its id is made from the instant, so it does not depend on the input.
    """
    merged: dict[int, _Timed] = {}  # the first member's place -> the event charted together
    dropped: set[int] = set()
    for key, members in charted.items():
        if len(members) < 2:
            continue
        group = sorted(members, key=lambda i: (items[i][1].id or "", i))
        conflict = _conflict([items[i][0] for i in group])
        if conflict is not None:
            names = ", ".join(items[i][1].name for i in group)
            for i in group:
                tally.note(items[i][1], f"{conflict} at one instant ({_stamp(key[0])}): readings of that "
                                        f"instant not charted together, so no index is computed from them "
                                        f"({names})")
            continue
        event = _one_event(key, [(items[i][0], items[i][1]) for i in group])
        merged[min(members)] = (event, items[group[0]][1], key[0])
        dropped |= set(members)
    return [merged[i] if i in merged else item for i, item in enumerate(items) if i in merged or i not in dropped]


def _conflict(events: list[dict[str, Any]]) -> str | None:
    """`spo2 given twice with different values` where two events give one measure differently."""
    seen: dict[str, Any] = {}
    for e in events:
        for group in ("values", "reported"):
            for measure, reading in e.get(group, {}).items():
                if measure in seen and seen[measure] != reading:
                    return f"{measure} given twice with different values"
                seen[measure] = reading
    return None


def _one_event(key: tuple[datetime, ...], members: list[tuple[dict[str, Any], Located]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    reported: dict[str, Any] = {}
    cited = []
    for e, r in members:
        values.update(e.get("values", {}))
        reported.update(e.get("reported", {}))
        gave = [*e.get("values", {}), *e.get("reported", {})]
        cited.append({"fhir": r.name, "detail": f"the {' and '.join(gave)} reading{'s' if len(gave) > 1 else ''} "
                                                f"of this event, charted at the same instant"})
    notes = list(dict.fromkeys(e["note"] for e, _ in members if e.get("note")))
    event: dict[str, Any] = {"id": "observation-at-" + "--".join(_stamp(t) for t in key), "kind": "observation",
                             "day": members[0][0]["day"], "source": cited[0], "also": cited[1:]}
    if notes:
        event["note"] = "; ".join(notes)
    return {**event, **({"values": values} if values else {}), **({"reported": reported} if reported else {})}


def _stamp(t: datetime) -> str:
    """An instant in UTC, as the id of an event charted together and in the summary's notes."""
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _in_time_order(items: list[_Timed]) -> list[tuple[dict[str, Any], Located]]:
    """Events in the order the replay reads as time within a day: of two readings placed on one
    day, the one listed later is "the latest reading that day". Only days were kept before, so
    the order of the input decided which of an SpO2 at 06:00 and one at 18:00 counted.

    - Events whose record gives a timestamp are in the order of their instants; records at the
      same instant are in the order of resource type and id, so that the order of the input
      never matters for them.
    - Events whose record gives only a date (or a partial date, or the export's uncertain-timing)
      have no time of day: they keep their order in the input, as a scenario file's events do.
      Nothing in the record orders them, and for a Bundle this project exported the input order
      is the scenario's own order, which a round trip must keep (a scenario may list its events
      out of day order: the replay reads the order only among events placed on one day).
    - Each timed event comes after every date-only event that may fall on a day it may fall on
      or earlier: a date-only record's first day (a range of days, such as a partial date
      `2021-03`, may fall on any of its days; one with no lower bound, on any day) is compared
      with the timed event's last day (its own day, or the end of its Period; none: any day).
      So on a day with both, the date-only events come first, whatever the order of the input:
      a record's time, where it has one, places it within the day, and one without a time is not
      taken to be the latest. This is the project's choice; no source settles it. (The date-only
      events were once merged as if they were in day order, which they need not be: an SpO2
      dated day 5 listed before one dated day 2 let a timed SpO2 of day 2 come before the dated
      one, and the order of the input decided the latest reading of day 2.)
    """
    timed = sorted((i for i in items if i[2] is not None), key=lambda i: (i[2], i[1].type, i[1].id or ""))
    untimed = [i for i in items if i[2] is None]
    by_first = sorted(range(len(untimed)), key=lambda i: _first_day(untimed[i][0]))
    firsts = [_first_day(untimed[i][0]) for i in by_first]
    reach = list(accumulate((i + 1 for i in by_first), max, initial=0))  # reach[k]: past the last of the k earliest
    out: list[tuple[dict[str, Any], Located]] = []
    u = 0
    for e, r, _ in timed:  # instants in order, so their days too; max() keeps the timed events in order
        u_next = max(u, reach[bisect_right(firsts, _last_day(e))])
        out += [(ue, ur) for ue, ur, _ in untimed[u:u_next]]
        u = u_next
        out.append((e, r))
    return out + [(ue, ur) for ue, ur, _ in untimed[u:]]


NO_BOUND = 10**9  # beyond any day of a file (load.timing.MAX_DAYS)


def _first_day(event: dict[str, Any]) -> int:
    """The first day an event may start on (an event with no lower bound: before any day)."""
    day = event["day"]
    if isinstance(day, int):
        return day
    low = day["between"][0] if "between" in day else day.get("on_or_after")
    return low if low is not None else -NO_BOUND


def _last_day(event: dict[str, Any]) -> int:
    """The last day an event may start on (an event with no upper bound: after any day)."""
    day = event["day"]
    if isinstance(day, int):
        return day
    high = day["between"][1] if "between" in day else day.get("on_or_before")
    return high if high is not None else NO_BOUND


def _day_zero(encounters: list[Located], index: _Index, options: Options) -> tuple[Clock, str] | str:
    """Day 0 and the rule's words; or, where no rule gives one, why (naming each encounter passed over)."""
    if options.day_zero:
        try:
            return parse_day_zero(options.day_zero), f"--day-zero {options.day_zero}"
        except ValueError as exc:
            raise InputError("--day-zero", str(exc)) from None
    usable = sorted((e for e in encounters if _unusable(e) is None), key=lambda e: start_order(_start(e)))
    named = [e for e in usable if e.id in options.day_zero_encounters]
    if named:
        return _at(named[0], "--day-zero-encounter")
    tagged = [e for e in usable if any(t.system == C.TAG_SYSTEM and t.code == "day-zero"
                                       for t in (e.model.meta.tag if e.model.meta else None) or [])]
    if tagged:
        return _at(tagged[0], TAGGED)
    inpatient = [e for e in usable if _inpatient(e)]
    wanted = set(options.diagnoses)
    with_dx = [e for e in inpatient if _diagnoses(e, index) & wanted]
    # Inpatient encounters whose start cannot be day 0 (a partial date, none, cancelled): the rule
    # text names them, since one of them may be the stay the rule looks for.
    unusable = [e for e in encounters if _inpatient(e) and _unusable(e) is not None]
    if with_dx:
        passed = _passed_over([e for e in unusable if _diagnoses(e, index) & wanted])
        return _at(with_dx[0], f"the first inpatient encounter with a diagnosis of the rule set "
                               f"({', '.join(sorted(wanted))}){passed}")
    if inpatient:
        none = ("none whose start can be day 0 has" if any(_diagnoses(e, index) & wanted for e in unusable)
                else "none has")
        return _at(inpatient[0], f"the first inpatient encounter ({none} a diagnosis of the rule set: "
                                 f"{', '.join(sorted(wanted))}){_passed_over(unusable)}")
    if usable:
        if unusable:
            return _at(usable[0], f"the first encounter (no inpatient encounter whose start can be day 0"
                                  f"{_passed_over(unusable)})")
        return _at(usable[0], "the first encounter (no inpatient encounter)")
    if encounters:  # each passed over: one of them may be the stay a rule looks for
        return (f"no encounter whose start can be day 0, and no day 0 given (`import fhir --day-zero` gives one)"
                f"{_passed_over([e for e in encounters if _unusable(e) is not None])}")
    return "no encounter with a start date to set day 0, and no day 0 given (`import fhir --day-zero` gives one)"


def _inpatient(e: Located) -> bool:
    cls = e.model.class_fhir
    return cls is not None and C.inpatient(cls.system, cls.code)


PASSED_OVER_SHOWN = 3  # inpatient encounters a day-0 rule names as passed over; the rest are counted


def _passed_over(encounters: list[Located]) -> str:
    """`; inpatient Encounter/e2 passed over: its start 2021-03 is not a full date`, for the rule text
    (or for why no rule gives day 0, where an encounter passed over need not be inpatient)."""
    if not encounters:
        return ""
    named = [f"{'inpatient ' if _inpatient(e) else ''}{e.name} passed over: {_unusable(e)}"
             for e in encounters[:PASSED_OVER_SHOWN]]
    more = len(encounters) - PASSED_OVER_SHOWN
    kind = "inpatient encounters" if all(_inpatient(e) for e in encounters) else "encounters"
    return "; " + "; ".join(named) + (f"; and {more} more {kind} passed over" if more > 0 else "")


def _named_encounters(given: Sequence[str], resources: list[Located]) -> tuple[str, ...]:
    """The ids `--day-zero-encounter` names, each given as ID or as Encounter/ID (the way messages
    name a resource). An id that names no Encounter of the input, or one whose start cannot be
    day 0, is an error: day 0 would fall to the next rule, and every day of the timeline shift."""
    encounters = {r.id: r for r in resources if r.type == "Encounter" and r.id}
    out = []
    for text in given:
        rid = text.removeprefix("Encounter/")
        e = encounters.get(rid)
        if e is None:
            like = sorted(f"Encounter/{i}" for i in encounters if i.lower() == rid.lower())
            hint = (f"ids are case-sensitive; {' and '.join(like)} {'is' if len(like) == 1 else 'are'} in it"
                    if like else "give an Encounter's id: ID or Encounter/ID")
            raise InputError("--day-zero-encounter", f"{text!r} names no Encounter of the input ({hint})")
        why = _unusable(e)
        if why is not None:
            raise InputError("--day-zero-encounter", f"{e.name} cannot set day 0: {why}")
        out.append(rid)
    return tuple(out)


def _one_each(named: tuple[str, ...], by_patient: dict[str, list[Located]]) -> None:
    """At most one `--day-zero-encounter` per patient: of two, the earlier would set day 0 without
    a word about the other, which the user named for a reason."""
    for patient, found in by_patient.items():
        mine = [e.name for e in found if e.type == "Encounter" and e.id in named]
        if len(mine) > 1:
            raise InputError("--day-zero-encounter", f"{' and '.join(mine)} are encounters of the same patient, "
                             f"Patient/{patient}: name one per patient")


def _unusable(e: Located) -> str | None:
    """Why an encounter's start cannot be day 0, or None when it can."""
    if e.model.status in ("cancelled", "entered-in-error"):
        return f"its status is {e.model.status}"
    period = e.model.period
    if period is None or period.start is None:
        return "it has no start (period.start)"
    if _start(e) is None:
        return f"its start {period.start} is not a full date"
    return None


def _start(e: Located) -> Any:
    """A full date or timestamp where the encounter started; a partial date cannot be day 0."""
    period = e.model.period
    start = period.start if period is not None else None
    return start if clock_from(start) is not None else None


def _at(e: Located, why: str) -> tuple[Clock, str]:
    clock = clock_from(_start(e))
    assert clock is not None
    return clock, f"start of {e.name} ({clock.day_zero.isoformat()}, days counted in {offset_label(clock.zone)}): {why}"


def _diagnoses(e: Located, index: _Index) -> set[str]:
    """The project diagnosis codes an encounter gives as its reason (reasonCode), or as the
    Conditions it names that the import takes as diagnoses: a Condition it skips (refuted or not
    confirmed, no date, an onset after its recordedDate) is no reason for day 0 either. A
    Condition is read as it would be were this encounter day 0: in the UTC offset of its start
    (UTC for a date, or for an encounter whose start cannot be day 0), the only part of day 0 that
    can change whether its dates contradict each other."""
    found = {dx for c in e.model.reasonCode or [] if (dx := most_specific(c, C.diagnosis_of)) is not None}
    clock = clock_from(_start(e)) or Clock(date(2000, 1, 1), timezone.utc)
    for ref in list(e.model.reasonReference or []) + [d.condition for d in e.model.diagnosis or []]:
        target = index.resolve(e, ref)
        if target is not None and target.type == "Condition":
            found |= {d["code"] for d in records.read(target, clock, index.resolve).diagnoses}
    return found


# --- demographics and assembly ---------------------------------------------------------------


def _demographics(patient: Located, clock: Clock) -> dict[str, Any] | str:
    """Sex and age at day 0, or why the scenario format cannot hold this patient."""
    m = patient.model
    if m.gender not in ("female", "male"):
        return f"gender {m.gender or 'not given'}: the scenario format records female or male"
    birth = span(m.birthDate, clock.zone)
    if birth is None:
        return "no birth date, so no age at day 0"
    age = _age(birth.last, clock.day_zero)
    if not 0 <= age <= 18:
        return f"aged {age:g} at day 0: the scenario format covers ages 0-18"
    note = None if birth.first == birth.last else (f"birth date given as {m.birthDate}: "
                                                   "age is the youngest it can be")
    return {"age_years": age, "sex": m.gender, **({"note": note} if note else {})}


def _age(born: date, day_zero: date) -> float:
    return round((day_zero - born).days / 365.25, 2)


def _scenario_id(patient: Located, ids: set[str]) -> str:
    given = next((i.value for i in patient.model.identifier or [] if i.system == C.SCENARIO_ID and i.value), None)
    base = given or "fhir-" + (_SLUG.sub("-", (patient.id or "patient").lower()).strip("-") or "patient")
    sid, n = base, 1
    while sid in ids:
        n += 1
        sid = f"{base}-{n}"
    ids.add(sid)
    return sid


def _check_event_ids(patient: Located, carried: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """Each event a carried reported interval names is among the events read for the patient."""
    ids = {e["id"] for e in events}
    for i, iv in enumerate(carried.get("reported_intervals", [])):
        for end in ("start", "end"):
            if iv[end] not in ids:
                raise fail(patient, f"extension scenario-fields: reported_intervals.{i}.{end} names event "
                                    f"{iv[end]!r}, which no resource of this patient gives (event ids come "
                                    "from the identifiers of system .../NamingSystem/event-id)")


def _scenario_data(sid: str, patient: Located, rule: str, demographics: dict[str, Any], yields: list[Yield],
                   events: list[dict[str, Any]], carried: dict[str, Any]) -> dict[str, Any]:
    """The scenario file's data. A Bundle this tool exported carries the scenario's own fields
    (`scenario-fields` on the Patient): its title, description, notes, reported intervals and
    expectations come back as they were, and so do the words for its day 0 while day 0 is the one
    exported (the file header and the summary say how the import found it)."""
    source = {"fhir": f"Patient/{patient.id}"}
    hypothetical = any(t.system == C.TAG_SYSTEM and t.code == "hypothetical"
                       for t in (patient.model.meta.tag if patient.model.meta else None) or [])
    info: dict[str, Any] = {"id": sid, "title": f"Imported from FHIR R4: {_origin_of(patient)}",
                            "day_zero": rule, "source": source}
    given = carried.get("scenario", {})
    info.update({k: given[k] for k in ("title", "description") if k in given})
    if "day_zero" in given and rule.endswith(TAGGED):  # the exported day 0 is still day 0: its words hold
        info["day_zero"] = given["day_zero"]
    if hypothetical:
        info["hypothetical"] = True
    notes = [n for n in (demographics.get("note"), carried.get("patient", {}).get("note")) if n]
    return {
        "scenario": info,
        "patient": {**demographics, **({"note": "; ".join(notes)} if notes else {}), "source": source,
                    "diagnoses": [d for y in yields for d in y.diagnoses],
                    "autoantibodies": [a for y in yields for a in y.autoantibodies]},
        "events": events,
        **{k: carried[k] for k in ("reported_intervals", "expected") if k in carried},
    }


def _origin_of(patient: Located) -> str:
    """Where an imported scenario came from, as its file's header says it."""
    return f"Patient/{patient.id} ({patient.file})"


def _check(adapter: TypeAdapter, what: str, entry: dict[str, Any], res: Located, skip: int) -> None:
    """One event or diagnosis checked alone, so that an error names the resource it came from
    (not the Patient, as a check of the whole scenario would)."""
    try:
        adapter.validate_python(entry)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = list(err["loc"][skip:]) + (list(err["ctx"]["path"]) if err["type"] == "located" else [])
        msg = err["ctx"]["message"] if err["type"] == "located" else err["msg"].removeprefix("Value error, ")
        where = ".".join(str(p) for p in path)
        raise fail(res, f"cannot be {what}: {where + ': ' if where else ''}{msg}") from None


def _validate(data: dict[str, Any], diagnosed: list[tuple[dict[str, Any], Located]],
              tested: list[tuple[dict[str, Any], Located]], patient: Located) -> Scenario:
    """Each diagnosis and antibody result checked alone first (each event was, as it was read:
    _events), so that an error names its Condition or Observation; then the whole."""
    for entry, res in diagnosed:
        _check(_DIAGNOSIS, "a diagnosis", entry, res, 0)
    for entry, res in tested:
        _check(_AUTOANTIBODY, "an autoantibody result", entry, res, 0)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = list(err["loc"]) + (list(err["ctx"]["path"]) if err["type"] == "located" else [])
        msg = err["ctx"]["message"] if err["type"] == "located" else err["msg"]
        raise fail(patient, f"the imported scenario is not valid: {'.'.join(map(str, path))}: {msg}") from None


# --- entry points for loading a Bundle as a scenario --------------------------------------------


def rule_diagnoses(rulesets: Iterable[Any]) -> tuple[str, ...]:
    """The diagnosis codes rule sets test (`diagnosis: CODE`): what the day-0 rule looks for."""
    return tuple(sorted({code for rs in rulesets for code in rs.diagnosis_codes()})) or DEFAULT_DIAGNOSES


def one_scenario(path: Path, options: Options | None = None) -> Scenario:
    """The scenario of a Bundle that holds one patient, imported in memory (`replay`, `test`)."""
    imported = import_paths([path], options)
    if len(imported.summary.patients) != 1 or len(imported.scenarios) != 1:
        why = "; ".join(f"{p.patient}: {p.skipped}" for p in imported.summary.patients if p.skipped)
        several = len(imported.summary.patients) > 1
        hint = ("replay takes one patient's Bundle (so do test, sweep and the others, and batch when it finds "
                "one in a folder; named on its own, batch imports it): `escalation "
                f"import fhir {path} --out DIR` writes one scenario file per patient, to name instead"
                if several else "replay takes a Bundle that gives one")
        raise InputError(str(path), f"holds {len(imported.summary.patients)} patient(s) and gives "
                         f"{len(imported.scenarios)} scenario(s); {hint}{f' ({why})' if why else ''}")
    return imported.scenarios[0][1].with_fhir_import(in_memory_note(imported.summary))


def in_memory_note(summary: ImportSummary) -> str:
    """What a replay of a Bundle says of its import, since no scenario file or summary is written:
    day 0 and why, and how many records the scenario leaves out (`import fhir` lists each).
    Records are counted once each; unmapped codes, of which one record may have several (a blood
    pressure panel's two components), are counted apart."""
    patient = summary.patients[0]
    codes = sum(u.count for u in summary.unmapped)
    left = [f"{n} {what}" for n, what in (
        (sum(summary.unmapped_records.values()),
         f"with no code or value that maps ({codes} unmapped code{'s' if codes != 1 else ''} in all)"),
        (sum(s.count for s in summary.skipped), "skipped"),
        (sum(summary.not_read.values()), "of resource types the import does not read")) if n]
    out = f"imported in memory from FHIR R4; day 0 is {patient.day_zero}, the {patient.day_zero_rule}"
    copies = sum(summary.read_once.values())
    if copies:
        out += f"; read once: {copies} duplicate resource{'s' if copies > 1 else ''}"
    noted = sum(summary.noted_records.values())  # records, each once (summary.noted counts each note)
    with_note = f"; {noted} record{'s' if noted != 1 else ''} imported with a note" if noted else ""
    # Unmapped codes in records otherwise imported (a panel with one unmapped component): counted
    # here unless the records left out already count all codes ("N unmapped codes in all").
    unmapped = (f"; {codes} unmapped code{'s' if codes != 1 else ''} in records otherwise imported"
                if codes and not summary.unmapped_records else "")
    if not left:
        return out + "; no record left out" + unmapped + with_note + (
            " (`escalation import fhir` lists each)" if noted or codes else "")
    return (out + f"; records left out: {', '.join(left)}{unmapped}{with_note} (`escalation import fhir` or `check` "
            "lists each)")
