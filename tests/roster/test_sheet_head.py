"""A big sheet's first rows are read from a small copy of the workbook while the whole sheet
is parsed (``roster.sheet_head``): the roster must be the one the whole parse alone gives."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import python_calamine
from support.roster_writers import write_xlsx

from provision.errors import RosterReadError
from provision.model import PhoneType
from provision.roster import sheet_head
from provision.roster.reader import Roster, read_roster

HEADER = ["UPN", "Mobile", "Office", "Country"]


def _rows(count: int, *, stray: bool = True) -> list[list[object]]:
    rows: list[list[object]] = [[], [], HEADER]  # the header on row 3
    for i in range(count):
        mobile: object = f"+1 206 555 {i % 10_000:04d}" if i % 4 else 2065550000 + i  # a quarter are number cells
        office: object = f"020 7946 {i % 10_000:04d}" if i % 3 else None
        row: list[object] = [f"user{i}@contoso.com", mobile, office, "GB" if i % 3 == 0 else "US"]
        if i % 500 == 7:
            row = [None, None, None, None]  # blank rows, on both sides of the head's end
        if i == 1_900 and stray:
            row += [None, "stray"]  # a cell right of the head's columns: a blank-named column
        rows.append(row)
    return rows


def _read_both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Roster, Roster]:
    """The roster read with a head of ~20 KB of sheet XML, and without any head."""
    monkeypatch.setattr(sheet_head, "HEAD_BYTES", 20_000)
    monkeypatch.setattr(sheet_head, "MIN_SHEET_BYTES", 40_000)
    assert sheet_head.sheet_head(path, "Staff") is not None
    headed = read_roster(path, workers=0)
    monkeypatch.setattr(sheet_head, "MIN_SHEET_BYTES", 1 << 40)
    whole = read_roster(path, workers=0)
    return headed, whole


def _same(headed: Roster, whole: Roster) -> None:
    assert headed.rows == whole.rows
    assert headed.issues == whole.issues
    assert headed.users == whole.users
    assert headed.blank_rows == whole.blank_rows


@pytest.mark.parametrize("stray", [False, True], ids=["as wide as its head", "wider further down"])
@pytest.mark.parametrize("write_only", [True, False], ids=["openpyxl write-only", "openpyxl"])
def test_a_head_read_first_gives_the_whole_parse_roster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_only: bool, stray: bool
) -> None:
    path = tmp_path / "big.xlsx"
    if write_only:
        import openpyxl

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("Staff")
        for row in _rows(2_500, stray=stray):
            sheet.append(row)
        book.save(path)
    else:
        write_xlsx(path, {"Cover": [["Read me"]], "Staff": _rows(2_500, stray=stray)})

    headed, whole = _read_both(path, monkeypatch)

    _same(headed, whole)
    assert len(headed.rows) == 2_500 - 5  # five blank rows
    assert headed.rows[-1].row == 2_503
    assert headed.issue_counts()["too_long"] > 1_000  # US numbers in British form: the rows were checked
    strays = [r.row for r in headed.rows if "stray" in r.extra.values()]
    assert strays == ([1_904] if stray else [])


def test_the_head_is_a_workbook_of_the_sheets_first_whole_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_xlsx(tmp_path / "big.xlsx", {"Staff": _rows(2_500)})
    monkeypatch.setattr(sheet_head, "HEAD_BYTES", 20_000)
    monkeypatch.setattr(sheet_head, "MIN_SHEET_BYTES", 40_000)

    head = sheet_head.sheet_head(path, "Staff")

    assert head is not None
    first = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(head)).get_sheet_by_name("Staff").to_python()
    every = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Staff").to_python()
    assert 50 < len(first) < len(every)
    assert first == [row[: len(first[0])] for row in every[: len(first)]]


def test_a_formula_after_the_head_is_still_read_the_formula_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(2_500)
    rows[2_003][2] = "=1+1"  # row 2,004: openpyxl saves no value for it
    path = write_xlsx(tmp_path / "big.xlsx", {"Staff": rows})

    headed, whole = _read_both(path, monkeypatch)

    _same(headed, whole)
    assert [i.row for i in headed.issues if i.code == "formula_without_value"] == [2_004]


def test_a_formula_in_the_head_means_no_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(2_500)
    rows[12][2] = "=1+1"
    path = write_xlsx(tmp_path / "big.xlsx", {"Staff": rows})
    monkeypatch.setattr(sheet_head, "HEAD_BYTES", 20_000)
    monkeypatch.setattr(sheet_head, "MIN_SHEET_BYTES", 40_000)

    assert sheet_head.sheet_head(path, "Staff") is None
    roster = read_roster(path, workers=0)
    assert [i.row for i in roster.issues if i.code == "formula_without_value"] == [13]


def test_a_small_sheet_or_an_unknown_sheet_has_no_head(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "small.xlsx", {"Staff": _rows(50)})

    assert sheet_head.sheet_head(path, "Staff") is None
    assert sheet_head.sheet_head(path, "Missing") is None


def test_a_namespaced_sheet_is_cut_after_its_last_whole_row() -> None:
    xml = b'<x:worksheet><x:sheetData><x:row r="1"><x:c/></x:row><x:row r="2"><x:c/></x:row><x:row r="3"><x:c'

    cut = sheet_head._after_last_row(xml)

    assert cut is not None
    end, prefix = cut
    assert xml[:end].endswith(b'<x:row r="2"><x:c/></x:row>')
    assert prefix == b"x:"


def test_a_damaged_archive_has_no_head_and_the_whole_parse_says_what_is_wrong(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "big.xlsx", {"Staff": _rows(200)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    assert sheet_head.sheet_head(path, "Staff") is None
    with zipfile.ZipFile(io.BytesIO(data)) as intact:
        assert "xl/worksheets/sheet1.xml" in intact.namelist()


def _hand_written_workbook(path: Path, header: list[str], rows: int, *, shared: bool = False) -> Path:
    """A one-sheet workbook written directly (fast enough for big sheets): inline strings, or
    shared strings as Excel saves them (``shared``; openpyxl writes inline strings only)."""
    strings: dict[str, int] = {}

    def cell(ref: str, text: str) -> str:
        if shared:
            return f'<c r="{ref}" t="s"><v>{strings.setdefault(text, len(strings))}</v></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'

    def row(number: int, cells: list[str]) -> str:
        return f'<row r="{number}">{"".join(cell(f"{chr(65 + i)}{number}", text) for i, text in enumerate(cells))}</row>'

    body = [row(1, header)] + [row(n, [f"user{n}@contoso.com", f"+1 206 555 {n % 10_000:04d}"]) for n in range(2, rows + 2)]
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>",
        "_rels/.rels": '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets><sheet name="Staff" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}"><sheetData>{"".join(body)}</sheetData></worksheet>',
    }
    if shared:
        items = "".join(f"<si><t>{text}</t></si>" for text in strings)
        parts["xl/sharedStrings.xml"] = f'<sst xmlns="{main}" count="{len(strings)}" uniqueCount="{len(strings)}">{items}</sst>'
    else:
        parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>', ""
        )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return path


def test_a_head_whose_header_is_refused_still_ends_in_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole sheet is still being parsed when the head's header is refused: closing the
    # workbook then must wait for the parse, not fail ("Already borrowed") in its place.
    path = _hand_written_workbook(tmp_path / "big.xlsx", ["Name", "Mobile"], 60_000)
    monkeypatch.setattr(sheet_head, "HEAD_BYTES", 20_000)
    monkeypatch.setattr(sheet_head, "MIN_SHEET_BYTES", 40_000)
    assert sheet_head.sheet_head(path, "Staff") is not None

    with pytest.raises(RosterReadError, match="no user column"):
        read_roster(path, workers=0)


@pytest.mark.parametrize("shared", [False, True], ids=["inline strings", "shared strings"])
def test_a_hand_written_big_sheet_reads_the_same_with_a_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: bool) -> None:
    path = _hand_written_workbook(tmp_path / "big.xlsx", ["UPN", "Mobile"], 20_000, shared=shared)

    headed, whole = _read_both(path, monkeypatch)

    _same(headed, whole)
    assert len(headed.rows) == 20_000
    # the shared strings were found: the cells hold numbers, not blanks
    assert sum(1 for r in headed.rows if r.phones[PhoneType.MOBILE] is not None) > 10_000


def test_a_workbook_whose_shared_strings_are_huge_has_no_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _hand_written_workbook(tmp_path / "big.xlsx", ["UPN", "Mobile"], 2_500, shared=True)
    monkeypatch.setattr(sheet_head, "HEAD_BYTES", 20_000)
    monkeypatch.setattr(sheet_head, "MIN_SHEET_BYTES", 40_000)
    assert sheet_head.sheet_head(path, "Staff") is not None

    monkeypatch.setattr(sheet_head, "MAX_COPIED_BYTES", 10_000)

    assert sheet_head.sheet_head(path, "Staff") is None


@pytest.mark.parametrize(
    ("xml", "holds"),
    [
        (b'<c r="A1"><f>SUM(B1:B9)</f><v>3</v></c>', True),
        (b'<x:c r="A1"><x:f t="shared" ref="A1:A9" si="0"/></x:c>', True),
        (b'<c r="A1">\n  <f\n t="shared" si="0"/>\n</c>', True),  # pretty-printed: a newline after the name
        (b'<c r="A1"><f/></c>', True),
        (b'<c r="A1" t="inlineStr"><is><t>Chief of staff: &lt;f&gt; is text</t></is></c>', False),  # "<" is escaped in text
        (b'<c r="A1" t="inlineStr"><is><t>Chief of staff</t></is></c><ref a="b"/><xf x="1"/>', False),
        (b'<c r="A1" t="inlineStr"><is><t>if/then, of f> x</t></is></c>', False),
        (b"f> f/ f ", False),
    ],
)
def test_a_formula_tag_is_told_from_text_and_other_tags(xml: bytes, holds: bool) -> None:
    assert sheet_head.holds_formula(xml) is holds


def test_a_formula_tag_cut_by_the_chunks_border_is_found(tmp_path: Path) -> None:
    from provision.roster.files import _has_formulas

    cell = b'<c r="A1" t="inlineStr"><is><t>x</t></is></c>'
    for cut in (1, 9, 14):  # the tag's end past the border, its start up to 14 bytes before it
        pad = b"<row>" + cell * ((1 << 20) // len(cell))
        pad = pad[: (1 << 20) - cut]
        pad = pad[: pad.rfind(b"</c>") + 4]
        pad += b" " * ((1 << 20) - cut - len(pad))  # the tag starts ``cut`` bytes before the border
        xml = b"<worksheet><sheetData>" + pad[22:] + b'<spreadsheet:f t="shared" si="0"/></row></sheetData></worksheet>'
        path = tmp_path / f"cut{cut}.xlsx"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
            book.writestr("xl/worksheets/sheet1.xml", xml)
        assert xml.index(b"<spreadsheet:f") == (1 << 20) - cut
        assert _has_formulas(path, "Staff")


@pytest.mark.parametrize("formula", [b"", b'<c r="A9"><f>A1</f></c>', b'<x:c r="A9"><x:f t="shared" si="0"/></x:c>'])
def test_a_sheet_full_of_text_like_a_formula_tags_end_is_still_told_right(formula: bytes) -> None:
    # Past ``_MANY_ENDS`` such ends the search goes by the tag's start: same answers.
    cell = b'<c r="B1" t="inlineStr"><is><t>Chief of staff</t></is></c>'
    xml = b"<sheetData>" + cell * (sheet_head._MANY_ENDS + 10) + formula + b"</sheetData>"
    assert sheet_head.holds_formula(xml) is bool(formula)
