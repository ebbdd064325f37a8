"""The literature cohort: Table 1 of the report as validated records, and what can be read from it.

Table 1 of Nishi et al. 2022 lists 18 published cases of JDM with RP-ILD. The records live in
`scenarios/literature/table1.yaml`, one per row, with each cell kept as printed: "+" (present),
"—" (absent) and "ND" (no data) stay distinct, and a cell that the copy of the table does not let
us read is `unreadable` with a reason in the record. Three pure functions work on the records:

- `summary`: every figure the report's summary paragraph states about the 18 cases, recomputed
  from the records, each with a verdict (agrees, disagrees, cannot be checked from the table);
- `check`: the last row of the table against the index-case timeline (the same patient),
  value by value;
- `placement`: the highest step of the report's escalation pathway each case reached, against
  its outcome, and a replay of every case that has a timeline.

Everything here is research material about a publication. RESEARCH REVIEW ONLY - not medical
advice.
"""

from __future__ import annotations

import os
import re
import statistics
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from escalation.load.citations import REPORT_REFERENCES, Citation
from escalation.load.errors import InputError, located_error
from escalation.load.loading import load_ruleset, load_scenario, read_yaml, validate
from escalation.load.scenario import Scenario
from escalation.match.results import NOTICE

DEFAULT_RECORDS = "scenarios/literature/table1.yaml"
DEFAULT_RULES = "rules/report-pathway.yaml"

DAYS_PER_WEEK = 7.0
DAYS_PER_MONTH = 365.25 / 12  # 30.4375, the convention of scenarios/index_case.yaml
CONVERSIONS = (
    f"intervals in months: 1 week = {DAYS_PER_WEEK:g} days, 1 month = 365.25/12 = "
    f"{DAYS_PER_MONTH:g} days"
)

# --- Cell values ---------------------------------------------------------------------------------

PRESENT, ABSENT, NO_DATA, UNREADABLE = "+", "—", "ND", "unreadable"
NOT_AVAILABLE = "NA"  # printed in some cells, not defined by the table's legend; kept apart from ND


def _presence(v: Any) -> Any:
    if v in (PRESENT, ABSENT, NO_DATA, UNREADABLE):
        return v
    raise ValueError(
        f"{v!r} is not a presence value: use '+' (present), '—' (absent, an em dash) or "
        f"'ND' (no data); 'unreadable' with a reason under `unreadable`"
    )


def _printed_presence(v: Any) -> Any:
    if v in (PRESENT, ABSENT, NO_DATA):
        return v
    raise ValueError(f"{v!r} is not a presence value: use '+' (present), '—' (absent, an em dash) or 'ND' (no data)")


Presence = Annotated[str, BeforeValidator(_presence)]
PrintedPresence = Annotated[str, BeforeValidator(_printed_presence)]

PRESENCE_FIELDS = ("fever", "rash", "arthralgia", "muscle_weakness", "mri_myositis", "o2", "cmv", "ecmo")

# Treatment codes exactly as Table 1 prints them (its legend, plus mPSL, which the cells use).
TREATMENTS: dict[str, str] = {
    "PSL": "prednisolone",
    "MPT": "methylprednisolone pulse therapy",
    "mPSL": "methylprednisolone (printed in the cells, not defined by the legend)",
    "IVCY": "intravenous cyclophosphamide",
    "CPM": "cyclophosphamide",
    "CyA": "cyclosporine A",
    "AZP": "azathioprine",
    "Tac": "tacrolimus",
    "MMF": "mycophenolate mofetil",
    "MTX": "methotrexate",
    "IVIG": "intravenous immunoglobulin",
    "PE": "plasma exchange",
    "RTX": "rituximab",
}

# Chest CT codes as the cells print them (the legend spells CABB as "CABG").
CT_FINDINGS: dict[str, str] = {
    "CABB": "consolidation around bronchovascular bundles",
    "GGO": "ground-glass opacity",
    "SCS": "subpleural curvilinear shadow",
    "TB": "traction bronchiectasis",
    "Pleural effusion": "pleural effusion",
}

_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_UNITS = {"day": DAYS_PER_MONTH ** -1, "days": DAYS_PER_MONTH ** -1,
          "week": DAYS_PER_WEEK / DAYS_PER_MONTH, "weeks": DAYS_PER_WEEK / DAYS_PER_MONTH,
          "month": 1.0, "months": 1.0}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Span(_Strict):
    """A span of time as printed: '5 weeks', '2 day', '< 4 months', or 'ND'."""

    printed: str
    value: float | None = None
    unit: str | None = None
    comparator: Literal["=", "<"] = "="

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        if isinstance(data, bool) or not isinstance(data, str):
            raise ValueError(f"{data!r} is not a span: write it as printed, e.g. '5 weeks', '2 day' or 'ND'")
        text = data.strip()
        if text == NO_DATA:
            return {"printed": text}
        m = re.fullmatch(rf"(<\s*)?({_NUMBER})\s+({'|'.join(_UNITS)})", text)
        if not m:
            raise ValueError(f"{data!r} is not a span: a number and day(s), week(s) or month(s), "
                             "optionally after '<', or 'ND'")
        return {"printed": text, "value": _number(m.group(2)), "unit": m.group(3),
                "comparator": "<" if m.group(1) else "="}

    @property
    def known(self) -> bool:
        return self.value is not None

    @property
    def months(self) -> float | None:
        return None if self.value is None else self.value * _UNITS[self.unit or "months"]


class TimeToDeath(_Strict):
    """The last column: a span for a patient who died, '—' for a survivor."""

    printed: str
    span: Span | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        if data == ABSENT:
            return {"printed": data}
        return {"printed": data, "span": Span.model_validate(data)}


LAB_NAMES = ("ast", "alt", "ldh", "ck", "aldolase", "kl6")
LabValue = Union[float, Literal["ND", "NA"]]


class Labs(_Strict):
    """The blood-test cell AST/ALT/LDH/CK/ALD/KL-6: six values, each a number, 'ND' or 'NA'."""

    printed: str
    ast: LabValue
    alt: LabValue
    ldh: LabValue
    ck: LabValue
    aldolase: LabValue
    kl6: LabValue

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        if not isinstance(data, str):
            raise ValueError(f"{data!r}: write the blood-test cell as printed, e.g. '240/318/3545/437/NA/NA'")
        parts = [p.strip() for p in data.split("/")]
        if len(parts) != len(LAB_NAMES):
            raise ValueError(f"{data!r} has {len(parts)} values; the cell holds six: AST/ALT/LDH/CK/ALD/KL-6")
        out: dict[str, Any] = {"printed": data}
        for name, part in zip(LAB_NAMES, parts):
            if part in (NO_DATA, NOT_AVAILABLE):
                out[name] = part
            elif re.fullmatch(_NUMBER, part):
                out[name] = _number(part)
            else:
                raise ValueError(f"{name} {part!r} in {data!r} is not a number, 'ND' or 'NA'")
        return out


class Titre(_Strict):
    value: float | None = None
    comparator: Literal["=", ">"] = "="
    status: Literal["given", "ND", "NA", "not printed"]


class Autoantibody(_Strict):
    """The autoantibody cell (its column has no header in the copy): antibody and titre, or ND.

    Written as the cell's text, or as `{cell: TEXT, mark: a}` when a footnote mark is printed.
    """

    cell: str
    mark: Literal["a", "b"] | None = None
    antibody: Literal["anti-MDA5", "anti-Jo-1", "ND"]
    titre: Titre | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"cell": data}
        if not isinstance(data, dict) or "cell" not in data or "antibody" in data:
            return data
        text = str(data["cell"]).strip()
        out = dict(data)
        if text == NO_DATA:
            out["antibody"] = NO_DATA
            return out
        m = re.fullmatch(r"(Anti-MDA5|Anti-Jo-1)(?:\s*\((.+)\))?", text)
        if not m:
            raise ValueError(f"{text!r}: expected 'ND', or Anti-MDA5 or Anti-Jo-1 with an optional titre in brackets")
        out["antibody"] = m.group(1).replace("Anti", "anti")
        inner = (m.group(2) or "").strip()
        if not inner:
            out["titre"] = {"status": "not printed"}
        elif inner in (NO_DATA, NOT_AVAILABLE):
            out["titre"] = {"status": inner}
        else:
            t = re.fullmatch(rf"(>\s*)?({_NUMBER})", inner)
            if not t:
                raise ValueError(f"titre {inner!r} is not a number, '> number', 'ND' or 'NA'")
            out["titre"] = {"status": "given", "value": _number(t.group(2)), "comparator": ">" if t.group(1) else "="}
        return out


class Reference(_Strict):
    """The reference cell as printed: 'Tosun et al. [9]', or 'Present case'."""

    printed: str
    authors: str
    numbers: list[int]

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        if not isinstance(data, str) or not data.strip():
            raise ValueError("the reference must be the cell as printed, e.g. 'Tosun et al. [9]'")
        text = data.strip()
        if text == "Present case":
            return {"printed": text, "authors": text, "numbers": []}
        m = re.fullmatch(r"(.+?)\s*\[([\d,\s]+)\]", text)
        if not m:
            raise ValueError(f"{text!r}: expected authors and reference numbers, e.g. 'Tosun et al. [9]'")
        numbers = [int(x) for x in m.group(2).replace(" ", "").split(",") if x]
        bad = [n for n in numbers if n not in REPORT_REFERENCES]
        if bad:
            raise ValueError(f"the report has references 1-26, not {bad}")
        return {"printed": text, "authors": m.group(1), "numbers": numbers}


class Unreadable(_Strict):
    fields: list[str] = Field(min_length=1)
    why: str = Field(min_length=10)


class Group(_Strict):
    position: int = Field(ge=1)
    size: int = Field(ge=2)


def _treatments(v: Any) -> Any:
    if v == NO_DATA:
        return v
    if not isinstance(v, list) or not v:
        raise ValueError("treatments are a list of codes as printed, or 'ND'")
    for code in v:
        if code not in TREATMENTS:
            raise ValueError(f"unknown treatment code {code!r}; known (as Table 1 prints them): "
                             f"{', '.join(TREATMENTS)}")
    if len(set(v)) != len(v):
        raise ValueError("a treatment code is listed twice")
    return v


def _ct(v: Any) -> Any:
    if v == NO_DATA:
        return v
    if not isinstance(v, list) or not v:
        raise ValueError("chest CT findings are a list of codes as printed, or 'ND'")
    for code in v:
        if code not in CT_FINDINGS:
            raise ValueError(f"unknown chest CT code {code!r}; known: {', '.join(CT_FINDINGS)}")
    return v


class Record(_Strict):
    """One row of Table 1 (both parts)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    row: int = Field(ge=1)
    reference: Reference
    group: Group | None = Field(None, description="position in a group of rows under one reference label")
    source: Citation
    timeline: str | None = Field(None, description="a scenario file of the same patient, relative to this file")
    age: float
    sex: Literal["M", "F"]
    race: str = Field(min_length=1, description="ethnicity, race or country as printed")
    symptoms_printed: list[PrintedPresence] = Field(
        min_length=3, max_length=3, description="the three symptom values the copy prints, in order")
    fever: Presence
    rash: Presence
    arthralgia: Presence
    muscle_weakness: Presence
    interval_onset_to_ild: Span = Field(description="onset of JDM to diagnosis of ILD")
    interval_diagnosis_to_ild: Span = Field(description="diagnosis of JDM to diagnosis of ILD")
    presentation: str = Field(min_length=1, description="clinical presentation of RP-ILD, as printed")
    labs: Labs
    autoantibody: Autoantibody
    chest_ct: Annotated[Union[list[str], str], BeforeValidator(_ct)]
    mri_myositis: Presence
    o2: Presence
    cmv: Presence = Field(description="continuous mandatory ventilation (the table's legend)")
    ecmo: Presence
    treatments: Annotated[Union[list[str], str], BeforeValidator(_treatments)]
    outcome: Literal["Death", "Alive"]
    time_to_death: TimeToDeath
    unreadable: list[Unreadable] = Field(default_factory=list)
    note: str | None = None

    @field_validator("age", mode="before")
    @classmethod
    def _age(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"age {v!r} is not a number of years")
        if not 0 <= v <= 18:
            raise ValueError(f"age {v:g} is outside 0 to 18 years (juvenile dermatomyositis)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Record":
        named: dict[str, int] = {}
        for i, entry in enumerate(self.unreadable):
            for name in entry.fields:
                if name not in PRESENCE_FIELDS:
                    raise located_error(f"{name!r} cannot be marked unreadable; fields that can: "
                                        f"{', '.join(PRESENCE_FIELDS)}", ("unreadable", i, "fields"))
                if getattr(self, name) != UNREADABLE:
                    raise located_error(f"{name!r} is listed as unreadable but holds {getattr(self, name)!r}",
                                        ("unreadable", i, "fields"))
                named[name] = i
        for name in PRESENCE_FIELDS:
            if getattr(self, name) == UNREADABLE and name not in named:
                raise located_error(f"{name} is 'unreadable': say why under `unreadable`", (name,))
        if self.outcome == "Alive" and self.time_to_death.span is not None:
            raise located_error("a survivor has no time to death: print it as '—'", ("time_to_death",))
        if self.outcome == "Death" and self.time_to_death.span is None:
            raise located_error("a death needs a time to death (or 'ND'), not '—'", ("time_to_death",))
        return self

    @property
    def treatment_codes(self) -> list[str]:
        return [] if self.treatments == NO_DATA else list(self.treatments)


class Range(_Strict):
    low: float
    high: float
    unit: str


class Footnote(_Strict):
    """A footnote of the table, and the rows it concerns."""

    mark: Literal["a", "b"]
    cell: Literal["autoantibody"]
    marked_on: list[str] = Field(min_length=1, description="records whose cell carries the mark")
    concerns: list[str] = Field(min_length=1, description="records the footnote's text is about")
    anti_mda5_positive: int = Field(ge=0)
    not_tested: int = Field(0, ge=0)
    anti_mda5_range: Range
    reading: str
    ambiguity: str | None = None
    source: Citation

    @model_validator(mode="after")
    def _counts(self) -> "Footnote":
        if self.anti_mda5_positive + self.not_tested > len(self.concerns):
            raise located_error("more patients counted than the footnote concerns", ("anti_mda5_positive",))
        return self


class Table1(_Strict):
    """The whole file: the footnotes and the rows."""

    footnotes: list[Footnote] = Field(default_factory=list)
    records: list[Record] = Field(min_length=1)

    @model_validator(mode="after")
    def _links(self) -> "Table1":
        ids: dict[str, int] = {}
        rows: set[int] = set()
        for i, r in enumerate(self.records):
            if r.id in ids:
                raise located_error(f"duplicate record id {r.id!r}", ("records", i, "id"))
            if r.row in rows:
                raise located_error(f"duplicate row number {r.row}", ("records", i, "row"))
            ids[r.id] = i
            rows.add(r.row)
        marks = {f.mark: f for f in self.footnotes}
        for j, f in enumerate(self.footnotes):
            for key in ("marked_on", "concerns"):
                for k, rid in enumerate(getattr(f, key)):
                    if rid not in ids:
                        raise located_error(f"footnote {f.mark} names unknown record {rid!r}", ("footnotes", j, key, k))
            for k, rid in enumerate(f.marked_on):
                if self.records[ids[rid]].autoantibody.mark != f.mark:
                    raise located_error(f"record {rid!r} does not carry mark {f.mark}",
                                        ("footnotes", j, "marked_on", k))
        for i, r in enumerate(self.records):
            m = r.autoantibody.mark
            if m is not None and (m not in marks or r.id not in marks[m].marked_on):
                raise located_error(f"mark {m} on record {r.id!r} is not among the footnotes' marked_on",
                                    ("records", i, "autoantibody"))
        return self

    def footnote(self, mark: str) -> Footnote | None:
        return next((f for f in self.footnotes if f.mark == mark), None)


# --- Loading ---------------------------------------------------------------------------------------


def default_path(relative: str) -> Path:
    """A shipped file: from the working directory, else from the source checkout."""
    here = Path(relative)
    if here.exists():
        return here
    return Path(__file__).resolve().parents[1] / relative


def load_records(path: Path | str | None = None) -> Table1:
    """Read and validate a records file; errors name the file, line, record and field."""
    path = Path(path) if path is not None else default_path(DEFAULT_RECORDS)
    data, lines = read_yaml(path)
    try:
        table = validate(Table1, data, lines, str(path))
    except InputError as exc:
        raise _name_record(exc, data) from None
    for i, r in enumerate(table.records):
        if r.timeline is not None and not (path.parent / r.timeline).is_file():
            raise InputError(str(path), f"record {r.id!r}, field timeline: no file {r.timeline}",
                             line=lines.get(("records", i, "timeline")), where=f"records[{i}].timeline")
    return table


def _name_record(exc: InputError, data: Any) -> InputError:
    """Put the record's id and the field into a validation message about one record."""
    m = re.match(r"records\[(\d+)\](?:\.(.+))?$", exc.where or "")
    if not m or not isinstance(data, dict) or not isinstance(data.get("records"), list):
        return exc
    i = int(m.group(1))
    raw = data["records"][i] if i < len(data["records"]) else None
    rid = raw.get("id") if isinstance(raw, dict) else None
    who = f"record {rid!r}" if rid else f"record {i + 1} of the file (no id)"
    field = m.group(2)
    message = exc.message
    if field and not message.startswith(("missing field", "unknown field")):
        message = f"field {field}: {message}"
    return InputError(exc.file, f"{who}, {message}" if field else f"{who}: {message}",
                      line=exc.line, where=exc.where)


def timeline_path(records_file: Path | str, record: Record) -> Path | None:
    if record.timeline is None:
        return None
    return Path(os.path.normpath(Path(records_file).parent / record.timeline))


# --- Output models -----------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Verdict = Literal["agrees", "disagrees", "cannot be checked"]


class Figure(_Out):
    """One figure of the summary paragraph beside the value the records give."""

    id: str
    statement: str = Field(description="what the report states, in our words")
    stated: str
    computed: str | None
    verdict: Verdict
    basis: str = Field(description="how the value was computed, or why it cannot be")
    records: list[str] = Field(description="ids of the records counted")


class CohortSummary(_Out):
    notice: str = NOTICE
    records_file: str
    results: list[Figure]
    units: str = CONVERSIONS


CheckVerdict = Literal["agrees", "disagrees", "unclear"]


class Comparison(_Out):
    item: str
    table1: str
    timeline: str
    verdict: CheckVerdict
    note: str
    timeline_events: list[str] = Field(default_factory=list)


class PairCheck(_Out):
    record: str
    timeline_file: str
    results: list[Comparison]
    problems: list[Comparison] = Field(description="every comparison that does not simply agree")
    not_compared: list[str] = Field(description="Table 1 values the timeline has no counterpart for")


class CohortCheck(_Out):
    notice: str = NOTICE
    pairs: list[PairCheck]
    records_file: str


class DecisionPointBrief(_Out):
    rule_id: str
    step: int | None
    day: int
    day_latest: int


class ReplayBrief(_Out):
    possible: bool
    why: str
    timeline_file: str | None = None
    ruleset: str | None = None
    decision_points: list[DecisionPointBrief] = Field(default_factory=list)
    steps_flagged: list[int] = Field(default_factory=list)
    against_table: str | None = Field(None, description="steps flagged by the replay beside the steps Table 1 reaches")


class CasePlacement(_Out):
    record: str
    row: int
    reference: str
    treatments: list[str] | str
    ecmo: str
    steps_reached: dict[str, list[str]] = Field(description="step -> what put the case there")
    highest_step: int | None
    may_be_higher: bool = Field(description="ECMO or treatments are 'ND', so a higher step cannot be ruled out")
    outcome: str
    time_to_death: str
    replay: ReplayBrief


class StepRow(_Out):
    step: str
    highest: int = Field(description="cases whose highest step this is")
    highest_deaths: int
    highest_may_be_higher: int
    received: int = Field(description="cases that received something of this step at any time")
    received_deaths: int


class CohortPlacement(_Out):
    notice: str = NOTICE
    placements: list[CasePlacement]
    records_file: str
    rules_file: str
    step_map: dict[str, int]
    steps_table: list[StepRow]


# --- Summary -------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _months(x: float) -> str:
    return f"{_fmt(x)} month" + ("" if _fmt(x) == "1" else "s")


def _ids(records: list[Record]) -> list[str]:
    return [r.id for r in records]


def _count_figure(fid: str, statement: str, stated: int, hits: list[Record], basis: str) -> Figure:
    n = len(hits)
    return Figure(id=fid, statement=statement, stated=str(stated), computed=str(n),
                  verdict="agrees" if n == stated else "disagrees", basis=basis, records=_ids(hits))


def _span_figures(key: str, label: str, records: list[Record], median_stated: float,
                  range_stated: tuple[float, float]) -> list[Figure]:
    known = [r for r in records if getattr(r, key).known]
    months = [getattr(r, key).months for r in known]
    converted = [f"{getattr(r, key).printed} = {_fmt(getattr(r, key).months)} months ({r.id})"
                 for r in known if getattr(r, key).unit not in ("month", "months")]
    basis = (f"{len(known)} of {len(records)} records give it ({len(records) - len(known)} ND); "
             + ("converted: " + "; ".join(converted) + "; " if converted else "") + CONVERSIONS)
    out = []
    if not months:
        return [Figure(id=f"{label}-{part}", statement=f"{part} of the interval", stated=stated, computed=None,
                       verdict="cannot be checked", basis="no record gives this interval", records=[])
                for part, stated in (("median", _months(median_stated)),
                                     ("range", f"{_fmt(range_stated[0])}–{_months(range_stated[1])}"))]
    med = statistics.median(months)
    lo, hi = min(months), max(months)
    out.append(Figure(
        id=f"{label}-median",
        statement=(f"median interval between {'the onset' if 'onset' in key else 'the diagnosis'} of JDM "
                   "and the diagnosis of ILD"),
        stated=_months(median_stated), computed=_months(med),
        verdict="agrees" if abs(med - median_stated) < 0.05 else "disagrees", basis=basis, records=_ids(known)))
    same = abs(lo - range_stated[0]) < 0.05 and abs(hi - range_stated[1]) < 0.05
    out.append(Figure(
        id=f"{label}-range",
        statement="range of that interval",
        stated=f"{_fmt(range_stated[0])}–{_months(range_stated[1])}", computed=f"{_fmt(lo)}–{_months(hi)}",
        verdict="agrees" if same else "disagrees", basis=basis, records=_ids(known)))
    return out


ASIAN = frozenset({"Japanese", "Chinese"})
NOT_COUNTED_ASIAN = frozenset({"Turkish", "Italy"})
RESPIRATORY_WORDS = frozenset({"cough", "dyspnea", "mild dyspnea"})


def _antibody_status(table: Table1) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Per record: anti-MDA5, anti-Jo-1, none reported, or 'see footnote'; and footnote groups."""
    status: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for f in table.footnotes:
        if f.not_tested or f.anti_mda5_positive < len(f.concerns):
            groups[f.mark] = list(f.concerns)
    grouped = {rid for ids in groups.values() for rid in ids}
    for r in table.records:
        if r.id in grouped:
            status[r.id] = "footnote"
        else:
            status[r.id] = r.autoantibody.antibody
    return status, groups


def summary(table: Table1, records_file: str = DEFAULT_RECORDS) -> CohortSummary:
    """Every figure of the summary paragraph (Discussion) recomputed from the records.

    Counts follow the cells: "+" counts as present, "—" as absent, "ND" as no data. A figure that
    rests on an unreadable column, or on something the table does not record, cannot be checked.
    """
    rs = list(table.records)
    figs: list[Figure] = []
    figs.append(_count_figure("patients", "patients reviewed", 18, rs, "one record per row of Table 1"))
    figs.append(_count_figure("men", "men", 6, [r for r in rs if r.sex == "M"], "records with sex M"))
    figs.append(_count_figure("women", "women", 12, [r for r in rs if r.sex == "F"], "records with sex F"))

    ages = [r.age for r in rs]
    age_note = ("from the 'Age' column, which does not say at what point the age was taken; the text "
                "calls it the age at disease onset")
    med = statistics.median(ages)
    figs.append(Figure(id="age-median", statement="median age at disease onset (years)", stated="6.5",
                       computed=_fmt(med), verdict="agrees" if med == 6.5 else "disagrees",
                       basis=f"median of {len(ages)} ages; {age_note}", records=_ids(rs)))
    youngest = [r.id for r in rs if r.age == min(ages)]
    rng = f"{_fmt(min(ages))}–{_fmt(max(ages))}"
    figs.append(Figure(id="age-range", statement="age range (years)", stated="2–16", computed=rng,
                       verdict="agrees" if rng == "2–16" else "disagrees",
                       basis=f"youngest: {', '.join(youngest)}; {age_note}", records=_ids(rs)))

    asian = [r for r in rs if r.race in ASIAN]
    others = sorted({r.race for r in rs if r.race not in ASIAN})
    unknown = [x for x in others if x not in NOT_COUNTED_ASIAN]
    if unknown:
        figs.append(Figure(id="asians", statement="Asian patients", stated="16", computed=None,
                           verdict="cannot be checked",
                           basis=f"no classification for race(s) {', '.join(unknown)}", records=[]))
    else:
        figs.append(_count_figure(
            "asians", "Asian patients", 16, asian,
            f"races printed Japanese or Chinese; not counted: {', '.join(others)} (the text's 16 "
            "implies the Turkish patient was not counted as Asian; 'Italy' is printed as a country)"))
    figs.append(_count_figure("japanese", "Japanese patients", 14, [r for r in rs if r.race == "Japanese"],
                              "race printed Japanese"))

    # Muscle weakness: the column is unreadable in every record that has it unreadable.
    unreadable_mw = [r for r in rs if r.muscle_weakness == UNREADABLE]
    cols = []
    for k in range(3):
        vals = [r.symptoms_printed[k] for r in rs]
        cols.append(f"printed column {k + 1}: {vals.count(PRESENT)} '+', {vals.count(ABSENT)} '—', "
                    f"{vals.count(NO_DATA)} 'ND'")
    mw_why = (f"the muscle weakness column is unreadable in {len(unreadable_mw)} of {len(rs)} records "
              "(three symptom values printed under four headings); no printed column matches the "
              "stated 11/4/3 either (" + "; ".join(cols) + ")")
    for fid, statement, stated, value in (
        ("muscle-weakness", "patients with apparent muscle weakness", "11", PRESENT),
        ("amyopathic", "patients classed as clinically amyopathic JDM", "4", ABSENT),
        ("muscle-weakness-no-data", "patients without data on muscle weakness", "3", NO_DATA),
    ):
        if unreadable_mw:
            basis = mw_why
            if fid == "amyopathic":
                basis += "; Table 1 also has no amyopathic classification, which the text derives from muscle weakness"
            figs.append(Figure(id=fid, statement=statement, stated=stated, computed=None,
                               verdict="cannot be checked", basis=basis, records=[]))
        else:
            hits = [r for r in rs if r.muscle_weakness == value]
            figs.append(_count_figure(fid, statement, int(stated), hits, f"muscle weakness '{value}'"))

    figs += _span_figures("interval_onset_to_ild", "interval-onset", rs, 3, (1, 8))
    figs += _span_figures("interval_diagnosis_to_ild", "interval-diagnosis", rs, 1, (0, 7))

    symptomatic, silent, nd = [], [], []
    for r in rs:
        p = r.presentation.strip()
        if p == ABSENT:
            silent.append(r)
        elif p == NO_DATA:
            nd.append(r)
        else:
            symptomatic.append(r)
    figs.append(_count_figure("respiratory-symptoms", "patients with respiratory symptoms when ILD was diagnosed",
                              11, symptomatic, f"clinical presentation names cough and/or dyspnea; "
                              f"{len(nd)} records are ND and not counted"))
    figs.append(_count_figure("asymptomatic", "patients without respiratory symptoms when ILD was diagnosed",
                              3, silent, "clinical presentation printed '—'"))

    status, groups = _antibody_status(table)
    mda5_cells = [r for r in rs if status[r.id] == "anti-MDA5"]
    jo1 = [r for r in rs if status[r.id] == "anti-Jo-1"]
    none_cells = [r for r in rs if status[r.id] == NO_DATA]
    foot_pos = sum(table.footnote(m).anti_mda5_positive for m in groups)  # type: ignore[union-attr]
    foot_nt = sum(table.footnote(m).not_tested for m in groups)  # type: ignore[union-attr]
    foot_ids = [rid for m in groups for rid in groups[m]]
    grouped_cells_nd = all(next(r for r in rs if r.id == rid).autoantibody.antibody == NO_DATA for rid in foot_ids)
    n_mda5 = len(mda5_cells) + foot_pos
    figs.append(Figure(
        id="anti-mda5", statement="patients positive for anti-MDA5", stated="12", computed=str(n_mda5),
        verdict="agrees" if n_mda5 == 12 else "disagrees",
        basis=(f"{len(mda5_cells)} cells name anti-MDA5"
               + (f", plus {foot_pos} of the {len(foot_ids)} patients footnote "
                  f"{'/'.join(groups)} covers, whose cells read ND (which ones is not said)" if groups else "")),
        records=_ids(mda5_cells) + foot_ids))
    figs.append(_count_figure("anti-jo1", "patients positive for anti-Jo-1", 1, jo1, "cells naming anti-Jo-1"))
    n_none = len(none_cells) + foot_nt
    figs.append(Figure(
        id="not-tested", statement="patients not tested for these antibodies", stated="5", computed=str(n_none),
        verdict="agrees" if n_none == 5 else "disagrees",
        basis=(f"{len(none_cells)} antibody cells read ND (the legend's 'no data', which the text reads as not "
               f"tested)" + (f", plus {foot_nt} untested patient(s) from footnote {'/'.join(groups)}" if groups else "")
               + ("" if grouped_cells_nd else "; some footnote rows name an antibody in their cell")),
        records=_ids(none_cells) + foot_ids))

    ecmo = [r for r in rs if r.ecmo == PRESENT]
    ecmo_nd = [r for r in rs if r.ecmo == NO_DATA]
    present = [r for r in rs if r.reference.printed == "Present case"]
    fig = _count_figure("ecmo", "patients who needed ECMO, the present case among them", 2, ecmo,
                        f"ECMO '+'; {len(ecmo_nd)} records are ND, so further uses cannot be excluded")
    if fig.verdict == "agrees" and not any(r.ecmo == PRESENT for r in present):
        fig = fig.model_copy(update={"verdict": "disagrees",
                                     "basis": fig.basis + "; the present case is not among them"})
    figs.append(fig)

    dead = [r for r in rs if r.outcome == "Death"]
    alive = [r for r in rs if r.outcome == "Alive"]
    figs.append(_count_figure("deaths", "patients who died", 12, dead, "outcome Death"))
    if not dead:
        figs.append(Figure(id="deaths-treated", statement="", stated="", computed=None,
                           verdict="cannot be checked", basis="no deaths", records=[]))
    else:
        key = {"MPT", "CyA", "IVCY"}
        treated = [r for r in dead if key & set(r.treatment_codes)]
        untreated_known = [r for r in dead if r.treatments != NO_DATA and not key & set(r.treatment_codes)]
        nd_treat = [r for r in dead if r.treatments == NO_DATA]
        if untreated_known:
            verdict: Verdict = "disagrees"
        elif nd_treat:
            verdict = "cannot be checked"
        else:
            verdict = "agrees"
        figs.append(Figure(
            id="deaths-treated", statement="every patient who died had received MPT, CyA and/or IVCY",
            stated=f"all {len(dead)}", computed=f"{len(treated)} of {len(dead)}", verdict=verdict,
            basis=(f"{len(treated)} deaths list MPT, CyA or IVCY; treatments are ND for {len(nd_treat)}"
                   + (f" ({', '.join(_ids(nd_treat))})" if nd_treat else "")
                   + (f"; none of the three for {', '.join(_ids(untreated_known))}" if untreated_known else "")),
            records=_ids(treated)))
        limit = 4.0
        exact, bounded, unknown_t, within, beyond = [], [], [], [], []
        for r in dead:
            sp = r.time_to_death.span
            if sp is None or sp.months is None:
                unknown_t.append(r)
            elif sp.comparator == "<":
                bounded.append((r, sp))
                (within if sp.months <= limit else unknown_t).append(r)
            else:
                exact.append((r, sp))
                (within if sp.months <= limit else beyond).append(r)
        shown = "; ".join(
            f"{r.id} {s.printed}" + ("" if s.unit in ("month", "months") else f" = {_fmt(s.months)} months")
            for r, s in exact + bounded)
        longest = max((s.months for _, s in exact), default=None)
        verdict = "disagrees" if beyond else ("cannot be checked" if unknown_t else "agrees")
        computed = f"{len(within)} of {len(dead)} within 4 months"
        if longest is not None:
            computed += f" (longest exact time {_months(longest)}"
            computed += f"; {len(bounded)} given only as a bound)" if bounded else ")"
        figs.append(Figure(
            id="death-within-4-months", statement="every death came within 4 months of ILD onset",
            stated="all within 4 months", computed=computed, verdict=verdict,
            basis=(f"{shown}; a bound such as '< 4 months' meets the statement by itself"
                   + (f"; no usable time for {', '.join(_ids(unknown_t))}" if unknown_t else "")
                   + f"; {CONVERSIONS}"),
            records=_ids(within)))

    figs.append(_count_figure("survivors", "survivors", 6, alive, "outcome Alive"))
    no_vent = [r for r in alive if r.cmv == ABSENT]
    vent_nd = [r for r in alive if r.cmv == NO_DATA]
    vent = [r for r in alive if r.cmv == PRESENT]
    vent_note = ("the table's ventilation column is CMV (continuous mandatory ventilation, per its legend); "
                 f"{len(vent)} survivor(s) had it ({', '.join(_ids(vent))})")
    figs.append(_count_figure("survivors-no-ventilation", "survivors who did not need ventilation", 3, no_vent,
                              f"survivors with CMV '—'; {vent_note}"))
    figs.append(_count_figure("survivors-ventilation-not-noted", "survivors whose ventilation is not recorded",
                              1, vent_nd, f"survivors with CMV 'ND'; {vent_note}"))
    return CohortSummary(records_file=str(records_file), results=figs)


# --- Cross-source check -------------------------------------------------------------------------------------


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


def check_pair(record: Record, scenario: Scenario, timeline_file: str) -> PairCheck:
    """Compare every value a Table 1 row and a timeline of the same patient both give."""
    out: list[Comparison] = []
    evs = scenario.events

    def add(item: str, table1: str, timeline: str, verdict: CheckVerdict, note: str, events: list[str] = ()) -> None:
        out.append(Comparison(item=item, table1=table1, timeline=timeline, verdict=verdict, note=note,
                              timeline_events=list(events)))

    p = scenario.patient
    add("age (years)", _fmt(record.age), _fmt(p.age_years), "agrees" if record.age == p.age_years else "disagrees",
        "patient.age_years")
    sex = {"M": "male", "F": "female"}[record.sex]
    add("sex", record.sex, p.sex, "agrees" if sex == p.sex else "disagrees", "patient.sex")

    labs0: dict[str, tuple[Any, str]] = {}
    for ev in evs:
        if ev.kind == "observation" and _day0(ev):
            for name, reading in ev.values.items():
                labs0.setdefault(name, (reading, ev.id))
    names = {"ast": "AST", "alt": "ALT", "ldh": "LDH", "ck": "CK", "aldolase": "aldolase", "kl6": "KL-6"}
    for name, label in names.items():
        t = getattr(record.labs, name)
        if name not in labs0 or not isinstance(t, float):
            continue
        reading, eid = labs0[name]
        tl = reading.exact
        verdict: CheckVerdict = "agrees" if tl is not None and abs(tl - t) < 1e-9 else "disagrees"
        note = f"Table 1 blood-test cell {record.labs.printed!r} against the admission (day 0) reading"
        if verdict == "disagrees":
            swap = {"ast": "alt", "alt": "ast"}.get(name)
            if swap and swap in labs0 and labs0[swap][0].exact == t and getattr(record.labs, swap) == tl:
                note += ("; AST and ALT look swapped: Table 1 prints AST/ALT as "
                         f"{_fmt(record.labs.ast)}/{_fmt(record.labs.alt)}, the text gives AST "
                         f"{_fmt(labs0['ast'][0].exact)} and ALT {_fmt(labs0['alt'][0].exact)}")
        add(label, _fmt(t), reading.label(), verdict, note, [eid])

    ab = record.autoantibody
    if ab.antibody == "anti-MDA5" and "anti_mda5" in labs0:
        reading, eid = labs0["anti_mda5"]
        pos = any(a.name == "anti-MDA5" and a.result == "positive" for a in p.autoantibodies)
        t = ab.titre
        same = (t is not None and t.status == "given" and reading.value == t.value
                and reading.comparator == t.comparator and pos)
        add("anti-MDA5 antibody and titre", ab.cell, f"positive; {reading.label()}",
            "agrees" if same else "disagrees",
            "Table 1 prints the titre without a unit; the text gives it as an index", [eid])

    support = {ev.code: ev for ev in evs if ev.kind == "support"}
    oxy = [c for c in ("nasal_cannula", "oxygen_mask") if c in support]
    for item, t, codes, note in (
        ("O2", record.o2, oxy, "oxygen by nasal cannula or mask in the timeline"),
        ("CMV (ventilation)", record.cmv, ["invasive_ventilation"] if "invasive_ventilation" in support else [],
         "the timeline records invasive ventilation; the text gives settings but not the ventilator mode, "
         "so 'continuous mandatory' itself cannot be confirmed"),
        ("ECMO", record.ecmo, ["VV-ECMO"] if "VV-ECMO" in support else [], "VV-ECMO in the timeline"),
    ):
        if t in (PRESENT, ABSENT):
            tl = _present(bool(codes))
            add(item, t, tl + (f" ({', '.join(codes)})" if codes else ""),
                "agrees" if tl == t else "disagrees", note, [support[c].id for c in codes])

    given: dict[str, Any] = {}
    for ev in evs:
        if ev.kind in ("therapy", "procedure"):
            given.setdefault(ev.code, ev)  # the first event of each code
    if record.treatments != NO_DATA:
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
        add("treatments", ", ".join(record.treatment_codes), ", ".join(sorted(tl_set)),
            "agrees" if not (only_t or only_tl) else "disagrees", note, [given[c].id for c in sorted(tl_set)])

    outcomes = [ev for ev in evs if ev.kind == "outcome"]
    if outcomes:
        st = outcomes[-1].status
        want = "alive" if record.outcome == "Alive" else "dead"
        add("outcome", f"{record.outcome} (time to death {record.time_to_death.printed})", st,
            "agrees" if st == want else "disagrees", "last outcome event of the timeline", [outcomes[-1].id])

    mri = [ev for ev in evs if ev.kind == "imaging" and ev.modality == "MRI" and "femoral" in ev.region]
    if mri and record.mri_myositis in (PRESENT, ABSENT):
        found = any("myositis" in f for ev in mri for f in ev.findings)
        add("myositis on femoral MRI", record.mri_myositis, "; ".join(f for ev in mri for f in ev.findings),
            "agrees" if _present(found) == record.mri_myositis else "disagrees",
            "femoral MRI findings in the timeline", [ev.id for ev in mri])

    respiratory = [ev for ev in evs if ev.kind == "finding" and ev.code == "symptom_onset_respiratory"]
    pres = record.presentation.strip()
    if pres not in (NO_DATA,) and respiratory:
        add("clinical presentation of RP-ILD", pres, "symptom_onset_respiratory (dry cough and dyspnoea)",
            "agrees" if pres != ABSENT else "disagrees", "respiratory symptoms before the transfer",
            [ev.id for ev in respiratory])

    ct = [ev for ev in evs if ev.kind == "imaging" and ev.modality in ("CT", "HRCT") and ev.region == "chest"]
    if ct and record.chest_ct != NO_DATA:
        def where(words: str) -> list[Any]:
            return [ev for ev in ct if any(words in f for f in ev.findings)]
        for code in record.chest_ct:
            if code == "GGO":
                hits = where("ground-glass")
                verdict = "agrees" if hits else "unclear"
                note = "ground-glass opacities in the timeline's CT findings"
            elif code == "TB":
                hits = where("traction bronchiectasis")
                verdict = "agrees" if hits else "unclear"
                note = "traction bronchiectasis in the timeline's CT findings"
                if hits and all((ev.day.earliest or 0) > 0 for ev in hits):
                    note += (f", but only after admission ({', '.join(_day_label(ev) for ev in hits)}); "
                             "Table 1 does not say which CT it describes")
            elif code == "CABB":
                hits = where("consolidation")
                verdict = "unclear"
                note = ("the text reports consolidation but not that it lay around the bronchovascular bundles"
                        if hits else "no consolidation in the timeline's CT findings")
            else:
                hits = []
                verdict = "unclear"
                note = f"{CT_FINDINGS[code]} is listed only in Table 1; the text never mentions it"
            shown = "; ".join(f"{_day_label(ev)}: {', '.join(ev.findings)}" for ev in hits) or "not mentioned"
            add(f"chest CT: {code}", code, shown, verdict, note, [ev.id for ev in hits])

    jdm = next((d for d in p.diagnoses if d.code == "JDM"), None)
    transfer = next((ev for ev in evs if ev.kind == "milestone" and ev.code == "transfer"), None)
    iv = record.interval_diagnosis_to_ild
    if jdm is not None and transfer is not None and iv.known and jdm.day.latest is not None:
        lo = (transfer.day.earliest or 0) - jdm.day.latest
        hi = None if jdm.day.earliest is None else (transfer.day.latest or 0) - jdm.day.earliest
        tl = f"{lo} to {hi} days from the JDM diagnosis to the transfer with the RP-ILD diagnosis"
        inside = (iv.value or 0) * _UNITS[iv.unit or "day"] * DAYS_PER_MONTH
        verdict = "agrees" if lo <= inside <= (hi if hi is not None else inside) else "unclear"
        add("interval from JDM diagnosis to ILD diagnosis", iv.printed, tl, verdict,
            "the text has the RP-ILD diagnosis made at the transfer, at least 6 days after the JDM diagnosis; "
            "Table 1's interval fits only if ILD was already diagnosed together with JDM at the previous "
            "hospital, which the text does not say" if verdict != "agrees" else "diagnosis days in the timeline",
            [transfer.id])

    onset = next((ev for ev in evs if ev.kind == "finding" and ev.code == "symptom_onset_skin_muscle"), None)
    io = record.interval_onset_to_ild
    if onset is not None and io.known:
        from_table = onset.source.section == "Table 1"
        add("interval from JDM onset to ILD diagnosis", io.printed, f"onset on {_day_label(onset)}",
            "unclear" if from_table else "agrees",
            "the timeline dates the onset from Table 1 itself, so it is no independent check; the text says only "
            "'a few months' before admission, which does not contradict 3 months" if from_table
            else "onset event of the timeline", [onset.id])

    fever = [ev for ev in evs if ev.kind == "observation" and "temperature" in ev.values]
    rash = [ev for ev in evs if ev.kind == "finding" and ev.code == "malar_rash"]
    weak = [ev for ev in evs if ev.kind == "finding" and ev.code == "symptom_onset_skin_muscle"]
    if fever or rash or weak:
        temps = "; ".join(f"{ev.values['temperature'].label()} on {_day_label(ev)}" for ev in fever)
        add("clinical symptoms of JDM", " ".join(record.symptoms_printed) + " (three values under four headings)",
            f"temperature {temps or 'not recorded'} (the text calls it a low-grade fever); malar rash "
            f"{'recorded' if rash else 'not recorded'}; muscle weakness {'recorded' if weak else 'not recorded'}; "
            "arthralgia not mentioned",
            "unclear",
            "the printed values fit the text only if they are fever, rash and arthralgia (with the muscle "
            "weakness column lost); Table 1 cannot be read as saying which symptoms they are",
            [ev.id for ev in (*fever, *rash, *weak)])

    not_compared = [f"race ({record.race}): the timeline has no ethnicity"]
    problems = [c for c in out if c.verdict != "agrees"]
    return PairCheck(record=record.id, timeline_file=timeline_file, results=out, problems=problems,
                     not_compared=not_compared)


def check(table: Table1, records_file: Path | str = DEFAULT_RECORDS) -> CohortCheck:
    """Every row that links a timeline (the present case: scenarios/index_case.yaml), compared."""
    pairs = []
    for r in table.records:
        path = timeline_path(records_file, r)
        if path is None:
            continue
        pairs.append(check_pair(r, load_scenario(path), path.as_posix()))
    return CohortCheck(pairs=pairs, records_file=str(records_file))


# --- Placement on the pathway ---------------------------------------------------------------------------------

STEP_OF: dict[str, int] = {
    **{c: 1 for c in ("MPT", "PSL", "mPSL", "CyA", "Tac", "IVCY", "CPM", "IVIG", "AZP", "MTX")},
    "PE": 2,
    "ECMO": 3,
    "RTX": 4,
    "MMF": 5,
}
STEP_LABELS = {1: "1 combination", 2: "2 plasma exchange", 3: "3 ECMO", 4: "4 rituximab", 5: "5 MMF add-on"}


def place(record: Record) -> tuple[dict[str, list[str]], int | None, bool]:
    """The steps of rules/report-pathway.yaml a case reached, its highest step, and whether it may be higher.

    How Table 1 maps onto the report's pathway (steps of rules/report-pathway.yaml):
    - step 1, first-line combination: glucocorticoids (MPT, PSL, and mPSL, which the table does not
      define), calcineurin inhibitors (CyA, Tac), cyclophosphamide (IVCY, and CPM, which may be oral),
      IVIG, and the other conventional immunosuppressants the table lists (AZP, MTX);
    - step 2: plasma exchange (PE);
    - step 3: ECMO, read from the ECMO column ("+"), not from the treatment list;
    - step 4: rituximab (RTX);
    - step 5: the MMF add-on.
    A step counts as reached when the case received something of that step at any time: the table
    gives no dates or order, so a case may reach step 4 without steps 2 and 3, and MMF counts as
    step 5 even where it may have been used for another purpose. The highest step may be higher
    than shown when the ECMO column or the treatments are "ND".
    """
    reached: dict[str, list[str]] = {}
    for code in record.treatment_codes:
        reached.setdefault(str(STEP_OF[code]), []).append(code)
    if record.ecmo == PRESENT:
        reached.setdefault("3", []).append("ECMO")
    highest = max((int(k) for k in reached), default=None)
    may_be_higher = record.treatments == NO_DATA or (record.ecmo in (NO_DATA, UNREADABLE) and (highest or 0) < 3)
    return dict(sorted(reached.items())), highest, may_be_higher


NO_TIMELINE = ("Table 1 gives no dates: not when any treatment began, nor any dated measurement (the anti-MDA5 "
               "titre and its trend, ventilator settings, oxygenation) that the rules' conditions test; a "
               "timeline would have to invent them")


def placement(table: Table1, records_file: Path | str = DEFAULT_RECORDS,
              rules_file: Path | str | None = None) -> CohortPlacement:
    """Highest step reached against outcome for every case, and the replay of cases with a timeline."""
    from escalation.evaluate.replay import replay as run_replay
    from escalation.match.matching import build_result

    rules_path = Path(rules_file) if rules_file is not None else default_path(DEFAULT_RULES)
    ruleset = None
    rows: list[CasePlacement] = []
    for r in table.records:
        reached, highest, maybe = place(r)
        path = timeline_path(records_file, r)
        if path is None:
            why = NO_TIMELINE + ("; its treatments are not given either" if r.treatments == NO_DATA else "")
            brief = ReplayBrief(possible=False, why=why)
        else:
            ruleset = ruleset or load_ruleset(rules_path)
            result = build_result(run_replay(load_scenario(path), ruleset), path)
            dps = [DecisionPointBrief(rule_id=d.rule_id, step=d.step, day=d.day, day_latest=d.day_latest)
                   for d in result.decision_points if d.kind == "escalation"]
            steps = sorted({d.step for d in dps if d.step is not None})
            table_steps = sorted(int(k) for k in reached)
            same = steps == table_steps
            against = (f"the replay flags steps {', '.join(map(str, steps)) or 'none'}; Table 1's treatments "
                       f"reach steps {', '.join(map(str, table_steps)) or 'none'}"
                       + ("" if same else " (they differ)"))
            brief = ReplayBrief(possible=True, why="the row links a timeline of the same patient",
                                timeline_file=path.as_posix(),
                                ruleset=f"{ruleset.ruleset.id} v{ruleset.ruleset.version}",
                                decision_points=dps, steps_flagged=steps, against_table=against)
        rows.append(CasePlacement(
            record=r.id, row=r.row, reference=r.reference.printed, treatments=r.treatments, ecmo=r.ecmo,
            steps_reached=reached, highest_step=highest, may_be_higher=maybe, outcome=r.outcome,
            time_to_death=r.time_to_death.printed, replay=brief))
    table_rows = []
    for step in (1, 2, 3, 4, 5, None):
        top = [c for c in rows if c.highest_step == step]
        got = [c for c in rows if step is not None and str(step) in c.steps_reached]
        table_rows.append(StepRow(
            step=STEP_LABELS[step] if step is not None else "unknown (treatments ND)",
            highest=len(top), highest_deaths=sum(c.outcome == "Death" for c in top),
            highest_may_be_higher=sum(c.may_be_higher for c in top),
            received=len(got), received_deaths=sum(c.outcome == "Death" for c in got)))
    return CohortPlacement(placements=rows, records_file=str(records_file), rules_file=rules_path.as_posix(),
                           step_map=dict(STEP_OF), steps_table=table_rows)
