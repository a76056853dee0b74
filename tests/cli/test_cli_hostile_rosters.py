"""Hostile, empty and shrunken rosters through the real commands.

- Unreadable rosters (``roster.hostile_rosters``: damaged workbooks, random bytes, other
  zips, encrypted and legacy workbooks, undecodable text, NUL bytes, a 10 MB cell, 5,000
  columns): ``validate``, ``plan`` and ``apply`` exit 2 with one line naming the file,
  never a traceback, never a number from the file; nothing is written to the tenant.
  ``validate`` runs in process for every file and as a real process for a sample.
- An empty or header-only roster is refused by ``min_roster_rows`` (exit 3) in every mode,
  with the counts and the override in the message; ``--force`` or the job key lets it by.
- An authoritative roster far smaller than the previous finished run of the same job and
  target is refused by ``min_roster_percent`` (exit 3) in ``plan`` and ``apply``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cli_support import CLEAN_ROWS, cli, tenant_snapshot, write_csv, write_job
from roster.hostile_rosters import NUMBERS, Hostile, hostile_rosters
from support.cli import Ran, run_provision

UNREADABLE_SAMPLE = ("truncated3.xlsx", "random.csv", "not_a_workbook.xlsx", "huge_cell.csv", "wide.csv", "utf16.csv")


def leaked(text: str) -> list[str]:
    digits = re.sub(r"\D", "", text)
    return [n for n in NUMBERS if n[-7:] in digits]


def lines(ran: Ran) -> list[str]:
    return [line for line in ran.output.splitlines() if line.strip()]


def assert_one_error_line(ran: Ran, path: Path) -> None:
    assert ran.exit_code == 2, ran.output
    assert "Traceback" not in ran.output and not leaked(ran.output), ran.output
    errors = [line for line in lines(ran) if "error" in line.lower()]
    assert len(errors) == 1 and path.name in errors[0], ran.output


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> list[Hostile]:
    return hostile_rosters(tmp_path_factory.mktemp("hostile"), truncations=30, flips=30)


def test_validate_exits_2_with_one_line_for_every_unreadable_file(hostile: list[Hostile]) -> None:
    refused = 0
    for h in hostile:
        ran = cli(["validate", h.path])  # an exception other than an exit fails here
        assert "Traceback" not in ran.output and not leaked(ran.output), ran.output
        if ran.exit_code == 2:
            assert lines(ran) == [line for line in lines(ran) if h.path.name in line], ran.output
            assert len(lines(ran)) == 1, ran.output
            refused += 1
        else:  # a flip the reader never sees: a roster, validated as one
            assert h.kind in {"flipped", "damaged member"} and ran.exit_code in (0, 1), (h, ran.output)
    assert refused >= len(hostile) - 40


@pytest.mark.parametrize("name", UNREADABLE_SAMPLE)
def test_validate_as_a_real_process(hostile: list[Hostile], name: str, tmp_path: Path) -> None:
    path = next(h.path for h in hostile if h.path.name == name)
    assert_one_error_line(run_provision(["validate", path], cwd=tmp_path), path)


def hostile_job(directory: Path, url: str, roster: Path, mode: str = "additive") -> Path:
    body = f'mode = "{mode}"\n[roster]\npath = "{roster.as_posix()}"\n[roster.columns]\nuser = "upn"\nmobile = "mobile"\n'
    return write_job(directory, body, url=url)


@pytest.mark.parametrize("name", ["truncated7.xlsx", "protected.xlsx", "huge_cell.csv", "wide.csv"])
def test_plan_and_apply_of_an_unreadable_roster_exit_2_and_write_nothing(
    contoso: Any, hostile: list[Hostile], name: str, tmp_path: Path
) -> None:
    path = next(h.path for h in hostile if h.path.name == name)
    job = hostile_job(tmp_path, contoso.v1, path)
    before = tenant_snapshot(contoso)
    assert_one_error_line(cli(["plan", job, "--log-format", "text"]), path)
    assert_one_error_line(cli(["apply", job, "--yes", "--log-format", "text"]), path)
    if name == "truncated7.xlsx":
        proc = run_provision(["plan", job, "--log-format", "json"], cwd=tmp_path)
        assert proc.exit_code == 2 and "Traceback" not in proc.output and not leaked(proc.output)
        (error,) = [e for e in proc.json_lines() if e.get("level") == "error"]
        assert path.name in error["message"] and error["exit_code"] == 2
    assert tenant_snapshot(contoso) == before and contoso.stats()["writes_succeeded"] == 0


# --- empty rosters ------------------------------------------------------------------------


def test_validate_warns_about_a_header_only_roster(tmp_path: Path) -> None:
    roster = write_csv(tmp_path / "empty.csv", ["upn", "mobile"], [])
    ran = cli(["validate", roster])
    assert ran.exit_code == 0
    assert "no data rows" in ran.output and "min_roster_rows" in ran.output


@pytest.mark.parametrize("mode", ["additive", "fill-empty", "authoritative"])
def test_a_header_only_roster_is_refused_in_every_mode(contoso: Any, tmp_path: Path, mode: str) -> None:
    write_csv(tmp_path / "empty.csv", ["upn", "mobile"], [])
    job = hostile_job(tmp_path, contoso.v1, Path("empty.csv"), mode)
    planned = cli(["plan", job, "--log-format", "json"])
    assert planned.exit_code == 3
    safety = planned.result("plan")["safety"]
    assert "no data rows" in safety and "min_roster_rows 1" in safety and "--force" in safety
    refused = cli(["apply", job, "--yes", "--log-format", "json"])
    assert refused.exit_code == 3
    (error,) = [e for e in refused.json_lines() if e.get("level") == "error"]
    assert "no data rows" in error["message"] and error["exit_code"] == 3
    assert not list((tmp_path / "reports").glob("job-*/"))  # the plan file only: no run directory


def test_a_header_only_roster_in_authoritative_mode_is_exit_3_as_a_real_process(contoso: Any, tmp_path: Path) -> None:
    write_csv(tmp_path / "empty.csv", ["upn", "mobile"], [])
    job = hostile_job(tmp_path, contoso.v1, Path("empty.csv"), "authoritative")
    before = tenant_snapshot(contoso)
    ran = run_provision(["apply", job, "--yes", "--log-format", "json"], cwd=tmp_path)
    assert ran.exit_code == 3, ran.stderr[-2000:]
    events = ran.json_lines()  # every stderr line is a JSON object
    (error,) = [e for e in events if e.get("level") == "error"]
    assert "no data rows" in error["message"] and "Traceback" not in ran.output
    assert tenant_snapshot(contoso) == before


def test_force_or_the_job_key_let_an_empty_roster_by(contoso: Any, tmp_path: Path) -> None:
    write_csv(tmp_path / "empty.csv", ["upn", "mobile"], [])
    job = hostile_job(tmp_path, contoso.v1, Path("empty.csv"))
    forced = cli(["apply", job, "--yes", "--force", "--run-dir", tmp_path / "run", "--log-format", "json"])
    assert forced.exit_code == 0 and forced.result("run")["rows_total"] == 0
    job.write_text(job.read_text(encoding="utf-8").replace("[output]", "[safety]\nmin_roster_rows = 0\n\n[output]"), encoding="utf-8")
    assert cli(["plan", job, "--log-format", "json"]).exit_code == 0


# --- shrunken rosters ---------------------------------------------------------------------


def test_an_authoritative_roster_far_smaller_than_the_last_run_is_refused(contoso: Any, tmp_path: Path) -> None:
    write_csv(tmp_path / "full.csv", ["upn", "mobile"], CLEAN_ROWS)
    write_csv(tmp_path / "cut.csv", ["upn", "mobile"], CLEAN_ROWS[:1])
    job = hostile_job(tmp_path, contoso.v1, Path("full.csv"), "authoritative")
    first = cli(["apply", job, "--yes", "--log-format", "json"])  # the run directory goes under reports/
    assert first.exit_code == 0, first.stderr
    run_name = Path(first.result("run")["run_dir"]).name

    planned = cli(["plan", job, "--roster", "cut.csv", "--log-format", "json"])
    assert planned.exit_code == 3
    safety = planned.result("plan")["safety"]
    assert f"1 usable rows, 33.33% of the 3 of the previous run {run_name}" in safety
    assert "min_roster_percent 50%" in safety and "--force" in safety
    before = tenant_snapshot(contoso)
    refused = cli(["apply", job, "--roster", "cut.csv", "--yes", "--log-format", "json"])
    assert refused.exit_code == 3 and tenant_snapshot(contoso) == before

    # The job key turned off: the same roster is planned.
    job.write_text(job.read_text(encoding="utf-8").replace("[output]", "[safety]\nmin_roster_percent = 0\n\n[output]"), encoding="utf-8")
    assert cli(["plan", job, "--roster", "cut.csv", "--log-format", "json"]).exit_code == 0


def test_a_shrunken_roster_is_compared_only_with_the_same_job_and_target(contoso: Any, tmp_path: Path) -> None:
    write_csv(tmp_path / "full.csv", ["upn", "mobile"], CLEAN_ROWS)
    write_csv(tmp_path / "cut.csv", ["upn", "mobile"], CLEAN_ROWS[:1])
    job = hostile_job(tmp_path, contoso.v1, Path("full.csv"), "additive")
    assert cli(["apply", job, "--yes", "--log-format", "json"]).exit_code == 0
    # Additive: no comparison unless the job asks for one.
    assert cli(["plan", job, "--roster", "cut.csv", "--log-format", "json"]).exit_code == 0
    job.write_text(job.read_text(encoding="utf-8").replace("[output]", "[safety]\nmin_roster_percent = 90\n\n[output]"), encoding="utf-8")
    assert cli(["plan", job, "--roster", "cut.csv", "--log-format", "json"]).exit_code == 3
    # Another target (the run was against this sandbox's URL): nothing to compare with.
    other = job.read_text(encoding="utf-8").replace(contoso.v1, contoso.v1.replace("/v1.0", "/beta"))
    job.write_text(other, encoding="utf-8")
    assert cli(["plan", job, "--roster", "cut.csv", "--log-format", "json"]).exit_code == 0
