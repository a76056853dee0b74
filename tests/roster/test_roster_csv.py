"""read_roster on delimited text: encodings, delimiters, columns, and every row's fate."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.roster_writers import write_csv

from provision.errors import RosterReadError, UsageError
from provision.model import PhoneType, RowStatus, Severity
from provision.roster.reader import Roster, read_roster

M, A, O = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE


def codes_by_row(roster: Roster) -> dict[int, list[str]]:
    return {row: sorted(i.code for i in issues) for row, issues in roster.issues_by_row().items()}


def assert_every_row_accounted(roster: Roster, data_rows: int) -> None:
    """Each data row is a RosterRow (blank ones only counted); each row's user is in
    ``users`` unless the row has an error issue."""
    assert len(roster.rows) + roster.blank_rows == data_rows
    errors = {i.row for i in roster.issues if i.severity is Severity.ERROR}
    for row in roster.rows:
        if row.row in errors:
            assert row.status is RowStatus.ERROR
            assert row.key not in roster.users or row.row not in roster.users[row.key].rows
        else:
            assert row.status is not RowStatus.ERROR
            assert row.row in roster.users[row.key].rows


ENCODED_ROWS = [
    ["User Principal Name", "Mobile Phone", "Work Phone", "Country", "Prénom"],
    ["zoe@contoso.com", "(206) 555-0100", "206.555.0199 x12", "US", "Zoë"],
    ["", "", "", "", ""],
    ["jurgen@contoso.com", "0151 23456789", "+49 30 123456, ext 7", "de", "Jürgen"],
    ["francois@contoso.com", "06 12 34 56 78", "", "FR", "François; \"Franck\""],
    ["nobody@contoso.com", "not a number", "", "US", "Ça"],
]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_every_encoding_and_delimiter(tmp_path: Path, encoding: str, delimiter: str) -> None:
    path = write_csv(tmp_path / "roster.csv", ENCODED_ROWS, encoding=encoding, delimiter=delimiter)
    roster = read_roster(path)

    assert roster.columns == {"user": "User Principal Name", "mobile": "Mobile Phone", "office": "Work Phone", "region": "Country"}
    assert roster.extra_columns == ("Prénom",)
    assert [r.row for r in roster.rows] == [2, 4, 5, 6] and roster.blank_rows == 1
    assert [r.extra["Prénom"] for r in roster.rows] == ["Zoë", "Jürgen", 'François; "Franck"', "Ça"]
    assert roster.users["zoe@contoso.com"].phones == {M: "+1 2065550100", O: "+1 2065550199x12"}
    assert roster.users["jurgen@contoso.com"].phones == {M: "+49 15123456789", O: "+49 30123456x7"}
    assert roster.users["francois@contoso.com"].phones == {M: "+33 612345678", O: None}
    assert codes_by_row(roster) == {6: ["not_a_number"]}
    assert_every_row_accounted(roster, data_rows=5)


def test_each_row_reason_is_reported(tmp_path: Path) -> None:
    rows = [
        ["UPN", "Mobile", "Alternate Mobile", "Office", "Country", "SMS sign-in"],
        ["ok@contoso.com", "+1 206 555 0100", "", "", "", "yes"],  # 2
        ["", "+1 206 555 0101", "", "", "", ""],  # 3 no user
        ["not-a-upn", "+1 206 555 0102", "", "", "", ""],  # 4
        ["region@contoso.com", "+44 7911 123456", "", "", "Atlantis", ""],  # 5 warning only
        ["sms@contoso.com", "+1 206 555 0103", "", "", "", "maybe"],  # 6
        ["ext@contoso.com", "+1 206 555 0104 x5", "", "", "", ""],  # 7
        ["short@contoso.com", "555", "", "", "US", ""],  # 8
        ["twice@contoso.com", "+1 206 555 0105", "", "", "", "no"],  # 9 merged with 10
        ["TWICE@contoso.com", "(206) 555-0105", "", "", "US", "n"],  # 10
        ["clash@contoso.com", "+1 206 555 0106", "", "", "", ""],  # 11 conflicts with 12
        ["clash@contoso.com", "+1 206 555 0107", "", "", "", ""],  # 12
        ["share1@contoso.com", "+1 206 555 0108", "", "", "", ""],  # 13 same mobile as 14
        ["share2@contoso.com", "+12065550108", "", "", "", ""],  # 14
        ["alt@contoso.com", "", "+1 206 555 0109", "", "", ""],  # 15
        ["fixed@contoso.com", "020 7946 0958", "", "", "GB", ""],  # 16 fixed line in mobile slot
        ["3F2504E0-4F89-11D3-9A0C-0305E82C3301", "", "", "+1 206 555 0110 ext 4", "", ""],  # 17 GUID user
        ["wide@contoso.com", "+1 206 555 0111", "", "", "", "", "oops"],  # 18 cell past the header
        ["noregion@contoso.com", "206 555 0112", "", "", "", ""],  # 19 national number, no region
        ["smsonly@contoso.com", "", "", "+1 206 555 0113", "", "yes"],  # 20 SMS sign-in, no mobile
    ]
    roster = read_roster(write_csv(tmp_path / "r.csv", rows))

    assert codes_by_row(roster) == {
        3: ["missing_user"],
        4: ["invalid_user"],
        5: ["invalid_region"],
        6: ["invalid_sms_sign_in"],
        7: ["extension_not_allowed"],
        8: ["too_short"],
        11: ["duplicate_user_conflict"],
        12: ["duplicate_user_conflict"],
        13: ["duplicate_mobile"],
        14: ["duplicate_mobile"],
        15: ["alternate_without_mobile"],
        16: ["fixed_line_in_mobile_slot"],
        18: ["extra_cells"],
        19: ["no_region"],
        20: ["sms_sign_in_without_mobile"],
    }
    assert_every_row_accounted(roster, data_rows=19)
    statuses = {r.row: r.status for r in roster.rows}
    assert statuses[2] is statuses[9] is statuses[10] is statuses[17] is RowStatus.OK
    assert statuses[5] is statuses[13] is statuses[15] is statuses[16] is RowStatus.WARNING
    assert roster.users["twice@contoso.com"].rows == (9, 10)
    assert roster.users["twice@contoso.com"].sms_sign_in is False
    assert roster.users["ok@contoso.com"].sms_sign_in is True
    assert "clash@contoso.com" not in roster.users  # conflicting rows: nothing planned
    assert roster.users["3f2504e0-4f89-11d3-9a0c-0305e82c3301"].phones[O] == "+1 2065550110x4"
    assert roster.users["alt@contoso.com"].phones == {M: None, A: "+1 2065550109", O: None}
    issues = {(i.row, i.code): i for i in roster.issues}
    assert issues[(7, "extension_not_allowed")].column == "Mobile"
    assert issues[(13, "duplicate_mobile")].reason.startswith("+1 *******108")
    assert issues[(11, "duplicate_user_conflict")].reason.startswith("the same user is also on row(s) 12, with different values")
    assert issues[(12, "duplicate_user_conflict")].reason.startswith("the same user is also on row(s) 11, with different values")
    assert roster.status_counts() == {RowStatus.OK: 4, RowStatus.WARNING: 6, RowStatus.ERROR: 9}
    # No reason carries an unmasked number.
    for issue in roster.issues:
        assert "2065550" not in issue.reason.replace(" ", "")


def test_msonline_export(tmp_path: Path) -> None:
    rows = [
        ["UserPrincipalName", "DisplayName", "PhoneNumber", "AlternativePhoneNumber", "Email", "DefaultMethod"],
        ["ann@contoso.com", "Ann", "+1 4255550100", "+1 4255550101", "ann@mail.example", "OneWaySMS"],
        ["ben@contoso.com", "Ben", "+44 7911123456", "", "ben@mail.example", "TwoWayVoiceMobile"],
        ["cy@contoso.com", "Cy", "", "", "", ""],
    ]
    roster = read_roster(write_csv(tmp_path / "msol.csv", rows))
    assert roster.columns == {"user": "UserPrincipalName", "mobile": "PhoneNumber", "alternate_mobile": "AlternativePhoneNumber"}
    assert roster.extra_columns == ("DisplayName", "Email", "DefaultMethod")
    assert roster.users["ann@contoso.com"].phones == {M: "+1 4255550100", A: "+1 4255550101"}
    assert roster.users["ben@contoso.com"].phones == {M: "+44 7911123456", A: None}
    assert roster.users["cy@contoso.com"].phones == {M: None, A: None}  # explicit blanks
    assert roster.issues == ()
    assert_every_row_accounted(roster, data_rows=3)


def test_active_directory_export_and_job_mapping(tmp_path: Path) -> None:
    rows = [
        ["sAMAccountName", "mail", "mobile", "telephoneNumber", "c", "Login"],
        ["ann", "ann@mail.example", "07911 123456", "020 7946 0958", "GB", "ann@contoso.com"],
    ]
    path = write_csv(tmp_path / "ad.csv", rows)
    found = read_roster(path)
    assert found.columns == {"user": "mail", "mobile": "mobile", "office": "telephoneNumber", "region": "c"}
    assert found.users["ann@mail.example"].phones == {M: "+44 7911123456", O: "+44 2079460958"}
    # The job's mapping wins over the aliases (header compared loosely).
    mapped = read_roster(path, columns={"user": "LOGIN", "office": "mobile"})
    assert mapped.columns["user"] == "Login" and mapped.columns["office"] == "mobile"
    assert mapped.users["ann@contoso.com"].phones == {O: "+44 7911123456"}
    assert "mail" in mapped.extra_columns and "telephoneNumber" in mapped.extra_columns


def test_default_region_applies_to_rows_without_one(tmp_path: Path) -> None:
    rows = [["UPN", "Mobile", "Country"], ["a@contoso.com", "06 12 34 56 78", ""], ["b@contoso.com", "07911 123456", "+44"]]
    path = write_csv(tmp_path / "r.csv", rows)
    roster = read_roster(path, default_region="fr")
    assert roster.users["a@contoso.com"].phones[M] == "+33 612345678"
    assert roster.users["b@contoso.com"].phones[M] == "+44 7911123456"
    with pytest.raises(UsageError, match="unknown default region"):
        read_roster(path, default_region="Atlantis")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["Name", "Mobile"], ["Ann", "+1 2065550100"]], "no user column.*columns found: 'Name', 'Mobile'"),
        ([["UPN", "Department"], ["a@contoso.com", "IT"]], "no phone column.*columns found: 'UPN', 'Department'"),
        ([], "no header row"),
        ([[""], [""]], "no header row"),
    ],
)
def test_unreadable_rosters_raise_one_clear_error(tmp_path: Path, rows: list[list[str]], message: str) -> None:
    with pytest.raises(RosterReadError, match=message):
        read_roster(write_csv(tmp_path / "r.csv", rows))


def test_missing_file_mapping_and_binary_formats(tmp_path: Path) -> None:
    with pytest.raises(RosterReadError, match="not found"):
        read_roster(tmp_path / "absent.csv")
    path = write_csv(tmp_path / "r.csv", [["UPN", "Mobile"], ["a@contoso.com", "+1 2065550100"]])
    with pytest.raises(RosterReadError, match="'Cell' is not in the roster; columns found: 'UPN', 'Mobile'"):
        read_roster(path, columns={"mobile": "Cell"})
    with pytest.raises(UsageError, match="unknown roster field"):
        read_roster(path, columns={"pager": "Mobile"})
    legacy = tmp_path / "old.xls"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
    with pytest.raises(RosterReadError, match="legacy .xls"):
        read_roster(legacy)
    broken = tmp_path / "broken.xlsx"
    broken.write_text("UPN,Mobile\n")
    with pytest.raises(RosterReadError, match="not a valid Excel workbook"):
        read_roster(broken)


def test_header_below_blank_lines_and_quoted_newlines_keep_spreadsheet_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "\n\nUPN,Mobile,Note\n"
        'a@contoso.com,+1 206 555 0100,"two\nlines"\n'
        "\n"
        "b@contoso.com,not a phone,\n",
        encoding="utf-8",
    )
    roster = read_roster(path)
    # Header on line 3: data rows are 4, (5 blank), 6 as a spreadsheet numbers records.
    assert [r.row for r in roster.rows] == [4, 6]
    assert roster.blank_rows == 1
    assert roster.rows[0].extra == {"Note": "two\nlines"}
    assert codes_by_row(roster) == {6: ["not_a_number"]}


def test_a_broken_row_poisons_the_same_users_other_rows(tmp_path: Path) -> None:
    rows = [["UPN", "Mobile"], ["dup@contoso.com", "+1 206 555 0100"], ["Dup@Contoso.com", "+1 206 555"]]
    roster = read_roster(write_csv(tmp_path / "r.csv", rows))
    assert codes_by_row(roster) == {2: ["duplicate_user_conflict"], 3: ["duplicate_user_conflict", "too_short"]}
    assert all("one of them has errors" in i.reason for i in roster.issues if i.code == "duplicate_user_conflict")
    assert roster.users == {}
    assert_every_row_accounted(roster, data_rows=2)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_quoted_line_break_at_the_parsers_block_edge_keeps_its_record(tmp_path: Path, encoding: str) -> None:
    # pandas' pyarrow engine cuts the text into 1 MiB blocks at line breaks without looking
    # at quotes: this cell's line break is the last one before 1 MiB, and a parser that
    # cut there would split its record in two without a word (measured with pyarrow 26).
    lines = ["UPN,Mobile,Note\r\n"]
    size = len(lines[0])
    while size < (1 << 20) - 30:
        lines.append(f"u{len(lines)}@contoso.com,+1 206 555 0100,plain\r\n")
        size += len(lines[-1])
    edge = len(lines) + 1  # the spreadsheet row of the record that straddles the edge
    lines.append(f'u{len(lines)}@contoso.com,+1 206 555 0100,"desk\r\n,,floor"\r\n')
    lines += [f"u{len(lines) + k}@contoso.com,+1 206 555 0100,plain\r\n" for k in range(500)]
    path = tmp_path / "r.csv"
    path.write_bytes("".join(lines).encode(encoding))

    roster = read_roster(path)

    assert [r.row for r in roster.rows] == list(range(2, len(lines) + 1))
    assert {r.row: r.extra["Note"] for r in roster.rows if r.extra["Note"] != "plain"} == {edge: "desk\r\n,,floor"}
    assert len(roster.users) == len(lines) - 1


def test_data_rows_wider_than_the_header_keep_their_cells_in_place(tmp_path: Path) -> None:
    # Every data row has one cell more than the header: a fast parser that takes its width
    # from the first data row must not shift the cells (pandas would make one an index).
    path = tmp_path / "r.csv"
    path.write_text("UPN,Mobile\na@contoso.com,+1 206 555 0100,x\nb@contoso.com,+1 206 555 0101,y\n", encoding="utf-8")

    roster = read_roster(path)

    assert [(r.row, r.user) for r in roster.rows] == [(2, "a@contoso.com"), (3, "b@contoso.com")]
    assert codes_by_row(roster) == {2: ["extra_cells"], 3: ["extra_cells"]}


def test_quoted_cells_without_line_breaks_and_na_words_read_as_typed(tmp_path: Path) -> None:
    # The PowerShell way: every cell quoted. Words pandas would take for "missing" stay text.
    path = tmp_path / "r.csv"
    path.write_text(
        '"UPN","Mobile","Country","Note"\n"a@contoso.com","+1 206 555 0100","US","NA"\n'
        '"b@contoso.com"," 2065550101 ","US","null"\n"c@contoso.com","","US","  "\n',
        encoding="utf-8",
    )

    roster = read_roster(path)

    assert [(r.row, r.extra["Note"]) for r in roster.rows] == [(2, "NA"), (3, "null"), (4, "")]
    assert roster.users["b@contoso.com"].phones[M] == "+1 2065550101"


def test_digits_only_columns_keep_their_leading_zeros_and_every_digit(tmp_path: Path) -> None:
    # Every cell of Mobile and Badge looks like a number: a parser that infers types first
    # (pandas < 3 with engine="pyarrow") would drop the zeros and round the long one.
    path = tmp_path / "r.csv"
    path.write_text(
        "UPN,Mobile,Country,Badge\n"
        "a@contoso.com,07911123456,GB,007\n"
        "b@contoso.com,00447911123457,GB,1582218195625938945\n"
        "c@contoso.com,2065550100.0,US,0.50\n",
        encoding="utf-8",
    )

    roster = read_roster(path)

    assert [r.extra["Badge"] for r in roster.rows] == ["007", "1582218195625938945", "0.50"]
    assert roster.users["a@contoso.com"].phones[M] == "+44 7911123456"
    assert roster.users["b@contoso.com"].phones[M] == "+44 7911123457"


def test_empty_lines_between_rows_keep_the_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"UPN,Mobile\r\na@contoso.com,+1 206 555 0100\r\n\r\nb@contoso.com,+1 206 555 0101\n\nc@contoso.com,x\n")

    roster = read_roster(path)

    assert [r.row for r in roster.rows] == [2, 4, 6] and roster.blank_rows == 2
    assert codes_by_row(roster) == {6: ["not_a_number"]}


USER_CELLS = [
    "ann@contoso.com", "Ann.Lee@Contoso.com", "ÅSA@contoso.se", "straße@contoso.de", "bo@sub.contoso.co.uk",
    "o'brien+mfa@contoso.com", "no-at-sign", "two@@contoso.com", "dot@contoso.", "@contoso.com", "x@contoso",
    "a b@contoso.com", "tab\t@contoso.com", "ctl\x1f@contoso.com", "{4F1A2B3C-1111-2222-3333-444455556666}",
    "4f1a2b3c-1111-2222-3333-444455556666", "ann@contoso..com", "[x]@contoso.com", "a@contoso.com.", "~@a.b",
]


def test_user_keys_are_the_same_whether_pyarrow_parsed_the_file_or_not(tmp_path: Path) -> None:
    # Most UPNs are recognised in C over pyarrow's column; the others, and files read
    # without pyarrow (a DataFrame here), go through Python: each cell gets user_key's answer.
    import pandas

    from provision.roster.reader import user_key

    rows = [["UPN", "Mobile"], *([cell, f"+1 206 555 {k:04d}"] for k, cell in enumerate(USER_CELLS))]
    from_csv = read_roster(write_csv(tmp_path / "users.csv", rows), workers=0)
    from_frame = read_roster(pandas.DataFrame(rows[1:], columns=rows[0]), workers=0)

    expected = [user_key(cell) for cell in USER_CELLS]
    assert [row.key for row in from_csv.rows] == expected
    assert [row.key for row in from_frame.rows] == expected
    assert {i.row for i in from_csv.issues if i.code == "invalid_user"} == {k + 2 for k, key in enumerate(expected) if key is None}
    assert expected.count(None) >= 6 and "ann.lee@contoso.com" in expected and "strasse@contoso.de" in expected
