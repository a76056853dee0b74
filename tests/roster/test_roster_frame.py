"""`provision.validate`: a roster checked into a DataFrame, the same table `validate --out` writes."""

from __future__ import annotations

import csv
from pathlib import Path

from support.roster_writers import write_csv
from typer.testing import CliRunner

import provision
from provision.cli import app


def test_validate_returns_one_row_per_data_row_with_the_cli_columns(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "roster.csv",
        [
            ["UPN", "Mobile", "Office", "Team"],
            ["ann@contoso.com", "(206) 555-0100", "", "=HYPERLINK(1)"],
            ["bob@contoso.com", "12", "", "ops"],
            ["not a user", "+44 7911 123456", "", ""],
        ],
    )
    frame = provision.validate(path, region="US")

    assert list(frame["row"]) == [2, 3, 4]
    assert list(frame["status"]) == ["ok", "error", "error"]
    assert frame.loc[0, "mobile"] == "+1 2065550100" and frame.loc[0, "office"] == ""
    assert "[too_short]" in frame.loc[1, "problems"]
    assert frame.loc[0, "Team"] == "=HYPERLINK(1)"  # data, not a spreadsheet: nothing is neutralised
    assert str(frame["row"].dtype) == "int64" and str(frame["user"].dtype) == "string"

    # The CLI's --out file is the same table, with formula injection neutralised.
    out = tmp_path / "checked.csv"
    CliRunner().invoke(app, ["validate", str(path), "--region", "US", "--out", str(out)])
    with out.open(encoding="utf-8", newline="") as f:
        written = list(csv.reader(f))
    assert written[0] == list(frame.columns)
    assert [r[1] for r in written[1:]] == list(frame["user"])
    assert [r[2] for r in written[1:]] == list(frame["mobile"])
    assert written[1][-1] == "'=HYPERLINK(1)"
