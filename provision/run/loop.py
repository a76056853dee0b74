"""Running a coroutine to its end from synchronous code, wherever that code is called from.

The Python API (a notebook already runs an event loop) and a fleet worker's tenant run
(a thread of a Dask worker) both need it: with no loop running in this thread the
coroutine gets ``asyncio.run``; with one, a fresh thread with its own loop runs it. The
caller's context (its run's log scope, ``run.logs.run_scope``) goes along either way.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["run_to_end"]

_T = TypeVar("_T")


def run_to_end(coro: Coroutine[Any, Any, _T]) -> _T:
    """The coroutine's result, on a loop of its own: this thread's, or a fresh thread's."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="provision-loop") as pool:
        # A pool's thread doesn't inherit this context: carry it over.
        return pool.submit(contextvars.copy_context().run, asyncio.run, coro).result()
