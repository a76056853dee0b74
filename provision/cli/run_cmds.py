"""`provision apply`, `resume`, `rollback` and `report`: runs that write, and their reports.

``apply`` re-reads every roster user, shows the plan summary and asks before writing
(``--yes`` skips the question; without a terminal it refuses rather than ask). The first
Ctrl-C stops dispatching, lets in-flight requests finish and journals them; the message
says how to resume. ``rollback RUN_DIR`` plans the inverse of what that run applied and
goes through the same summary, question, thresholds and reports (``--plan-only``: show
it, write nothing). The work itself is ``provision.run.pipeline``; this module parses
options, draws and picks the exit code. Heavy modules (msgraph, the executor) are imported
inside the commands so that ``--help`` starts fast.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Awaitable, Callable, Iterator

import typer
from rich.markup import escape

from provision.cli.output import JsonConsole, LogFormat, RichConsole, console_for, exits_on_error, for_people
from provision.errors import Cancelled, ExitCode, UsageError

if TYPE_CHECKING:
    from provision.run.plan_stage import PlannedRun
    from provision.run.run_report import RunOutcome

AnyConsole = JsonConsole | RichConsole


def _console(fmt: LogFormat) -> AnyConsole:
    return console_for(fmt)


@contextmanager
def _live(console: AnyConsole) -> Iterator[None]:
    if isinstance(console, RichConsole):
        with console.live():
            yield
    else:
        yield


@contextmanager
def _graceful_stop(stop: asyncio.Event) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM): stop dispatching and finish cleanly; a second one is Python's default."""
    loop = asyncio.get_running_loop()

    def first(signum: int) -> None:
        stop.set()
        loop.remove_signal_handler(signum)

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, first, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def apply(
    job_file: Annotated[Path, typer.Argument(metavar="JOB", help="Job file (TOML)")],
    plan_file: Annotated[Path | None, typer.Option("--plan", help="Apply only if the live plan still matches this reviewed plan file")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask for confirmation (required without a terminal)")] = False,
    force: Annotated[bool, typer.Option("--force", help="Apply even if the plan exceeds a safety threshold")] = False,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Run directory (default: <output dir>/<job>-<UTC time>)")] = None,
    roster: Annotated[Path | None, typer.Option("--roster", help="Use this roster instead of the job's roster.path")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Read every changed user back after its changes and report mismatches")] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Plan, confirm, apply the changes and write the reports.

    Plans again against live state, shows the summary and asks, then applies with
    batching, pacing and retries, journals every write and writes the run's reports.
    """
    from provision.run.jobs import load_job
    from provision.run.pipeline import ApplyOptions, apply_job, load_job_roster

    console = _console(log_format)

    def on_plan(planned: PlannedRun) -> None:
        _show_plan(console, planned)

    confirm = _confirmer(yes, "Apply", "review with `provision plan`")

    async def run() -> RunOutcome:
        stop = asyncio.Event()
        options = ApplyOptions(
            plan_file=plan_file, force=force, run_dir=run_dir, verify=verify, confirm=confirm, on_plan=on_plan,
            on_run_dir=lambda run: console.note("info", f"run directory: {run.path}"), stop=stop,
        )
        with _graceful_stop(stop), _live(console):
            return await apply_job(job, roster_data, options, console=console)

    with exits_on_error(console):
        job = load_job(job_file)
        console.stage("reading roster")
        roster_data = load_job_roster(job, roster, command="apply", console=console)
        outcome = asyncio.run(run())
    _finish(console, outcome)


def _confirmer(yes: bool, verb: str, review: str) -> Callable[[PlannedRun, str], Awaitable[bool]]:
    """The question asked before any write: "<verb> N changes to TARGET?" (``--yes``: not asked;
    without a terminal: refused)."""

    async def confirm(planned: PlannedRun, target: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to write without confirmation: not on a terminal; {review}, then re-run with --yes")
        try:
            yes_now = await asyncio.to_thread(typer.confirm, f"{verb} {len(planned.plan.changes)} changes to {target}?")
        except typer.Abort:
            yes_now = False
        if not yes_now:
            raise Cancelled("cancelled: nothing was written")
        return True

    return confirm


def rollback(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="The run directory to reverse (as `provision apply` printed it)")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask for confirmation (required without a terminal)")] = False,
    force: Annotated[bool, typer.Option("--force", help="Roll back even if the inverse plan exceeds one of the job's safety thresholds")] = False,
    plan_only: Annotated[bool, typer.Option("--plan-only", help="Show the inverse plan (and write it with --out); write nothing to the tenant")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="With --plan-only: write the inverse plan file here")] = None,
    new_run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Run directory of the rollback (default: <output dir>/<job>-rollback-<UTC time>)")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Read every changed user back after its changes and report mismatches")] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Undo what a run applied.

    Each change the run made is reversed where the live value is still what it wrote
    (anything changed since is reported as a conflict and left alone), with the same
    summary, question, safety thresholds, journal, resume and reports as apply.
    """
    from provision.run.pipeline import RollbackOptions, plan_rollback_job, rollback_job
    from provision.run.rundir import RunDir

    console = _console(log_format)
    if out is not None and not plan_only:
        with exits_on_error(console):
            raise UsageError("--out goes with --plan-only (a rollback that writes keeps its plan in its run directory)")

    async def run() -> RunOutcome:
        stop = asyncio.Event()
        options = RollbackOptions(
            force=force, run_dir=new_run_dir, verify=verify, confirm=_confirmer(yes, "Roll back", "review with `provision rollback --plan-only`"),
            on_plan=lambda planned: _show_plan(console, planned),
            on_run_dir=lambda run: console.note("info", f"run directory: {run.path}"), stop=stop,
        )
        with _graceful_stop(stop), _live(console):
            return await rollback_job(RunDir(run_dir), options, console=console)

    with exits_on_error(console):
        if plan_only:
            with _live(console):
                planned = asyncio.run(plan_rollback_job(RunDir(run_dir), out=out, console=console))
        else:
            outcome = asyncio.run(run())
    if plan_only:
        _show_plan(console, planned)
        raise typer.Exit(int(ExitCode.OK))
    _finish(console, outcome)


def _show_plan(console: AnyConsole, planned: PlannedRun) -> None:
    from provision.cli.plan_summary import render_plan_summary
    from provision.run.pipeline import plan_summary

    summary = plan_summary(planned)
    if isinstance(console, JsonConsole):
        console.result(event_kind="plan", **summary)
    else:
        console.end_bars()  # the summary and the question print below the reading bars
        render_plan_summary(for_people(), summary)


def resume(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="The run directory `provision apply` printed")],
    verify: Annotated[bool, typer.Option("--verify", help="Read every changed user back after its changes")] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Continue an interrupted or killed run where it stopped.

    Done changes stay done, in-flight ones are read back before anything is re-sent, the
    rest is applied; then the reports are written.
    """
    from provision.run.pipeline import resume_job
    from provision.run.rundir import RunDir

    console = _console(log_format)

    async def run() -> RunOutcome:
        stop = asyncio.Event()
        with _graceful_stop(stop), _live(console):
            return await resume_job(RunDir(run_dir), verify=verify, console=console, stop=stop)

    with exits_on_error(console):
        outcome = asyncio.run(run())
    _finish(console, outcome)


def report(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory")],
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Re-render a run's reports from its journal.

    Writes results.csv, results.xlsx, summary.json and report.html again.
    """
    from provision.run.pipeline import report_run
    from provision.run.rundir import RunDir

    console = _console(log_format)
    with exits_on_error(console):
        outcome = report_run(RunDir(run_dir), console=console)
    _finish(console, outcome)


def _finish(console: AnyConsole, outcome: RunOutcome) -> None:
    s = outcome.summary
    execution = outcome.execution
    if isinstance(console, JsonConsole):
        console.result(
            event_kind="run",
            run_dir=str(outcome.run_dir),
            rows_total=s.rows_total,
            rows_ok=s.rows_ok,
            rows_failed=s.rows_failed,
            rows_by_outcome=dict(s.rows_by_outcome),
            changes_done=dict(s.changes_done),
            status=s.status.value,
            resume=s.resume_command,
            report=str(outcome.reports.get("html", "")),
            exit_code=s.exit_code,
        )
    else:
        out = for_people()
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(s.rows_by_outcome.items()))
        out.print(f"Rows: {s.rows_total} ({outcomes})")
        if s.resume_command:
            message = execution.message if execution is not None else f"{s.status.value}: continue with {s.resume_command}"
            out.print(f"[yellow]{escape(message)}[/]")
        # One path a line: each stays whole (and copyable) on an 80-column terminal.
        out.print(f"Report: [bold]{escape(str(outcome.reports.get('html')))}[/]")
        for path in (outcome.reports.get(kind) for kind in ("xlsx", "csv", "summary")):
            out.print(f"Results: {escape(str(path))}")
    raise typer.Exit(s.exit_code)


__all__ = ["apply", "report", "resume", "rollback"]
