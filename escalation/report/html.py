"""`escalation report`: one scenario replayed against one or two rule sets, written for people.

The report folder holds `report.html` (one self-contained file: styles and the figure inline, no
script, no network reference, and a content-security policy that forbids both), `report.md`,
`course.png`, `course.svg` and `replay.json` (the first rule set's result, as `escalation replay
--format json` prints it; with two rule sets also `replay-<ruleset id>.json` for each).

Every text that comes from a scenario or rule file is escaped: the HTML is rendered by Jinja2 with
autoescape on and no `|safe` anywhere, and the Markdown escapes HTML and Markdown syntax. Nothing is
written until everything has been computed, and then all files are written into a temporary folder
beside the target and moved into place, so a failure leaves no half-written report.

Like every output of this project, the report is for research review only; it opens and closes with
that notice, and no decision point in it is worded as an order.
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from escalation.analysis.compare import Change, ScenarioDiff, diff_results, shift_text
from escalation.evaluate.replay import replay as run_replay
from escalation.load.errors import InputError
from escalation.load.loading import load_ruleset, load_scenario
from escalation.load.ruleset import Ruleset
from escalation.load.scenario import Scenario
from escalation.load.timing import span_label
from escalation.load.vocabulary import CODES
from escalation.match.matching import build_result
from escalation.match.results import (
    NOTICE,
    ReplayResult,
    actual_text,
    day_text,
    lag_text,
)
from escalation.report.files import umask
from escalation.report.text import to_json
from escalation.version import __version__

MAX_RULESETS = 2
FILES = ("report.html", "report.md", "course.png", "course.svg", "replay.json")


# --- What the report shows, computed once for both renderings ------------------------------------


@dataclass(frozen=True)
class RulesetView:
    letter: str
    path: str
    ruleset: Ruleset
    result: ReplayResult


@dataclass(frozen=True)
class Report:
    scenario: Scenario
    scenario_path: str
    sets: list[RulesetView]
    diff: ScenarioDiff | None


def build_report(scenario_path: Path, rule_paths: list[Path]) -> Report:
    """Load, validate and replay everything; raises InputError before anything is written."""
    if not rule_paths:
        raise InputError("--rules", "give at least one rule set")
    if len(rule_paths) > MAX_RULESETS:
        raise InputError("--rules", f"give at most {MAX_RULESETS} rule sets, not {len(rule_paths)}")
    scenario = load_scenario(scenario_path)
    rulesets = [load_ruleset(p) for p in rule_paths]
    sets = [
        RulesetView(chr(65 + i), Path(p).as_posix(), rs, build_result(run_replay(scenario, rs), scenario_path))
        for i, (p, rs) in enumerate(zip(rule_paths, rulesets))
    ]
    diff = diff_results(sets[0].result, sets[1].result) if len(sets) == 2 else None
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
    return "-" if s is None else span_label(s.day, s.day_latest)


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
        rows.append({"view": s, "points": dps})
    changes = []
    if report.diff is not None:
        for c in report.diff.changes:
            changes.append({
                "c": c, "code": c.code + (f" #{c.occurrence}" if c.occurrence > 1 else ""),
                "a": _side(c.a), "a_rule": c.a.rule_id if c.a else "",
                "b": _side(c.b), "b_rule": c.b.rule_id if c.b else "", "shift": shift_text(c),
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
        "changed_count": sum(1 for c in changes if c["c"].status != "same"),
        "findings": first.findings,
        "agreeing": [c for c in first.checks if c.agrees],
        "tolerance": first.tolerance,
        "doses": first.derived_doses,
        "figure_b64": base64.b64encode(figure_png).decode("ascii"),
        "events": [{"id": ev.id, "kind": ev.kind, "day": ev.day.label(), "day_note": ev.day.note,
                    "what": _event_what(ev), "source": ev.source.label(), "note": ev.note,
                    "hypothetical": ev.hypothetical} for ev in sc.events],
    }


# --- HTML -----------------------------------------------------------------------------------------

_CSS = """
:root { --ink:#1d1d1f; --muted:#5f6368; --line:#d9d9de; --warn:#8b0000; --warnbg:#fff3f3;
        --a:#c0392b; --b:#1f4e9c; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 "Segoe UI", Roboto, "Helvetica Neue", Arial, "Liberation Sans", "DejaVu Sans", sans-serif;
       color: var(--ink); background: #fafafa; }
main { max-width: 1500px; margin: 0 auto; padding: 0 24px 24px; background: #fff; }
h1 { font-size: 1.5em; margin: 0.6em 0 0.2em; }
h2 { font-size: 1.2em; margin: 1.6em 0 0.5em; border-bottom: 1px solid var(--line); padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
.notice { background: var(--warnbg); color: var(--warn); border: 2px solid var(--warn); border-radius: 6px;
          padding: 10px 14px; font-weight: 700; margin: 16px 0; }
.hypothetical { background: #fff8e1; border: 1px solid #f0c36d; border-radius: 6px; padding: 6px 12px;
                display: inline-block; }
dl.brief { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.brief dt { color: var(--muted); }
dl.brief dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 0.9em; }
th, td { border: 1px solid var(--line); padding: 5px 7px; vertical-align: top; text-align: left; }
th { background: #f1f2f4; position: sticky; top: 0; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td ul { margin: 0; padding-left: 1.1em; }
code.rule { white-space: nowrap; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.92em; }
.badge { display: inline-block; border-radius: 4px; padding: 0 6px; font-size: 0.8em; font-weight: 700;
         white-space: nowrap; margin: 1px 2px 1px 0; }
.assumption { background: #fff1c2; color: #7a5200; border: 1px solid #e0b84a; }
.same { background: #eceff1; color: #546e7a; }
.moved { background: #fff3cd; color: #7a4f00; border: 1px solid #e0a800; }
.appears { background: #e3f2fd; color: #0d47a1; border: 1px solid #64b5f6; }
.disappears { background: #fde7e9; color: #9b1c1c; border: 1px solid #ef9a9a; }
tr.changed td { background: #fffdf3; }
tr.status-same td { color: var(--muted); }
.set-A { color: var(--a); } .set-B { color: var(--b); }
.side-by-side { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
@media (max-width: 1000px) { .side-by-side { grid-template-columns: 1fr; } }
.scroll { overflow-x: auto; }
figure { margin: 10px 0; }
figure img { width: 100%; height: auto; border: 1px solid var(--line); display: block; }
figcaption { color: var(--muted); font-size: 0.9em; margin-top: 6px; }
.muted { color: var(--muted); }
ul.findings li { margin-bottom: 4px; }
footer { color: var(--muted); font-size: 0.85em; margin-top: 24px; }
"""

_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Research review: {{ sc.scenario.title }}</title>
<style>{{ css }}</style>
</head>
<body>
<main>
<div class="notice" id="notice-top" role="note">{{ notice }}</div>

<h1 id="title">{{ sc.scenario.title }}</h1>
{% if sc.scenario.hypothetical %}<p class="hypothetical">Hypothetical variant: a counterfactual timeline, not a transcription of the source.</p>{% endif %}

<section id="scenario">
<h2>Scenario in brief</h2>
<dl class="brief">
  <dt>id</dt><dd><code>{{ sc.scenario.id }}</code></dd>
  <dt>title</dt><dd>{{ sc.scenario.title }}</dd>
  <dt>hypothetical</dt><dd>{{ "yes (counterfactual variant)" if sc.scenario.hypothetical else "no (transcribed from the source)" }}</dd>
  {% if sc.scenario.description %}<dt>description</dt><dd>{{ sc.scenario.description }}</dd>{% endif %}
  <dt>file</dt><dd><code>{{ scenario_path }}</code></dd>
  <dt>source</dt><dd>{{ sc.scenario.source.label() }}</dd>
  <dt>days</dt><dd>{{ first_day }}..{{ last_day }} (day 0 = {{ sc.scenario.day_zero }})</dd>
  <dt>patient</dt><dd>{{ "%g"|format(sc.patient.age_years) }} years, {{ sc.patient.sex }}{% if sc.patient.note %} &mdash; {{ sc.patient.note }}{% endif %}</dd>
  <dt>diagnoses</dt><dd>{% if diagnoses %}<ul>{% for d in diagnoses %}<li><strong>{{ d.code }}</strong>: {{ d.day }}{% if d.note %} <span class="muted">({{ d.note }})</span>{% endif %}</li>{% endfor %}</ul>{% else %}none given{% endif %}</dd>
  {% if autoantibodies %}<dt>autoantibodies</dt><dd>{% for a in autoantibodies %}{{ a.name }}: {{ a.result }}{% if not loop.last %}; {% endif %}{% endfor %}</dd>{% endif %}
  <dt>events</dt><dd>{{ sc.events|length }} in the timeline</dd>
</dl>
</section>

<section id="rulesets">
<h2>Rule set{{ "s" if sets|length > 1 else "" }}</h2>
{% for s in sets %}{% set rs = s.view.result.ruleset %}
<h3 class="set-{{ s.view.letter }}">{% if sets|length > 1 %}{{ s.view.letter }}: {% endif %}{{ rs.id }} v{{ rs.version }}</h3>
<dl class="brief">
  <dt>title</dt><dd>{{ rs.title }}</dd>
  <dt>file</dt><dd><code>{{ s.view.path }}</code></dd>
  <dt>content hash</dt><dd><code class="hash">sha256:{{ rs.content_hash }}</code></dd>
  <dt>rules</dt><dd>{{ s.view.ruleset.rules|length }}</dd>
  <dt>assumptions</dt><dd>{% if rs.assumptions %}<ul>{% for a in rs.assumptions %}<li><span class="badge assumption">ASSUMPTION</span> <code>{{ a }}</code></li>{% endfor %}</ul><span class="muted">Thresholds no source states; decision points resting on them are marked.</span>{% else %}none{% endif %}</dd>
  {% if rs.overrides %}<dt>overrides</dt><dd>{% for k, v in rs.overrides.items() %}<code>{{ k }}={{ "%g"|format(v) }}</code> {% endfor %}</dd>{% endif %}
</dl>
{% endfor %}
</section>

{% if changes %}
<section id="comparison">
<h2>Rule sets compared: {{ changed_count }} difference{{ "" if changed_count == 1 else "s" }}</h2>
<p class="muted">Decision points are paired by what they put up for review: the k-th proposing a code in A with the k-th proposing it in B.
<span class="badge moved">moved</span> shift = B's day minus A's day;
<span class="badge appears">appears</span> only in B; <span class="badge disappears">disappears</span> only in A;
<span class="badge same">same</span> unchanged.</p>
<div class="scroll">
<table id="comparison-table">
<thead><tr><th>for review</th><th>status</th><th class="set-A">A: {{ sets[0].view.result.ruleset.id }} (day, rule)</th><th class="set-B">B: {{ sets[1].view.result.ruleset.id }} (day, rule)</th><th>shift (days)</th></tr></thead>
<tbody>
{% for c in changes %}
<tr class="status-{{ c.c.status }}{% if c.c.status != 'same' %} changed{% endif %}" data-code="{{ c.c.code }}" data-status="{{ c.c.status }}">
<td><code>{{ c.code }}</code></td><td><span class="badge {{ c.c.status }}">{{ c.c.status }}</span></td>
<td class="num">{{ c.a }}{% if c.a_rule %} <span class="muted">({{ c.a_rule }})</span>{% endif %}</td>
<td class="num">{{ c.b }}{% if c.b_rule %} <span class="muted">({{ c.b_rule }})</span>{% endif %}</td>
<td class="num shift">{{ c.shift }}</td>
</tr>
{% endfor %}
</tbody>
</table>
</div>
<h3>Decision points side by side</h3>
<div class="side-by-side" id="side-by-side">
{% for s in sets %}
<div>
<h4 class="set-{{ s.view.letter }}">{{ s.view.letter }}: {{ s.view.result.ruleset.id }}</h4>
<table class="compact">
<thead><tr><th>day</th><th>rule</th><th>for review</th><th>actual</th><th>difference</th></tr></thead>
<tbody>
{% for p in s.points %}
<tr{% if p.changed %} class="changed"{% endif %}>
<td class="num">{{ p.day }}</td><td><code>{{ p.dp.rule_id }}</code><br><span class="muted">{{ p.step }}</span></td>
<td>{{ p.dp.proposes|join(", ") }}</td><td class="num">{{ p.actual }}</td>
<td>{% for ch in p.changes %}<span class="badge {{ ch.status }}">{{ ch.text }}</span> {% endfor %}</td>
</tr>
{% endfor %}
</tbody>
</table>
</div>
{% endfor %}
</div>
</section>
{% endif %}

<section id="decision-points">
<h2>Decision points</h2>
<p class="muted">Each row is a day on which the rules put a step up for research review &mdash; not an order.
Day ranges <code>a..b</code> come from timing the source gives only as a range (the replay runs with every uncertain event
as early, then as late, as the source allows). Lag = actual day &minus; decision-point day.</p>
{% for s in sets %}{% set rs = s.view.result.ruleset %}
{% if sets|length > 1 %}<h3 class="set-{{ s.view.letter }}">{{ s.view.letter }}: {{ rs.id }} v{{ rs.version }}</h3>{% endif %}
{% if s.points %}
<div class="scroll">
<table class="dp-table" id="dp-table-{{ loop.index }}" data-ruleset="{{ rs.id }}">
<thead><tr><th>#</th><th>day</th><th>rule</th><th>step</th><th>puts up for review</th><th>conditions met (values)</th><th>sources</th><th>actual day</th><th>lag (days)</th><th>action taken</th></tr></thead>
<tbody>
{% for p in s.points %}{% set dp = p.dp %}
<tr class="dp{% if p.changed %} changed{% endif %}" data-rule="{{ dp.rule_id }}" data-day="{{ p.day }}">
<td class="num">{{ p.n }}</td>
<td class="num day">{{ p.day }}{% if dp.timing.endswith("only") %}<br><span class="muted">({{ dp.timing }})</span>{% endif %}</td>
<td><code class="rule">{{ dp.rule_id }}</code>{% if dp.occurrence > 1 %} <span class="muted">#{{ dp.occurrence }}</span>{% endif %}{% if dp.rests_on_assumption %}<br><span class="badge assumption">ASSUMPTION</span>{% endif %}{% for ch in p.changes %}{% if ch.status != "same" %}<br><span class="badge {{ ch.status }}">{{ ch.text }}</span>{% endif %}{% endfor %}</td>
<td>{{ p.step }}</td>
<td>{{ p.proposes|join("; ") }}<br><span class="muted">{{ dp.summary }}</span></td>
<td><ul>{% for c in dp.conditions %}<li>{{ c.condition }}: <strong>{{ c.met_by }}</strong></li>{% endfor %}</ul></td>
<td><ul>{% for src in dp.sources %}<li>{{ src }}</li>{% endfor %}</ul></td>
<td class="num actual">{{ p.actual }}</td>
<td class="num lag">{{ p.lag }}</td>
<td>{{ dp.action_note }}</td>
</tr>
{% endfor %}
</tbody>
</table>
</div>
{% else %}
<p>No decision points: no rule of this set fires on this timeline.</p>
{% endif %}
{% endfor %}
</section>

<section id="findings">
<h2>Data-consistency findings</h2>
<p class="muted">Places where the source's own statements do not fit together: research material about the source, not errors. {{ tolerance|capitalize }}.</p>
{% if findings %}
<ul class="findings">
{% for f in findings %}<li><span class="badge disappears">{{ f.kind }}</span> {{ f.message }} <span class="muted">(events: {{ f.events|join(", ") }})</span></li>
{% endfor %}
</ul>
{% else %}<p>None: every check agrees.</p>{% endif %}
{% if agreeing %}
<details><summary>Checks that agree ({{ agreeing|length }})</summary>
<ul>{% for c in agreeing %}<li><span class="badge same">{{ c.kind }}</span> {{ c.message }}</li>{% endfor %}</ul>
</details>
{% endif %}
{% if doses %}
<h3>Doses implied by the regimens (derived, for review)</h3>
<ul>{% for d in doses %}<li>{{ d.implied }}</li>{% endfor %}</ul>
{% endif %}
</section>

<section id="course">
<h2>Clinical course</h2>
<figure id="course-figure">
<img id="course-img" src="data:image/png;base64,{{ figure_b64 }}" alt="Clinical course of scenario {{ sc.scenario.id }}: therapy, support and procedure lanes, decision points joined to the actions taken, and OI, P/F, KL-6 and anti-MDA5 readings along one day axis. Research review only.">
<figcaption>Days 0&ndash;80 are drawn at full width; earlier history and the tail after day 80 are compressed (grey, marked //).
Hatched spans are days the source allows when it gives timing only as a range; solid shapes are days it fixes.
The same figure is beside this file as course.png and course.svg.</figcaption>
</figure>
</section>

<section id="timeline">
<h2>Timeline as transcribed</h2>
<details><summary>{{ events|length }} events, in file order (the notes are the transcriber's words)</summary>
<div class="scroll">
<table id="timeline-table">
<thead><tr><th>day</th><th>event</th><th>kind</th><th>what the source states</th><th>source</th><th>note</th></tr></thead>
<tbody>
{% for e in events %}
<tr><td class="num">{{ e.day }}</td><td><code>{{ e.id }}</code>{% if e.hypothetical %} <span class="badge appears">hypothetical</span>{% endif %}</td><td>{{ e.kind }}</td><td>{{ e.what }}</td><td>{{ e.source }}</td><td>{{ e.note or "" }}{% if e.day_note %}<br><span class="muted">timing: {{ e.day_note }}</span>{% endif %}</td></tr>
{% endfor %}
</tbody>
</table>
</div>
</details>
</section>

<div class="notice" id="notice-bottom" role="note">{{ notice }}</div>
<footer>Generated by escalation {{ version }} from <code>{{ scenario_path }}</code>{% for s in sets %} and <code>{{ s.view.path }}</code> (sha256:{{ s.view.result.ruleset.content_hash[:16] }}){% endfor %}.</footer>
</main>
</body>
</html>
"""

_ENV = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                   keep_trailing_newline=True)


def render_html(report: Report, figure_png: bytes) -> str:
    ctx = _context(report, figure_png)
    # the style sheet is this module's own constant, not file text: inside <style> an escaped
    # quote would not be decoded, so it goes in as it is
    return _ENV.from_string(_HTML).render(css=Markup(_CSS), **ctx)


# --- Markdown -------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#!{}])")


def md(text: object) -> str:
    """Scenario text made inert in Markdown: no HTML, links, emphasis or table breaks; one line."""
    s = html.escape(str(text), quote=False)
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def render_markdown(report: Report) -> str:
    ctx = _context(report, b"")
    sc = report.scenario
    out = [f"> **{md(NOTICE)}**", "", f"# {md(sc.scenario.title)}", ""]
    if sc.scenario.hypothetical:
        out += ["*Hypothetical variant: a counterfactual timeline, not a transcription of the source.*", ""]
    out += ["## Scenario in brief", ""]
    out += [f"- **id**: `{sc.scenario.id}`",
            f"- **title**: {md(sc.scenario.title)}",
            f"- **hypothetical**: {'yes' if sc.scenario.hypothetical else 'no'}"]
    if sc.scenario.description:
        out.append(f"- **description**: {md(sc.scenario.description)}")
    out += [f"- **file**: {md(report.scenario_path)}",
            f"- **source**: {md(sc.scenario.source.label())}",
            f"- **days**: {ctx['first_day']}..{ctx['last_day']} (day 0 = {md(sc.scenario.day_zero)})",
            f"- **patient**: {sc.patient.age_years:g} years, {sc.patient.sex}"]
    if ctx["diagnoses"]:
        out.append("- **diagnoses**: " + "; ".join(f"{md(d['code'])}: {md(d['day'])}" for d in ctx["diagnoses"]))
    if ctx["autoantibodies"]:
        out.append("- **autoantibodies**: " + "; ".join(f"{md(a['name'])}: {md(a['result'])}"
                                                      for a in ctx["autoantibodies"]))
    out += ["", "## Rule set" + ("s" if len(report.sets) > 1 else ""), ""]
    for s in report.sets:
        rs = s.result.ruleset
        prefix = f"{s.letter}: " if len(report.sets) > 1 else ""
        out += [f"### {prefix}{md(rs.id)} v{md(rs.version)}", "",
                f"- **title**: {md(rs.title)}", f"- **file**: {md(s.path)}",
                f"- **content hash**: `sha256:{rs.content_hash}`",
                "- **assumptions** (thresholds no source states): "
                + (", ".join(f"ASSUMPTION {md(a)}" for a in rs.assumptions) or "none")]
        if rs.overrides:
            out.append("- **overrides**: " + ", ".join(f"{md(k)}={v:g}" for k, v in rs.overrides.items()))
        out.append("")
    if ctx["changes"]:
        n = ctx["changed_count"]
        out += [f"## Rule sets compared: {n} difference{'' if n == 1 else 's'}", "",
                "Paired by what they put up for review; shift = B's day minus A's day.", "",
                f"| for review | status | A: {md(report.sets[0].result.ruleset.id)} | "
                f"B: {md(report.sets[1].result.ruleset.id)} | shift (days) |",
                "|---|---|---|---|---|"]
        for c in ctx["changes"]:
            status = c["c"].status
            shown = f"**{status}**" if status != "same" else status
            a = f"{c['a']} ({md(c['a_rule'])})" if c["a_rule"] else "-"
            b = f"{c['b']} ({md(c['b_rule'])})" if c["b_rule"] else "-"
            out.append(f"| {md(c['code'])} | {shown} | {a} | {b} | {c['shift']} |")
        out.append("")
    out += ["## Decision points", "",
            "Each row is a day on which the rules put a step up for research review, not an order. "
            "Day ranges a..b come from timing the source gives only as a range; lag = actual day - "
            "decision-point day.", ""]
    for s, rows in zip(report.sets, ctx["sets"]):
        if len(report.sets) > 1:
            out += [f"### {s.letter}: {md(s.result.ruleset.id)}", ""]
        if not rows["points"]:
            out += ["No decision points.", ""]
            continue
        out += ["| day | rule | step | puts up for review | conditions met | sources | actual | lag | action taken |",
                "|---:|---|---|---|---|---|---:|---:|---|"]
        for p in rows["points"]:
            dp = p["dp"]
            rule = md(dp.rule_id) + (" ASSUMPTION" if dp.rests_on_assumption else "")
            rule += "".join(f" ({md(ch['text'])})" for ch in p["changes"] if ch["status"] != "same")
            met = "; ".join(f"{md(c.condition)}: {md(c.met_by)}" for c in dp.conditions)
            out.append(f"| {p['day']} | {rule} | {md(p['step'])} | {md(', '.join(dp.proposes))} | {met} | "
                       f"{md('; '.join(dp.sources))} | {p['actual']} | {p['lag']} | {md(dp.action_note)} |")
        out.append("")
    out += ["## Data-consistency findings", "",
            f"Research material about the source, not errors. {md(ctx['tolerance'].capitalize())}.", ""]
    out += [f"- [{md(f.kind)}] {md(f.message)}" for f in ctx["findings"]] or ["- none"]
    if ctx["agreeing"]:
        out += ["", f"Checks that agree ({len(ctx['agreeing'])}):", ""]
        out += [f"- [{md(c.kind)}] {md(c.message)}" for c in ctx["agreeing"]]
    if ctx["doses"]:
        out += ["", "Doses implied by the regimens (derived, for review):", ""]
        out += [f"- {md(d.implied)}" for d in ctx["doses"]]
    out += ["", "## Timeline as transcribed", "", "| day | event | kind | what the source states | source | note |",
            "|---|---|---|---|---|---|"]
    for e in ctx["events"]:
        note = md(e["note"] or "") + (f" (timing: {md(e['day_note'])})" if e["day_note"] else "")
        hyp = " (hypothetical)" if e["hypothetical"] else ""
        out.append(f"| {md(e['day'])} | {md(e['id'])}{hyp} | {e['kind']} | {md(e['what'])} | "
                   f"{md(e['source'])} | {note} |")
    out += ["", "## Clinical course", "", "![Clinical course (research review only)](course.png)", "",
            "Days 0-80 at full width; earlier history and the tail after day 80 compressed (grey, //). "
            "Hatched spans: days the source allows; solid: days it fixes. Also as course.svg.", "",
            f"> **{md(NOTICE)}**", ""]
    return "\n".join(out)


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


def write_report(scenario_path: Path, rule_paths: list[Path], out: Path) -> list[Path]:
    """Compute the whole report, then write every file into `out` (created if need be).

    Files are first written into a temporary folder next to `out`. A new `out` is that folder
    renamed into place; into an existing one each file is moved with an atomic rename, and any
    other files already there are left alone.
    """
    from escalation.report.course import course_figure, save_course

    if out.exists() and not out.is_dir():
        raise InputError(str(out), "--out must be a folder, and this is a file")
    report = build_report(scenario_path, rule_paths)
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as exc:
        raise InputError(str(out), f"cannot create the report folder: {exc.strerror or exc}") from None
    try:
        fig = course_figure(report.scenario, [s.result for s in report.sets])
        save_course(fig, tmp / "course.png", tmp / "course.svg")
        png = (tmp / "course.png").read_bytes()
        (tmp / "report.html").write_text(render_html(report, png), encoding="utf-8")
        (tmp / "report.md").write_text(render_markdown(report), encoding="utf-8")
        names = []
        for name, result in _json_names(report):
            (tmp / name).write_text(to_json(result), encoding="utf-8")
            names.append(name)
        written = [*FILES[:4], *names]
        for name in written:
            os.chmod(tmp / name, 0o666 & ~umask())
        if not out.exists():
            os.chmod(tmp, 0o777 & ~umask())
            os.rename(tmp, out)
        else:
            for name in written:
                os.replace(tmp / name, out / name)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / n for n in written]
