"""The README's repository paths (`scenarios/index_case.yaml`, `rules/...`, `scenarios/variants`)
work from any folder: a relative path under rules/ or scenarios/ that names nothing where the
command runs reads the shipped copy, and outputs name it as given, so they match the golden files
written from the repository root. A local file of the same name is read first; outputs are
never resolved.

The tests run from an empty working folder with the shipped files laid out as an install lays
them out (`escalation/shipped/{rules,scenarios}` beside the package), so `shipped_root` takes the
branch an installed package takes, not the checkout's; tests/test_install.py runs a real wheel.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import INDEX_CASE, ROOT
from typer.testing import CliRunner

import escalation
from escalation import api
from escalation.cli import app
from escalation.load import shipped

GOLDEN = ROOT / "tests" / "golden" / "replay"
runner = CliRunner()


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped folder of a fake install (copies of rules/ and scenarios/); the working folder
    is an empty one elsewhere. Returns the shipped folder."""
    package = tmp_path / "site" / "escalation"
    for kind in ("rules", "scenarios"):
        shutil.copytree(ROOT / kind, package / "shipped" / kind)
    monkeypatch.setattr(shipped, "_PACKAGE", package)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert shipped.shipped_root() == package / "shipped"
    return package / "shipped"


def cli(*args: str):
    return runner.invoke(app, list(args))


def from_root(monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """What the command prints run from the repository root, where the paths are local files."""
    with monkeypatch.context() as m:
        m.chdir(ROOT)
        result = cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def files_in(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.mark.parametrize("rules,scenario", [
    ("rules/report-pathway.yaml", "scenarios/index_case.yaml"),
    ("rules/romero-bueno-2020.yaml", "scenarios/variants/pe-responder.yaml"),  # a variant: derives_from
])
def test_replay_of_repository_paths_from_another_folder_gives_the_golden_json(installed, rules, scenario):
    result = cli("replay", scenario, "--rules", rules, "--format", "json")
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"{Path(rules).stem}__{Path(scenario).stem}.json"
    assert result.stdout == golden.read_text(encoding="utf-8")
    assert json.loads(result.stdout)["scenario"]["file"] == scenario


def test_the_copy_read_is_the_installed_one(installed):
    text = (installed / "scenarios" / "index_case.yaml").read_text(encoding="utf-8")
    (installed / "scenarios" / "index_case.yaml").write_text(text.replace('title: "', 'title: "INSTALLED ', 1))
    result = cli("replay", "scenarios/index_case.yaml", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scenario"]["title"].startswith("INSTALLED ")


def test_test_of_a_shipped_folder_names_its_files_as_from_the_root(installed, monkeypatch):
    result = cli("test", "scenarios/variants", "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.stdout == from_root(monkeypatch, "test", "scenarios/variants", "--format", "json")
    assert "scenarios/variants/pe-responder.yaml" in result.stdout and str(installed) not in result.stdout


def test_diff_of_two_shipped_rule_sets(installed, monkeypatch):
    args = ("diff", "rules/report-pathway.yaml", "rules/romero-bueno-2020.yaml", "scenarios/variants",
            "--format", "json")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert result.stdout == from_root(monkeypatch, *args)


def test_check_of_shipped_files_and_folders(installed):
    result = cli("check", "scenarios/index_case.yaml", "rules", "scenarios/literature")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ok: scenarios/index_case.yaml (scenario)",
        *(f"ok: rules/{p.name} (rules)" for p in sorted((ROOT / "rules").glob("*.yaml"))),
        "ok: scenarios/literature/table1.yaml (records)",
    ]


def test_explain_and_cohort_take_repository_paths(installed):
    explain = cli("explain", "scenarios/index_case.yaml", "--rules", "rules/rtx-earlier.yaml", "--format", "json")
    assert explain.exit_code == 0, explain.output
    assert json.loads(explain.stdout)["scenario"]["file"] == "scenarios/index_case.yaml"
    cohort = cli("cohort", "check", "--records", "scenarios/literature/table1.yaml", "--format", "json")
    assert cohort.exit_code == 0, cohort.output
    assert json.loads(cohort.stdout)["records_file"] == "scenarios/literature/table1.yaml"


def test_the_api_takes_repository_paths(installed):
    result = escalation.replay("scenarios/index_case.yaml", "rules/report-pathway.yaml")
    assert result.scenario.file == "scenarios/index_case.yaml"
    assert result.model_dump(exclude={"scenario": {"file"}}) == api.replay(INDEX_CASE).model_dump(exclude={"scenario": {"file"}})
    assert api.scenario_files(["scenarios/variants"])[0] == Path("scenarios/variants/early-collapse.yaml")
    assert api.rule_files(["rules"]) == [Path("rules", p.name) for p in sorted((ROOT / "rules").glob("*.yaml"))]
    report = api.check_expectations(["scenarios/index_case.yaml"], ["rules/report-pathway.yaml"])
    assert report.failed == 0 and report.passed == 1
    assert api.compare("rules/report-pathway.yaml", "rules/rtx-earlier.yaml", ["scenarios/index_case.yaml"])


def test_the_api_takes_repository_paths_in_a_checkout_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert escalation.replay("scenarios/index_case.yaml").scenario.file == "scenarios/index_case.yaml"


def test_a_local_file_of_the_same_name_is_read_first(installed):
    local = Path("scenarios/index_case.yaml")
    local.parent.mkdir()
    text = INDEX_CASE.read_text(encoding="utf-8")
    local.write_text(text.replace('title: "', 'title: "LOCAL ', 1), encoding="utf-8")
    result = cli("replay", "scenarios/index_case.yaml", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scenario"]["title"].startswith("LOCAL ")
    assert shipped.resolve("scenarios/index_case.yaml") == local
    # the local scenarios/ folder is what `test scenarios` walks: the shipped variants are not added
    walked = api.scenario_files(["scenarios"])
    assert walked == [local]


def test_outputs_are_written_where_named_never_into_the_package(installed):
    before = files_in(installed)
    result = cli("replay", "scenarios/index_case.yaml", "--output", "scenarios/x.json", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(Path("scenarios/x.json").read_text(encoding="utf-8"))["scenario"]["file"] == \
        "scenarios/index_case.yaml"
    assert files_in(installed) == before
    assert not (ROOT / "scenarios" / "x.json").exists()


def test_an_output_named_as_a_shipped_input_is_refused(installed):
    result = cli("replay", "scenarios/index_case.yaml", "--output", "scenarios/index_case.yaml")
    assert result.exit_code == 2
    assert "scenarios/index_case.yaml: is an input of this run" in result.output
    assert not Path("scenarios").exists()


@pytest.mark.parametrize("path", ["scenarios/nope.yaml", "../scenarios/index_case.yaml", "index_case.yaml",
                                  "variants/pe-responder.yaml"])
def test_a_path_that_is_neither_here_nor_shipped_is_not_found(installed, path):
    result = cli("replay", path)
    assert result.exit_code == 2
    assert f"error: {path}: file not found" in result.output


def test_only_relative_repository_paths_resolve(installed):
    assert shipped.resolve("scenarios/index_case.yaml") == installed / "scenarios" / "index_case.yaml"
    assert shipped.resolve("./scenarios/variants") == installed / "scenarios" / "variants"
    assert shipped.resolve("rules") == installed / "rules"
    for path in ("/scenarios/index_case.yaml", "../scenarios/index_case.yaml", "scenarios/../rules",
                 "scenarios/variants/../index_case.yaml", "index_case.yaml", "other/scenarios/index_case.yaml"):
        assert shipped.resolve(path) == Path(path)


def test_defaults_name_shipped_files_as_the_readme_does(installed, monkeypatch):
    """`escalation test` and `diff` with no scenarios named print the files by their repository
    names, not by their place inside the installed package."""
    result = cli("test")
    assert result.exit_code == 0, result.output
    assert "(scenarios/index_case.yaml)" in result.stdout and str(installed) not in result.stdout
    assert "index-case (scenarios/index_case.yaml)" in cli("diff", "rules/rtx-earlier.yaml",
                                                           "rules/report-pathway.yaml").stdout


def test_a_default_shadowed_by_a_local_file_is_named_by_its_full_path(installed):
    """Where a local `scenarios/` would be read under the repository name, a default names the
    shipped file in full, so the output never points at the local file."""
    assert api.scenario_files()[0] == Path("scenarios/index_case.yaml")
    Path("scenarios").mkdir()
    files = api.scenario_files()
    assert files and all(f.is_absolute() and f.is_relative_to(installed) for f in files)
    shutil.copy(installed / "scenarios" / "index_case.yaml", "scenarios/index_case.yaml")
    diff = api.compare("rules/rtx-earlier.yaml", "rules/report-pathway.yaml")
    assert diff.scenarios[0].file == (installed / "scenarios" / "index_case.yaml").as_posix()
