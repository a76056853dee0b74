"""Planning the rollback of a run directory: its journal and plan -> a ``PlannedRun`` of inverses.

``plan_rollback`` reads which changes the run applied (journal status ``done`` only: a
change that failed, was skipped or never sent has nothing to undo), reads every user of
the run now through the same batched state read as planning, and asks the pure
``planner.rollback.inverse_plan`` for the inverse chain. The result is an ordinary
``PlannedRun`` over the run's own roster copy, so ``provision rollback`` shows, checks,
confirms, locks, journals, resumes and reports it exactly as ``apply`` does
(``provision.run.pipeline.rollback_job``).
"""

from __future__ import annotations

import asyncio

from provision.executor.journal import ChangeStatus, Journal
from provision.graph.state_reader import read_current_state
from provision.planner.plan_file import read_plan
from provision.planner.rollback import AppliedChange, RunUser, inverse_plan
from provision.roster.reader import Roster
from provision.run.console import Console, NullConsole
from provision.run.jobs import Job
from provision.run.plan_stage import PlannedRun, plan_policy, utc_now
from provision.run.rundir import RunDir
from provision.run.targets import Target

__all__ = ["plan_rollback", "run_users"]


def run_users(run: RunDir) -> tuple[list[RunUser], int]:
    """The run's users in plan order with the changes it applied, and how many of its
    changes have an unknown outcome (in flight when it stopped)."""
    saved = read_plan(run.plan_file)
    journal = Journal.open(run.journal_file, read_only=True)
    try:
        entries = {e.id: e for e in journal.changes()}
    finally:
        journal.close()
    users: list[RunUser] = []
    for u in saved.users:
        applied = tuple(
            AppliedChange(c, entries[c.id].sms_state_after)
            for c in u.changes
            if c.id in entries and entries[c.id].status is ChangeStatus.DONE
        )
        users.append(RunUser(u.key, u.user, u.rows, applied, u.current))
    unknown = sum(1 for e in entries.values() if e.status is ChangeStatus.IN_FLIGHT)
    return users, unknown


async def plan_rollback(
    original: RunDir, job: Job, roster: Roster, target: Target, *, console: Console | None = None
) -> PlannedRun:
    """Read the run's users now and plan the inverse of what the run applied (no writes)."""
    console = console or NullConsole()
    users, unknown = await asyncio.to_thread(run_users, original)
    if unknown:
        console.note(
            "warning",
            f"{unknown} changes of {original.path} have an unknown outcome (in flight when it stopped); "
            "they are not rolled back: `provision resume` that run first to settle them",
        )
    applied = sum(len(u.applied) for u in users)
    console.note("info", f"rolling back {original.path}: {applied} applied changes over {sum(1 for u in users if u.applied)} users")
    keys = [u.key for u in users]
    console.stage("reading users", len(keys))

    def progress(done: int, total: int) -> None:
        console.advance("reading users", done, total)

    current, sms_policy, notes = await read_current_state(target.client, keys, policy_needs_ids=True, progress=progress)
    for remark in notes.remarks:
        console.note("warning", remark)
    console.stage("planning", len(keys))
    plan = inverse_plan(users, current, sms_policy, plan_policy(job))
    console.advance("planning", len(keys), len(keys))
    return PlannedRun(job, roster, current, sms_policy, notes, plan, target.description, utc_now())
