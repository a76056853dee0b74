"""Normalising a roster's phone cells in bulk, in worker processes when there are many.

libphonenumber is pure Python (about 25 µs a number); a million-row roster holds about
1.5 million phone cells, each different. Batches of distinct cells therefore go to a
small process pool while the caller carries on reading; a failing pool falls back to
doing the work in-process, so the result never depends on the pool.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

from provision.model import PhoneType
from provision.roster.numbers import normalise

# (raw cell, region, phone type, cell was a spreadsheet number)
CellKey = tuple[str, str | None, PhoneType | None, bool]
# NormalisedPhone's fields as a plain tuple: what crosses the process boundary, cheaply.
CellResult = tuple[str | None, str | None, str, str | None]
# Results not necessarily ready yet: calling it waits for them.
PendingCells = Callable[[], dict[CellKey, CellResult]]


def default_workers() -> int:
    """Worker processes worth starting on this machine (0: stay in-process)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return min(cpus, 4) if cpus > 1 else 0


def normalise_cells(keys: Sequence[CellKey]) -> dict[CellKey, CellResult]:
    """(graph, problem, reason, warning) for each cell, in this process."""
    out: dict[CellKey, CellResult] = {}
    for key in keys:
        r = normalise(key[0], key[1], key[2], from_number=key[3])
        out[key] = (r.graph, r.problem, r.reason, r.warning)
    return out


def normalise_now(keys: Sequence[CellKey]) -> PendingCells:
    """``normalise_cells`` done in this process now, handed over like a pool's results."""
    done = normalise_cells(keys)
    return lambda: done


class BatchNormaliser:
    """``submit(keys)`` returns a callable that yields the results for those keys.

    With ``workers == 0`` the work happens on submit; otherwise a process pool (started
    on first use, spawn context so no lock or thread is inherited) does it.
    """

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "BatchNormaliser":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def submit(self, keys: Sequence[CellKey]) -> PendingCells:
        if self.workers <= 0 or not keys:
            return normalise_now(keys)
        try:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
            wire = [(raw, region, phone_type.value if phone_type else None, number) for raw, region, phone_type, number in keys]
            future: Future[list[CellResult]] = self._pool.submit(_work, wire)
        except (OSError, RuntimeError, BrokenProcessPool):
            self.workers = 0
            return self.submit(keys)
        return lambda: self._collect(keys, future)

    def _collect(self, keys: Sequence[CellKey], future: Future[list[CellResult]]) -> dict[CellKey, CellResult]:
        try:
            answers = future.result()
        except (OSError, RuntimeError, BrokenProcessPool):
            self.workers = 0
            return normalise_cells(keys)
        return dict(zip(keys, answers))


def _work(wire: list[tuple[str, str | None, str | None, bool]]) -> list[CellResult]:
    out: list[CellResult] = []
    for raw, region, type_value, number in wire:
        r = normalise(raw, region, PhoneType(type_value) if type_value else None, from_number=number)
        out.append((r.graph, r.problem, r.reason, r.warning))
    return out
