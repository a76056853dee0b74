"""From a job to a reviewed plan: read the roster, read live state, plan, check safety.

This is the part of a run that never writes to the tenant: ``provision plan`` stops after
it, ``provision apply`` continues into ``provision.run.apply_stage``. The plan's safety
verdict also holds the roster-size thresholds (``planner.safety.roster_thresholds``): the
roster's rows against ``min_roster_rows``, and against the latest finished run of the same
job and target (``run.history``) with ``min_roster_percent``, so ``plan`` shows a refusal
and ``apply`` refuses (unless forced) for a shrunken roster as for too many deletes.

A job with a ``[scope]`` reads its groups' and administrative units' members first
(``graph.scope_reader``); roster users outside are neither read nor planned
(``out_of_scope``), so nothing is ever written for them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from provision.errors import AuthError, PlanMismatchError
from provision.graph.scope_reader import read_scope
from provision.graph.state_reader import ReadNotes, read_current_state, refuse_if_denied_everywhere
from provision.model import CurrentUser, PlanMode, RowStatus, SmsPolicy
from provision.planner import Plan, PlanPolicy, plan, plan_checksum, read_plan, write_plan
from provision.planner.safety import RosterSize, with_roster_thresholds
from provision.roster.reader import Roster, read_roster
from provision.run.console import Console, NullConsole
from provision.run.history import latest_finished_run
from provision.run.jobs import Job
from provision.run.targets import Target

Clock = Callable[[], datetime]

# min_roster_percent when the job file leaves it unset, by mode: only an authoritative
# job turns a missing row into deletes, so only there is a shrunken roster refused unasked.
DEFAULT_MIN_ROSTER_PERCENT: dict[PlanMode, float | None] = {
    PlanMode.AUTHORITATIVE: 50.0,
    PlanMode.ADDITIVE: None,
    PlanMode.FILL_EMPTY: None,
}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class PlannedRun:
    job: Job
    roster: Roster
    current: dict[str, CurrentUser]
    sms_policy: SmsPolicy
    read_notes: ReadNotes
    plan: Plan
    target: str  # the target's description
    created: datetime

    @property
    def checksum(self) -> str:
        return plan_checksum(self.plan)


def plan_policy(job: Job) -> PlanPolicy:
    mode = PlanMode(job.mode.value)
    percent = job.safety.min_roster_percent
    if percent is None:
        percent = DEFAULT_MIN_ROSTER_PERCENT[mode]
    return PlanPolicy(
        mode=mode,
        sms=job.sms_sign_in,
        max_changes=job.safety.max_changes,
        max_delete_percent=job.safety.max_delete_percent,
        max_update_percent=job.safety.max_update_percent,
        retry_sms_conflicts=job.sms_retry_conflicts,
        min_roster_rows=job.safety.min_roster_rows or None,  # 0: no floor
        min_roster_percent=percent or None,  # 0: off
    )


def roster_size(job: Job, roster: Roster, target: str, policy: PlanPolicy) -> RosterSize:
    """The roster's rows and usable rows, and (when the policy compares) the previous run's."""
    usable = len(roster.rows) - roster.count(RowStatus.ERROR)
    previous = latest_finished_run(job.output.directory, job.name, target, fleet_key=job.fleet_key) if policy.min_roster_percent else None
    if previous is None:
        return RosterSize(len(roster.rows), usable)
    return RosterSize(len(roster.rows), usable, previous.usable_rows, previous.name)


def load_roster(job: Job, roster_path: Path | None = None) -> Roster:
    cfg = job.roster
    return read_roster(
        roster_path or cfg.path,
        columns=cfg.columns or None,
        default_region=cfg.default_region,
        sheet=cfg.sheet,
    )


async def make_plan(
    job: Job,
    target: Target,
    *,
    roster: Roster,
    console: Console | None = None,
    clock: Clock = utc_now,
) -> PlannedRun:
    """Read every roster user's phones from the target and plan the difference."""
    console = console or NullConsole()
    keys = list(roster.users)
    out_of_scope: frozenset[str] = frozenset()
    if job.scope.is_set:
        console.stage("reading scope")
        scope = await read_scope(target.client, job.scope.groups, job.scope.admin_units)
        for source in scope.sources:
            console.note("info", f"scope: {source}")
        if not all(scope.decides(k) for k in keys):
            # Graph lists members the app may not read as users with an id and nothing else:
            # judging UPN-keyed rows against them would call members "out of scope".
            raise AuthError(
                403,
                "limitedInformation",
                "the job's [scope] members came back without their userPrincipalName (the app may not read "
                "users): grant User.Read.All with admin consent, or key the roster by object id",
            )
        out_of_scope = frozenset(k for k in keys if not scope.contains(k))
        keys = [k for k in keys if k not in out_of_scope]
        console.note("info", f"scope: {len(keys):,} roster user(s) in scope, {len(out_of_scope):,} outside (not read)")
    console.stage("reading users", len(keys))

    def progress(done: int, total: int) -> None:
        console.advance("reading users", done, total)

    current, sms_policy, notes = await read_current_state(
        target.client, keys, policy_needs_ids=True, progress=progress
    )
    for remark in notes.remarks:
        console.note("warning", remark)
    refuse_if_denied_everywhere(current, "UserAuthenticationMethod.ReadWrite.All")
    console.stage("planning", len(roster.users))
    policy = plan_policy(job)
    planned = await asyncio.to_thread(plan, roster.users, current, sms_policy, policy, out_of_scope=out_of_scope)
    planned = with_roster_thresholds(planned, roster_size(job, roster, target.description, policy))
    console.advance("planning", len(roster.users), len(roster.users))
    return PlannedRun(job, roster, current, sms_policy, notes, planned, target.description, clock())


def save_plan(planned: PlannedRun, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_plan(planned.plan, path, job=planned.job.name, target=planned.target, created=planned.created)


def check_saved_plan(planned: PlannedRun, saved_path: Path) -> None:
    """Refuse to apply a reviewed plan that no longer matches the live tenant."""
    saved = read_plan(saved_path)
    saved.refuse_other_job(planned.job.name, saved_path)
    if saved.checksum != planned.checksum:
        raise PlanMismatchError(
            f"the saved plan {saved_path} no longer matches the tenant: re-reading the users gives a different "
            "set of changes (someone or something changed their phones since the plan was made). "
            "Run `provision plan` again and review the new plan."
        )
