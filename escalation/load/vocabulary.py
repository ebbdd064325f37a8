"""The closed vocabulary every file is checked against: measures, units, codes.

Scenario and rule files name measures and codes as plain strings so that a clinician can read
them; this module is the one place that says which names exist, which units each measure accepts
and how they convert, and which values are physically possible. Keeping it closed is what turns a
typo ("spo_2", "mmHG", "RTX2") into a load error instead of a rule that silently never fires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Annotated, Callable, Collection

from pydantic import AfterValidator

from escalation.load.citations import Citation


@dataclass(frozen=True)
class Measure:
    """A quantity the timeline may record and rules may test."""

    code: str
    name: str
    unit: str
    low: float
    high: float
    # Accepted units other than the canonical one, each with its conversion to the canonical unit.
    conversions: dict[str, Callable[[float], float]] = field(default_factory=dict)
    derived: bool = False
    low_inclusive: bool = True
    # Why the low end is refused where the reason is the project's, not physics: the value divides
    # in a derived index, or a small value is more likely a slip of units than a reading. Shown in
    # the error, since such a bound is a modelling bound, not a clinical one.
    low_reason: str | None = None


def _same(x: float) -> float:
    return x


# IU/L is read as U/L for enzymes, as laboratories report them; UCUM itself keeps [IU] apart
# from the enzyme unit U, so this is a convention of the project, not a UCUM conversion.
_U_PER_L = {"U/l": _same, "IU/L": _same, "IU/l": _same}
# 1 mmHg = 133.322387415 Pa by definition, so 1 kPa = 7.50062 mmHg (UCUM's own table rounds
# mm[Hg] to 133.3220 Pa, which gives 7.50064: 3 parts per million apart).
_KPA_TO_MMHG = 7.50062
# 1 cmH2O = 98.0665 Pa (UCUM's m[H2O] is 9.80665 kPa), so 1 mbar = 100 Pa = 1.01972 cmH2O.
_MBAR_TO_CMH2O = 1.01972

MEASURES: dict[str, Measure] = {
    m.code: m
    for m in [
        # Oxygenation and ventilation
        # At most 1 % is refused: 0.95 is a fraction written for 95 %, which would otherwise read
        # as profound hypoxaemia and meet every oxygenation threshold (a modelling bound).
        Measure("spo2", "oxygen saturation by pulse oximetry (SpO2)", "%", 1, 100, low_inclusive=False,
                low_reason="SpO2 is a percentage, and 1 or less reads as a fraction written for one "
                           "(0.95 for 95 %); zero also divides in OSI = MAP x FiO2 x 100 / SpO2"),
        Measure("fio2", "fraction of inspired oxygen (FiO2)", "fraction", 0.21, 1.0,
                {"%": lambda x: x / 100}),
        Measure("pao2", "arterial oxygen tension (PaO2)", "mmHg", 0, 800,
                {"kPa": lambda x: x * _KPA_TO_MMHG}, low_inclusive=False),
        Measure("paco2", "arterial carbon dioxide tension (PaCO2)", "mmHg", 0, 250,
                {"kPa": lambda x: x * _KPA_TO_MMHG}, low_inclusive=False),
        Measure("map", "mean airway pressure (MAP)", "cmH2O", 0, 80,
                {"mbar": lambda x: x * _MBAR_TO_CMH2O, "hPa": lambda x: x * _MBAR_TO_CMH2O}),
        Measure("pip", "peak inspiratory pressure (PIP)", "cmH2O", 0, 80,
                {"mbar": lambda x: x * _MBAR_TO_CMH2O, "hPa": lambda x: x * _MBAR_TO_CMH2O}),
        Measure("peep", "positive end-expiratory pressure (PEEP)", "cmH2O", 0, 40,
                {"mbar": lambda x: x * _MBAR_TO_CMH2O, "hPa": lambda x: x * _MBAR_TO_CMH2O}),
        Measure("ino", "inhaled nitric oxide", "ppm", 0, 80),
        Measure("o2_flow", "supplemental oxygen flow", "L/min", 0, 60),
        # Vital signs
        Measure("heart_rate", "heart rate", "/min", 0, 350, {"bpm": _same, "beats/min": _same}),
        Measure("resp_rate", "respiratory rate", "/min", 0, 200, {"breaths/min": _same}),
        Measure("temperature", "body temperature", "degC", 25, 45,
                {"degF": lambda x: (x - 32) * 5 / 9}),
        Measure("weight", "body weight", "kg", 0, 300, {"g": lambda x: x / 1000},
                low_inclusive=False),
        Measure("height", "body height", "cm", 0, 250, {"m": lambda x: x * 100},
                low_inclusive=False),
        # Laboratory
        Measure("ck", "creatine kinase", "U/L", 0, 1e6, _U_PER_L),
        Measure("ast", "aspartate transaminase", "U/L", 0, 1e6, _U_PER_L),
        Measure("alt", "alanine transaminase", "U/L", 0, 1e6, _U_PER_L),
        Measure("ldh", "lactate dehydrogenase", "U/L", 0, 1e6, _U_PER_L),
        Measure("aldolase", "aldolase", "U/L", 0, 1e5, _U_PER_L),
        Measure("kl6", "Krebs von den Lungen-6 glycoprotein (KL-6)", "U/mL", 0, 1e6,
                {"U/ml": _same}),
        Measure("anti_mda5", "anti-MDA5 antibody", "index", 0, 1e6),
        Measure("il6", "interleukin-6", "pg/mL", 0, 1e6, {"pg/ml": _same}),
        Measure("il18", "interleukin-18", "pg/mL", 0, 1e7, {"pg/ml": _same}),
        Measure("ferritin", "ferritin", "ng/mL", 0, 1e6, {"ng/ml": _same, "ug/L": _same}),
        Measure("crp", "C-reactive protein", "mg/dL", 0, 100, {"mg/L": lambda x: x / 10}),
        Measure("cya_trough", "cyclosporine A trough level", "ng/mL", 0, 5000, {"ng/ml": _same}),
        Measure("tac_trough", "tacrolimus trough level", "ng/mL", 0, 200, {"ng/ml": _same}),
        # Derived indices: computed by escalation.derive, or transcribed where the source reports them
        Measure("oi", "oxygenation index (OI)", "index", 0, 300, derived=True, low_inclusive=False,
                low_reason="the P/F a reported OI implies is MAP x 100 / OI"),
        Measure("pf", "PaO2/FiO2 ratio", "mmHg", 0, 800, derived=True, low_inclusive=False,
                low_reason="the PaO2 a reported P/F implies (P/F x FiO2) divides in OI = MAP x FiO2 x 100 / PaO2"),
        # SpO2 at most 100 % over FiO2 at least 0.21: S/F cannot exceed 100 / 0.21 (about 476)
        Measure("sf", "SpO2/FiO2 ratio", "ratio", 0, 100 / 0.21, derived=True),
        Measure("osi", "oxygen saturation index (OSI)", "index", 0, 300, derived=True),
    ]
}


class CodeKind(str, Enum):
    therapy = "therapy"
    support = "support"
    procedure = "procedure"
    finding = "finding"
    milestone = "milestone"


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    kind: CodeKind
    immunosuppressive: bool = False


CODES: dict[str, Code] = {
    c.code: c
    for c in [
        Code("MPT", "methylprednisolone pulse therapy", CodeKind.therapy, True),
        Code("PSL", "prednisolone", CodeKind.therapy, True),
        Code("CyA", "cyclosporine A", CodeKind.therapy, True),
        Code("Tac", "tacrolimus", CodeKind.therapy, True),
        Code("CNI", "calcineurin inhibitor (the agent not named)", CodeKind.therapy, True),
        Code("IVCY", "intravenous cyclophosphamide", CodeKind.therapy, True),
        Code("IVIG", "intravenous immunoglobulin", CodeKind.therapy),
        Code("RTX", "rituximab", CodeKind.therapy, True),
        Code("MMF", "mycophenolate mofetil", CodeKind.therapy, True),
        Code("TMP-SDZ", "trimethoprim-sulfadiazine (infection prophylaxis, as the report names it)",
             CodeKind.therapy),
        Code("nasal_cannula", "oxygen by nasal cannula", CodeKind.support),
        Code("oxygen_mask", "oxygen by mask", CodeKind.support),
        Code("invasive_ventilation", "invasive mechanical ventilation", CodeKind.support),
        Code("VV-ECMO", "veno-venous extracorporeal membrane oxygenation", CodeKind.support),
        Code("ECMO", "extracorporeal membrane oxygenation (the mode not stated)", CodeKind.support),
        Code("prone_positioning", "prone positioning", CodeKind.support),
        Code("PE", "plasma exchange", CodeKind.procedure),
        Code("transfer", "transfer to the treating hospital", CodeKind.milestone),
        Code("admission_prior", "admission to a previous hospital", CodeKind.milestone),
        Code("respiratory_improvement", "respiratory status starts to improve", CodeKind.finding),
        Code("respiratory_not_improving", "respiratory status not improving", CodeKind.finding),
        Code("b_cell_recovery", "recovery of peripheral blood B cells", CodeKind.finding),
        Code("symptom_onset_skin_muscle", "onset of rash, muscle weakness and weight loss",
             CodeKind.finding),
        Code("symptom_onset_respiratory", "onset of dry cough and dyspnoea", CodeKind.finding),
        Code("respiratory_deterioration", "respiratory deterioration", CodeKind.finding),
        Code("malar_rash", "malar rash", CodeKind.finding),
        Code("gottron_sign", "Gottron's sign or papules", CodeKind.finding),
        Code("infection_tests_negative", "infection-related tests negative", CodeKind.finding),
        Code("general_condition_improved", "general condition improved", CodeKind.milestone),
        Code("regained_speech", "regained the ability to speak", CodeKind.milestone),
        Code("regained_eating", "regained the ability to eat", CodeKind.milestone),
        Code("regained_walking", "regained the ability to walk", CodeKind.milestone),
        Code("regained_bathing", "regained the ability to bathe", CodeKind.milestone),
        Code("discharge", "discharge from hospital", CodeKind.milestone),
        Code("follow_up", "follow-up visit", CodeKind.milestone),
    ]
}

# What a rule may put up for review. The escalation codes are the closed list; a watch is
# any name a rule set declares under `watches`.
PROPOSABLE: frozenset[str] = frozenset(
    {"MPT", "PSL", "CyA", "Tac", "IVCY", "IVIG", "PE", "VV-ECMO", "RTX", "MMF"}
)

DIAGNOSES: dict[str, str] = {
    "JDM": "juvenile dermatomyositis",
    "RP-ILD": "rapidly progressive interstitial lung disease",
    "ILD": "interstitial lung disease",
    "CADM": "clinically amyopathic dermatomyositis",
}

AUTOANTIBODIES: frozenset[str] = frozenset(
    {"anti-MDA5", "anti-Jo-1", "anti-Ro52", "anti-TIF1g", "anti-NXP2", "anti-Mi-2", "anti-SAE"}
)


# --- Kinds: codes that contain other codes ---------------------------------------------------
# A rule that asks for a code also counts every code declared here as a kind of it (a rule asking
# for ILD is met by RP-ILD), never the other way round: a timeline that records only ILD does not
# meet a rule asking for RP-ILD. The hierarchy is declared once, here, each link with its source;
# derive/features.py and evaluate/reference.py both read it, so the engine and the reference
# evaluator see the same numbers.


@dataclass(frozen=True)
class KindOf:
    """One link of the hierarchy: the code is a narrower kind of `parent`."""

    parent: str
    sources: tuple[Citation, ...]


KIND_OF: dict[str, KindOf] = {
    "RP-ILD": KindOf("ILD", (
        Citation(section="Background", detail="rapidly progressive ILD named as one form of the ILD "
                 "that complicates JDM"),
        Citation(section="Table 1", detail="its RP-ILD cases are dated by their 'diagnosis of ILD'"),
    )),
    "VV-ECMO": KindOf("ECMO", (
        Citation(section="Case presentation", detail="veno-venous ECMO named as the mode used"),
        Citation(section="Table 1", detail="ECMO recorded without a mode for the published cases"),
    )),
    "CyA": KindOf("CNI", (
        Citation(section="Background", detail="combination therapy with a calcineurin inhibitor"),
        Citation(reference=4, detail="cyclosporine A or tacrolimus as the calcineurin inhibitor"),
    )),
    "Tac": KindOf("CNI", (
        Citation(section="Background", detail="combination therapy with a calcineurin inhibitor"),
        Citation(reference=4, detail="cyclosporine A or tacrolimus as the calcineurin inhibitor"),
    )),
}


def _namespace(code: str) -> str:
    """Diagnoses and each kind of action are separate trees: a link never crosses them."""
    if code in DIAGNOSES:
        return "diagnosis"
    if code in CODES:
        return CODES[code].kind.value
    raise ValueError(f"KIND_OF names {code!r}, which is neither a diagnosis nor a code")


def _check_kinds() -> None:
    """Every link joins two known codes of one namespace, and no code is a kind of itself."""
    for child, link in KIND_OF.items():
        if _namespace(child) != _namespace(link.parent):
            raise ValueError(f"{child!r} and {link.parent!r} are of different kinds")
        if child in broader_kinds(link.parent) or child == link.parent:
            raise ValueError(f"KIND_OF has a cycle through {child!r}")


@lru_cache(maxsize=None)  # KIND_OF is fixed at import; asked once per feature per day otherwise
def broader_kinds(code: str) -> tuple[str, ...]:
    """The codes `code` is a kind of, nearest first (RP-ILD -> ILD)."""
    out: list[str] = []
    while code in KIND_OF and len(out) <= len(KIND_OF):
        code = KIND_OF[code].parent
        out.append(code)
    return tuple(out)


def narrower(a: str, b: str) -> bool:
    """True when `a` is a strictly narrower kind of `b`: a rule asking for b counts a, not the reverse."""
    return b in broader_kinds(a)


@lru_cache(maxsize=None)
def kinds_of(code: str) -> frozenset[str]:
    """`code` with every code declared, at any depth, to be a kind of it: what a rule asking for
    `code` counts."""
    return frozenset({code, *(c for c in KIND_OF if narrower(c, code))})


_check_kinds()


# Units a regimen may be written in: amount unit, then the body basis, then the period.
DOSE_UNITS: dict[str, tuple[str, str | None, str | None]] = {
    "mg": ("mg", None, None),
    "g": ("g", None, None),
    "mg/day": ("mg", None, "day"),
    "mg/dose": ("mg", None, "dose"),
    "mg/kg": ("mg", "kg", None),
    "mg/kg/day": ("mg", "kg", "day"),
    "mg/kg/dose": ("mg", "kg", "dose"),
    "g/kg": ("g", "kg", None),
    "g/kg/dose": ("g", "kg", "dose"),
    "mg/m2": ("mg", "m2", None),
    "mg/m2/day": ("mg", "m2", "day"),
    "mg/m2/dose": ("mg", "m2", "dose"),
}


def to_canonical(measure: str, value: float, unit: str | None) -> float:
    """Convert a value to the measure's canonical unit; the caller has checked the unit exists."""
    m = MEASURES[measure]
    if unit is None or unit == m.unit:
        return value
    return m.conversions[unit](value)


def accepted_units(measure: str) -> list[str]:
    m = MEASURES[measure]
    return [m.unit, *m.conversions]


# --- Annotated string types: a name from the vocabulary, checked wherever a model uses it -------


def _member(known: Collection[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in known:
            raise ValueError(f"unknown {what} {value!r}; known: {', '.join(sorted(known))}")
        return value

    return AfterValidator(check)


def _code(*kinds: CodeKind, what: str) -> AfterValidator:
    return _member(frozenset(c for c, v in CODES.items() if v.kind in kinds), what)


MeasureName = Annotated[str, _member(MEASURES, "measure")]
DiagnosisCode = Annotated[str, _member(DIAGNOSES, "diagnosis")]
AutoantibodyName = Annotated[str, _member(AUTOANTIBODIES, "autoantibody")]
AnyCode = Annotated[str, _member(CODES, "code")]
TherapyCode = Annotated[str, _code(CodeKind.therapy, what="therapy code")]
SupportCode = Annotated[str, _code(CodeKind.support, what="support code")]
ProcedureCode = Annotated[str, _code(CodeKind.procedure, what="procedure code")]
FindingCode = Annotated[str, _code(CodeKind.finding, what="finding")]
MilestoneCode = Annotated[str, _code(CodeKind.milestone, what="milestone code")]
InPlaceCode = Annotated[str, _code(CodeKind.support, CodeKind.procedure, CodeKind.therapy,
                                   what="support, procedure or therapy code")]
