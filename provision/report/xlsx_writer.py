"""results.xlsx: a Summary sheet and a Results sheet (one row per roster row).

Written in openpyxl's write-only mode, so 100,000 rows stream out without holding a
worksheet in memory. Every text cell is a string cell (phone numbers included: ``+1
2065550100`` must never become a number or a formula); free text is neutralised by
``provision.report.layout``. RowOutcome cells are filled with the outcome's colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from provision.errors import exit_meaning
from provision.model import RowOutcome
from provision.report.layout import (
    OUTCOME_COLOURS,
    Cell,
    Layout,
    build_layout,
    row_values,
    safe_text,
)
from provision.report.sinks import binary_sink
from provision.report.values import RowResult, RunSummary
from provision.report.wording import CHANGE_KIND_LABELS, OUTCOME_WORDS, ending_sentence, ordered_kinds

__all__ = ["write_xlsx"]

_MAX_CELL = 32_767  # Excel's limit on characters in a cell
_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def _fills() -> dict[str, tuple[PatternFill | None, Font | None]]:
    styles: dict[str, tuple[PatternFill | None, Font | None]] = {}
    for outcome, rgb in OUTCOME_COLOURS.items():
        fill = PatternFill("solid", fgColor=rgb) if rgb else None
        # Dark red needs white text to stay readable.
        font = Font(color="FFFFFF", bold=True) if outcome is RowOutcome.INVALID else None
        styles[outcome.value] = (fill, font)
    return styles


_OUTCOME_STYLE = _fills()


def _clean(value: Cell) -> Cell:
    # openpyxl refuses control characters that XML 1.0 can't carry; keep the rest of the text.
    if not isinstance(value, str):
        return value
    text: str = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "\u2026"


def _styled(ws: WriteOnlyWorksheet, value: Cell, *, outcome: str | None = None, font: Font | None = None,
            fill: PatternFill | None = None) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=_clean(value))
    if outcome is not None and outcome in _OUTCOME_STYLE:
        o_fill, o_font = _OUTCOME_STYLE[outcome]
        fill = fill or o_fill
        font = font or o_font
    if fill is not None:
        cell.fill = fill
    if font is not None:
        cell.font = font
    return cell


def _write_summary(ws: WriteOnlyWorksheet, summary: RunSummary) -> None:
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 44
    ws.column_dimensions["C"].width = 14
    ws.column_dimensions["D"].width = 36

    def label_row(label: str, *values: Cell) -> None:
        ws.append([_styled(ws, label, font=_BOLD), *[_clean(safe_text(v) if isinstance(v, str) else v)
                                                      for v in values]])

    def heading(*labels: str) -> None:
        ws.append([_styled(ws, h, font=_BOLD, fill=_HEADER_FILL) for h in labels])

    ws.append([_styled(ws, "Phone provisioning run", font=_TITLE)])
    ws.append([])
    label_row("Job", summary.job)
    label_row("Target", summary.target)
    label_row("Mode", summary.mode)
    label_row("Run directory", summary.run_dir)
    label_row("Started (UTC)", summary.started)
    label_row("Finished (UTC)", summary.finished)
    label_row("Duration (s)", round(float(summary.duration_s), 3))
    label_row("Exit code", summary.exit_code, exit_meaning(summary.exit_code))
    # An unfinished run says so first, so unreached rows don't read as a partial success.
    label_row("Status", summary.status.value, ending_sentence(summary) or "every change was tried")
    if summary.resume_command:
        label_row("Resume with", summary.resume_command)
    ws.append([])
    heading("Rows", "Count")
    label_row("Rows in roster", summary.rows_total)
    label_row("Rows ok", summary.rows_ok)
    label_row("Rows failed", summary.rows_failed)
    if summary.rows_not_reached:
        label_row("Rows not reached", summary.rows_not_reached)
    ws.append([])
    heading("RowOutcome", "Rows", "", "Meaning")
    for o in RowOutcome:
        ws.append([
            _styled(ws, o.value, outcome=o.value),
            int(summary.rows_by_outcome.get(o.value, 0)),
            None,
            OUTCOME_WORDS[o],
        ])
    ws.append([])
    heading("Change", "Planned", "Done", "Meaning")
    for kind in ordered_kinds(summary.changes, summary.changes_done):
        ws.append([
            _styled(ws, safe_text(kind), font=_BOLD),
            int(summary.changes.get(kind, 0)),
            int(summary.changes_done.get(kind, 0)),
            CHANGE_KIND_LABELS.get(kind, ""),
        ])
    ws.append([])
    heading("Graph traffic", "Count")
    label_row("Operations sent", summary.operations)
    label_row("Throttled (429)", summary.throttled)


def _write_results(ws: WriteOnlyWorksheet, rows: Sequence[RowResult], layout: Layout) -> None:
    # Write-only sheets take widths, freeze panes and the filter range before any row.
    for i, col in enumerate(layout.columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = col.width
    ws.freeze_panes = "D2"  # header row and the row/sheet/user columns stay visible
    last = get_column_letter(len(layout.columns))
    ws.auto_filter.ref = f"A1:{last}{len(rows) + 1}"

    ws.append([_styled(ws, h, font=_BOLD, fill=_HEADER_FILL) for h in layout.headers])
    outcome_at = [i for i, c in enumerate(layout.columns) if c.kind == "outcome"]
    for r in rows:
        values: list[Cell | WriteOnlyCell] = [_clean(v) for v in row_values(r, layout)]
        for i in outcome_at:
            v = values[i]
            if isinstance(v, str) and v in _OUTCOME_STYLE:
                values[i] = _styled(ws, v, outcome=v)
        ws.append(values)


def write_xlsx(rows: Sequence[RowResult], summary: RunSummary, dest: str | Path | BinaryIO | IO[bytes]) -> int:
    """Write results.xlsx to a path or a binary stream; returns the number of result rows."""
    wb = Workbook(write_only=True)
    _write_summary(wb.create_sheet("Summary"), summary)
    _write_results(wb.create_sheet("Results"), rows, build_layout(rows))
    with binary_sink(dest) as fh:
        wb.save(fh)
    return len(rows)
