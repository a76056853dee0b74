"""Files that hold phone numbers: readable and writable by their owner only (0600).

Run directories, plan files, ``validate --out``, exports and the change feed hold full
numbers. Every writer of such a file opens it through ``open_private``, which creates it
0600 and, when it already existed with a wider mode, narrows it before writing a byte; so
the process's umask never decides who may read a roster. ``secure_tree`` does the same
afterwards for a run directory whose files another writer made (the report writers).
On Windows modes are not POSIX: the calls still work, and protect nothing.

This module sits at the top of the package, beside ``masking``, because stages that must
not import ``run`` (the planner's plan file) write such files too.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["DIR_MODE", "FILE_MODE", "open_private", "open_private_binary", "replaced_privately", "secure_tree",
           "write_private_json"]

FILE_MODE = 0o600
DIR_MODE = 0o700


def open_private(path: str | os.PathLike[str], *, append: bool = False, newline: str | None = None) -> IO[str]:
    """Open ``path`` for writing UTF-8 text, mode 0600: truncated, or ``append`` (``O_APPEND``)."""
    return os.fdopen(_private_fd(path, append), "a" if append else "w", encoding="utf-8", newline=newline)


def open_private_binary(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open ``path`` for writing bytes (truncated), mode 0600."""
    return os.fdopen(_private_fd(path, False), "wb")


@contextmanager
def replaced_privately(path: Path, *, newline: str | None = None) -> Iterator[IO[str]]:
    """Write ``path`` (0600) whole or not at all: into a hidden sibling, renamed over ``path``
    when the block ends without error, so a reader (a resume, a report) never sees half a file
    and a failure leaves the old one. The sibling's name is the process's and thread's own."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        with open_private(tmp, newline=newline) as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_private_json(path: Path, doc: Any) -> None:
    """``doc`` as indented UTF-8 JSON in ``path`` (0600), replaced whole (``replaced_privately``)."""
    with replaced_privately(path) as f:
        f.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def _private_fd(path: str | os.PathLike[str], append: bool) -> int:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        _narrow(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _narrow(fd: int) -> None:
    # An existing file keeps its mode through O_CREAT; a fresh one gets 0600 & ~umask.
    if hasattr(os, "fchmod") and stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
        os.fchmod(fd, FILE_MODE)


def secure_tree(directory: Path) -> None:
    """``directory`` 0700 and every regular file in it (not below, not through links) 0600."""
    if os.name == "nt":  # pragma: no cover (no POSIX modes)
        return
    os.chmod(directory, DIR_MODE)
    for entry in os.scandir(directory):
        if entry.is_file(follow_symlinks=False) and stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode) != FILE_MODE:
            try:
                os.chmod(entry.path, FILE_MODE)
            except FileNotFoundError:  # a temporary file renamed meanwhile
                continue
