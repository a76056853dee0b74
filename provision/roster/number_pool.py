"""Normalising a roster's phone cells in bulk, in worker processes when there are many.

libphonenumber is pure Python (about 25 µs a number); a million-row roster holds about
1.5 million phone cells, each different. A chunk's distinct cells therefore go, in pieces
of ``_PIECE``, to a process pool (one worker per core) while the caller carries on
reading; on 2 cores this reads 1M rows in ~0.5x the in-process time (bench.roster_read).
Cells and answers cross the process boundary as flat lists, cheap to pickle. The cells
are distinct already, so they go through ``normalise_distinct`` (no cache to fill). A
failing pool falls back to doing the work in-process, so the result never depends on the
pool.

Worker start-up was measured (``python -X importtime``): a worker imports this module,
``provision.model`` and phonenumbers in ~45 ms and loads its regions' metadata in ~20 ms,
~80 ms with the interpreter, so a forkserver with phonenumbers preloaded would save ~60 ms
of CPU per read and leave a server process behind: not worth it.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

from provision.model import PhoneType
from provision.roster.numbers import normalise_distinct

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
        r = normalise_distinct(key[0], key[1], key[2], from_number=key[3])
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

    def warm_up(self) -> None:
        """Start the worker processes now, in the background, so they are ready for ``submit``."""
        if self.workers <= 0:
            return
        try:
            pool = self._started()
            for _ in range(self.workers):
                pool.submit(_ready)
        except (OSError, RuntimeError, BrokenProcessPool):
            self.workers = 0

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def submit(self, keys: Sequence[CellKey]) -> PendingCells:
        if self.workers <= 0 or not keys:
            return normalise_now(keys)
        try:
            pool = self._started()
            # Pieces smaller than a chunk keep every worker busy to the end of the file.
            pieces = [keys[at : at + _PIECE] for at in range(0, len(keys), _PIECE)]
            futures: list[Future[_Answers]] = [pool.submit(_work, _to_wire(piece)) for piece in pieces]
        except (OSError, RuntimeError, BrokenProcessPool):
            self.workers = 0
            return self.submit(keys)
        return lambda: self._collect(pieces, futures)

    def _collect(self, pieces: list[Sequence[CellKey]], futures: list[Future[_Answers]]) -> dict[CellKey, CellResult]:
        out: dict[CellKey, CellResult] = {}
        for keys, future in zip(pieces, futures):
            try:
                graphs, codes, outcomes = future.result()
            except (OSError, RuntimeError, BrokenProcessPool):
                self.workers = 0
                out.update(normalise_cells(keys))
                continue
            out.update({key: (graph, *outcomes[code]) for key, graph, code in zip(keys, graphs, codes)})
        return out


_PIECE = 5_000  # keys per task: ~0.15 s of work, so the last tasks end together

# What crosses the process boundary, column-wise so pickling is a few flat lists: the
# cells (raw texts, regions, phone type values, number-cell flags) one way; the Graph
# forms and, per cell, an index into the distinct (problem, reason, warning) the other.
_Wire = tuple[list[str], list[str | None], list[str | None], list[bool]]
_Answers = tuple[list[str | None], list[int], list[tuple[str | None, str, str | None]]]


_TYPE_VALUE: dict[PhoneType | None, str | None] = {t: t.value for t in PhoneType}


def _to_wire(keys: Sequence[CellKey]) -> _Wire:
    raws, regions, types, numbers = zip(*keys)
    return list(raws), list(regions), list(map(_TYPE_VALUE.get, types)), list(numbers)


def _ready() -> None:
    """A worker's first task: nothing, once its imports are done."""


def _work(wire: _Wire) -> _Answers:
    raws, regions, types, numbers = wire
    graphs: list[str | None] = []
    codes: list[int] = []
    index: dict[tuple[str | None, str, str | None], int] = {}
    phone_types = {t.value: t for t in PhoneType}
    for raw, region, type_value, number in zip(raws, regions, types, numbers):
        r = normalise_distinct(raw, region, phone_types[type_value] if type_value else None, from_number=number)
        graphs.append(r.graph)
        codes.append(index.setdefault((r.problem, r.reason, r.warning), len(index)))
    return graphs, codes, list(index)
