"""A plain (non-editable) install works from any folder: the shipped files travel inside the package.

The test builds the wheel as `pip install .` would, installs it into a scratch folder, and runs
the commands from an unrelated working directory on absolute paths, the way a new user would
after the README's first command. The dependencies come from the test environment; the package
itself comes only from the wheel (the checkout is not on the path).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import INDEX_CASE, ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    str(ROOT), "-w", str(wheels)], check=True, capture_output=True, cwd=ROOT)
    wheel = next(wheels.glob("escalation-*.whl"))
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    return target


def run(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run([sys.executable, "-m", "escalation", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_the_wheel_carries_rules_scenarios_literature_and_templates(installed: Path):
    shipped = installed / "escalation" / "shipped"
    assert sorted(p.name for p in (shipped / "rules").glob("*.yaml")) == sorted(
        p.name for p in (ROOT / "rules").glob("*.yaml"))
    assert (shipped / "scenarios" / "index_case.yaml").read_bytes() == INDEX_CASE.read_bytes()
    assert (shipped / "scenarios" / "literature" / "table1.yaml").is_file()
    assert len(list((shipped / "scenarios" / "variants").glob("*.yaml"))) == 7
    assert (installed / "escalation" / "report" / "templates" / "report.html.j2").is_file()
    assert (installed / "escalation" / "py.typed").is_file()  # type checkers read the hints (PEP 561)


def test_commands_run_from_another_folder_on_absolute_paths(installed: Path, tmp_path: Path):
    where = subprocess.run([sys.executable, "-c", "import escalation; print(escalation.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(installed)})
    assert where.stdout.startswith(str(installed)), "the checkout leaked onto the path"
    replay = run(installed, tmp_path, "replay", str(INDEX_CASE))
    assert replay.returncode == 0, replay.stderr
    assert "RESEARCH REVIEW ONLY" in replay.stdout and "step4-rituximab" in replay.stdout
    test = run(installed, tmp_path, "test")
    assert test.returncode == 0, test.stdout + test.stderr
    assert " passed, 0 failed" in test.stdout
    report = run(installed, tmp_path, "report", str(INDEX_CASE), "--out", str(tmp_path / "rep"))
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "rep" / "report.html").is_file()
    for sub in ("summary", "check", "placement"):
        cohort = run(installed, tmp_path, "cohort", sub)
        assert cohort.returncode == 0, cohort.stderr
    check = run(installed, tmp_path, "check", str(installed / "escalation" / "shipped"))
    assert check.returncode == 0, check.stderr
    assert check.stdout.count("ok: ") == 12


def test_the_readme_repository_paths_work_from_another_folder(installed: Path, tmp_path: Path):
    """`escalation replay scenarios/index_case.yaml` and the like, as the README writes them: the
    shipped copies are read, named as typed, so the output is the golden one written from the
    repository root; an output under scenarios/ is written here, never into the package."""
    golden = ROOT / "tests" / "golden" / "replay" / "romero-bueno-2020__index_case.json"
    replay = run(installed, tmp_path, "replay", "scenarios/index_case.yaml", "--rules",
                 "rules/romero-bueno-2020.yaml", "--format", "json", "--output", "scenarios/x.json")
    assert replay.returncode == 0, replay.stderr
    assert (tmp_path / "scenarios" / "x.json").read_text(encoding="utf-8") == golden.read_text(encoding="utf-8")
    assert not (installed / "escalation" / "shipped" / "scenarios" / "x.json").exists()
    test = run(installed, tmp_path, "test", "scenarios/variants", "--rules", "rules")
    assert test.returncode == 0, test.stdout + test.stderr
    assert "scenarios/variants/pe-responder.yaml" in test.stdout
    diff = run(installed, tmp_path, "diff", "rules/report-pathway.yaml", "rules/romero-bueno-2020.yaml")
    assert diff.returncode == 0, diff.stderr
    check = run(installed, tmp_path, "check", "scenarios/index_case.yaml")
    assert check.stdout == "ok: scenarios/index_case.yaml (scenario)\n", check.stderr
    api = subprocess.run([sys.executable, "-c", "import escalation; "
                          "print(escalation.replay('scenarios/index_case.yaml').scenario.file)"],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed)})
    assert api.stdout == "scenarios/index_case.yaml\n", api.stderr
