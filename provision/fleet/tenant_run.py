"""One tenant's ordinary run inside a fleet worker thread: ``run_tenant(task) -> dict``.

A Dask worker runs several tenants at once in threads of one process, so a tenant's run
keeps to itself: its own event loop, its own log scope (``run.logs.run_scope``: its
run.log holds its records only), a console that prints nothing, no signal handlers, no
environment or working-directory changes. It never raises: every ending, a crash
included, is a ``TenantResult`` (the dict the fleet design describes), also written to
``<tenant dir>/tenant.json``.

apply resumes the tenant's run directory when it holds a started journal (a previous
attempt, a lost worker, ``fleet resume``), else applies afresh into it; plan saves the
tenant's plan as ``provision plan --out`` does. While applying, three watchers may ask the
run to stop at a clean point (the executor's ``stop`` event: in-flight batches finish and
are journaled, the reports are rendered, the journal stays resumable):

- quarantine: the journal's failed writes pass ``QuarantineConfig``'s thresholds;
- timeout: ``timeout_s`` elapsed;
- the fleet process is gone (``fleet_pid``): an embedded cluster orphaned by kill -9 must
  not keep writing while ``fleet resume`` starts the tenant again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from provision.errors import ExitCode, ProvisionError, RunLockedError, UsageError, exit_code_for
from provision.fleet.config import QuarantineConfig, TenantSpec
from provision.fleet.rundir import TENANT_FILE, relative_to_fleet, write_tenant_result
from provision.masking import mask_in_text
from provision.model import RowOutcome
from provision.private_files import DIR_MODE, open_private, replaced_privately
from provision.report.values import PhoneResult, RowResult
from provision.roster.reader import Roster
from provision.run.jobs import Job
from provision.run.logs import logger, record_crash, run_scope
from provision.run.loop import run_to_end
from provision.run.rundir import RunDir

if TYPE_CHECKING:
    from provision.run.run_report import RunOutcome

__all__ = ["Status", "TenantTask", "Watch", "run_tenant"]

SCHEMA = 1
RESULTS_FILE = "results.csv"
PLAN_FILE = "plan.json"
RUN_DIR = "run"
CRASH_FILE = "crash.log"

Status = Literal["ok", "rows_failed", "bad_input", "refused", "auth_failed", "stopped", "quarantined", "drift", "lost"]

_STATUS_BY_EXIT: dict[int, Status] = {
    ExitCode.OK: "ok",
    ExitCode.ROWS_FAILED: "rows_failed",
    ExitCode.USAGE: "bad_input",
    ExitCode.REFUSED: "refused",
    ExitCode.AUTH: "auth_failed",
    ExitCode.STOPPED: "stopped",
    ExitCode.DRIFT: "drift",
}



@dataclass(frozen=True, slots=True)
class TenantTask:
    """One tenant's work; picklable (Dask ships it to workers)."""

    spec: TenantSpec
    action: Literal["plan", "apply"]
    tenant_dir: Path  # <fleet run dir>/tenants/<key>, absolute
    fleet_dir: Path
    quarantine: QuarantineConfig
    fleet_pid: int | None = None  # embedded cluster: stop cleanly if this process disappears
    timeout_s: float | None = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


@dataclass(frozen=True, slots=True)
class Watch:
    """How often the watchers look, and how a process is found alive (tests shrink and fake them)."""

    journal_every_s: float = 0.5  # quarantine: the journal's failed writes
    fleet_every_s: float = 2.0  # the fleet process
    alive: Callable[[int], bool] = field(default=_pid_alive)


def run_tenant(task: TenantTask, *, watch: Watch | None = None) -> dict[str, Any]:
    """Run one tenant's plan or apply to its end in the calling thread; return (and write) its result."""
    started = _utc_now()
    t0 = time.monotonic()
    spec = task.spec
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "tenant_id": spec.tenant_id,
        "name": spec.name or spec.tenant_id,
        "key": spec.key,
        "groups": list(spec.groups),
        "action": task.action,
        "status": "stopped",
        "exit_code": int(ExitCode.STOPPED),
        "message": "",
        "run_dir": None,
        "plan_file": None,
        "rows_total": 0,
        "rows_ok": 0,
        "rows_failed": 0,
        "rows_by_outcome": {o.value: 0 for o in RowOutcome},
        "changes": {},
        "changes_done": {},
        "writes_failed": 0,
        "operations": 0,
        "throttled": 0,
        "attempts": 1,
        "started": started,
        "finished": started,
        "duration_s": 0.0,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    with run_scope() as scope:
        try:
            _make_private_dir(task.tenant_dir)
            _TenantRun(task, result, watch or Watch()).run()
        except Exception as exc:  # noqa: BLE001 - a tenant never takes its worker down with it
            _crashed(task, result, exc, scope.log)
    result["finished"] = _utc_now()
    result["duration_s"] = round(time.monotonic() - t0, 3)
    _write_result(task.tenant_dir, result)
    return result


class _TenantRun:
    """One run_tenant call's state: the task, the result being filled, why the run was stopped."""

    def __init__(self, task: TenantTask, result: dict[str, Any], watch: Watch) -> None:
        self.task = task
        self.result = result
        self.watch = watch
        self.stopped_by: tuple[Status, str] | None = None  # (status, message) once a watcher stopped it
        self.console = _TenantConsole()

    # -- the two actions ----------------------------------------------------------------
    def run(self) -> None:
        spec = self.task.spec
        if spec.job is None:
            problem = spec.problem or "the tenant's job could not be built"
            roster = _listing_roster(spec.roster_job)
            if roster is not None:  # every row still shows in the merged report, skipped for the problem
                rows = _skipped_rows(roster, f"bad_input: {problem}")
                self._write_rows(rows)
                self._rows(len(rows), 0, len(rows), {RowOutcome.SKIPPED.value: len(rows)})
            self._end(ExitCode.USAGE, problem)
            return
        if self.task.action == "plan":
            self._plan(spec.job)
        else:
            self._apply(spec.job)

    def _plan(self, job: Job) -> None:
        from provision.report.row_results import count_outcomes, row_results
        from provision.run.pipeline import check_ending, plan_job
        from provision.run.plan_stage import save_plan

        roster = self._roster(job)
        if roster is None:
            return
        try:
            planned = run_to_end(plan_job(job, roster, console=self.console))
        except ProvisionError as exc:
            self._failed_before_run(exc, roster)
            return
        plan_file = self.task.tenant_dir / PLAN_FILE
        save_plan(planned, plan_file)
        self.result["plan_file"] = relative_to_fleet(plan_file, self.task.fleet_dir)
        rows = row_results(roster.rows, roster.issues, planned.plan.users, sms_intent=job.sms_sign_in)
        self._write_rows(rows)
        ok, failed, by_outcome = count_outcomes(rows)
        self._rows(len(rows), ok, failed, by_outcome)
        kinds: dict[str, int] = {}
        for change in planned.plan.changes:
            kinds[str(change.kind)] = kinds.get(str(change.kind), 0) + 1
        self.result["changes"] = kinds
        self.result["operations"] = planned.read_notes.operations
        self.result["throttled"] = planned.read_notes.throttled
        ending = check_ending(planned)
        message = "" if ending is ExitCode.OK else (
            planned.plan.safety.message if ending is ExitCode.REFUSED else f"{len(planned.plan.changes)} change(s) pending"
        )
        self._end(ending, message)

    def _apply(self, job: Job) -> None:
        from provision.run.pipeline import ApplyOptions, apply_job, resume_job

        run = RunDir(self.task.tenant_dir / RUN_DIR)
        resuming = _started(run)
        roster: Roster | None = None
        if not resuming:
            roster = self._roster(job)
            if roster is None:
                return
            if run.path.exists():
                # A run directory without a journal: the previous attempt stopped before it
                # sent anything (rundir's docstring), so applying afresh is safe.
                shutil.rmtree(run.path)

        async def go() -> RunOutcome:
            stop = asyncio.Event()
            watchers = self._start_watchers(stop, run)
            try:
                if resuming:
                    return await resume_job(run, console=self.console, stop=stop)
                assert roster is not None
                return await apply_job(job, roster, ApplyOptions(run_dir=run.path, stop=stop), console=self.console)
            finally:
                for w in watchers:
                    w.cancel()

        try:
            outcome = run_to_end(go())
        except ProvisionError as exc:
            self._failed_before_run(exc, roster, run)
            return
        self._finished_run(run, outcome)

    # -- endings ------------------------------------------------------------------------
    def _finished_run(self, run: RunDir, outcome: RunOutcome) -> None:
        s = outcome.summary
        self.result["run_dir"] = relative_to_fleet(run.path, self.task.fleet_dir)
        self._run_figures(run, outcome)
        code = ExitCode(s.exit_code)
        if self.stopped_by is not None:
            status, message = self.stopped_by
            if status == "quarantined" and code in (ExitCode.OK, ExitCode.ROWS_FAILED, ExitCode.STOPPED):
                self._end(ExitCode.ROWS_FAILED, message, status="quarantined")
                return
            if code is ExitCode.STOPPED:
                self._end(code, message)
                return
        message = ""
        if code is ExitCode.STOPPED:
            message = f"stopped ({s.stop_reason or s.status.value}): fleet resume continues it"
        elif code is ExitCode.AUTH:
            message = "writes refused for want of permission: fix the app's consent, then fleet resume"
        elif code is ExitCode.ROWS_FAILED:
            message = f"{s.rows_failed} row(s) failed"
        self._end(code, message)

    def _failed_before_run(self, exc: ProvisionError, roster: Roster | None, run: RunDir | None = None) -> None:
        """A refusal or failure that ended the command: its code; the rows as skipped (or as reported)."""
        code = exit_code_for(exc)
        message = _one_line(exc)
        # Another process holding the tenant's run lock may be writing that run directory
        # right now: its reports are left to it.
        if run is not None and _started(run) and not isinstance(exc, RunLockedError):
            self.result["run_dir"] = relative_to_fleet(run.path, self.task.fleet_dir)
            if self._render_and_copy(run):
                self._end(code, message)
                return
        if roster is None and run is not None and _started(run):
            roster = _run_roster(run)
        if roster is not None:
            rows = _skipped_rows(roster, f"{_STATUS_BY_EXIT.get(code, 'stopped')}: {message}")
            self._write_rows(rows)
            self._rows(len(rows), 0, len(rows), {RowOutcome.SKIPPED.value: len(rows)})
        self._end(code, message)

    def _end(self, code: ExitCode, message: str, *, status: Status | None = None) -> None:
        self.result["exit_code"] = int(code)
        self.result["status"] = status or _STATUS_BY_EXIT.get(code, "stopped")
        self.result["message"] = mask_in_text(message.splitlines()[0] if message else "")

    # -- pieces -------------------------------------------------------------------------
    def _roster(self, job: Job) -> Roster | None:
        from provision.run.plan_stage import load_roster

        try:
            return load_roster(job)
        except ProvisionError as exc:
            self._end(exit_code_for(exc), _one_line(exc))
            return None

    def _rows(self, total: int, ok: int, failed: int, by_outcome: Mapping[str, int]) -> None:
        self.result["rows_total"] = total
        self.result["rows_ok"] = ok
        self.result["rows_failed"] = failed
        self.result["rows_by_outcome"] = {o.value: int(by_outcome.get(o.value, 0)) for o in RowOutcome}

    def _write_rows(self, rows: list[RowResult]) -> None:
        from provision.report.csv_writer import write_csv

        dest = self.task.tenant_dir / RESULTS_FILE
        with replaced_privately(dest, newline="") as f:
            write_csv(rows, f)

    def _copy_results(self, run: RunDir) -> None:
        source = run.path / RESULTS_FILE
        dest = self.task.tenant_dir / RESULTS_FILE
        # results.csv is text (UTF-8 with a BOM, CRLF records): copied as read, newlines kept.
        with source.open(encoding="utf-8", newline="") as src, replaced_privately(dest, newline="") as dst:
            shutil.copyfileobj(src, dst)

    def _render_and_copy(self, run: RunDir) -> bool:
        """The run's reports from its journal (a run that raised after it started), copied up."""
        from provision.run.pipeline import report_run

        try:
            outcome = report_run(run)
        except Exception as exc:  # noqa: BLE001 - the tenant's own error is what gets reported
            logger().warning("could not render the reports of %s: %s", run.path, _one_line(exc))
            return False
        self._run_figures(run, outcome)
        return True

    def _run_figures(self, run: RunDir, outcome: RunOutcome) -> None:
        """The run's figures from its summary and journal, and its results.csv copied up."""
        s = outcome.summary
        self._rows(s.rows_total, s.rows_ok, s.rows_failed, s.rows_by_outcome)
        self.result["changes"] = dict(s.changes)
        self.result["changes_done"] = dict(s.changes_done)
        self.result["operations"] = s.operations
        self.result["throttled"] = s.throttled
        self.result["writes_failed"] = _failed_writes(run.journal_file)
        self._copy_results(run)

    # -- watchers -----------------------------------------------------------------------
    def _start_watchers(self, stop: asyncio.Event, run: RunDir) -> list[asyncio.Task[None] | asyncio.TimerHandle]:
        loop = asyncio.get_running_loop()
        found: list[asyncio.Task[None] | asyncio.TimerHandle] = []
        q = self.task.quarantine
        if q.failed_writes > 0 or q.failed_percent > 0:
            found.append(loop.create_task(self._watch_journal(stop, run.journal_file)))
        if self.task.timeout_s is not None:
            minutes = self.task.timeout_s / 60
            found.append(loop.call_later(
                self.task.timeout_s, self._stop, stop, "stopped",
                f"stopped after the tenant timeout ({minutes:g} min): fleet resume continues it",
            ))
        if self.task.fleet_pid is not None:
            found.append(loop.create_task(self._watch_fleet(stop, self.task.fleet_pid)))
        return found

    def _stop(self, stop: asyncio.Event, status: Status, message: str) -> None:
        if self.stopped_by is None:
            self.stopped_by = (status, message)
            logger().warning("%s", message)
        stop.set()

    async def _watch_journal(self, stop: asyncio.Event, journal: Path) -> None:
        q = self.task.quarantine
        while not stop.is_set():
            await asyncio.sleep(self.watch.journal_every_s)
            if not journal.is_file():
                continue
            # Each look opens, reads and closes the journal in its own thread: a connection
            # shared with the loop could be closed under a read a cancelled task left running.
            counts = await asyncio.to_thread(_journal_counts, journal)
            if counts is None:  # still being created (one transaction): look again later
                continue
            done, failed = counts
            attempted = done + failed
            if (q.failed_writes > 0 and failed >= q.failed_writes) or (
                q.failed_percent > 0 and attempted >= max(1, q.min_writes) and failed * 100 >= q.failed_percent * attempted
            ):
                self._stop(stop, "quarantined", (
                    f"quarantined: {failed} of {attempted} writes failed (thresholds: {q.failed_writes} failed, "
                    f"or {q.failed_percent:g}% once {q.min_writes} were attempted); its other changes were not sent"
                ))
                return

    async def _watch_fleet(self, stop: asyncio.Event, pid: int) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.watch.fleet_every_s)
            if not self.watch.alive(pid):
                self._stop(stop, "stopped", f"the fleet process ({pid}) is gone: stopped; fleet resume continues it")
                return


class _TenantConsole:
    """Prints nothing; notes go to the run's log as the CLI's console sends them."""

    _LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, name: str, done: int, total: int | None = None, **fields: Any) -> None:
        pass

    def note(self, level: str, message: str, **fields: Any) -> None:
        logger().log(self._LEVELS.get(level, 20), message, extra={"fields": fields} if fields else None)


def _started(run: RunDir) -> bool:
    """The run directory holds a started journal: writes may have begun, so it is resumed."""
    try:
        run.check_started()
    except UsageError:
        return False
    return True


def _done_failed(conn: sqlite3.Connection) -> tuple[int, int]:
    found = dict(conn.execute("SELECT status, count(*) FROM changes WHERE status IN ('done', 'failed') GROUP BY status"))
    return int(found.get("done", 0)), int(found.get("failed", 0))


def _journal_counts(journal: Path) -> tuple[int, int] | None:
    """(done, failed) changes in the journal, read-only; None while it can't be read yet."""
    try:
        conn = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return _done_failed(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def _failed_writes(journal: Path) -> int:
    counts = _journal_counts(journal)
    return counts[1] if counts is not None else 0


def _listing_roster(job: Job | None) -> Roster | None:
    """The roster of a tenant that won't run, read with its template's settings, if it reads."""
    if job is None:
        return None
    from provision.run.plan_stage import load_roster

    try:
        return load_roster(job)
    except ProvisionError:
        return None


def _skipped_rows(roster: Roster, reason: str) -> list[RowResult]:
    """Every roster row as skipped for the tenant's error (its own problems, if any, after it)."""
    issues = roster.issues_by_row()
    rows = []
    for row in roster.rows:
        own = "; ".join(f"{i.column + ': ' if i.column else ''}{i.reason}" for i in issues.get(row.row, ()))
        rows.append(RowResult(
            row=row.row,
            sheet=row.sheet,
            user=row.user,
            outcome=RowOutcome.SKIPPED,
            phones={t: PhoneResult(desired=v, outcome=RowOutcome.SKIPPED) for t, v in row.phones.items()},
            reason=mask_in_text(f"{reason}; row: {own}" if own else reason),
            error_code="tenant_not_run",
            extra=row.extra,
        ))
    return rows


def _run_roster(run: RunDir) -> Roster | None:
    from provision.run.plan_stage import load_roster

    try:
        return load_roster(run.load_job())
    except Exception:  # noqa: BLE001 - no roster, no rows to report
        return None


def _crashed(task: TenantTask, result: dict[str, Any], exc: Exception, run_log: Path | None) -> None:
    """An unexpected exception: exit 5 with one line; the traceback in run.log or crash.log."""
    if run_log is not None:
        where = record_crash(exc)
    else:
        where = task.tenant_dir / CRASH_FILE
        try:
            with open_private(where, append=True) as out:
                out.write(mask_in_text("".join(traceback.format_exception(exc))))
        except OSError:
            where = record_crash(exc)
    result["exit_code"] = int(ExitCode.STOPPED)
    result["status"] = "stopped"
    result["message"] = mask_in_text(f"unexpected error: {type(exc).__name__}: {_one_line(exc)} (details: {where})")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return mask_in_text(lines[0] if lines else type(exc).__name__)


def _make_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.name != "nt":
        os.chmod(path, DIR_MODE)


def _write_result(tenant_dir: Path, result: dict[str, Any]) -> None:
    try:
        write_tenant_result(tenant_dir, result)
    except OSError as exc:  # the dispatcher writes it again from the returned result
        logger().error("could not write %s: %s", tenant_dir / TENANT_FILE, exc)


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
