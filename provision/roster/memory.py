"""Handing freed memory back to the operating system after the big transient steps.

glibc keeps freed blocks in its arenas for reuse, one arena per thread that allocated:
pyarrow's parser threads and the per-batch Python lists of a million-row file leave
~150 MB (measured) counted in the process's RSS long after they are freed. ``malloc_trim``
returns it. A no-op where there is no glibc (macOS, Windows, musl without the call).
"""

from __future__ import annotations

import ctypes
import sys
from functools import lru_cache
from typing import Any

__all__ = ["give_back_freed_memory"]


@lru_cache(maxsize=1)
def _trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def give_back_freed_memory() -> None:
    trim = _trim()
    if trim is not None:
        trim(0)
