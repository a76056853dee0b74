"""`provision fleet plan|apply|resume|report`: one job across many tenants, on Dask.

Each tenant is an ordinary run in its own run directory under the fleet run directory;
the work is ``provision.fleet.pipeline``; this module parses options, asks, draws one line
per finished tenant and the verdict, and exits with the merged report's code (the worst
tenant's). Heavy modules (Dask, msgraph) are imported inside the commands, so that
``--help`` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from provision.cli.output import JsonConsole, LogFormat, RichConsole, console_for, exits_on_error, for_people
from provision.errors import UsageError, exit_meaning
from provision.masking import mask_in_text

if TYPE_CHECKING:
    from provision.fleet.config import Fleet
    from provision.fleet.pipeline import FleetOptions, FleetOutcome
    from provision.fleet.rundir import FleetDir

app = typer.Typer(
    help="Run one job across many tenants (MSP fleets), on Dask.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

AnyConsole = JsonConsole | RichConsole

_Cluster = Annotated[
    str | None,
    typer.Option("--cluster", metavar="ADDRESS", help="A Dask scheduler address (tcp://HOST:8786); default: the fleet file's, "
                 "PROVISION_CLUSTER, else an embedded cluster on this machine"),
]
_Only = Annotated[list[str] | None, typer.Option("--only", metavar="TENANT", help="Only this tenant (id or key); repeatable")]
_Group = Annotated[list[str] | None, typer.Option("--group", metavar="GROUP", help="Only tenants in this group (replaces the fleet file's groups); repeatable")]
_Format = Annotated[LogFormat, typer.Option("--log-format", help="auto: rich on a terminal, JSON lines otherwise")]
_FleetFile = Annotated[Path, typer.Argument(metavar="FLEET", help="Fleet file (TOML)")]
_FleetDirArg = Annotated[Path, typer.Argument(metavar="FLEET_DIR", help="The fleet run directory `provision fleet apply` printed")]


@app.command("plan")
def plan(fleet_file: _FleetFile, cluster: _Cluster = None, only: _Only = None, group: _Group = None,
         log_format: _Format = LogFormat.AUTO) -> None:
    """Plan every tenant against its live state (no writes).

    Each tenant's plan goes to tenants/<key>/plan.json. Exit code: the worst tenant's
    (6 when changes are pending and nothing worse happened).
    """
    from provision.fleet.pipeline import plan_fleet

    console = console_for(log_format)
    with exits_on_error(console):
        outcome = plan_fleet(fleet_file, _options(console, cluster, only, group))
    _finish(console, outcome)


@app.command("apply")
def apply(fleet_file: _FleetFile, cluster: _Cluster = None, only: _Only = None, group: _Group = None,
          yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask for confirmation (required without a terminal)")] = False,
          log_format: _Format = LogFormat.AUTO) -> None:
    """Apply the job to every tenant of the fleet.

    Each tenant plans against live state and applies, journals and reports as `provision
    apply` does, in tenants/<key>/run under the fleet run directory. A failing tenant never
    stops the others. Asks once before any tenant runs (--yes: not asked).
    """
    from provision.fleet.pipeline import apply_fleet

    console = console_for(log_format)
    options = _options(console, cluster, only, group)
    options = _with_confirm(options, console, yes)
    with exits_on_error(console):
        outcome = apply_fleet(fleet_file, options)
    _finish(console, outcome)


@app.command("resume")
def resume(fleet_dir: _FleetDirArg, cluster: _Cluster = None, log_format: _Format = LogFormat.AUTO) -> None:
    """Finish the tenants of a fleet run that stopped.

    A tenant's started run is resumed from its journal (nothing is sent twice); finished
    tenants are left as they are. The merged reports are written again.
    """
    from provision.fleet.pipeline import resume_fleet

    console = console_for(log_format)
    with exits_on_error(console):
        outcome = resume_fleet(fleet_dir, _options(console, cluster, None, None))
    _finish(console, outcome)


@app.command("report")
def report(fleet_dir: _FleetDirArg, log_format: _Format = LogFormat.AUTO) -> None:
    """Re-render a fleet run's merged reports.

    Writes fleet_summary.json, fleet.xlsx and report.html again from the tenants' results.
    """
    from provision.fleet.pipeline import report_fleet

    console = console_for(log_format)
    with exits_on_error(console):
        outcome = report_fleet(fleet_dir)
    _finish(console, outcome)


def _options(console: AnyConsole, cluster: str | None, only: list[str] | None, group: list[str] | None) -> FleetOptions:
    from provision.fleet.pipeline import FleetOptions

    def on_start(fleet_dir: FleetDir, executor: str) -> None:
        console.note("info", f"fleet directory: {fleet_dir.path}", fleet_dir=str(fleet_dir.path))
        console.note("info", executor, executor=executor)

    return FleetOptions(cluster=cluster, only=tuple(only or ()), groups=tuple(group or ()), on_start=on_start,
                        on_result=lambda result: _tenant_line(console, result))


def _with_confirm(options: FleetOptions, console: AnyConsole, yes: bool) -> FleetOptions:
    from dataclasses import replace

    def confirm(fleet: Fleet) -> bool:
        _show_fleet(console, fleet)
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("refusing to write without confirmation: not on a terminal; review with "
                             "`provision fleet plan`, then re-run with --yes")
        try:
            return typer.confirm(f"Apply the job to {len(fleet.tenants)} tenants?")
        except typer.Abort:
            return False

    return replace(options, confirm=confirm)


def _show_fleet(console: AnyConsole, fleet: Fleet) -> None:
    bad = [t for t in fleet.tenants if t.job is None]
    if isinstance(console, JsonConsole):
        console.result(event_kind="fleet", fleet=fleet.name, tenants=len(fleet.tenants), bad_input=len(bad),
                       excluded=len(fleet.excluded), cluster=fleet.cluster() or "embedded")
        return
    out = for_people()
    out.print(f"Fleet [bold]{escape(fleet.name)}[/]: {len(fleet.tenants)} tenants"
              + (f", {len(fleet.excluded)} left out" if fleet.excluded else ""))
    for spec in bad:
        out.print(f"[yellow]  {escape(spec.tenant_id)}: {escape(mask_in_text(spec.problem or ''))}[/]")


def _tenant_line(console: AnyConsole, r: dict[str, Any]) -> None:
    changes = sum(int(v) for v in (r.get("changes") or {}).values())
    done = sum(int(v) for v in (r.get("changes_done") or {}).values())
    if isinstance(console, JsonConsole):
        console.result(
            event_kind="tenant", tenant_id=r.get("tenant_id"), name=r.get("name"), status=r.get("status"),
            exit_code=r.get("exit_code"), rows_total=r.get("rows_total"), rows_ok=r.get("rows_ok"),
            rows_failed=r.get("rows_failed"), changes=changes, changes_done=done, throttled=r.get("throttled"),
            attempts=r.get("attempts"), duration_s=r.get("duration_s"), message=r.get("message") or "",
        )
        return
    style = {"ok": "green", "drift": "cyan", "rows_failed": "yellow", "quarantined": "yellow"}.get(str(r.get("status")), "red")
    text = (f"{r.get('status')}: {r.get('name')} ({r.get('tenant_id')}): {r.get('rows_total', 0)} rows "
            f"({r.get('rows_ok', 0)} ok, {r.get('rows_failed', 0)} failed), "
            + (f"{changes} changes pending, " if r.get("action") == "plan" else f"changes {done}/{changes} done, ")
            + f"{float(r.get('duration_s') or 0):.1f} s")
    if r.get("message"):
        text += f"; {r['message']}"
    console.terminal.print(f"[{style}]{escape(mask_in_text(text))}[/]")


def _finish(console: AnyConsole, outcome: FleetOutcome) -> None:
    report = outcome.report
    code = int(report.exit_code)
    by_status = ", ".join(f"{n} {s}" for s, n in report.tenants_by_status.items())
    summary, xlsx, html = (str(p) for p in report.paths)
    resume = any(r.get("status") in ("stopped", "lost") for r in outcome.results)
    resume_command = f"provision fleet resume {outcome.fleet_dir.path}" if resume else None
    if isinstance(console, JsonConsole):
        console.result(
            event_kind="fleet_run", fleet_dir=str(outcome.fleet_dir.path), tenants=len(outcome.results),
            tenants_by_status=dict(report.tenants_by_status), rows_total=report.rows_total, report=html,
            summary=summary, xlsx=xlsx, resume=resume_command, exit_code=code,
        )
    else:
        out = for_people()
        out.print(f"Tenants: {len(outcome.results)} ({escape(by_status)}); rows: {report.rows_total}")
        if resume_command:
            out.print(f"[yellow]Some tenants did not finish: {escape(resume_command)}[/]")
        out.print(f"Exit code {code}: {escape(exit_meaning(code))}")
        out.print(f"Report: [bold]{escape(html)}[/]")
        out.print(f"Summary: {escape(summary)}")
        out.print(f"Workbook: {escape(xlsx)}")
    raise typer.Exit(code)


__all__ = ["app"]
