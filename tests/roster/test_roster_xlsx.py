"""read_roster on Excel workbooks: numbers, text, formulas, sheets, row numbers."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from support.roster_writers import write_xlsx

from provision.errors import RosterReadError
from provision.model import PhoneType, RowStatus
from provision.roster.reader import read_roster

M, A, O = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE

HEADER = ["UPN", "Mobile", "Office", "Country", "SMS", "Employee"]


def workbook(tmp_path: Path) -> Path:
    rows = [
        None,  # row 1 left empty: the header is on row 2
        HEADER,
        ["int@contoso.com", 2065550100, None, "US", True, 1001],  # 3 number cell, bool cell
        ["float@contoso.com", 442079460958.0, None, "GB", None, 1002.0],  # 4 float with its + lost
        ["text@contoso.com", "+44 20 7946 0959", "020 7946 0958 ext 12", "GB", "no", "A-1"],  # 5 text cells
        ["formula@contoso.com", '="+1 206"&"5550103"', "=2065550104", "US", None, None],  # 6 cached values
        [None, None, None, None, None, None],  # 7 blank
        ["nocache@contoso.com", "=B3", None, "US", None, None],  # 8 formula never calculated
        ["ambiguous@contoso.com", 2015550123, None, "US", None, None],  # 9 US or +20? the mobile column says US
        ["sci@contoso.com", "2.06555E+09", None, "US", None, None],  # 10 digits already lost
    ]
    return write_xlsx(
        tmp_path / "roster.xlsx",
        {"Staff": [r if r is not None else [] for r in rows], "Other": [["UPN", "Office"], ["x@contoso.com", "+1 2065550199"]]},
        cached={"B6": "+1 2065550103", "C6": 2065550104},
    )


def test_numbers_text_and_formula_cells(tmp_path: Path) -> None:
    roster = read_roster(workbook(tmp_path))

    assert roster.sheet == "Staff"
    assert [r.row for r in roster.rows] == [3, 4, 5, 6, 8, 9, 10] and roster.blank_rows == 1
    users = roster.users
    assert users["int@contoso.com"].phones == {M: "+1 2065550100", O: None}  # never 2065550100.0
    assert users["int@contoso.com"].sms_sign_in is True
    assert users["float@contoso.com"].phones[M] == "+44 2079460958"  # + recovered
    assert users["text@contoso.com"].phones == {M: "+44 2079460959", O: "+44 2079460958x12"}
    assert users["text@contoso.com"].sms_sign_in is False
    assert users["formula@contoso.com"].phones == {M: "+1 2065550103", O: "+1 2065550104"}
    assert users["ambiguous@contoso.com"].phones[M] == "+1 2015550123"
    # Passthrough numbers read as their digits too.
    assert [r.extra["Employee"] for r in roster.rows[:3]] == ["1001", "1002", "A-1"]

    found = {(i.row, i.column, i.code) for i in roster.issues}
    assert found == {
        (4, "Mobile", "fixed_line_in_mobile_slot"),
        (5, "Mobile", "fixed_line_in_mobile_slot"),
        (8, "Mobile", "formula_without_value"),
        (10, "Mobile", "scientific_notation"),
    }
    assert {i.sheet for i in roster.issues} == {"Staff"}
    assert {r.row: r.status for r in roster.rows}[8] is RowStatus.ERROR
    assert "nocache@contoso.com" not in roster.users and "sci@contoso.com" not in roster.users


def test_sheet_by_name_or_index(tmp_path: Path) -> None:
    path = workbook(tmp_path)
    for sheet in ("Other", "other", 1, "1"):
        roster = read_roster(path, sheet=sheet)
        assert roster.sheet == "Other"
        assert roster.users["x@contoso.com"].phones == {O: "+1 2065550199"}
    with pytest.raises(RosterReadError, match="no sheet 'Payroll'; sheets: 'Staff', 'Other'"):
        read_roster(path, sheet="Payroll")
    with pytest.raises(RosterReadError, match="no sheet number 5"):
        read_roster(path, sheet=5)


def test_a_workbook_is_read_as_one_whatever_its_extension(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "export.csv", {"Sheet": [["UPN", "Mobile"], ["a@contoso.com", 447911123456]]})
    roster = read_roster(path, default_region="GB")
    assert roster.users["a@contoso.com"].phones == {M: "+44 7911123456"}


def test_empty_sheet_is_unreadable(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "empty.xlsx", {"Sheet": []})
    with pytest.raises(RosterReadError, match="no header row"):
        read_roster(path)


def test_a_workbook_without_formulas_reads_the_same_cells(tmp_path: Path) -> None:
    # No formula anywhere: the values are converted column by column, not row by row.
    rows = [
        [],  # the header is on row 2
        HEADER,
        ["int@contoso.com", 2065550100, None, "US", True, dt.date(2024, 5, 1)],  # 3
        ["  Float@Contoso.com ", 442079460958.0, "  020 7946 0958 ", "GB", False, 1002.0],  # 4
        [None, None, None, None, None, None],  # 5 blank
        ["wide@contoso.com", "+1 206 555 0101", None, "US", None, None, "note"],  # 6 a cell past the header's names
        ["sci@contoso.com", "2.06555E+09", None, "US", "maybe", None],  # 7
    ]
    roster = read_roster(write_xlsx(tmp_path / "values.xlsx", {"Staff": rows}))

    assert [r.row for r in roster.rows] == [3, 4, 6, 7] and roster.blank_rows == 1
    users = roster.users
    assert users["int@contoso.com"].phones == {M: "+1 2065550100", O: None}
    assert users["int@contoso.com"].sms_sign_in is True
    assert users["float@contoso.com"].phones == {M: "+44 2079460958", O: "+44 2079460958"}
    assert users["float@contoso.com"].user == "Float@Contoso.com" and users["float@contoso.com"].sms_sign_in is False
    assert [r.extra["Employee"] for r in roster.rows[:2]] == ["2024-05-01", "1002"]
    assert roster.extra_columns == ("Employee", "column 7") and roster.rows[2].extra["column 7"] == "note"
    found = {(i.row, i.column, i.code) for i in roster.issues}
    assert found == {
        (4, "Mobile", "fixed_line_in_mobile_slot"),
        (7, "Mobile", "scientific_notation"),
        (7, "SMS", "invalid_sms_sign_in"),
    }
    assert [r.status for r in roster.rows] == [RowStatus.OK, RowStatus.WARNING, RowStatus.OK, RowStatus.ERROR]


def test_dates_times_and_odd_numbers_read_as_their_cells_say(tmp_path: Path) -> None:
    rows = [
        ["UPN", "Mobile", "Country", "Started", "Shift", "Badge", "Note"],
        ["a@contoso.com", 2065550100, "US", dt.date(2024, 5, 1), dt.time(10, 5), 1e20, "NA"],
        ["b@contoso.com", 2065550101.0, "US", dt.datetime(2024, 3, 1, 12, 30), dt.timedelta(hours=5), 2.5, "null"],
        ["c@contoso.com", "+1 206 555 0102", "US", dt.datetime(2024, 3, 2), None, -7, False],
    ]
    roster = read_roster(write_xlsx(tmp_path / "r.xlsx", {"Staff": rows}))

    assert [r.extra for r in roster.rows] == [
        {"Started": "2024-05-01", "Shift": "10:05:00", "Badge": "1e+20", "Note": "NA"},
        {"Started": "2024-03-01T12:30:00", "Shift": "5:00:00", "Badge": "2.5", "Note": "null"},
        {"Started": "2024-03-02", "Shift": "", "Badge": "-7", "Note": "false"},
    ]
    assert [roster.users[u].phones[M] for u in ("a@contoso.com", "b@contoso.com")] == ["+1 2065550100", "+1 2065550101"]


def test_a_workbook_of_many_batches_keeps_every_row_and_its_number_cells(tmp_path: Path) -> None:
    # 21,000 rows: read in several batches. Every 250 rows, two number cells that lost
    # their + (valid only as number cells) sit next to the same digits typed as text (too
    # long for GB): a number cell's mark landing on the wrong row would show on both. One
    # cell past the header's names, in a later batch, lands on its own row.
    import openpyxl

    def mobile(i: int) -> object:
        return {0: 33612345678, 249: 33612345678, 1: "33612345678", 248: "33612345678"}.get(i % 250, "+33 6 12 34 56 78")

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Staff")
    sheet.append(["UPN", "Mobile", "Country"])
    for i in range(21_000):
        if i == 20_500:
            sheet.append([])
        else:
            sheet.append([f"user{i}@contoso.com", mobile(i), "GB", "stray" if i == 16_000 else None])
    path = tmp_path / "big.xlsx"
    book.save(path)

    roster = read_roster(path, workers=0)

    assert [r.row for r in roster.rows] == [i + 2 for i in range(21_000) if i != 20_500] and roster.blank_rows == 1
    assert {r.row - 2 for r in roster.rows if r.phones[M] == "+33 612345678"} == {
        i for i in range(21_000) if i % 250 not in (1, 248) and i != 20_500
    }
    too_long = {i.row - 2 for i in roster.issues if i.code == "too_long"}
    assert too_long == {i for i in range(21_000) if i % 250 in (1, 248)}
    assert {i.code for i in roster.issues} == {"too_long", "duplicate_mobile"}
    assert {r.row: r.extra for r in roster.rows if any(r.extra.values())} == {16_002: {"column 4": "stray"}}


def test_a_workbook_is_read_without_loading_pandas(tmp_path: Path) -> None:
    # calamine reads workbooks directly: a command given a workbook never pays pandas'
    # import (~0.25 s of CPU and ~85 MB per process).
    path = write_xlsx(tmp_path / "r.xlsx", {"Staff": [["UPN", "Mobile"], ["a@contoso.com", 2065550100]]})
    probe = (
        "import sys\nfrom provision.roster.reader import read_roster\n"
        f"roster = read_roster({str(path)!r}, default_region='US')\n"
        "print(list(roster.users['a@contoso.com'].phones.values()) == ['+1 2065550100'], 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["True", "False"]  # read, and pandas never imported
