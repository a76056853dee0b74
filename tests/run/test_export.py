"""The export in this process (``run.export.export_job``) against a loopback sandbox.

What the file holds for each way of choosing users (the job roster, a users file, the
whole tenant), that an .xlsx export reads back through the roster reader as text, that the
snapshot of roster users carries their ids and phones, and that a tenant answering some
reads with 503s is still exported whole.
"""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from support.sandbox import write_profile

from provision.model import PhoneType
from provision.roster.reader import read_roster
from provision.run.export import ExportOptions, ExportResult, export_job
from provision.run.jobs import load_job


def _tenant(sandbox: Any, users: int = 6) -> dict[str, str]:
    """users i: a mobile (SMS sign-in ready when i is even, disabled when odd), an office phone when i % 3 == 0."""
    tenant, ids = sandbox.tenant, {}
    for i in range(users):
        upn = f"user{i}@contoso.example"
        ids[upn] = tenant.create_user(upn)["id"]
        tenant.create_phone(upn, f"+1 20655501{i:02d}", "mobile")
        if i % 2 == 1:  # a new mobile is registered for SMS sign-in; odd users opt out
            tenant.disable_sms_sign_in(upn, "3179e48a-750b-4051-897c-87b9720928f7")
        if i % 3 == 0:
            tenant.create_phone(upn, f"+44 20794609{i:02d}x12", "office")
    return ids


def _job(folder: Path, url: str, roster: list[str] | None = None) -> Path:
    (folder / "roster.csv").write_text("user,mobile\n" + "".join(f"{u},\n" for u in roster or ["a@contoso.example"]), encoding="utf-8")
    job = folder / "job.toml"
    job.write_text(f'name = "x"\n[roster]\npath = "roster.csv"\n[target]\nurl = "{url}"\n', encoding="utf-8")
    return job


def _export(job: Path, **options: Any) -> ExportResult:
    return asyncio.run(export_job(load_job(job), ExportOptions(**options)))


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return {r["user"]: r for r in csv.DictReader(f)}


def test_roster_users_are_exported_and_unknown_ones_left_out(sandbox: Any, tmp_path: Path) -> None:
    ids = _tenant(sandbox)
    by_id = ids["user3@contoso.example"].upper()
    job = _job(tmp_path, sandbox.v1, ["User0@Contoso.example", by_id, "ghost@contoso.example", "not-a-user"])
    result = _export(job, out=tmp_path / "x.csv")
    rows = _rows(tmp_path / "x.csv")
    assert set(rows) == {"User0@Contoso.example", by_id}
    assert rows["User0@Contoso.example"] == {
        "user": "User0@Contoso.example", "mobile": "+1 2065550100", "alternate_mobile": "", "office": "+44 2079460900x12",
        "sms_sign_in": "true", "note": "",
    }
    assert rows[by_id]["sms_sign_in"] == "false" and rows[by_id]["office"] == "+44 2079460903x12"
    assert result.not_found == ("ghost@contoso.example",) and result.invalid == ("not-a-user",)
    assert result.phones == {"mobile": 2, "alternate_mobile": 0, "office": 2}


def test_xlsx_export_reads_back_as_text_through_the_roster_reader(sandbox: Any, tmp_path: Path) -> None:
    _tenant(sandbox)
    _export(_job(tmp_path, sandbox.v1), out=tmp_path / "x.xlsx", all_users=True)
    wb = load_workbook(tmp_path / "x.xlsx")
    sheet = wb.active
    assert sheet is not None
    cells = [c for row in sheet.iter_rows(min_row=2) for c in row[1:4] if c.value]
    assert cells and all(c.data_type == "s" and c.number_format == "@" for c in cells)
    roster = read_roster(tmp_path / "x.xlsx")
    assert roster.count(next(iter(roster.status_counts()))) == 6  # every row ok
    assert roster.users["user3@contoso.example"].phones == {
        PhoneType.MOBILE: "+1 2065550103", PhoneType.ALTERNATE_MOBILE: None, PhoneType.OFFICE: "+44 2079460903x12",
    }
    assert roster.users["user2@contoso.example"].sms_sign_in is True


def test_snapshot_of_roster_users_names_them_by_id(sandbox: Any, tmp_path: Path) -> None:
    ids = _tenant(sandbox)
    job = _job(tmp_path, sandbox.v1, ["user0@contoso.example", "user1@contoso.example"])
    result = _export(job, out=tmp_path / "x.csv", snapshot=tmp_path / "s.json")
    snapshot = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert result.snapshot_users == 2
    assert [(u["id"], u["upn"]) for u in snapshot["users"]] == [
        (ids["user0@contoso.example"], "user0@contoso.example"), (ids["user1@contoso.example"], "user1@contoso.example"),
    ]
    assert snapshot["users"][0]["phones"] == [
        {"phoneType": "mobile", "phoneNumber": "+1 2065550100", "sms": "registered"},
        {"phoneType": "office", "phoneNumber": "+44 2079460900x12", "sms": "none"},
    ]
    assert snapshot["users"][1]["phones"] == [{"phoneType": "mobile", "phoneNumber": "+1 2065550101", "sms": "disabled"}]


def test_a_tenant_answering_some_reads_503_is_still_exported_whole(sandbox: Any, tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "flaky.toml", http_503=0.2)
    sandbox.configure(profile=str(profile), seed=7)
    _tenant(sandbox, users=60)
    result = _export(_job(tmp_path, sandbox.v1), out=tmp_path / "x.csv", all_users=True)
    assert result.users == 60 and not result.failed
    assert sandbox.stats()["faults_injected"] > 0
    assert len(_rows(tmp_path / "x.csv")) == 60
