"""Bad input costs one clear line on stderr and exit code 2, never a traceback or a half-written report.

Each test copies a shipped file, changes exactly one thing, and checks the message:
`error: FILE[:LINE] (PATH): MESSAGE`, with LINE the line of the changed text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from escalation.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "index_case.yaml"
RULES = ROOT / "rules" / "report-pathway.yaml"

runner = CliRunner()


# --- helpers ------------------------------------------------------------------------------------


def line_of(text: str, marker: str, which: int | None = None) -> int:
    """1-based line of the line containing `marker`; unique unless `which` picks one of several."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if marker in line]
    if which is None:
        assert len(hits) == 1, f"marker {marker!r} is on lines {hits}"
        return hits[0]
    return hits[which]


def write_changed(tmp_path: Path, source: Path, old: str, new: str) -> tuple[Path, str]:
    """A copy of `source` in tmp_path with the one occurrence of `old` replaced by `new`."""
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {source.name}"
    text = text.replace(old, new)
    path = tmp_path / f"bad-{source.name}"
    path.write_text(text, encoding="utf-8")
    return path, text


def replay(tmp_path: Path, scenario: Path, rules: Path = RULES, *extra: str):
    """Run `escalation replay` with --output; returns the result and the output path."""
    out = tmp_path / "out" / "report.txt"
    args = ["replay", str(scenario), "--rules", str(rules), "--output", str(out), *extra]
    return runner.invoke(app, args), out


def assert_input_error(result, file: str | None, line: int | None, keywords, out: Path | None = None,
                       stdout_empty: bool = True) -> str | None:
    """Exit 2, one `error:` line naming file (and line), key words present, nothing written.

    Returns the line number the message shows, if any.
    """
    shown = f"exit {result.exit_code}, exception {result.exception!r}, output:\n{result.output}"
    assert "Traceback" not in result.output, shown
    assert isinstance(result.exception, SystemExit), shown  # not an uncaught Python exception
    assert result.exit_code == 2, shown
    errors = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(errors) == 1, shown
    error = errors[0]
    assert error.startswith("error: "), error
    message, shown_line = error, None
    if file is not None:
        prefix = f"error: {file}"
        assert error.startswith(prefix), f"{error!r} does not name {file}"
        m = re.fullmatch(r"(?::(\d+))?(?: \([^)]*\))?: (.+)", error[len(prefix):])
        assert m, f"{error!r} is not of the form error: FILE[:LINE] (PATH): MESSAGE"
        if line is not None:
            assert m.group(1) == str(line), f"expected line {line}, got: {error!r}"
        shown_line, message = m.group(1), m.group(2)
    for word in keywords:
        assert word.lower() in message.lower(), f"{word!r} not in {error!r}"
    if stdout_empty:
        assert result.stdout == "", shown
    if out is not None:
        assert not out.exists(), f"{out} was written"
        assert not out.parent.exists() or not any(out.parent.iterdir()), "a stray file was left"
    return shown_line


# --- 1. malformed YAML ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, marker, keywords",
    [
        pytest.param("findings: [myositis suggested]", "findings: [myositis suggested",
                     "findings: [myositis suggested", ["malformed YAML", "]"], id="unclosed-bracket"),
        pytest.param("    code: transfer\n", "      code: transfer\n", "      code: transfer",
                     ["malformed YAML"], id="bad-indentation"),
    ],
)
def test_malformed_yaml(tmp_path, old, new, marker, keywords):
    path, text = write_changed(tmp_path, SCENARIO, old, new)
    result, out = replay(tmp_path, path)
    assert_input_error(result, str(path), line_of(text, marker), keywords, out)


# --- 2-5. scenario contents ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, marker, keywords",
    [
        pytest.param("  - id: transfer\n", "  - id: transfer\n    colour: red\n", "colour: red",
                     ["unknown field", "colour"], id="unknown-event-field"),
        pytest.param("      fio2: 0.8\n", "      fio2: 1.3\n", "fio2: 1.3",
                     ["fio2", "1.3", "outside", "range"], id="fio2-above-1"),
        pytest.param("      fio2: 0.24\n", "      fio2: 0.15\n", "fio2: 0.15",
                     ["fio2", "0.15", "outside", "range"], id="fio2-below-0.21"),
        pytest.param('spo2: {value: 96, unit: "%"}', 'spo2: {value: 104, unit: "%"}', "value: 104,",
                     ["spo2", "104", "outside", "range"], id="spo2-above-100"),
        pytest.param("dose: {value: 1, unit: mg/kg/day}", "dose: {value: -1, unit: mg/kg/day}",
                     "value: -1,", ["dose", "positive", "-1"], id="negative-dose"),
        pytest.param("dose: {value: 1, unit: mg/kg/day}", "dose: {value: 0, unit: mg/kg/day}",
                     "value: 0,", ["dose", "positive"], id="zero-dose"),
        pytest.param("pao2: {value: 68.7, unit: mmHg}", "pao2: {value: 68.7, unit: mmHG}",
                     "unit: mmHG", ["unknown unit", "mmHG", "pao2"], id="unknown-measure-unit"),
        pytest.param("dose: {value: 1, unit: mg/kg/day}", "dose: {value: 1, unit: mg/kilo/day}",
                     "mg/kilo/day", ["unknown dose unit", "mg/kilo/day"], id="unknown-dose-unit"),
        pytest.param("    code: transfer\n    day: 0\n",
                     "    code: transfer\n    day: 0\n    day: 1  # second 'day' key\n",
                     "second 'day' key", ["duplicate key", "day"], id="duplicate-yaml-key"),
    ],
)
def test_bad_scenario(tmp_path, old, new, marker, keywords):
    path, text = write_changed(tmp_path, SCENARIO, old, new)
    result, out = replay(tmp_path, path)
    assert_input_error(result, str(path), line_of(text, marker), keywords, out)


def test_duplicate_event_id_points_at_second(tmp_path):
    path, text = write_changed(tmp_path, SCENARIO, "  - id: ivig\n", "  - id: cya\n")
    second = line_of(text, "  - id: cya", which=1)
    assert second > line_of(text, "  - id: cya", which=0)
    result, out = replay(tmp_path, path)
    assert_input_error(result, str(path), second, ["duplicate event id", "cya"], out)


# --- 2, 6, 9. rule contents ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, marker, keywords",
    [
        pytest.param("  - id: step2-plasma-exchange\n", "  - id: step2-plasma-exchange\n    severity: high\n",
                     "severity: high", ["unknown field", "severity"], id="unknown-rule-field"),
        pytest.param("      - measure: pip\n", "      - measure: pipp\n", "measure: pipp",
                     ["unknown measure", "pipp"], id="unknown-measure"),
        pytest.param("      - given: [RTX]\n", "      - given: [RTX2]\n", "given: [RTX2]",
                     ["unknown code", "RTX2"], id="unknown-given-code"),
        pytest.param("    proposes: [PE]\n", "    proposes: [XYZ]\n", "proposes: [XYZ]",
                     ["XYZ", "step", "step2-plasma-exchange"], id="unknown-proposed-step"),
        pytest.param("      - step_flagged: 4\n", "      - step_flagged: 9\n", "step_flagged: 9",
                     ["step 9", "no rule"], id="step-flagged-no-rule"),
        pytest.param("        threshold: pip_limit\n", "        threshold: pip_limt\n", "threshold: pip_limt",
                     ["parameter", "pip_limt", "barotrauma-watch"], id="undefined-parameter"),
        pytest.param('title: "Step 2 for review: plasma exchange (PE)"', 'title: "Start plasma exchange"',
                     "Start plasma exchange", ["title", "order", "start"], id="title-as-order"),
    ],
)
def test_bad_rules(tmp_path, old, new, marker, keywords):
    path, text = write_changed(tmp_path, RULES, old, new)
    result, out = replay(tmp_path, SCENARIO, path)
    assert_input_error(result, str(path), line_of(text, marker), keywords, out)


MEASURE = '      - measure: anti_mda5\n        op: ">="\n        threshold: anti_mda5_high\n'


@pytest.mark.parametrize(
    "old, new, marker, where, keywords",
    [
        pytest.param(MEASURE, MEASURE.replace("anti_mda5_high", "40"), "threshold: 40",
                     "rules[0].conditions[2].threshold", ["parameter", "not a number", "40"], id="number-threshold"),
        pytest.param(MEASURE, MEASURE.replace('">="', '"gt"'), 'op: "gt"',
                     "rules[0].conditions[2].op", ["'<'", "'>='"], id="bad-op"),
        pytest.param(MEASURE, MEASURE.replace('        op: ">="\n', ""), "- measure: anti_mda5",
                     "rules[0].conditions[2].op", ["missing field 'op'"], id="missing-op"),
        pytest.param(MEASURE, MEASURE + "        thresold: x\n", "thresold: x",
                     "rules[0].conditions[2].thresold", ["unknown field 'thresold'"], id="unknown-key"),
        pytest.param("      - step_flagged: 1\n", '      - step_flagged: 1\n        case_specific: ""\n',
                     'case_specific: ""', "rules[1].conditions[0].case_specific", ["at least 1 character"],
                     id="empty-case-specific"),
        pytest.param("        window_days: trend_window_days\n", "        window_days: 14\n", "window_days: 14",
                     "rules[1].conditions[3].window_days", ["parameter", "not a number", "14"], id="number-window"),
        pytest.param("    proposes: [MPT, PSL, CyA, IVCY, IVIG]\n",
                     "    proposes: [MPT, PSL, CyA, IVCY, IVIG]\n    repeat: {every_days: anti_mda5_high, each: 1}\n",
                     "repeat: {every_days", "rules[0].repeat.each", ["unknown field 'each'"], id="repeat-mapping"),
        pytest.param("    proposes: [MPT, PSL, CyA, IVCY, IVIG]\n",
                     "    proposes: [MPT, PSL, CyA, IVCY, IVIG]\n    repeat: daily\n",
                     "repeat: daily", "rules[0].repeat", ["'once'", "'each_day'"], id="repeat-word"),
    ],
)
def test_a_mistake_in_a_condition_names_its_field(tmp_path, old, new, marker, where, keywords):
    """The kind of a condition (measure, trend, ...) is not where its error is: `threshold: 40` was
    reported at `.measure`, `case_specific: ""` at `.step_flagged` (found in a user trial)."""
    path, text = write_changed(tmp_path, RULES, old, new)
    result = runner.invoke(app, ["check", str(path)])
    line = line_of(text, marker)
    assert_input_error(result, str(path), line, keywords)
    assert result.stderr.startswith(f"error: {path}:{line} ({where}): "), result.stderr


# --- 7. --set ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item, keywords",
    [
        pytest.param("step2-plasma-exchange.nope=3",
                     ["--set", "step2-plasma-exchange", "nope", "trend_window_days"], id="unknown-parameter"),
        pytest.param("nosuch.trend_window_days=3", ["--set", "no rule", "nosuch", "step2-plasma-exchange"],
                     id="unknown-rule"),
        pytest.param("step2-plasma-exchange.trend_window_days", ["--set", "RULE.PARAM=VALUE"], id="no-equals"),
        pytest.param("step2-plasma-exchange.trend_window_days=ten", ["--set", "'ten'", "not a number"],
                     id="non-numeric"),
        pytest.param("step2-plasma-exchange.trend_window_days=nan", ["--set", "nan", "number"], id="nan"),
        pytest.param("step2-plasma-exchange.trend_window_days=inf", ["--set", "inf", "number"], id="inf"),
    ],
)
def test_bad_set(tmp_path, item, keywords):
    result, out = replay(tmp_path, SCENARIO, RULES, "--set", item)
    assert_input_error(result, None, None, keywords, out)


def test_a_parameter_set_twice_is_refused(tmp_path):
    """The last value used to win without a word, so a what-if could run on a value not meant."""
    result, out = replay(tmp_path, SCENARIO, RULES, "--set", "step2-plasma-exchange.trend_window_days=10",
                         "--set", "step2-plasma-exchange.trend_window_days=12")
    assert_input_error(result, None, None, ["--set", "step2-plasma-exchange.trend_window_days",
                                            "more than once", "10 and 12"], out)


def test_good_set_is_accepted(tmp_path):
    """The --set cases above fail for their one fault, not because --set never works."""
    result, out = replay(tmp_path, SCENARIO, RULES, "--set", "step2-plasma-exchange.trend_window_days=10")
    assert result.exit_code == 0, result.output
    assert out.exists()


# --- 8. missing and empty files -------------------------------------------------------------------


def test_missing_scenario_file(tmp_path):
    path = tmp_path / "no-such-scenario.yaml"
    result, out = replay(tmp_path, path)
    assert assert_input_error(result, str(path), None, ["not found"], out) is None


@pytest.mark.parametrize("content", ["", "# only a comment\n"], ids=["empty", "comment-only"])
def test_empty_scenario_file(tmp_path, content):
    path = tmp_path / "empty.yaml"
    path.write_text(content, encoding="utf-8")
    result, out = replay(tmp_path, path)
    assert_input_error(result, str(path), None, ["empty"], out)


# --- escalation check -----------------------------------------------------------------------------


def test_check_good_files():
    result = runner.invoke(app, ["check", str(SCENARIO), str(RULES)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"ok: {SCENARIO} (scenario)", f"ok: {RULES} (rules)"]
    assert result.stderr == ""


@pytest.mark.parametrize(
    "source, old, new, marker",
    [
        pytest.param(SCENARIO, "  - id: transfer\n", "  - id: transfer\n    colour: red\n", "colour: red",
                     id="scenario"),
        pytest.param(RULES, "  - id: step2-plasma-exchange\n", "  - id: step2-plasma-exchange\n    severity: high\n",
                     "severity: high", id="rules"),
    ],
)
def test_check_bad_file(tmp_path, source, old, new, marker):
    path, text = write_changed(tmp_path, source, old, new)
    result = runner.invoke(app, ["check", str(SCENARIO), str(path)])
    assert_input_error(result, str(path), line_of(text, marker), ["unknown field"], stdout_empty=False)
    assert result.stdout.splitlines() == [f"ok: {SCENARIO} (scenario)"]
