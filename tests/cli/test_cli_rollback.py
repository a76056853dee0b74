"""`provision rollback RUN_DIR` as a real process against the loopback contoso sandbox.

An authoritative, SMS-enabling job creates, updates and deletes phones and enables SMS
sign-in; rolling its run back leaves every touched user exactly as the tenant held them
before the run. A phone changed after the run is left alone and reported as a conflict;
``--plan-only`` writes nothing; without a terminal and without ``--yes`` nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from cli_support import leaked_numbers, read_csv_rows, tenant_snapshot, upn, write_csv, write_job
from support.cli import run_provision

from provision.planner.plan_file import read_plan

# (user, mobile, alternateMobile, office) against the sample tenant:
ROWS = (
    (upn("amara.okafor"), "+1 425 555 0201", "+1 425 555 0202", ""),  # create mobile + alternate
    (upn("omar.haddad"), "+1 425 555 0231", "", ""),  # update mobile
    (upn("rita.gomez"), "+1 425 555 0104", "", ""),  # delete alternate
    (upn("elena.petrova"), "+1 206 555 0171", "", ""),  # delete office
    (upn("liam.davies"), "+44 7911 123458", "", ""),  # already right: nothing to do
)
TOUCHED = tuple(r[0] for r in ROWS)


def _job(folder: Path, url: str) -> Path:
    write_csv(folder / "roster.csv", ["upn", "mobile", "alternate_mobile", "office"], ROWS)
    body = (
        'mode = "authoritative"\nsms_sign_in = "enable"\n'
        '[roster]\npath = "roster.csv"\n'
        '[roster.columns]\nuser = "upn"\nmobile = "mobile"\nalternate_mobile = "alternate_mobile"\noffice = "office"\n'
        "[safety]\nmax_changes = 100\nmax_delete_percent = 100\nmax_update_percent = 100\n"
    )
    return write_job(folder, body, url=url, name="rollme")


def _users(snapshot: dict[str, Any], upns: tuple[str, ...] = TOUCHED) -> dict[str, Any]:
    """What a rollback must restore of these users: every phone (type and number, exactly)
    and whether it signs in with SMS. (Graph can't take a mobile back to "never registered":
    a mobile whose SMS sign-in was enabled by the run ends ``disabled``, not ``none``.)"""
    found = {u["upn"]: u for u in snapshot["users"] if u["upn"] in upns}
    return {
        k: sorted((p["phoneType"], p["phoneNumber"], p["sms"] == "registered") for p in u["phones"])
        for k, u in found.items()
    }


def _apply(contoso: Any, tmp_path: Path) -> tuple[Path, Path]:
    job = _job(tmp_path, contoso.v1)
    run_dir = tmp_path / "run"
    applied = run_provision(["apply", job, "--yes", "--run-dir", run_dir, "--log-format", "json"], cwd=tmp_path)
    assert applied.exit_code == 0, applied.stderr[-3000:]
    done = applied.result("run")["changes_done"]
    assert done.get("create") and done.get("update") and done.get("delete") and done.get("enable_sms"), done
    return job, run_dir


def test_rollback_restores_every_touched_user_exactly(contoso: Any, tmp_path: Path) -> None:
    before = _users(tenant_snapshot(contoso))
    _, run_dir = _apply(contoso, tmp_path)
    assert _users(tenant_snapshot(contoso)) != before

    back_dir = tmp_path / "back"
    ran = run_provision(["rollback", run_dir, "--yes", "--run-dir", back_dir, "--log-format", "json"], cwd=tmp_path)
    assert ran.exit_code == 0, ran.stderr[-3000:]
    assert _users(tenant_snapshot(contoso)) == before
    assert contoso.stats()["duplicate_writes"] == 0
    assert not leaked_numbers(ran.stdout + ran.stderr + (back_dir / "run.log").read_text(encoding="utf-8"))

    plan = ran.result("plan")
    assert plan["changes_by_kind"]["delete"] == 2  # amara's alternate, then her mobile
    summary = json.loads((back_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["rollback_of"] == str(run_dir.resolve()) and summary["status"] == "completed"
    rows = {r["user"]: r for r in read_csv_rows(back_dir / "results.csv")}
    assert rows[upn("liam.davies")]["outcome"] == "unchanged"
    assert {rows[u]["outcome"] for u in TOUCHED[:4]} == {"applied"}
    amara = [c for c in read_plan(back_dir / "plan.json").changes if c.user == upn("amara.okafor")]
    assert [(c.kind.value, c.phone_type.value) for c in amara] == [("delete", "alternateMobile"), ("delete", "mobile")]

    again = run_provision(["rollback", run_dir, "--plan-only", "--log-format", "json"], cwd=tmp_path)
    assert again.exit_code == 0 and again.result("plan")["changes"] == 0  # nothing the run wrote is still there


def test_a_phone_changed_since_the_run_is_a_conflict_left_alone(contoso: Any, tmp_path: Path) -> None:
    before = _users(tenant_snapshot(contoso))
    _, run_dir = _apply(contoso, tmp_path)
    omar = upn("omar.haddad")
    mobile_id = "3179e48a-750b-4051-897c-87b9720928f7"
    with httpx.Client(base_url=contoso.v1, headers={"Authorization": f"Bearer {contoso.token}"}) as http:
        changed = http.patch(f"/users/{omar}/authentication/phoneMethods/{mobile_id}", json={"phoneNumber": "+1 4255550299", "phoneType": "mobile"})
        assert changed.status_code in (200, 204), changed.text
    omar_now = _users(tenant_snapshot(contoso), (omar,))

    back_dir = tmp_path / "back"
    ran = run_provision(["rollback", run_dir, "--yes", "--run-dir", back_dir, "--log-format", "json"], cwd=tmp_path)
    assert ran.exit_code == 1, ran.stderr[-3000:]  # a row could not be rolled back
    after = _users(tenant_snapshot(contoso))
    assert after[omar] == omar_now[omar]  # left alone: number and SMS state
    assert {k: v for k, v in after.items() if k != omar} == {k: v for k, v in before.items() if k != omar}
    row = next(r for r in read_csv_rows(back_dir / "results.csv") if r["user"] == omar)
    assert row["outcome"] == "skipped" and row["error_code"] == "conflict"
    assert "changed since the run" in row["reason"] or "holds another number" in row["reason"]
    assert contoso.stats()["duplicate_writes"] == 0


def test_plan_only_and_no_terminal_write_nothing(contoso: Any, tmp_path: Path) -> None:
    _, run_dir = _apply(contoso, tmp_path)
    applied = tenant_snapshot(contoso)

    planned = run_provision(["rollback", run_dir, "--plan-only", "--out", tmp_path / "inverse.json", "--log-format", "json"], cwd=tmp_path)
    assert planned.exit_code == 0, planned.stderr[-3000:]
    assert planned.result("plan")["changes"] > 0
    assert len(list(read_plan(tmp_path / "inverse.json").changes)) == planned.result("plan")["changes"]
    refused = run_provision(["rollback", run_dir, "--log-format", "json"], cwd=tmp_path)
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert tenant_snapshot(contoso) == applied
    assert not list((tmp_path / "reports").glob("rollme-rollback-*"))
