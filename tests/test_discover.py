"""Folder walks (load/discover.py): every command lists a folder's files through `files_under`,
in the order `sorted(Path.rglob(...))` gave, and a subfolder it cannot read is an error naming
it, never passed over with its files left out of a replay, a check or a batch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import INDEX_CASE, PATHWAY
from typer.testing import CliRunner

from escalation.cli.app import app
from escalation.load.discover import YAML_SUFFIXES, files_under, folder_entries, yaml_files
from escalation.load.errors import InputError

NAMES = ("B.yaml", "a.yaml", "a/b.yaml", "a.b/c.yaml", "a-b.yaml", "a_b.yml", "10.yaml", "9.yaml", "A/x.yml",
         ".hidden.yaml", "z/.h/y.yaml", "a/b/c/d.yaml", "a b.yaml", "notes.txt", "d.yaml/inside.yaml",
         "\u00fc.yaml", "Z.YAML", "x.yaml.bak", "a/b/c.json", "1/2/3/4.yaml")


def tree(root: Path) -> Path:
    """A folder of nested files with names of every kind, a folder named like a YAML file, links
    to a file, to a folder and to nothing, and a pipe."""
    for name in NAMES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x: 1\n")
    (root / "link.yaml").symlink_to(root / "a.yaml")
    (root / "linked-folder").symlink_to(root / "a", target_is_directory=True)
    (root / "dangling.yaml").symlink_to(root / "nowhere.yaml")
    os.mkfifo(root / "pipe.yaml")
    return root


def test_the_walk_lists_the_files_rglob_listed_in_the_same_order(tmp_path, monkeypatch):
    root = tree(tmp_path / "tree")
    for given in (root, Path("tree")):  # absolute, and relative to the working folder
        monkeypatch.chdir(tmp_path)
        walked = files_under(given)
        assert walked == sorted(p for p in given.rglob("*") if p.is_file())
        assert yaml_files([given]) == sorted(p for p in given.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
    names = [p.relative_to(root).as_posix() for p in files_under(root)]
    assert names.index("a/b.yaml") < names.index("a.b/c.yaml")  # sorted part by part, not as text
    assert "link.yaml" in names and "linked-folder/b.yaml" not in names  # links to folders are not followed
    assert not {"dangling.yaml", "pipe.yaml", "d.yaml"} & set(names)  # regular files only


def test_a_subfolder_that_cannot_be_read_is_an_error_naming_it_not_passed_over(tmp_path, unreadable):
    root = tree(tmp_path / "tree")
    unreadable(root / "a" / "b")
    for walk in (files_under, lambda r: yaml_files([r])):
        with pytest.raises(InputError) as caught:
            walk(root)
        assert str(caught.value) == f"{root / 'a' / 'b'}: cannot read folder: Permission denied"


def test_the_folder_named_that_cannot_be_read_is_an_error_naming_it(tmp_path, unreadable):
    root = tree(tmp_path / "tree")
    unreadable(root)
    for walk in (files_under, folder_entries):
        with pytest.raises(InputError, match=f"^{root}: cannot read folder: Permission denied$"):
            walk(root)


def test_a_folder_removed_during_the_walk_is_an_error_naming_it(tmp_path, unreadable):
    root = tree(tmp_path / "tree")
    unreadable(root / "z" / ".h", FileNotFoundError)  # listed in z, gone when it is read
    with pytest.raises(InputError) as caught:
        files_under(root)
    assert str(caught.value) == f"{root / 'z' / '.h'}: cannot read folder: No such file or directory"


def test_a_folder_name_with_a_newline_stays_one_line(tmp_path, unreadable):
    (tmp_path / "two\nlines").mkdir()
    unreadable(tmp_path / "two\nlines")
    with pytest.raises(InputError) as caught:
        files_under(tmp_path)
    assert str(caught.value) == f"{tmp_path}/two\\nlines: cannot read folder: Permission denied"


def test_a_file_whose_kind_cannot_be_read_is_an_error_naming_it(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text("x: 1\n")
    real_is_file = Path.is_file

    def is_file(path: Path) -> bool:
        if path.name == "a.yaml":
            raise PermissionError(13, "Permission denied", str(path))
        return real_is_file(path)

    monkeypatch.setattr(Path, "is_file", is_file)
    with pytest.raises(InputError, match=f"^{tmp_path / 'a.yaml'}: cannot read file: Permission denied$"):
        files_under(tmp_path)


@pytest.mark.parametrize("command", [
    ["test", "--rules", str(PATHWAY)],
    ["check"],
    ["sweep", "--set", "step2-plasma-exchange.trend_window_days=5:6:1", "--rules", str(PATHWAY), "--out", "OUT"],
], ids=["test", "check", "sweep"])
def test_a_command_given_a_folder_with_a_subfolder_it_cannot_read_exits_2_with_one_line(tmp_path, unreadable,
                                                                                          command):
    data = tmp_path / "data"
    (data / "more").mkdir(parents=True)
    (data / "index.yaml").write_text(INDEX_CASE.read_text())
    (data / "more" / "other.yaml").write_text(INDEX_CASE.read_text())
    unreadable(data / "more")
    command = [str(tmp_path / "out") if arg == "OUT" else arg for arg in command]
    result = CliRunner().invoke(app, [*command, str(data)])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {data / 'more'}: cannot read folder: Permission denied\n"
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


# --- every path named gives a scenario, or is an error naming it -----------------------------------


def _export(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "Patient.000.ndjson").write_text('{"resourceType": "Patient", "id": "p1"}\n')
    (folder / "manifest.json").write_text('{"transactionTime": "2021-07-01T00:00:00Z", "output": []}\n')
    return folder


SCENARIO_COMMANDS = {
    "test": ["test", "--rules", str(PATHWAY)],
    "sweep": ["sweep", "--set", "step2-plasma-exchange.trend_window_days=7:14:7", "--out", "OUT"],
    "diff": ["diff", str(PATHWAY), str(PATHWAY)],
}


@pytest.mark.parametrize("command", SCENARIO_COMMANDS.values(), ids=SCENARIO_COMMANDS.keys())
def test_a_bulk_data_folder_named_beside_scenarios_is_an_error_naming_it_not_left_out(tmp_path, command):
    """`sweep ... index_case.yaml data/bulk-all` once exited 0 with no row from the export (the
    same with `test`); named alone it was 'no scenario files found' (found in a user trial)."""
    export = _export(tmp_path / "bulk-all")
    command = [str(tmp_path / "out") if arg == "OUT" else arg for arg in command]
    for inputs in ([INDEX_CASE, export], [export]):
        result = CliRunner().invoke(app, [*command, *map(str, inputs)])
        assert result.exit_code == 2, result.output
        assert result.stderr == (f"error: {export}: is a FHIR Bulk Data export (NDJSON files), not a scenario "
                                 f"file: `escalation import fhir {export} --out DIR` writes one scenario file per "
                                 "patient into DIR, to name instead; `escalation batch` reads the export itself\n")
    assert not (tmp_path / "out").exists()


def test_a_folder_that_holds_an_export_among_scenarios_names_the_export(tmp_path):
    data = tmp_path / "data"
    export = _export(data / "site-a" / "bulk")
    (data / "index.yaml").write_text(INDEX_CASE.read_text())
    result = CliRunner().invoke(app, ["test", "--rules", str(PATHWAY), str(data)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {data}: holds a FHIR Bulk Data export (NDJSON files) in {export}, "
                                    f"not scenario files: `escalation import fhir {export} --out DIR`")


@pytest.mark.parametrize("command", [["replay"], ["explain"], ["report", "--out", "OUT"]])
def test_a_bulk_data_folder_given_as_the_scenario_says_what_reads_one(tmp_path, command):
    export = _export(tmp_path / "bulk")
    command = [str(tmp_path / "out") if arg == "OUT" else arg for arg in command]
    result = CliRunner().invoke(app, [*command, str(export)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {export}: is a FHIR Bulk Data export (NDJSON files), not a scenario "
                                    f"file: `escalation import fhir {export} --out DIR`")


@pytest.mark.parametrize("command", [*SCENARIO_COMMANDS.values(), ["batch", "--workers", "1", "--out", "OUT"]],
                         ids=[*SCENARIO_COMMANDS.keys(), "batch"])
def test_a_folder_named_beside_scenarios_that_gives_none_is_an_error_naming_it(tmp_path, command):
    empty = tmp_path / "empty"
    (empty / "literature").mkdir(parents=True)
    (empty / "literature" / "table1.yaml").write_text("records: []\n")
    (empty / "notes.json").write_text("{}\n")  # a .json file that is no Bundle is passed over in a folder
    command = [str(tmp_path / "out") if arg == "OUT" else arg for arg in command]
    result = CliRunner().invoke(app, [*command, str(INDEX_CASE), str(empty)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"error: {empty}: no scenario files found in this folder (looked for *.yaml and *.yml "
                             "files and FHIR Bundle *.json files, walking it; folders named literature hold "
                             "published-case records, not timelines, and are passed over)\n")
    assert not (tmp_path / "out").exists()
