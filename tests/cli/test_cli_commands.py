"""Every command, in process (CliRunner) and as real `python -m provision` processes:
--help, validate, plan, and `sandbox serve | token | snapshot` driving a real job run."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_support import (
    CONTOSO,
    CONTOSO_TENANT_ID,
    JOBS,
    SAMPLE,
    clean_job,
    cli,
    leaked_numbers,
    phones_of,
    read_csv_rows,
    shipped_job,
    tenant_snapshot,
    upn,
)
from support.cli import run_provision, start_provision

from provision.planner.plan_file import read_plan
from provision.sandbox.auth import decode_token

COMMANDS = ("validate", "plan", "apply", "resume", "report", "export", "rollback", "sandbox", "fleet", "doctor")


def test_help_lists_every_command_in_process_and_as_python_m_provision(tmp_path: Path) -> None:
    in_process = cli(["--help"])
    assert in_process.exit_code == 0
    as_module = run_provision(["--help"], cwd=tmp_path)
    assert as_module.exit_code == 0 and "python -m provision" in as_module.stdout
    for ran in (in_process, as_module):
        assert all(f" {name} " in ran.stdout for name in COMMANDS)
    bare = run_provision([], cwd=tmp_path)  # no command: the usage, and a usage exit
    assert bare.exit_code == 2 and "Usage:" in bare.stdout + bare.stderr


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (["plan"], ["--roster", "--out", "--log-format"]),
        (["apply"], ["--plan", "--yes", "--force", "--run-dir", "--roster", "--verify", "--log-format"]),
        (["resume"], ["RUN_DIR", "--verify"]),
        (["report"], ["RUN_DIR"]),
        (["validate"], ["--job", "--region", "--sheet", "--out"]),
        (["sandbox"], ["serve", "token", "snapshot", "seed-fleet"]),
        (["sandbox", "serve"], ["--host", "--port", "--snapshot", "--profile", "--save", "--tenants", "--save-dir"]),
        (["fleet"], ["plan", "apply", "resume", "report"]),
        (["fleet", "apply"], ["FLEET", "--cluster", "--only", "--group", "--yes", "--log-format"]),
        (["fleet", "resume"], ["FLEET_DIR", "--cluster"]),
        (["sandbox", "token"], ["--roles", "--scp", "--tid", "--url"]),
        (["sandbox", "snapshot"], ["--url", "--out"]),
    ],
)
def test_each_command_help(command: list[str], options: list[str]) -> None:
    ran = cli([*command, "--help"])
    assert ran.exit_code == 0
    assert all(o in ran.stdout for o in options)


def test_validate_reports_row_problems_without_touching_a_tenant(tmp_path: Path) -> None:
    job = JOBS / "onboarding.toml"
    ran = cli(["validate", "--job", job, "--out", tmp_path / "rows.csv"])
    assert ran.exit_code == 1  # the sample has row errors
    text = " ".join(ran.stdout.split())
    assert "rows read 25" in text and "errors 5" in text and "blank rows 0" in text
    assert "invalid_user" in text and "extension_not_allowed" in text
    rows = read_csv_rows(tmp_path / "rows.csv")
    assert len(rows) == 25 and {r["status"] for r in rows} == {"ok", "warning", "error"}
    assert not leaked_numbers(ran.output)

    clean = tmp_path / "clean.csv"
    clean.write_text("upn,mobile\npaul.walker@contoso.com,+1 425 555 0101\n", encoding="utf-8")
    proc = run_provision(["validate", clean], cwd=tmp_path)
    assert proc.exit_code == 0 and "rows read" in proc.stdout
    assert not (tmp_path / ".provision").exists()


def test_plan_writes_a_plan_file_and_never_writes_to_the_tenant(contoso: Any, tmp_path: Path) -> None:
    job = shipped_job(tmp_path, "onboarding", contoso.v1)
    before = tenant_snapshot(contoso)
    ran = cli(["plan", job, "--out", tmp_path / "onboarding-plan.json", "--log-format", "json"])
    assert ran.exit_code == 1  # rows with errors
    result = ran.result("plan")
    assert result["changes"] == 20 and result["changes_by_kind"]["update"] == 1
    assert result["plan_file"] == str(tmp_path / "onboarding-plan.json")
    saved = read_plan(tmp_path / "onboarding-plan.json")
    assert len(list(saved.changes)) == 20 and saved.job == "onboarding"
    assert contoso.stats()["writes_succeeded"] == 0 and tenant_snapshot(contoso) == before

    # default plan path: <output dir>/<job>-<UTC time>-plan.json; --roster replaces the roster
    other = tmp_path / "two.csv"
    other.write_text("Work Email,Mobile Phone\namara.okafor@contoso.com,+234 803 123 4567\nliam.davies@contoso.com,+44 7911 123458\n", encoding="utf-8")
    text = cli(["plan", job, "--roster", other, "--log-format", "text"])
    assert text.exit_code == 0
    (written,) = (tmp_path / "reports").glob("onboarding-*-plan.json")
    assert f"Plan written to {written} (checksum" in text.stdout  # whole on one line, even at 80 columns
    assert "Users: 2: 1 to change, 1 already right" in text.stdout
    assert contoso.stats()["writes_succeeded"] == 0


def test_sandbox_serve_token_snapshot_drive_a_real_run(tmp_path: Path) -> None:
    """`sandbox serve` in one process, `sandbox token`/`snapshot` and `apply` in others."""
    server = start_provision("sandbox", "serve", "--port", "0", "--snapshot", CONTOSO, "--save", tmp_path / "saved.json", cwd=tmp_path)
    try:
        assert server.stdout is not None
        v1 = server.stdout.readline().strip()
        assert v1.startswith("http://127.0.0.1:") and v1.endswith("/v1.0")
        assert server.stdout.readline().strip().endswith("/beta")

        token = run_provision(["sandbox", "token", "--url", v1], cwd=tmp_path)
        assert token.exit_code == 0
        assert decode_token(token.stdout.strip()).tenant_id == CONTOSO_TENANT_ID

        job = clean_job(tmp_path, v1)
        applied = run_provision(["apply", job, "--yes", "--run-dir", tmp_path / "run"], cwd=tmp_path, env={"PROVISION_TOKEN": token.stdout.strip()})
        assert applied.exit_code == 0, applied.stderr
        assert applied.result("run")["rows_by_outcome"] == {"applied": 3}

        snap = run_provision(["sandbox", "snapshot", "--url", v1.removesuffix("/v1.0"), "--out", tmp_path / "snap.json"], cwd=tmp_path)
        assert snap.exit_code == 0 and "snapshot written" in snap.stderr
        state = json.loads((tmp_path / "snap.json").read_text(encoding="utf-8"))
        assert state["tenant_id"] == CONTOSO_TENANT_ID
        assert phones_of(state, upn("tom.becker")) == {"mobile": "+49 15123456781"}
        assert phones_of(state, upn("liam.davies")) == {"mobile": "+44 7911123458"}
        assert not leaked_numbers(token.output + applied.output + snap.output)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
    saved = json.loads((tmp_path / "saved.json").read_text(encoding="utf-8"))
    assert phones_of(saved, upn("paul.walker")) == {"mobile": "+1 4255550101"}


def test_sample_snapshot_is_what_the_contoso_fixture_serves(contoso: Any) -> None:
    """Guards the other tests' premise: the fixture serves sample_data/contoso_tenant.json."""
    served = tenant_snapshot(contoso)
    assert served["tenant_id"] == CONTOSO_TENANT_ID
    assert phones_of(served, upn("omar.haddad")) == {"mobile": "+1 4255550130"}
    assert (SAMPLE / "contoso_tenant.json").samefile(CONTOSO)
