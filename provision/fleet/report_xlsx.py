"""fleet.xlsx: a Tenants sheet (one row per tenant) and a Rows sheet (every row of every tenant).

The Rows sheet is the tenants' results.csv files stacked, each row led by its tenant's name
and id. Tenants' files may carry different passthrough columns, so the sheet's columns are
their union in first-seen order. The files are streamed twice (headers, then rows), so a
fleet of 100,000 rows never sits in memory. Cells follow results.xlsx: phone cells in Graph
form stay text, any other text is neutralised against formula injection (the results.csv
cells already are; doing it again changes nothing), numbers and booleans get their types back.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from provision.fleet.report_html import STATUS_COLOURS
from provision.report.layout import OUTCOME_COLOURS, Cell, build_layout, safe_text

__all__ = ["RESULTS_FILE", "tenant_results_csv", "write_fleet_xlsx"]

RESULTS_FILE = "results.csv"
_EXCEL_MAX_ROWS = 1_048_576
_MAX_CELL = 32_767
_BOLD = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_LEAD = ("tenant", "tenant_id")

_RESULT_LAYOUT = build_layout([]).columns
_PHONE_COLUMNS = frozenset(c.name for c in _RESULT_LAYOUT if c.kind == "phone")
_OUTCOME_COLUMNS = frozenset(c.name for c in _RESULT_LAYOUT if c.kind == "outcome")
_INT_COLUMNS = frozenset(c.name for c in _RESULT_LAYOUT if c.kind == "int")
_BOOL_COLUMNS = frozenset(c.name for c in _RESULT_LAYOUT if c.kind == "bool")
_WIDTHS = {c.name: c.width for c in _RESULT_LAYOUT}

_OUTCOME_FILLS = {o.value: PatternFill("solid", fgColor=rgb) for o, rgb in OUTCOME_COLOURS.items() if rgb}
_OUTCOME_FONTS = {"invalid": Font(color="FFFFFF", bold=True)}
_STATUS_FILLS = {s: PatternFill("solid", fgColor=rgb) for s, rgb in STATUS_COLOURS.items()}

_TENANT_HEADERS: tuple[tuple[str, int], ...] = (
    ("tenant", 28), ("tenant_id", 38), ("groups", 16), ("status", 13), ("exit_code", 10), ("message", 60),
    ("rows_total", 11), ("rows_ok", 10), ("rows_failed", 11), ("changes_planned", 15), ("changes_done", 13),
    ("writes_failed", 13), ("operations", 11), ("throttled", 10), ("duration_s", 11), ("attempts", 9),
    ("worker", 20), ("run_dir", 40), ("resume_command", 60),
)


def tenant_results_csv(fleet_dir: Path, tenant: Mapping[str, Any]) -> Path | None:
    """``tenants/<key>/results.csv`` when the tenant has one (a roster that could be read)."""
    key = tenant.get("key")
    if not isinstance(key, str) or not key or "/" in key or "\\" in key or key in (".", ".."):
        return None
    path = fleet_dir / "tenants" / key / RESULTS_FILE
    return path if path.is_file() else None


def _clean(value: str) -> str:
    # openpyxl refuses control characters that XML 1.0 can't carry; keep the rest of the text.
    text: str = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "\u2026"


def _text_cell(value: str) -> Cell:
    return _clean(safe_text(value))


def _phone_cell(value: str) -> Cell:
    return _clean(safe_text(value, phone=True))


def _int_cell(value: str) -> Cell:
    return int(value) if value.isascii() and value.isdigit() else _text_cell(value)


def _bool_cell(value: str) -> Cell:
    if value in ("true", "false"):
        return value == "true"
    return _text_cell(value)


def _outcome_cells(ws: WriteOnlyWorksheet) -> dict[str, WriteOnlyCell]:
    """One styled cell per outcome, appended again and again.

    A write-only sheet serialises a row's cells as it appends the row, placing each cell at
    its column then, so one cell object can stand in every row; building and styling a
    fresh cell per row (style lookups by hash) cost about a tenth of a large sheet's time.
    """
    cells: dict[str, WriteOnlyCell] = {}
    for value, fill in _OUTCOME_FILLS.items():
        cell = WriteOnlyCell(ws, value=value)
        cell.fill = fill
        if value in _OUTCOME_FONTS:
            cell.font = _OUTCOME_FONTS[value]
        cells[value] = cell
    return cells


def _converter(styled: Mapping[str, WriteOnlyCell], name: str) -> Callable[[str], Cell | WriteOnlyCell]:
    if name in _PHONE_COLUMNS:
        return _phone_cell
    if name in _INT_COLUMNS:
        return _int_cell
    if name in _BOOL_COLUMNS:
        return _bool_cell
    if name in _OUTCOME_COLUMNS:
        def outcome(value: str) -> Cell | WriteOnlyCell:
            return styled.get(value) or _text_cell(value)
        return outcome
    return _text_cell


def _open_csv(path: Path) -> Iterator[list[str]]:
    """The file's records; a file that breaks off (unreadable, a malformed record) ends there,
    so one damaged tenant file costs its own rows, never the fleet's report."""
    # results.csv starts with a BOM (for Excel); utf-8-sig drops it.
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
            yield from csv.reader(fh)
    except (OSError, csv.Error):
        return


def _header(path: Path) -> list[str]:
    return next(_open_csv(path), [])


def _union(headers: Sequence[list[str]]) -> dict[str, str]:
    """Every column of every file, first seen first, as {file's name: sheet's name}. A name
    clashing with the leading tenant columns (ignoring case) becomes ``extra_<name>``, as
    passthrough columns clashing with the fixed ones do."""
    taken = {h.casefold() for h in _LEAD}
    out: dict[str, str] = {}
    for header in headers:
        for name in header:
            if name in out:
                continue
            renamed = name
            while renamed.casefold() in taken:
                renamed = f"extra_{renamed}"
            out[name] = renamed
            if renamed != name:
                taken.add(renamed.casefold())
    return out


def _styled_header(ws: WriteOnlyWorksheet, names: Sequence[str]) -> list[WriteOnlyCell]:
    cells = []
    for name in names:
        cell = WriteOnlyCell(ws, value=_text_cell(name))
        cell.font, cell.fill = _BOLD, _HEADER_FILL
        cells.append(cell)
    return cells


def _write_tenants(ws: WriteOnlyWorksheet, tenants: Sequence[Mapping[str, Any]]) -> None:
    for i, (_, width) in enumerate(_TENANT_HEADERS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "B2"
    ws.append(_styled_header(ws, [h for h, _ in _TENANT_HEADERS]))
    for t in tenants:
        status = WriteOnlyCell(ws, value=_text_cell(str(t["status"])))
        if t["status"] in _STATUS_FILLS:
            status.fill = _STATUS_FILLS[t["status"]]
        ws.append([
            _text_cell(str(t["name"])), _text_cell(str(t["tenant_id"])), _text_cell(";".join(t["groups"])),
            status, t["exit_code"], _text_cell(str(t["message"] or "")) or None,
            t["rows_total"], t["rows_ok"], t["rows_failed"],
            sum(t["changes"].values()), sum(t["changes_done"].values()), t["writes_failed"],
            t["operations"], t["throttled"], t["duration_s"], t["attempts"],
            _text_cell(str(t.get("worker") or "")) or None,
            _text_cell(str(t.get("run_dir") or "")) or None,
            _text_cell(str(t.get("resume_command") or "")) or None,
        ])
    ws.auto_filter.ref = f"A1:{get_column_letter(len(_TENANT_HEADERS))}{len(tenants) + 1}"


class _RowsSheets:
    """The Rows sheet, continued on "Rows 2", "Rows 3"... past Excel's row limit."""

    def __init__(self, wb: Workbook, columns: list[str], max_rows: int) -> None:
        self._wb, self._columns, self._max_rows = wb, columns, max_rows
        self._count = 0
        self.ws = self._new("Rows")
        self.written = 0

    def _new(self, title: str) -> WriteOnlyWorksheet:
        ws: WriteOnlyWorksheet = self._wb.create_sheet(title)
        names = [*_LEAD, *self._columns]
        for i, name in enumerate(names, start=1):
            ws.column_dimensions[get_column_letter(i)].width = _WIDTHS.get(name, 24 if i <= 2 else 14)
        ws.freeze_panes = "C2"
        ws.append(_styled_header(ws, names))
        self._count = 1
        return ws

    def append(self, values: list[Cell | WriteOnlyCell]) -> None:
        if self._count >= self._max_rows:
            self._finish()
            self.ws = self._new(f"Rows {len(self._wb.worksheets)}")
        self.ws.append(values)
        self._count += 1
        self.written += 1

    def _finish(self) -> None:
        last = get_column_letter(len(_LEAD) + len(self._columns))
        self.ws.auto_filter.ref = f"A1:{last}{self._count}"

    def close(self) -> None:
        self._finish()


def write_fleet_xlsx(dest: IO[bytes], tenants: Sequence[Mapping[str, Any]], fleet_dir: Path, *,
                     max_rows: int = _EXCEL_MAX_ROWS) -> int:
    """Write fleet.xlsx to ``dest``; ``tenants`` are fleet_summary.json's entries, in their order.

    Returns the number of rows in the Rows sheet(s); a sheet holds ``max_rows`` with its header.
    """
    wb = Workbook(write_only=True)
    _write_tenants(wb.create_sheet("Tenants"), tenants)
    files = [(t, p) for t in tenants if (p := tenant_results_csv(fleet_dir, t)) is not None]
    headers = [_header(p) for _, p in files]
    names = _union(headers)
    columns = list(names.values())
    index = {name: i for i, name in enumerate(columns, start=len(_LEAD))}
    sheets = _RowsSheets(wb, columns, max_rows)
    styled = _outcome_cells(sheets.ws)
    width = len(_LEAD) + len(columns)
    for (tenant, path), header in zip(files, headers):
        convert = [_converter(styled, name) for name in header]
        places = [index[names[name]] for name in header]
        lead: list[Cell | WriteOnlyCell] = [_text_cell(str(tenant["name"])), _text_cell(str(tenant["tenant_id"]))]
        rows = _open_csv(path)
        next(rows, None)
        for record in rows:
            values: list[Cell | WriteOnlyCell] = [*lead, *([None] * (width - 2))]
            for cell, place, conv in zip(record, places, convert):
                if cell:
                    values[place] = conv(cell)
            sheets.append(values)
    sheets.close()
    wb.save(dest)
    return sheets.written
