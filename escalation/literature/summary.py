"""The figures of the report's summary paragraph, recomputed from the records of Table 1.

The Discussion summarises the 18 cases in figures (how many men, the median age, how many died,
...). Each is recomputed here and set beside the stated value with a verdict: agrees, disagrees,
or cannot be checked from the table, with the records counted and how they were counted, so a
reader can follow every verdict back to cells. Counts follow the cells: "+" counts as present,
"—" as absent, "ND" as no data. A figure that rests on an unreadable column, or on something the
table does not record, cannot be checked.

RESEARCH REVIEW ONLY - not medical advice.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Literal

from pydantic import Field

from escalation.literature.outputs import Output, fmt_number
from escalation.literature.records import (
    ABSENT,
    CONVERSIONS,
    NO_DATA,
    PRESENT,
    UNREADABLE,
    Record,
    Span,
    Table1,
    records_name,
)
from escalation.match.results import NOTICE

Verdict = Literal["agrees", "disagrees", "cannot be checked"]


class Figure(Output):
    """One figure of the summary paragraph beside the value the records give."""

    id: str
    statement: str = Field(description="what the report states, in our words")
    stated: str
    computed: str | None
    verdict: Verdict
    basis: str = Field(description="how the value was computed, or why it cannot be")
    records: list[str] = Field(description="ids of the records counted")


class CohortSummary(Output):
    notice: str = NOTICE
    records_file: str
    results: list[Figure]
    units: str = CONVERSIONS


ASIAN = frozenset({"Japanese", "Chinese"})
NOT_COUNTED_ASIAN = frozenset({"Turkish", "Italy"})
RESPIRATORY_WORDS = frozenset({"cough", "dyspnea", "mild dyspnea"})
DEATH_LIMIT_MONTHS = 4.0


def summary(table: Table1, records_file: Path | str | None = None) -> CohortSummary:
    """Every figure of the summary paragraph (Discussion) recomputed from the records.

    `records_file` only names the records in the output; None names the shipped table.
    """
    rs = list(table.records)
    figs = [
        *_people(rs), *_ages(rs), *_races(rs), *_muscle_weakness(rs),
        *_span_figures("interval_onset_to_ild", "interval-onset", rs, 3, (1, 8)),
        *_span_figures("interval_diagnosis_to_ild", "interval-diagnosis", rs, 1, (0, 7)),
        *_presentation(rs), *_antibodies(table), _ecmo(rs), *_deaths(rs), *_survivors(rs),
    ]
    return CohortSummary(records_file=records_name(records_file), results=figs)


# --- Helpers ---------------------------------------------------------------------------------------


def _months(x: float) -> str:
    return f"{fmt_number(x)} month" + ("" if fmt_number(x) == "1" else "s")


def _ids(records: list[Record]) -> list[str]:
    return [r.id for r in records]


def _count_figure(fid: str, statement: str, stated: int, hits: list[Record], basis: str) -> Figure:
    n = len(hits)
    return Figure(id=fid, statement=statement, stated=str(stated), computed=str(n),
                  verdict="agrees" if n == stated else "disagrees", basis=basis, records=_ids(hits))


def _cannot(fid: str, statement: str, stated: str, basis: str) -> Figure:
    return Figure(id=fid, statement=statement, stated=stated, computed=None, verdict="cannot be checked",
                  basis=basis, records=[])


# --- Who the patients were ---------------------------------------------------------------------------


def _people(rs: list[Record]) -> list[Figure]:
    return [
        _count_figure("patients", "patients reviewed", 18, rs, "one record per row of Table 1"),
        _count_figure("men", "men", 6, [r for r in rs if r.sex == "M"], "records with sex M"),
        _count_figure("women", "women", 12, [r for r in rs if r.sex == "F"], "records with sex F"),
    ]


def _ages(rs: list[Record]) -> list[Figure]:
    ages = [r.age for r in rs]
    age_note = ("from the 'Age' column, which does not say at what point the age was taken; the text "
                "calls it the age at disease onset")
    med = statistics.median(ages)
    youngest = [r.id for r in rs if r.age == min(ages)]
    rng = f"{fmt_number(min(ages))}–{fmt_number(max(ages))}"
    return [
        Figure(id="age-median", statement="median age at disease onset (years)", stated="6.5",
               computed=fmt_number(med), verdict="agrees" if med == 6.5 else "disagrees",
               basis=f"median of {len(ages)} ages; {age_note}", records=_ids(rs)),
        Figure(id="age-range", statement="age range (years)", stated="2–16", computed=rng,
               verdict="agrees" if rng == "2–16" else "disagrees",
               basis=f"youngest: {', '.join(youngest)}; {age_note}", records=_ids(rs)),
    ]


def _races(rs: list[Record]) -> list[Figure]:
    """The text counts 16 Asians; a race we have no classification for makes that uncheckable."""
    asian = [r for r in rs if r.race in ASIAN]
    others = sorted({r.race for r in rs if r.race not in ASIAN})
    unknown = [x for x in others if x not in NOT_COUNTED_ASIAN]
    if unknown:
        asians = _cannot("asians", "Asian patients", "16", f"no classification for race(s) {', '.join(unknown)}")
    else:
        asians = _count_figure(
            "asians", "Asian patients", 16, asian,
            f"races printed Japanese or Chinese; not counted: {', '.join(others)} (the text's 16 "
            "implies the Turkish patient was not counted as Asian; 'Italy' is printed as a country)")
    return [asians, _count_figure("japanese", "Japanese patients", 14, [r for r in rs if r.race == "Japanese"],
                                  "race printed Japanese")]


# --- Muscle weakness --------------------------------------------------------------------------------


def _muscle_weakness(rs: list[Record]) -> list[Figure]:
    """Counted from the column when it is readable; otherwise say why none of the three can be checked."""
    unreadable_mw = [r for r in rs if r.muscle_weakness == UNREADABLE]
    figs = []
    for fid, statement, stated, value in (
        ("muscle-weakness", "patients with apparent muscle weakness", "11", PRESENT),
        ("amyopathic", "patients classed as clinically amyopathic JDM", "4", ABSENT),
        ("muscle-weakness-no-data", "patients without data on muscle weakness", "3", NO_DATA),
    ):
        if unreadable_mw:
            basis = _muscle_weakness_unreadable(rs, len(unreadable_mw))
            if fid == "amyopathic":
                basis += "; Table 1 also has no amyopathic classification, which the text derives from muscle weakness"
            figs.append(_cannot(fid, statement, stated, basis))
        else:
            hits = [r for r in rs if r.muscle_weakness == value]
            figs.append(_count_figure(fid, statement, int(stated), hits, f"muscle weakness '{value}'"))
    return figs


def _muscle_weakness_unreadable(rs: list[Record], unreadable: int) -> str:
    """Why the column cannot be read, with what each printed column holds for comparison."""
    cols = []
    for k in range(3):
        vals = [r.symptoms_printed[k] for r in rs]
        cols.append(f"printed column {k + 1}: {vals.count(PRESENT)} '+', {vals.count(ABSENT)} '—', "
                    f"{vals.count(NO_DATA)} 'ND'")
    return (f"the muscle weakness column is unreadable in {unreadable} of {len(rs)} records "
            "(three symptom values printed under four headings); no printed column matches the "
            "stated 11/4/3 either (" + "; ".join(cols) + ")")


# --- Intervals ----------------------------------------------------------------------------------------


def _span_figures(key: str, label: str, records: list[Record], median_stated: float,
                  range_stated: tuple[float, float]) -> list[Figure]:
    """Median and range of an interval column, in months, with every unit conversion shown."""
    spans: list[tuple[Record, Span]] = [(r, getattr(r, key)) for r in records if getattr(r, key).known]
    months = [s.months for _, s in spans]
    stated_range = f"{fmt_number(range_stated[0])}–{_months(range_stated[1])}"
    if not months:
        return [_cannot(f"{label}-{part}", f"{part} of the interval", stated, "no record gives this interval")
                for part, stated in (("median", _months(median_stated)), ("range", stated_range))]
    converted = [f"{s.printed} = {fmt_number(s.months)} months ({r.id})"
                 for r, s in spans if s.unit not in ("month", "months")]
    basis = (f"{len(spans)} of {len(records)} records give it ({len(records) - len(spans)} ND); "
             + ("converted: " + "; ".join(converted) + "; " if converted else "") + CONVERSIONS)
    known = _ids([r for r, _ in spans])
    med = statistics.median(months)
    lo, hi = min(months), max(months)
    same = abs(lo - range_stated[0]) < 0.05 and abs(hi - range_stated[1]) < 0.05
    return [
        Figure(id=f"{label}-median",
               statement=(f"median interval between {'the onset' if 'onset' in key else 'the diagnosis'} of JDM "
                          "and the diagnosis of ILD"),
               stated=_months(median_stated), computed=_months(med),
               verdict="agrees" if abs(med - median_stated) < 0.05 else "disagrees", basis=basis, records=known),
        Figure(id=f"{label}-range", statement="range of that interval", stated=stated_range,
               computed=f"{fmt_number(lo)}–{_months(hi)}", verdict="agrees" if same else "disagrees",
               basis=basis, records=known),
    ]


# --- Presentation and antibodies ----------------------------------------------------------------------


def _presentation(rs: list[Record]) -> list[Figure]:
    symptomatic, silent, nd = [], [], []
    for r in rs:
        p = r.presentation.strip()
        if p == ABSENT:
            silent.append(r)
        elif p == NO_DATA:
            nd.append(r)
        else:
            symptomatic.append(r)
    return [
        _count_figure("respiratory-symptoms", "patients with respiratory symptoms when ILD was diagnosed",
                      11, symptomatic, f"clinical presentation names cough and/or dyspnea; "
                      f"{len(nd)} records are ND and not counted"),
        _count_figure("asymptomatic", "patients without respiratory symptoms when ILD was diagnosed",
                      3, silent, "clinical presentation printed '—'"),
    ]


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


def _antibodies(table: Table1) -> list[Figure]:
    """Cells that name an antibody, plus what a footnote says of a group whose cells read ND."""
    rs = list(table.records)
    status, groups = _antibody_status(table)
    jo1 = [r for r in rs if status[r.id] == "anti-Jo-1"]
    return [_anti_mda5(table, status, groups),
            _count_figure("anti-jo1", "patients positive for anti-Jo-1", 1, jo1, "cells naming anti-Jo-1"),
            _not_tested(table, status, groups)]


def _anti_mda5(table: Table1, status: dict[str, str], groups: dict[str, list[str]]) -> Figure:
    mda5_cells = [r for r in table.records if status[r.id] == "anti-MDA5"]
    foot_pos = sum(table.footnote(m).anti_mda5_positive for m in groups)  # type: ignore[union-attr]
    foot_ids = [rid for m in groups for rid in groups[m]]
    n_mda5 = len(mda5_cells) + foot_pos
    return Figure(
        id="anti-mda5", statement="patients positive for anti-MDA5", stated="12", computed=str(n_mda5),
        verdict="agrees" if n_mda5 == 12 else "disagrees",
        basis=(f"{len(mda5_cells)} cells name anti-MDA5"
               + (f", plus {foot_pos} of the {len(foot_ids)} patients footnote "
                  f"{'/'.join(groups)} covers, whose cells read ND (which ones is not said)" if groups else "")),
        records=_ids(mda5_cells) + foot_ids)


def _not_tested(table: Table1, status: dict[str, str], groups: dict[str, list[str]]) -> Figure:
    rs = list(table.records)
    none_cells = [r for r in rs if status[r.id] == NO_DATA]
    foot_nt = sum(table.footnote(m).not_tested for m in groups)  # type: ignore[union-attr]
    foot_ids = [rid for m in groups for rid in groups[m]]
    grouped_cells_nd = all(next(r for r in rs if r.id == rid).autoantibody.antibody == NO_DATA for rid in foot_ids)
    n_none = len(none_cells) + foot_nt
    return Figure(
        id="not-tested", statement="patients not tested for these antibodies", stated="5", computed=str(n_none),
        verdict="agrees" if n_none == 5 else "disagrees",
        basis=(f"{len(none_cells)} antibody cells read ND (the legend's 'no data', which the text reads as not "
               f"tested)" + (f", plus {foot_nt} {'patient' if foot_nt == 1 else 'patients'} not tested, according to "
                  f"footnote {'/'.join(groups)}" if groups else "")
               + ("" if grouped_cells_nd else "; some footnote rows name an antibody in their cell")),
        records=_ids(none_cells) + foot_ids)


# --- ECMO, deaths, survivors -------------------------------------------------------------------------


def _ecmo(rs: list[Record]) -> Figure:
    """Two ECMO uses agree only if the present case is one of them, as the text says."""
    ecmo = [r for r in rs if r.ecmo == PRESENT]
    ecmo_nd = [r for r in rs if r.ecmo == NO_DATA]
    present = [r for r in rs if r.reference.printed == "Present case"]
    fig = _count_figure("ecmo", "patients who needed ECMO, the present case among them", 2, ecmo,
                        f"ECMO '+'; {len(ecmo_nd)} records are ND, so further uses cannot be excluded")
    if fig.verdict == "agrees" and not any(r.ecmo == PRESENT for r in present):
        fig = fig.model_copy(update={"verdict": "disagrees",
                                     "basis": fig.basis + "; the present case is not among them"})
    return fig


def _deaths(rs: list[Record]) -> list[Figure]:
    dead = [r for r in rs if r.outcome == "Death"]
    count = _count_figure("deaths", "patients who died", 12, dead, "outcome Death")
    if not dead:
        return [count, Figure(id="deaths-treated", statement="", stated="", computed=None,
                              verdict="cannot be checked", basis="no deaths", records=[])]
    return [count, _deaths_treated(dead), _death_timing(dead)]


def _deaths_treated(dead: list[Record]) -> Figure:
    """A death without MPT, CyA or IVCY contradicts the text; one with treatments ND leaves it open."""
    key = {"MPT", "CyA", "IVCY"}
    treated = [r for r in dead if key & set(r.treatment_codes)]
    untreated_known = [r for r in dead if r.treatments != NO_DATA and not key & set(r.treatment_codes)]
    nd_treat = [r for r in dead if r.treatments == NO_DATA]
    verdict: Verdict = "disagrees" if untreated_known else ("cannot be checked" if nd_treat else "agrees")
    return Figure(
        id="deaths-treated", statement="every patient who died had received MPT, CyA and/or IVCY",
        stated=f"all {len(dead)}", computed=f"{len(treated)} of {len(dead)}", verdict=verdict,
        basis=(f"{len(treated)} deaths list MPT, CyA or IVCY; treatments are ND for {len(nd_treat)}"
               + (f" ({', '.join(_ids(nd_treat))})" if nd_treat else "")
               + (f"; none of the three for {', '.join(_ids(untreated_known))}" if untreated_known else "")),
        records=_ids(treated))


def _death_timing(dead: list[Record]) -> Figure:
    """Every death within 4 months? A bound such as '< 4 months' settles it; '< 6 months' does not."""
    exact, bounded, unknown_t, within, beyond = _death_times(dead)
    shown = "; ".join(
        f"{r.id} {s.printed}" + ("" if s.unit in ("month", "months") else f" = {fmt_number(s.months)} months")
        for r, s in exact + bounded)
    longest = max((s.months for _, s in exact), default=None)
    verdict: Verdict = "disagrees" if beyond else ("cannot be checked" if unknown_t else "agrees")
    computed = f"{len(within)} of {len(dead)} within 4 months"
    if longest is not None:
        computed += f" (longest exact time {_months(longest)}"
        computed += f"; {len(bounded)} given only as a bound)" if bounded else ")"
    return Figure(
        id="death-within-4-months", statement="every death came within 4 months of ILD onset",
        stated="all within 4 months", computed=computed, verdict=verdict,
        basis=(f"{shown}; a bound such as '< 4 months' meets the statement by itself"
               + (f"; no usable time for {', '.join(_ids(unknown_t))}" if unknown_t else "")
               + f"; {CONVERSIONS}"),
        records=_ids(within))


def _death_times(dead: list[Record]) -> tuple[list[tuple[Record, Span]], list[tuple[Record, Span]],
                                              list[Record], list[Record], list[Record]]:
    """Deaths sorted by what their time says: exact, a bound, unknown; and within or beyond the limit."""
    exact, bounded, unknown_t, within, beyond = [], [], [], [], []
    for r in dead:
        sp = r.time_to_death.span
        if sp is None or sp.months is None:
            unknown_t.append(r)
        elif sp.comparator == "<":
            bounded.append((r, sp))
            (within if sp.months <= DEATH_LIMIT_MONTHS else unknown_t).append(r)
        else:
            exact.append((r, sp))
            (within if sp.months <= DEATH_LIMIT_MONTHS else beyond).append(r)
    return exact, bounded, unknown_t, within, beyond


def _survivors(rs: list[Record]) -> list[Figure]:
    """The text speaks of ventilation; the table's column is CMV, so the basis says which it counts."""
    alive = [r for r in rs if r.outcome == "Alive"]
    no_vent = [r for r in alive if r.cmv == ABSENT]
    vent_nd = [r for r in alive if r.cmv == NO_DATA]
    vent = [r for r in alive if r.cmv == PRESENT]
    vent_note = ("the table's ventilation column is CMV (continuous mandatory ventilation, per its legend); "
                 f"{len(vent)} survivor(s) had it ({', '.join(_ids(vent))})")
    return [
        _count_figure("survivors", "survivors", 6, alive, "outcome Alive"),
        _count_figure("survivors-no-ventilation", "survivors who did not need ventilation", 3, no_vent,
                      f"survivors with CMV '—'; {vent_note}"),
        _count_figure("survivors-ventilation-not-noted", "survivors whose ventilation is not recorded",
                      1, vent_nd, f"survivors with CMV 'ND'; {vent_note}"),
    ]
