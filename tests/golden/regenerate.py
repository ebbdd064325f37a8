"""Rewrite the golden replay outputs in tests/golden/replay/ from the current code.

Run it only when a change of output is intended, and review `git diff tests/golden` before
committing: the golden files are what shows that a refactoring changed nothing.

    .venv/bin/python tests/golden/regenerate.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "replay"


def cases() -> list[tuple[str, str, Path]]:
    """(rule file, scenario file, golden file), paths relative to the repository root."""
    scenarios = ["scenarios/index_case.yaml"] + sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "scenarios" / "variants").glob("*.yaml"))
    rules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "rules").glob("*.yaml"))
    return [(r, s, GOLDEN / f"{Path(r).stem}__{Path(s).stem}.json") for r in rules for s in scenarios]


def replay_json(rules: str, scenario: str) -> str:
    """What `escalation replay SCENARIO --rules RULES --format json` prints, run from the root."""
    from escalation.cli import app

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(app, ["replay", scenario, "--rules", rules, "--format", "json"])
    finally:
        os.chdir(here)
    if result.exit_code != 0:
        raise RuntimeError(f"replay {scenario} --rules {rules} exited {result.exit_code}: {result.output}")
    return result.stdout


if __name__ == "__main__":
    for rules, scenario, golden in cases():
        golden.write_text(replay_json(rules, scenario))
        print(f"wrote {golden.relative_to(ROOT)}", file=sys.stderr)
