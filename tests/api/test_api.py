"""`provision.validate`, `plan` and `apply`: the Python API end to end against the sandbox.

Rosters are pandas DataFrames or files the tests write; outcomes are read from the
sandbox's final state, the returned frames and the run directory a later command uses.
"""

from __future__ import annotations

import asyncio
import csv
import stat
from pathlib import Path
from typing import Any, Iterator

import pandas
import pytest
from support.roster_writers import write_csv

import provision
from provision.errors import Cancelled, ExitCode, RosterReadError
from provision.run.rundir import RunDir

ANN, BEN, CY, DAN = "ann@contoso.example", "ben@contoso.example", "cy@contoso.example", "dan@contoso.example"


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A token in the developer's environment would be sent to the sandbox instead of its own.
    monkeypatch.delenv("PROVISION_TOKEN", raising=False)
    monkeypatch.delenv("PROVISION_TOKEN_FILE", raising=False)
    yield


def write_job(folder: Path, url: str, *, roster: str = "roster.csv", mode: str = "additive") -> Path:
    job = folder / "job.toml"
    job.write_text(
        f'name = "api"\nmode = "{mode}"\n[roster]\npath = "{roster}"\ndefault_region = "US"\n'
        f'[output]\ndirectory = "reports"\n[target]\nurl = "{url}"\n',
        encoding="utf-8",
    )
    return job


def phones(sandbox: Any, user: str) -> dict[str, str]:
    return {p["phoneType"]: p["phoneNumber"] for p in sandbox.tenant.list_phones(user)}


def roster_frame() -> pandas.DataFrame:
    # Headers as an HR system in Germany exports them; one number that lost its "+" as a
    # spreadsheet number (int), one broken number, one user Entra doesn't know.
    return pandas.DataFrame(
        {
            "E-Mail": [ANN, BEN, CY, DAN],
            "Handy": ["+1 425 555 0101", 447911123456, "12", "+1 425 555 0104"],
            "Büro": ["", "+1 206 555 0112", "", None],
            "Team": ["=ops", "sales", "it", "hr"],
        }
    )


def test_apply_a_dataframe_gives_one_result_row_per_roster_row(sandbox: Any, tmp_path: Path) -> None:
    for user in (ANN, BEN, CY):
        sandbox.tenant.create_user(user)
    sandbox.tenant.create_phone(BEN, "+1 4255550999", "mobile")
    job = write_job(tmp_path, sandbox.v1, roster="absent.csv")  # the frame replaces the job's file
    frame = roster_frame()

    result = provision.apply(job, roster=frame, run_dir=tmp_path / "run")

    assert len(result.results) == len(frame)
    by_user = {r["user"]: r for r in result.results.to_dict("records")}
    assert list(result.results["row"]) == [2, 3, 4, 5]
    assert [by_user[u]["outcome"] for u in (ANN, BEN, CY, DAN)] == ["applied", "applied", "invalid", "skipped"]
    assert by_user[ANN]["Team"] == "'=ops"  # results.csv's text, formula neutralised
    assert phones(sandbox, ANN) == {"mobile": "+1 4255550101"}
    assert phones(sandbox, BEN) == {"mobile": "+44 7911123456", "office": "+1 2065550112"}
    assert phones(sandbox, CY) == {}
    assert result.exit_code is ExitCode.ROWS_FAILED
    assert result.summary["rows_total"] == 4 and result.summary["exit_code"] == 1
    assert result.run_dir == tmp_path / "run"

    # The frame is in the run directory as a private CSV, and reading it back (what
    # resume, report and rollback do) gives the same results, row for row.
    copy = RunDir(result.run_dir).roster_file()
    assert copy.name == "roster.csv" and stat.S_IMODE(copy.stat().st_mode) == 0o600
    before = (result.run_dir / "results.csv").read_text(encoding="utf-8-sig")
    provision.report_run(RunDir(result.run_dir))
    assert (result.run_dir / "results.csv").read_text(encoding="utf-8-sig") == before
    with (result.run_dir / "results.csv").open(encoding="utf-8-sig", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(frame)


def test_plan_masks_numbers_unless_asked_and_writes_nothing(sandbox: Any, tmp_path: Path) -> None:
    sandbox.tenant.create_user(ANN)
    sandbox.tenant.create_user(BEN)
    sandbox.tenant.create_phone(BEN, "+1 4255550999", "mobile")
    write_csv(tmp_path / "roster.csv", [["UPN", "Cell Phone"], [ANN, "+1 425 555 0101"], [BEN, "+1 425 555 0102"]])
    job = write_job(tmp_path, sandbox.v1)

    masked = provision.plan(job)

    changes = masked.changes.sort_values("user").to_dict("records")
    assert [(c["user"], c["phone_type"], c["action"], c["before"], c["after"]) for c in changes] == [
        (ANN, "mobile", "create", "", "+1 *******101"),
        (BEN, "mobile", "update", "+1 *******999", "+1 *******102"),
    ]
    assert list(masked.changes.columns) == ["user", "phone_type", "action", "before", "after", "reason", "rows"]
    assert masked.summary["changes"] == 2 and masked.summary["changes_by_kind"]["create"] == 1 and masked.safe
    assert "5550101" not in masked.changes.to_csv()
    assert phones(sandbox, ANN) == {} and phones(sandbox, BEN) == {"mobile": "+1 4255550999"}

    async def in_a_notebook() -> provision.PlanResult:  # a running event loop, as in Jupyter
        return provision.plan(job, unmasked=True, out=tmp_path / "plan.json")

    full = asyncio.run(in_a_notebook())
    assert sorted(full.changes["after"]) == ["+1 4255550101", "+1 4255550102"]
    assert full.plan_file == tmp_path / "plan.json" and full.plan_file.is_file()
    # The reviewed plan still matches: apply it, and only then is anything written.
    applied = provision.apply(job, plan_file=full.plan_file)
    assert applied.exit_code is ExitCode.OK and list(applied.results["outcome"]) == ["applied", "applied"]
    assert phones(sandbox, BEN) == {"mobile": "+1 4255550102"}


def test_refusals_raise_the_projects_errors(sandbox: Any, tmp_path: Path) -> None:
    sandbox.tenant.create_user(ANN)
    job = write_job(tmp_path, sandbox.v1)
    frame = pandas.DataFrame({"Name": ["Ann"], "Mobile": ["+1 425 555 0101"]})
    with pytest.raises(RosterReadError, match=r"no user column.*--column user=HEADER") as raised:
        provision.apply(job, roster=frame)
    assert raised.value.exit_code is ExitCode.USAGE
    declined = pandas.DataFrame({"UPN": [ANN], "Mobile": ["+1 425 555 0101"]})
    with pytest.raises(Cancelled):
        provision.apply(job, roster=declined, yes=False)
    assert phones(sandbox, ANN) == {}
    assert [p for p in (tmp_path / "reports").glob("api-*") if p.is_dir()] == []  # no run directory


def test_validate_takes_a_path_or_a_dataframe_and_a_column_mapping(tmp_path: Path) -> None:
    rows = [["Login", "Mobil", "Telefon", "Land"], [ANN, "0151 23456789", "030 1234567", "DE"]]
    path = write_csv(tmp_path / "r.csv", rows)
    from_file = provision.validate(path, columns={"user": "Login"})
    from_frame = provision.validate(pandas.DataFrame(rows[1:], columns=rows[0]), columns={"user": "Login"})
    expected = [(ANN, "+49 15123456789", "+49 301234567", "ok")]
    for frame in (from_file, from_frame):
        assert [(r["user"], r["mobile"], r["office"], r["status"]) for r in frame.to_dict("records")] == expected
    with pytest.raises(RosterReadError, match='map one with --column user=HEADER or \\[roster.columns\\] user = "HEADER"'):
        provision.validate(path)
