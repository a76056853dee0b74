"""PowerShell exports: ``Export-Csv`` writes ``#TYPE <.NET type>`` above the header.

Windows PowerShell 5.1 does it by default (``Get-MsolUser | Export-Csv``), PowerShell 7
with ``-IncludeTypeInformation``; every value is quoted, lines end in CRLF, and
``-Encoding Unicode`` gives UTF-16 LE with a BOM. The type line is row 1 (as Excel shows
the file), the header row 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.model import PhoneType, RowStatus
from provision.roster.reader import read_roster

M, A = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE


def export_csv(path: Path, type_name: str, rows: list[list[str]], *, encoding: str, delimiter: str = ",") -> Path:
    """What ``Export-Csv`` writes: the #TYPE line, then every value in double quotes."""
    lines = [f"#TYPE {type_name}"]
    lines += [delimiter.join('"' + cell.replace('"', '""') + '"' for cell in row) for row in rows]
    text = "\r\n".join(lines) + "\r\n"
    path.write_bytes(text.encode("utf-16") if encoding == "utf-16" else text.encode(encoding))
    return path


MSOL = [
    ["UserPrincipalName", "DisplayName", "PhoneNumber", "AlternativePhoneNumber", "Email", "DefaultMethod"],
    ["ann@contoso.com", "Ann Ødegård", "+1 4255550100", "+1 4255550101", "ann@mail.example", "OneWaySMS"],
    ["ben@contoso.com", "Ben", "+44 7911123456", "", "", "TwoWayVoiceMobile"],
    ["cy@contoso.com", "Cy", "", "", "", ""],
]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "ascii-safe utf-8"])
def test_get_msoluser_export_with_its_type_line(tmp_path: Path, encoding: str) -> None:
    rows = MSOL if encoding != "ascii-safe utf-8" else [[c.replace("Ø", "O").replace("å", "a") for c in r] for r in MSOL]
    path = export_csv(tmp_path / "msol.csv", "Microsoft.Online.Administration.User", rows, encoding=encoding.split()[-1])
    roster = read_roster(path)

    assert roster.columns == {"user": "UserPrincipalName", "mobile": "PhoneNumber", "alternate_mobile": "AlternativePhoneNumber"}
    assert roster.extra_columns == ("DisplayName", "Email", "DefaultMethod")
    assert [r.row for r in roster.rows] == [3, 4, 5]  # #TYPE is row 1, the header row 2
    assert roster.users["ann@contoso.com"].phones == {M: "+1 4255550100", A: "+1 4255550101"}
    assert roster.users["ben@contoso.com"].phones == {M: "+44 7911123456", A: None}
    assert roster.rows[0].extra["DisplayName"] == rows[1][1]
    assert roster.issues == ()


def test_a_semicolon_export_from_a_european_culture(tmp_path: Path) -> None:
    # Export-Csv -UseCulture on a de-DE machine: ';' between the quoted values.
    rows = [["UserPrincipalName", "MobilePhone", "Country"], ["jo@contoso.com", "0151 23456789", "DE"]]
    path = export_csv(tmp_path / "de.csv", "System.Management.Automation.PSCustomObject", rows, encoding="utf-8", delimiter=";")
    roster = read_roster(path)
    assert roster.users["jo@contoso.com"].phones == {M: "+49 15123456789"}
    assert [r.row for r in roster.rows] == [3]


def test_malformed_rows_of_an_export_keep_their_row_numbers(tmp_path: Path) -> None:
    rows = [["UserPrincipalName", "PhoneNumber"], ["a@contoso.com", "+1 4255550100"], ["b@contoso.com", "+1 4255550102"]]
    path = export_csv(tmp_path / "x.csv", "Microsoft.Online.Administration.User", rows, encoding="utf-16")
    text = path.read_text(encoding="utf-16").replace('"+1 4255550102"', '"+1 4255550102","stray"')
    path.write_bytes((text + '"c@contoso.com"\r\n\r\n"d@contoso.com","+1 4255550103"\r\n').encode("utf-16"))
    roster = read_roster(path)

    assert [(r.row, r.status) for r in roster.rows] == [
        (3, RowStatus.OK), (4, RowStatus.ERROR), (5, RowStatus.OK), (7, RowStatus.OK)
    ]
    assert roster.blank_rows == 1
    assert {(i.row, i.code) for i in roster.issues} == {(4, "extra_cells")}
