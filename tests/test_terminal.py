"""Terminal output a person can read: it follows the width, folds instead of cutting, and
never passes control characters from a file through to the terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT
from rich.table import Table
from rich.text import Text
from typer.testing import CliRunner

from escalation.cli import app
from escalation.report.console import (
    FALLBACK_WIDTH,
    Printer,
    buffer_console,
    fold,
    output_width,
    plain_text,
    printable,
    rendered,
)

runner = CliRunner()
ROMERO = ROOT / "rules" / "romero-bueno-2020.yaml"
COMMANDS = {
    "replay": ["replay", str(INDEX_CASE)],
    "test": ["test", str(INDEX_CASE)],
    "diff": ["diff", str(PATHWAY), str(ROMERO)],
    "cohort summary": ["cohort", "summary"],
    "cohort check": ["cohort", "check"],
    "cohort placement": ["cohort", "placement"],
}


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_line_fits_and_nothing_is_cut(command: str, width: int):
    result = runner.invoke(app, [*COMMANDS[command], "--width", str(width)])
    assert result.exit_code == 0, result.output
    too_long = [line for line in result.stdout.splitlines() if len(line) > width]
    assert too_long == []
    assert "…" not in result.stdout  # Rich's mark for a cut cell


@pytest.mark.parametrize("width", [80, 200])
def test_rule_ids_are_never_broken(width: int):
    out = runner.invoke(app, ["replay", str(INDEX_CASE), "--width", str(width)]).stdout
    for rule_id in ("step1-combination", "step2-plasma-exchange", "step3-ecmo-oxygenation", "step4-rituximab"):
        assert re.search(rf"│ {re.escape(rule_id)} +│", out), rule_id


def test_the_sweep_table_blocks_values_to_the_width(tmp_path: Path):
    result = runner.invoke(app, ["sweep", "--set", "step3-ecmo-oi.oi_above=30:60:2", str(INDEX_CASE),
                                 "--out", str(tmp_path), "--width", "80"])
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    header = [line for line in result.stdout.splitlines() if line.startswith("scenario")]
    assert len(header) > 1  # more than one block of values
    assert all(len(line) <= FALLBACK_WIDTH for line in (tmp_path / "sweep.txt").read_text().splitlines())


def test_a_replay_with_no_decision_points_says_so_in_words(tmp_path: Path):
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text("""\
scenario: {id: quiet, title: "nothing happens", source: {section: Case presentation}}
patient:
  age_years: 5
  sex: female
  source: {section: Case presentation}
events:
  - {id: obs-1, kind: observation, day: 1, values: {fio2: 0.21}, source: {section: Case presentation}}
""")
    out = runner.invoke(app, ["replay", str(quiet)]).stdout
    assert "No decision points" in out
    assert "┏" not in out  # no empty table box


def test_the_width_falls_back_to_a_fixed_one_when_not_a_terminal(tmp_path: Path):
    with open(tmp_path / "out.txt", "w") as stream:
        assert output_width(None, stream) == FALLBACK_WIDTH
        assert output_width(120, stream) == 120


def test_control_characters_from_files_become_visible_escapes():
    assert printable("title \x1b]0;owned\x07 \x1b[31mred\u009b") == "title \\x1b]0;owned\\x07 \\x1b[31mred\\x9b"
    assert printable("line one\nline two\tend") == "line one\nline two end"


def test_an_escape_sequence_in_a_title_never_reaches_the_terminal(tmp_path: Path):
    text = INDEX_CASE.read_text()
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(re.sub(r"(?m)^  title: .*$", r'  title: "\\e]0;owned\\a\\e[31mred"', text, count=1))
    for args in (["replay", str(hostile)], ["test", str(hostile)]):
        out = runner.invoke(app, args).output
        assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned" in runner.invoke(app, ["replay", str(hostile)]).output


def test_folding_keeps_every_word_and_indents_list_items():
    text = "  - " + " ".join(f"word{i}" for i in range(40))
    folded = fold(text, 30)
    assert all(len(line) <= 30 for line in folded.splitlines())
    assert folded.split() == text.split()
    assert all(line.startswith("    ") for line in folded.splitlines()[1:])


PRINTER_TEXTS = ["", "a plain line", "x" * 150, "  - [kind] a message that runs on " * 6, "a\n\nb\n",
                 "tab\there", "[bold]markup[/bold] \\[not]", "wide 漢字 text " * 12, "ctl \x1b[31m\x07\r end",
                 "   leading and trailing   ", "word  " * 30, "e\u0301 combining " * 15]


@pytest.mark.parametrize("width", [1, 12, 60, 100])
@pytest.mark.parametrize("color", [False, True])
def test_the_printer_prints_what_rich_prints(width: int, color: bool):
    """Printer skips Rich's pipeline for lines Rich leaves alone; the bytes must be Rich's all the same."""
    out, buf = Printer(width, color), io.StringIO()
    console = buffer_console(buf, width, color)
    for text in PRINTER_TEXTS:
        out.line(text)
        console.print(text, markup=False)
        out.line(text, style="bold")
        console.print(Text(text, style="bold"))
        out.line(text, markup=True)
        console.print(text)
        out.item(text)
        console.print(plain_text(text, width), markup=False, soft_wrap=True)
    table = Table(title="a title", show_lines=True, expand=True)
    table.add_column("day", overflow="fold", justify="right", no_wrap=True, min_width=10)
    table.add_column("text", overflow="fold", ratio=1)
    for text in PRINTER_TEXTS:
        table.add_row(Text(text[:12]), Text(text))
    wide = Table(box=None, show_header=False)  # 18 cells to crop at 12 columns, in 10 characters
    wide.add_column(no_wrap=True, min_width=16)
    wide.add_row(Text("漢字" * 4))
    for t in (table, wide):
        out.table(t)
        console.print(t)
    assert out.text() == rendered(buf)


def test_the_printer_prints_what_rich_prints_at_no_width():
    out, buf = Printer(0), io.StringIO()
    console = buffer_console(buf, 0)
    for text in PRINTER_TEXTS:
        out.line(text)
        console.print(text, markup=False)
    assert out.text() == rendered(buf)


@pytest.mark.parametrize("color", [False, True])
def test_a_report_is_returned_as_text_in_a_notebook_too(monkeypatch, color: bool):
    """In Jupyter, Rich displays what a console prints instead of writing it to the console's file;
    the report functions return their text there as everywhere."""
    import rich.console

    from escalation import api
    from escalation.report import explain_text
    from escalation.report.text import to_table

    result, why = api.replay(INDEX_CASE), api.explain(INDEX_CASE, rule_ids=["step4-rituximab"])
    outside = to_table(result, 100, color), explain_text.to_table(why, 100)
    monkeypatch.setattr(rich.console, "_is_jupyter", lambda: True)
    assert (to_table(result, 100, color), explain_text.to_table(why, 100)) == outside and all(outside)


def test_at_60_columns_the_conditions_stay_readable():
    """Found in a user trial: at --width 60 the day, rule, actual and lag columns kept their
    widths and the conditions column got one character, printed a letter a line (2,572 lines
    against 181 at 100). Now those columns fold, and the conditions keep at least 20 columns."""
    from escalation import api
    from escalation.report.text import to_table

    result = api.replay(ROOT / "scenarios" / "index_case.yaml")
    narrow, wide = to_table(result, 60), to_table(result, 100)
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert len(narrow.splitlines()) < 2 * len(wide.splitlines())
    assert "│ diagnosis RP-ILD: yes" in narrow and "step1-comb" in narrow
    assert "step3-ecmo-oxygenation" in to_table(result, 80)  # whole where the width allows
