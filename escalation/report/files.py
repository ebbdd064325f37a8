"""Writing outputs: whole files or nothing, with ordinary modes, to paths checked first."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from escalation.load.errors import InputError


def write_atomically(path: Path, text: str) -> None:
    """Write the whole text or nothing: a temporary file renamed into place."""
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


def check_output(path: Path, folder: bool = False) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
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
