"""A 1,000-user onboarding through faults, throttling and replication lag, over loopback HTTP.

The sandbox (uvicorn on 127.0.0.1, in a thread) answers 5% of operations 503, 1% 504
(applied anyway half the time), resets 2% of connections (before or after doing the work),
throttles writes, and hides a new mobile from reads for 500 ms. The run must still end with
the tenant exactly as planned, each write applied once, no "already exists" refusals, and
every change journaled.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import executor_scenario as sc
import pytest
from support.sandbox import loopback_client

from provision.executor.dispatch import (
    ExecutorSettings,
    ProgressEvent,
    RunStatus,
    execute,
    journal_changes,
)
from provision.executor.journal import ChangeStatus, Journal
from provision.sandbox.app import create_app
from provision.sandbox.limits import parse_profile
from provision.sandbox.server import serve_in_thread

FAULTS = {
    "throttle": {"writes_per_second": 250, "burst_seconds": 1},
    "latency": {"read_ms": 2, "write_ms": 2, "jitter": 0.5},
    "faults": {"http_503": 0.05, "http_504": 0.01, "connection_reset": 0.02},
    "consistency": {"replication_lag_ms": 500},
}


@pytest.mark.slow
def test_thousand_users_through_faults_end_exactly_as_planned(tmp_path: Path) -> None:
    n = 1000
    app = create_app(profile=parse_profile(FAULTS, "faults"), seed=11)
    tenant = app.sandbox.tenant
    sc.add_users(tenant, n)
    desired = sc.onboarding_roster(n, duplicates=5)
    before = tenant.to_snapshot()
    plan = sc.make_plan(tenant, desired)
    events: list[ProgressEvent] = []

    async def run(root: str) -> tuple[Journal, object]:
        journal = Journal.create(tmp_path, run_meta={"job": "faults"}, changes=journal_changes(plan.changes))
        client = loopback_client(root)
        async with client:
            settings = ExecutorSettings(settle_s=0.75, alternate_settle_s=0.75, verify=True)
            result = await execute(client, journal, settings=settings, progress=events.append)
        return journal, result

    with serve_in_thread(app) as root:
        journal, result = asyncio.run(run(root))

    assert result.status is RunStatus.COMPLETED, result.message  # type: ignore[attr-defined]
    stats = app.sandbox.stats.to_json()
    # Faults really happened...
    assert stats["faults_injected"] > 50 and stats["throttled"] > 0 and stats["by_status"].get("504")
    # ...and still: the tenant holds exactly the plan's after-state,
    assert sc.actual_phones(tenant.to_snapshot()) == sc.expected_phones(before, plan)
    tenant.check_invariants()
    # each write applied once, no "already exists" (or any other 400) from a blind retry,
    assert stats["duplicate_writes"] == 0
    assert stats["writes_applied"] == len(plan.changes)
    assert "badRequest" not in stats["by_error_code"]
    # every change journaled done: the five SMS conflicts are done, their SMS state noted,
    entries = list(journal.changes())
    assert all(e.status is ChangeStatus.DONE for e in entries)
    conflicts = [e for e in entries if e.sms_state_after == "phoneNumberNotUnique"]
    assert len(conflicts) == 5
    assert all(e.graph_code in (None, "phoneNumberNotUnique") for e in conflicts)
    # and every user accounted for (verified by read-back).
    verified = journal.verifications()
    assert set(verified) == set(desired) and all(v.ok for v in verified.values())
    assert events[-1].finished and events[-1].done == len(plan.changes)
