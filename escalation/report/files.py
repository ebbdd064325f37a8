"""Writing outputs: whole files or nothing, with ordinary modes, to paths checked first.

Three promises hold here for every command:
- a file is written whole or not at all (a temporary file renamed into place);
- a command that writes several files renders them all into a private folder next to the target
  first, and moves them into place only when every one exists and every target can take it;
- nothing is written over an input of the run, or over anything that is not a regular file
  (`--output /dev/null` as root would otherwise replace the device with a file).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from escalation.load.errors import InputError
from escalation.load.shipped import resolve


def write_atomically(path: Path, text: str) -> None:
    """Write the whole text or nothing: a temporary file renamed into place."""
    _refuse_special(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(str(path), f"cannot write here: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(str(path), f"cannot write here: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def umask() -> int:
    """The process umask, so that written files get the usual modes, not mkstemp's 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _refuse_special(path: Path) -> None:
    """Only a regular file (or nothing) may be replaced: not a device, FIFO, socket or folder."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(str(path), f"cannot write here: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InputError(str(path), "is a folder; nothing was written")
    if not stat.S_ISREG(mode):
        raise InputError(str(path), "is not a regular file (a device, FIFO or socket); nothing was written")


def _refuse_inputs(path: Path, inputs: Iterable[Path]) -> None:
    """An input is compared as read: a shipped file's repository path (`shipped.resolve`) as the
    shipped file. An output named as such an input is refused too, though it would be a new file:
    it would be read in place of the shipped one from then on, and inside the repository the same
    command is refused."""
    for given in inputs:
        real = resolve(given)
        try:
            same = path.exists() and real.exists() and os.path.samefile(path, real)
        except OSError:
            same = False
        if same or (real != Path(given) and Path(path) == Path(given)):
            raise InputError(str(path), f"is an input of this run ({given}); refusing to write over it")


def check_output(path: Path, folder: bool = False, inputs: Iterable[Path] = ()) -> None:
    """Refuse an output path that cannot be written, or that is one of the run's `inputs`,
    before any work is done."""
    if not folder:
        _refuse_special(path)
        _refuse_inputs(path, inputs)
    if folder:
        if path.exists() and not path.is_dir():
            raise InputError(str(path), "is a file; an output folder is needed")
        parent = path
    else:
        if path.is_dir():
            raise InputError(str(path), "is a folder; an output file is needed")
        parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise InputError(str(path), f"cannot write under {parent}")


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A private folder next to `out` to render several files into; removed if anything fails.

    Its name is unique (several commands may write into one folder at once), and it lives on the
    same file system as `out`, so that publishing is a rename.
    """
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as exc:
        raise InputError(str(out), f"cannot create the output folder: {exc.strerror or exc}") from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def publish(stage: Path, out: Path, names: list[str]) -> list[Path]:
    """Move the rendered files into `out` once every target is known to take them.

    A new `out` is the staged folder renamed whole (or, if another command created it meanwhile,
    filled like an existing one). Into an existing one, every target is checked
    before the first file moves, so a folder or device in the way fails the command with nothing
    replaced; each file then moves with an atomic rename, and the folder's other files stay.
    """
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "is a file; an output folder is needed")
    for name in names:
        _refuse_special(out / name)
        os.chmod(stage / name, 0o666 & ~umask())
    try:
        source = stage
        if not out.exists():
            source = Path(tempfile.mkdtemp(dir=stage, prefix="publish."))
            for name in names:
                os.rename(stage / name, source / name)
            os.chmod(source, 0o777 & ~umask())
            if _renamed_whole(source, out):
                return [out / n for n in names]
            for name in names:  # made by another command meanwhile: checked as an existing one was
                _refuse_special(out / name)
        for name in names:
            os.replace(source / name, out / name)
    except OSError as exc:
        raise InputError(str(out), f"cannot write here: {exc.strerror or exc}") from None
    return [out / n for n in names]


def _renamed_whole(folder: Path, out: Path) -> bool:
    """Rename `folder` to `out`; False if another writer created `out` first (the files then go
    in one by one, as into any existing folder)."""
    try:
        os.rename(folder, out)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and out.is_dir():
            return False
        raise
    return True


def replace_folder(new: Path, out: Path) -> None:
    """Put the folder `new`, rendered inside a `staged` folder next to `out`, in place of `out`
    whole: unlike `publish`, nothing of an earlier `out` stays beside the new files. The earlier
    folder is moved into the stage first (two renames on one file system, no copy), and goes when
    the stage does."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(str(out), "is not a folder; move it away, and nothing else is replaced")
    try:
        if out.exists():
            os.rename(out, Path(tempfile.mkdtemp(dir=new.parent, prefix="replaced.")) / out.name)
        os.rename(new, out)
    except OSError as exc:
        raise InputError(str(out), f"cannot write here: {exc.strerror or exc}") from None
