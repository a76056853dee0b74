"""`provision plan JOB`: what would change, written to a reviewable plan file. Never writes to the tenant."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console as RichTerminal

from provision.cli.output import JsonConsole, LogFormat, RichConsole, console_for, exits_on_error
from provision.errors import ExitCode


def plan(
    job_file: Annotated[Path, typer.Argument(metavar="JOB", help="Job file (TOML)")],
    roster: Annotated[Path | None, typer.Option("--roster", help="Use this roster instead of the job's roster.path")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Plan file to write (default: <output dir>/<job>-<UTC time>-plan.json)")] = None,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Read the roster and the users' current phones, and write the plan of changes (no writes)."""
    from provision.cli.plan_summary import plan_summary, render_plan_summary
    from provision.run.jobs import load_job
    from provision.run.pipeline import load_job_roster, plan_job
    from provision.run.plan_stage import save_plan

    console: JsonConsole | RichConsole = console_for(log_format)
    with exits_on_error(console):
        job = load_job(job_file)
        console.stage("reading roster")
        roster_data = load_job_roster(job, roster)
        if isinstance(console, RichConsole):
            with console.live():
                planned = asyncio.run(plan_job(job, roster_data, console=console))
        else:
            planned = asyncio.run(plan_job(job, roster_data, console=console))
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
