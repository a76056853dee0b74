"""Benchmark: `provision export --all-users` of N users against the graph-like profile.

    python -m bench.export [--users 10000] [--profile graph-like]

The sandbox runs in its own process (uvicorn on 127.0.0.1) with the profile's throttling,
latency, faults and replication lag; the export runs here through ``run.export.export_job``
(the paged user listing, then the planner's bulk reader, then the CSV). Printed: users/s,
beside the read rate the profile admits per user (its ``reads_per_second`` divided by the
read operations the export spent per user, listing and policy included), and their ratio
(target >= 0.9). The profile's burst (``burst_seconds`` of reads) is admitted at once, so
the ratio over a short run can exceed 1; the ratio against what the bucket admitted over
the same wall time (burst included) is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from provision.run.export import ExportOptions, export_job
from provision.run.jobs import parse_job
from provision.sandbox.limits import load_profile


def _serve(profile: str, users: int, urls: "mp.Queue[str]") -> None:
    from provision.sandbox.app import create_app
    from provision.sandbox.server import serve_forever

    app = create_app(profile=profile)
    tenant = app.sandbox.tenant
    for i in range(users):
        upn = f"user{i:06d}@contoso.com"
        tenant.create_user(upn)
        if i % 2 == 0:
            tenant.create_phone(upn, f"+1 206{i:07d}", "mobile")
        if i % 5 == 0:
            tenant.create_phone(upn, f"+44 20{i:08d}", "office")
    serve_forever(app, on_ready=urls.put)


def _stats(root: str) -> dict[str, Any]:
    return dict(httpx.get(f"{root}/_sandbox/stats", timeout=30).json())


def run(users: int, profile: str) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    urls: "mp.Queue[str]" = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(profile, users, urls), daemon=True)
    proc.start()
    try:
        root = urls.get(timeout=300)
        with tempfile.TemporaryDirectory() as tmp:
            job = parse_job({"name": "bench", "roster": {"path": "unused.csv"}, "target": {"url": f"{root}/v1.0"}}, base=Path(tmp))
            before = _stats(root)
            t0 = time.perf_counter()
            result = asyncio.run(export_job(job, ExportOptions(out=Path(tmp) / "export.csv", all_users=True)))
            wall = time.perf_counter() - t0
            after = _stats(root)
    finally:
        proc.terminate()
        proc.join(10)
    ops = after["operations"] - before["operations"]
    return {
        "users": result.users,
        "failed": len(result.failed),
        "wall": wall,
        "ops": ops,
        "throttled": after["throttled"] - before["throttled"],
        "faults": after["faults_injected"] - before["faults_injected"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--profile", default="graph-like")
    args = parser.parse_args()
    limits = load_profile(args.profile).throttle
    r = run(args.users, args.profile)
    ops_per_user = r["ops"] / args.users
    users_per_s = r["users"] / r["wall"]
    admitted = limits.reads_per_second / ops_per_user
    bucket = limits.reads_per_second * (limits.burst_seconds + r["wall"]) / ops_per_user / r["wall"]
    print(f"export --all-users of {args.users} users, profile {args.profile} (sandbox in its own process, loopback)")
    print(f"  users exported           {r['users']:.0f}  (failed {r['failed']:.0f}; {r['faults']:.0f} injected faults, {r['throttled']:.0f} throttled answers)")
    print(f"  wall                     {r['wall']:.1f} s   read operations {r['ops']:.0f} ({ops_per_user:.3f} per user)")
    print(f"  users/s                  {users_per_s:.0f}")
    print(f"  profile admits           {admitted:.0f} users/s  ({limits.reads_per_second:g} reads/s / {ops_per_user:.3f} ops per user)")
    print(f"  ratio                    {users_per_s / admitted:.2f}  (target >= 0.9)")
    print(f"  ratio to bucket, burst   {users_per_s / bucket:.2f}  (the {limits.burst_seconds:g} s burst counted in)")
    print(f"  load                     {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)")


if __name__ == "__main__":
    main()
