"""Run directories: created whole or not at all, and a half-made one is met with the next step.

A run killed before its journal existed wrote nothing to the tenant. `provision resume` and
`provision report` of such a directory exit 2 with one line naming what is missing and
saying that `provision apply` again is safe. The partial states are built by hand (each
one a kill between two steps of a run's start) and checked through the real CLI.
"""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path
from typing import Callable

import pytest
from support.cli import run_provision
from support.run_dirs import NIGHTLY_JOB_TEXT, nightly_job

from provision.errors import UsageError
from provision.run.rundir import JOB_FILE, JOURNAL_FILE, PLAN_FILE, RESOLVED_JOB_FILE, create_run_dir


def test_create_run_dir_makes_the_whole_directory_owner_only_and_leaves_nothing_else(tmp_path: Path) -> None:
    job = nightly_job(tmp_path)
    path = tmp_path / "reports" / "nightly-1"
    run = create_run_dir(path, job, job.roster.path)
    assert run.path == path
    assert sorted(p.name for p in path.iterdir()) == sorted([JOB_FILE, RESOLVED_JOB_FILE, "roster.csv"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["nightly-1"]  # no temporary left beside it
    assert run.load_job().source == tmp_path / "nightly.toml"


def test_create_run_dir_that_fails_leaves_no_directory(tmp_path: Path) -> None:
    job = nightly_job(tmp_path)
    path = tmp_path / "reports" / "nightly-1"
    with pytest.raises(FileNotFoundError):
        create_run_dir(path, job, tmp_path / "no-such-roster.csv")
    assert list(path.parent.iterdir()) == []


def test_create_run_dir_fills_an_empty_directory_and_refuses_a_used_one(tmp_path: Path) -> None:
    job = nightly_job(tmp_path)
    empty = tmp_path / "chosen"
    empty.mkdir(mode=0o755)
    create_run_dir(empty, job, job.roster.path)
    assert (empty / RESOLVED_JOB_FILE).is_file() and stat.S_IMODE(empty.stat().st_mode) == 0o700
    with pytest.raises(UsageError, match="already exists and is not empty"):
        create_run_dir(empty, job, job.roster.path)


def _job_file_only(tmp_path: Path, run: Path) -> None:
    run.mkdir(parents=True)
    (run / JOB_FILE).write_text(NIGHTLY_JOB_TEXT, encoding="utf-8")


def _copies(tmp_path: Path, run: Path) -> None:
    job = nightly_job(tmp_path)
    create_run_dir(run, job, job.roster.path)


def _copies_and_plan(tmp_path: Path, run: Path) -> None:
    _copies(tmp_path, run)
    (run / PLAN_FILE).write_text(json.dumps({"format": 1, "changes": []}), encoding="utf-8")


def _empty_journal(tmp_path: Path, run: Path) -> None:
    _copies_and_plan(tmp_path, run)
    (run / JOURNAL_FILE).touch()  # claimed with O_EXCL, killed before SQLite wrote a page


def _journal_without_schema(tmp_path: Path, run: Path) -> None:
    _copies_and_plan(tmp_path, run)
    conn = sqlite3.connect(run / JOURNAL_FILE)  # WAL mode set, the schema's transaction never committed
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


def _files(run: Path) -> dict[str, bytes]:
    """The directory's files and contents (not SQLite's -wal/-shm: reading a journal may make them)."""
    return {p.name: p.read_bytes() for p in run.iterdir() if not p.name.endswith(("-wal", "-shm"))}


PARTIAL_STATES: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "job.toml only": (_job_file_only, f"no {RESOLVED_JOB_FILE}, no roster copy, no {PLAN_FILE}, no {JOURNAL_FILE}"),
    "job and roster": (_copies, f"no {PLAN_FILE}, no {JOURNAL_FILE}"),
    "plan but no journal": (_copies_and_plan, f"no {JOURNAL_FILE}"),
    "empty journal": (_empty_journal, f"{JOURNAL_FILE} was left half-created"),
    "journal without schema": (_journal_without_schema, f"{JOURNAL_FILE} was left half-created"),
}


@pytest.mark.parametrize("state", list(PARTIAL_STATES))
@pytest.mark.parametrize("command", ["resume", "report"])
def test_resume_and_report_of_a_half_made_run_directory_say_to_apply_again(tmp_path: Path, state: str, command: str) -> None:
    build, missing = PARTIAL_STATES[state]
    run = tmp_path / "reports" / "nightly-20260101T020000Z"
    build(tmp_path, run)
    before = _files(run)

    ran = run_provision([command, run, "--log-format", "json"], cwd=tmp_path)

    assert ran.exit_code == 2, ran.stderr[-2000:]
    errors = [e for e in ran.json_lines() if e.get("level") == "error"]
    assert len(errors) == 1
    message = errors[0]["message"]
    assert message.startswith(f"error: {run}: this run stopped before it started writing ({missing}): ")
    assert "nothing was written to the tenant" in message
    if state == "job.toml only":
        assert f"run `provision apply` with the job file (this run's copy: {run / JOB_FILE}) again" in message
    else:
        assert f"run `provision apply {tmp_path / 'nightly.toml'}` again (safe: nothing was written)" in message
    assert _files(run) == before  # refused without changing it


def test_resume_of_a_directory_that_does_not_exist_says_so(tmp_path: Path) -> None:
    ran = run_provision(["resume", tmp_path / "nope", "--log-format", "json"], cwd=tmp_path)
    assert ran.exit_code == 2
    assert ran.json_lines()[-1]["message"] == f"error: {tmp_path / 'nope'}: no such run directory; give the directory `provision apply` printed"
