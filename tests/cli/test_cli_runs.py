"""A run directory after the fact (`report`, `resume`) and applying a reviewed plan (`apply --plan`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_support import (
    clean_job,
    cli,
    phones_of,
    read_csv_rows,
    shipped_job,
    tenant_snapshot,
    upn,
)

REPORT_FILES = ("results.csv", "results.xlsx", "summary.json", "report.html")


def applied_onboarding(contoso: Any, tmp_path: Path) -> tuple[Path, Any]:
    job = shipped_job(tmp_path, "onboarding", contoso.v1)
    ran = cli(["apply", job, "--yes", "--run-dir", tmp_path / "run", "--log-format", "json"])
    assert ran.exit_code == 1
    return tmp_path / "run", ran


def test_report_re_renders_identical_results(contoso: Any, tmp_path: Path) -> None:
    run, _ = applied_onboarding(contoso, tmp_path)
    csv_before = (run / "results.csv").read_bytes()
    summary_before = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    for name in REPORT_FILES:
        (run / name).unlink()
    requests = contoso.stats()["http_requests"]

    ran = cli(["report", run, "--log-format", "json"])
    assert ran.exit_code == 1 == summary_before["exit_code"]
    assert all((run / name).exists() for name in REPORT_FILES)
    assert (run / "results.csv").read_bytes() == csv_before
    assert json.loads((run / "summary.json").read_text(encoding="utf-8")) == summary_before
    assert contoso.stats()["http_requests"] == requests  # from the run directory alone

    text = cli(["report", run, "--log-format", "text"])
    assert text.exit_code == 1 and f"Report: {run / 'report.html'}\n" in text.stdout
    assert (run / "results.csv").read_bytes() == csv_before


def test_report_and_resume_refuse_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for command in ("report", "resume"):
        ran = cli([command, tmp_path / "empty", "--log-format", "json"])
        assert ran.exit_code == 2
        assert "not a run directory" in ran.json_lines()[-1]["message"]


def test_resume_of_a_finished_run_says_nothing_is_left_and_keeps_the_exit_code(contoso: Any, tmp_path: Path) -> None:
    run, applied = applied_onboarding(contoso, tmp_path)
    csv_before = (run / "results.csv").read_bytes()
    state = tenant_snapshot(contoso)
    writes = contoso.stats()["writes_succeeded"]

    ran = cli(["resume", run, "--log-format", "json"])
    assert ran.exit_code == applied.exit_code == 1
    notes = [e["message"] for e in ran.json_lines() if e.get("event") == "log"]
    assert any("already finished" in n for n in notes)
    assert ran.result("run")["status"] == "completed" and ran.result("run")["resume"] is None
    assert (run / "results.csv").read_bytes() == csv_before

    text = cli(["resume", run, "--log-format", "text"])
    assert text.exit_code == 1 and "already finished" in text.stderr
    assert contoso.stats()["writes_succeeded"] == writes and tenant_snapshot(contoso) == state


def test_apply_a_reviewed_plan(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1)
    planned = cli(["plan", job, "--out", tmp_path / "plan.json", "--log-format", "json"])
    assert planned.exit_code == 0 and planned.result("plan")["changes"] == 3
    ran = cli(["apply", job, "--plan", tmp_path / "plan.json", "--yes", "--run-dir", tmp_path / "run", "--log-format", "json"])
    assert ran.exit_code == 0
    assert ran.result("run")["changes_done"] == {"create": 3}
    assert phones_of(tenant_snapshot(contoso), upn("paul.walker")) == {"mobile": "+1 4255550101"}
    # the run's plan.json is the reviewed plan (same checksum)
    reviewed = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    applied = json.loads((tmp_path / "run" / "plan.json").read_text(encoding="utf-8"))
    assert applied["checksum"] == reviewed["checksum"]


def test_apply_refuses_a_plan_the_tenant_no_longer_matches(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1)
    assert cli(["plan", job, "--out", tmp_path / "plan.json", "--log-format", "json"]).exit_code == 0
    # someone registers a phone for one of the roster users between review and apply
    contoso.tenant.create_phone(upn("nina.patel"), "+44 7911123499", "mobile")
    state = tenant_snapshot(contoso)
    writes = contoso.stats()["writes_succeeded"]

    ran = cli(["apply", job, "--plan", tmp_path / "plan.json", "--yes", "--run-dir", tmp_path / "run", "--log-format", "json"])
    assert ran.exit_code == 3
    (error,) = [e["message"] for e in ran.json_lines() if e.get("level") == "error"]
    assert "no longer matches" in error and "provision plan" in error
    assert contoso.stats()["writes_succeeded"] == writes
    assert tenant_snapshot(contoso) == state
    assert phones_of(state, upn("paul.walker")) == {}
    assert not (tmp_path / "run").exists()

    # a fresh plan of the new state applies
    assert cli(["plan", job, "--out", tmp_path / "plan2.json", "--log-format", "json"]).exit_code == 0
    again = cli(["apply", job, "--plan", tmp_path / "plan2.json", "--yes", "--run-dir", tmp_path / "run", "--log-format", "json"])
    assert again.exit_code == 0
    rows = {r["user"]: r for r in read_csv_rows(tmp_path / "run" / "results.csv")}
    assert rows[upn("nina.patel")]["mobile_action"] == "update"
    assert phones_of(tenant_snapshot(contoso), upn("nina.patel")) == {"mobile": "+44 7911123460"}
