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
