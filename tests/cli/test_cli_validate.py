"""`provision validate`: summary, --out report, exit codes, and no unmasked number printed."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from support.roster_writers import write_csv, write_xlsx
from typer.testing import CliRunner

from provision.cli import app

runner = CliRunner()

ROWS = [
    ["UserPrincipalName", "Mobile", "Office", "Badge"],
    ["ann@contoso.com", "(206) 555-0142", "206 555 0199 ext. 7", "B1"],
    ["ben@contoso.com", "07911 123457", "", "B2"],  # national GB number under --region US: too long
    ["", "", "", ""],
    ["cy@contoso.com", "+1 425 555 0173 x9", "", "B3"],  # extension on a mobile
]
NUMBER_DIGITS = ["2065550142", "2065550199", "7911123457", "4255550173"]


def no_unmasked_number(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return not any(d[-7:] in digits for d in NUMBER_DIGITS)


def test_errors_exit_1_with_summary_and_report(tmp_path: Path) -> None:
    roster = write_csv(tmp_path / "r.csv", ROWS)
    out = tmp_path / "report.csv"
    result = runner.invoke(app, ["validate", str(roster), "--region", "US", "--out", str(out)])

    assert result.exit_code == 1, result.output
    assert "rows read   3" in result.output and "errors      2" in result.output
    assert "extension_not_allowed" in result.output
    assert no_unmasked_number(result.output)
    with out.open(newline="", encoding="utf-8") as f:
        report = list(csv.DictReader(f))
    assert [(r["row"], r["user"], r["mobile"], r["office"], r["status"]) for r in report] == [
        ("2", "ann@contoso.com", "+1 2065550142", "+1 2065550199x7", "ok"),
        ("3", "ben@contoso.com", "", "", "error"),
        ("5", "cy@contoso.com", "", "", "error"),
    ]
    assert report[0]["alternate_mobile"] == "" and report[0]["problems"] == "" and report[0]["Badge"] == "B1"
    assert report[1]["problems"] == "Mobile: the number is too long for US (+1) [too_long]"
    assert report[2]["problems"].startswith("Mobile: a mobile number can't have an extension")


def test_clean_roster_exits_0(tmp_path: Path) -> None:
    roster = write_csv(tmp_path / "r.csv", ROWS[:2])
    result = runner.invoke(app, ["validate", str(roster), "--region", "US"])
    assert result.exit_code == 0, result.output
    assert "valid       1" in result.output
    assert no_unmasked_number(result.output)


def test_unreadable_roster_exits_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["validate", str(tmp_path / "absent.csv")])
    assert missing.exit_code == 2 and "not found" in missing.output
    headless = write_csv(tmp_path / "h.csv", [["Name", "Phone"], ["Ann", "+1 2065550142"]])
    no_user = runner.invoke(app, ["validate", str(headless)])
    assert no_user.exit_code == 2 and "columns found: 'Name', 'Phone'" in no_user.output
    assert no_unmasked_number(no_user.output)


def test_job_file_supplies_path_sheet_region_and_columns(tmp_path: Path) -> None:
    write_xlsx(
        tmp_path / "hr.xlsx",
        {
            "Notes": [["nothing here"]],
            "Staff": [["Login", "Cell", "Desk"], ["ann@contoso.com", 7911123456, "020 7946 0958"]],
        },
    )
    job = tmp_path / "job.toml"
    job.write_text(
        '[roster]\npath = "hr.xlsx"\nsheet = "Staff"\ndefault_region = "GB"\n'
        '[roster.columns]\nuser = "Login"\nmobile = "Cell"\noffice = "Desk"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["validate", "--job", str(job), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert [(r["user"], r["mobile"], r["office"], r["status"]) for r in rows] == [
        ("ann@contoso.com", "+44 7911123456", "+44 2079460958", "ok")
    ]
    # The command line wins over the job: another sheet, which lacks the mapped columns.
    other = runner.invoke(app, ["validate", "--job", str(job), "--sheet", "Notes"])
    assert other.exit_code == 2 and "'Login' is not in the roster" in other.output
    bad_job = tmp_path / "bad.toml"
    bad_job.write_text("[roster]\npath = 3\n", encoding="utf-8")
    assert runner.invoke(app, ["validate", "--job", str(bad_job)]).exit_code == 2


def test_every_printed_line_masks_numbers(tmp_path: Path) -> None:
    # Numbers where validate prints text it didn't write: the path, a mapped header (shown
    # in the columns line and in the problems' column), and the reader's reasons.
    folder = tmp_path / "hr 2065550142"
    folder.mkdir()
    rows = [
        ["UPN", "Cell 2065550199"],
        ["ann@contoso.com", "+1 206 555 0142"],
        ["cy@contoso.com", "07911 123457"],
    ]
    write_csv(folder / "r.csv", rows)
    job = folder / "job.toml"
    job.write_text('[roster]\npath = "r.csv"\n[roster.columns]\nuser = "UPN"\nmobile = "Cell 2065550199"\n', encoding="utf-8")
    result = runner.invoke(app, ["validate", "--job", str(job), "--region", "US", "--out", str(folder / "o.csv")])
    assert result.exit_code == 1, result.output
    assert "hr *******142/r.csv" in result.output and "mobile='Cell *******199'" in result.output
    assert "│ Cell *******199 │" in result.output and "too_long" in result.output
    assert no_unmasked_number(result.output) and "5550199" not in re.sub(r"\D", "", result.output)


def test_out_neutralises_formulas_and_keeps_phones_usable(tmp_path: Path) -> None:
    rows = [
        ["UPN", "Mobile", "=Note", "Cost"],
        ["ann@contoso.com", "+1 206 555 0142", '=HYPERLINK("http://x","y")', "-100"],
        ["@SUM(A1)", "+44 7911 123456", "+1+1", "@x"],
    ]
    out = tmp_path / "report.csv"
    result = runner.invoke(app, ["validate", str(write_csv(tmp_path / "r.csv", rows)), "--out", str(out)])
    assert result.exit_code == 1, result.output
    with out.open(newline="", encoding="utf-8") as f:
        header, *report = list(csv.reader(f))
    assert header[-2:] == ["'=Note", "Cost"]
    ann, bad = (dict(zip(header, r)) for r in report)
    assert (ann["mobile"], ann["'=Note"], ann["Cost"]) == ("+1 2065550142", '\'=HYPERLINK("http://x","y")', "'-100")
    assert (bad["user"], bad["mobile"], bad["'=Note"], bad["Cost"]) == ("'@SUM(A1)", "+44 7911123456", "'+1+1", "'@x")
    assert bad["status"] == "error" and bad["problems"].startswith("UPN: the user is neither")
