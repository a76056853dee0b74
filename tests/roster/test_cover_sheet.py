"""A workbook whose first sheet is a cover page: the roster is the sheet with a roster header."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.roster_writers import write_xlsx

from provision.errors import RosterReadError
from provision.model import PhoneType
from provision.roster.reader import read_roster

COVER = [["HR extract, March"], [], ["Prepared by", "People Ops"], ["Rows", 2]]
STAFF = [["UPN", "Mobile"], ["ann@contoso.com", "+44 7911 123456"], ["ben@contoso.com", 447911123457]]
CONTRACTORS = [["Email", "Mobile Phone"], ["cy@contoso.com", "+1 206 555 0100"]]


def test_the_one_sheet_with_a_roster_header_is_read(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "r.xlsx", {"Cover": COVER, "Empty": [], "Staff": STAFF, "Notes": [["free text"]]})
    roster = read_roster(path)
    assert roster.sheet == "Staff"
    assert [r.row for r in roster.rows] == [2, 3]
    assert roster.users["ben@contoso.com"].phones == {PhoneType.MOBILE: "+44 7911123457"}  # number cell, + recovered
    assert {i.sheet for i in roster.issues} <= {"Staff"}


def test_several_roster_sheets_are_named_with_how_to_pick_one(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "r.xlsx", {"Cover": COVER, "Staff": STAFF, "Contractors": CONTRACTORS})
    with pytest.raises(RosterReadError) as caught:
        read_roster(path)
    message = str(caught.value)
    assert message.startswith("r.xlsx [sheet Cover]: the roster has no user column")
    assert "sheets 'Staff', 'Contractors' hold a user and a phone column; pick one with --sheet" in message
    assert read_roster(path, sheet="Contractors").users["cy@contoso.com"].phones == {PhoneType.MOBILE: "+1 2065550100"}


def test_a_named_sheet_is_never_swapped_and_no_roster_sheet_is_said(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "r.xlsx", {"Cover": COVER, "Staff": STAFF})
    with pytest.raises(RosterReadError, match=r"r.xlsx \[sheet Cover\]: the roster has no user column"):
        read_roster(path, sheet="Cover")
    lonely = write_xlsx(tmp_path / "c.xlsx", {"Cover": COVER, "Notes": [["free text"]]})
    with pytest.raises(RosterReadError, match="no other sheet holds a user and a phone column either"):
        read_roster(lonely)


def test_a_formula_on_another_sheet_leaves_the_roster_sheet_on_the_fast_path(tmp_path: Path) -> None:
    # A summary sheet of formulas beside the roster is common; only the sheet read decides
    # whether the roster goes through openpyxl's (much slower) formula mode.
    from provision.roster.files import _has_formulas

    path = write_xlsx(tmp_path / "r.xlsx", {"Staff": STAFF, "Summary": [["Staff", "=COUNTA(Staff!A:A)-1"]]})
    assert _has_formulas(path, "Summary")
    assert not _has_formulas(path, "Staff")
    roster = read_roster(path, sheet="Staff")
    assert [r.row for r in roster.rows] == [2, 3] and not roster.issues
    formulas = write_xlsx(tmp_path / "f.xlsx", {"Staff": [*STAFF, ["cy@contoso.com", "=A2"]]})
    assert _has_formulas(formulas, "Staff")
