"""A FHIR Bulk Data export folder as a batch input: imported once into DIR/imported, then replayed."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ROOT
from typer.testing import CliRunner

from escalation.cli import app

BULK = ROOT / "tests" / "fixtures" / "fhir" / "bulk"


def test_a_bulk_data_folder_is_imported_and_replayed(tmp_path: Path):
    out = tmp_path / "batch"
    result = CliRunner().invoke(app, ["batch", str(BULK), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    imported = sorted((out / "imported").glob("*/*.yaml"))
    assert imported, "no scenario was imported"
    assert (next(iter((out / "imported").iterdir())) / "import-summary.json").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["scenarios"]) == len(imported)
    summary = CliRunner().invoke(app, ["batch", "summary", str(out), "--format", "json"])
    assert summary.exit_code == 0, summary.output
    again = CliRunner().invoke(app, ["batch", str(BULK), "--out", str(out), "--workers", "1", "--resume"])
    assert again.exit_code == 0, again.output  # the import is deterministic: the hashes still match
