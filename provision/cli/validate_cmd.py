"""`provision validate ROSTER`: check a roster without touching any tenant.

Prints a summary (rows read, valid, warnings, errors, top reasons) and the first row
problems, every line through ``masking.mask_in_text`` like the other commands' output
(paths, headers and reasons can hold numbers); ``--out`` writes the per-row report as CSV,
whose phone columns hold the normalised Graph form and whose other text cells are
neutralised against formula injection by results.csv's rule (``report.layout.safe_text``).
Exit 0 when no row has an error, 1 when some do, 2 when the roster (or the job file) can't
be read at all. A roster without data rows (a header-only extract) exits 0 with a warning
saying that ``plan`` and ``apply`` will refuse it.

``--job`` takes the roster's path, sheet, default region and column mapping from a job
file; ``--region``/``--sheet`` and each ``--column FIELD=HEADER`` win over it, so a header
the recogniser doesn't know can be named without writing a job file.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Mapping

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provision.cli.output import PlainConsole, exits_on_error, for_people
from provision.errors import ExitCode, UsageError
from provision.masking import mask_in_text
from provision.model import (
    RowIssue,
    RowStatus,
    Severity,
)
from provision.private_files import open_private
from provision.roster.reader import Roster, read_roster

SHOWN_ISSUES = 20
TOP_REASONS = 8
EMPTY_ROSTER_WARNING = (
    "warning: the roster has no data rows (a header-only extract?); plan and apply refuse it "
    "(safety threshold min_roster_rows) unless forced"
)


def _masked(text: str) -> str:
    """Text for a rich markup line: numbers masked, markup characters escaped."""
    return escape(mask_in_text(text))


@dataclass(frozen=True, slots=True)
class RosterSettings:
    """What the job file says about the roster (only what validate needs)."""

    path: Path | None = None
    sheet: str | int | None = None
    default_region: str | None = None
    columns: Mapping[str, str] | None = None


def parse_columns(items: list[str] | None) -> dict[str, str]:
    """``--column FIELD=HEADER`` options as a mapping; an unknown field or a missing ``=`` is a UsageError."""
    from provision.roster.columns import FIELDS

    columns: dict[str, str] = {}
    for item in items or ():
        name, sep, header = item.partition("=")
        name, header = name.strip().lower(), header.strip()
        if not sep or not header:
            raise UsageError(f'--column {item!r}: give FIELD=HEADER, e.g. --column user="Work Email"')
        if name not in FIELDS:
            raise UsageError(f"--column {item!r}: unknown field {name!r}; fields are {', '.join(FIELDS)}")
        columns[name] = header
    return columns


def roster_settings(job: Path | None) -> RosterSettings:
    if job is None:
        return RosterSettings()
    from provision.run.jobs import load_job  # pydantic: only when a job file is given

    roster = load_job(job).roster
    return RosterSettings(roster.path, roster.sheet, roster.default_region, dict(roster.columns) or None)


def validate(
    roster: Annotated[
        Path | None, typer.Argument(metavar="ROSTER", help="Roster file (.csv/.tsv/.txt/.xlsx/.xlsm); default: the job's roster.path")
    ] = None,
    job: Annotated[Path | None, typer.Option("--job", help="Job file (TOML): its [roster] table is used")] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Region (ISO 3166, e.g. US) for numbers without +country code")
    ] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Excel sheet name (or 0-based index)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the per-row report to this CSV file")] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            metavar="FIELD=HEADER",
            help="Read FIELD (user, mobile, alternate_mobile, office, region, sms_sign_in) from the column HEADER; "
            "repeatable; wins over the job's [roster.columns]",
        ),
    ] = None,
) -> None:
    """Check a roster file and report every row's problems."""
    console = for_people()
    with exits_on_error(PlainConsole(console)):
        mapped = parse_columns(column)
        settings = roster_settings(job)
        path = roster or settings.path
        if path is None:
            raise UsageError("give a ROSTER file, or a --job whose [roster] has a path")
        result = read_roster(
            path,
            columns={**(settings.columns or {}), **mapped} or None,
            default_region=region or settings.default_region,
            sheet=sheet if sheet is not None else settings.sheet,
        )
    _summary(console, result)
    if not result.rows:
        console.print(f"[yellow]{_masked(EMPTY_ROSTER_WARNING)}[/yellow]")
    if out is not None:
        write_report(result, out)
        console.print(mask_in_text(f"per-row report: {out}"), markup=False)
    raise typer.Exit(ExitCode.ROWS_FAILED if result.count(RowStatus.ERROR) else ExitCode.OK)


def _summary(console: Console, roster: Roster) -> None:
    counts = roster.status_counts()
    where = f"{roster.path}" + (f" [sheet {roster.sheet}]" if roster.sheet else "")
    console.print(mask_in_text(f"roster: {where}"), markup=False)
    mapped = ", ".join(f"{field}={header!r}" for field, header in roster.columns.items())
    console.print(mask_in_text(f"columns: {mapped}"), markup=False)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("rows read", f"{len(roster.rows):,}")
    table.add_row("valid", f"{counts[RowStatus.OK]:,}")
    table.add_row("warnings", f"{counts[RowStatus.WARNING]:,}")
    table.add_row("errors", f"[red]{counts[RowStatus.ERROR]:,}[/red]" if counts[RowStatus.ERROR] else "0")
    table.add_row("blank rows", f"{roster.blank_rows:,}")
    table.add_row("users", f"{len(roster.users):,}")
    console.print(table, soft_wrap=False)  # a table lays itself out to the width
    if not roster.issues:
        return
    reasons = Table(title="top reasons", title_justify="left")
    reasons.add_column("count", justify="right")
    reasons.add_column("severity")
    reasons.add_column("code")
    reasons.add_column("example")
    examples: dict[tuple[Severity, str], RowIssue] = {}
    counts_by_kind: Counter[tuple[Severity, str]] = Counter()
    for issue in roster.issues:
        examples.setdefault((issue.severity, issue.code), issue)
        counts_by_kind[(issue.severity, issue.code)] += 1
    for (severity, code), count in counts_by_kind.most_common(TOP_REASONS):
        reasons.add_row(f"{count:,}", severity.value, code, _masked(examples[(severity, code)].reason))
    console.print(reasons, soft_wrap=False)
    shown = Table(title=f"first {min(SHOWN_ISSUES, len(roster.issues))} of {len(roster.issues):,} problems", title_justify="left")
    for name in ("row", "column", "severity", "reason"):
        shown.add_column(name)
    for issue in roster.issues[:SHOWN_ISSUES]:
        shown.add_row(str(issue.row), _masked(issue.column or ""), issue.severity.value, _masked(issue.reason))
    console.print(shown, soft_wrap=False)


def write_report(roster: Roster, out: Path) -> None:
    """The per-row CSV (``roster.frame.validation_table``): row, user, the three phones in Graph
    form, status, problems, passthrough.

    Every text cell (headers included: passthrough names come from the roster) goes
    through results.csv's formula-injection rule; phone cells in Graph form stay usable.
    """
    from provision.report.layout import safe_column, safe_text  # the one rule, shared with results.csv/.xlsx
    from provision.roster.frame import validation_table

    header, columns = validation_table(roster)
    phone_columns = {2, 3, 4}  # mobile, alternate_mobile, office
    safe = [columns[0], *(safe_column(c, phone=i in phone_columns) for i, c in enumerate(columns) if i)]  # type: ignore[arg-type]  # text past ``row``
    with open_private(out, newline="") as f:  # 0600: the table holds every number
        writer = csv.writer(f)
        writer.writerow([safe_text(h) for h in header])
        writer.writerows(zip(*safe))
