"""The cross-source check: a row of Table 1 against a timeline of the same patient.

The last row of Table 1 is the present case, whose course the repository also encodes as a
timeline (scenarios/index_case.yaml) from the text. Two encodings of one patient from two parts
of one report should agree; comparing them value by value finds where the table and the text
differ (AST and ALT swapped, an interval the text does not support), which matters because the
rules are replayed against the timeline. Only values both sources give are compared.

RESEARCH REVIEW ONLY - not medical advice.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from escalation.literature.outputs import Output, fmt_number
from escalation.literature.records import (
    ABSENT,
    CT_FINDINGS,
    DAYS_PER_MONTH,
    MONTHS_PER_UNIT,
    NO_DATA,
    PRESENT,
    TREATMENTS,
    Record,
    Table1,
    records_name,
    timeline_files,
)
from escalation.load.loading import load_scenario
from escalation.load.scenario import Scenario
from escalation.match.results import NOTICE

CheckVerdict = Literal["agrees", "disagrees", "unclear"]


class Comparison(Output):
    item: str
    table1: str
    timeline: str
    verdict: CheckVerdict
    note: str
    timeline_events: list[str] = []


class PairCheck(Output):
    record: str
    timeline_file: str
    results: list[Comparison]
    problems: list[Comparison] = Field(description="every comparison that does not simply agree")
    not_compared: list[str] = Field(description="Table 1 values the timeline has no counterpart for")


class CohortCheck(Output):
    notice: str = NOTICE
    pairs: list[PairCheck]
    records_file: str


LAB_LABELS = {"ast": "AST", "alt": "ALT", "ldh": "LDH", "ck": "CK", "aldolase": "aldolase", "kl6": "KL-6"}


def check(table: Table1, records_file: Path | str | None = None) -> CohortCheck:
    """Every row that links a timeline (the present case: scenarios/index_case.yaml), compared.

    Timelines are read next to the records file read (None: the shipped table) and named next to
    the records' printed name, so the output names the repository files whatever copy was read.
    """
    pairs = []
    for r in table.records:
        files = timeline_files(records_file, r)
        if files is not None:
            pairs.append(check_pair(r, load_scenario(files[0]), files[1]))
    return CohortCheck(pairs=pairs, records_file=records_name(records_file))


def check_pair(record: Record, scenario: Scenario, timeline_file: str) -> PairCheck:
    """Compare every value a Table 1 row and a timeline of the same patient both give."""
    labs0 = _admission_readings(scenario)
    out = [
        *_demographics(record, scenario), *_labs(record, labs0), *_antibody(record, scenario, labs0),
        *_support(record, scenario), *_treatments(record, scenario), *_outcome(record, scenario),
        *_mri(record, scenario), *_presentation(record, scenario), *_chest_ct(record, scenario),
        *_interval_diagnosis(record, scenario), *_interval_onset(record, scenario), *_symptoms(record, scenario),
    ]
    not_compared = [f"race ({record.race}): the timeline has no ethnicity"]
    problems = [c for c in out if c.verdict != "agrees"]
    return PairCheck(record=record.id, timeline_file=timeline_file, results=out, problems=problems,
                     not_compared=not_compared)


# --- Helpers ---------------------------------------------------------------------------------------


def _cmp(item: str, table1: str, timeline: str, verdict: CheckVerdict, note: str,
         events: Iterable[str] = ()) -> Comparison:
    return Comparison(item=item, table1=table1, timeline=timeline, verdict=verdict, note=note,
                      timeline_events=list(events))


def _day0(ev: Any) -> bool:
    return ev.day.earliest == 0 and ev.day.latest == 0


def _day_label(ev: Any) -> str:
    d = ev.day
    if d.earliest == d.latest:
        return f"day {d.earliest}"
    lo = "..." if d.earliest is None else str(d.earliest)
    hi = "..." if d.latest is None else str(d.latest)
    return f"days {lo} to {hi}"


def _present(flag: bool) -> str:
    return PRESENT if flag else ABSENT


def _admission_readings(scenario: Scenario) -> dict[str, tuple[Any, str]]:
    """The first day-0 reading of each value, with its event: what Table 1's blood tests describe."""
    labs0: dict[str, tuple[Any, str]] = {}
    for ev in scenario.events:
        if ev.kind == "observation" and _day0(ev):
            for name, reading in ev.values.items():
                labs0.setdefault(name, (reading, ev.id))
    return labs0


# --- Patient, blood tests, antibody --------------------------------------------------------------------


def _demographics(record: Record, scenario: Scenario) -> list[Comparison]:
    p = scenario.patient
    sex = {"M": "male", "F": "female"}[record.sex]
    return [
        _cmp("age (years)", fmt_number(record.age), fmt_number(p.age_years),
             "agrees" if record.age == p.age_years else "disagrees", "patient.age_years"),
        _cmp("sex", record.sex, p.sex, "agrees" if sex == p.sex else "disagrees", "patient.sex"),
    ]


def _labs(record: Record, labs0: dict[str, tuple[Any, str]]) -> list[Comparison]:
    """Each number of the blood-test cell against the admission reading; a disagreement is checked for a swap."""
    out = []
    for name, label in LAB_LABELS.items():
        t = getattr(record.labs, name)
        if name not in labs0 or not isinstance(t, float):
            continue
        reading, eid = labs0[name]
        tl = reading.exact
        verdict: CheckVerdict = "agrees" if tl is not None and abs(tl - t) < 1e-9 else "disagrees"
        note = f"Table 1 blood-test cell {record.labs.printed!r} against the admission (day 0) reading"
        if verdict == "disagrees":
            note += _swap_note(record, labs0, name, t, tl)
        out.append(_cmp(label, fmt_number(t), reading.label(), verdict, note, [eid]))
    return out


def _swap_note(record: Record, labs0: dict[str, tuple[Any, str]], name: str, t: float, tl: float | None) -> str:
    """Say so when AST and ALT hold each other's values: a swap, not two wrong numbers."""
    swap = {"ast": "alt", "alt": "ast"}.get(name)
    if swap and swap in labs0 and labs0[swap][0].exact == t and getattr(record.labs, swap) == tl:
        return ("; AST and ALT look swapped: Table 1 prints AST/ALT as "
                f"{fmt_number(record.labs.ast)}/{fmt_number(record.labs.alt)}, the text gives AST "
                f"{fmt_number(labs0['ast'][0].exact)} and ALT {fmt_number(labs0['alt'][0].exact)}")
    return ""


def _antibody(record: Record, scenario: Scenario, labs0: dict[str, tuple[Any, str]]) -> list[Comparison]:
    ab = record.autoantibody
    if ab.antibody != "anti-MDA5" or "anti_mda5" not in labs0:
        return []
    reading, eid = labs0["anti_mda5"]
    pos = any(a.name == "anti-MDA5" and a.result == "positive" for a in scenario.patient.autoantibodies)
    t = ab.titre
    same = (t is not None and t.status == "given" and reading.value == t.value
            and reading.comparator == t.comparator and pos)
    return [_cmp("anti-MDA5 antibody and titre", ab.cell, f"positive; {reading.label()}",
                 "agrees" if same else "disagrees",
                 "Table 1 prints the titre without a unit; the text gives it as an index", [eid])]


# --- Support, treatments, outcome --------------------------------------------------------------------


def _support(record: Record, scenario: Scenario) -> list[Comparison]:
    """O2, CMV and ECMO, where Table 1 prints '+' or '—', against the timeline's support events."""
    support = {ev.code: ev for ev in scenario.events if ev.kind == "support"}
    oxy = [c for c in ("nasal_cannula", "oxygen_mask") if c in support]
    out = []
    for item, t, codes, note in (
        ("O2", record.o2, oxy, "oxygen by nasal cannula or mask in the timeline"),
        ("CMV (ventilation)", record.cmv, ["invasive_ventilation"] if "invasive_ventilation" in support else [],
         "the timeline records invasive ventilation; the text gives settings but not the ventilator mode, "
         "so 'continuous mandatory' itself cannot be confirmed"),
        ("ECMO", record.ecmo, ["VV-ECMO"] if "VV-ECMO" in support else [], "VV-ECMO in the timeline"),
    ):
        if t in (PRESENT, ABSENT):
            tl = _present(bool(codes))
            out.append(_cmp(item, t, tl + (f" ({', '.join(codes)})" if codes else ""),
                            "agrees" if tl == t else "disagrees", note, [support[c].id for c in codes]))
    return out


def _treatments(record: Record, scenario: Scenario) -> list[Comparison]:
    """The set of Table 1 treatment codes against the codes the timeline gives, with their first dates."""
    if record.treatments == NO_DATA:
        return []
    given: dict[str, Any] = {}
    for ev in scenario.events:
        if ev.kind in ("therapy", "procedure"):
            given.setdefault(ev.code, ev)  # the first event of each code
    t_set = set(record.treatment_codes)
    tl_set = {c for c in given if c in TREATMENTS}
    extra = sorted(c for c in given if c not in TREATMENTS)
    only_t, only_tl = sorted(t_set - tl_set), sorted(tl_set - t_set)
    note = "same codes" if not (only_t or only_tl) else (
        (f"only in Table 1: {', '.join(only_t)}; " if only_t else "")
        + (f"only in the timeline: {', '.join(only_tl)}" if only_tl else "")).rstrip("; ")
    if extra:
        note += f"; the timeline also has {', '.join(extra)}, which is not a Table 1 treatment code"
    note += "; first dated in the timeline: " + ", ".join(f"{c} {_day_label(given[c])}" for c in sorted(tl_set))
    return [_cmp("treatments", ", ".join(record.treatment_codes), ", ".join(sorted(tl_set)),
                 "agrees" if not (only_t or only_tl) else "disagrees", note, [given[c].id for c in sorted(tl_set)])]


def _outcome(record: Record, scenario: Scenario) -> list[Comparison]:
    outcomes = [ev for ev in scenario.events if ev.kind == "outcome"]
    if not outcomes:
        return []
    st = outcomes[-1].status
    want = "alive" if record.outcome == "Alive" else "dead"
    return [_cmp("outcome", f"{record.outcome} (time to death {record.time_to_death.printed})", st,
                 "agrees" if st == want else "disagrees", "last outcome event of the timeline", [outcomes[-1].id])]


# --- Imaging and presentation ------------------------------------------------------------------------


def _mri(record: Record, scenario: Scenario) -> list[Comparison]:
    mri = [ev for ev in scenario.events if ev.kind == "imaging" and ev.modality == "MRI" and "femoral" in ev.region]
    if not mri or record.mri_myositis not in (PRESENT, ABSENT):
        return []
    found = any("myositis" in f for ev in mri for f in ev.findings)
    return [_cmp("myositis on femoral MRI", record.mri_myositis, "; ".join(f for ev in mri for f in ev.findings),
                 "agrees" if _present(found) == record.mri_myositis else "disagrees",
                 "femoral MRI findings in the timeline", [ev.id for ev in mri])]


def _presentation(record: Record, scenario: Scenario) -> list[Comparison]:
    respiratory = [ev for ev in scenario.events if ev.kind == "finding" and ev.code == "symptom_onset_respiratory"]
    pres = record.presentation.strip()
    if pres in (NO_DATA,) or not respiratory:
        return []
    return [_cmp("clinical presentation of RP-ILD", pres, "symptom_onset_respiratory (dry cough and dyspnoea)",
                 "agrees" if pres != ABSENT else "disagrees", "respiratory symptoms before the transfer",
                 [ev.id for ev in respiratory])]


def _chest_ct(record: Record, scenario: Scenario) -> list[Comparison]:
    """Each CT code of Table 1 looked for in the words of the timeline's chest CT findings."""
    ct = [ev for ev in scenario.events if ev.kind == "imaging" and ev.modality in ("CT", "HRCT")
          and ev.region == "chest"]
    if not ct or record.chest_ct == NO_DATA:
        return []
    out = []
    for code in record.chest_ct:
        hits, verdict, note = _ct_code(code, ct)
        shown = "; ".join(f"{_day_label(ev)}: {', '.join(ev.findings)}" for ev in hits) or "not mentioned"
        out.append(_cmp(f"chest CT: {code}", code, shown, verdict, note, [ev.id for ev in hits]))
    return out


def _ct_code(code: str, ct: list[Any]) -> tuple[list[Any], CheckVerdict, str]:
    """The CT events that mention a code's finding, the verdict, and what limits it."""
    def where(words: str) -> list[Any]:
        return [ev for ev in ct if any(words in f for f in ev.findings)]

    if code == "GGO":
        hits = where("ground-glass")
        return hits, "agrees" if hits else "unclear", "ground-glass opacities in the timeline's CT findings"
    if code == "TB":
        hits = where("traction bronchiectasis")
        note = "traction bronchiectasis in the timeline's CT findings"
        if hits and all((ev.day.earliest or 0) > 0 for ev in hits):
            note += (f", but only after admission ({', '.join(_day_label(ev) for ev in hits)}); "
                     "Table 1 does not say which CT it describes")
        return hits, "agrees" if hits else "unclear", note
    if code == "CABB":
        hits = where("consolidation")
        return hits, "unclear", ("the text reports consolidation but not that it lay around the bronchovascular "
                                 "bundles" if hits else "no consolidation in the timeline's CT findings")
    return [], "unclear", f"{CT_FINDINGS[code]} is listed only in Table 1; the text never mentions it"


# --- Intervals and symptoms ----------------------------------------------------------------------------


def _interval_diagnosis(record: Record, scenario: Scenario) -> list[Comparison]:
    """Table 1's interval must fall between the earliest and latest days the timeline allows."""
    jdm = next((d for d in scenario.patient.diagnoses if d.code == "JDM"), None)
    transfer = next((ev for ev in scenario.events if ev.kind == "milestone" and ev.code == "transfer"), None)
    iv = record.interval_diagnosis_to_ild
    if jdm is None or transfer is None or not iv.known or jdm.day.latest is None:
        return []
    lo = (transfer.day.earliest or 0) - jdm.day.latest
    hi = None if jdm.day.earliest is None else (transfer.day.latest or 0) - jdm.day.earliest
    tl = f"{lo} to {hi} days from the JDM diagnosis to the transfer with the RP-ILD diagnosis"
    inside = (iv.value or 0) * MONTHS_PER_UNIT[iv.unit or "day"] * DAYS_PER_MONTH
    verdict: CheckVerdict = "agrees" if lo <= inside <= (hi if hi is not None else inside) else "unclear"
    return [_cmp("interval from JDM diagnosis to ILD diagnosis", iv.printed, tl, verdict,
                 "the text has the RP-ILD diagnosis made at the transfer, at least 6 days after the JDM diagnosis; "
                 "Table 1's interval fits only if ILD was already diagnosed together with JDM at the previous "
                 "hospital, which the text does not say" if verdict != "agrees" else "diagnosis days in the timeline",
                 [transfer.id])]


def _interval_onset(record: Record, scenario: Scenario) -> list[Comparison]:
    """An onset the timeline itself dates from Table 1 cannot confirm Table 1."""
    onset = next((ev for ev in scenario.events if ev.kind == "finding" and ev.code == "symptom_onset_skin_muscle"),
                 None)
    io = record.interval_onset_to_ild
    if onset is None or not io.known:
        return []
    from_table = onset.source.section == "Table 1"
    return [_cmp("interval from JDM onset to ILD diagnosis", io.printed, f"onset on {_day_label(onset)}",
                 "unclear" if from_table else "agrees",
                 "the timeline dates the onset from Table 1 itself, so it is no independent check; the text says "
                 "only 'a few months' before admission, which does not contradict 3 months" if from_table
                 else "onset event of the timeline", [onset.id])]


def _symptoms(record: Record, scenario: Scenario) -> list[Comparison]:
    """Three printed values under four headings: the text can suggest a reading but never confirm one."""
    evs = scenario.events
    fever = [ev for ev in evs if ev.kind == "observation" and "temperature" in ev.values]
    rash = [ev for ev in evs if ev.kind == "finding" and ev.code == "malar_rash"]
    weak = [ev for ev in evs if ev.kind == "finding" and ev.code == "symptom_onset_skin_muscle"]
    if not (fever or rash or weak):
        return []
    temps = "; ".join(f"{ev.values['temperature'].label()} on {_day_label(ev)}" for ev in fever)
    return [_cmp("clinical symptoms of JDM", " ".join(record.symptoms_printed) + " (three values under four headings)",
                 f"temperature {temps or 'not recorded'} (the text calls it a low-grade fever); malar rash "
                 f"{'recorded' if rash else 'not recorded'}; muscle weakness {'recorded' if weak else 'not recorded'}; "
                 "arthralgia not mentioned",
                 "unclear",
                 "the printed values fit the text only if they are fever, rash and arthralgia (with the muscle "
                 "weakness column lost); Table 1 cannot be read as saying which symptoms they are",
                 [ev.id for ev in (*fever, *rash, *weak)])]
