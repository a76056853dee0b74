"""The reader's column-wise inputs: DataFrames, CSV through pyarrow (falling back per file to
the tolerant parser), workbooks through calamine with cell types kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from support.roster_writers import write_csv, write_xlsx

from provision.model import PhoneType, RowStatus
from provision.roster.files import FRAME_PATH
from provision.roster.reader import Roster, read_roster

M, O = PhoneType.MOBILE, PhoneType.OFFICE


def outcome(roster: Roster) -> tuple[object, ...]:
    return (roster.columns, roster.extra_columns, roster.rows, roster.users, roster.issues, roster.blank_rows)


def test_a_dataframe_reads_like_a_sheet_with_its_header_on_row_1(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "UPN": ["ann@contoso.com", "ben@contoso.com", None, "cy@contoso.com", "dee@contoso.com"],
            "Mobile": [447911123456, np.nan, np.nan, 2416633373, 7911123457],  # numbers: + (or the 0) lost
            "Office": ["+1 206 555 0100", None, None, pd.NA, ""],
            "Country": ["GB", "US", None, "GB", "GB"],
            "Employee": [1001, 1002, 1003, 1004, 1005],
        }
    )
    roster = read_roster(frame)

    assert roster.path == FRAME_PATH and roster.sheet is None
    assert roster.columns == {"user": "UPN", "mobile": "Mobile", "office": "Office", "region": "Country"}
    assert [r.row for r in roster.rows] == [2, 3, 4, 5, 6]
    assert roster.users["ann@contoso.com"].phones == {M: "+44 7911123456", O: "+1 2065550100"}
    assert roster.users["ben@contoso.com"].phones == {M: None, O: None}  # NaN/None/NA are blank
    assert roster.users["cy@contoso.com"].phones[M] == "+241 6633373"  # a number cell, resolved by its column
    assert roster.users["dee@contoso.com"].phones[M] == "+44 7911123457"  # its leading 0 lost
    assert [r.extra["Employee"] for r in roster.rows] == ["1001", "1002", "1003", "1004", "1005"]
    assert {(i.row, i.code) for i in roster.issues} == {(4, "missing_user")}
    # The same cells as text in a CSV: the same roster, bar the number cells' lost +.
    as_text = frame.astype("string").fillna("")
    as_text.loc[0, "Mobile"] = "+447911123456"
    as_text.loc[3, "Mobile"] = "+241 6633373"
    as_text.loc[4, "Mobile"] = "07911123457"
    csv_roster = read_roster(write_csv(tmp_path / "r.csv", [list(frame.columns), *as_text.values.tolist()]))
    assert outcome(csv_roster) == outcome(roster)


def test_a_malformed_csv_reads_the_tolerant_way_with_every_bad_row_numbered(tmp_path: Path) -> None:
    rows = [["UPN", "Mobile", "Office"]]
    rows += [[f"user{i}@contoso.com", f"+1 206 555 {i % 10_000:04d}", ""] for i in range(3_000)]
    clean = write_csv(tmp_path / "clean.csv", rows)
    text = clean.read_text(encoding="utf-8").splitlines(keepends=True)
    text[100] = text[100].rstrip("\r\n") + ",stray\r\n"  # row 101: a cell past the header
    text[2_000] = "user1999@contoso.com\r\n"  # row 2,001: short, its phones blank
    text.insert(2_500, "\r\n")  # a blank line: the rows after it are one further down
    broken = tmp_path / "broken.csv"
    broken.write_text("".join(text), encoding="utf-8", newline="")

    fast, tolerant = read_roster(clean, workers=0), read_roster(broken, workers=0)
    assert len(fast.rows) == len(tolerant.rows) == 3_000 and tolerant.blank_rows == 1
    assert fast.issues == () and fast.rows[-1].row == 3_001
    assert {(i.row, i.code) for i in tolerant.issues} == {(101, "extra_cells")}
    assert tolerant.rows[-1].row == 3_002
    assert next(r for r in tolerant.rows if r.row == 2_001).phones == {M: None, O: None}
    assert {r.row: r.status for r in tolerant.rows}[101] is RowStatus.ERROR


def test_quoted_newlines_and_spaces_read_the_same_on_both_paths(tmp_path: Path) -> None:
    body = 'UPN,Mobile,Note\r\n a@contoso.com ,"+1 206 555 0100","two\r\nlines"\r\nb@contoso.com,  +1 206 555 0101  ,x\r\n'
    fast = tmp_path / "fast.csv"
    fast.write_text(body, encoding="utf-8", newline="")
    tolerant = tmp_path / "tolerant.csv"
    tolerant.write_text("\r\n" + body, encoding="utf-8", newline="")  # a blank line first
    a, b = read_roster(fast), read_roster(tolerant)
    assert [r.row for r in a.rows] == [2, 3] and [r.row for r in b.rows] == [3, 4]
    assert [(r.user, r.phones, r.extra) for r in a.rows] == [(r.user, r.phones, r.extra) for r in b.rows]
    assert a.rows[0].extra == {"Note": "two\r\nlines"} and a.users["a@contoso.com"].phones[M] == "+1 2065550100"


def test_workbook_cells_keep_their_types(tmp_path: Path) -> None:
    rows = [
        ["UPN", "Mobile", "Office", "Country", "Started"],
        ["ann@contoso.com", 7911123456, "020 7946 0958", "GB", pd.Timestamp("2024-03-01").to_pydatetime()],
        ["ben@contoso.com", "7911123457", 2079460959.0, "GB", None],
    ]
    roster = read_roster(write_xlsx(tmp_path / "r.xlsx", {"Staff": rows}))
    assert roster.users["ann@contoso.com"].phones == {M: "+44 7911123456", O: "+44 2079460958"}
    assert roster.users["ben@contoso.com"].phones == {M: "+44 7911123457", O: "+44 2079460959"}
    assert roster.rows[0].extra == {"Started": "2024-03-01"}  # a date cell, as a date
