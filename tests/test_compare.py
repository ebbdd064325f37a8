"""`escalation diff`: where decision points move between rule sets."""

from __future__ import annotations

import json

from conftest import INDEX_CASE, PATHWAY, ROOT
from typer.testing import CliRunner

from escalation.cli.app import app

runner = CliRunner()
ROMERO = ROOT / "rules" / "romero-bueno-2020.yaml"
EARLIER = ROOT / "rules" / "rtx-earlier.yaml"


def _diff(a, b, *scenarios) -> dict:
    result = runner.invoke(app, ["diff", str(a), str(b), *map(str, scenarios), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _change(data: dict, code: str, occurrence: int = 1) -> dict:
    [sd] = data["scenarios"]
    return next(c for c in sd["changes"] if c["code"] == code and c["occurrence"] == occurrence)


def test_romero_bueno_moves_pe_later_and_rtx_earlier_on_the_index_case():
    data = _diff(PATHWAY, ROMERO, INDEX_CASE)
    pe = _change(data, "PE")
    assert pe["status"] == "moved"
    assert (pe["a"]["rule_id"], pe["a"]["day"]) == ("step2-plasma-exchange", 11)
    assert (pe["b"]["rule_id"], pe["b"]["day"]) == ("rb-rescue", 25)
    assert (pe["shift_days"], pe["shift_days_latest"]) == (14, 14)
    rtx = _change(data, "RTX")
    assert (rtx["a"]["day"], rtx["a"]["day_latest"], rtx["b"]["day"]) == (18, 28, 11)
    assert (rtx["shift_days"], rtx["shift_days_latest"]) == (-7, -17)
    assert _change(data, "Tac")["status"] == "appears"
    assert _change(data, "barotrauma-watch")["status"] == "disappears"


def test_a_rule_set_against_itself_changes_nothing():
    data = _diff(PATHWAY, PATHWAY, INDEX_CASE)
    assert {c["status"] for c in data["scenarios"][0]["changes"]} == {"same"}


def test_table_names_the_shift():
    result = runner.invoke(app, ["diff", str(PATHWAY), str(EARLIER), str(INDEX_CASE)])
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("RTX"))
    assert row.split()[1] == "moved" and row.rstrip().endswith("-17..-7")
    assert "PE " not in result.stdout  # only what moves is listed by default
