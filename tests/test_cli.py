"""The command line as a person meets it: --version, -h, and option errors as one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import INDEX_CASE, ROOT

from escalation.version import __version__


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "escalation", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_version_names_the_package_and_the_notice():
    out = cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"escalation {__version__} (RESEARCH REVIEW ONLY)"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_uses_readable_placeholders(flag: str):
    out = cli("replay", flag)
    assert out.returncode == 0
    assert "Usage: escalation replay [OPTIONS] SCENARIO" in out.stdout
    assert "--rules FILE" in out.stdout and "--through-day DAY" in out.stdout
    assert "<" not in out.stdout and "{" not in out.stdout  # no <path>, <bool> or {SCENARIO}


@pytest.mark.parametrize("args,words", [
    (["sweep", "--workers", "0", "--set", "a.b=1:2:1", str(INDEX_CASE)], ["--workers"]),
    (["replay", str(INDEX_CASE), "--width", "10"], ["--width"]),
    (["replay", str(INDEX_CASE), "--format", "xml"], ["--format"]),
    (["replay"], ["SCENARIO"]),
    (["no-such-command"], ["no-such-command"]),
])
def test_option_errors_are_one_line_and_exit_2(args: list[str], words: list[str]):
    out = cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert "╭" not in out.stderr and "Traceback" not in out.stderr


def test_no_arguments_prints_the_help():
    out = cli()
    assert out.returncode == 0 and "Commands:" in out.stdout


def _top_level_commands() -> list[str]:
    import typer

    from escalation.cli.app import app

    return [typer.main.get_command_name(i.name or i.callback.__name__) for i in app.registered_commands]


@pytest.mark.parametrize("name", _top_level_commands())
def test_a_command_named_first_runs_in_an_app_of_its_own_with_the_same_help_and_errors(name):
    """main() hands `escalation NAME ...` to a copy of the app holding NAME alone (typer then builds
    one command, not all of them); its help and its option errors read exactly as the whole app's."""
    from typer.testing import CliRunner

    app_module = sys.modules["escalation.cli.app"]
    one = app_module._dispatch([name, "--help"])
    assert one is not app_module.app and len(one.registered_commands) == 1
    runner = CliRunner()
    for args in ([name, "--help"], [name, "--no-such-option"]):
        whole, alone = runner.invoke(app_module.app, args), runner.invoke(one, args)
        assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output), args
    assert app_module._dispatch(["--help"]) is app_module.app
    assert app_module._dispatch(["batch", "summary"]) is app_module.app  # a group: the whole app
    assert app_module._dispatch([name + "x"]) is app_module.app


def test_main_collects_the_young_generation_less_often_while_a_command_runs(monkeypatch):
    """main() raises the youngest generation's threshold for the command, and puts it back after."""
    import gc

    app_module = sys.modules["escalation.cli.app"]
    seen = []
    monkeypatch.setattr(app_module, "_run", lambda: seen.append(gc.get_threshold()) or 0)
    before = gc.get_threshold()
    try:
        with pytest.raises(SystemExit) as done:
            app_module.main()
    finally:
        gc.unfreeze()  # main() freezes what is left as the process ends; this process goes on
    assert done.value.code == 0
    assert seen == [(app_module.YOUNG_GENERATION, *before[1:])] and gc.get_threshold() == before


@pytest.mark.parametrize("command", ["replay", "explain", "report", "test", "diff", "sweep"])
def test_help_of_a_command_that_takes_a_bundle_says_so(command: str):
    """Each of these loads its scenarios through escalation.api.load_scenario, which imports a FHIR
    R4 Bundle of one patient (.json) as it reads a scenario YAML file."""
    out = cli(command, "--help")
    assert out.returncode == 0
    assert "FHIR R4 Bundle JSON file" in " ".join(out.stdout.split())


def test_batch_help_lists_batch_summary():
    """`batch --help` is the help of the default command (`batch INPUTS ...`): it names the other
    command of the group too, with its usage and what it does."""
    out = cli("batch", "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "Usage: escalation batch [OPTIONS] INPUTS..." in text
    assert "or: escalation batch summary [OPTIONS] DIR" in text
    assert "summary For each rule set, grid point and rule:" in text
    assert "Usage: escalation batch summary [OPTIONS] DIR" in cli("batch", "summary", "--help").stdout


def _single_valued_options() -> list[tuple[str, str]]:
    """(command line before the option, option) for every option of every command that takes one
    value: the options that are neither repeatable nor flags."""
    import typer.main

    from escalation.cli.app import app

    found = []

    def walk(cmd, path: tuple[str, ...]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, path if getattr(sub, "hidden", False) else (*path, name))  # batch's default: `batch ...`
        for p in cmd.params:
            if p.param_type_name == "option" and not (p.multiple or p.count or p.is_flag):
                found.append((" ".join(path), max(p.opts, key=len)))

    walk(typer.main.get_command(app), ())
    return found


@pytest.mark.parametrize("command,option", _single_valued_options())
def test_an_option_that_takes_one_value_given_twice_is_refused(command: str, option: str):
    """Click keeps the last value of such an option and drops the others silently: `replay --rules
    a --rules b` replayed b alone and `sweep --set A --set B` swept B alone (found in a user
    trial). Every command refuses the repeat before it reads anything, naming both values."""
    from typer.testing import CliRunner

    from escalation.cli.app import app

    result = CliRunner().invoke(app, [*command.split(), option, "first-value", option, "second-value"])
    assert result.exit_code == 2, result.output
    assert f"{option} is given more than once (first-value and second-value)" in " ".join(result.output.split())


def test_the_options_that_take_one_value_are_every_command_s():
    found = _single_valued_options()
    assert {("sweep", "--set"), ("sweep", "--rules"), ("replay", "--rules"), ("batch", "--out"),
            ("import fhir", "--day-zero"), ("replay", "--through-day"), ("batch summary", "--width")} <= set(found)
    assert ("batch", "--rules") not in found and ("batch", "--grid") not in found  # repeatable


@pytest.mark.parametrize("args,words", [
    (["sweep", "--set", "step3-ecmo-oxygenation.map_at_least=16:20:2", "--set", "step3-ecmo-oi.oi_above=30:40:5",
      str(INDEX_CASE), "--out", "out/never"],
     [("escalation sweep: --set is given more than once (step3-ecmo-oxygenation.map_at_least=16:20:2 and "
       "step3-ecmo-oi.oi_above=30:40:5)"), "escalation batch", "--grid"]),
    (["sweep", "--set", "step4-rituximab.trend_window_days=7:14:7", "--rules", "rules/rtx-earlier.yaml",
      "--rules", "rules/report-pathway.yaml", str(INDEX_CASE), "--out", "out/never"],
     ["escalation sweep: --rules is given more than once (rules/rtx-earlier.yaml and rules/report-pathway.yaml)",
      "escalation batch", "--grid"]),
    (["replay", str(INDEX_CASE), "-r", "rules/rtx-earlier.yaml", "--rules=rules/report-pathway.yaml"],
     ["escalation replay: --rules is given more than once (rules/rtx-earlier.yaml and rules/report-pathway.yaml)",
      "escalation diff"]),
    (["import", "fhir", "x.json", "--out", "out/never", "--day-zero", "2020-01-01", "--day-zero", "2020-02-01"],
     ["escalation import fhir: --day-zero is given more than once (2020-01-01 and 2020-02-01)"]),
])
def test_a_repeated_option_is_one_line_that_says_what_to_do(args: list[str], words: list[str]):
    out = cli(*args)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert not (ROOT / "out" / "never").exists()


def test_repeatable_options_and_flags_given_twice_still_work():
    out = cli("replay", str(INDEX_CASE), "--set", "step3-ecmo-oi.oi_above=30", "--set", "add-mmf.days_after_rtx=10")
    assert out.returncode == 0, out.stderr
    assert "step3-ecmo-oi.oi_above=30" in out.stdout and "add-mmf.days_after_rtx=10" in out.stdout
    assert cli("diff", "rules/report-pathway.yaml", "rules/rtx-earlier.yaml", "--all", "--all").returncode == 0
    assert cli("replay", str(INDEX_CASE), "--width", "80", "--width", "90", "--help").returncode == 0  # help wins


@pytest.mark.parametrize("args,message", [
    (["batch", str(INDEX_CASE), "--out", "out/never", "--workers", "0"], "escalation batch: Invalid value for '--workers'"),
    (["batch", "run", "--workers", "1"], "escalation batch: Missing option '--out'"),
    (["batch", str(INDEX_CASE), "--out", "out/never", "--out", "out/never2"], "escalation batch: --out is given more"),
])
def test_batch_errors_name_the_command_as_it_is_typed(args: list[str], message: str):
    """`batch INPUTS ...` runs a hidden command, `run`, which no help names; its errors said
    `escalation batch run: ...` (found in a user trial)."""
    out = cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), out.stderr
    assert "batch run" not in out.stderr and not (ROOT / "out" / "never").exists()


@pytest.mark.parametrize("command", [["replay"], ["test"], ["diff"], ["sweep"], ["report"], ["explain"], ["check"],
                                     ["cohort"], ["cohort", "placement"], ["batch"], ["batch", "summary"]])
def test_the_help_of_every_command_that_shows_decision_points_says_research_review_only(command):
    """Found in a trial: test, diff, sweep, report, cohort and batch summary said nothing of it in --help."""
    from typer.testing import CliRunner

    from escalation.cli.app import app

    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "research review only" in " ".join(result.stdout.split()).lower()
