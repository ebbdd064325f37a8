"""Byte-identical replay output for every shipped scenario under every shipped rule set.

The golden files were written by the code before the package was reshaped into one subpackage
per stage; a refactoring must leave them unchanged. An intended change of output rewrites them
with tests/golden/regenerate.py, and the diff is reviewed like code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
from regenerate import cases, replay_json  # noqa: E402


@pytest.mark.parametrize("rules,scenario,golden", cases(), ids=lambda v: Path(v).stem if isinstance(v, (str, Path)) else v)
def test_replay_json_is_byte_identical(rules: str, scenario: str, golden: Path) -> None:
    assert golden.is_file(), f"no golden file {golden.name}: run tests/golden/regenerate.py"
    assert replay_json(rules, scenario) == golden.read_text(encoding="utf-8")


def test_every_shipped_pair_has_a_golden_file() -> None:
    golden = {g.name for _, _, g in cases()}
    assert len(golden) == 24
    on_disk = {p.name for p in (Path(__file__).resolve().parent / "golden" / "replay").glob("*.json")}
    assert on_disk == golden
