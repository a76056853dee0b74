"""`provision export JOB`: users' live phone methods written as a roster (read-only).

The file holds the numbers in full (it is the admin's data, like a roster; created 0600);
the console shows counts and user names only, every line through ``mask_in_text``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console as RichTerminal
from rich.markup import escape

from provision.cli.output import JsonConsole, LogFormat, RichConsole, console_for, exits_on_error, for_people
from provision.errors import ExitCode
from provision.masking import mask_in_text

_SHOWN = 20  # user names listed per group on the console


def export(
    job_file: Annotated[Path, typer.Argument(metavar="JOB", help="Job file (TOML): its target, and by default its roster's users")],
    out: Annotated[Path, typer.Option("--out", help="Export file to write: .csv or .xlsx (numbers in full, mode 0600)")],
    users: Annotated[Path | None, typer.Option("--users", help="Export the users listed in this roster-like file (a user column)")] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Export every user of the tenant (needs User.Read.All)")] = False,
    snapshot: Annotated[Path | None, typer.Option("--snapshot", help="Also write a sandbox snapshot (.json) of the same users and phones")] = None,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")] = LogFormat.AUTO,
) -> None:
    """Write users' live phones as a roster (no writes).

    Reads users' phone methods and SMS sign-in state. Users whose numbers read masked are
    written with note=masked and no numbers; users the tenant doesn't know are left out
    and listed. Needs read permissions only.
    """
    from provision.run.export import ExportOptions, check_options, export_job
    from provision.run.jobs import load_job

    console: JsonConsole | RichConsole = console_for(log_format)
    with exits_on_error(console):
        options = ExportOptions(out=out, users_file=users, all_users=all_users, snapshot=snapshot)
        check_options(options)
        job = load_job(job_file)
        if isinstance(console, RichConsole):
            with console.live():
                result = asyncio.run(export_job(job, options, console=console))
        else:
            result = asyncio.run(export_job(job, options, console=console))
    summary = export_summary(result)
    if isinstance(console, JsonConsole):
        console.result(event_kind="export", **summary)
    else:
        render_export_summary(for_people(), summary)
    raise typer.Exit(ExitCode.ROWS_FAILED if result.failed else ExitCode.OK)


def export_summary(result: Any) -> dict[str, Any]:
    """The result as plain data (user names and counts; no phone numbers)."""
    return {
        "target": result.target,
        "users": result.users,
        "phones": result.phones,
        "masked": len(result.masked),
        "masked_users": list(result.masked[:_SHOWN]),
        "not_found": len(result.not_found),
        "not_found_users": list(result.not_found[:_SHOWN]),
        "failed": len(result.failed),
        "failed_users": [f"{user} ({why})" for user, why in result.failed[:_SHOWN]],
        "invalid_user_cells": len(result.invalid),
        "export_file": str(result.out),
        "snapshot_file": str(result.snapshot) if result.snapshot else None,
        "snapshot_users": result.snapshot_users,
        "remarks": list(result.remarks),
    }


def _names(names: list[str], total: int) -> str:
    more = total - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def render_export_summary(out: RichTerminal, s: dict[str, Any]) -> None:
    def line(text: str, style: str = "") -> None:
        text = escape(mask_in_text(text))
        out.print(f"[{style}]{text}[/]" if style else text)

    phones = s["phones"]
    line(f"Exported {s['users']} user(s) from {s['target']}: {phones['mobile']} mobile, "
         f"{phones['alternate_mobile']} alternate mobile, {phones['office']} office number(s)")
    if s["masked"]:
        line(f"{s['masked']} user(s) read masked, written with note=masked and no numbers: "
             f"{_names(s['masked_users'], s['masked'])}", "yellow")
    if s["not_found"]:
        line(f"{s['not_found']} user(s) not found in the tenant, left out: {_names(s['not_found_users'], s['not_found'])}", "yellow")
    if s["failed"]:
        line(f"{s['failed']} user(s) could not be read, left out: {_names(s['failed_users'], s['failed'])}", "red")
    if s["invalid_user_cells"]:
        line(f"{s['invalid_user_cells']} cell(s) of the users file name no user (not a UPN or object id), skipped", "yellow")
    for remark in s["remarks"]:
        line(remark, "yellow")
    out.print(f"Export written to [bold]{escape(s['export_file'])}[/] (numbers in full: keep it like a roster)")
    if s["snapshot_file"]:
        out.print(f"Snapshot of {s['snapshot_users']} user(s) written to [bold]{escape(s['snapshot_file'])}[/]")
