"""Users per second at 150 ms latency, unthrottled: the executor versus a sequential loop.

The sandbox runs in its own process (no throttling, 150 ms per operation, no jitter, no
faults). In the same run, on fresh users of the same tenant:

- executor: an onboarding (a mobile per user, then an office phone for every second
  user) applied by ``provision.executor.dispatch.execute`` with its default settings;
- sequential: what peers' scripts do, one call at a time through msgraph-sdk
  (``sdk.users.by_user_id(u).authentication.phone_methods.post(...)``, awaited one by one),
  on a smaller sample of users.

Target: executor users/s >= 50x the sequential loop's.

    python -m bench.apply_vs_sequential [--users 4000] [--sequential-users 30]
"""

from __future__ import annotations

import argparse
import asyncio
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

TARGET_RATIO = 50.0


async def sequential(root: str, changes: list[JournalChange]) -> float:
    """Seconds to apply ``changes`` one awaited call at a time."""
    async with graph_client(root) as client:
        sdk = client.sdk
        started = time.perf_counter()
        for ch in changes:
            body = PhoneAuthenticationMethod(phone_number=ch.after, phone_type=AuthenticationPhoneType(ch.phone_type))
            await sdk.users.by_user_id(ch.target).authentication.phone_methods.post(body)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--sequential-users", type=int, default=30)
    args = parser.parse_args(argv)
    ours = onboarding_changes(0, args.users)
    theirs = onboarding_changes(args.users, args.sequential_users)
    profile = profile_text(read_ms=150, write_ms=150)
    with sandbox_process(profile, args.users + args.sequential_users) as root:
        seq_s = asyncio.run(sequential(root, theirs))
        measured = asyncio.run(apply_changes(root, ours))
        stats = sandbox_stats(root)
    ours_ups = args.users / measured.wall_s
    seq_ups = args.sequential_users / seq_s
    ratio = ours_ups / seq_ups
    print("users/s at 150 ms latency, unthrottled (sandbox in its own process)")
    print(f"  executor:   {args.users} users ({len(ours)} changes, {measured.result.counts.done} done)"
          f" in {measured.wall_s:.2f} s -> {ours_ups:.1f} users/s")
    print(f"  sequential: {args.sequential_users} users ({len(theirs)} calls) in {seq_s:.2f} s -> {seq_ups:.2f} users/s")
    print(f"  ratio: {ratio:.1f}x  (sandbox duplicate_writes={stats['duplicate_writes']})")
    ok = ratio >= TARGET_RATIO and measured.result.counts.done == len(ours)
    print(f"target: >= {TARGET_RATIO:g}x: {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
