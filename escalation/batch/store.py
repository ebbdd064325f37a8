"""The batch folder on disk: the manifest, one Parquet file per chunk and table, and a lock.

A chunk is done when, and only when, its results file exists under its final name. Its replays
and errors files are written first, and every file is written whole under a temporary name,
flushed to disk (fsync) and renamed, and the folder is flushed after the rename. So a run cut off
at any moment leaves either a finished chunk or none: a temporary file (`.part-*.tmp`) is never
read, and `--resume` removes it and runs its chunk again. Writing a chunk twice replaces it.
Everything that reads the files back goes through `query_parts`, which takes each path literally.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from escalation.batch.plan import Manifest
from escalation.load.errors import InputError
from escalation.report.files import umask, write_atomically

if TYPE_CHECKING:  # imported where a file is written or read
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as ds

MANIFEST = "manifest.json"
RESULTS, REPLAYS, ERRORS = "results", "replays", "errors"
TABLES = (ERRORS, REPLAYS, RESULTS)  # the order a chunk is written in: results last
_PART = re.compile(r"^part-(\d{6})\.parquet$")
_LOCK = ".lock"


def part_name(index: int) -> str:
    return f"part-{index:06d}.parquet"


def part(out: Path, table: str, index: int) -> Path:
    """Where chunk `index` of a table lives; readers list these, never the temporary names."""
    return out / table / part_name(index)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_table_atomically(path: Path, table: pa.Table) -> None:
    """The whole Parquet file under its final name, or nothing there: temp name, fsync, rename."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_chunk(out: Path, index: int, tables: dict[str, pa.Table]) -> None:
    """A chunk's three files, results last: its existence is what marks the chunk done."""
    for name in TABLES:
        write_table_atomically(part(out, name, index), tables[name])


def done_chunks(out: Path) -> set[int]:
    """The chunks whose results file exists: the only ones a reader or a resumed run counts."""
    folder = out / RESULTS
    if not folder.is_dir():
        return set()
    return {int(m.group(1)) for p in folder.iterdir() if (m := _PART.match(p.name))}


@contextmanager
def query_parts(out: Path, chunks: Iterable[int],
                tables: Iterable[str] = TABLES) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection on which each of `tables`, by its name, holds the rows of those chunks.

    The one way the batch's files are read back. DuckDB's read_parquet takes a path as a glob
    pattern and expands a leading `~`: a batch folder named `run*` would read another batch's
    files too, and one named `~` would be looked for in $HOME. So pyarrow opens each file under
    its literal absolute path, and DuckDB scans the dataset of exactly those files lazily, as
    read_parquet did: no table is held in memory whole. A file that is missing, not Parquet, not
    this version's table, or that fails while the queries scan it, is an InputError naming it.
    """
    import duckdb

    chunks = list(chunks)
    files = {t: [part(out, t, i) for i in chunks] for t in tables}
    con = duckdb.connect()
    try:
        for table, paths in files.items():
            con.register(table, _dataset(table, paths))
        yield con
    except (duckdb.InvalidInputException, duckdb.IOException) as exc:
        raise _unreadable(out, files, exc) from None
    finally:
        con.close()


def _schema(table: str) -> pa.Schema:
    from escalation.batch import rows as R

    return R.arrow_schema({RESULTS: R.ResultRow, REPLAYS: R.ReplayRow, ERRORS: R.ErrorRow}[table])


def _dataset(table: str, paths: list[Path]) -> ds.FileSystemDataset:
    """The files as one pyarrow dataset, each checked first by its footer (cheap: no rows read)."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    from pyarrow import fs

    schema = _schema(table)
    for path in paths:
        with _naming(path):
            with open(path, "rb") as fh:
                found = pq.read_schema(fh)
            if not found.equals(schema, check_metadata=False):
                raise InputError(str(path), f"its columns are not those of the {table} table this version "
                                            "of escalation writes")
    return ds.dataset([str(p.absolute()) for p in paths], schema=schema, format="parquet",
                      filesystem=fs.LocalFileSystem())


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """pyarrow's and the system's errors in reading one file as an InputError naming the file."""
    import pyarrow as pa

    try:
        yield
    except (OSError, pa.ArrowException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(str(path), f"cannot read this file of a done chunk: {reason}".splitlines()[0]) from None


def _unreadable(out: Path, files: dict[str, list[Path]], exc: Exception) -> InputError:
    """The file a failed scan could not read, found by reading each whole; else the folder."""
    import pyarrow.parquet as pq

    for paths in files.values():
        for path in paths:
            try:
                with _naming(path), open(path, "rb") as fh:
                    pq.read_table(fh)
            except InputError as found:
                return found
    return InputError(str(out), f"cannot read the batch's Parquet files: {exc}".splitlines()[0])


def remove_partial(out: Path) -> int:
    """Delete temporary files left by an interrupted write; how many there were."""
    n = 0
    for name in TABLES:
        folder = out / name
        for p in folder.glob(".part-*.tmp") if folder.is_dir() else []:
            p.unlink(missing_ok=True)
            n += 1
    return n


def write_manifest(out: Path, manifest: Manifest) -> None:
    write_atomically(out / MANIFEST, manifest.model_dump_json(indent=2) + "\n")


def read_manifest(out: Path) -> Manifest | None:
    """The batch's manifest, None if the folder holds none; a bad one is an input error."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValueError as exc:
        raise InputError(str(path), f"not a batch manifest this version can read: {exc}".splitlines()[0]) from None


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """One run at a time writes into a batch folder; a second is refused, not interleaved."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / _LOCK, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(str(out), "another batch is writing into this folder now") from None
        yield
    finally:
        os.close(fd)
