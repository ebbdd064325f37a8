"""The README shows real output and the commands CI runs."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_the_excerpt_is_real_output():
    block = README.split("An excerpt of real output", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    out = subprocess.run([sys.executable, "-m", "escalation", "replay", "scenarios/index_case.yaml"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.splitlines()
    shown = [line for line in block.splitlines() if line.strip() not in ("...", "│ ...")]
    assert len(shown) > 20
    missing = [line for line in shown if line not in out
               and not line.startswith("Rule set report-pathway v1.0.0 sha256:")]
    assert missing == []


def test_ci_runs_the_readme_test_command():
    command = re.search(r"<!-- test-command -->\n```sh\n(.+?)\n```", README).group(1)
    assert "pip install" in command and "pytest" in command
    assert "README.md" in (ROOT / ".ci" / "run").read_text()
    run_command = re.search(r"<!-- run-command -->\n```sh\n(.+?)\n```", README).group(1)
    assert run_command.endswith("escalation replay scenarios/index_case.yaml")


def _synopsis() -> dict[str, str]:
    """Each command's synopsis in the README's Commands block, continuation lines joined."""
    block = README.split("## Commands", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    out: dict[str, str] = {}
    key = ""
    for line in block.splitlines():
        if line.startswith("escalation "):
            words = line.split()
            sub = len(words) > 2 and words[2].isalpha() and words[2].islower()  # `cohort summary`
            key = " ".join(words[1:3]) if sub else words[1]
            out[key] = line
        elif key:
            out[key] += " " + line.strip()
    return out


def _commands() -> dict[str, object]:
    import typer.main

    from escalation.cli import app

    root = typer.main.get_command(app)
    found = {}
    for name, cmd in root.commands.items():
        for sub, subcmd in getattr(cmd, "commands", {}).items():  # a hidden one is the group's default
            found[name if getattr(subcmd, "hidden", False) else f"{name} {sub}"] = subcmd
        if not hasattr(cmd, "commands"):
            found[name] = cmd
    return found


def test_every_command_and_option_in_help_is_in_the_readme_and_back():
    synopsis, commands = _synopsis(), _commands()
    assert set(synopsis) - {"--version"} == set(commands)
    for name, cmd in commands.items():
        in_help = {o for p in cmd.params if p.param_type_name == "option" for o in p.opts
                   if o.startswith("--")} - {"--help"}
        in_readme = set(re.findall(r"--[a-z][a-z-]*", synopsis[name]))
        assert in_help == in_readme, name
        for p in cmd.params:
            if p.param_type_name == "argument" and name != "schema":
                assert (p.metavar or p.name.upper()) in synopsis[name], (name, p.metavar)
    prose = README.split("## Commands", 1)[1].split("## From Python", 1)[0]
    for option in {o for cmd in commands.values() for p in cmd.params for o in p.opts if o.startswith("--")}:
        assert f"`{option}" in prose or option == "--help", f"{option} is not explained"


def test_the_checked_snippets_pass_check(tmp_path):
    from typer.testing import CliRunner

    from escalation.cli import app

    snippets = re.findall(r"<!-- checked-snippet -->\n```yaml\n(.+?)```", README, flags=re.S)
    assert len(snippets) == 2
    for i, text in enumerate(snippets):
        (tmp_path / f"snippet{i}.yaml").write_text(text)
    result = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(line.split()[-1] for line in result.stdout.splitlines()) == ["(rules)", "(scenario)"]


def test_the_pipeline_diagram_names_every_subpackage_and_module():
    diagram = README.split("## How it works", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    package = ROOT / "escalation"
    for sub in sorted(p for p in package.iterdir() if (p / "__init__.py").is_file()):
        assert f"{sub.name}/" in diagram, sub.name
        for module in sub.glob("*.py"):
            if module.name != "__init__.py":
                assert module.name in diagram, f"{sub.name}/{module.name}"
    for name in re.findall(r"([a-z_]+\.py)", diagram):
        assert list(package.rglob(name)), f"the diagram names {name}, which does not exist"


def test_the_benchmark_line_works_after_the_readme_install():
    line = re.search(r"`(\.venv/bin/python benchmarks/[a-z_]+\.py)`", README).group(1)
    assert (ROOT / line.split()[1]).is_file()
    assert "-e" not in re.search(r"<!-- run-command -->\n```sh\n(.+?)\n```", README).group(1)
