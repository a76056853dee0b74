"""Client CPU per operation: the executor versus a loop over msgraph-sdk's generated builders.

The sandbox runs in its own process (``unlimited`` profile, zero latency), so this
process's CPU time (``time.process_time``) is the job's alone. Two measurements in the
same run, on fresh users of the same tenant:

- executor: an onboarding applied by ``provision.executor.dispatch.execute`` ($batch of 20, pacing,
  journal); CPU / operations sent (batch items, read-backs included);
- SDK loop: the same creates, one request each, through
  ``sdk.users.by_user_id(u).authentication.phone_methods.post(PhoneAuthenticationMethod(...))``
  (the generated request builders and models, kiota middleware; RetryHandler off), 16 at
  a time; CPU / operations.

Targets: executor <= 0.2 ms per operation, and >= 10x less than the SDK loop. On a
shared machine one run's figure moves by 10-15%: compare two versions by alternating
their runs and taking medians (``PYTHONPATH=<other tree> python -m bench.apply_cpu``).

    python -m bench.apply_cpu [--users 6000] [--sdk-users 600] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from msgraph.generated.models.authentication_phone_type import AuthenticationPhoneType  # noqa: E402
from msgraph.generated.models.phone_authentication_method import (
    PhoneAuthenticationMethod,  # noqa: E402
)

from bench.apply_throughput import (  # noqa: E402
    apply_changes,
    graph_client,
    onboarding_changes,
    profile_text,
    sandbox_process,
    sandbox_stats,
)
from provision.executor.journal import JournalChange  # noqa: E402

TARGET_MS = 0.2
TARGET_RATIO = 10.0


async def sdk_loop(root: str, changes: list[JournalChange], concurrency: int = 16) -> tuple[int, float, float]:
    """The same creates through the SDK's generated builders and models; (ops, wall, cpu)."""
    async with graph_client(root) as client:
        sdk = client.sdk
        queue = list(changes)
        queue.reverse()

        async def worker() -> None:
            while queue:
                ch = queue.pop()
                body = PhoneAuthenticationMethod(
                    phone_number=ch.after, phone_type=AuthenticationPhoneType(ch.phone_type)
                )
                await sdk.users.by_user_id(ch.target).authentication.phone_methods.post(body)

        # Mobiles first, like the executor (an office phone has no ordering rule, but keep it fair).
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(changes), time.perf_counter() - wall0, time.process_time() - cpu0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--sdk-users", type=int, default=600)
    parser.add_argument("--profile", action="store_true", help="cProfile the executor run (top 25 by tottime)")
    args = parser.parse_args(argv)
    ours = onboarding_changes(0, args.users)
    theirs = onboarding_changes(args.users, args.sdk_users)
    with sandbox_process(profile_text(), args.users + args.sdk_users) as root:
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        measured = asyncio.run(apply_changes(root, ours))
        if profiler is not None:
            profiler.disable()
        sdk_ops, sdk_wall, sdk_cpu = asyncio.run(sdk_loop(root, theirs))
        stats = sandbox_stats(root)
    result = measured.result
    ops = result.write_operations + result.read_operations
    ours_ms = measured.cpu_s / ops * 1000
    sdk_ms = sdk_cpu / sdk_ops * 1000
    ratio = sdk_ms / ours_ms
    print("client CPU per operation (unlimited profile, zero latency, sandbox in its own process)")
    print(f"  executor: {ops} operations ({result.counts.done} changes done) in {measured.wall_s:.2f} s wall,"
          f" {measured.cpu_s:.2f} s CPU -> {ours_ms:.3f} ms/op ({ops / measured.wall_s:.0f} ops/s)")
    print(f"  SDK loop: {sdk_ops} operations in {sdk_wall:.2f} s wall, {sdk_cpu:.2f} s CPU -> {sdk_ms:.3f} ms/op")
    print(f"  ratio SDK / executor: {ratio:.1f}x")
    print(f"  sandbox: duplicate_writes={stats['duplicate_writes']} writes_succeeded={stats['writes_succeeded']}")
    ok = ours_ms <= TARGET_MS and ratio >= TARGET_RATIO
    print(f"targets: <= {TARGET_MS} ms/op and >= {TARGET_RATIO:g}x: {'ok' if ok else 'MISSED'}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
