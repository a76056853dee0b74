"""Unreadable rosters are RosterReadError (a usage error: exit 2), never another exception.

Every hostile file (``hostile_rosters``: truncated and flipped workbooks, damaged members,
random bytes, other zips, encrypted and legacy workbooks, undecodable text, NUL bytes, a
10 MB cell, 5,000 columns) either reads as a roster or raises RosterReadError whose one
line names the file and holds no number from it.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from roster.hostile_rosters import NUMBERS, hostile_rosters, roster_rows
from support.roster_writers import write_csv, write_xlsx

from provision.errors import RosterReadError, UsageError
from provision.model import PhoneType, RowStatus
from provision.roster.files import MAX_CELL_CHARS, MAX_COLUMNS
from provision.roster.reader import read_roster


def leaked(text: str) -> list[str]:
    digits = re.sub(r"\D", "", text)
    return [n for n in NUMBERS if n[-7:] in digits]


def read_error(path: Path) -> str:
    with pytest.raises(RosterReadError) as caught:
        read_roster(path, workers=0)
    message = str(caught.value)
    assert path.name in message and "\n" not in message, message
    assert not leaked(message), message
    return message


def test_every_hostile_file_reads_or_is_a_roster_read_error(tmp_path: Path) -> None:
    files = hostile_rosters(tmp_path)
    unreadable: dict[str, int] = {}
    for hostile in files:
        try:
            roster = read_roster(hostile.path, workers=0)
        except RosterReadError as exc:  # anything else fails the test with its traceback
            message = str(exc)
            assert hostile.path.name in message and "\n" not in message, message
            assert not leaked(message), message
            unreadable[hostile.kind] = unreadable.get(hostile.kind, 0) + 1
        else:  # a flip in a part the reader doesn't use: still a roster, its rows accounted for
            assert hostile.kind in {"flipped", "damaged member"}, hostile
            assert len(roster.rows) <= len(roster_rows()) - 1
    by_kind: dict[str, int] = {}
    for hostile in files:
        by_kind[hostile.kind] = by_kind.get(hostile.kind, 0) + 1
    assert unreadable["truncated"] == by_kind["truncated"] == 60  # a cut zip has no central directory
    assert unreadable["flipped"] >= 20 and unreadable["damaged member"] >= 10
    for kind in ("random bytes", "other zip", "encrypted", "legacy", "NUL bytes", "undecodable", "huge cell", "wide"):
        assert unreadable[kind] == by_kind[kind], kind


def test_the_reason_says_what_is_wrong(tmp_path: Path) -> None:
    files = {h.path.name: h.path for h in hostile_rosters(tmp_path, truncations=1, flips=0)}
    assert "damaged or truncated" in read_error(files["truncated0.xlsx"])
    assert "not a valid Excel workbook" in read_error(files["random.xlsx"])
    assert "binary file" in read_error(files["random.csv"])
    assert "a part is missing" in read_error(files["not_a_workbook.xlsx"])
    assert "password-protected" in read_error(files["protected.xlsx"])
    assert "legacy .xls" in read_error(files["legacy.xls"])
    assert "NUL bytes" in read_error(files["nul.csv"])
    assert "does not decode as utf-16" in read_error(files["utf16.csv"])
    assert "does not decode as utf-8" in read_error(files["utf8.csv"])
    assert f"at row 2: a cell is longer than Excel's limit of {MAX_CELL_CHARS:,} characters" in read_error(files["huge_cell.csv"])
    assert "at row 2" in read_error(files["unclosed.csv"])  # the quote opened there swallowed the rest
    assert f"has 5,000 columns; a roster may have at most {MAX_COLUMNS:,}" in read_error(files["wide.csv"])


def rewrite_member(path: Path, name: str, old: bytes, new: bytes) -> Path:
    with zipfile.ZipFile(path) as z:
        members = {member: z.read(member) for member in z.namelist()}
    assert old in members[name]
    members[name] = members[name].replace(old, new)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for member, data in members.items():
            z.writestr(member, data)
    return path


def test_a_huge_cell_in_a_workbook_names_its_row_and_size(tmp_path: Path) -> None:
    # openpyxl (like Excel) won't write a cell past 32,767 characters: the XML is edited.
    path = write_xlsx(tmp_path / "huge.xlsx", {"Staff": [*roster_rows()[:3], ["ann@contoso.com", "+1 2065550100", "HUGE"]]})
    rewrite_member(path, "xl/worksheets/sheet1.xml", b">HUGE<", b">" + b"A" * 10_000_000 + b"<")
    assert "at row 4: a cell holds 10,000,000 characters, past Excel's limit of 32,767" in read_error(path)


def test_a_workbook_damaged_after_its_header_fails_half_way_as_a_read_error(tmp_path: Path) -> None:
    # The sheet's XML is cut after some rows: the reader has streamed rows before it sees it.
    cut = write_xlsx(tmp_path / "cut.xlsx", {"Staff": roster_rows()})
    with zipfile.ZipFile(cut) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    at = sheet.index(b'<row r="30"')
    rewrite_member(cut, "xl/worksheets/sheet1.xml", sheet[at:], b'<row r="30"><c')
    assert "not a readable Excel workbook" in read_error(cut)


def test_thousands_of_blank_header_cells_are_not_columns(tmp_path: Path) -> None:
    # A header row formatted across the sheet, or trailing delimiters: blank, so not refused.
    path = write_csv(tmp_path / "r.csv", [["upn", "mobile", *[""] * 5_000], ["ann@contoso.com", "+1 2065550100"]])
    roster = read_roster(path, workers=0)
    assert [r.status for r in roster.rows] == [RowStatus.OK] and roster.extra_columns == ()


def test_nul_bytes_past_the_sniffed_start_are_a_row_problem_not_a_crash(tmp_path: Path) -> None:
    rows = [["upn", "mobile"], *([f"user{i}@contoso.com", "+1 2065550100"] for i in range(3_000))]
    path = write_csv(tmp_path / "r.csv", [*rows, ["zed@contoso.com", "+1 206\x00555 0100"]])
    roster = read_roster(path, workers=0)
    assert roster.rows[-1].status is RowStatus.ERROR and len(roster.rows) == 3_001


def test_a_headerless_file_lists_a_few_masked_cells_in_one_line(tmp_path: Path) -> None:
    # No header row: the first data row is taken as one, and has neither user nor phone column.
    path = write_csv(tmp_path / "r.csv", [[f"{i}", f"+1 {NUMBERS[i]}"] for i in range(30)])
    message = read_error(path)
    assert message.startswith("r.csv: the roster has no user column")
    wide = write_csv(tmp_path / "w.csv", [[f"name {i} " + "x" * 100 for i in range(900)], ["a", "b"]])
    message = read_error(wide)
    assert "and 885 more" in message and len(message) < 1_200


def test_an_empty_or_header_only_roster_reads_as_no_rows(tmp_path: Path) -> None:
    # Not unreadable: the safety check (min_roster_rows) is what refuses it.
    roster = read_roster(write_csv(tmp_path / "h.csv", [["upn", "mobile"]]), workers=0)
    assert roster.rows == () and dict(roster.users) == {}
    with pytest.raises(RosterReadError, match="no header row"):
        read_roster(write_csv(tmp_path / "e.csv", []), workers=0)
    assert isinstance(RosterReadError("x"), UsageError)


def test_a_workbook_with_5000_columns_is_refused(tmp_path: Path) -> None:
    header = ["upn", "mobile", *(f"c{i}" for i in range(4_998))]
    path = write_xlsx(tmp_path / "wide.xlsx", {"Staff": [header, ["ann@contoso.com", "+1 2065550100"]]})
    assert f"the header (row 1) has 5,000 columns; a roster may have at most {MAX_COLUMNS:,}" in read_error(path)


def test_an_unclosed_quote_deep_in_a_big_file_names_its_row_with_workers_running(tmp_path: Path) -> None:
    # Past the first chunk, so worker processes are normalising when the damage shows.
    rows = [["upn", "mobile"], *([f"user{i}@contoso.com", f"+1 206 555 {i % 10_000:04d}"] for i in range(50_000))]
    path = write_csv(tmp_path / "big.csv", rows)
    text = path.read_text(encoding="utf-8").replace("user29999@contoso.com,", 'user29999@contoso.com,"', 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RosterReadError, match="big.csv can't be read at row 30,001: a cell is longer than"):
        read_roster(path, workers=2)


def test_a_ragged_row_deep_in_a_big_file_is_reported_and_every_row_is_kept(tmp_path: Path) -> None:
    # The fast parser has handed over whole blocks by the time it meets the ragged row: the
    # rows before it stand, and the rest of the file is read the tolerant way, in order.
    rows = [["upn", "mobile"], *([f"user{i}@contoso.com", f"+1 206 555 {i % 10_000:04d}"] for i in range(60_000))]
    rows[45_001].append("stray")  # spreadsheet row 45,002
    rows[52_001] = rows[52_001][:1]  # row 52,002: no mobile cell at all
    roster = read_roster(write_csv(tmp_path / "big.csv", rows), workers=0)
    assert [r.row for r in roster.rows] == list(range(2, 60_002))
    assert [(i.row, i.code) for i in roster.issues if i.code != "duplicate_mobile"] == [(45_002, "extra_cells")]
    assert roster.rows[45_000].status is RowStatus.ERROR and roster.rows[52_000].phones[PhoneType.MOBILE] is None
    assert len(roster.users) == 59_999
