"""Folders and files only their owner can read or write, whatever the process umask.

The store, the spool and the artifacts hold the code, outputs and models of everyone
whose cells are recorded: another account on the machine must not read them. Folders
cellops creates are 0700 and the files it writes 0600; folders that already existed
(``/tmp``, a shared data dir) are left as they are.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Any

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder; it and any missing parents are created 0700."""
    folder = Path(path)
    missing: list[Path] = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for item in reversed(missing):
        try:
            os.mkdir(item, FOLDER_MODE)
        except FileExistsError:
            continue  # another process made it meanwhile; it chose its mode
        # mkdir's mode passes through the umask; set it exactly.
        os.chmod(item, FOLDER_MODE)
    return folder


def make_private(path: str | os.PathLike[str]) -> None:
    """Tighten an existing file of ours to 0600 (one left by an older version, say)."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        os.chmod(path, FILE_MODE)


def private_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as an existing 0600 file (created empty if missing, its folder 0700)."""
    file = Path(path)
    private_dir(file.parent)
    os.close(os.open(file, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    make_private(file)
    return file


def open_private(path: str | os.PathLike[str], mode: str = "a", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for "a", "w" (or their binary forms), creating the file 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    with contextlib.suppress(PermissionError):
        os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, mode, **kwargs)


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` atomically (write a 0600 temp file, then rename)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open_private(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, target)
