"""A spreadsheet number with two valid readings (national, or international whose + was lost):
the column decides when exactly one reading fits it; otherwise a warning names both."""

from __future__ import annotations

from pathlib import Path

from support.roster_writers import write_xlsx

from provision.model import PhoneType, RowStatus
from provision.roster.numbers import normalise
from provision.roster.reader import read_roster

M, O = PhoneType.MOBILE, PhoneType.OFFICE


def test_the_column_picks_the_reading_that_fits_it() -> None:
    # 2416633373: a GB fixed line (+44 2416633373) or a Gabon mobile (+241 6633373).
    mobile = normalise("2416633373", "GB", M, from_number=True)
    office = normalise("2416633373", "GB", O, from_number=True)
    assert (mobile.graph, mobile.warning) == ("+241 6633373", None)
    assert (office.graph, office.warning) == ("+44 2416633373", None)
    # 2015550123: US (fixed line or mobile) or an Egyptian fixed line: a mobile column says US.
    assert (normalise("2015550123", "US", M, from_number=True).graph, normalise("2015550123", "US", M, from_number=True).warning) == (
        "+1 2015550123", None,
    )


def test_when_both_readings_fit_a_warning_names_both_masked() -> None:
    both = normalise("2015550123", "US", O, from_number=True)
    assert (both.graph, both.warning) == ("+1 2015550123", "ambiguous_lost_plus")
    assert "+1 *******123" in both.reason and "+20 *****123" in both.reason
    assert "5550123" not in both.reason.replace(" ", "")
    # A text cell is read as typed: never ambiguous.
    assert normalise("2416633373", "GB", M).graph == "+44 2416633373"


def test_a_workbook_resolves_each_cell_by_its_column(tmp_path: Path) -> None:
    rows = [
        ["UPN", "Mobile", "Office", "Country"],
        ["ann@contoso.com", 2416633373, 2416633373, "GB"],
        ["ben@contoso.com", 2015550123, 2015550123, "US"],
        ["cy@contoso.com", "2416633373", None, "GB"],  # text: the national reading, no doubt
    ]
    roster = read_roster(write_xlsx(tmp_path / "r.xlsx", {"Staff": rows}))
    assert roster.users["ann@contoso.com"].phones == {M: "+241 6633373", O: "+44 2416633373"}
    assert roster.users["ben@contoso.com"].phones == {M: "+1 2015550123", O: "+1 2015550123"}
    assert roster.users["cy@contoso.com"].phones[M] == "+44 2416633373"
    assert {(i.row, i.column, i.code) for i in roster.issues} == {
        (3, "Office", "ambiguous_lost_plus"),
        (4, "Mobile", "fixed_line_in_mobile_slot"),
    }
    assert [r.status for r in roster.rows] == [RowStatus.OK, RowStatus.WARNING, RowStatus.WARNING]
