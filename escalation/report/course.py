"""The clinical-course figure: therapies, support and markers along one day axis, with the days
where the rules put each step up for review joined to what was actually done.

One shared day axis runs through every panel. Days 0 to 80, where the escalation happens, are
drawn at full width; the history before day 0 and the long tail after day 80 (discharge,
follow-up) are compressed onto a piecewise-linear scale, shaded grey and marked with a break, so
that they stay on the figure without squeezing the acute phase.

Timing is drawn as the source gives it. A solid shape is a day the source fixes; a hatched span is
every day the source allows (from the event's early to its late placement, the two readings the
replay runs). Readings are placed by the early placement, with a horizontal bar to the late one
when the two differ. Censored values (">7500") are open triangles pointing the way the true value
lies. Everything here is for research review only, and the figure says so on its face.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import (
    FigureCanvasAgg,  # the Agg backend, without pyplot's global state
)
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from escalation.derive.placement import Placement, place
from escalation.derive.readings import Reading, engine_readings, observation_readings
from escalation.load.scenario import Observation, Scenario, Therapy
from escalation.load.vocabulary import CODES, DOSE_UNITS, CodeKind
from escalation.match.results import ReplayResult

LABEL = "RESEARCH REVIEW ONLY"
SUBLABEL = ("not medical advice. Markers show where encoded rules put a step up for review; "
            "they are not orders or recommendations for any patient.")

# The acute phase drawn at full width; outside it the axis is compressed.
FOCUS = (0, 80)
PRE_WIDTH = 9.0    # x-units (focus days) given to all the history before the focus window
TAIL_WIDTH = 34.0  # x-units given to everything after it

SHORT_NAMES = {
    "MPT": "MPT (methylpred. pulses)",
    "PSL": "PSL (prednisolone)",
    "CyA": "CyA (cyclosporine A)",
    "Tac": "Tac (tacrolimus)",
    "IVCY": "IVCY (IV cyclophosphamide)",
    "IVIG": "IVIG (IV immunoglobulin)",
    "RTX": "RTX (rituximab)",
    "MMF": "MMF (mycophenolate)",
    "TMP-SDZ": "TMP-SDZ (prophylaxis)",
    "PE": "PE (plasma exchange)",
    "invasive_ventilation": "invasive ventilation",
    "VV-ECMO": "VV-ECMO",
    "oxygen_mask": "oxygen mask",
    "nasal_cannula": "nasal cannula",
    "prone_positioning": "prone positioning",
}
ALWAYS_LANES = ("PE", "invasive_ventilation", "VV-ECMO")
SINGLE_DOSE_CODES = ("RTX", "IVCY", "IVIG")  # how a therapy is drawn when its event does not say
SUPPORT_ORDER = ("PE", "invasive_ventilation", "VV-ECMO", "prone_positioning", "oxygen_mask", "nasal_cannula")
MILESTONES_SHOWN = ("transfer", "discharge", "follow_up")

LANE_COLORS = {
    "MPT": "#b8860b", "PSL": "#d4a017", "CyA": "#2e8b57", "Tac": "#3cb371", "IVCY": "#8b4513",
    "IVIG": "#6a5acd", "RTX": "#c71585", "MMF": "#008b8b", "TMP-SDZ": "#708090",
    "PE": "#1e90ff", "invasive_ventilation": "#4682b4", "VV-ECMO": "#b22222",
    "prone_positioning": "#9370db", "oxygen_mask": "#5f9ea0", "nasal_cannula": "#5f9ea0",
}
RULESET_COLORS = ("#c0392b", "#1f4e9c", "#2e7d32", "#6a1b9a")
KIND_MARKERS = {"escalation": "D", "watch": "o", "context": "s"}
SERIES_COLORS = {"oi": "#c0392b", "osi": "#e67e22", "pf": "#1f4e9c", "sf": "#17a2b8",
                 "kl6": "#6a1b9a", "anti_mda5": "#2e7d32"}
GREY_BAND = "#eeeeee"

# (measures, panel title, y label)
PANELS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("oi", "osi"), "Oxygenation index (OI) and oxygen saturation index (OSI)", "index"),
    (("pf", "sf"), "P/F (PaO2/FiO2) and S/F (SpO2/FiO2)", "P/F mmHg, S/F"),
    (("kl6",), "KL-6", "U/mL"),
    (("anti_mda5",), "anti-MDA5 antibody titre", "index"),
)
SERIES_NAMES = {"oi": "OI", "osi": "OSI", "pf": "P/F", "sf": "S/F", "kl6": "KL-6", "anti_mda5": "anti-MDA5"}


# --- The day axis -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DayScale:
    """A piecewise-linear map from days to x: full width inside the focus, compressed outside."""

    days: tuple[float, ...]
    xs: tuple[float, ...]
    compressed: tuple[tuple[float, float], ...]  # day ranges drawn compressed
    breaks: tuple[float, ...]  # days where the scale changes

    def forward(self, d: np.ndarray | float) -> np.ndarray:
        return _piecewise(np.asarray(d, dtype=float), self.days, self.xs)

    def inverse(self, x: np.ndarray | float) -> np.ndarray:
        return _piecewise(np.asarray(x, dtype=float), self.xs, self.days)

    def width(self) -> float:
        return self.xs[-1] - self.xs[0]


def _piecewise(v: np.ndarray, src: tuple[float, ...], dst: tuple[float, ...]) -> np.ndarray:
    """np.interp, but extended linearly past both ends (axis margins lie outside the knots)."""
    out = np.interp(v, src, dst)
    lo_slope = (dst[1] - dst[0]) / (src[1] - src[0])
    hi_slope = (dst[-1] - dst[-2]) / (src[-1] - src[-2])
    out = np.where(v < src[0], dst[0] + (v - src[0]) * lo_slope, out)
    out = np.where(v > src[-1], dst[-1] + (v - src[-1]) * hi_slope, out)
    return out


def day_scale(first_day: int, last_day: int, focus: tuple[int, int] = FOCUS) -> DayScale:
    """The axis for one scenario: compress the history before the focus window and the tail after
    it when they are long enough that drawing them to scale would squeeze the focus."""
    f0, f1 = max(focus[0], first_day), min(focus[1], last_day)
    if f1 <= f0:  # the whole record lies outside the focus window: plain linear axis
        return DayScale((first_day, max(last_day, first_day + 1)), (first_day, max(last_day, first_day + 1)), (), ())
    days, xs, compressed, breaks = [], [], [], []
    if f0 - first_day > PRE_WIDTH * 1.5:
        days += [first_day]
        xs += [f0 - PRE_WIDTH]
        compressed.append((first_day, f0))
        breaks.append(f0)
    elif first_day < f0:
        days += [first_day]
        xs += [first_day]
    days += [f0, f1]
    xs += [f0, f1]
    if last_day - f1 > TAIL_WIDTH * 1.5:
        days += [last_day]
        xs += [f1 + TAIL_WIDTH]
        compressed.append((f1, last_day))
        breaks.append(f1)
    elif last_day > f1:
        days += [last_day]
        xs += [last_day]
    return DayScale(tuple(days), tuple(xs), tuple(compressed), tuple(breaks))


def day_ticks(scale: DayScale, first_day: int, last_day: int) -> list[int]:
    """Every 10 days in the full-width part, round hundreds in the tail, the ends of the record;
    a tick is dropped when its label would crowd a neighbour."""
    f0 = max(FOCUS[0], first_day) if scale.compressed else first_day
    f1 = min(FOCUS[1], last_day) if scale.compressed else last_day
    step = 10 if f1 - f0 <= 150 else 50
    cands = [first_day, 0, last_day]
    cands += list(range(math.ceil(f0 / step) * step, f1 + 1, step))
    for lo, hi in scale.compressed:
        span = hi - lo
        tail_step = 100 if span > 250 else 50 if span > 100 else 20
        cands += list(range(math.ceil(lo / tail_step) * tail_step, int(hi) + 1, tail_step))
    cands = sorted({c for c in cands if first_day <= c <= last_day})
    # keep the important ticks first, then others if they do not crowd
    priority = {first_day: 0, 0: 0, last_day: 0, FOCUS[1]: 1}
    kept: list[int] = []
    min_gap = scale.width() / 28
    for c in sorted(cands, key=lambda c: (priority.get(c, 2), c)):
        x = float(scale.forward(c))
        if all(abs(x - float(scale.forward(k))) >= min_gap for k in kept):
            kept.append(c)
    return sorted(kept)


# --- Lanes: what was done -------------------------------------------------------------------


@dataclass(frozen=True)
class LaneItem:
    event_id: str
    code: str
    style: str  # pulse, bar, continuous, dose
    early: tuple[int, int]
    late: tuple[int, int]
    label: str
    open_end: bool  # the source gives no end: the bar runs to the end of the record


def _dose_period(ev: Therapy) -> str | None:
    return DOSE_UNITS[ev.dose.unit][2] if ev.dose is not None else None


def _therapy_style(ev: Therapy, scenario: Scenario) -> str:
    if ev.days_per_course:
        return "pulse"
    if ev.until is not None:
        return "bar"
    periods = [_dose_period(e) for e in scenario.events
               if isinstance(e, Therapy) and e.code == ev.code and e.dose is not None]
    period = _dose_period(ev) or next((p for p in periods if p), None)
    if period == "day" or ev.target_trough is not None:
        return "continuous"
    if period == "dose":
        return "dose"
    # nothing says: a drug usually given as single doses, or in courses, is a dose; the rest run on
    return "dose" if ev.course is not None or ev.code in SINGLE_DOSE_CODES else "continuous"


def lane_items(scenario: Scenario, early: Placement, late: Placement) -> list[LaneItem]:
    out = []
    for ev in scenario.events:
        if ev.kind not in ("therapy", "support", "procedure"):
            continue
        e, l = early.spans[ev.id], late.spans[ev.id]
        if isinstance(ev, Therapy):
            style = _therapy_style(ev, scenario)
            label = ""
            if ev.course is not None:
                label = f"#{ev.course}" + (f"/{ev.courses_total}" if ev.courses_total else "")
        else:
            style = "bar"
            label = f"{ev.sessions_total} sessions" if getattr(ev, "sessions_total", None) else ""
        open_end = style == "bar" and getattr(ev, "until", None) is None
        if open_end or (getattr(ev, "until", None) is not None and ev.until.latest is None):
            open_end = True
        out.append(LaneItem(ev.id, ev.code, style, (e.start, e.end), (l.start, l.end), label, open_end))
    return out


def lane_order(scenario: Scenario) -> list[str]:
    present = {getattr(e, "code", None) for e in scenario.events if e.kind in ("therapy", "support", "procedure")}
    therapies = [c for c, v in CODES.items() if v.kind == CodeKind.therapy and c in present]
    others = [c for c in SUPPORT_ORDER if c in present or c in ALWAYS_LANES]
    others += sorted(c for c in present if c not in therapies and c not in others and c is not None)
    return therapies + others


# --- Readings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    measure: str
    day: int        # early placement
    day_late: int   # late placement
    reading: Reading
    superseded: bool  # a reported index the project recomputed (drawn for comparison only)


def reading_points(scenario: Scenario, early: Placement, late: Placement, measures: Iterable[str]) -> list[Point]:
    wanted = set(measures)
    out: list[Point] = []
    for ev in scenario.events:
        if not isinstance(ev, Observation):
            continue
        d, dl = early.spans[ev.id].start, late.spans[ev.id].start
        allr = observation_readings(ev)
        used = engine_readings(allr)
        for r in used:
            if r.measure in wanted:
                out.append(Point(r.measure, d, dl, r, False))
        for r in allr:
            if r.measure in wanted and r.origin == "reported" and r not in used:
                mine = next((u.value.exact for u in used if u.measure == r.measure), None)
                if mine is None or r.value.exact is None or abs(mine - r.value.exact) > 1e-9:
                    out.append(Point(r.measure, d, dl, r, True))
    return sorted(out, key=lambda p: (p.day, p.measure))


# --- Drawing --------------------------------------------------------------------------------


def _dp_rows(results: list[ReplayResult]) -> list[tuple[str, object, int]]:
    """Rows of the decision-point track: ("header", text, set index) or ("dp", point, set index)."""
    rows: list[tuple[str, object, int]] = []
    for i, res in enumerate(results):
        if len(results) > 1:
            rows.append(("header", _plain(f"{chr(65 + i)}: {res.ruleset.id} v{res.ruleset.version}"), i))
        for dp in res.decision_points:
            rows.append(("dp", dp, i))
    return rows


def _plain(text: str) -> str:
    """File text drawn as it is written: a `$` must not switch matplotlib into mathtext."""
    return text.replace("$", r"\$")


def _span_label(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}..{hi}"


def course_figure(scenario: Scenario, results: list[ReplayResult]) -> Figure:
    """The whole figure for one scenario and one or more rule sets' results (not yet saved)."""
    early, late = place(scenario, "early"), place(scenario, "late")
    first, last = early.first_day, early.last_day
    scale = day_scale(first, last)
    lanes = lane_order(scenario)
    items = lane_items(scenario, early, late)
    dp_rows = _dp_rows(results)
    n_rows = len(dp_rows) + len(lanes) + 1  # +1: milestones

    row_h = 0.27
    track_h = n_rows * row_h + 0.5
    panel_h = 1.45
    heights = [track_h] + [panel_h] * len(PANELS)
    top_pad, bottom_pad = 1.55, 1.4
    total_h = sum(heights) + 0.42 * len(PANELS) + top_pad + bottom_pad
    width = 15.0
    fig = Figure(figsize=(width, total_h), dpi=110)
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0.42 / panel_h,
                          left=2.55 / width, right=1 - 0.35 / width,
                          top=1 - top_pad / total_h, bottom=bottom_pad / total_h)
    track = fig.add_subplot(gs[0])
    panels = [fig.add_subplot(gs[i + 1], sharex=track) for i in range(len(PANELS))]
    axes = [track, *panels]
    for ax in axes:
        ax.set_xscale("function", functions=(scale.forward, scale.inverse))
    x0, x1 = scale.forward(first) - 1.2, scale.forward(last) + 1.2
    track.set_xlim(float(scale.inverse(x0)), float(scale.inverse(x1)))

    _draw_track(track, scale, dp_rows, lanes, items, scenario, early, late, results)
    for ax, (measures, title, ylabel) in zip(panels, PANELS):
        _draw_panel(ax, scenario, early, late, measures, title, ylabel, scale)

    ticks = day_ticks(scale, first, last)
    for ax in axes:
        _shade_compressed(ax, scale)
        ax.set_xticks(ticks)
        ax.tick_params(axis="x", labelsize=8.5, labelbottom=ax is panels[-1] or ax is track)
        ax.grid(axis="x", color="#dddddd", lw=0.6, zorder=0)
        ax.set_axisbelow(True)
    track.tick_params(axis="x", labeltop=True, labelbottom=False, top=True)
    panels[-1].set_xlabel(f"day (day 0 = {_plain(textwrap.shorten(scenario.scenario.day_zero, 90, placeholder='...'))}); grey = compressed scale, "
                          f"// = break", fontsize=9)

    _header(fig, scenario, results, scale, first, last)
    _legend(fig, len(results))
    return fig


def _shade_compressed(ax, scale: DayScale) -> None:
    for lo, hi in scale.compressed:
        ax.axvspan(lo, hi, color=GREY_BAND, zorder=0, lw=0)
    for b in scale.breaks:
        ax.axvline(b, color="#888888", lw=0.8, ls=(0, (2, 2)), zorder=1)
        for y in (0, 1):
            ax.text(b, y, "//", transform=ax.get_xaxis_transform(), ha="center", va="center",
                    fontsize=10, fontweight="bold", color="#555555", clip_on=False, zorder=6,
                    bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none"))


def _hatched(ax, lo: float, hi: float, y: float, h: float, color: str, z: int = 2) -> None:
    if hi <= lo:
        hi = lo + 0.6  # a one-day range still gets some width
    ax.add_patch(Rectangle((lo, y - h / 2), hi - lo, h, facecolor=color, alpha=0.16, lw=0, zorder=z))
    ax.add_patch(Rectangle((lo, y - h / 2), hi - lo, h, facecolor="none", edgecolor=color,
                           hatch="////", lw=0.0, alpha=0.55, zorder=z))


def _solid(ax, lo: float, hi: float, y: float, h: float, color: str, z: int = 3, **kw) -> None:
    ax.add_patch(Rectangle((lo, y - h / 2), max(hi - lo, 0.0), h, facecolor=color, edgecolor=color,
                           lw=0.8, zorder=z, **kw))


def _draw_item(ax, it: LaneItem, y: float, color: str, scale: DayScale, last: int) -> None:
    (es, ee), (ls, le) = it.early, it.late
    exact = it.early == it.late
    h = 0.56
    if it.style == "pulse":
        n = ee - es + 1
        if exact:
            _solid(ax, es - 0.5, ee + 0.5, y, h, color)
        else:
            _hatched(ax, es - 0.5, le + 0.5, y, h, color)
            for s in (es, ls):  # the block as it would sit at either end of the range
                ax.add_patch(Rectangle((s - 0.5, y - h / 2), n, h, facecolor="none", edgecolor=color,
                                       lw=1.1, ls="--", zorder=3))
        text = f"{it.label} {n}-day pulse" + ("" if exact else f", start {_span_label(es, ls)}")
        ax.text(le + 1.2, y, text.strip(), va="center", fontsize=7.5, color=color, zorder=5)
    elif it.style == "dose":
        if exact:
            ax.plot([es], [y], marker="o", ms=7, color=color, zorder=4, ls="none")
        else:
            _hatched(ax, es - 0.3, ls + 0.3, y, h, color)
            ax.plot([es, ls], [y, y], marker="o", ms=6, mfc="white", mec=color, mew=1.3, ls="none", zorder=4)
        if it.label:
            ax.annotate(it.label, (ls if not exact else es, y), xytext=(5, 4), textcoords="offset points",
                        fontsize=7.5, color=color, zorder=5)
    elif it.style == "continuous":
        # the start (exact, or the days it may fall on), then a dotted run whose end is not given
        if es == ls:
            ax.plot([es], [y], marker=">", ms=7, color=color, zorder=4, ls="none")
        else:
            _hatched(ax, es, ls, y, h, color)
            ax.plot([es], [y], marker=">", ms=6, mfc="white", mec=color, mew=1.2, ls="none", zorder=4)
        run_end = float(scale.inverse(scale.forward(ls) + 5))
        ax.annotate("", xy=(run_end, y), xytext=(ls, y),
                    arrowprops=dict(arrowstyle="->", color=color, lw=1.1, ls=":"), zorder=4)
    else:  # a bar: the days it surely runs solid, the days it may run hatched
        lo_possible, hi_possible = min(es, ls), max(ee, le)
        sure_lo, sure_hi = max(es, ls), min(ee, le)
        if hi_possible > lo_possible and (sure_lo, sure_hi) != (lo_possible, hi_possible):
            _hatched(ax, lo_possible, hi_possible + (0.5 if hi_possible < last else 0), y, h, color)
        if sure_hi >= sure_lo:
            _solid(ax, sure_lo, max(sure_hi, sure_lo + 0.6), y, h, color, alpha=0.85)
        if it.open_end:
            ax.plot([hi_possible], [y], marker=">", ms=6, color=color, zorder=4, clip_on=False)
        if it.label:
            wide = sure_hi - sure_lo > 8
            ax.annotate(it.label, (sure_lo if sure_hi >= sure_lo else lo_possible, y),
                        xytext=(6 if wide else 14, 0), textcoords="offset points", va="center",
                        fontsize=7.5, color="white" if wide else color, zorder=5, fontweight="bold")


def _draw_track(ax, scale: DayScale, dp_rows, lanes, items, scenario, early, late, results) -> None:
    n_dp = len(dp_rows)
    lane_y = {code: n_dp + i for i, code in enumerate(lanes)}
    milestone_y = n_dp + len(lanes)
    labels, colors = [], []
    last = early.last_day
    # decision-point rows
    for row, (kind, obj, k) in enumerate(dp_rows):
        if kind == "header":
            labels.append(str(obj))
            colors.append(RULESET_COLORS[k % len(RULESET_COLORS)])
            continue
        dp = obj
        color = RULESET_COLORS[k % len(RULESET_COLORS)] if len(results) > 1 or dp.kind == "escalation" \
            else ("#7b1fa2" if dp.kind == "watch" else "#757575")
        step = f"step {dp.step}" if dp.step else dp.kind
        labels.append(f"{step}{' #' + str(dp.occurrence) if dp.occurrence > 1 else ''}"
                      f"{' (assumption)' if dp.rests_on_assumption else ''}"
                      f"{' (case-specific)' if dp.rests_on_case_specific else ''}")
        colors.append(color)
        marker = KIND_MARKERS.get(dp.kind, "D")
        if dp.day != dp.day_latest:
            ax.plot([dp.day, dp.day_latest], [row, row], color=color, lw=5, alpha=0.3,
                    solid_capstyle="butt", zorder=3)
            ax.plot([dp.day_latest], [row], marker=marker, ms=7, mfc="white", mec=color, mew=1.4, zorder=4)
        ax.plot([dp.day], [row], marker=marker, ms=8,
                mfc=color if not dp.timing.endswith("only") else "white", mec=color, mew=1.4, zorder=5)
        # joined to the action actually taken
        for a in dp.actions:
            if a.code not in lane_y:
                continue
            yl = lane_y[a.code]
            ax.plot([dp.day, a.day], [row, yl], color=color, lw=0.9, ls=(0, (4, 2)), alpha=0.75, zorder=2)
            ax.plot([a.day], [yl], marker="o", ms=11, mfc="none", mec=color, mew=1.5, zorder=6)
            if a.day_latest != a.day:
                ax.plot([a.day_latest], [yl], marker="o", ms=11, mfc="none", mec=color, mew=1.0,
                        ls="none", zorder=6, alpha=0.6)
        lag = "" if dp.lag_days is None else f"; done {_span_label(dp.actual_day, dp.actual_day_latest)}, " \
            f"lag {_span_label(dp.lag_days, dp.lag_days_max)} d"
        text = f"{_plain(dp.rule_id)}  (day {_span_label(dp.day, dp.day_latest)}{lag})"
        right_room = scale.forward(last) - scale.forward(dp.day_latest)
        if right_room > 0.45 * scale.width():
            ax.annotate(text, (dp.day_latest, row), xytext=(8, 0), textcoords="offset points",
                        va="center", fontsize=8, color=color, zorder=6,
                        bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.85))
        else:
            ax.annotate(text, (dp.day, row), xytext=(-8, 0), textcoords="offset points", ha="right",
                        va="center", fontsize=8, color=color, zorder=6,
                        bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.85))
    _draw_unflagged(ax, results, lane_y, scale, last)
    # lanes
    for code in lanes:
        y = lane_y[code]
        color = LANE_COLORS.get(code, "#555555")
        labels.append(SHORT_NAMES.get(code, code))
        colors.append("#222222")
        ax.axhline(y, color="#e6e6e6", lw=0.6, zorder=1)
        mine = [it for it in items if it.code == code]
        if not mine:
            ax.text(0.01, y, "none in this timeline", transform=ax.get_yaxis_transform(), va="center",
                    fontsize=7.5, color="#999999", style="italic")
        for it in mine:
            _draw_item(ax, it, y, color, scale, last)
    # milestones
    labels.append("milestones")
    colors.append("#222222")
    shown = [ev for ev in scenario.events
             if ev.kind == "milestone" and ev.code in MILESTONES_SHOWN or ev.kind == "outcome"]
    for i, ev in enumerate(shown):
        e, l = early.spans[ev.id].start, late.spans[ev.id].start
        name = ev.code.replace("_", "-") if ev.kind == "milestone" else f"outcome: {ev.status}"
        if e != l:
            _hatched(ax, e, l, milestone_y, 0.5, "#555555")
        ax.plot([e], [milestone_y], marker="|", ms=10, mew=2, color="#333333", zorder=4)
        near_end = scale.forward(e) > scale.forward(last) - 0.1 * scale.width()
        ax.annotate(name, (e if not near_end else max(e, l), milestone_y),
                    xytext=(2 if not near_end else -2, -11 if i % 2 == 0 else 11),
                    textcoords="offset points", fontsize=7.5, color="#333333",
                    ha="right" if near_end else "left", va="center")
    if n_dp:
        ax.axhline(n_dp - 0.5, color="#444444", lw=1.0, zorder=1)
    ax.set_ylim(milestone_y + 0.9, -0.8)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8.5)
    for tick, c in zip(ax.get_yticklabels(), colors):
        tick.set_color(c)
    for row, (kind, _, _) in enumerate(dp_rows):
        if kind == "header":
            ax.get_yticklabels()[row].set_fontweight("bold")
    ax.tick_params(axis="y", length=0)
    title = "Decision points (put up for research review) joined to the action taken, above what was done"
    if not results or not any(r.decision_points for r in results):
        title += " - no decision points"
    ax.set_title(title, fontsize=10, loc="left", pad=18)


UNFLAGGED_COLOR = "#e67e22"


def _draw_unflagged(ax, results: list[ReplayResult], lane_y: dict[str, float], scale: DayScale, last: int) -> None:
    """Actions no decision point was matched to: a cross above the lane at their start (faded at
    the late placement's start when it differs), never joined to a decision point, unlike the
    rings of flagged actions. With two rule sets each has its own colour and height."""
    many = len(results) > 1
    for k, res in enumerate(results):
        color = RULESET_COLORS[k % len(RULESET_COLORS)] if many else UNFLAGGED_COLOR
        for a in res.unflagged_actions:
            if a.code not in lane_y:
                continue
            y = lane_y[a.code] - 0.34 + (0.2 * k if many else 0)
            gid = f"unflagged-{k}-{a.event_id}"
            if a.day_latest != a.day:
                ax.plot([a.day, a.day_latest], [y, y], color=color, lw=1.0, ls=":", zorder=6)
                ax.plot([a.day_latest], [y], marker="X", ms=7, mfc="white", mec=color, mew=1.2, ls="none",
                        zorder=7, gid=gid + "-late")
            ax.plot([a.day], [y], marker="X", ms=8, color=color, mec="white", mew=0.6, ls="none", zorder=7, gid=gid)
            where = "" if len(a.placements) == 2 else f", {a.placements[0]} only"
            label = f"{chr(65 + k) + ': ' if many else ''}UNFLAGGED{where}"
            near_end = scale.forward(a.day_latest) > scale.forward(last) - 0.12 * scale.width()
            ax.annotate(label, (a.day if near_end else a.day_latest, y), xytext=(-5 if near_end else 5, 3),
                        textcoords="offset points", ha="right" if near_end else "left", va="bottom",
                        fontsize=6.5, color=color, zorder=7, fontweight="bold")


def _fmt(x: float) -> str:
    """A reading as a person reads it: whole numbers from 100 up, else three significant digits."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _value_label(r: Reading) -> str:
    v = r.value
    if v.value is not None:
        return _fmt(v.value) if v.comparator == "=" else f"{v.comparator}{_fmt(v.value)}"
    return f"{_fmt(v.min)}-{_fmt(v.max)}"  # type: ignore[arg-type]


def _upper_reference(points: list[Point]) -> float | None:
    for p in points:
        ref = p.reading.value.reference
        if ref is not None:
            return ref.high if ref.high is not None else ref.below
    return None


def _draw_panel(ax, scenario, early, late, measures, title, ylabel, scale: DayScale) -> None:
    points = reading_points(scenario, early, late, measures)
    used = [p for p in points if not p.superseded]
    present = []
    values: list[float] = []
    for m in measures:
        color = SERIES_COLORS.get(m, "#333333")
        mine = [p for p in used if p.measure == m]
        if not mine:
            continue
        present.append(m)
        # a thin line through the readings in day order, dashed where a value is censored
        for a, b in zip(mine, mine[1:]):
            censored = any(q.reading.value.exact is None for q in (a, b))
            ax.plot([a.day, b.day], [_central(a.reading), _central(b.reading)], color=color, lw=1.0,
                    alpha=0.55, zorder=2, ls="--" if censored else "-")
        for p in mine:
            v = p.reading.value
            y = _central(p.reading)
            values.append(y)
            marker = "s" if p.reading.origin == "reported" else "o"
            if v.value is not None and v.comparator != "=":
                up = v.comparator in (">", ">=")
                ax.plot([p.day], [y], marker="^" if up else "v", ms=9, mfc="white", mec=color, mew=1.6,
                        zorder=5)
                ax.annotate("", xy=(p.day, y), xytext=(0, 16 if up else -16), textcoords="offset points",
                            arrowprops=dict(arrowstyle="<-", color=color, lw=1.2), zorder=4)
            elif v.value is None:
                ax.errorbar([p.day], [y], yerr=[[y - v.min], [v.max - y]], fmt="none", ecolor=color,
                            capsize=3, zorder=4)
                ax.plot([p.day], [y], marker=marker, ms=6, mfc="white", mec=color, zorder=5)
            else:
                ax.plot([p.day], [y], marker=marker, ms=6.5, color=color, zorder=5)
            if p.day_late != p.day:
                ax.errorbar([p.day], [y], xerr=[[0], [p.day_late - p.day]], fmt="none", ecolor=color,
                            capsize=3, lw=1.2, zorder=4)
            when = f"day {_span_label(p.day, p.day_late)}"
            right = scale.forward(p.day_late) > scale.forward(early.last_day) - 0.18 * scale.width()
            ax.annotate(f"{SERIES_NAMES.get(m, m)} {_value_label(p.reading)} ({when})",
                        (p.day, y), xytext=(-7 if right else 9, 7), textcoords="offset points",
                        ha="right" if right else "left", fontsize=7.5, color=color, zorder=6,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    # reported values the project recomputed, shown beside the value the rules use
    for p in points:
        if p.superseded:
            y = _central(p.reading)
            values.append(y)
            ax.plot([p.day], [y], marker="x", ms=8, mew=1.8, color="#666666", zorder=5, ls="none")
            ax.annotate(f"as reported: {_value_label(p.reading)}", (p.day, y), xytext=(7, -10),
                        textcoords="offset points", fontsize=7.5, color="#555555", zorder=6)
    ref = _upper_reference(used)
    if ref is not None:
        ax.axhline(ref, color="#777777", lw=0.9, ls="--", zorder=1)
        ax.annotate(f"upper reference limit {ref:g}", (0.45, ref), xycoords=("axes fraction", "data"),
                    xytext=(0, 3), textcoords="offset points", ha="left", fontsize=7.5, color="#555555")
        values.append(ref)
    # trends the source states in words
    trends = [e for e in scenario.events if e.kind == "trend_report" and e.marker in measures]
    positive = [v for v in values if v > 0]
    if "anti_mda5" in measures and positive and max(positive) / min(positive) > 8:
        ax.set_yscale("log")
    if values:
        lo, hi = min(values), max(values)
        if ax.get_yscale() == "log":
            ax.set_ylim(lo / 3, hi * (6 if trends else 3))
        else:
            pad = (hi - lo) * 0.25 or max(abs(hi) * 0.3, 1)
            ax.set_ylim(min(0, lo - pad), hi + pad * (2.5 if trends else 1.4))
    for i, ev in enumerate(trends):
        d0, d1 = early.spans[ev.id].start, late.spans[ev.id].start
        arrow = {"decreasing": "\u2193", "rising": "\u2191", "not_decreasing": "\u2192\u2191",
                 "stable": "\u2192"}[ev.direction]
        yfrac = 0.93 - 0.11 * (i % 4)
        trans = ax.get_xaxis_transform()
        ax.plot([d0, max(d1, d0 + 0.6)], [yfrac, yfrac], transform=trans, color="#2e7d32", lw=3.5,
                alpha=0.35, solid_capstyle="butt")
        ax.text(max(d1, d0 + 0.6) + 0.8, yfrac, f"{arrow} {ev.direction.replace('_', ' ')} "
                f"(reported, d{_span_label(d0, d1)})", transform=trans, va="center", fontsize=7.5,
                color="#1b5e20")
    missing = [SERIES_NAMES.get(m, m) for m in measures if m not in present]
    if missing:
        why = (" (S/F and OSI need an exact SpO2 at or below 97 % with FiO2)"
               if set(missing) & {"S/F", "OSI"} else "")
        ax.text(0.995, 0.05, f"no {', '.join(missing)} readings{why}", transform=ax.transAxes,
                ha="right", fontsize=7.5, color="#777777", style="italic")
    ax.set_title(title, fontsize=9.5, loc="left")
    ax.set_ylabel(ylabel, fontsize=8.5)
    ax.tick_params(axis="y", labelsize=8)


def _central(r: Reading) -> float:
    v = r.value
    if v.value is not None:
        return v.value
    return (v.min + v.max) / 2  # type: ignore[operator]


def _header(fig: Figure, scenario: Scenario, results, scale: DayScale, first: int, last: int) -> None:
    fig.text(0.5, 1 - 0.12 / fig.get_figheight(), f"{LABEL} \u2013 {SUBLABEL}", ha="center", va="top",
             fontsize=10.5, fontweight="bold", color="#8b0000",
             bbox=dict(boxstyle="round,pad=0.35", fc="#fff3f3", ec="#8b0000", lw=1.2))
    title = _plain(textwrap.shorten(scenario.scenario.title, 130, placeholder="..."))
    hyp = ("  [hypothetical variant]" if scenario.scenario.hypothetical
           and "hypothetical" not in scenario.scenario.title.lower() else "")
    fig.text(2.55 / fig.get_figwidth(), 1 - 0.5 / fig.get_figheight(),
             f"Clinical course: {title}{hyp}", fontsize=12, fontweight="bold", va="top")
    sets = _plain(", ".join(f"{chr(65 + i) + ': ' if len(results) > 1 else ''}{r.ruleset.id} v{r.ruleset.version}"
                            for i, r in enumerate(results)))
    comp = "; ".join(f"days {lo}..{hi}" for lo, hi in scale.compressed)
    fig.text(2.55 / fig.get_figwidth(), 1 - 0.76 / fig.get_figheight(),
             f"scenario {scenario.scenario.id}, days {first}..{last}; rule set{'s' if len(results) > 1 else ''}: "
             f"{sets}" + (f"; compressed (grey): {comp}" if comp else ""),
             fontsize=8.5, color="#333333", va="top")


def _legend(fig: Figure, n_sets: int) -> None:
    if n_sets > 1:
        kinds = [Line2D([], [], marker="D", ls="none", color="#333333", ms=7, label="decision point: escalation step"),
                 Line2D([], [], marker="o", ls="none", color="#333333", ms=7, label="decision point: watch"),
                 Line2D([], [], marker="s", ls="none", color="#333333", ms=7, label="decision point: context")]
        kinds += [Line2D([], [], marker="D", ls="none", color=RULESET_COLORS[i % len(RULESET_COLORS)], ms=7,
                         label=f"rule set {chr(65 + i)}") for i in range(n_sets)]
    else:
        kinds = [Line2D([], [], marker="D", ls="none", color=RULESET_COLORS[0], ms=7,
                        label="decision point (escalation step)"),
                 Line2D([], [], marker="o", ls="none", color="#7b1fa2", ms=7, label="decision point: watch"),
                 Line2D([], [], marker="s", ls="none", color="#757575", ms=7, label="decision point: context")]
    handles = [
        *kinds,
        Line2D([], [], color=RULESET_COLORS[0], lw=5, alpha=0.3, label="decision point: day range a..b"),
        Line2D([], [], color=RULESET_COLORS[0], ls=(0, (4, 2)), marker="o", mfc="none", ms=10,
               label="joined to the action taken (ring)"),
        Line2D([], [], marker="X", ls="none", color=UNFLAGGED_COLOR if n_sets == 1 else "#333333", ms=8,
               label="action with no decision point (UNFLAGGED)"),
        Patch(facecolor="#4682b4", alpha=0.85, label="days fixed by the source"),
        Patch(facecolor="#4682b4", alpha=0.2, hatch="////", edgecolor="#4682b4",
              label="days the source allows (timing uncertain)"),
        Line2D([], [], marker="o", ls="none", color="#c71585", ms=7, label="single dose"),
        Line2D([], [], marker=">", ls=":", color="#2e8b57", ms=7, label="continuous therapy (end not given)"),
        Line2D([], [], marker="^", ls="none", mfc="white", mec="#2e7d32", mew=1.5, ms=8,
               label="censored value (e.g. >7500)"),
        Line2D([], [], marker="s", ls="none", color="#1f4e9c", ms=6, label="index as reported (rules use it)"),
        Line2D([], [], marker="x", ls="none", color="#666666", mew=1.8, ms=7,
               label="as reported, differs from recomputed"),
        Line2D([], [], marker="o", color="#6a1b9a", ms=6, label="reading (early placement; bar to late)"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=True,
               bbox_to_anchor=(0.5, 0.3 / fig.get_figheight()), handlelength=2.6)
    fig.text(0.5, 0.07 / fig.get_figheight(), f"{LABEL} \u2013 not medical advice", ha="center",
             va="bottom", fontsize=9.5, fontweight="bold", color="#8b0000")


def save_course(fig: Figure, png: Path, svg: Path) -> None:
    """PNG and SVG, without time stamps so the same inputs give the same files."""
    with matplotlib.rc_context({"svg.hashsalt": "escalation-course", "svg.fonttype": "path"}):
        fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None})
