"""`provision plan JOB`: what would change, written to a reviewable plan file. Never writes to the tenant.

``--check`` makes it a drift check for monitoring: exit 0 when nothing would change, 6
(``ExitCode.DRIFT``) when changes are pending; the plan file is written only with ``--out``.
Refusals and failures keep their usual codes (2, 3, 4, 5).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from provision.cli.output import JsonConsole, LogFormat, RichConsole, console_for, exits_on_error, for_people
from provision.errors import ExitCode


def plan(
    job_file: Annotated[Path, typer.Argument(metavar="JOB", help="Job file (TOML)")],
    roster: Annotated[Path | None, typer.Option("--roster", help="Use this roster instead of the job's roster.path")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Plan file to write (default: <output dir>/<job>-<UTC time>-plan.json)")] = None,
    check: Annotated[bool, typer.Option("--check", help="Drift check: exit 0 if nothing would change, 6 if changes are pending; writes the plan only with --out")] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Plan the changes and write the plan file (no writes).

    Reads the roster and every roster user's current phones, prints the summary and writes
    the reviewable plan file; the tenant is never written to.
    """
    from provision.cli.plan_summary import render_plan_summary
    from provision.run.jobs import load_job
    from provision.run.pipeline import check_ending, check_job, load_job_roster, plan_job, plan_summary
    from provision.run.plan_stage import save_plan

    console: JsonConsole | RichConsole = console_for(log_format)
    with exits_on_error(console):
        job = load_job(job_file)
        console.stage("reading roster")
        roster_data = load_job_roster(job, roster, command="plan --check" if check else None, console=console)
        planner = check_job if check else plan_job  # --check: [notify] hears how it ended
        if isinstance(console, RichConsole):
            with console.live():
                planned = asyncio.run(planner(job, roster_data, console=console))
        else:
            planned = asyncio.run(planner(job, roster_data, console=console))
        path = out if check else out or job.output.directory / f"{job.name}-{planned.created:%Y%m%dT%H%M%SZ}-plan.json"
        if path is not None:
            save_plan(planned, path)
    summary = plan_summary(planned)
    drift = bool(planned.plan.changes)
    if isinstance(console, JsonConsole):
        extra = {"drift": drift} if check else {}
        console.result(event_kind="check" if check else "plan", **summary, **extra, plan_file=str(path) if path else None)
    else:
        stdout = for_people()
        render_plan_summary(stdout, summary)
        if check:
            stdout.print(f"Drift: {summary['changes']} changes pending" if drift else "No drift: nothing would change")
        if path is not None:
            stdout.print(f"Plan written to [bold]{escape(str(path))}[/] (checksum {planned.checksum[:12]})")
    if check:
        raise typer.Exit(check_ending(planned))
    if not planned.plan.safety.ok:
        raise typer.Exit(ExitCode.REFUSED)
    failed = summary["rows_error"] or summary["users_by_outcome"]["error"]
    raise typer.Exit(ExitCode.ROWS_FAILED if failed else ExitCode.OK)
