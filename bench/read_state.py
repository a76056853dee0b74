"""Benchmark: read the current state of N users from a loopback sandbox.

    python -m bench.read_state [--users 2000] [--throttled-rps 400] [--baseline-users 300]

The sandbox runs in a separate process (uvicorn on 127.0.0.1), so the CPU time measured
here (time.process_time of this process) is the client's alone: msgraph-sdk, kiota
middleware, httpx, our batch codec and the pacing controller. Three runs, same process:

1. ``unlimited`` profile: round trips per 20 users, operations/s, client CPU per operation;
2. a throttled profile (reads_per_second R, burst 1 s) with the real pacing controller:
   429 share of operations, achieved reads/s against R (``--latency-ms``, default 150);
3. baseline: the same reads one call at a time through msgraph-sdk's generated request
   builders and models (``GraphClient.list_phones``), 8 in flight: CPU per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from provision.graph.client import GraphClient
from provision.graph.clouds import url_target
from provision.graph.credentials import StaticTokenCredential
from provision.graph.pacing import Pacer
from provision.graph.state_reader import read_current_state
from provision.sandbox.auth import make_token
from provision.sandbox.limits import profile_toml


def _upns(n: int) -> list[str]:
    return [f"user{i:06d}@contoso.com" for i in range(n)]


def _serve(profile: str, users: int, urls: "mp.Queue[str]") -> None:
    from provision.sandbox.app import create_app
    from provision.sandbox.server import serve_forever

    app = create_app(profile=profile)
    tenant = app.sandbox.tenant
    for i, upn in enumerate(_upns(users)):
        tenant.create_user(upn)
        if i % 2 == 0:
            tenant.create_phone(upn, f"+1 206{i:07d}", "mobile")
        if i % 5 == 0:
            tenant.create_phone(upn, f"+44 20{i:08d}", "office")
    serve_forever(app, on_ready=urls.put)


class Sandbox:
    """A sandbox in its own process."""

    def __init__(self, profile: str, users: int) -> None:
        ctx = mp.get_context("spawn")
        self._urls: "mp.Queue[str]" = ctx.Queue()
        self._proc = ctx.Process(target=_serve, args=(profile, users, self._urls), daemon=True)

    def __enter__(self) -> str:
        self._proc.start()
        self.root = self._urls.get(timeout=120)
        return self.root

    def __exit__(self, *exc: Any) -> None:
        self._proc.terminate()
        self._proc.join(10)

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.root}/_sandbox/stats").json()


def _client(root: str, pacer: Pacer | None = None) -> GraphClient:
    return GraphClient(url_target(f"{root}/v1.0"), StaticTokenCredential(make_token()), pacer=pacer)


async def _read(root: str, users: int, pacer: Pacer | None) -> tuple[float, float, Any]:
    async with _client(root, pacer) as client:
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = await read_current_state(client, _upns(users), policy_needs_ids=False)
        return time.process_time() - cpu0, time.perf_counter() - t0, result


async def _baseline(root: str, users: int) -> tuple[float, float]:
    upns = _upns(users)
    async with _client(root, Pacer()) as client:
        sem = asyncio.Semaphore(8)

        async def one(upn: str) -> None:
            async with sem:
                await client.list_phones(upn)

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(u) for u in upns))
        return time.process_time() - cpu0, time.perf_counter() - t0


def run_one(profile: str, users: int) -> dict[str, float]:
    with (sb := Sandbox(profile, users)) as root:
        before = sb.stats()
        cpu, wall, (states, _, notes) = asyncio.run(_read(root, users, Pacer()))
        after = sb.stats()
    http = after["http_requests"] - before["http_requests"] - 1  # minus the SMS policy read
    ops = after["operations"] - before["operations"] - 1
    throttled_ops = after["throttled"] - before["throttled"]
    ok = sum(1 for u in states.values() if u.status.value == "ok")
    return {
        "users_ok": ok,
        "round_trips": http,
        "round_trips_per_20_users": http / (users / 20),
        "operations": ops,
        "ops_per_s": ops / wall,
        "users_per_s": users / wall,
        "share_429": throttled_ops / ops,
        "cpu_ms_per_op": 1000 * cpu / ops,
        "wall_s": wall,
        "retried": notes.retried,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--throttled-rps", type=float, default=400)
    parser.add_argument("--latency-ms", type=float, default=150, help="median read latency of the throttled sandbox")
    parser.add_argument("--baseline-users", type=int, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        throttled_profile = str(Path(tmp) / "throttled.toml")
        Path(throttled_profile).write_text(
            profile_toml("bench", throttle={"reads_per_second": args.throttled_rps, "burst_seconds": 1},
                         latency={"read_ms": args.latency_ms}),
            encoding="utf-8",
        )

        fast = run_one("unlimited", args.users)
        slow = run_one(throttled_profile, args.users)
        with Sandbox("unlimited", args.baseline_users) as root:
            b_cpu, b_wall = asyncio.run(_baseline(root, args.baseline_users))
        b_cpu_ms = 1000 * b_cpu / args.baseline_users

    print(f"read current state of {args.users} users from a loopback sandbox (separate process)")
    print("unlimited profile:")
    print(f"  users read ok            {fast['users_ok']:.0f} / {args.users}")
    print(f"  round trips              {fast['round_trips']:.0f}  ({fast['round_trips_per_20_users']:.2f} per 20 users; bound 1.00 + retries)")
    print(f"  operations/s             {fast['ops_per_s']:.0f}   ({fast['wall_s']:.2f} s wall)")
    print(f"  client CPU per operation {fast['cpu_ms_per_op']:.3f} ms  (process CPU / operations)")
    print(f"throttled profile (reads_per_second {args.throttled_rps:g}, burst 1 s, {args.latency_ms:g} ms latency), real pacing controller:")
    print(f"  users read ok            {slow['users_ok']:.0f} / {args.users}")
    print(f"  round trips              {slow['round_trips']:.0f}  ({slow['round_trips_per_20_users']:.2f} per 20 users; retried items {slow['retried']:.0f})")
    print(f"  429 share of operations  {100 * slow['share_429']:.2f} %  (bound 5 %)")
    print(f"  operations/s             {slow['ops_per_s']:.0f}  = {slow['ops_per_s'] / args.throttled_rps:.2f} x the limit ({slow['wall_s']:.2f} s wall, burst included)")
    print(f"  client CPU per operation {slow['cpu_ms_per_op']:.3f} ms")
    print(f"baseline: one call per user through msgraph-sdk's request builders and models ({args.baseline_users} users, 8 in flight):")
    print(f"  client CPU per operation {b_cpu_ms:.3f} ms  -> batched path uses {b_cpu_ms / fast['cpu_ms_per_op']:.1f}x less CPU per operation")
    print(f"  users/s                  {args.baseline_users / b_wall:.0f}  vs batched {fast['users_per_s']:.0f}")


if __name__ == "__main__":
    main()
