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
