"""Bench: plan 1,000,000 roster users against their current phones (the pure planner only).

Generates desired and current state in memory (not timed): a nightly-reconcile mix where
most users already match and the rest need creates, updates, type moves, deletes, SMS
sign-in changes, or can't be planned (404, read failed, masked). Then times ``plan()``,
and separately the safety check and summary the CLI would run on the result.

    python -m bench.plan_1m [--users N] [--mode authoritative|additive|fill-empty] [--seed S]

Limit (issue 4): planning 1,000,000 users takes at most 20 s on the project's 2-core
machine. The machine is shared: the load average is printed next to the figures.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import time
from collections import Counter

from provision.model import (
    CurrentPhone,
    CurrentUser,
    DesiredUser,
    PhoneType,
    PlanMode,
    ReadStatus,
    SmsIntent,
    SmsPolicy,
    SmsSignInState,
)
from provision.planner import PlanPolicy, plan, summarize

LIMIT_S = 20.0
M, A, O = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE

# (share, name): what each synthetic user looks like.
MIX = (
    (0.55, "same"),  # roster matches Graph exactly
    (0.08, "same_old_format"),  # Graph holds "+12065550100", roster "+1 2065550100"
    (0.12, "create_mobile"),
    (0.08, "update_mobile"),
    (0.04, "type_move"),  # office number becomes the mobile
    (0.04, "delete_alt"),  # roster blanks the alternateMobile
    (0.03, "sms_row_override"),
    (0.02, "not_found"),
    (0.02, "read_failed"),
    (0.02, "masked"),
)


def _num(n: int) -> str:
    return f"+1 {2000000000 + n}"


def generate(n_users: int, seed: int) -> tuple[dict[str, DesiredUser], dict[str, CurrentUser]]:
    rng = random.Random(seed)
    names = [name for _, name in MIX]
    weights = [share for share, _ in MIX]
    kinds = rng.choices(names, weights, k=n_users)
    ready, not_enabled = SmsSignInState.READY, SmsSignInState.NOT_ENABLED
    unsupported = SmsSignInState.NOT_SUPPORTED
    desired: dict[str, DesiredUser] = {}
    current: dict[str, CurrentUser] = {}
    for i, kind in enumerate(kinds):
        key = f"user{i}@contoso.com"
        oid = f"00000000-0000-4000-8000-{i:012d}"
        mob, alt, off = _num(3 * i), _num(3 * i + 1), _num(3 * i + 2)
        state = ready if i % 3 else not_enabled
        want: dict[PhoneType, str | None] = {M: mob}
        have: dict[PhoneType, CurrentPhone] = {M: CurrentPhone(M, mob, state)}
        status, masked, sms = ReadStatus.OK, False, None
        if kind == "same_old_format":
            have[M] = CurrentPhone(M, mob.replace(" ", ""), state)
        elif kind == "create_mobile":
            have = {}
        elif kind == "update_mobile":
            have[M] = CurrentPhone(M, _num(3 * i + 3_000_000), state)
        elif kind == "type_move":
            have = {O: CurrentPhone(O, mob, unsupported)}
            want[O] = None
        elif kind == "delete_alt":
            have[A] = CurrentPhone(A, alt, unsupported)
            want[A] = None
        elif kind == "sms_row_override":
            sms = False
        elif kind == "not_found":
            status, have = ReadStatus.NOT_FOUND, {}
        elif kind == "read_failed":
            status, have = ReadStatus.FAILED, {}
        elif kind == "masked":
            have = {M: CurrentPhone(M, "+1 *******" + mob[-3:], state)}
            masked = True
        if i % 4 == 0:  # a quarter of the roster also manages the office phone
            want[O] = off if kind != "type_move" else None
            if i % 8 == 0 and kind not in ("type_move", "not_found", "read_failed", "masked"):
                have[O] = CurrentPhone(O, off, unsupported)
        desired[key] = DesiredUser(key, key, want, sms, (i + 2,))
        current[key] = CurrentUser(key, status, oid if status is ReadStatus.OK else None, have, masked)
    return desired, current


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--mode", choices=[m.value for m in PlanMode], default=PlanMode.AUTHORITATIVE.value)
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    desired, current = generate(args.users, args.seed)
    gen_s = time.perf_counter() - t0
    sms_policy = SmsPolicy(readable=True, enabled=True, include_all_users=True)
    policy = PlanPolicy(args.mode, SmsIntent.ENABLE, max_changes=None, max_delete_percent=5.0, max_update_percent=10.0)

    gc.collect()
    t0 = time.perf_counter()
    result = plan(desired, current, sms_policy, policy)
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = summarize(result)
    summary_s = time.perf_counter() - t0

    kinds = Counter({str(k): v for k, v in summary.by_kind.items()})
    outcomes = {str(k): v for k, v in summary.by_outcome.items()}
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"users               {args.users:,} (mode {args.mode}, sms enable, policy allows all)")
    print(f"generation          {gen_s:.2f} s (not counted)")
    print(f"plan()              {plan_s:.2f} s  = {args.users / plan_s:,.0f} users/s")
    print(f"summarize()         {summary_s:.2f} s")
    print(f"changes             {summary.total_changes:,}  {dict(kinds)}")
    print(f"outcomes            {outcomes}")
    print(f"safety              {'ok' if result.safety.ok else result.safety.message}")
    print(f"peak RSS            {rss_mb:,.0f} MB")
    print(f"load average        {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    scaled = plan_s * 1_000_000 / args.users
    print(f"ratio to limit      {scaled / LIMIT_S:.2f} of {LIMIT_S:.0f} s for 1,000,000 users (<= 1.00 passes)")
    return 0 if scaled <= LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
