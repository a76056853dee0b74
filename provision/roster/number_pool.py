"""Normalising a roster's phone cells in bulk, in worker processes when there are many.

libphonenumber is pure Python (about 25 µs a number); a million-row roster holds about
1.5 million phone cells, each different. A chunk's distinct cells therefore go, in pieces
of ``PIECE_CELLS``, to a process pool (one worker per core) while the caller carries on
reading; on 2 cores this reads 1M rows in ~0.5x the in-process time (bench.roster_read).
Cells and answers cross the process boundary column-wise, cheap to pickle (texts joined
into one string, ``_Wire``); the caller gets a list of Graph forms in the keys' order and a
dict of the keys with a problem or warning (``Answers``). The cells are distinct already,
so they go through ``normalise_distinct`` (no cache to fill). A failing pool falls back to
doing the work in-process, so the result never depends on the pool.

A spawned worker starts an interpreter and imports this module, ``provision.model`` and
phonenumbers: ~70 ms of CPU; a forked one ~6 ms, so workers are forked where that is
safe (``_start_method``).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import types
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from itertools import compress, count
from multiprocessing.context import BaseContext
from operator import not_
from typing import Callable, Iterator, NamedTuple, Sequence

try:
    import fcntl
except ImportError:  # not a Unix
    fcntl = None  # type: ignore[assignment]

from provision.model import PhoneType
from provision.roster.numbers import normalise_distinct

# (raw cell, region, phone type, cell was a spreadsheet number)
CellKey = tuple[str, str | None, PhoneType | None, bool]
# A cell's (problem, reason, warning), kept only for the few cells with a problem or a warning.
CellNote = tuple[str | None, str, str | None]


class Answers(NamedTuple):
    """Normalised cells, in the order of the keys asked about: ``graphs[i]`` is key ``i``'s
    Graph form (None: unusable); ``notes`` maps the index of each key with a problem or a
    warning to its note. Most cells have neither, so an answer is mostly one string."""

    graphs: list[str | None]
    notes: dict[int, CellNote]


# Results not necessarily ready yet: calling it waits for them.
PendingCells = Callable[[], Answers]


def default_workers() -> int:
    """Worker processes worth starting on this machine (0: stay in-process)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return min(cpus, 4) if cpus > 1 else 0


def normalise_cells(keys: Sequence[CellKey]) -> Answers:
    """Each cell's answer, in this process."""
    graphs, note_at, notes = _normalise(*_columns(keys)) if keys else ([], [], [])
    return Answers(graphs, dict(zip(note_at, notes)))


def normalise_now(keys: Sequence[CellKey]) -> PendingCells:
    """``normalise_cells`` done in this process now, handed over like a pool's results."""
    done = normalise_cells(keys)
    return lambda: done


class BatchNormaliser:
    """``submit(keys)`` returns a callable that yields the answers for those keys.

    With ``workers == 0`` the work happens on submit; otherwise a process pool (started
    on first use, forked or spawned: ``_start_method``) does it.
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

    @property
    def started(self) -> bool:
        return self._pool is not None

    def forks(self) -> bool:
        """Whether workers started now would be forked (cheaply): ``_start_method``."""
        return self.workers > 0 and _start_method().get_start_method() == "fork"

    def warm_up(self) -> None:
        """Start the worker processes now, in the background, so they are ready for ``submit``."""
        if self.workers <= 0:
            return
        try:
            self._started()
        except (OSError, RuntimeError, BrokenProcessPool):
            self.workers = 0

    def _started(self) -> ProcessPoolExecutor:
        """The pool, every worker process started (each does its imports meanwhile)."""
        if self._pool is None:
            pool = ProcessPoolExecutor(self.workers, mp_context=_start_method(), initializer=_worker_signals)
            _widen_pipes(pool)
            try:
                with _callers_main_hidden():
                    for _ in range(self.workers):  # a worker is started per task while none is idle
                        pool.submit(_ready)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            self._pool = pool
        return self._pool

    def submit(self, keys: Sequence[CellKey]) -> PendingCells:
        if self.workers <= 0 or not keys:
            return normalise_now(keys)
        try:
            pool = self._started()
            # Pieces smaller than a chunk keep every worker busy to the end of the file, and
            # as many per worker, of one size, so the last batch's pieces end together.
            count = -(-len(keys) // PIECE_CELLS)
            count += -count % self.workers
            size = -(-len(keys) // count)
            pieces = [keys[at : at + size] for at in range(0, len(keys), size)]
            futures: list[Future[_Packed]] = [pool.submit(_work, _to_wire(piece)) for piece in pieces]
        except (OSError, RuntimeError, BrokenProcessPool):
            self.workers = 0
            return self.submit(keys)
        return lambda: self._collect(pieces, futures)

    def _collect(self, pieces: list[Sequence[CellKey]], futures: list[Future[_Packed]]) -> Answers:
        graphs: list[str | None] = []
        note_at: list[int] = []
        notes: list[CellNote] = []
        for keys, future in zip(pieces, futures):
            try:
                answers = _unpacked(future.result())
            except (OSError, RuntimeError, BrokenProcessPool):
                self.workers = 0
                answers = _normalise(*_columns(keys))
            note_at += map(len(graphs).__add__, answers[1])
            notes += answers[2]
            graphs += answers[0]
        return Answers(graphs, dict(zip(note_at, notes)))


def _start_method() -> BaseContext:
    """How the workers start: forked where that is safe, else spawned.

    A spawned worker starts an interpreter and imports phonenumbers: ~70 ms of CPU each
    (measured: two workers 145-152 ms, forked 11-12 ms), ~4% of a 100,000-row workbook's
    read on 2 cores. A fork copies only the calling thread, so a lock another thread holds
    (the import system's, a library's) would stay held forever in the worker: fork only on
    Linux, from a process with one thread, counted by the kernel (a library's own threads,
    e.g. a BLAS pool, count too). Otherwise (a fleet reading rosters in threads, macOS,
    Windows) the workers are spawned."""
    if sys.platform == "linux" and _threads() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


# A piece's answers (~80 KB for 5,000 cells) are more than a pipe holds by default (64 KB):
# a worker writing them waited until the caller's result thread read them, and that thread
# waits for the GIL while the caller builds rows. Measured on bench.roster_read's 1M-row
# CSV, 4 reads each way: each worker spent ~0.3 s so blocked, and the cores idled 0.80-0.95
# core-seconds in all against 0.57-0.66 with pipes of this size (Linux's default ceiling
# for an unprivileged process, /proc/sys/fs/pipe-max-size).
_PIPE_BYTES = 1 << 20


def _widen_pipes(pool: ProcessPoolExecutor) -> None:
    """The pool's two pipes (cells out, answers back) made ``_PIPE_BYTES`` big where the
    system allows it (Linux); else, or if the pool's insides ever change, they stay as they
    are: only the waits differ."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    for queue in ("_call_queue", "_result_queue"):
        try:
            fcntl.fcntl(getattr(pool, queue)._reader.fileno(), set_size, _PIPE_BYTES)
        except (AttributeError, OSError, ValueError):
            pass


def _worker_signals() -> None:
    """A worker's signals as a spawned one has them, also when it was forked: Ctrl-C stops
    it (the caller then does the work itself), and it doesn't write to an event loop's
    wake-up socket it inherited."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _threads() -> int:
    """The process's threads as the kernel counts them (0: unknown)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@contextmanager
def _callers_main_hidden() -> Iterator[None]:
    """While worker processes start, ``__main__`` is a module of nothing.

    A spawned process first runs the caller's main script again (as ``__mp_main__``) so that
    what it defines can be unpickled there. The workers need nothing from it (their tasks
    are this module's functions), and a script calling ``provision.validate`` or
    ``provision.apply`` without an ``if __name__ == "__main__":`` guard (the README's
    example, copied into a file) would run again in every worker: read the roster again,
    even apply the job again, before the worker did any work. Hidden, the script runs once.
    Only the starts are covered: once every worker runs, no process is started again."""
    with _MAIN_SWAP:  # rosters read in several threads at once (a fleet's tenants) restore the real one
        modules = sys.modules
        main = modules.get("__main__")
        if main is None or (getattr(main, "__spec__", None) is None and getattr(main, "__file__", None) is None):
            yield  # an interactive session or a notebook: nothing would run again
            return
        modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            modules["__main__"] = main


_MAIN_SWAP = threading.Lock()


PIECE_CELLS = 5_000  # keys per task at most: ~0.1 s of work

# What crosses the process boundary, column-wise so pickling is a few flat lists: the
# cells (raw texts, regions, phone type values, number-cell flags) one way; the Graph
# forms and the few notes (position in the piece, note) the other. Texts go as one
# string joined on ``_SEP`` (a list of them only when a cell holds that character): a
# string pickles as one copy, a list of 5,000 as 5,000 objects to write and make again
# (measured: 0.11 us a cell both ways, against 0.04 joined and split). The Graph forms
# come back the same way, without the unusable cells' None (``_Packed``).
_SEP = "\x1e"  # ASCII's record separator: never in a Graph form, all but never in a cell
_Wire = tuple[str | list[str], list[str | None], list[str | None], list[bool]]
_Answers = tuple[list[str | None], list[int], list[CellNote]]  # Graph forms; the notes' positions, the notes
_Packed = tuple[str, list[int], list[int], list[CellNote]]  # Graph forms joined, where the Nones go, the notes


_TYPE_VALUE: dict[PhoneType | None, str | None] = {t: t.value for t in PhoneType}
_PHONE_TYPE: dict[str, PhoneType] = {t.value: t for t in PhoneType}


_Columns = tuple[list[str], list[str | None], list[str | None], list[bool]]  # what ``_normalise`` works on


def _columns(keys: Sequence[CellKey]) -> _Columns:
    raws, regions, types, numbers = zip(*keys)
    return list(raws), list(regions), list(map(_TYPE_VALUE.get, types)), list(numbers)


def _to_wire(keys: Sequence[CellKey]) -> _Wire:
    raws, regions, types, numbers = _columns(keys)
    joined = _SEP.join(raws)
    return (joined if joined.count(_SEP) == len(raws) - 1 else raws), regions, types, numbers


def _from_wire(wire: _Wire) -> _Columns:
    texts, regions, types, numbers = wire
    return (texts.split(_SEP) if isinstance(texts, str) else texts), regions, types, numbers


def _packed(answers: _Answers) -> _Packed:
    graphs, note_at, notes = answers
    return _SEP.join(filter(None, graphs)), list(compress(count(), map(not_, graphs))), note_at, notes


def _unpacked(packed: _Packed) -> _Answers:
    joined, nones, note_at, notes = packed
    usable = joined.split(_SEP) if joined else []
    if not nones:
        return usable, note_at, notes  # type: ignore[return-value]  # list is invariant
    graphs: list[str | None] = []
    taken = 0
    for at in nones:  # ascending: each None lands where it was, the usable ones between
        between = at - len(graphs)
        graphs += usable[taken : taken + between]
        taken += between
        graphs.append(None)
    graphs += usable[taken:]
    return graphs, note_at, notes


def _ready() -> None:
    """A worker's first task: nothing, once its imports are done."""


def _work(wire: _Wire) -> _Packed:
    return _packed(_normalise(*_from_wire(wire)))


def work_order(raws: Sequence[str]) -> list[int]:
    """The order a piece's cells are normalised in: by their texts.

    Cells in text order are ~13% faster than the same cells shuffled (measured on
    bench.roster_read's numbers in pieces of 5,000, fresh cells each time, one process
    or two at once: 15.6-16.5 against 18.2-18.8 us a cell): numbers with the same
    beginning take the same paths through libphonenumber's metadata and patterns, which
    then stay in the CPU's caches. The sort costs ~0.3 us a cell."""
    return sorted(range(len(raws)), key=raws.__getitem__)


def _normalise(raws: list[str], regions: list[str | None], types: list[str | None], numbers: list[bool]) -> _Answers:
    """The cells' answers, in their order (worked through in ``work_order``)."""
    graphs: list[str | None] = [None] * len(raws)
    note_at: list[int] = []
    notes: list[CellNote] = []
    for at in work_order(raws):
        type_value = types[at]
        r = normalise_distinct(raws[at], regions[at], _PHONE_TYPE[type_value] if type_value else None, from_number=numbers[at])
        graphs[at] = r.graph
        if r.problem or r.warning:
            note_at.append(at)
            notes.append((r.problem, r.reason, r.warning))
    return graphs, note_at, notes  # notes in work order: the caller looks them up by position
