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
