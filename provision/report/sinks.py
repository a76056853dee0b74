"""Writers take either a path or an already open file; these open the path when needed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, TextIO

Dest = str | Path | IO[str] | IO[bytes]


@contextlib.contextmanager
def text_sink(dest: str | Path | TextIO | IO[str], *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text stream for ``dest``; a path is opened with ``newline=""`` and closed after."""
    if isinstance(dest, (str, Path)):
        with open(dest, "w", encoding=encoding, newline="") as fh:
            yield fh
    else:
        yield dest


@contextlib.contextmanager
def binary_sink(dest: str | Path | BinaryIO | IO[bytes]) -> Iterator[IO[bytes]]:
    if isinstance(dest, (str, Path)):
        with open(dest, "wb") as fh:
            yield fh
    else:
        yield dest
