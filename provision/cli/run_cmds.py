"""`provision apply`, `provision resume` and `provision report`: runs that write, and their reports.

``apply`` re-reads every roster user, shows the plan summary and asks before writing
(``--yes`` skips the question; without a terminal it refuses rather than ask). The first
Ctrl-C stops dispatching, lets in-flight requests finish and journals them; the message
says how to resume.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator

import typer
from rich.console import Console as RichTerminal

from provision.apply.executor import ExecutionResult, RunStatus
from provision.cli.output import (
    JsonConsole,
    LogFormat,
    RichConsole,
    exits_on_error,
    use_json,
)
from provision.cli.plan_summary import plan_summary, render_plan_summary
from provision.errors import UsageError
from provision.plan.planner import check_safety
from provision.run.applying import RunOutcome, apply_planned, render_reports, resume_run
from provision.run.jobs import load_job
from provision.run.logs import attach_run_log, detach
from provision.run.planning import check_saved_plan, load_roster, make_plan, utc_now
from provision.run.rundir import RunDir, create_run_dir, default_run_dir
from provision.run.targets import open_target

AnyConsole = JsonConsole | RichConsole


def _console(fmt: LogFormat) -> AnyConsole:
    return JsonConsole() if use_json(fmt) else RichConsole()


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
    """Plan against live state, confirm, apply with retries and pacing, and write the reports."""
    console = _console(log_format)
    with exits_on_error(console):
        job = load_job(job_file)
        console.stage("reading roster")
        roster_data = load_roster(job, roster)
        outcome = asyncio.run(_apply(job, roster_data, console, plan_file, yes, force, run_dir, verify))
    _finish(console, outcome)


async def _apply(job, roster_data, console: AnyConsole, plan_file, yes, force, run_dir, verify) -> RunOutcome:  # type: ignore[no-untyped-def]
    async with open_target(job) as target:
        with _live(console):
            planned = await make_plan(job, target, roster=roster_data, console=console, clock=utc_now)
        if plan_file is not None:
            check_saved_plan(planned, plan_file)
        summary = plan_summary(planned)
        if isinstance(console, JsonConsole):
            console.result(event_kind="plan", **summary)
        else:
            render_plan_summary(RichTerminal(highlight=False), summary)
        check_safety(planned.plan, force=force)
        if not planned.plan.changes:
            console.note("info", "nothing to change: every roster user is already as desired (or can't be changed)")
        elif not yes:
            if not sys.stdin.isatty():
                raise UsageError("refusing to write without confirmation: not on a terminal; review with `provision plan`, then re-run with --yes")
            if not await asyncio.to_thread(typer.confirm, f"Apply {len(planned.plan.changes)} changes to {target.description}?"):
                raise UsageError("cancelled: nothing was written")
        run = create_run_dir(run_dir or default_run_dir(job, planned.created), job, roster_data.path)
        handler = attach_run_log(run.log_file)
        try:
            console.note("info", f"run directory: {run.path}")
            stop = asyncio.Event()
            with _graceful_stop(stop), _live(console):
                execution = await apply_planned(planned, target, run, verify=verify, console=console, stop=stop)
        finally:
            detach(handler)
    return await asyncio.to_thread(render_reports, run, roster=roster_data, execution=execution, console=console)


def resume(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="The run directory `provision apply` printed")],
    verify: Annotated[bool, typer.Option("--verify", help="Read every changed user back after its changes")] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Continue an interrupted or killed run exactly where it stopped, then write the reports."""
    console = _console(log_format)
    with exits_on_error(console):
        outcome = asyncio.run(_resume(RunDir(run_dir), console, verify))
    _finish(console, outcome)


async def _resume(run: RunDir, console: AnyConsole, verify: bool) -> RunOutcome:
    job = run.load_job()
    handler = attach_run_log(run.log_file)
    try:
        async with open_target(job) as target:
            stop = asyncio.Event()
            with _graceful_stop(stop), _live(console):
                execution = await resume_run(run, target, verify=verify, console=console, stop=stop)
        if execution is None:
            console.note("info", "every change of this run is already finished; re-rendering the reports")
    finally:
        detach(handler)
    return await asyncio.to_thread(render_reports, run, execution=execution, console=console)


def report(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory")],
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Re-render a run's reports (results.csv/.xlsx, summary.json, report.html) from its journal."""
    console = _console(log_format)
    with exits_on_error(console):
        outcome = render_reports(RunDir(run_dir), console=console)
    _finish(console, outcome)


def _finish(console: AnyConsole, outcome: RunOutcome) -> None:
    s = outcome.summary
    execution: ExecutionResult | None = outcome.execution
    if isinstance(console, JsonConsole):
        console.result(
            event_kind="run",
            run_dir=str(outcome.run_dir),
            rows_total=s.rows_total,
            rows_ok=s.rows_ok,
            rows_failed=s.rows_failed,
            rows_by_outcome=dict(s.rows_by_outcome),
            changes_done=dict(s.changes_done),
            status=execution.status.value if execution else "finished",
            resume=execution.resume_command if execution else None,
            report=str(outcome.reports.get("html", "")),
            exit_code=s.exit_code,
        )
    else:
        out = RichTerminal(highlight=False, soft_wrap=True)  # paths stay whole, copyable
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(s.rows_by_outcome.items()))
        out.print(f"Rows: {s.rows_total} ({outcomes})")
        if execution is not None and execution.status is not RunStatus.COMPLETED and execution.resume_command:
            out.print(f"[yellow]{execution.message}[/]")
        out.print(f"Report: [bold]{outcome.reports.get('html')}[/]")
        out.print(f"Results: {outcome.reports.get('xlsx')}  {outcome.reports.get('csv')}  {outcome.reports.get('summary')}")
    if execution is not None and execution.status is RunStatus.INTERRUPTED:
        raise typer.Exit(max(s.exit_code, 1))
    raise typer.Exit(s.exit_code)


__all__ = ["apply", "report", "resume"]
