"""The plan summary admins read before saying yes: counts, reasons, safety. No numbers."""

from __future__ import annotations

from typing import Any

from rich.console import Console as RichTerminal
from rich.table import Table

from provision.model import ChangeKind

KINDS = tuple(ChangeKind)


def render_plan_summary(terminal: RichTerminal, summary: dict[str, Any]) -> None:
    terminal.print(
        f"[bold]{summary['job']}[/] → {summary['target']}  (mode [bold]{summary['mode']}[/], "
        f"SMS sign-in [bold]{summary['sms_sign_in']}[/])"
    )
    terminal.print(
        f"Roster: {summary['rows']} rows: {summary['rows_ok']} ok, {summary['rows_warning']} with warnings, "
        f"[{'red' if summary['rows_error'] else 'default'}]{summary['rows_error']} with errors[/]"
        + (f", {summary['blank_rows']} blank" if summary["blank_rows"] else "")
    )
    for title, reasons in (("Row errors", summary["row_problems"]), ("Row warnings", summary["row_warnings"])):
        if reasons:
            terminal.print(f"  {title}: " + ", ".join(f"{code} ×{n}" for code, n in reasons.items()))

    table = Table(title=f"Planned changes: {summary['changes']}", title_justify="left")
    table.add_column("phone type")
    for kind in KINDS:
        table.add_column(kind.value, justify="right")
    for ptype, counts in summary["changes_by_phone_type"].items():
        table.add_row(ptype, *(str(counts.get(k.value, 0) or "") for k in KINDS))
    table.add_row("[bold]total[/]", *(f"[bold]{summary['changes_by_kind'][k.value] or ''}[/]" for k in KINDS))
    terminal.print(table, soft_wrap=False)  # a table lays itself out to the width

    outcomes = summary["users_by_outcome"]
    terminal.print(
        f"Users: {summary['users']}: {outcomes['change']} to change, {outcomes['noop']} already right, "
        f"{outcomes['skip']} skipped, {outcomes['error']} with errors"
    )
    for title, reasons in (("Errors", summary["top_errors"]), ("Warnings", summary["top_warnings"])):
        if reasons:
            terminal.print(f"  {title}: " + ", ".join(f"{code} ×{n}" for code, n in reasons.items()))
    if summary["safety"] == "ok":
        terminal.print("Safety: [green]within every threshold[/]")
    else:
        terminal.print(f"Safety: [bold red]over threshold[/]: {summary['safety']}")
