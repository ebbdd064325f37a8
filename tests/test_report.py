"""`escalation report`: the files it writes, what they say, that scenario text stays text, and how
the page looks in a real browser.

The HTML is checked twice: parsed with the standard library (every tag closed, no script, no
network reference, hostile text only as text), and opened in headless Chromium (the figure and
the decision-point table are displayed, the notice is visible), whose screenshot is kept in
test-artifacts/report-screenshot.png.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from typer.testing import CliRunner

from escalation.analysis.compare import diff_results
from escalation.cli.app import app
from escalation.evaluate.replay import replay
from escalation.load.errors import InputError
from escalation.load.loading import load_ruleset, load_scenario
from escalation.load.timing import span_label
from escalation.match.matching import build_result
from escalation.match.results import NOTICE, ReplayResult
from escalation.report.course import FOCUS, LABEL, TAIL_WIDTH, course_figure, day_scale

ROOT = Path(__file__).resolve().parents[1]
INDEX_CASE = ROOT / "scenarios" / "index_case.yaml"
PATHWAY = ROOT / "rules" / "report-pathway.yaml"
ROMERO = ROOT / "rules" / "romero-bueno-2020.yaml"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_NOTE = '"><img src=x onerror=alert(1)>'

runner = CliRunner()


APP = app  # the real command line


def run_report(scenario: Path, out: Path, *rules: Path):
    args = ["report", str(scenario), "--out", str(out)]
    for r in rules:
        args += ["--rules", str(r)]
    return runner.invoke(APP, args)


# --- a small DOM from the standard library's parser -------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list["Node | str"] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None):
        if tag is None or self.tag == tag:
            yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter(tag)

    def find_id(self, id_: str) -> "Node | None":
        return next((n for n in self.iter() if n.attrs.get("id") == id_), None)


class StrictTree(HTMLParser):
    """Builds a tree and records every way the markup is not clean."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.problems: list[str] = []
        self.doctype = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        names = [k for k, _ in attrs]
        if len(names) != len(set(names)):
            self.problems.append(f"duplicate attribute in <{tag}>")
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if self.stack[-1].tag != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1].tag}> (line {self.getpos()[0]})")
            if any(n.tag == tag for n in self.stack):
                while self.stack[-1].tag != tag:
                    self.stack.pop()
                self.stack.pop()
            return
        self.stack.pop()

    def handle_data(self, data):
        self.stack[-1].children.append(data)

    def close(self):
        super().close()
        if len(self.stack) != 1:
            self.problems.append("unclosed: " + ", ".join(n.tag for n in self.stack[1:]))


def parse(text: str) -> Node:
    p = StrictTree()
    p.feed(text)
    p.close()
    assert p.doctype is not None and p.doctype.lower() == "doctype html", p.doctype
    assert not p.problems, p.problems
    return p.root


def squash(s: str) -> str:
    return " ".join(s.split())


# --- fixtures: the reports, built once ----------------------------------------------------------------


@pytest.fixture(scope="module")
def index_result() -> ReplayResult:
    return build_result(replay(load_scenario(INDEX_CASE), load_ruleset(PATHWAY)), INDEX_CASE)


@pytest.fixture(scope="module")
def index_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("index") / "report"
    result = run_report(INDEX_CASE, out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def two_sets_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two") / "report"
    result = run_report(INDEX_CASE, out, PATHWAY, ROMERO)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    variant = folder / "hostile.yaml"
    variant.write_text(
        f"derives_from: {json.dumps(INDEX_CASE.as_posix())}\n"
        "scenario:\n"
        "  id: hostile-text\n"
        f"  title: {json.dumps(HOSTILE_TITLE)}\n"
        f"  description: {json.dumps(HOSTILE_NOTE + ' [link](javascript:alert(2)) $x$')}\n"
        "  hypothetical: true\n"
        "  source: {section: Case presentation}\n"
        "changes:\n"
        "  add:\n"
        "    - id: hostile-event\n"
        "      kind: finding\n"
        "      code: respiratory_deterioration\n"
        "      day: 5\n"
        "      hypothetical: true\n"
        f"      note: {json.dumps(HOSTILE_NOTE)}\n"
        "      source: {section: Case presentation}\n",
        encoding="utf-8",
    )
    out = folder / "report"
    result = run_report(variant, out)
    assert result.exit_code == 0, result.output
    return out


# --- files ---------------------------------------------------------------------------------------------


def test_all_files_written_for_the_index_case(index_report: Path, index_result: ReplayResult):
    names = {p.name for p in index_report.iterdir()}
    assert names == {"report.html", "report.md", "course.png", "course.svg", "replay.json"}
    assert (index_report / "course.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = ElementTree.parse(index_report / "course.svg").getroot()
    assert svg.tag.endswith("svg")
    stored = ReplayResult.model_validate_json((index_report / "replay.json").read_text(encoding="utf-8"))
    assert stored.decision_points == index_result.decision_points
    assert stored.notice == NOTICE
    # written through a temporary folder: nothing of it is left beside the report
    assert [p.name for p in index_report.parent.iterdir()] == ["report"]


def test_existing_folder_keeps_its_other_files(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    result = run_report(INDEX_CASE, out)
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert {"report.html", "report.md", "course.png", "course.svg", "replay.json"} <= {p.name for p in out.iterdir()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_while_writing_leaves_nothing(tmp_path: Path, monkeypatch, index_result: ReplayResult):
    import escalation.report.html as hr

    def boom(*_a, **_k):
        raise RuntimeError("disk full, say")

    monkeypatch.setattr(hr, "render_markdown", boom)
    out = tmp_path / "report"
    with pytest.raises(RuntimeError):
        hr.write_report(load_scenario(INDEX_CASE), INDEX_CASE, [index_result], [load_ruleset(PATHWAY)], out)
    assert list(tmp_path.iterdir()) == [], "no report folder and no temporary folder are left"


def test_write_report_renders_what_it_is_given(tmp_path: Path, index_result: ReplayResult):
    """The report stage takes results made elsewhere (a notebook, say), with or without rule paths."""
    import escalation.report.html as hr

    out = tmp_path / "report"
    written = hr.write_report(load_scenario(INDEX_CASE), INDEX_CASE, [index_result], [load_ruleset(PATHWAY)], out)
    assert [p.name for p in written] == list(hr.FILES)
    root = parse((out / "report.html").read_text(encoding="utf-8"))
    assert "file" not in [squash(dt.text()) for dt in root.find_id("rulesets").iter("dt")]
    footer = squash(next(root.iter("footer")).text())
    assert f"and {index_result.ruleset.id} (sha256:{index_result.ruleset.content_hash[:16]})" in footer
    with pytest.raises(InputError, match="at most 2"):
        hr.write_report(load_scenario(INDEX_CASE), INDEX_CASE, [index_result] * 3,
                        [load_ruleset(PATHWAY)] * 3, tmp_path / "three")
    assert not (tmp_path / "three").exists()


def test_the_report_stage_never_loads_or_replays():
    """Outputs read results: no module of escalation.report imports the loaders, engine or matcher."""
    import ast
    import importlib.resources

    upstream = ("escalation.load.loading", "escalation.evaluate", "escalation.match.matching", "escalation.api")
    for module in importlib.resources.files("escalation.report").iterdir():
        if not module.name.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(upstream), f"{module.name} imports {name}"


def test_templates_are_files_in_the_package():
    import importlib.resources
    import inspect

    import escalation.report.html as hr

    templates = importlib.resources.files("escalation.report") / "templates"
    for name in ("report.html.j2", "report.css", "report.md.j2"):
        assert (templates / name).is_file(), name
    source = inspect.getsource(hr)
    for markup in ("<!DOCTYPE", "<style", "<table", "font:", "## Decision points", "| day |"):
        assert markup not in source, f"{markup!r} is still written in html.py"


@pytest.mark.parametrize("case", ["missing-scenario", "bad-yaml", "three-rule-sets", "missing-rules"])
def test_bad_input_is_one_error_line_and_nothing_written(tmp_path: Path, case: str):
    out = tmp_path / "out" / "report"
    scenario, rules = INDEX_CASE, [PATHWAY]
    if case == "missing-scenario":
        scenario = tmp_path / "no-such-scenario.yaml"
        expected = [str(scenario), "file not found"]
    elif case == "bad-yaml":
        scenario = tmp_path / "broken.yaml"
        scenario.write_text("scenario:\n  id: [unclosed\n", encoding="utf-8")
        expected = [str(scenario), "malformed YAML"]
    elif case == "three-rule-sets":
        rules = [PATHWAY, ROMERO, PATHWAY]
        expected = ["--rules", "at most 2"]
    else:
        rules = [tmp_path / "no-rules.yaml"]
        expected = ["no-rules.yaml", "file not found"]
    result = run_report(scenario, out, *rules)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in expected:
        assert word in lines[0], lines[0]
    assert not out.exists() and not out.parent.exists(), "something was written"


# --- the HTML, parsed -------------------------------------------------------------------------------


def test_html_parses_cleanly_and_is_self_contained(index_report: Path):
    text = (index_report / "report.html").read_text(encoding="utf-8")
    root = parse(text)
    assert not re.search(r"https?://", text, re.IGNORECASE), "a network reference in report.html"
    assert not list(root.iter("script")), "report.html runs no script"
    for tag in ("link", "iframe", "object", "embed", "base", "form"):
        assert not list(root.iter(tag)), f"<{tag}> in report.html"
    styles = list(root.iter("style"))
    assert len(styles) == 1, "the styles are inline, in one <style>"
    assert "&#" not in styles[0].text() and "&quot;" not in styles[0].text(), "escaped CSS does not apply"
    csp = [m for m in root.iter("meta") if (m.attrs.get("http-equiv") or "").lower() == "content-security-policy"]
    assert csp and "default-src 'none'" in (csp[0].attrs["content"] or "")
    for node in root.iter():
        for name, value in node.attrs.items():
            assert not name.startswith("on"), f"event handler {name} on <{node.tag}>"
            if name in ("src", "href", "srcset", "action", "poster", "data"):
                assert (value or "").startswith("data:image/png;base64,"), f"<{node.tag} {name}={value!r:.60}>"
    figure = root.find_id("course-figure")
    assert figure is not None and figure.tag == "figure"
    imgs = list(figure.iter("img"))
    assert len(imgs) == 1 and len(imgs[0].attrs["src"] or "") > 10000


def test_report_content(index_report: Path, index_result: ReplayResult):
    root = parse((index_report / "report.html").read_text(encoding="utf-8"))
    # the notice at top and bottom
    for where in ("notice-top", "notice-bottom"):
        node = root.find_id(where)
        assert node is not None and squash(node.text()) == squash(NOTICE), where
    body = list(root.iter("main"))[0]
    first_div = next(c for c in body.children if isinstance(c, Node))
    assert first_div.attrs.get("id") == "notice-top", "the notice opens the report"
    # the scenario in brief and the rule set
    brief = squash(root.find_id("scenario").text())
    for expected in ("index-case", "Nishi et al. 2022", "no (transcribed from the source)", "-113..517",
                     "2 years, female", "JDM", "RP-ILD"):
        assert expected in brief, expected
    rulesets = squash(root.find_id("rulesets").text())
    rs = index_result.ruleset
    assert f"{rs.id} v{rs.version}" in rulesets and f"sha256:{rs.content_hash}" in rulesets
    for a in rs.assumptions:
        assert f"ASSUMPTION {a}" in rulesets, a
    # every decision point: its rule and day, with what was done and the lag
    table = root.find_id("dp-table-1")
    rows = [tr for tr in table.iter("tr") if "dp" in (tr.attrs.get("class") or "").split()]
    assert len(rows) == len(index_result.decision_points)
    for tr, dp in zip(rows, index_result.decision_points):
        cells = [squash(td.text()) for td in tr.iter("td")]
        assert tr.attrs["data-rule"] == dp.rule_id
        assert cells[1].split(" ")[0] == span_label(dp.day, dp.day_latest), (dp.rule_id, cells[1])
        assert cells[2].startswith(dp.rule_id)
        assert ("ASSUMPTION" in cells[2]) == dp.rests_on_assumption
        for c in dp.conditions:
            assert squash(f"{c.condition}: {c.met_by}") in cells[5]
        for s in dp.sources:
            assert s in cells[6]
        assert cells[7] == ("-" if dp.actual_day is None else span_label(dp.actual_day, dp.actual_day_latest))
        assert cells[8] == ("-" if dp.lag_days is None else span_label(dp.lag_days, dp.lag_days_max))
    days = {(tr.attrs["data-rule"], tr.attrs["data-day"]) for tr in rows}
    assert ("step2-plasma-exchange", "11") in days and ("step4-rituximab", "18..28") in days
    # the data-consistency findings, the OI one first among them
    findings = squash(root.find_id("findings").text())
    oi = next(f for f in index_result.findings if f.kind == "reported_index")
    assert "reported 20, recomputed 36" in oi.message
    assert squash(oi.message) in findings
    for f in index_result.findings:
        assert squash(f.message) in findings
    assert root.find_id("course-figure") is not None


def test_markdown_content(index_report: Path, index_result: ReplayResult):
    md = (index_report / "report.md").read_text(encoding="utf-8")
    lines = [x for x in md.splitlines() if x.strip()]
    assert "RESEARCH REVIEW ONLY" in lines[0] and "RESEARCH REVIEW ONLY" in lines[-1]
    rows = [x for x in md.splitlines() if x.startswith("| ") and "\\-" not in x]
    for dp in index_result.decision_points:
        rule = dp.rule_id.replace("_", "\\_")
        assert any(r.startswith(f"| {span_label(dp.day, dp.day_latest)} | {rule}") for r in rows), dp.rule_id
    assert "reported 20, recomputed 36" in md
    assert "](course.png)" in md
    assert f"sha256:{index_result.ruleset.content_hash}" in md


def test_markdown_is_plain_text_without_html_entities(index_report: Path):
    md = (index_report / "report.md").read_text(encoding="utf-8")
    assert "anti\\_mda5 >= 500" in md, "conditions read as written"
    for entity in ("&gt;", "&lt;", "&amp;", "&#"):
        assert entity not in md, entity


def test_md_escapes_markdown_and_html_but_writes_no_entity():
    from escalation.report.html import md

    assert md("a >= b & c") == "a >= b & c"
    assert md("<script>x</script>") == "\\<script>x\\</script>", "no tag can open"
    assert md("&gt; &#60;") == "\\&gt; \\&\\#60;", "no entity is decoded"
    assert md("**b** _i_ [l](u) | # `c` !{}\\") == "\\*\\*b\\*\\* \\_i\\_ \\[l\\](u) \\| \\# \\`c\\` \\!\\{\\}\\\\"
    assert md("two\nlines") == "two lines"


def test_day_ranges_read_a_dot_dot_b(index_report: Path):
    for name in ("report.html", "report.md"):
        text = (index_report / name).read_text(encoding="utf-8")
        for expected in ("days -113..-6", "days -113..0", "days -113..-76", "until days 0..11"):
            assert expected in text, (name, expected)
        assert "--6" not in text and "days -113-0" not in text and "days 0-11" not in text, name


# --- hostile text -----------------------------------------------------------------------------------


def test_hostile_scenario_text_is_escaped_and_inert(hostile_report: Path):
    text = (hostile_report / "report.html").read_text(encoding="utf-8")
    root = parse(text)
    assert HOSTILE_TITLE not in text and "<img src=x" not in text
    assert not list(root.iter("script"))
    imgs = list(root.iter("img"))
    assert len(imgs) == 1 and imgs[0].attrs.get("id") == "course-img", "only the figure is an image"
    for node in root.iter():
        assert not any(name.startswith("on") for name in node.attrs), (node.tag, node.attrs)
        assert "javascript:" not in " ".join(v or "" for v in node.attrs.values())
    # the hostile strings are there, as text
    assert squash(list(root.iter("title"))[0].text()) == f"Research review: {HOSTILE_TITLE}"
    assert root.find_id("title").text() == HOSTILE_TITLE
    timeline = root.find_id("timeline-table")
    row = next(tr for tr in timeline.iter("tr") if "hostile-event" in tr.text())
    assert HOSTILE_NOTE in row.text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in text, "the note is in the page, escaped"
    # the Markdown: no raw HTML, no link
    md = (hostile_report / "report.md").read_text(encoding="utf-8")
    assert not re.search(r"(?<!\\)<", md), "every '<' is escaped, so no tag is raw HTML"
    assert not re.search(r"(?<!\\)\]\(javascript:", md), "a link survived"
    assert "\\[link\\](javascript:" in md, "the brackets are escaped, so the text is no link"
    assert "\\<script>alert(1)\\</script>" in md, "the title is there, with '<' escaped, not as an entity"
    assert "&lt;" not in md and "&gt;" not in md
    # the figure was drawn with the title as plain text (a $ does not start mathtext)
    assert (hostile_report / "course.png").stat().st_size > 10000


# --- two rule sets ------------------------------------------------------------------------------------


def test_two_rule_sets_show_their_differences(two_sets_report: Path):
    sc = load_scenario(INDEX_CASE)
    a = build_result(replay(sc, load_ruleset(PATHWAY)), INDEX_CASE)
    b = build_result(replay(sc, load_ruleset(ROMERO)), INDEX_CASE)
    diff = diff_results(a, b)
    names = {p.name for p in two_sets_report.iterdir()}
    assert {"replay.json", "replay-report-pathway.json", "replay-romero-bueno-2020.json"} <= names
    root = parse((two_sets_report / "report.html").read_text(encoding="utf-8"))
    table = root.find_id("comparison-table")
    rows = {}
    for tr in table.iter("tr"):
        if "data-code" in tr.attrs:
            cells = [squash(td.text()) for td in tr.iter("td")]
            rows.setdefault(tr.attrs["data-code"], []).append((tr.attrs["data-status"], cells))
    assert sum(len(v) for v in rows.values()) == len(diff.changes)
    # the differences the issue names: PE later by 14 days, RTX earlier
    pe = rows["PE"][0]
    assert pe[0] == "moved" and pe[1][4] == "+14"
    # each side marked as replay and diff mark its decision point (a review found ASSUMPTION alone here)
    assert pe[1][2] == "11 (step2-plasma-exchange) ASSUMPTION CASE-SPECIFIC" and pe[1][3] == "25 (rb-rescue) ASSUMPTION"
    assert rows["pards-severe"][0][1][2] == "24 (pards-oi-severe) DISPUTED-VALUE"
    md = (two_sets_report / "report.md").read_text()
    assert "| 11 (step2-plasma-exchange) ASSUMPTION CASE-SPECIFIC | 25 (rb-rescue) ASSUMPTION |" in md
    assert "| 24 (pards-oi-severe) DISPUTED-VALUE | - |" in md
    rtx = rows["RTX"][0]
    assert rtx[0] == "moved" and rtx[1][4] == "-17..-7"
    assert rows["Tac"][0][0] == "appears" and rows["barotrauma-watch"][0][0] == "disappears"
    assert rows["VV-ECMO"][0][0] == "same"
    # both sets of decision points, side by side and in full, with the differences marked on them
    side = root.find_id("side-by-side")
    assert side is not None and len([t for t in side.iter("table")]) == 2
    assert root.find_id("dp-table-1").attrs["data-ruleset"] == "report-pathway"
    assert root.find_id("dp-table-2").attrs["data-ruleset"] == "romero-bueno-2020"
    full_b = squash(root.find_id("dp-table-2").text())
    assert "PE moved +14 d" in full_b and "RTX moved -17..-7 d" in full_b
    md = (two_sets_report / "report.md").read_text(encoding="utf-8")
    assert re.search(r"\| PE \| \*\*moved\*\* \| 11 \(step2-plasma-exchange\) ASSUMPTION CASE-SPECIFIC \| 25 \(rb-rescue\) "
                     r"ASSUMPTION \| \+14 \|", md)


# --- the figure ---------------------------------------------------------------------------------------


def test_day_axis_keeps_days_0_to_80_readable():
    scale = day_scale(-113, 517)
    assert float(scale.forward(0)) == 0 and float(scale.forward(80)) == 80
    assert float(scale.forward(517)) - 80 == pytest.approx(TAIL_WIDTH)
    assert (FOCUS[1] - FOCUS[0]) / scale.width() > 0.6, "days 0-80 take most of the width"
    assert scale.compressed == ((-113, 0), (80, 517)) and scale.breaks == (0, 80)
    for d in (-113, -50, 0, 11, 24, 52, 80, 200, 457, 517, 600):
        assert float(scale.inverse(scale.forward(d))) == pytest.approx(d)
    short = day_scale(0, 60)
    assert short.compressed == () and float(short.forward(30)) == 30


def test_figure_shows_every_element(index_result: ReplayResult):
    sc = load_scenario(INDEX_CASE)
    fig = course_figure(sc, [index_result])
    texts = [t.get_text() for t in fig.findobj(Text)]
    joined = "\n".join(texts)
    assert any(LABEL in t for t in texts), "the research-only label"
    for dp in index_result.decision_points:
        assert any(t.startswith(dp.rule_id + "  (day") for t in texts), dp.rule_id
    for lane in ("MPT (methylpred. pulses)", "RTX (rituximab)", "PE (plasma exchange)",
                 "invasive ventilation", "VV-ECMO"):
        assert lane in texts, lane
    for panel in ("Oxygenation index (OI)", "P/F", "KL-6", "anti-MDA5"):
        assert panel in joined, panel
    assert "anti-MDA5 >7500 (day 0)" in texts, "a censored value is shown as such"
    assert "as reported: 20" in texts, "the reported OI that disagrees is shown beside the recomputed one"
    assert any("rising (reported" in t for t in texts), "reported trends are annotated"
    assert "KL-6 1150 (day 457..517)" in texts, "a reading with uncertain timing shows its range"
    hatched = [p for p in fig.findobj(Rectangle) if p.get_hatch()]
    assert len(hatched) >= 5, "uncertain timing is drawn as hatched ranges"
    assert any("//" == t for t in texts), "the compressed axis is marked with a break"


# --- in the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """A headless Chromium driven by selenium, or the reason there is none."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if missing:
        yield None, (f"the browser test needs {', '.join(missing)}; install them with "
                     "`apt-get install chromium chromium-driver`")
        return
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver, None
    finally:
        driver.quit()


def need_browser(chromium):
    """The driver; without one the test fails when CI is set (CI installs Chromium), else skips."""
    driver, missing = chromium
    if driver is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {missing} (CI installs them, so this is an error)", pytrace=False)
        pytest.skip(missing)
    return driver


def test_report_renders_in_chromium(chromium, index_report: Path, index_result: ReplayResult):
    browser = need_browser(chromium)
    from selenium.webdriver.common.by import By

    browser.set_window_size(1400, 1000)
    browser.get((index_report / "report.html").resolve().as_uri())
    notice = browser.find_element(By.ID, "notice-top")
    assert notice.is_displayed() and "RESEARCH REVIEW ONLY" in notice.text
    assert notice.value_of_css_property("color") in ("rgba(139, 0, 0, 1)", "rgb(139, 0, 0)"), \
        "the inline styles apply"
    assert "Times" not in browser.execute_script("return getComputedStyle(document.body).fontFamily")
    assert notice.location["y"] < 200, "the notice is at the top of the page"
    table = browser.find_element(By.ID, "dp-table-1")
    figure = browser.find_element(By.ID, "course-figure")
    img = browser.find_element(By.ID, "course-img")
    for element in (table, figure, img):
        assert element.is_displayed(), element.get_attribute("id")
        assert element.size["width"] > 300 and element.size["height"] > 100, element.size
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 1000, \
        "the inline figure decodes"
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == len(index_result.decision_points)
    assert all(r.is_displayed() for r in rows)
    bottom = browser.find_element(By.ID, "notice-bottom")
    browser.execute_script("arguments[0].scrollIntoView()", bottom)
    assert bottom.is_displayed() and "RESEARCH REVIEW ONLY" in bottom.text
    # the whole page as a person sees it, kept as a test artifact
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(height + 140, 16000))
    browser.execute_script("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-screenshot.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 50000


def test_hostile_report_stays_inert_in_chromium(chromium, hostile_report: Path):
    browser = need_browser(chromium)
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    browser.get((hostile_report / "report.html").resolve().as_uri())
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - no script ran, so no alert is open
    assert browser.title == f"Research review: {HOSTILE_TITLE}"
    assert browser.find_element(By.ID, "title").text == HOSTILE_TITLE
    assert browser.execute_script("return document.scripts.length") == 0
    assert browser.execute_script("return document.images.length") == 1


# --- found in a user trial of the reports --------------------------------------------------------


def test_the_markdown_says_when_a_rule_fires_under_one_placement_only(tmp_path: Path):
    """add-mmf on day 35 of no-anti-mda5 fires under the early placement alone: the HTML said so,
    the Markdown row read as if it always fired."""
    out = tmp_path / "r"
    assert run_report(ROOT / "scenarios" / "variants" / "no-anti-mda5.yaml", out).exit_code == 0
    row = next(line for line in (out / "report.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| 35 ") and "add-mmf" in line)
    assert row.startswith("| 35 (early placement only) | add-mmf")


def test_a_replay_json_of_an_earlier_report_is_refused_not_left_behind(tmp_path: Path):
    """A report of two rule sets, then of one scenario under the default into the same folder,
    left replay-report-pathway.json (of the index case) beside the new report."""
    out = tmp_path / "r"
    assert run_report(INDEX_CASE, out, PATHWAY, ROOT / "rules" / "romero-bueno-2020.yaml").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = run_report(ROOT / "scenarios" / "variants" / "early-rituximab.yaml", out)
    assert result.exit_code == 2
    assert "holds replay-report-pathway.json, replay-romero-bueno-2020.json, which this report would not replace" \
        in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written, nothing deleted
    assert run_report(INDEX_CASE, out, PATHWAY, ROOT / "rules" / "romero-bueno-2020.yaml").exit_code == 0


def test_the_default_rule_set_is_named_as_the_readme_names_it(tmp_path: Path, monkeypatch):
    """With no --rules the report named the rule file by its place in the installed package."""
    monkeypatch.chdir(tmp_path)
    assert run_report(INDEX_CASE, tmp_path / "r").exit_code == 0
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "<code>rules/report-pathway.yaml</code>" in html and str(PATHWAY) not in html


def test_the_comparison_marks_a_side_that_rests_on_an_assumption(tmp_path: Path):
    """Found in a user trial: `diff` marks each side ASSUMPTION, the report's comparison did not."""
    out = tmp_path / "r"
    assert run_report(INDEX_CASE, out, PATHWAY, ROOT / "rules" / "romero-bueno-2020.yaml").exit_code == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| IVIG | **moved** | 0 (step1-combination) ASSUMPTION | 25 (rb-rescue) ASSUMPTION |" in md
    html = (out / "report.html").read_text(encoding="utf-8")
    row = html[html.index('data-code="IVIG"'):]
    assert row[:row.index("</tr>")].count('<span class="badge assumption">ASSUMPTION</span>') == 2


def test_every_view_of_a_decision_point_marks_a_disputed_value(index_report: Path):
    """The report and the replay table mark DISPUTED-VALUE beside ASSUMPTION and CASE-SPECIFIC, as
    diff does: pards-oi-severe on day 24 read OI 36, recomputed, which the report gives as 20."""
    md = (index_report / "report.md").read_text()
    [row] = [line for line in md.splitlines() if line.startswith("| 24 | pards-oi-severe")]
    assert "pards-oi-severe DISPUTED-VALUE |" in row and "36 (recomputed; the source reports 20" in row
    assert md.count(" DISPUTED-VALUE |") == 1
    html = (index_report / "report.html").read_text()
    assert html.count('<span class="badge disputed"') == 1
    table = CliRunner().invoke(app, ["replay", str(INDEX_CASE), "--width", "120"]).stdout
    assert table.count("DISPUTED-VALUE") == 1


def test_a_negative_lag_says_why_in_the_replay_table():
    """Found in a trial: rb-rescue on day 25 showed actual 11, lag -14 and no word that PE had
    been in place since day 11 (only the JSON's already_in_place said so)."""
    table = CliRunner().invoke(app, ["replay", str(INDEX_CASE), "--rules", str(ROMERO), "--width", "120"]).stdout
    [row] = [i for i, line in enumerate(table.splitlines()) if "│  25 │ rb-rescue" in line]
    block = "\n".join(table.splitlines()[row:row + 8])
    assert "in the timeline: PE already in place since day 11" in block and "-14" in block
    plain = CliRunner().invoke(app, ["replay", str(INDEX_CASE), "--width", "120"]).stdout
    assert "in the timeline:" not in plain  # no lag below 0 under the report's pathway


def test_the_timeline_line_names_only_the_actions_already_in_place(tmp_path: Path):
    """Found in review: with PSL already given when step 1 fired, the line listed every matched
    action ('MPT started day 0..11; PSL already in place since day -3; CyA ...')."""
    text = INDEX_CASE.read_text()
    on_or_after = ('    day: {on_or_after: 3, note: "after the methylprednisolone pulses: after the first 3-day course at '
                   'the earliest, or after all four; the day is not given"}\n')
    assert on_or_after in text
    scenario = tmp_path / "psl-before.yaml"
    scenario.write_text(text.replace(on_or_after, "    day: -3\n    until: 20\n"))
    table = CliRunner().invoke(app, ["replay", str(scenario), "--width", "200"]).stdout
    lines = [line for line in table.splitlines() if "in the timeline:" in line]
    assert lines and all(line.split("in the timeline: ")[1].split("│")[0].strip()
                         == "PSL already in place since day -3" for line in lines), lines
