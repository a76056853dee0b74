"""`provision doctor JOB`: is the job ready to run? A checklist, each failure with its fix.

The checks themselves are ``provision.run.doctor``'s; this renders them: a table on stdout
(rich), or one JSON ``result`` event per check (``event_kind`` ``doctor_check``) and a last
one (``doctor``) with the exit code under ``--log-format json``. Exit 0 when nothing
failed (warnings allowed), 4 for a credential or permission problem, 5 when the target
did not answer, 2 when the job file doesn't load. Doctor only reads: one phone-method read
and one SMS policy read, never a write.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console as RichTerminal
from rich.markup import escape
from rich.table import Table

from provision.cli.output import JsonConsole, LogFormat, console_for, exits_on_error
from provision.errors import ExitCode
from provision.masking import mask_in_text

# What each exit code means for doctor (the general table speaks of runs).
_MEANINGS = {
    ExitCode.USAGE: "the job file doesn't load",
    ExitCode.AUTH: "a credential or permission problem",
    ExitCode.STOPPED: "the target did not answer",
}
_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]", "skip": "[dim]skip[/]"}


def doctor(
    job_file: Annotated[Path, typer.Argument(metavar="JOB", help="Job file (TOML)")],
    plan_only: Annotated[
        bool,
        typer.Option("--plan-only", help="The job only runs plan (read-only): a missing write permission is a warning"),
    ] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Check a job's sign-in, permissions, reads and clock (no writes).

    Checks the job file, signs in, lists the token's permissions against what the job needs,
    reads one user's phone methods and the SMS policy, and compares the target's clock with
    this machine's. Never writes. Exit 0 ready (warnings allowed), 4 a credential or
    permission problem, 5 the target did not answer, 2 the job file doesn't load.
    """
    from provision.run.doctor import diagnose, exit_code

    console = console_for(log_format)
    with exits_on_error(console):
        checks = asyncio.run(diagnose(job_file, plan_only=plan_only))
    code = exit_code(checks)
    counts = Counter(c.status.value for c in checks)
    if isinstance(console, JsonConsole):
        for check in checks:
            console.result(
                event_kind="doctor_check", check=check.name, status=check.status.value, detail=check.detail, fix=check.fix or None
            )
        console.result(event_kind="doctor", exit_code=int(code), **{s: counts.get(s, 0) for s in _STYLE})
    else:
        stdout = RichTerminal(highlight=False)
        # A grid: on a narrow terminal the detail column wraps between words, the rest stays whole.
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for check in checks:
            text = escape(mask_in_text(check.detail))
            if check.fix and check.status.value in ("fail", "warn"):
                text += f"\n[bold]fix:[/] {escape(mask_in_text(check.fix))}"
            grid.add_row(_STYLE[check.status.value], escape(check.name), text)
        stdout.print(grid)
        verdict = "ready" if code == 0 else f"not ready (exit {int(code)}: {_MEANINGS.get(code, code.meaning)})"
        stdout.print(
            f"{counts.get('ok', 0)} ok, {counts.get('warn', 0)} warnings, {counts.get('fail', 0)} failed: {verdict}"
        )
    raise typer.Exit(int(code))
