"""Achieved write rate against a sandbox that admits R writes/s (R = 20, 100, 400).

Each R gets a fresh sandbox in its own process (``provision sandbox serve`` on loopback)
with writes limited to R operations/s (1 s of burst), 200 ms median write latency (jitter
0.2, so most calls take 150-300 ms) and no faults. The job (this process) applies an
onboarding (a mobile per user, an office phone for every second user) with the executor
and its default settings: nothing changes between the three runs but the server.

Figures per R, from the sandbox's own counters: successful writes/s over the whole apply
(writes_succeeded / wall time) as a fraction of R (target >= 0.95), and 429 answers as a
share of write operations (target <= 5%).

    python -m bench.apply_throughput            # 60 s per R
    python -m bench.apply_throughput --quick    # 20 s per R
    python -m bench.apply_throughput --rates "" --windows 450/15   # a sliding-window quota

This module also holds the helpers the other apply benches share (sandbox process,
snapshot, changes, one executor run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from provision.executor.dispatch import ExecutionResult, ExecutorSettings, execute  # noqa: E402
from provision.executor.journal import Journal, JournalChange  # noqa: E402
from provision.graph.client import GraphClient  # noqa: E402
from provision.graph.clouds import url_target  # noqa: E402
from provision.graph.credentials import StaticTokenCredential  # noqa: E402
from provision.model import ChangeKind, PhoneType  # noqa: E402
from provision.sandbox.auth import make_token  # noqa: E402
from provision.sandbox.limits import profile_toml  # noqa: E402

TENANT_ID = "00000000-0000-0000-0000-0000000000aa"


# -- shared helpers ---------------------------------------------------------------------
def user_id(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def write_snapshot(path: Path, users: int) -> None:
    """A tenant of ``users`` users without phones (ids ``user_id(i)``)."""
    snapshot = {
        "format": "provision-sandbox-tenant",
        "version": 1,
        "tenant_id": TENANT_ID,
        "users": [
            {
                "id": user_id(i), "upn": f"user{i}@contoso.com", "displayName": f"User {i}",
                "accountEnabled": True, "deleted": False, "default_method": None, "phones": [],
            }
            for i in range(users)
        ],
    }
    path.write_text(json.dumps(snapshot))


def profile_text(*, writes_per_second: float = 0, read_ms: float = 0, write_ms: float = 0, jitter: float = 0,
                 window_seconds: float | None = None) -> str:
    """A profile limiting writes to ``writes_per_second``: a token bucket of 1 s, or with
    ``window_seconds`` a sliding window of ``writes_per_second * window_seconds`` writes."""
    throttle: dict[str, Any] = {"writes_per_second": writes_per_second, "burst_seconds": 1}
    if window_seconds is not None:
        throttle = {"writes_per_second": writes_per_second, "algorithm": "window", "window_seconds": window_seconds}
    return profile_toml(
        "bench",
        throttle=throttle,
        latency={"read_ms": read_ms, "write_ms": write_ms, "jitter": jitter},
    )


@contextmanager
def sandbox_process(profile: str, users: int) -> Iterator[str]:
    """A sandbox in its own process, loaded with ``users`` users; yields its root URL."""
    with tempfile.TemporaryDirectory() as tmp:
        snap = Path(tmp) / "tenant.json"
        write_snapshot(snap, users)
        prof = Path(tmp) / "profile.toml"
        prof.write_text(profile)
        process = subprocess.Popen(
            [sys.executable, "-m", "provision", "sandbox", "serve", "--port", "0", "--snapshot", str(snap),
             "--profile", str(prof)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if not line.endswith("/v1.0"):
                raise RuntimeError(f"sandbox did not start: {line!r}")
            yield line.removesuffix("/v1.0")
        finally:
            process.terminate()
            process.wait(10)


def sandbox_stats(root: str) -> dict[str, Any]:
    return httpx.get(f"{root}/_sandbox/stats").json()  # type: ignore[no-any-return]


def onboarding_changes(first: int, users: int) -> list[JournalChange]:
    """A mobile for each user, then an office phone for every second user."""
    changes: list[JournalChange] = []
    for i in range(first, first + users):
        uid = user_id(i)
        changes.append(
            JournalChange(f"{uid}#1", uid, uid, ChangeKind.CREATE, PhoneType.MOBILE, None, f"+1 206{i:07d}", None)
        )
        if i % 2 == 0:
            changes.append(
                JournalChange(
                    f"{uid}#2", uid, uid, ChangeKind.CREATE, PhoneType.OFFICE, None, f"+1 425{i:07d}", f"{uid}#1"
                )
            )
    return changes


def graph_client(root: str) -> GraphClient:
    return GraphClient(url_target(f"{root}/v1.0"), StaticTokenCredential(make_token()))


@dataclass(frozen=True)
class Measured:
    result: ExecutionResult
    wall_s: float
    cpu_s: float
    timeline: tuple[tuple[float, int], ...] = ()  # (seconds since start, changes done)

    def steady_rate(self, low: float = 0.25, high: float = 0.95) -> float:
        """Changes done per second between ``low`` and ``high`` of the total: the rate the
        run sustained once past its start-up (limit discovery) and before its tail."""
        total = self.result.counts.total
        points = self.timeline
        start = next(((t, d) for t, d in points if d >= low * total), None)
        end = next(((t, d) for t, d in points if d >= high * total), None)
        if start is None or end is None or end[0] <= start[0]:
            return float("nan")
        return (end[1] - start[1]) / (end[0] - start[0])


async def apply_changes(root: str, changes: list[JournalChange], settings: ExecutorSettings | None = None) -> Measured:
    """Create a journal for ``changes`` and execute it; wall and process CPU time of the apply."""
    with tempfile.TemporaryDirectory() as run_dir:
        journal = Journal.create(run_dir, run_meta={"job": "bench"}, changes=changes)
        async with graph_client(root) as client:
            timeline: list[tuple[float, int]] = []
            wall0, cpu0 = time.perf_counter(), time.process_time()
            result = await execute(
                client, journal, settings=settings,
                progress=lambda e: timeline.append((time.perf_counter() - wall0, e.done)),
            )
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        journal.close()
    return Measured(result, wall, cpu, tuple(timeline))


def write_operations(stats: dict[str, Any]) -> int:
    ops = stats["by_operation"]
    return sum(ops.get(k, 0) for k in ("createPhoneMethod", "updatePhoneMethod", "deletePhoneMethod",
                                          "enableSmsSignIn", "disableSmsSignIn"))


# -- the throughput bench -----------------------------------------------------------------
def run_one(rate: float, seconds: float, window_seconds: float | None = None) -> dict[str, float]:
    n_changes = int(max(10 * rate, seconds * rate))
    users = int(n_changes / 1.5) + 1
    changes = onboarding_changes(0, users)
    profile = profile_text(writes_per_second=rate, read_ms=150, write_ms=200, jitter=0.2, window_seconds=window_seconds)
    with sandbox_process(profile, users) as root:
        measured = asyncio.run(apply_changes(root, changes))
        stats = sandbox_stats(root)
    writes = write_operations(stats)
    succeeded = stats["writes_succeeded"]
    return {
        "R": rate,
        "changes": len(changes),
        "wall_s": measured.wall_s,
        "writes_per_s": succeeded / measured.wall_s,
        "ratio": succeeded / measured.wall_s / rate,
        "steady_ratio": measured.steady_rate() / rate,
        "throttled": stats["throttled"],
        "write_ops": writes,
        "throttled_share": stats["throttled"] / writes,
        "done": measured.result.counts.done,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s per R instead of 60 s")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rates", default="20,100,400")
    parser.add_argument("--windows", default="", metavar="N/S,...",
                        help="also sliding-window limits of N writes per S seconds (R = N/S), each with "
                             "--window-count windows of work; e.g. 450/15")
    parser.add_argument("--window-count", type=float, default=4.0)
    args = parser.parse_args(argv)
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    ok = True
    print(f"apply throughput: write limit R, latency 200 ms (jitter 0.2), ~{seconds:g} s of work per R")
    print(f"{'R':>6} {'changes':>8} {'wall s':>8} {'writes/s':>9} {'ratio':>6} {'steady':>6} {'429s':>6} {'429 share':>9}")
    cases: list[tuple[float, float, float | None]] = [(float(r), seconds, None) for r in args.rates.split(",") if r]
    for window in (w for w in args.windows.split(",") if w):
        capacity, length = (float(x) for x in window.split("/"))
        cases.append((capacity / length, args.window_count * length, length))
    for rate, work_s, window_s in cases:
        row = run_one(rate, work_s, window_s)
        if window_s is not None:
            print(f"sliding window {rate * window_s:g} writes / {window_s:g} s (R = {rate:g}/s, "
                  f"{args.window_count:g} windows of work):")
        good = row["ratio"] >= 0.95 and row["throttled_share"] <= 0.05 and row["done"] == row["changes"]
        ok = ok and good
        print(
            f"{rate:>6g} {row['changes']:>8} {row['wall_s']:>8.1f} {row['writes_per_s']:>9.1f} {row['ratio']:>6.3f} {row['steady_ratio']:>6.3f}"
            f" {row['throttled']:>6} {row['throttled_share']:>9.2%}  {'ok' if good else 'MISSED'}"
        )
    print("ratio: successful writes/s over the whole apply / R (the target: >= 0.95); steady: the same")
    print("between 25% and 95% of the changes done (past limit discovery, before the tail). 429 share <= 5%.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
