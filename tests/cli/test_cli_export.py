"""`provision export` as admins run it: real subprocesses against the loopback sample tenant.

The export of a whole tenant plans back to no changes (authoritative, SMS left alone); its
snapshot serves the same phones; users read masked carry the marker and no numbers; the
read-only grant is enough; and every way it can end has its exit code. Numbers are in
full in the file (mode 0600) and never unmasked on the console.
"""

from __future__ import annotations

import json
import signal
import stat
from pathlib import Path
from typing import Any

import httpx
from cli_support import CONTOSO, CONTOSO_TENANT_ID, leaked_numbers, phones_of, read_csv_rows, write_csv, write_job
from support.cli import run_provision, start_provision

from provision.errors import ExitCode
from provision.sandbox.auth import AUTHENTICATION_ADMINISTRATOR, make_token

READ_ONLY = ("UserAuthenticationMethod.Read.All", "User.Read.All")
COLUMNS = ["user", "mobile", "alternate_mobile", "office", "sms_sign_in", "note"]


def _token(**claims: Any) -> dict[str, str]:
    return {"PROVISION_TOKEN": make_token(tid=CONTOSO_TENANT_ID, **claims)}


def _export_job(folder: Path, url: str, roster: str = "x.csv") -> Path:
    body = f'mode = "authoritative"\nsms_sign_in = "leave"\n[roster]\npath = "{roster}"\n'
    return write_job(folder, body, url=url, name="export")


def _tenant_phones() -> dict[str, dict[str, str]]:
    snapshot = json.loads(CONTOSO.read_text(encoding="utf-8"))
    return {u["upn"]: phones_of(snapshot, u["upn"]) for u in snapshot["users"] if not u["deleted"]}


def test_export_all_users_plans_back_to_no_changes(contoso: Any, tmp_path: Path) -> None:
    job = _export_job(tmp_path, contoso.v1)
    ran = run_provision(["export", job, "--all-users", "--out", "x.csv", "--log-format", "json"], tmp_path, _token(roles=READ_ONLY))
    assert ran.exit_code == ExitCode.OK, ran.stderr
    result = ran.result("export")
    expected = _tenant_phones()
    rows = read_csv_rows(tmp_path / "x.csv")
    assert list(rows[0]) == COLUMNS
    assert {r["user"] for r in rows} == set(expected) and result["users"] == len(expected)
    for row in rows:
        phones = {t: row[c] for t, c in (("mobile", "mobile"), ("alternateMobile", "alternate_mobile"), ("office", "office")) if row[c]}
        assert phones == expected[row["user"]]
    assert stat.S_IMODE((tmp_path / "x.csv").stat().st_mode) == 0o600
    assert leaked_numbers(ran.output) == []

    plan = run_provision(["plan", job, "--out", "plan.json", "--log-format", "json"], tmp_path)
    assert plan.result("plan")["changes"] == 0, plan.stderr
    assert contoso.stats()["writes_applied"] == 0


def test_export_snapshot_serves_the_same_phones(contoso: Any, tmp_path: Path) -> None:
    job = _export_job(tmp_path, contoso.v1)
    ran = run_provision(["export", job, "--all-users", "--out", "x.xlsx", "--snapshot", "copy.json"], tmp_path, _token(roles=READ_ONLY))
    assert ran.exit_code == ExitCode.OK, ran.stderr
    assert stat.S_IMODE((tmp_path / "copy.json").stat().st_mode) == 0o600
    expected = _tenant_phones()
    server = start_provision("sandbox", "serve", "--port", "0", "--snapshot", tmp_path / "copy.json", cwd=tmp_path)
    try:
        assert server.stdout is not None
        v1 = server.stdout.readline().strip()
        token = run_provision(["sandbox", "token", "--url", v1], tmp_path).stdout.strip()
        for upn in (next(u for u, p in expected.items() if not p), next(u for u, p in expected.items() if len(p) >= 2)):
            answer = httpx.get(f"{v1}/users/{upn}/authentication/phoneMethods", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200
            assert {p["phoneType"]: p["phoneNumber"] for p in answer.json()["value"]} == expected[upn]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    copy = json.loads((tmp_path / "copy.json").read_text(encoding="utf-8"))
    original = json.loads(CONTOSO.read_text(encoding="utf-8"))
    assert "sms_registrations" not in copy  # derived from the mobiles when loaded
    registered = {u["upn"] for u in original["users"] if not u["deleted"] for p in u["phones"] if p["sms"] == "registered"}
    assert {u["upn"] for u in copy["users"] for p in u["phones"] if p["sms"] == "registered"} == registered


def test_export_masked_users_carry_the_marker_and_no_numbers(contoso: Any, tmp_path: Path) -> None:
    job = _export_job(tmp_path, contoso.v1)
    delegated = _token(scp=" ".join(READ_ONLY), wids=[AUTHENTICATION_ADMINISTRATOR])
    ran = run_provision(["export", job, "--all-users", "--out", "x.csv", "--log-format", "json"], tmp_path, delegated)
    assert ran.exit_code == ExitCode.OK, ran.stderr
    with_phones = {u for u, p in _tenant_phones().items() if p}
    rows = {r["user"]: r for r in read_csv_rows(tmp_path / "x.csv")}
    assert {u for u, r in rows.items() if r["note"] == "masked"} == with_phones
    assert all(not (r["mobile"] or r["alternate_mobile"] or r["office"]) for r in rows.values())
    assert ran.result("export")["masked"] == len(with_phones)
    assert "X" not in (tmp_path / "x.csv").read_text(encoding="utf-8").replace("XLSX", "")


def test_export_roster_users_lists_the_unknown_ones(contoso: Any, tmp_path: Path) -> None:
    known = sorted(_tenant_phones())[0]
    write_csv(tmp_path / "who.csv", ["UPN"], [[known], ["nobody.here@contoso.com"], ["not a user"]])
    job = _export_job(tmp_path, contoso.v1)
    ran = run_provision(["export", job, "--users", "who.csv", "--out", "x.csv", "--log-format", "json"], tmp_path, _token(roles=READ_ONLY))
    assert ran.exit_code == ExitCode.OK, ran.stderr
    result = ran.result("export")
    assert result["not_found_users"] == ["nobody.here@contoso.com"] and result["invalid_user_cells"] == 1
    assert [r["user"] for r in read_csv_rows(tmp_path / "x.csv")] == [known]


def test_export_exit_codes(contoso: Any, tmp_path: Path) -> None:
    job = _export_job(tmp_path, contoso.v1)
    both = run_provision(["export", job, "--all-users", "--users", "x.csv", "--out", "x.csv"], tmp_path)
    assert both.exit_code == ExitCode.USAGE
    assert run_provision(["export", job, "--all-users", "--out", "x.txt"], tmp_path).exit_code == ExitCode.USAGE
    phones_only = _token(roles=["UserAuthenticationMethod.Read.All"])
    denied = run_provision(["export", job, "--all-users", "--out", "x.csv"], tmp_path, phones_only)
    assert denied.exit_code == ExitCode.AUTH and "User.Read.All" in denied.stderr
    users_only = _token(roles=["User.Read.All"])
    assert run_provision(["export", job, "--all-users", "--out", "x.csv"], tmp_path, users_only).exit_code == ExitCode.AUTH
    gone = _export_job(tmp_path, "http://127.0.0.1:9/v1.0")
    assert run_provision(["export", gone, "--all-users", "--out", "x.csv"], tmp_path).exit_code == ExitCode.STOPPED
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "reports").exists()
