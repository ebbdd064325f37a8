"""Reading a batch's part files back (`batch summary`, and the failed count at the end of a run).

Each path is read as written: a batch folder whose name holds `*`, `?` or `[` reads its own files
only, never a sibling batch's, and one named `~` is not looked for in $HOME. A done chunk whose
file is missing or corrupt is one line, `error: PATH: ...`, with exit status 2, never a traceback.
Each batch here is one or two replays on one local worker.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import INDEX_CASE
from typer.testing import CliRunner

from escalation.batch import store
from escalation.cli.app import app

runner = CliRunner()


def _inputs(folder: Path, bad: bool) -> Path:
    """A folder with the index case, or with a scenario that fails to load (an error row)."""
    folder.mkdir()
    if bad:
        (folder / "b-bad.yaml").write_text("scenario:\n  id: b\n")
    else:
        shutil.copy(INDEX_CASE, folder / "a.yaml")
    return folder


def _batch(inputs: Path, out: str, *extra: str):
    return runner.invoke(app, ["batch", str(inputs), "--workers", "1", "--out", out, *extra])


def _summary(out: str) -> dict:
    result = runner.invoke(app, ["batch", "summary", out, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_folder_named_like_a_glob_reads_only_its_own_files(tmp_path):
    bad = _batch(_inputs(tmp_path / "bad", bad=True), str(tmp_path / "run2"))
    assert bad.exit_code == 1, bad.output  # its one replay failed: an error row in run2
    out = str(tmp_path / "run*")
    result = _batch(_inputs(tmp_path / "good", bad=False), out)
    assert result.exit_code == 0, result.output  # run2's error is not counted as this batch's
    s = _summary(out)
    assert (s["replays_planned"], s["replays_ok"], s["replays_failed"], s["errors"]) == (1, 1, 0, [])


@pytest.mark.parametrize("name", ["run?", "run[12]", "run*"])
def test_the_summary_of_a_glob_named_folder_counts_no_sibling(tmp_path, name):
    """The same with the chunk files copied: each name would match the sibling `run2` as a glob."""
    source = tmp_path / "source"
    assert _batch(_inputs(tmp_path / "bad", bad=True), str(source)).exit_code == 1
    shutil.copytree(source, tmp_path / "run2")
    shutil.copytree(source, tmp_path / name)
    empty = pq.read_table(store.part(source, store.ERRORS, 0)).slice(0, 0)
    store.write_table_atomically(store.part(tmp_path / name, store.ERRORS, 0), empty)  # its error row gone
    s = _summary(str(tmp_path / name))
    assert (s["replays_failed"], s["errors"]) == (1, [])  # run2's error row is not read
    assert len(_summary(str(tmp_path / "run2"))["errors"]) == 1


def test_a_folder_named_tilde_is_a_folder_here_not_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    inputs = _inputs(tmp_path / "in", bad=False)
    monkeypatch.chdir(tmp_path)
    result = _batch(inputs, "~/b")
    assert result.exit_code == 0, result.output
    assert store.done_chunks(tmp_path / "~" / "b") == {0} and list(home.iterdir()) == []
    s = _summary("~/b")
    assert (s["out"], s["replays_ok"], s["replays_failed"], s["complete"]) == ("~/b", 1, 0, True)
    table = runner.invoke(app, ["batch", "summary", "~/b"])
    assert table.exit_code == 0 and "1 of 1 chunks done" in table.stdout


# --- a done chunk that cannot be read -------------------------------------------------------------

@pytest.fixture(scope="module")
def two_chunks(tmp_path_factory) -> tuple[Path, Path]:
    """A batch of two chunks, one replay each: one ran, one failed to load; and its inputs."""
    root = tmp_path_factory.mktemp("read")
    inputs = _inputs(root / "in", bad=False)
    (inputs / "b-bad.yaml").write_text("scenario:\n  id: b\n")
    out = root / "batch"
    result = _batch(inputs, str(out), "--chunk-size", "1")
    assert result.exit_code == 1, result.output
    assert store.done_chunks(out) == {0, 1}
    return inputs, out


def _junk(path: Path) -> None:
    path.write_bytes(b"not parquet")


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-20])


def _missing(path: Path) -> None:
    path.unlink()


def _bad_page(path: Path, column: str) -> None:
    """The first page of one column overwritten: the footer reads, the column's rows do not."""
    meta = pq.read_metadata(path).row_group(0)
    chunk = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == column)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(path.read_bytes())
    data[start:start + 12] = b"\xff" * 12
    path.write_bytes(bytes(data))


BROKEN = [
    (store.ERRORS, 1, _missing, "No such file or directory"),
    (store.RESULTS, 0, _junk, "cannot read this file"),
    (store.REPLAYS, 1, _truncated, "cannot read this file"),
    (store.REPLAYS, 1, lambda p: p.write_bytes((p.parent.parent / store.ERRORS / p.name).read_bytes()),
     "its columns are not those of the replays table"),
    (store.REPLAYS, 0, lambda p: _bad_page(p, "status"), "cannot read this file"),
    (store.ERRORS, 1, lambda p: _bad_page(p, "file"), "cannot read this file"),
]


@pytest.mark.parametrize(("table", "chunk", "damage", "message"), BROKEN)
def test_a_done_chunk_that_cannot_be_read_is_one_line_naming_its_file(two_chunks, tmp_path, table, chunk,
                                                                      damage, message):
    inputs, source = two_chunks
    out = tmp_path / "batch"
    shutil.copytree(source, out)
    damage(store.part(out, table, chunk))
    result = runner.invoke(app, ["batch", "summary", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {store.part(out, table, chunk)}: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
    if table == store.ERRORS:  # the failed count at the end of a run reads the errors files
        resumed = _batch(inputs, str(out), "--chunk-size", "1", "--resume")
        assert resumed.exit_code == 2, resumed.output
        assert resumed.stderr.startswith(f"error: {store.part(out, table, chunk)}: ")
        assert len(resumed.stderr.strip().splitlines()) == 1
