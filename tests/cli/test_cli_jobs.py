"""The three shipped jobs, end to end through the CLI against the sandbox.

Each job's reports hold one row per roster data row (CSV, XLSX Results sheet and
summary.json agree), show the intended mix of outcomes, leave the tenant in the intended
state, and a second run of the same job changes nothing. One test runs the repo's own
jobs/onboarding.toml as users do: a real subprocess with the embedded sandbox child.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from cli_support import (
    JOBS,
    SAMPLE,
    cli,
    leaked_numbers,
    phones_of,
    read_csv_rows,
    shipped_job,
    tenant_snapshot,
    upn,
    xlsx_results,
)
from openpyxl import load_workbook
from support.cli import run_provision


def roster_data_rows(job: str) -> int:
    """Data rows of a shipped job's roster, blank rows excluded, counted without provision."""
    if job == "onboarding":
        wb = load_workbook(SAMPLE / "new_hires.xlsx", read_only=True)
        rows = list(wb["New hires"].iter_rows(min_row=2, values_only=True))
        wb.close()
        return sum(1 for r in rows if any(c not in (None, "") for c in r))
    name, delimiter = {"legacy_mfa_migration": ("msonline_export.csv", ","), "nightly_reconcile": ("hr_extract.csv", ";")}[job]
    with (SAMPLE / name).open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))[1:]
    return sum(1 for r in rows if any(c.strip() for c in r))


def by_user(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        out.setdefault(r["user"], []).append(r)
    return out


def check_onboarding(rows: dict[str, list[dict[str, str]]], tenant: dict[str, Any]) -> None:
    (zoe,) = rows["Zoe Hall"]
    assert zoe["outcome"] == "invalid" and zoe["error_code"] == "invalid_user"
    (amara,) = rows[upn("amara.okafor")]
    assert amara["outcome"] == "applied" and amara["mobile_action"] == "create"
    assert amara["mobile_after"] == "+234 8031234567"  # "0803 123 4567" with Country NG
    assert rows[upn("liam.davies")][0]["outcome"] == "unchanged"
    (ava,) = rows[upn("ava.wilson")]
    assert (ava["outcome"], ava["mobile_action"], ava["mobile_before"], ava["mobile_after"]) == (
        "applied", "update", "+1 2065550150", "+1 2065550151")
    (ethan,) = rows[upn("ethan.moore")]
    assert ethan["outcome"] == "partial" and ethan["error_code"] == "phoneNumberNotUnique"
    (ghost,) = rows[upn("ghost.hire")]
    assert ghost["outcome"] == "skipped" and ghost["error_code"] == "user_not_found"
    assert [r["outcome"] for r in rows[upn("mila.king")]] == ["invalid", "invalid"]  # conflicting duplicates
    assert rows[upn("henry.young")][0]["error_code"] == "extension_not_allowed"

    assert phones_of(tenant, upn("amara.okafor")) == {"mobile": "+234 8031234567"}
    assert phones_of(tenant, upn("sofia.rossi")) == {"mobile": "+39 3123456789", "office": "+39 0612345678"}
    assert phones_of(tenant, upn("ava.wilson")) == {"mobile": "+1 2065550151"}
    assert phones_of(tenant, upn("liam.davies")) == {"mobile": "+44 7911123458"}
    assert phones_of(tenant, upn("ethan.moore")) == {"mobile": "+1 2065550160"}  # saved, without SMS sign-in
    assert phones_of(tenant, upn("mila.king")) == {} and phones_of(tenant, upn("grace.hall")) == {}
    assert upn("ghost.hire") not in {u["upn"] for u in tenant["users"]}


def check_legacy(rows: dict[str, list[dict[str, str]]], tenant: dict[str, Any]) -> None:
    (omar,) = rows[upn("omar.haddad")]
    assert omar["outcome"] == "unchanged" and omar["mobile_desired"] == "+1 4255550103"
    assert omar["mobile_after"] == "+1 4255550130"  # fill-empty: his own number is kept
    (paul,) = rows[upn("paul.walker")]
    assert paul["outcome"] == "applied" and paul["alternate_mobile_after"] == "+1 4255550102"
    (zara,) = rows[upn("zara.ahmed")]
    assert zara["mobile_outcome"] == "unchanged" and zara["alternate_mobile_action"] == "create"
    assert rows[upn("rita.gomez")][0]["outcome"] == "unchanged"
    assert rows[upn("ben.carter")][0]["outcome"] == "invalid"
    assert rows[upn("sara.lind")][0]["error_code"] == "alternate_requires_mobile"
    assert rows[upn("old.contractor")][0]["error_code"] == "user_not_found"
    assert rows[upn("max.weber")][0]["sms_state"] == "phoneNumberNotUnique"
    assert [r["outcome"] for r in rows[upn("yuki.sato")]] == ["applied", "applied"]  # identical rows merged

    assert phones_of(tenant, upn("omar.haddad")) == {"mobile": "+1 4255550130"}
    assert phones_of(tenant, upn("paul.walker")) == {"mobile": "+1 4255550101", "alternateMobile": "+1 4255550102"}
    assert phones_of(tenant, upn("zara.ahmed")) == {"mobile": "+1 4255550140", "alternateMobile": "+1 4255550141"}
    assert phones_of(tenant, upn("sara.lind")) == {} and phones_of(tenant, upn("ben.carter")) == {}


def check_nightly(rows: dict[str, list[dict[str, str]]], tenant: dict[str, Any]) -> None:
    (elena,) = rows[upn("elena.petrova")]
    assert (elena["outcome"], elena["office_action"], elena["office_outcome"]) == ("applied", "delete", "applied")
    assert elena["office_before"] == "+1 4255550171" and elena["office_after"] == ""
    (mateo,) = rows[upn("mateo.lopez")]
    assert (mateo["office_action"], mateo["office_after"]) == ("update", "+34 913456789")
    assert rows[upn("ivan.horvat")][0]["office_action"] == "create"
    (hana,) = rows[upn("hana.kim")]
    assert hana["outcome"] == "failed" and hana["error_code"] == "mobile_delete_blocked_by_alternate"
    assert rows[upn("anna.kowalski")][0]["outcome"] == "unchanged"
    assert rows[upn("victor.nowhere")][0]["error_code"] == "user_not_found"
    assert rows[upn("wendy.typo")][0]["outcome"] == "invalid"

    assert phones_of(tenant, upn("elena.petrova")) == {"mobile": "+1 2065550171"}
    assert phones_of(tenant, upn("mateo.lopez")) == {"mobile": "+34 612345678", "office": "+34 913456789"}
    assert phones_of(tenant, upn("ivan.horvat")) == {"office": "+385 12345678"}
    assert phones_of(tenant, upn("felix.wagner")) == {"mobile": "+49 30901820"}
    assert phones_of(tenant, upn("hana.kim")) == {"mobile": "+82 1023456789", "alternateMobile": "+82 1023456790"}


CHECKS: dict[str, Callable[[dict[str, list[dict[str, str]]], dict[str, Any]], None]] = {
    "onboarding": check_onboarding,
    "legacy_mfa_migration": check_legacy,
    "nightly_reconcile": check_nightly,
}


@pytest.mark.parametrize("job_name", list(CHECKS))
def test_shipped_job_end_to_end_then_no_changes(job_name: str, contoso: Any, tmp_path: Path) -> None:
    job = shipped_job(tmp_path, job_name, contoso.v1)
    first = cli(["apply", job, "--yes", "--run-dir", tmp_path / "run1", "--log-format", "json"])

    summary = json.loads((tmp_path / "run1" / "summary.json").read_text(encoding="utf-8"))
    expected_rows = roster_data_rows(job_name)
    csv_rows = read_csv_rows(tmp_path / "run1" / "results.csv")
    assert len(csv_rows) == expected_rows
    assert len(xlsx_results(tmp_path / "run1" / "results.xlsx")) == expected_rows
    assert summary["rows_total"] == expected_rows == first.result("run")["rows_total"]
    assert summary["rows_ok"] + summary["rows_failed"] == expected_rows
    # every job's sample has row errors or failures: a scheduler sees 1, and summary.json agrees
    assert first.exit_code == summary["exit_code"] == 1
    assert sum(summary["changes_done"].values()) == sum(summary["changes"].values()) > 0
    CHECKS[job_name](by_user(csv_rows), tenant_snapshot(contoso))
    assert not leaked_numbers(first.output)

    state_after_first = tenant_snapshot(contoso)
    writes = contoso.stats()["writes_succeeded"]
    second = cli(["apply", job, "--yes", "--run-dir", tmp_path / "run2", "--log-format", "json"])
    assert second.exit_code == 1
    assert second.result("plan")["changes"] == 0
    again = json.loads((tmp_path / "run2" / "summary.json").read_text(encoding="utf-8"))
    assert sum(again["changes"].values()) == 0 and again["rows_total"] == expected_rows
    assert "applied" not in again["rows_by_outcome"] or again["rows_by_outcome"]["applied"] == 0
    assert contoso.stats()["writes_succeeded"] == writes
    assert tenant_snapshot(contoso) == state_after_first


def test_onboarding_as_users_run_it_embedded_sandbox_subprocess(tmp_path: Path) -> None:
    """The repo's own job file, `python -m provision`, no TTY, embedded sandbox under ./.provision."""
    job = JOBS / "onboarding.toml"
    first = run_provision(["apply", job, "--yes", "--run-dir", tmp_path / "run1"], cwd=tmp_path)
    assert first.exit_code == 1, first.stderr
    events = first.json_lines()  # no TTY: every stderr line is a JSON object
    run = first.result("run")
    assert run["rows_total"] == roster_data_rows("onboarding") and run["report"] == str(tmp_path / "run1" / "report.html")
    assert run["changes_done"] == {"create": 19, "update": 1}
    assert any(e.get("event") == "progress" and e.get("stage") == "applying" for e in events)
    state = tmp_path / ".provision" / "sandbox" / "tenant.json"
    assert state.exists()
    assert phones_of(json.loads(state.read_text(encoding="utf-8")), upn("amara.okafor")) == {"mobile": "+234 8031234567"}

    second = run_provision(["apply", job, "--yes", "--run-dir", tmp_path / "run2", "--log-format", "text"], cwd=tmp_path)
    assert second.exit_code == 1, second.stderr
    assert "Planned changes: 0" in second.stdout
    # where the report is, on one line (no terminal: rich would otherwise fold it at 80 columns)
    assert f"Report: {tmp_path / 'run2' / 'report.html'}\n" in second.stdout
    summary = json.loads((tmp_path / "run2" / "summary.json").read_text(encoding="utf-8"))
    assert summary["changes"] == {} and summary["rows_by_outcome"]["unchanged"] == 17

    # the other run commands, as processes too (resume and plan start the embedded sandbox again)
    csv_before = (tmp_path / "run1" / "results.csv").read_bytes()
    (tmp_path / "run1" / "results.csv").unlink()
    report = run_provision(["report", tmp_path / "run1"], cwd=tmp_path)
    assert report.exit_code == 1 and (tmp_path / "run1" / "results.csv").read_bytes() == csv_before
    resume = run_provision(["resume", tmp_path / "run1"], cwd=tmp_path)
    assert resume.exit_code == 1
    assert any("already finished" in e.get("message", "") for e in resume.json_lines())
    plan = run_provision(["plan", job, "--out", tmp_path / "plan.json"], cwd=tmp_path)
    assert plan.exit_code == 1 and plan.result("plan")["changes"] == 0
    assert not leaked_numbers(first.output + second.output + report.output + resume.output + plan.output)
    for run_dir in ("run1", "run2"):
        assert not leaked_numbers((tmp_path / run_dir / "run.log").read_text(encoding="utf-8"))
