"""`escalation report`: one scenario replayed against one or two rule sets, written for people.

The report folder holds `report.html` (one self-contained file: styles and the figure inline, no
script, no network reference, and a content-security policy that forbids both), `report.md`,
`course.png`, `course.svg` and `replay.json` (the first rule set's result, as `escalation replay
--format json` prints it; with two rule sets also `replay-<ruleset id>.json` for each).

This stage only renders what it is given: loading and replaying belong to `escalation.api`. The
page, its style sheet and the Markdown are Jinja2 templates in `templates/`, shipped as package
files. Every text that comes from a scenario or rule file is escaped: the HTML with autoescape on
and no `|safe` anywhere, the Markdown by an explicit `|md` filter that backslash-escapes Markdown
syntax and `<` and writes no HTML entity. Nothing is written until everything has been rendered,
and then all files are written into a temporary folder beside the target and moved into place,
so a failure leaves no half-written report.

Like every output of this project, the report is for research review only; it opens and closes with
that notice, and no decision point in it is worded as an order.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from escalation.analysis.compare import Change, ScenarioDiff, action_text, diff_results, shift_text, side_marks
from escalation.load.errors import ArgumentError, InputError
from escalation.load.ruleset import Ruleset
from escalation.load.scenario import Scenario
from escalation.load.timing import span_label
from escalation.load.vocabulary import CODES
from escalation.match.results import (
    NOTICE,
    ReplayResult,
    UnflaggedAction,
    WhyNot,
    actual_text,
    day_text,
    lag_text,
)
from escalation.report.files import publish, staged
from escalation.report.text import to_json
from escalation.version import __version__

MAX_RULESETS = 2
FILES = ("report.html", "report.md", "course.png", "course.svg", "replay.json")


# --- What the report shows, computed once for both renderings ------------------------------------


@dataclass(frozen=True)
class RulesetView:
    letter: str
    path: str | None
    ruleset: Ruleset
    result: ReplayResult


@dataclass(frozen=True)
class Report:
    scenario: Scenario
    scenario_path: str
    sets: list[RulesetView]
    diff: ScenarioDiff | None


def check_ruleset_count(n: int) -> None:
    """One rule set, or two to compare; callers check before loading anything, and so does the writer."""
    if n < 1:
        raise ArgumentError("rules", "give at least one rule set", option="--rules")
    if n > MAX_RULESETS:
        raise ArgumentError("rules", f"give at most {MAX_RULESETS} rule sets, not {n}", option="--rules")


def _report(scenario: Scenario, scenario_path: Path, results: list[ReplayResult], rulesets: list[Ruleset],
            rule_paths: list[Path] | None) -> Report:
    check_ruleset_count(len(results))
    if len(rulesets) != len(results) or (rule_paths is not None and len(rule_paths) != len(results)):
        raise ValueError("give one rule set (and one rule path, if any) per result")
    paths = [Path(p).as_posix() for p in rule_paths] if rule_paths is not None else [None] * len(results)
    sets = [RulesetView(chr(65 + i), path, rs, result)
            for i, (path, rs, result) in enumerate(zip(paths, rulesets, results))]
    diff = diff_results(results[0], results[1]) if len(results) == 2 else None
    return Report(scenario, Path(scenario_path).as_posix(), sets, diff)


def _names(codes: list[str], ruleset: Ruleset) -> list[str]:
    out = []
    for c in codes:
        if c in CODES:
            out.append(f"{c} ({CODES[c].name})")
        elif c in ruleset.labels:
            out.append(f"{c} ({ruleset.labels[c].kind}: {ruleset.labels[c].description})")
        else:
            out.append(c)
    return out


def _side(s) -> str:
    return "-" if s is None else span_label(s.day, s.day_latest) + (f" ({s.timing})" if s.timing.endswith("only") else "")


def _change_marks(report: Report, index: int) -> dict[tuple[str, int, int], list[Change]]:
    """For one side of the comparison: the changes each of its decision points takes part in."""
    out: dict[tuple[str, int, int], list[Change]] = {}
    if report.diff is None:
        return out
    for c in report.diff.changes:
        side = c.a if index == 0 else c.b
        if side is not None:
            out.setdefault((side.rule_id, side.day, side.day_latest), []).append(c)
    return out


def _mark_text(c: Change) -> str:
    code = c.code + (f" #{c.occurrence}" if c.occurrence > 1 else "")
    if c.status == "moved":
        return f"{code} moved {shift_text(c)} d"
    return f"{code} {c.status}"


def _event_what(ev) -> str:
    """One line on what an event states, from its fields (never from its note)."""
    k = ev.kind
    if k == "observation":
        parts = [f"{m} {v.label()}" for m, v in ev.values.items()]
        parts += [f"{m} {v.label()} (reported)" for m, v in ev.reported.items()]
        if ev.oxygen_device:
            parts.append(f"on {ev.oxygen_device}")
        return ", ".join(parts)
    if k == "trend_report":
        return f"{ev.marker} {ev.direction.replace('_', ' ')} (reported)"
    if k == "therapy":
        bits = [ev.code]
        if ev.course:
            bits.append(f"course {ev.course}" + (f"/{ev.courses_total}" if ev.courses_total else ""))
        if ev.dose:
            bits.append(f"{ev.dose.value:g} {ev.dose.unit}")
        if ev.days_per_course:
            bits.append(f"{ev.days_per_course} days per course")
        if ev.until:
            bits.append(f"until {ev.until.label()}")
        return ", ".join(bits)
    if k in ("support", "procedure"):
        bits = [ev.code]
        if getattr(ev, "sessions_total", None):
            bits.append(f"{ev.sessions_total} sessions")
        if ev.until:
            bits.append(f"until {ev.until.label()}")
        return ", ".join(bits)
    if k == "imaging":
        return f"{ev.modality} {ev.region}: {'; '.join(ev.findings)}"
    if k in ("finding", "milestone"):
        return ev.code
    if k == "outcome":
        return ev.status
    return ""


def _unflagged_view(a: UnflaggedAction) -> dict:
    """An action no decision point was matched to, as both renderings show it."""
    return {"a": a, "day": span_label(a.day, a.day_latest),
            "placements": "both" if len(a.placements) == 2 else f"{a.placements[0]} only",
            "candidates": [{"c": c, "where": f"day {c.day}, " + " and ".join(c.placements) + " placement"}
                           for c in a.candidates]}


def _why_not_view(w: WhyNot) -> dict:
    """A rule that never fired: its id and the rest of its line."""
    return {"rule_id": w.rule_id, "text": w.text.split(": ", 1)[1]}


def _action_changes(report: Report) -> list[dict]:
    if report.diff is None:
        return []
    return [{"c": c, "code": f"{c.code} ({c.event_id})", "day": span_label(c.day, c.day_latest),
             "a": action_text(c.a), "b": action_text(c.b)} for c in report.diff.unflagged]


def _context(report: Report, figure_png: bytes) -> dict:
    sc = report.scenario
    rows = []
    for i, s in enumerate(report.sets):
        marks = _change_marks(report, i)
        dps = []
        for n, dp in enumerate(s.result.decision_points, 1):
            changes = marks.get((dp.rule_id, dp.day, dp.day_latest), [])
            dps.append({
                "n": n, "dp": dp, "day": day_text(dp), "actual": actual_text(dp), "lag": lag_text(dp),
                "proposes": _names(dp.proposes, s.ruleset),
                "step": f"step {dp.step}" if dp.step else dp.kind,
                "changes": [{"status": c.status, "text": _mark_text(c)} for c in changes],
                "changed": any(c.status != "same" for c in changes),
            })
        rows.append({"view": s, "points": dps, "unflagged": [_unflagged_view(a) for a in s.result.unflagged_actions],
                     "why_not": [_why_not_view(w) for w in s.result.why_not]})
    changes = []
    if report.diff is not None:
        for c in report.diff.changes:
            changes.append({
                "c": c, "code": c.code + (f" #{c.occurrence}" if c.occurrence > 1 else ""),
                "a": _side(c.a), "a_rule": c.a.rule_id if c.a else "", "a_marks": side_marks(c.a),
                "b": _side(c.b), "b_rule": c.b.rule_id if c.b else "", "b_marks": side_marks(c.b),
                "shift": shift_text(c),
            })
    first = report.sets[0].result
    return {
        "notice": NOTICE,
        "version": __version__,
        "sc": sc,
        "scenario_path": report.scenario_path,
        "first_day": first.scenario.first_day,
        "last_day": first.scenario.last_day,
        "diagnoses": [{"code": d.code, "day": d.day.label(), "note": d.day.note, "source": d.source.label()}
                      for d in sc.patient.diagnoses],
        "autoantibodies": [{"name": a.name, "result": a.result.replace("_", " ")} for a in sc.patient.autoantibodies],
        "sets": rows,
        "changes": changes,
        "mark_class": {"ASSUMPTION": "assumption", "CASE-SPECIFIC": "case-specific", "DISPUTED-VALUE": "disputed"},
        "changed_count": sum(1 for c in changes if c["c"].status != "same"),
        "action_changes": _action_changes(report),
        "findings": first.findings,
        "agreeing": [c for c in first.checks if c.agrees],
        "tolerance": first.tolerance,
        "doses": first.derived_doses,
        "figure_b64": base64.b64encode(figure_png).decode("ascii"),
        "events": [{"id": ev.id, "kind": ev.kind, "day": ev.day.label(), "day_note": ev.day.note,
                    "what": _event_what(ev), "source": ev.source.label(), "note": ev.note,
                    "hypothetical": ev.hypothetical} for ev in sc.events],
    }


# --- Rendering: the templates are files in escalation/report/templates -----------------------------

def _environment(autoescape: bool) -> Environment:
    return Environment(loader=PackageLoader("escalation.report", "templates"), autoescape=autoescape,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                       keep_trailing_newline=True)


# HTML: every value is escaped, and the templates use no |safe. The style sheet goes in with
# {% include %}, as template text: inside a style element an escaped quote is not decoded.
_HTML_ENV = _environment(autoescape=True)
# Markdown: HTML escaping would leave entities such as &gt; in plain text, so this one escapes
# nothing by itself and every scenario or rule text is passed through the explicit |md filter.
_MD_ENV = _environment(autoescape=False)

# '<' always, so no tag or autolink can open; '&' only where it would start an entity. A bare '>'
# stays: with no '<' it closes nothing, and md() text never starts a line, so it quotes nothing.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#!{}<]|&(?=#?\w+;))")


def md(text: object) -> str:
    """Scenario text made inert in Markdown: no HTML, links, emphasis or table breaks; one line."""
    return " ".join(_MD_SPECIAL.sub(r"\\\1", str(text)).split())


_MD_ENV.filters["md"] = md


def render_html(report: Report, figure_png: bytes) -> str:
    """The page people open: self-contained, the figure inline, all file text escaped."""
    return _HTML_ENV.get_template("report.html.j2").render(**_context(report, figure_png))


def render_markdown(report: Report) -> str:
    """The same report as plain text that also reads as Markdown, for review in a repository."""
    return _MD_ENV.get_template("report.md.j2").render(**_context(report, b""))


# --- Writing the folder ---------------------------------------------------------------------------


def _json_names(report: Report) -> list[tuple[str, ReplayResult]]:
    out = [("replay.json", report.sets[0].result)]
    if len(report.sets) > 1:
        seen: dict[str, int] = {}
        for s in report.sets:
            rid = s.result.ruleset.id
            seen[rid] = seen.get(rid, 0) + 1
            name = f"replay-{rid}.json" if seen[rid] == 1 else f"replay-{rid}-{seen[rid]}.json"
            out.append((name, s.result))
    return out


def write_report(scenario: Scenario, scenario_path: Path, results: list[ReplayResult],
                 rulesets: list[Ruleset], out: Path, *, rule_paths: list[Path] | None = None) -> list[Path]:
    """Render what the caller has already loaded and replayed, then write every file into `out`.

    This stage reads results and never loads or replays, so notebooks can report on results they
    made themselves. `rulesets[i]` is the rule set `results[i]` came from (its labels name the
    codes); `rule_paths`, if given, are shown as the rule files. Nothing is written unless all of
    it renders (escalation.report.files.staged and publish).
    """
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "must be a folder, and this is a file")
    report = _report(scenario, scenario_path, results, rulesets, rule_paths)
    _refuse_stale(out, [name for name, _ in _json_names(report)])
    with staged(out) as stage:
        return publish(stage, out, _render_into(stage, report))


def _refuse_stale(out: Path, names: list[str]) -> None:
    """A replay JSON of an earlier report that this one would not replace (another rule set, or
    another count of them) is refused rather than left beside the new files, where it would read
    as this report's; nothing is deleted: the user moves it or names another folder."""
    if not out.is_dir():
        return
    stale = sorted(p.name for p in out.glob("replay*.json") if p.name not in names)
    if stale:
        raise InputError(str(out), f"holds {', '.join(stale)}, which this report would not replace (it writes "
                         f"{', '.join(names)}): move {'them' if len(stale) > 1 else 'it'} away or name another "
                         "folder, or an earlier report's replay would read as this one's")


def _render_into(folder: Path, report: Report) -> list[str]:
    """Every file of the report, written into a folder nobody else looks at yet."""
    from escalation.report.course import course_figure, save_course

    fig = course_figure(report.scenario, [s.result for s in report.sets])
    save_course(fig, folder / "course.png", folder / "course.svg")
    png = (folder / "course.png").read_bytes()
    (folder / "report.html").write_text(render_html(report, png), encoding="utf-8")
    (folder / "report.md").write_text(render_markdown(report), encoding="utf-8")
    names = []
    for name, result in _json_names(report):
        (folder / name).write_text(to_json(result), encoding="utf-8")
        names.append(name)
    return [*FILES[:4], *names]
