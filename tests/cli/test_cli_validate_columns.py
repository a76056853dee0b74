"""`provision validate` on headers it can't recognise: `--column FIELD=HEADER`, `--job`,
and the error that says how to map a column; and the README tour's first command."""

from __future__ import annotations

import csv
from pathlib import Path

from support.cli import REPO, run_provision
from support.roster_writers import write_csv

ROWS = [
    ["Login", "Old Mobile", "Cell Nr", "Desk 2065550188"],
    ["ann@contoso.com", "+1 206 555 0100", "+1 206 555 0142", "+1 206 555 0188"],
]


def test_the_readme_tours_first_command_works(tmp_path: Path) -> None:
    ran = run_provision(["validate", REPO / "sample_data" / "new_hires.xlsx", "--region", "US", "--out", "checked.csv"], cwd=tmp_path)
    assert ran.exit_code == 1, ran.output  # some sample rows are broken on purpose
    assert "columns: user='Work Email', mobile='Mobile Phone', office='Office Phone', region='Country'" in ran.stdout
    with (tmp_path / "checked.csv").open(encoding="utf-8", newline="") as f:
        assert len(list(csv.DictReader(f))) == 25


def test_column_options_map_headers_and_win_over_the_job(tmp_path: Path) -> None:
    write_csv(tmp_path / "r.csv", ROWS)
    unmapped = run_provision(["validate", "r.csv"], cwd=tmp_path)
    assert unmapped.exit_code == 2
    assert "no user column" in unmapped.output
    assert 'map one with --column user=HEADER or [roster.columns] user = "HEADER" in the job' in unmapped.output

    (tmp_path / "job.toml").write_text(
        '[roster]\npath = "r.csv"\ndefault_region = "US"\n[roster.columns]\nuser = "Login"\nmobile = "Old Mobile"\n',
        encoding="utf-8",
    )
    ran = run_provision(
        ["validate", "--job", "job.toml", "--column", "mobile=Cell Nr", "--column", "office=Desk 2065550188", "--out", "o.csv"],
        cwd=tmp_path,
    )
    assert ran.exit_code == 0, ran.output
    assert "mobile='Cell Nr'" in ran.stdout and "Desk *******188" in ran.stdout and "2065550188" not in ran.output
    with (tmp_path / "o.csv").open(encoding="utf-8", newline="") as f:
        report = list(csv.DictReader(f))
    assert [(r["user"], r["mobile"], r["office"], r["Old Mobile"]) for r in report] == [
        ("ann@contoso.com", "+1 2065550142", "+1 2065550188", "'+1 206 555 0100")  # passthrough: neutralised
    ]


def test_a_bad_column_option_is_a_usage_error_listing_the_fields(tmp_path: Path) -> None:
    write_csv(tmp_path / "r.csv", ROWS)
    ran = run_provision(["validate", "r.csv", "--column", "pager=Cell Nr", "--column", "user=Login"], cwd=tmp_path)
    assert ran.exit_code == 2
    assert "unknown field 'pager'; fields are user, mobile, alternate_mobile, office, region, sms_sign_in" in ran.output
