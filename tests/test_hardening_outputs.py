"""Hardening of what the tool writes and how long it runs (issue "Hardening", items 4, 6, 7, 14).

Each test here failed on the code before the fix: a clock that ran for a hundred million days,
`--output` that replaced its own input or a FIFO, a report or sweep that left some new files beside
old ones when a later file failed, a fixed temporary name shared by concurrent sweeps, and JUnit
XML made invalid by control characters in a file name.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT
from typer.testing import CliRunner

from escalation.cli import app
from escalation.load.errors import InputError
from escalation.report.files import check_output, staged, write_atomically

runner = CliRunner()


def one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0]


# --- 4: the clock is bounded as file days are -------------------------------------------------------


def test_a_huge_through_day_is_refused_at_once():
    started = time.monotonic()
    result = runner.invoke(app, ["replay", str(INDEX_CASE), "--through-day", "100000000"])
    one_line_error(result, "--through-day", "36525")
    assert time.monotonic() - started < 30


def test_a_through_day_inside_the_bound_still_runs():
    result = runner.invoke(app, ["replay", str(INDEX_CASE), "--through-day", "600", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"last_day": 600' in result.stdout


# --- 6: never write over an input, or over anything but a regular file ----------------------------


def test_output_over_the_scenario_is_refused_and_the_input_kept(tmp_path: Path):
    scenario = tmp_path / "s.yaml"
    scenario.write_bytes(INDEX_CASE.read_bytes())
    one_line_error(runner.invoke(app, ["replay", str(scenario), "--output", str(scenario)]), "input of this run")
    assert scenario.read_bytes() == INDEX_CASE.read_bytes()


def test_output_over_the_rule_set_is_refused(tmp_path: Path):
    rules = tmp_path / "r.yaml"
    rules.write_bytes(PATHWAY.read_bytes())
    result = runner.invoke(app, ["replay", str(INDEX_CASE), "--rules", str(rules), "--output", str(rules)])
    one_line_error(result, "input of this run")
    assert rules.read_bytes() == PATHWAY.read_bytes()


def test_output_to_a_fifo_is_refused_and_the_fifo_kept(tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    one_line_error(runner.invoke(app, ["replay", str(INDEX_CASE), "--output", str(fifo)]), "not a regular file")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_device_is_never_a_target():
    with pytest.raises(InputError, match="not a regular file"):
        check_output(Path("/dev/null"))
    with pytest.raises(InputError, match="not a regular file"):
        write_atomically(Path("/dev/null"), "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# --- 7: several files, all or nothing --------------------------------------------------------------


def test_a_report_whose_last_file_cannot_be_written_replaces_nothing(tmp_path: Path):
    out = tmp_path / "rep"
    (out / "replay.json").mkdir(parents=True)  # a folder where the last file must go
    (out / "report.html").write_text("old report")
    result = runner.invoke(app, ["report", str(INDEX_CASE), "--out", str(out)])
    one_line_error(result, "replay.json")
    assert (out / "report.html").read_text() == "old report"
    assert sorted(p.name for p in out.iterdir()) == ["replay.json", "report.html"]
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no staging folder left behind


def test_an_interrupted_sweep_leaves_the_old_files_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import escalation.analysis.sweep as sweep
    from escalation.match.results import RulesetOut

    out = tmp_path / "sw"
    out.mkdir()
    (out / "sweep.csv").write_text("old csv")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "plot", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep.write_sweep(out, [], sweep.parse_range("step3-ecmo-oi.oi_above=40:41:1"), "notice",
                          ruleset=RulesetOut(id="r", version="0", title="r", content_hash="0", assumptions=[],
                                             case_specific=[], overrides={}))
    assert sorted(p.name for p in out.iterdir()) == ["sweep.csv"]
    assert (out / "sweep.csv").read_text() == "old csv"
    assert [p.name for p in tmp_path.iterdir()] == ["sw"]


def test_staging_folders_are_unique_so_concurrent_writers_never_share_one(tmp_path: Path):
    with staged(tmp_path / "out") as a, staged(tmp_path / "out") as b:
        assert a != b and a.parent == b.parent == tmp_path
    assert list(tmp_path.iterdir()) == []


def _another_writer_first(out: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[], None]) -> None:
    """The race CI met: two writers both see no output folder; `make` builds the other writer's
    `out` just before this one renames its whole staged folder there."""
    from escalation.report import files

    real_rename = os.rename

    def rename(src, dst):
        if Path(dst) == out and not out.exists():
            out.mkdir()
            make()
        return real_rename(src, dst)

    monkeypatch.setattr(files.os, "rename", rename)


def test_a_folder_created_by_another_writer_just_before_publishing_takes_the_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from escalation.report import files

    out = tmp_path / "shared"
    _another_writer_first(out, monkeypatch, lambda: ((out / "theirs.txt").write_text("theirs"),
                                                     (out / "a.txt").write_text("old")))
    with staged(out) as stage:
        (stage / "a.txt").write_text("new a")
        (stage / "b.txt").write_text("new b")
        assert files.publish(stage, out, ["a.txt", "b.txt"]) == [out / "a.txt", out / "b.txt"]
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a.txt": "new a", "b.txt": "new b",
                                                             "theirs.txt": "theirs"}
    assert [p.name for p in tmp_path.iterdir()] == ["shared"]


def test_a_folder_in_the_way_in_a_folder_another_writer_just_made_replaces_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The files then go in one by one, each target checked first, as into any existing folder."""
    from escalation.report import files

    out = tmp_path / "shared"
    _another_writer_first(out, monkeypatch, lambda: ((out / "a.txt").write_text("old"), (out / "b.txt").mkdir()))
    with pytest.raises(InputError, match="is a folder"):
        with staged(out) as stage:
            (stage / "a.txt").write_text("new a")
            (stage / "b.txt").write_text("new b")
            files.publish(stage, out, ["a.txt", "b.txt"])
    assert (out / "a.txt").read_text() == "old" and (out / "b.txt").is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["shared"]


def test_concurrent_sweeps_into_one_folder_all_succeed(tmp_path: Path):
    out = tmp_path / "shared"
    code = ("import sys; from escalation.analysis.sweep import parse_range, write_sweep; "
            "from escalation.match.results import RulesetOut; "
            "write_sweep(__import__('pathlib').Path(sys.argv[1]), [], "
            "parse_range('step3-ecmo-oi.oi_above=40:42:1'), 'notice', ruleset=RulesetOut(id='r', version='0', "
            "title='r', content_hash='0', assumptions=['r.p'], case_specific=[], overrides={}))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    assert sorted(p.name for p in out.iterdir()) == ["sweep.csv", "sweep.png", "sweep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["shared"]


# --- 14: JUnit XML stays well-formed --------------------------------------------------------------


def test_junit_xml_with_control_characters_in_a_file_name_is_well_formed(tmp_path: Path):
    odd = tmp_path / "case\x01\x1b.yaml"
    odd.write_bytes(INDEX_CASE.read_bytes())
    junit = tmp_path / "junit.xml"
    result = runner.invoke(app, ["test", str(odd), "--rules", str(PATHWAY), "--junit", str(junit)])
    assert result.exit_code in (0, 1), result.output
    root = ET.fromstring(junit.read_text())  # raises on a character XML 1.0 forbids
    assert "case\\x01\\x1b.yaml" in ET.tostring(root, encoding="unicode")
