"""`escalation sweep`: a parameter range over scenarios, in worker processes."""

from __future__ import annotations

import csv

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT
from typer.testing import CliRunner

import escalation
from escalation.analysis.sweep import Point, parse_range, run_sweep, to_csv
from escalation.cli.app import app
from escalation.match.results import NOTICE, RulesetOut

runner = CliRunner()
VARIANTS = ROOT / "scenarios" / "variants"


def test_sweep_of_the_ecmo_threshold_with_two_workers(tmp_path):
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", "--set", "step3-ecmo-oxygenation.map_at_least=16:20:1",
                                 "--workers", "2", str(INDEX_CASE), str(VARIANTS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("RESEARCH REVIEW ONLY")
    row = next(line for line in result.stdout.splitlines()
               if line.startswith("index-case") and "step3-ecmo-oxygenation" in line)
    # at MAP thresholds up to 18 (the day-24 MAP) the flag is on day 24; above, it never fires
    assert row.split()[2:] == ["24", "24", "24", "-", "-"]
    with open(out / "sweep.csv") as fh:
        assert fh.readline().startswith("# RESEARCH REVIEW ONLY")
        rows = list(csv.DictReader(fh))
    ecmo = [r for r in rows if r["scenario"] == "index-case" and r["rule_id"] == "step3-ecmo-oxygenation"]
    assert [r["step3-ecmo-oxygenation.map_at_least"] for r in ecmo] == ["16", "17", "18"]
    assert {r["scenario"] for r in rows} >= {"index-case", "variant-pe-responder", "variant-ranges-only"}
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "sweep.txt").read_text() == result.stdout


def test_one_and_two_workers_give_the_same_points():
    rng = parse_range("step3-ecmo-oi.oi_above=30:40:5")
    one, _ = run_sweep([INDEX_CASE, VARIANTS / "early-collapse.yaml"], PATHWAY, rng, workers=1)
    two, _ = run_sweep([INDEX_CASE, VARIANTS / "early-collapse.yaml"], PATHWAY, rng, workers=2)
    assert one == two
    oi = {(p.scenario, p.value) for p in one if p.rule_id == "step3-ecmo-oi"}
    # the index case's recomputed day-24 OI is 36; the early collapse has OI 44.4 on day 3
    assert oi == {("index-case", 30.0), ("index-case", 35.0), ("variant-early-collapse", 30.0),
                  ("variant-early-collapse", 35.0), ("variant-early-collapse", 40.0)}


@pytest.mark.parametrize("spec, message", [
    ("step3-ecmo-oi.oi_above=30:40", "RULE.PARAM=START:STOP:STEP"),
    ("step3-ecmo-oi.oi_above=40:30:1", "STOP >= START"),
    ("step3-ecmo-oi.oi_above=30:40:0", "STEP > 0"),
    ("step3-ecmo-oi.nope=30:40:1", "has no parameter 'nope'"),
])
def test_bad_ranges(tmp_path, spec, message):
    result = runner.invoke(app, ["sweep", "--set", spec, str(INDEX_CASE), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("n_scenarios", [1, 2, 4])
def test_sweep_figure_titles_lie_inside_the_figure(n_scenarios):
    """A one-panel figure is narrower than the title; it is wrapped, not cut off at both ends."""
    from matplotlib import pyplot as plt

    from escalation.analysis.sweep import Point, sweep_figure
    from escalation.match.results import NOTICE

    rng = parse_range("step3-ecmo-oxygenation.map_at_least=16:20:1")
    points = [Point(f"scenario-{i}", v, "step3-ecmo-oxygenation", 1, 24, 24)
              for i in range(n_scenarios) for v in (16.0, 17.0, 18.0)]
    fig = sweep_figure(points, rng, NOTICE)
    try:
        renderer = fig.canvas.get_renderer()
        suptitle = next(t for t in fig.texts if t.get_text().startswith("Sweep of"))
        titles = [suptitle] + [ax.title for ax in fig.axes if ax.get_visible()]
        assert "RESEARCH REVIEW ONLY" in titles[0].get_text()
        for title in titles:
            box = title.get_window_extent(renderer)
            assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, (title.get_text(), box, fig.bbox)
            assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, (title.get_text(), box, fig.bbox)
    finally:
        plt.close(fig)


def test_the_csv_parses_once_its_comment_lines_are_skipped():
    """The notice stays in the file, on lines that start with '#' (every one of them, whatever
    the notice holds), and after them a header row and plain CSV rows."""
    rng = parse_range("step3-ecmo-oi.oi_above=30:40:10")
    points = [Point("index-case", 30.0, "step3-ecmo-oi", 1, 24, 24, "a.yaml"),
              Point("index-case", 40.0, "add-mmf", 2, 35, 40, "sites/#2, b.yaml", timing="early placement only")]
    header = ["ruleset_id", "ruleset_version", "ruleset_content_hash", "scenario", "scenario_file", "rule_id",
              "occurrence", "step3-ecmo-oi.oi_above", "day", "day_latest", "timing", "rests_on_assumption",
              "rests_on_case_specific", "rests_on_disputed_value"]
    named = RulesetOut(id="r", version="1.0", title="t", content_hash="ab" * 32, assumptions=[], case_specific=[],
                       overrides={})
    for notice in (NOTICE, "RESEARCH REVIEW ONLY - a notice, with commas,\nover two lines"):
        text = to_csv(points, rng, notice, ruleset=named)
        comments = [line for line in text.splitlines() if line.startswith("#")]
        assert " ".join(c[2:] for c in comments) == " ".join(notice.split("\n"))
        assert text.startswith("".join(c + "\n" for c in comments))  # the comments come first, and only there
        rows = list(csv.reader(line for line in text.splitlines() if not line.startswith("#")))
        assert rows == [header, ["r", "1.0", "ab" * 32, "index-case", "a.yaml", "step3-ecmo-oi", "1", "30", "24",
                                 "24", "exact", "false", "false", "false"],
                        ["r", "1.0", "ab" * 32, "index-case", "sites/#2, b.yaml", "add-mmf", "2", "40", "35", "40",
                         "early placement only", "false", "false", "false"]]
        assert '"index-case","sites/#2, b.yaml"' in text.splitlines()[-1]  # '#' within quotes is data


def test_two_files_that_give_one_scenario_id_are_two_scenarios_each_named_with_its_file(tmp_path):
    """Imported ids are fhir-<Patient.id>, so two sites' exports share them: the sweep once
    merged the two into one row set (the table showed one file's decision point for both) and
    wrote every row twice without a file column (found in a user trial)."""
    (tmp_path / "index_case.yaml").write_text(INDEX_CASE.read_text())
    (tmp_path / "site-b").mkdir()
    early = (VARIANTS / "early-collapse.yaml").read_text()
    a, b = tmp_path / "index_case.yaml", tmp_path / "site-b" / "index_case.yaml"
    (tmp_path / "site-b" / "base.yml").write_text(INDEX_CASE.read_text().replace("id: index-case", "id: base", 1))
    b.write_text(early.replace("id: variant-early-collapse", "id: index-case").replace("../index_case.yaml", "base.yml"))
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", "--set", "step3-ecmo-oi.oi_above=30:40:10", str(a), str(b),
                                 "--out", str(out), "--width", "200"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("index-case") and "step3-ecmo-oi" in line]
    # the index case's OI is 36 on day 24 (recomputed; the report gives 20: '*'); the early collapse's 44.4 on day 3
    assert rows == [["index-case", f"({a})", "step3-ecmo-oi", "24*", "-"],
                    ["index-case", f"({b})", "step3-ecmo-oi", "3", "3"]]
    assert "\n*: a condition it met read an index the rules recompute" in result.stdout
    with open(out / "sweep.csv") as fh:
        next(fh)
        found = [r for r in csv.DictReader(fh) if r["rule_id"] == "step3-ecmo-oi"]
    assert [(r["scenario_file"], r["step3-ecmo-oi.oi_above"], r["day"]) for r in found] == [
        (str(a), "30", "24"), (str(b), "30", "3"), (str(b), "40", "3")]
    alone = runner.invoke(app, ["sweep", "--set", "step3-ecmo-oi.oi_above=30:40:10", str(a), "--out", str(out)])
    assert f"({a})" not in alone.stdout  # a scenario id no other file gives is shown alone, as before


def test_the_outputs_say_which_values_no_source_states_and_the_swept_parameter_is_one(tmp_path):
    """The README promises the assumption parameters at the end of every output; sweep.txt and
    sweep.csv said nothing of them (found in a user trial). A swept value is an override, which
    replay marks as an assumption, so the swept parameter is listed too, as replay --set lists it."""
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", "--set", "step3-ecmo-oi.oi_above=30:40:10", str(INDEX_CASE),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "sweep.txt").read_text()
    assert text == result.stdout
    notes = " ".join(text.split("\nModelling assumptions (thresholds no source states):\n", 1)[1].split())
    replayed = escalation.replay(INDEX_CASE, PATHWAY, overrides={"step3-ecmo-oi.oi_above": 30})
    assert "step3-ecmo-oi.oi_above" in replayed.ruleset.assumptions
    assert "step3-ecmo-oi.oi_above" not in escalation.replay(INDEX_CASE, PATHWAY).ruleset.assumptions
    assert notes.startswith(", ".join(replayed.ruleset.assumptions) + " Case-specific conditions")
    assert all(c in notes for c in replayed.ruleset.case_specific)
    with open(out / "sweep.csv") as fh:
        next(fh)
        rows = list(csv.DictReader(fh))
    assert {r["rests_on_assumption"] for r in rows if r["rule_id"] == "step3-ecmo-oi"} == {"true"}  # swept
    marks = {(dp.rule_id, dp.occurrence): (dp.rests_on_assumption, dp.rests_on_case_specific,
                                           dp.rests_on_disputed_value)
             for dp in replayed.decision_points}
    at_30 = {(r["rule_id"], int(r["occurrence"])): (r["rests_on_assumption"] == "true",
                                                    r["rests_on_case_specific"] == "true",
                                                    r["rests_on_disputed_value"] == "true")
             for r in rows if r["step3-ecmo-oi.oi_above"] == "30"}
    assert at_30 == marks  # each row as the replay at that value marks its decision point
    assert {m for m in marks.values()} == {(True, True, False), (True, False, False), (False, False, False),
                                           (True, False, True), (False, False, True)}
    # OI 36 recomputed on day 24, which the report gives as 20: the ECMO rule at 30 and the severe band
    assert {k for k, m in marks.items() if m[2]} == {("step3-ecmo-oi", 1), ("pards-oi-severe", 1)}


def test_every_output_names_the_rule_set_as_replay_does(tmp_path):
    """replay and batch summary name the rule set (id, version, content hash); the sweep's table,
    sweep.txt and sweep.csv named none, so a sweep's files could not be tied to the rules behind
    them (found in a user trial). The hash is that of the rule set as loaded, before a swept value
    is set: the one replay prints without --set, and the same on every row."""
    rules = ROOT / "rules" / "rtx-earlier.yaml"
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", "--set", "step4-rituximab.trend_window_days=7:14:7", "--rules", str(rules),
                                 str(INDEX_CASE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rs = escalation.replay(INDEX_CASE, rules).ruleset
    assert rs.id == "rtx-earlier"
    assert result.stdout.splitlines()[3].startswith(f"Rule set {rs.id} v{rs.version} sha256:{rs.content_hash[:16]} ")
    assert (out / "sweep.txt").read_text() == result.stdout
    with open(out / "sweep.csv") as fh:
        assert next(fh).startswith("# ")  # the one line to skip, as the README says
        rows = list(csv.DictReader(fh))
    assert rows and {(r["ruleset_id"], r["ruleset_version"], r["ruleset_content_hash"]) for r in rows} == {
        (rs.id, rs.version, rs.content_hash)}


def test_the_figure_marks_a_decision_point_that_read_a_disputed_value_as_the_table_does():
    """Found in a trial: the table marked step3-ecmo-oi's day 24 '*' (OI 36 recomputed, 20 reported)
    and the figure drew the same line with no mark."""
    from matplotlib import pyplot as plt

    from escalation.analysis.sweep import Point, sweep_figure
    from escalation.match.results import NOTICE

    rng = parse_range("step3-ecmo-oi.oi_above=30:40:5")
    points = [Point("index-case", 30.0, "step3-ecmo-oi", 1, 24, 24, rests_on_disputed_value=True),
              Point("index-case", 35.0, "step3-ecmo-oi", 1, 24, 24, rests_on_disputed_value=True),
              Point("index-case", 30.0, "add-mmf", 1, 35, 35), Point("index-case", 35.0, "add-mmf", 1, 36, 36)]
    fig = sweep_figure(points, rng, NOTICE)
    try:
        [ax] = [a for a in fig.axes if a.get_visible()]
        stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
        assert len(stars) == 1 and list(zip(*stars[0].get_data())) == [(30.0, 24), (35.0, 24)]
        assert any("recomputed" in t.get_text() for t in ax.get_legend().get_texts())
    finally:
        plt.close(fig)
    fig = sweep_figure(points[2:], rng, NOTICE)
    try:
        assert not [line for a in fig.axes for line in a.get_lines() if line.get_marker() == "*"]
    finally:
        plt.close(fig)
