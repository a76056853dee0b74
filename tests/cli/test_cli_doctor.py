"""`provision doctor JOB`, as a scheduler or an admin runs it: a real child process against
the loopback sandbox, whose tokens carry the roles each test chooses.

0: everything needed works (warnings allowed); 4: a credential or permission problem, with
the permission named in the fix; 5: nothing answered; 2: the job file doesn't load. Doctor
only reads: the tenant is the same afterwards.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from cli_support import CONTOSO_TENANT_ID, cli, leaked_numbers, shipped_job, tenant_snapshot, write_csv
from support.cli import run_provision
from support.token_endpoint import FakeEntra

from provision.run.doctor import (
    Status,
    clock_check,
    needs_for,
    permission_checks,
    token_claims,
)
from provision.run.jobs import load_job
from provision.sandbox.auth import AUTHENTICATION_POLICY_ADMINISTRATOR, make_token

READ_ONLY_ROLES = ["UserAuthenticationMethod.Read.All", "Policy.Read.All", "User.Read.All"]
CHECKS = ("job file", "roster", "target", "clock", "credential", "token", "phone read", "SMS policy")


def checks_of(ran: Any) -> dict[str, dict[str, Any]]:
    """The JSON checklist: check name -> its event (every stderr line must be JSON)."""
    events = ran.json_lines()
    return {e["check"]: e for e in events if e.get("event_kind") == "doctor_check"}


def test_all_good_lists_every_check_and_writes_nothing(contoso: Any, tmp_path: Path) -> None:
    job = shipped_job(tmp_path, "onboarding", contoso.v1)  # sms_sign_in = "enable": every permission needed
    before = tenant_snapshot(contoso)

    ran = run_provision(["doctor", job, "--log-format", "text"], cwd=tmp_path)

    assert ran.exit_code == 0, ran.output
    lines = ran.stdout.splitlines()
    for name in CHECKS:
        assert any(line.startswith("ok") and f"  {name}  " in f"{line}  " for line in lines), (name, ran.stdout)
    for need in ("phone reads", "phone writes", "SMS policy read", "user lookups"):
        assert any(line.startswith("ok") and f"permission: {need}" in line for line in lines), (need, ran.stdout)
    assert "0 failed: ready" in ran.stdout
    assert tenant_snapshot(contoso) == before and contoso.stats()["writes_succeeded"] == 0
    assert leaked_numbers(ran.output) == []


def test_the_embedded_sandbox_of_a_shipped_job_is_ready(tmp_path: Path) -> None:
    job = shipped_job(tmp_path, "nightly_reconcile")  # no url: doctor starts the embedded sandbox, as plan would
    ran = run_provision(["doctor", job, "--log-format", "json"], cwd=tmp_path)
    assert ran.exit_code == 0, ran.stderr
    checks = checks_of(ran)
    assert "embedded sandbox" in checks["job file"]["detail"]
    assert {c["status"] for c in checks.values()} == {"ok"}
    assert leaked_numbers(ran.output) == []


def test_missing_write_permission_is_exit_4_naming_it(contoso: Any, tmp_path: Path) -> None:
    job = shipped_job(tmp_path, "onboarding", contoso.v1)
    env = {"PROVISION_TOKEN": make_token(roles=READ_ONLY_ROLES, tid=CONTOSO_TENANT_ID)}

    ran = run_provision(["doctor", job, "--log-format", "json"], cwd=tmp_path, env=env)

    assert ran.exit_code == 4, ran.stderr
    checks = checks_of(ran)  # every stderr line parsed as JSON
    writes = checks["permission: phone writes"]
    assert writes["status"] == "fail"
    assert "UserAuthenticationMethod.ReadWrite.All" in writes["detail"]
    assert "UserAuthenticationMethod.ReadWrite.All" in writes["fix"]
    # What the token does hold is proved by doing it.
    assert (checks["phone read"]["status"], checks["SMS policy"]["status"]) == ("ok", "ok")
    final = ran.result("doctor")
    assert (final["exit_code"], final["fail"]) == (4, 1)
    assert leaked_numbers(ran.output) == []

    # The same token is enough for a read-only dry run (plan): the write permission is a warning.
    planned = run_provision(["doctor", job, "--plan-only", "--log-format", "json"], cwd=tmp_path, env=env)
    assert planned.exit_code == 0, planned.stderr
    assert checks_of(planned)["permission: phone writes"]["status"] == "warn"


def test_a_token_refused_by_the_target_is_exit_4(contoso: Any, tmp_path: Path) -> None:
    job = shipped_job(tmp_path, "nightly_reconcile", contoso.v1)
    env = {"PROVISION_TOKEN": make_token(tid="00000000-0000-4000-8000-00000000beef")}

    ran = run_provision(["doctor", job, "--log-format", "json"], cwd=tmp_path, env=env)

    assert ran.exit_code == 4, ran.stderr
    phone_read = checks_of(ran)["phone read"]
    assert phone_read["status"] == "fail" and "401" in phone_read["detail"]


@pytest.mark.parametrize("token", [False, True], ids=["sandbox-token-asked-for", "token-given"])
def test_unreachable_target_is_exit_5_and_skips_the_rest(tmp_path: Path, token: bool) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    job = shipped_job(tmp_path, "onboarding", f"http://127.0.0.1:{port}/v1.0")
    env = {"PROVISION_TOKEN": make_token(tid=CONTOSO_TENANT_ID)} if token else None

    ran = run_provision(["doctor", job, "--log-format", "json"], cwd=tmp_path, env=env)

    assert ran.exit_code == 5, ran.stderr
    checks = checks_of(ran)
    assert checks["target"]["status"] == "fail" and f"127.0.0.1:{port}" in checks["target"]["detail"]
    assert checks["target"]["fix"]
    assert {checks[name]["status"] for name in ("clock", "credential", "phone read", "SMS policy")} == {"skip"}


# --- a real tenant's sign-in (the login endpoint stood in for on loopback) -------------------

TENANT = "0b5a3f9e-8c7d-4e21-9f00-123456789abc"
CLIENT = "11111111-2222-3333-4444-555555555555"
SECRET = "Zx8Q~not-a-real-secret-4711"
NO_CREDENTIALS = {name: "" for name in ("AZURE_CLIENT_SECRET_FILE", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_CERTIFICATE_PASSWORD_FILE")}


def tenant_job(folder: Path) -> Path:
    write_csv(folder / "roster.csv", ["upn", "mobile"], [("paul.walker@contoso.com", "+1 425 555 0101")])
    job = folder / "tenant.toml"
    job.write_text(
        'name = "tenant"\n[roster]\npath = "roster.csv"\n[roster.columns]\nuser = "upn"\nmobile = "mobile"\n'
        f'[target]\nkind = "graph"\ntenant_id = "{TENANT}"\nclient_id = "{CLIENT}"\ncredential = "secret"\n',
        encoding="utf-8",
    )
    return job


@pytest.fixture
def entra(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with FakeEntra(tmp_path_factory.mktemp("entra")) as endpoint:
        yield endpoint


def test_a_refused_sign_in_is_exit_4_before_graph_is_asked(tmp_path: Path, entra: FakeEntra) -> None:
    entra.answer_error(7000215, f"Invalid client secret provided. Ensure the secret being sent in the request is the "
                                f"client secret value, not the client secret ID, for a secret added to app '{CLIENT}'.")
    env = {**entra.env(), **NO_CREDENTIALS, "AZURE_CLIENT_SECRET": SECRET}

    ran = run_provision(["doctor", tenant_job(tmp_path), "--log-format", "json"], tmp_path, env)

    assert ran.exit_code == 4, ran.output
    checks = checks_of(ran)
    assert checks["credential"]["status"] == "fail" and "AADSTS7000215" in checks["credential"]["detail"]
    assert "fix: copy the secret's Value" in checks["credential"]["detail"] and checks["credential"]["fix"]
    assert {checks[name]["status"] for name in ("target", "clock", "permissions", "phone read")} == {"skip"}
    assert [r.host for r in entra.requests] == ["login.microsoftonline.com"] and SECRET not in ran.output


def test_a_job_file_that_does_not_load_is_exit_2(tmp_path: Path) -> None:
    job = shipped_job(tmp_path, "onboarding", "http://127.0.0.1:9/v1.0")
    job.write_text(job.read_text(encoding="utf-8").replace("max_changes", "max_chnges"), encoding="utf-8")
    ran = cli(["doctor", job, "--log-format", "json"])
    assert ran.exit_code == 2
    assert "safety.max_chnges: unknown key" in checks_of(ran)["job file"]["detail"]


# --- the pure parts --------------------------------------------------------------------------


def test_clock_more_than_five_minutes_off_is_a_warning() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert clock_check(format_datetime(now - timedelta(seconds=30), usegmt=True), now).status is Status.OK
    skewed = clock_check(format_datetime(now - timedelta(minutes=7), usegmt=True), now)
    assert skewed.status is Status.WARN and "7 min ahead" in skewed.detail and "NTP" in skewed.fix
    assert clock_check(None, now).status is Status.WARN


def test_an_opaque_token_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    job = load_job(shipped_job(tmp_path, "onboarding"))
    assert token_claims("not-a-jwt") is None
    (check,) = permission_checks(token_claims("opaque.token!.x"), needs_for(job, plan_only=False), sandbox=False)
    assert check.status is Status.WARN


def test_a_delegated_token_without_the_directory_role_fails_naming_the_roles(tmp_path: Path) -> None:
    job = load_job(shipped_job(tmp_path, "onboarding"))
    token = make_token(scp="UserAuthenticationMethod.ReadWrite.All Policy.Read.All User.Read.All", wids=[AUTHENTICATION_POLICY_ADMINISTRATOR])
    checks = {c.name: c for c in permission_checks(token_claims(token), needs_for(job, plan_only=False), sandbox=False)}
    writes = checks["permission: phone writes"]
    assert writes.status is Status.FAIL and "Privileged Authentication Administrator" in writes.fix
    assert checks["permission: SMS policy read"].status is Status.OK  # the policy admin role reads the policy


def test_without_a_readable_roster_the_phone_read_takes_any_user(contoso: Any, tmp_path: Path) -> None:
    job = shipped_job(tmp_path, "nightly_reconcile", contoso.v1)
    job.write_text(job.read_text(encoding="utf-8").replace("hr_extract.csv", "not_there_yet.csv"), encoding="utf-8")
    ran = cli(["doctor", job, "--log-format", "json"])
    assert ran.exit_code == 0, ran.stderr
    checks = checks_of(ran)
    assert checks["roster"]["status"] == "warn" and "not_there_yet.csv" in checks["roster"]["detail"]
    assert checks["phone read"]["status"] == "ok" and "@contoso.com" in checks["phone read"]["detail"]
