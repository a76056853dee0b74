"""Every exit code a scheduler can see, with what must (not) have happened to the tenant.

    0 every row applied or already right    3 plan refused by a safety threshold
    1 some rows failed                      4 authentication or permission failure
    2 bad usage, job file or unreadable roster
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import (
    CLEAN_ROWS,
    CONTOSO_TENANT_ID,
    clean_job,
    cli,
    phones_of,
    shipped_job,
    tenant_snapshot,
    upn,
)
from support.cli import run_provision

from provision.sandbox.auth import make_token


def error_messages(ran: Any) -> list[str]:
    return [e["message"] for e in ran.json_lines() if e.get("level") == "error"]


def unsafe_nightly(tmp_path: Path, url: str) -> Path:
    """nightly_reconcile (authoritative; its extract deletes 2 of 16 phones) with max_delete_percent 1."""
    job = shipped_job(tmp_path, "nightly_reconcile", url)
    text = job.read_text(encoding="utf-8")
    assert "max_delete_percent = 20" in text
    job.write_text(text.replace("max_delete_percent = 20", "max_delete_percent = 1"), encoding="utf-8")
    return job


# --- 0 and 1 ------------------------------------------------------------------------------


def test_exit_0_clean_roster_applied_then_already_right(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1)
    first = cli(["apply", job, "--yes", "--run-dir", tmp_path / "run1", "--log-format", "json"])
    assert first.exit_code == 0, first.stderr
    assert first.result("run")["rows_by_outcome"] == {"applied": 3}
    assert phones_of(tenant_snapshot(contoso), upn("nina.patel")) == {"mobile": "+44 7911123460"}

    second = cli(["apply", job, "--yes", "--run-dir", tmp_path / "run2", "--log-format", "text"])
    assert second.exit_code == 0, second.stderr
    assert "Rows: 3 (3 unchanged)" in second.stdout
    assert json.loads((tmp_path / "run2" / "summary.json").read_text(encoding="utf-8"))["exit_code"] == 0


def test_exit_1_when_some_rows_fail(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1, [*CLEAN_ROWS, (upn("nobody.here"), "+1 425 555 0109")])
    ran = cli(["apply", job, "--yes", "--run-dir", tmp_path / "run", "--log-format", "json"])
    assert ran.exit_code == 1
    run = ran.result("run")
    assert (run["rows_ok"], run["rows_failed"], run["exit_code"]) == (3, 1, 1)
    assert phones_of(tenant_snapshot(contoso), upn("paul.walker")) == {"mobile": "+1 4255550101"}


# --- 2 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["apply", "JOB", "--bogus"],
        ["plan", "JOB", "--yes"],
        ["resume", "RUN", "--force"],
        ["report"],
        ["validate", "--nope"],
        ["sandbox", "token", "--colour"],
        ["frobnicate"],
    ],
)
def test_exit_2_bad_usage(args: list[str], tmp_path: Path) -> None:
    ran = cli([a.replace("JOB", str(tmp_path / "j.toml")).replace("RUN", str(tmp_path)) for a in args])
    assert ran.exit_code == 2
    assert "Usage:" in ran.stderr and ("No such" in ran.stderr or "Missing argument" in ran.stderr)


@pytest.mark.parametrize("command", ["plan", "apply", "validate"])
def test_exit_2_job_file_with_a_wrong_key_names_the_key(command: str, contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1, extra="[safety]\nmax_delete_pcent = 5\n")
    before = contoso.stats()["http_requests"]
    args = {"plan": ["plan", job], "apply": ["apply", job, "--yes"], "validate": ["validate", "--job", job]}[command]
    ran = cli([*args, *([] if command == "validate" else ["--log-format", "json"])])
    assert ran.exit_code == 2
    text = error_messages(ran)[0] if command != "validate" else " ".join(ran.stdout.split())
    assert "safety.max_delete_pcent: unknown key (did you mean 'max_delete_percent'?)" in text
    assert str(job) in text
    assert contoso.stats()["http_requests"] == before  # nothing was even read


def test_exit_2_roster_that_does_not_exist(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1)
    missing = tmp_path / "no_such_roster.xlsx"
    for args in (["plan", job, "--roster", missing], ["apply", job, "--yes", "--roster", missing]):
        ran = cli([*args, "--log-format", "json"])
        assert ran.exit_code == 2
        (message,) = error_messages(ran)
        assert str(missing) in message
    validated = cli(["validate", missing])
    assert validated.exit_code == 2 and "no_such_roster.xlsx" in validated.stdout
    (tmp_path / "clean.csv").unlink()  # the job's own roster.path gone
    ran = cli(["apply", job, "--yes", "--log-format", "json"])
    assert ran.exit_code == 2 and str(tmp_path / "clean.csv") in error_messages(ran)[0]
    assert contoso.stats()["writes_succeeded"] == 0


def test_exit_2_apply_without_yes_and_no_terminal_refuses(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1)
    before = tenant_snapshot(contoso)
    ran = cli(["apply", job, "--run-dir", tmp_path / "run", "--log-format", "json"])  # CliRunner: stdin isn't a TTY
    assert ran.exit_code == 2
    assert "refusing to write without confirmation" in error_messages(ran)[0]
    assert ran.result("plan")["changes"] == 3  # the summary was shown first
    assert contoso.stats()["writes_succeeded"] == 0 and tenant_snapshot(contoso) == before
    assert not (tmp_path / "run").exists()

    proc = run_provision(["apply", job, "--run-dir", tmp_path / "run"], cwd=tmp_path)  # a real process, stdin /dev/null
    assert proc.exit_code == 2
    # no TTY: JSON lines only, the error once (no second, plain copy from logging's last resort)
    errors = [e for e in proc.json_lines() if e.get("level") == "error"]
    assert len(errors) == 1 and "--yes" in errors[0]["message"] and errors[0]["exit_code"] == 2
    assert contoso.stats()["writes_succeeded"] == 0


# --- 3 ------------------------------------------------------------------------------------


def test_exit_3_unsafe_plan_refused_writes_nothing_then_force_applies(contoso: Any, tmp_path: Path) -> None:
    job = unsafe_nightly(tmp_path, contoso.v1)
    before = tenant_snapshot(contoso)

    planned = cli(["plan", job, "--out", tmp_path / "plan.json", "--log-format", "json"])
    assert planned.exit_code == 3
    assert "max_delete_percent 1%" in planned.result("plan")["safety"]

    refused = cli(["apply", job, "--yes", "--run-dir", tmp_path / "run", "--log-format", "json"])
    assert refused.exit_code == 3
    (message,) = error_messages(refused)
    assert "max_delete_percent" in message and "--force" in message
    assert contoso.stats()["writes_succeeded"] == 0
    assert tenant_snapshot(contoso) == before
    assert not (tmp_path / "run").exists()

    forced = cli(["apply", job, "--yes", "--force", "--run-dir", tmp_path / "run", "--log-format", "json"])
    assert forced.exit_code == 1  # applied; the extract's bad rows still fail
    assert forced.result("run")["changes_done"]["delete"] == 2
    assert phones_of(tenant_snapshot(contoso), upn("elena.petrova")) == {"mobile": "+1 2065550171"}


# --- 4 ------------------------------------------------------------------------------------


def test_exit_4_token_for_another_tenant(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1)
    env = {"PROVISION_TOKEN": make_token(tid="00000000-0000-4000-8000-00000000beef")}
    for args in (["plan", job], ["apply", job, "--yes", "--run-dir", tmp_path / "run"]):
        ran = cli([*args, "--log-format", "json"], env=env)
        assert ran.exit_code == 4
        (message,) = error_messages(ran)
        assert "401" in message and "InvalidAuthenticationToken" in message
    assert contoso.stats()["writes_succeeded"] == 0


# A token the service accepts but whose roles don't cover the job: every phone read (or every
# write) answers 403 Authorization_RequestDenied inside the $batch. That is the credential's
# problem, not the rows': a scheduler must see 4 (permission failure).


def test_exit_4_token_without_the_needed_roles(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1)
    env = {"PROVISION_TOKEN": make_token(roles=["User.Read.All"], tid=CONTOSO_TENANT_ID)}
    planned = cli(["plan", job, "--out", tmp_path / "plan.json", "--log-format", "json"], env=env)
    applied = cli(["apply", job, "--yes", "--run-dir", tmp_path / "run", "--log-format", "json"], env=env)
    assert contoso.stats()["writes_succeeded"] == 0
    assert (planned.exit_code, applied.exit_code) == (4, 4)
    assert "accessDenied" in error_messages(applied)[0]


def test_exit_4_token_that_may_read_but_not_write(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1)
    token = make_token(roles=["UserAuthenticationMethod.Read.All", "Policy.Read.All", "User.Read.All"], tid=CONTOSO_TENANT_ID)
    ran = cli(["apply", job, "--yes", "--run-dir", tmp_path / "run", "--log-format", "json"], env={"PROVISION_TOKEN": token})
    assert contoso.stats()["writes_succeeded"] == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert (ran.exit_code, summary["exit_code"]) == (4, 4)


def test_help_lists_the_one_exit_code_table() -> None:
    from typer.testing import CliRunner

    from provision.cli import app
    from provision.errors import EXIT_MEANINGS, ExitCode

    out = CliRunner().invoke(app, ["--help"], terminal_width=200).output
    assert set(EXIT_MEANINGS) == set(ExitCode)
    for code, meaning in EXIT_MEANINGS.items():
        assert f"{int(code)}  {meaning}" in out
