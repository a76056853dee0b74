"""`provision plan --check`: a drift check for monitoring. Exit 6 while changes are pending,
0 once the tenant matches the roster; other refusals keep their codes; no plan file
unless --out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_support import clean_job, tenant_snapshot
from support.cli import run_provision


def test_check_exits_6_on_drift_and_0_once_applied(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1)
    before = tenant_snapshot(contoso)

    drift = run_provision(["plan", job, "--check", "--log-format", "json"], cwd=tmp_path)
    assert drift.exit_code == 6, drift.stderr[-2000:]
    result = drift.result("check")  # every stderr line is JSON
    assert result["drift"] is True and result["changes"] == 3 and result["plan_file"] is None
    assert not list(tmp_path.rglob("*-plan.json"))  # a check writes no plan unless asked
    assert tenant_snapshot(contoso) == before  # and never writes to the tenant

    text = run_provision(["plan", job, "--check", "--log-format", "text", "--out", tmp_path / "drift.json"], cwd=tmp_path)
    assert text.exit_code == 6 and "Drift: 3 changes pending" in text.stdout
    assert json.loads((tmp_path / "drift.json").read_text(encoding="utf-8"))["users"]

    applied = run_provision(["apply", job, "--yes", "--run-dir", tmp_path / "run", "--log-format", "json"], cwd=tmp_path)
    assert applied.exit_code == 0, applied.stderr[-2000:]

    clean = run_provision(["plan", job, "--check", "--log-format", "json"], cwd=tmp_path)
    assert clean.exit_code == 0, clean.stderr[-2000:]
    assert clean.result("check")["drift"] is False and clean.result("check")["changes"] == 0


def test_check_keeps_the_refusal_codes(contoso: Any, tmp_path: Path) -> None:
    job = clean_job(tmp_path, contoso.v1, extra="[safety]\nmax_changes = 1")
    refused = run_provision(["plan", job, "--check", "--log-format", "json"], cwd=tmp_path)
    assert refused.exit_code == 3, refused.stderr[-2000:]
