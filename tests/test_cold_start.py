"""A cold `escalation replay` imports only what a replay needs (benchmarks/bench_replay.py times it).

The cohort, FHIR, batch, report and analysis modules, and the heavy libraries behind them, load
with the commands that use them: `escalation check` loads the FHIR modules only for FHIR input.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import INDEX_CASE, ROOT

NOT_FOR_REPLAY = (
    "escalation.literature", "escalation.fhir", "escalation.batch", "escalation.analysis",
    "escalation.report.html", "escalation.report.course", "escalation.report.explain_text",
    "escalation.report.cds_hooks", "escalation.report.fhir_out", "escalation.report.import_summary",
    "escalation.match.explanation", "escalation.load.schema", "escalation.load.changes",
    "matplotlib", "jinja2", "dask", "distributed", "pyarrow", "duckdb", "pandas", "numpy",
)

SCRIPT = """
import contextlib, io, json, sys
sys.argv = ["escalation", *sys.argv[1:]]
from escalation.cli import main
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def modules_loaded_by(*args: str) -> tuple[str, set[str]]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, cwd=ROOT,
                          check=True)
    data = json.loads(done.stdout)
    assert data["code"] in (0, None), done.stderr
    return data["out"], set(data["modules"])


def test_replay_loads_no_module_it_does_not_use():
    for fmt in ("table", "json"):
        out, modules = modules_loaded_by("replay", str(INDEX_CASE), "--format", fmt)
        assert "RESEARCH REVIEW ONLY" in out or "research review only" in out.lower()
        loaded = sorted(m for m in modules if m.startswith(NOT_FOR_REPLAY))
        assert loaded == [], fmt


def test_a_json_replay_loads_no_rich():
    _, modules = modules_loaded_by("replay", str(INDEX_CASE), "--format", "json")
    assert sorted(m for m in modules if m.split(".")[0] == "rich") == []


def test_the_commands_that_need_them_still_load_them():
    _, modules = modules_loaded_by("cohort", "summary", "--format", "json")
    assert "escalation.literature.summary" in modules


def _fhir_modules(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] == "fhir" or m.startswith("escalation.fhir"))


def test_check_on_yaml_loads_no_fhir_module():
    out, modules = modules_loaded_by("check", "scenarios", "rules")
    assert out.startswith("ok: ") and "(rules)" in out
    assert _fhir_modules(modules) == []


def test_check_on_a_bundle_loads_the_fhir_modules():
    """The other side of the test above: the same probe sees fhir.resources when FHIR is checked."""
    out, modules = modules_loaded_by("check", "tests/fixtures/fhir/synthea_like.json")
    assert "(FHIR Bundle: 1 of 1 patient importable as a scenario;" in out
    assert {"escalation.fhir.to_scenario", "fhir.resources"} <= set(_fhir_modules(modules))
