"""Every run records how it ended: summary.json's status and resume command, the exit code,
and reports that call unreached rows unreached (never a partial success).

Runs go through the real stages against a served sandbox: a stop event for an interrupted
run, a token without write permission for a run refused by Graph.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from run_support import (
    StopAfterFirstChange,
    apply_in_process,
    mobiles_held,
    read_results,
    read_summary,
    report_html,
    roster,
    served,
    tenant_with_users,
    write_job,
    xlsx_summary,
)

from provision.errors import ExitCode
from provision.executor.journal import Journal, StatusCounts
from provision.executor.settings import ExecutorSettings
from provision.graph.credentials import TOKEN_ENV
from provision.report.values import RunState
from provision.run.pipeline import resume_job
from provision.run.run_report import render_reports, run_ending
from provision.run.rundir import RunDir

USERS = 12


def test_completed_run_has_no_resume_command(tmp_path: Path) -> None:
    app = tenant_with_users(3)
    with served(app) as url:
        outcome = apply_in_process(write_job(tmp_path, url, roster(3)), tmp_path / "run")
    summary = read_summary(tmp_path / "run")
    assert (summary["status"], summary["resume_command"], summary["exit_code"]) == ("completed", None, 0)
    assert outcome.summary.exit_code == ExitCode.OK
    assert "interrupted" not in report_html(tmp_path / "run")
    assert xlsx_summary(tmp_path / "run")["Status"][0] == "completed"
    assert mobiles_held(app, 3) == 3


def test_run_stopped_before_its_first_write_is_interrupted_then_resume_completes_it(tmp_path: Path) -> None:
    app = tenant_with_users(USERS)
    run_dir = tmp_path / "run"
    stop = asyncio.Event()
    stop.set()  # as a Ctrl-C right after the confirmation would
    with served(app) as url:
        outcome = apply_in_process(write_job(tmp_path, url, roster(USERS)), run_dir, stop=stop)
        summary = read_summary(run_dir)
        assert summary["status"] == "interrupted" and summary["exit_code"] == ExitCode.STOPPED == 5
        assert summary["resume_command"] == f"provision resume {run_dir}"
        assert summary["rows_by_outcome"]["planned"] == USERS and outcome.summary.rows_not_reached == USERS
        sentence = f"interrupted: {USERS} rows not reached, resume with provision resume {run_dir}"
        html = report_html(run_dir)
        assert sentence in html and "Plan only" not in html and "Partly done" not in html
        assert sentence in xlsx_summary(run_dir)["Status"][1]
        assert xlsx_summary(run_dir)["Resume with"][0] == f"provision resume {run_dir}"
        assert mobiles_held(app, USERS) == 0

        resumed = asyncio.run(resume_job(RunDir(run_dir)))
    summary = read_summary(run_dir)
    assert (summary["status"], summary["resume_command"], summary["exit_code"]) == ("completed", None, 0)
    assert resumed.summary.rows_by_outcome == {"applied": USERS}
    assert "rows not reached" not in report_html(run_dir)
    assert mobiles_held(app, USERS) == USERS


def test_run_stopped_mid_way_counts_the_rows_it_did_not_reach(tmp_path: Path) -> None:
    app = tenant_with_users(USERS)
    run_dir = tmp_path / "run"
    stop = asyncio.Event()
    # One change per batch, one batch at a time, progress after every answer: the stop
    # lands after the first finished change whatever the machine's speed.
    one_at_a_time = ExecutorSettings(batch_size=1, max_batches=1, progress_interval_s=0.0, settle_s=0.1)
    with served(app) as url:
        apply_in_process(write_job(tmp_path, url, roster(USERS)), run_dir, settings=one_at_a_time, stop=stop,
                         console=StopAfterFirstChange(stop))
    summary = read_summary(run_dir)
    held = mobiles_held(app, USERS)
    assert 0 < held < USERS
    assert summary["status"] == "interrupted" and summary["exit_code"] == 5
    assert summary["rows_by_outcome"]["applied"] == held
    assert summary["rows_by_outcome"]["planned"] == USERS - held
    outcomes = [r["outcome"] for r in read_results(run_dir).values()]
    assert outcomes.count("planned") == USERS - held
    assert f"interrupted: {USERS - held} rows not reached, resume with provision resume {run_dir}" in report_html(run_dir)


def test_run_refused_by_graph_is_failed_exit_4_and_names_each_refusal(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    users = 25  # more than the executor's DENIED_WRITES_ABORT refusals in a row
    app = tenant_with_users(users)
    read_only = app.sandbox.token(roles=["UserAuthenticationMethod.Read.All", "Policy.Read.All", "User.Read.All"])
    monkeypatch.setenv(TOKEN_ENV, read_only)
    run_dir = tmp_path / "run"
    with served(app) as url:
        apply_in_process(write_job(tmp_path, url, roster(users)), run_dir)
    summary = read_summary(run_dir)
    assert (summary["status"], summary["exit_code"]) == ("failed", ExitCode.AUTH)
    assert summary["resume_command"] == f"provision resume {run_dir}"
    assert mobiles_held(app, users) == 0
    rows = read_results(run_dir)
    refused = [r for r in rows.values() if r["http_status"] == "403"]
    assert refused, "no row shows the refusal"
    for r in refused:
        assert r["request_id"] and r["error_code"]
    assert "stopped: authentication or permission failure" in report_html(run_dir)


def test_run_the_executor_ended_as_unreachable_is_failed_exit_5(tmp_path: Path) -> None:
    app = tenant_with_users(4)
    run_dir = tmp_path / "run"
    stop = asyncio.Event()
    stop.set()
    with served(app) as url:
        apply_in_process(write_job(tmp_path, url, roster(4)), run_dir, stop=stop)
    # What the executor leaves when the target stops answering mid-run (RunStatus "unreachable").
    journal = Journal.open(run_dir)
    journal.set_meta("status", "unreachable")
    journal.close()
    outcome = render_reports(RunDir(run_dir))
    summary = read_summary(run_dir)
    assert (summary["status"], summary["exit_code"]) == ("failed", ExitCode.STOPPED)
    assert summary["resume_command"] == f"provision resume {run_dir}" == outcome.summary.resume_command
    assert "could not be reached: 4 rows not reached, resume with provision resume" in report_html(run_dir)


@pytest.mark.parametrize(
    ("status", "counts", "rows_failed", "expected"),
    [
        ("completed", StatusCounts(done=3), 0, (RunState.COMPLETED, ExitCode.OK, False)),
        ("completed", StatusCounts(done=2, failed=1), 1, (RunState.COMPLETED, ExitCode.ROWS_FAILED, False)),
        ("completed", StatusCounts(done=2, in_flight=1), 1, (RunState.COMPLETED, ExitCode.ROWS_FAILED, True)),
        ("interrupted", StatusCounts(done=1, pending=2), 2, (RunState.INTERRUPTED, ExitCode.STOPPED, True)),
        ("interrupted", StatusCounts(done=3), 0, (RunState.COMPLETED, ExitCode.OK, False)),  # nothing was left
        ("unreachable", StatusCounts(done=1, pending=2), 2, (RunState.FAILED, ExitCode.STOPPED, True)),
        ("aborted", StatusCounts(failed=20, pending=5), 25, (RunState.FAILED, ExitCode.AUTH, True)),
        ("", StatusCounts(done=1, in_flight=1, pending=1), 2, (RunState.INTERRUPTED, ExitCode.STOPPED, True)),  # killed
        ("from_a_newer_writer", StatusCounts(pending=1), 1, (RunState.FAILED, ExitCode.STOPPED, True)),
    ],
)
def test_one_mapping_from_the_executor_status_to_the_run_ending(
    status: str, counts: StatusCounts, rows_failed: int, expected: tuple[RunState, ExitCode, bool]
) -> None:
    ending = run_ending(status, counts, rows_failed=rows_failed, denied_everywhere=False, run_dir=Path("/runs/r 1"))
    assert (ending.state, ending.exit_code, ending.resume_command is not None) == expected
    if ending.resume_command:
        assert ending.resume_command == "provision resume '/runs/r 1'"  # pastes into a shell as is

