"""A run directory's reports: one result per roster row, the run's summary and exit code.

``render_reports`` needs nothing but the run directory (the roster copy, plan.json and the
journal), so it serves the end of ``apply`` and ``resume`` and, alone, ``provision report``.
How the run ended and its exit code are decided here, in ``run_ending``, from the status
the executor left in the journal's meta and the rows' outcomes:

    executor status        summary status   exit code
    completed              completed        0 every row ok, 1 some not (4 every write refused)
    interrupted            interrupted      5 resume it (completed, as above, if nothing was left)
    unreachable            failed           5 resume it
    aborted (401/403)      failed           4 fix the credential, then resume
    none, changes left     interrupted      5 the process was killed: resume it
    crashed, or unknown    failed           5 resume it (run.log says what happened)
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

from provision.errors import ExitCode
from provision.executor.dispatch import ExecutionResult, RunStatus
from provision.executor.journal import ChangeStatus, Journal, JournalEntry, StatusCounts
from provision.planner.plan_file import read_plan
from provision.private_files import secure_tree
from provision.report import write_reports
from provision.report.change_feed import feed_lines, ship, write_change_feed
from provision.report.row_results import count_outcomes, row_results
from provision.report.values import RunState, RunSummary
from provision.roster.reader import Roster
from provision.run.apply_stage import load_timeline
from provision.run.console import Console, NullConsole
from provision.run.jobs import Job
from provision.run.logs import logger
from provision.run.plan_stage import load_roster
from provision.run.rundir import RunDir


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run_dir: Path
    execution: ExecutionResult | None  # None when there was nothing left to execute
    summary: RunSummary
    reports: dict[str, Path]



def render_reports(
    run: RunDir,
    *,
    roster: Roster | None = None,
    execution: ExecutionResult | None = None,
    console: Console | None = None,
) -> RunOutcome:
    """Write results.csv/.xlsx, summary.json and report.html from the run directory."""
    console = console or NullConsole()
    job = run.load_job()
    saved = read_plan(run.plan_file)
    roster = roster or load_roster(job)
    journal = Journal.open(run.journal_file, read_only=True)
    try:
        entries = {e.id: e for e in journal.changes()}
        verifications = journal.verifications()
        meta = journal.meta()
        counts = journal.counts()
    finally:
        journal.close()
    rows = row_results(
        roster.rows,
        roster.issues,
        saved.users,
        entries=entries,
        verifications=verifications,
        sms_intent=job.sms_sign_in,
    )
    rows_ok, rows_failed, by_outcome = count_outcomes(rows)
    planned = Counter(str(e.change.kind) for e in entries.values())
    done = Counter(str(e.change.kind) for e in entries.values() if e.status is ChangeStatus.DONE)
    ending = run_ending(
        meta.get("status", ""), counts, rows_failed=rows_failed,
        denied_everywhere=_denied_everywhere(entries.values()), run_dir=run.path,
    )
    started = meta.get("started", "")
    finished = meta.get("finished", started)
    summary = RunSummary(
        job=job.name,
        target=meta.get("target", ""),
        started=started,
        finished=finished,
        duration_s=_duration(started, finished),
        rows_total=len(rows),
        rows_ok=rows_ok,
        rows_failed=rows_failed,
        changes=dict(planned),
        changes_done=dict(done),
        operations=int(meta.get("operations", "0")) + int(meta.get("read_operations", "0")),
        throttled=int(meta.get("throttled", "0")) + int(meta.get("read_throttled", "0")),
        exit_code=ending.exit_code,
        mode=meta.get("mode", job.mode.value),
        run_dir=str(run.path),
        rows_by_outcome=dict(by_outcome),
        timeline=tuple(load_timeline(meta)),
        status=ending.state,
        resume_command=ending.resume_command,
        stop_reason=ending.stop_reason,
    )
    console.stage("writing reports")
    reports = write_reports(run.path, rows, summary)
    reports["changes"] = _write_change_feed(run, job, entries.values(), console)
    secure_tree(run.path)  # the writers' files take the umask's mode; they hold numbers
    return RunOutcome(run.path, execution, summary, reports)


def _write_change_feed(run: RunDir, job: Job, entries: Iterable[JournalEntry], console: Console) -> Path:
    """changes.jsonl, and its new lines appended to ``[audit] file`` when the job names one.

    A failed append does not fail the run: the lines stay unshipped and the next render
    (``provision report RUN_DIR``) appends them.
    """
    lines = feed_lines(entries, run_id=run.path.name, job=job.name)
    path = write_change_feed(run.path, lines)
    if job.audit.file is not None:
        try:
            shipped = ship(run.path, lines, job.audit.file)
        except OSError as exc:
            message = f"could not append the change feed to {job.audit.file}: {exc.strerror or exc}; `provision report {run.path}` retries"
            logger().warning(message)
            console.note("warning", message)
        else:
            if shipped:
                logger().info("appended %d change feed line(s) to %s", shipped, job.audit.file)
    return path


@dataclass(frozen=True, slots=True)
class RunEnding:
    """How a run ended, for summary.json and the process's exit code."""

    state: RunState
    exit_code: ExitCode
    stop_reason: str  # the executor's status when the run stopped early, else ""
    resume_command: str | None  # while changes are left to send or to read back


def run_ending(
    status: str, counts: StatusCounts, *, rows_failed: int, denied_everywhere: bool, run_dir: Path
) -> RunEnding:
    """The one mapping from the executor's status (journal meta ``status``) to the run's end.

    ``status`` is matched as a string: the journal holds ``RunStatus`` values, and an
    unknown one (a newer writer's) is a stop for the operator to look at, never a success.
    """
    unfinished = counts.pending + counts.in_flight
    resume = f"provision resume {shlex.quote(str(run_dir))}" if unfinished else None
    if status == RunStatus.ABORTED.value:
        return RunEnding(RunState.FAILED, ExitCode.AUTH, status, resume)
    if status in ("", RunStatus.INTERRUPTED.value) and unfinished:
        # No status at all with work left: the process died before it could record one.
        return RunEnding(RunState.INTERRUPTED, ExitCode.STOPPED, RunStatus.INTERRUPTED.value, resume)
    if status not in ("", RunStatus.INTERRUPTED.value, RunStatus.COMPLETED.value):
        return RunEnding(RunState.FAILED, ExitCode.STOPPED, status, resume)  # unreachable, or unknown
    # Completed, or stopped only once nothing was left to do.
    if denied_everywhere:
        return RunEnding(RunState.COMPLETED, ExitCode.AUTH, "", resume)
    return RunEnding(RunState.COMPLETED, ExitCode.OK if rows_failed == 0 else ExitCode.ROWS_FAILED, "", resume)


def _denied_everywhere(entries: Iterable[JournalEntry]) -> bool:
    """No write succeeded and every failed one was refused for want of permission."""
    failed = 0
    for e in entries:
        if e.status is ChangeStatus.DONE:
            return False
        if e.status is ChangeStatus.FAILED:
            if e.last_http_status not in (401, 403):
                return False
            failed += 1
    return failed > 0


def _duration(started: str, finished: str) -> float:
    try:
        return max(0.0, (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds())
    except ValueError:
        return 0.0
