"""Files holding phone numbers are readable by their owner only, whatever the umask:
run directories 0700 and every file in them 0600, plan files (``--out``), ``validate --out``.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_support import apply_in_process, roster, served, tenant_with_users, write_job

import provision
from provision.cli.validate_cmd import write_report
from provision.private_files import open_private
from provision.run.jobs import load_job
from provision.run.pipeline import report_run, resume_job
from provision.run.plan_stage import load_roster
from provision.run.rundir import RunDir

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: a file left to it would be world-readable (0666)."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_run_directory_is_0700_and_every_file_in_it_0600(tmp_path: Path, open_umask: None) -> None:
    app = tenant_with_users(3)
    run_dir = tmp_path / "reports" / "truth-20260301T020000Z"
    with served(app) as url:
        apply_in_process(write_job(tmp_path, url, roster(3), settings='[audit]\nfile = "audit.jsonl"'), run_dir)
        asyncio.run(resume_job(RunDir(run_dir)))  # adds run.log and re-renders
    report_run(RunDir(run_dir))
    files = sorted(p for p in run_dir.iterdir())
    names = {p.name for p in files}
    assert {"job.toml", "job.resolved.json", "roster.csv", "plan.json", "journal.sqlite", "results.csv",
            "results.xlsx", "report.html", "summary.json", "changes.jsonl", "run.log"} <= names
    assert mode(run_dir) == 0o700
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o600) for p in files}
    assert mode(tmp_path / "audit.jsonl") == 0o600


def test_plan_and_validate_outputs_are_0600_even_over_a_readable_file(tmp_path: Path, open_umask: None) -> None:
    app = tenant_with_users(2)
    plan_out, checked = tmp_path / "plan.json", tmp_path / "checked.csv"
    for path in (plan_out, checked):
        path.write_text("old\n", encoding="utf-8")
        path.chmod(0o644)
    with served(app) as url:
        job_path = write_job(tmp_path, url, roster(2))
        provision.plan(job_path, out=plan_out)
    write_report(load_roster(load_job(job_path)), checked)
    assert (mode(plan_out), mode(checked)) == (0o600, 0o600)
    assert "+1 425" in plan_out.read_text(encoding="utf-8")  # the full numbers: why it is private
    fresh = tmp_path / "fresh.txt"
    with open_private(fresh) as f:
        f.write("x")
    assert mode(fresh) == 0o600
