"""Micro-benchmark of the run journal's write path (not a test; run by hand).

    .venv/bin/python -m bench.journal_writes [N]

Journals N changes (default 100,000) the way the executor does: mark in flight in groups
of 20 (one transaction each), then record the group's results (one transaction each), plus
one dispatch event per group. Prints the cost per change for planned-order groups and for
groups drawn at random across the plan, and for sync="full" on a smaller run.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from provision.executor.journal import (
    ChangeResult,
    ChangeStatus,
    EventKind,
    Journal,
    JournalChange,
)
from provision.model import ChangeKind, PhoneType

GROUP = 20


def _changes(n: int) -> list[JournalChange]:
    out = []
    for i in range(n):
        # Ids in an order unrelated to the plan's, like real UPNs in roster order.
        user = f"{(i // 2) * 7919 % 1_000_003:07d}.user@contoso.com"
        first = i % 2 == 0
        out.append(
            JournalChange(
                id=f"{user}#{1 if first else 2}", user=user, target=user,
                kind=ChangeKind.CREATE, phone_type=PhoneType.MOBILE if first else PhoneType.ALTERNATE_MOBILE,
                before=None, after=f"+1 425555{i % 10000:04d}",
                depends_on=None if first else f"{user}#1", rows=(i // 2 + 2,),
            )
        )
    return out


def run(n: int, *, shuffled: bool, sync: str = "normal") -> tuple[float, float, list[float]]:
    changes = _changes(n)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        journal = Journal.create(Path(d), run_meta={"job": "bench"}, changes=changes, sync=sync)  # type: ignore[arg-type]
        create_s = time.perf_counter() - t0
        ids = [c.id for c in changes]
        if shuffled:
            random.Random(1).shuffle(ids)
        calls: list[float] = []  # seconds per call: how long the event loop is held
        t0 = time.perf_counter()
        for start in range(0, n, GROUP):
            group = ids[start : start + GROUP]
            journal.record_event(EventKind.DISPATCH, detail={"changes": len(group)})
            c0 = time.perf_counter()
            journal.mark_in_flight(group)
            c1 = time.perf_counter()
            journal.record_results(
                ChangeResult(id=i, status=ChangeStatus.DONE, http_status=201,
                             request_id="5f1c2a9e-8d1b-4c3e-9a7f-0b6d2e4c1a35")
                for i in group
            )
            calls += (c1 - c0, time.perf_counter() - c1)
        write_s = time.perf_counter() - t0
        assert journal.counts().done == n
        journal.close()
    return create_s, write_s, sorted(calls)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for label, shuffled, sync, size in (
        ("planned-order groups", False, "normal", n),
        ("random groups", True, "normal", n),
        ("planned-order groups, sync=full", False, "full", min(n, 10_000)),
    ):
        create_s, write_s, calls = run(size, shuffled=shuffled, sync=sync)
        p50, p99, worst = (calls[int(q * (len(calls) - 1))] * 1e3 for q in (0.5, 0.99, 1.0))
        print(
            f"{label:32s} n={size:>7,}  create {create_s * 1e6 / size:5.1f} us/change  "
            f"mark+result+event {write_s * 1e6 / size:5.1f} us/change  "
            f"({write_s:5.2f} s, {len(calls):,} transactions; per call p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms, max {worst:.1f} ms)"
        )


if __name__ == "__main__":
    main()
