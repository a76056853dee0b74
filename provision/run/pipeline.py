"""A whole run in one call: what the CLI (and any script) calls for plan, apply, resume, report.

Each function takes a loaded ``Job`` (or a run directory) and does every step of its
command in order, so the CLI only parses options, renders and picks the exit code:

- ``plan_job``: open the target, read every roster user's phones, plan (never writes).
- ``apply_job``: plan against live state, refuse a stale reviewed plan, show the plan
  (``on_plan``), refuse an unsafe one unless forced, ask (``confirm``), then create the
  run directory, journal and apply, and write the reports.
- ``resume_job``: continue a run directory's journal, then write the reports.
- ``report_run``: re-render a run directory's reports.
- ``plan_summary``: a plan's summary as plain data (counts, reasons, safety; no numbers), what
  ``plan`` and ``apply`` show and ``provision.api.plan`` returns.
- ``rollback_job``: plan the inverse of what a run directory applied (``run.rollback``),
  then show, check, confirm, lock, journal, apply and report it as ``apply_job`` does, in
  a new run directory ``<job>-rollback-<UTC time>`` that names the run it reverses
  (``rollback_of.json``, and ``rollback_of`` in its summary.json). ``plan_rollback_job``
  only plans it (``--plan-only``).

``apply_job`` and ``resume_job`` hold the job's run lock (``provision.run.lock``) from
before they read the tenant until their reports are written, so a second run of the same
job against the same tenant is refused (exit 3) instead of sending the same changes
again. ``apply`` takes it before planning, not just before writing: a plan read while
another run is writing is stale by the time it is applied, and two runs that both planned
would both send the same changes. The price is that an ``apply`` waiting at its
confirmation question holds the lock; the refusal says so. ``plan`` only reads and takes
no lock; ``report`` only re-renders a run directory.

Interaction is injected: ``on_plan`` shows the plan, ``confirm`` answers "apply these N
changes?", ``on_run_dir`` is told the run directory as soon as it exists (so a Ctrl-C
message can name it), and ``stop`` is set by whoever handles signals.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from provision.errors import Cancelled, ExitCode
from provision.executor.dispatch import ExecutionResult
from provision.model import PHONE_TYPES, ChangeKind, RowStatus, Severity, UserDecision
from provision.planner import check_safety, summarize
from provision.private_files import write_private_json
from provision.roster.reader import Roster
from provision.run.apply_stage import apply_planned, resume_run
from provision.run.console import Console, NullConsole
from provision.run.jobs import Job
from provision.run.lock import HeldLock, run_lock
from provision.run.logs import attach_run_log, detach, logger
from provision.run.notify import notice_for_check, notice_for_error, notifies, send
from provision.run.plan_stage import PlannedRun, check_saved_plan, load_roster, make_plan, save_plan, utc_now
from provision.run.retention import describe as describe_pruned
from provision.run.retention import prune_runs
from provision.run.rollback import plan_rollback
from provision.run.run_report import RunOutcome, render_reports
from provision.run.rundir import RunDir, create_run_dir, default_run_dir, rollback_run_dir
from provision.run.targets import Target, open_target

Confirm = Callable[[PlannedRun, str], Awaitable[bool]]
"""Asked before any write with the plan and the target's description; False cancels."""


_NOTHING_TO_APPLY = "nothing to change: every roster user is already as desired (or can't be changed)"
_NOTHING_TO_ROLL_BACK = "nothing to roll back: the run applied nothing that is still as it left it"


async def _always_yes(planned: PlannedRun, target: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    """How ``apply_job`` behaves; the defaults apply without asking (for scripts)."""

    plan_file: Path | None = None  # a reviewed plan the live plan must still match
    force: bool = False  # apply even past a safety threshold
    run_dir: Path | None = None
    verify: bool = False
    confirm: Confirm = _always_yes
    on_plan: Callable[[PlannedRun], None] = lambda planned: None
    on_run_dir: Callable[[RunDir], None] = lambda run: None
    stop: asyncio.Event | None = field(default=None)


async def plan_job(job: Job, roster: Roster, *, console: Console | None = None) -> PlannedRun:
    """Read the roster users' live phones from the job's target and plan (no writes)."""
    async with open_target(job) as target:
        return await make_plan(job, target, roster=roster, console=console, clock=utc_now)


def check_ending(planned: PlannedRun) -> ExitCode:
    """How ``plan --check`` ends: 3 when a safety threshold refuses the plan, 6 when changes are pending, else 0."""
    if not planned.plan.safety.ok:
        return ExitCode.REFUSED
    return ExitCode.DRIFT if planned.plan.changes else ExitCode.OK


async def check_job(job: Job, roster: Roster, *, console: Console | None = None) -> PlannedRun:
    """``plan --check``: ``plan_job``, then the job's ``[notify]`` hears how the check ended."""
    try:
        planned = await plan_job(job, roster, console=console)
    except Exception as exc:
        if job.notify is not None:
            await send(job.notify, notice_for_error(job, "plan --check", exc), console=console)
        raise
    if job.notify is not None:
        s = plan_summary(planned)
        rows = {"ok": s["rows_ok"], "warning": s["rows_warning"], "error": s["rows_error"]}
        problems = {**s["row_problems"], **s["top_errors"]}
        notice = notice_for_check(job, planned.target, check_ending(planned), changes=s["changes"], rows=rows,
                                  problems=problems)
        await send(job.notify, notice, console=console)
    return planned


@notifies("apply")
async def apply_job(job: Job, roster: Roster, options: ApplyOptions, *, console: Console | None = None) -> RunOutcome:
    """Plan, check, confirm, apply and report: ``provision apply`` in one call."""
    console = console or NullConsole()
    with run_lock(job, command="apply") as lock:
        async with open_target(job) as target:
            planned = await make_plan(job, target, roster=roster, console=console, clock=utc_now)
            if options.plan_file is not None:
                check_saved_plan(planned, options.plan_file)
            await _show_and_confirm(planned, target, options, console, nothing=_NOTHING_TO_APPLY)
            _prune_old_runs(job, console)
            run = create_run_dir(options.run_dir or default_run_dir(job, planned.created), job, roster.path)
            execution = await _journal_and_apply(planned, target, run, lock, options, console)
        return await asyncio.to_thread(render_reports, run, roster=roster, execution=execution, console=console)


def _prune_old_runs(job: Job, console: Console, *, keep: RunDir | None = None) -> None:
    """``[output] keep_runs``/``keep_days``, under the run lock; a failure to delete only warns."""
    try:
        pruned = prune_runs(job, keep=keep.path if keep is not None else None)
    except OSError as exc:
        message = f"retention: could not delete an old run directory: {exc}"
        logger().warning(message)
        console.note("warning", message)
        return
    if pruned:
        logger().info(describe_pruned(pruned))
        console.note("info", describe_pruned(pruned))


async def _show_and_confirm(
    planned: PlannedRun, target: Target, options: ApplyOptions | RollbackOptions, console: Console, *, nothing: str
) -> None:
    """Show the plan, refuse an unsafe one unless forced, and ask before any write."""
    options.on_plan(planned)
    check_safety(planned.plan, force=options.force)
    if not planned.plan.changes:
        console.note("info", nothing)
    elif not await options.confirm(planned, target.description):
        raise Cancelled("cancelled: nothing was written")


async def _journal_and_apply(
    planned: PlannedRun, target: Target, run: RunDir, lock: HeldLock, options: ApplyOptions | RollbackOptions,
    console: Console,
) -> ExecutionResult:
    """Name the run directory to the lock and the caller, log into it, journal and apply."""
    lock.record_run_dir(run.path)
    options.on_run_dir(run)
    handler = attach_run_log(run.log_file)
    try:
        return await apply_planned(planned, target, run, verify=options.verify, console=console, stop=options.stop)
    finally:
        detach(handler)


@notifies("resume")
async def resume_job(
    run: RunDir, *, verify: bool = False, console: Console | None = None, stop: asyncio.Event | None = None
) -> RunOutcome:
    """Continue an interrupted or killed run where it stopped, then write its reports."""
    console = console or NullConsole()
    run.check_started()
    job = run.load_job()
    with run_lock(job, command="resume", run_dir=run.path):
        handler = attach_run_log(run.log_file)
        execution: ExecutionResult | None
        try:
            _prune_old_runs(job, console, keep=run)
            async with open_target(job) as target:
                execution = await resume_run(run, target, verify=verify, console=console, stop=stop)
            if execution is None:
                console.note("info", "every change of this run is already finished; re-rendering the reports")
        finally:
            detach(handler)
        outcome = await asyncio.to_thread(render_reports, run, execution=execution, console=console)
    return _name_reversed_run(run, outcome)


def report_run(run: RunDir, *, console: Console | None = None) -> RunOutcome:
    """Re-render a run directory's reports from its journal, plan and roster copy."""
    run.check_started()
    return _name_reversed_run(run, render_reports(run, console=console))


@dataclass(frozen=True, slots=True)
class RollbackOptions:
    """How ``rollback_job`` behaves; the defaults roll back without asking (for scripts)."""

    force: bool = False  # roll back even past one of the job's safety thresholds
    run_dir: Path | None = None  # default: <output dir>/<job>-rollback-<UTC time>
    verify: bool = False
    confirm: Confirm = _always_yes
    on_plan: Callable[[PlannedRun], None] = lambda planned: None
    on_run_dir: Callable[[RunDir], None] = lambda run: None
    stop: asyncio.Event | None = field(default=None)


async def plan_rollback_job(original: RunDir, *, out: Path | None = None, console: Console | None = None) -> PlannedRun:
    """The inverse plan of a run directory, read against live state (no writes; ``out``: save it)."""
    original.check_started()
    job = original.load_job()
    roster = load_roster(job)
    async with open_target(job) as target:
        planned = await plan_rollback(original, job, roster, target, console=console)
    if out is not None:
        save_plan(planned, out)
    return planned


@notifies("rollback")
async def rollback_job(original: RunDir, options: RollbackOptions, *, console: Console | None = None) -> RunOutcome:
    """Plan the inverse of a run, check, confirm, apply and report it: ``provision rollback``."""
    console = console or NullConsole()
    original.check_started()
    job = original.load_job()
    roster = load_roster(job)
    with run_lock(job, command="rollback") as lock:
        async with open_target(job) as target:
            planned = await plan_rollback(original, job, roster, target, console=console)
            await _show_and_confirm(planned, target, options, console, nothing=_NOTHING_TO_ROLL_BACK)
            # The job file as that run saw it: its copy in the run directory.
            copy_of = job.model_copy(update={"source": original.job_file.resolve()})
            run = create_run_dir(options.run_dir or rollback_run_dir(job, planned.created), copy_of, roster.path)
            run.record_rollback_of(original)
            execution = await _journal_and_apply(planned, target, run, lock, options, console)
        outcome = await asyncio.to_thread(render_reports, run, roster=roster, execution=execution, console=console)
    return _name_reversed_run(run, outcome)


def _name_reversed_run(run: RunDir, outcome: RunOutcome) -> RunOutcome:
    """A rollback's summary.json names the run it reverses (``rollback_of``); others are left as written."""
    original = run.rollback_of
    summary_file = outcome.reports.get("summary")
    if original is None or summary_file is None:
        return outcome
    doc = json.loads(summary_file.read_text(encoding="utf-8"))
    doc["rollback_of"] = str(original)
    write_private_json(summary_file, doc)
    return outcome


def plan_summary(planned: PlannedRun) -> dict[str, Any]:
    """The plan's summary as plain data: the JSON result event, the rich tables and the API's ``.summary``."""
    s = summarize(planned.plan)
    roster = planned.roster
    statuses = roster.status_counts()
    return {
        "job": planned.job.name,
        "target": planned.target,
        "mode": planned.job.mode.value,
        "sms_sign_in": planned.job.sms_sign_in.value,
        "rows": len(roster.rows),
        "rows_ok": statuses[RowStatus.OK],
        "rows_warning": statuses[RowStatus.WARNING],
        "rows_error": statuses[RowStatus.ERROR],
        "blank_rows": roster.blank_rows,
        "row_problems": dict(roster.issue_counts(Severity.ERROR).most_common(5)),
        "row_warnings": dict(roster.issue_counts(Severity.WARNING).most_common(5)),
        "users": len(planned.plan.users),
        "users_by_outcome": {o.value: s.by_outcome.get(o, 0) for o in UserDecision},
        "changes": s.total_changes,
        "changes_by_kind": {k.value: s.by_kind.get(k, 0) for k in ChangeKind},
        "changes_by_phone_type": {
            t.value: {k.value: n for k, n in s.by_phone_type[t].items() if n} for t in PHONE_TYPES
        },
        "top_errors": dict(s.top_errors),
        "top_warnings": dict(s.top_warnings),
        "safety": "ok" if planned.plan.safety.ok else planned.plan.safety.message,
        "read": {
            "round_trips": planned.read_notes.batches,
            "operations": planned.read_notes.operations,
            "throttled": planned.read_notes.throttled,
        },
    }


def load_job_roster(
    job: Job, roster_path: Path | None = None, *, command: str | None = None, console: Console | None = None
) -> Roster:
    """The job's roster (or ``roster_path`` instead of the job's ``roster.path``).

    With ``command`` (the CLI's ``apply``, ``plan --check``), a roster that can't be read is
    told to the job's ``[notify]`` before the error goes on: the HR extract that never
    arrived is the failure a nightly run must not keep quiet about.
    """
    try:
        return load_roster(job, roster_path)
    except Exception as exc:
        if command is not None and job.notify is not None:
            asyncio.run(send(job.notify, notice_for_error(job, command, exc), console=console))
        raise


__all__ = [
    "ApplyOptions",
    "Confirm",
    "RollbackOptions",
    "apply_job",
    "check_ending",
    "check_job",
    "load_job_roster",
    "plan_job",
    "plan_rollback_job",
    "plan_summary",
    "report_run",
    "resume_job",
    "rollback_job",
]
