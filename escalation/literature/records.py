"""Table 1 of the report as validated records: each cell kept as printed, and how the file is read.

Table 1 of Nishi et al. 2022 lists 18 published cases of JDM with RP-ILD. The records live in
`scenarios/literature/table1.yaml`, one per row, with each cell kept as printed: "+" (present),
"—" (absent) and "ND" (no data) stay distinct, and a cell that the copy of the table does not let
us read is `unreadable` with a reason in the record. Keeping the cells as printed is what lets
the summary, the cross-source check and the placement say exactly which cells they rest on.

Everything here is research material about a publication. RESEARCH REVIEW ONLY - not medical
advice.
"""

from __future__ import annotations

import os
import re
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
from escalation.load.loading import read_yaml, validate
from escalation.load.numbers import Finite, check_order
from escalation.load.shipped import LITERATURE_FILE, literature_table, resolve

# The records file's name in the repository: what outputs print when the shipped table is used,
# wherever the copy actually read lies (inside the installed package or the checkout).
DEFAULT_RECORDS = "/".join(("scenarios", *LITERATURE_FILE))

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
MONTHS_PER_UNIT = {"day": DAYS_PER_MONTH ** -1, "days": DAYS_PER_MONTH ** -1,
                   "week": DAYS_PER_WEEK / DAYS_PER_MONTH, "weeks": DAYS_PER_WEEK / DAYS_PER_MONTH,
                   "month": 1.0, "months": 1.0}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Span(_Strict):
    """A span of time as printed: '5 weeks', '2 day', '< 4 months', or 'ND'."""

    printed: str
    value: Finite | None = None
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
        m = re.fullmatch(rf"(<\s*)?({_NUMBER})\s+({'|'.join(MONTHS_PER_UNIT)})", text)
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
        return None if self.value is None else self.value * MONTHS_PER_UNIT[self.unit or "months"]


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
LabValue = Union[Finite, Literal["ND", "NA"]]


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
    value: Finite | None = None
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
    age: Finite
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
    unreadable: list[Unreadable] = []
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
    low: Finite
    high: Finite
    unit: str

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        check_order(self.low, self.high, ("low", "high"), "low")
        return self


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

    footnotes: list[Footnote] = []
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


def records_path(path: Path | str | None) -> Path:
    """The file to read: the path as the user gave it (a shipped file's repository path: the shipped
    file, `shipped.resolve`), else the shipped table (found from any folder)."""
    return resolve(Path(path)) if path is not None else literature_table()


def records_name(path: Path | str | None) -> str:
    """The name outputs print: the path as given, else the shipped table's name in the repository.

    Printing the repository name rather than wherever the shipped copy lies keeps the output the
    same from every folder and for every kind of install.
    """
    return DEFAULT_RECORDS if path is None else str(path)


def load_records(path: Path | str | None = None, timelines: bool = True) -> Table1:
    """Read and validate a records file; errors name the file, line, record and field.

    `timelines=False` leaves the files records name as their timelines unchecked, for a use that
    never reads them (`cohort summary`): a copy of the shipped table taken out alone still serves."""
    path = records_path(path)
    data, lines = read_yaml(path)
    try:
        table = validate(Table1, data, lines, str(path))
    except InputError as exc:
        raise _name_record(exc, data) from None
    for i, r in enumerate(table.records):
        if timelines and r.timeline is not None and not (path.parent / r.timeline).is_file():
            raise InputError(str(path), f"record {r.id!r}, field timeline: no file {r.timeline}, relative to "
                             f"this file: {os.path.normpath(path.parent / r.timeline)} (copy that scenario there, "
                             "or drop the field)",
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
    """The record's timeline, which the records file names relative to itself."""
    if record.timeline is None:
        return None
    return Path(os.path.normpath(Path(records_file).parent / record.timeline))


def timeline_files(records_file: Path | str | None, record: Record) -> tuple[Path, str] | None:
    """The record's timeline: the file to read, and the name outputs print (see `records_name`)."""
    path = timeline_path(records_path(records_file), record)
    shown = timeline_path(records_name(records_file), record)
    if path is None or shown is None:
        return None
    return path, shown.as_posix()
