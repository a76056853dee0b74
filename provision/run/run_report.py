"""A run directory's reports: one result per roster row, the run's summary and exit code.

``render_reports`` needs nothing but the run directory (the roster copy, plan.json and the
journal), so it serves the end of ``apply`` and ``resume`` and, alone, ``provision report``.
The run's exit code is decided here, from the rows' outcomes (``provision.errors.ExitCode``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

from provision.errors import ExitCode
from provision.executor.dispatch import ExecutionResult, RunStatus
from provision.executor.journal import ChangeStatus, Journal, JournalEntry
from provision.planner.plan_file import read_plan
from provision.report import write_reports
from provision.report.row_results import count_outcomes, row_results
from provision.report.values import RunSummary
from provision.roster.reader import Roster
from provision.run.apply_stage import load_timeline
from provision.run.console import Console, NullConsole
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
    status = meta.get("status", "")
    if status == RunStatus.ABORTED.value or _denied_everywhere(entries.values()):
        exit_code = ExitCode.AUTH
    else:
        exit_code = ExitCode.OK if rows_failed == 0 else ExitCode.ROWS_FAILED
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
        exit_code=exit_code,
        mode=meta.get("mode", job.mode.value),
        run_dir=str(run.path),
        rows_by_outcome=dict(by_outcome),
        timeline=tuple(load_timeline(meta)),
    )
    console.stage("writing reports")
    reports = write_reports(run.path, rows, summary)
    return RunOutcome(run.path, execution, summary, reports)


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
