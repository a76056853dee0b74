"""`provision plan JOB`: what would change, written to a reviewable plan file. Never writes to the tenant."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console as RichTerminal

from provision.cli.output import (
    JsonConsole,
    LogFormat,
    RichConsole,
    exits_on_error,
    use_json,
)
from provision.cli.plan_summary import plan_summary, render_plan_summary
from provision.errors import ExitCode
from provision.run.jobs import load_job
from provision.run.planning import (
    PlannedRun,
    load_roster,
    make_plan,
    save_plan,
    utc_now,
)
from provision.run.targets import open_target


def plan(
    job_file: Annotated[Path, typer.Argument(metavar="JOB", help="Job file (TOML)")],
    roster: Annotated[Path | None, typer.Option("--roster", help="Use this roster instead of the job's roster.path")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Plan file to write (default: <output dir>/<job>-<UTC time>-plan.json)")] = None,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Read the roster and the users' current phones, and write the plan of changes (no writes)."""
    console: JsonConsole | RichConsole = JsonConsole() if use_json(log_format) else RichConsole()
    with exits_on_error(console):
        job = load_job(job_file)
        console.stage("reading roster")
        planned = _plan(job, roster, console)
        path = out or job.output.directory / f"{job.name}-{planned.created:%Y%m%dT%H%M%SZ}-plan.json"
        save_plan(planned, path)
    summary = plan_summary(planned)
    if isinstance(console, JsonConsole):
        console.result(event_kind="plan", **summary, plan_file=str(path))
    else:
        stdout = RichTerminal(highlight=False, soft_wrap=True)  # paths stay whole, copyable
        render_plan_summary(stdout, summary)
        stdout.print(f"Plan written to [bold]{path}[/] (checksum {planned.checksum[:12]})")
    if not planned.plan.safety.ok:
        raise typer.Exit(ExitCode.REFUSED)
    failed = summary["rows_error"] or summary["users_by_outcome"]["error"]
    raise typer.Exit(ExitCode.ROWS_FAILED if failed else ExitCode.OK)


def _plan(job, roster_path: Path | None, console: JsonConsole | RichConsole) -> PlannedRun:  # type: ignore[no-untyped-def]
    roster = load_roster(job, roster_path)

    async def run() -> PlannedRun:
        async with open_target(job) as target:
            return await make_plan(job, target, roster=roster, console=console, clock=utc_now)

    if isinstance(console, RichConsole):
        with console.live():
            return asyncio.run(run())
    return asyncio.run(run())
