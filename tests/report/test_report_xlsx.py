"""results.xlsx: Summary and Results sheets, text phone cells, colours, filter, frozen header."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest
from report_samples import HOSTILE_USER, sample_rows, summary_for
from test_report_csv import EXPECTED_HEADER

from provision.report import write_xlsx
from provision.report.values import RowResult, RunSummary

FILLS = {
    "applied": "C6EFCE",
    "unchanged": "E7E6E6",
    "partial": "FFEB9C",
    "failed": "FFC7CE",
    "skipped": "BDD7EE",
    "invalid": "C00000",
}


@pytest.fixture
def book(tmp_path: Path, rows: list[RowResult], summary: RunSummary) -> openpyxl.Workbook:
    path = tmp_path / "results.xlsx"
    assert write_xlsx(rows, summary, path) == len(rows)
    return openpyxl.load_workbook(path)


def _col(ws: openpyxl.worksheet.worksheet.Worksheet, name: str) -> int:
    return [c.value for c in ws[1]].index(name) + 1


def test_results_sheet_has_header_and_one_row_per_roster_row(book: openpyxl.Workbook,
                                                              rows: list[RowResult]) -> None:
    assert book.sheetnames == ["Summary", "Results"]
    ws = book["Results"]
    assert [c.value for c in ws[1]] == EXPECTED_HEADER
    assert ws.max_row == len(rows) + 1
    assert [ws.cell(i + 2, 1).value for i in range(len(rows))] == [r.row for r in rows]
    assert ws.freeze_panes == "D2"
    assert ws.auto_filter.ref == f"A1:AD{len(rows) + 1}"
    assert ws.column_dimensions["C"].width >= 30  # user
    assert ws.column_dimensions["X"].width >= 50  # error_message


def test_phone_numbers_are_text_cells_and_never_formulas(book: openpyxl.Workbook) -> None:
    ws = book["Results"]
    desired = ws.cell(2, _col(ws, "mobile_desired"))
    assert desired.value == "+1 2065550100" and desired.data_type == "s"
    office = ws.cell(3, _col(ws, "office_before"))
    assert office.value == "+44 2079460958x12" and office.data_type == "s"
    phone_cols = [i + 1 for i, h in enumerate(EXPECTED_HEADER) if h.endswith(("_desired", "_before", "_after"))]
    seen = 0
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f", f"{cell.coordinate} is a formula: {cell.value!r}"
            if cell.column in phone_cols and cell.value is not None:
                assert cell.data_type == "s" and isinstance(cell.value, str)
                seen += 1
    assert seen >= 15


def test_free_text_injection_is_neutralised(book: openpyxl.Workbook) -> None:
    ws = book["Results"]
    assert ws.cell(5, _col(ws, "user")).value == "'" + HOSTILE_USER
    assert ws.cell(2, _col(ws, "Notes")).value == "'=HYPERLINK(\"x\",\"click\")"
    assert ws.cell(7, _col(ws, "Department")).value == "'+SUM(1,2)"
    assert ws.cell(7, _col(ws, "office_before")).value == "'=2+5"
    assert ws.cell(5, _col(ws, "error_message")).value.startswith("Phone number +1 2065550123")
    assert ws.cell(5, _col(ws, "http_status")).value == 409  # numbers stay numbers
    assert ws.cell(2, _col(ws, "verified")).value is True


def test_outcome_cells_carry_their_colour(book: openpyxl.Workbook, rows: list[RowResult]) -> None:
    ws = book["Results"]
    outcome_col = _col(ws, "outcome")
    seen: dict[str, str | None] = {}
    for i in range(2, len(rows) + 2):
        cell = ws.cell(i, outcome_col)
        rgb = cell.fill.fgColor.rgb if cell.fill.fill_type == "solid" else None
        seen[cell.value] = rgb[-6:] if rgb else None
    assert seen == {**FILLS, "planned": None}
    # Per-phone outcomes too.
    alt = ws.cell(4, _col(ws, "alternate_mobile_outcome"))
    assert alt.value == "failed" and alt.fill.fgColor.rgb.endswith(FILLS["failed"])
    invalid = ws.cell(7, outcome_col)
    assert invalid.font.color.rgb.endswith("FFFFFF")  # readable on dark red


def test_summary_sheet_holds_the_run_account(book: openpyxl.Workbook, summary: RunSummary) -> None:
    ws = book["Summary"]
    values = {row[0]: row[1:] for row in ws.iter_rows(values_only=True) if row and row[0] is not None}
    assert values["Job"][0] == "onboarding"
    assert values["Target"][0] == "sandbox"
    assert values["Started (UTC)"][0] == summary.started
    assert values["Duration (s)"][0] == 20.0
    assert values["Exit code"][:2] == (1, "some rows failed")
    assert values["Rows in roster"][0] == summary.rows_total
    assert values["Rows ok"][0] == summary.rows_ok == 3
    assert values["Rows failed"][0] == summary.rows_failed == 4
    assert values["failed"][0] == 3 and values["planned"][0] == 1 and values["invalid"][0] == 1
    assert values["create"][:2] == (5, 1)
    assert values["enable_sms"][:2] == (1, 0)
    assert values["Operations sent"][0] == 90
    assert values["Throttled (429)"][0] == 6
    # The outcome legend is coloured like the Results sheet.
    for row in ws.iter_rows():
        if row[0].value == "failed":
            assert row[0].fill.fgColor.rgb.endswith(FILLS["failed"])


def test_control_characters_and_huge_text_still_make_a_valid_workbook(tmp_path: Path) -> None:
    base = sample_rows()[2]
    nasty = replace(base, error_message="bad\x00byte\x1f" + "y" * 40_000)
    buf = io.BytesIO()
    write_xlsx([nasty], summary_for([nasty]), buf)
    ws = openpyxl.load_workbook(io.BytesIO(buf.getvalue()))["Results"]
    msg = ws.cell(2, _col(ws, "error_message")).value
    assert msg.startswith("bad\ufffdbyte\ufffd") and len(msg) == 32_767


@pytest.mark.slow
def test_twenty_thousand_rows_are_written_and_readable(tmp_path: Path) -> None:
    base = sample_rows()
    rows = [base[i % len(base)] for i in range(20_000)]
    path = tmp_path / "big.xlsx"
    write_xlsx(rows, summary_for(rows), path)
    # The Results sheet's XML holds the header plus one row per roster row, the last numbered 20001.
    with zipfile.ZipFile(path) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        xml = z.read(max(sheets, key=lambda n: z.getinfo(n).file_size))
    assert xml.count(b"<row ") == 20_001
    assert re.findall(rb'<row r="(\d+)"', xml[-20_000:])[-1] == b"20001"
    # openpyxl opens it and reads it back.
    wb = openpyxl.load_workbook(path, read_only=True)
    head = list(wb["Results"].iter_rows(min_row=1, max_row=3, values_only=True))
    assert list(head[0]) == EXPECTED_HEADER
    assert head[1][2] == rows[0].user and head[2][2] == rows[1].user
