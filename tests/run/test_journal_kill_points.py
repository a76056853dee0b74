"""A run killed inside ``Journal.create`` wrote nothing, and its run directory says so.

Each test SIGKILLs a child at one point of ``Journal.create`` (``support.killed_journal``:
no timing involved), then judges the run directory as ``resume``, ``report`` and a fleet's
retry do (``RunDir.check_started``). Killed before the creation committed: "stopped before
it started writing", so applying again is safe. Killed after: a journal to resume, holding
every change. The kill inside the WAL switch (the header page written, its rollback
journal not yet deleted) is the one a read-only look misjudged: it can't roll a hot
journal back, so the file was taken for a journal and the retry's resume then refused it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from support.killed_journal import (
    AFTER_CREATE,
    CHANGES,
    CREATED_POINTS,
    STATEMENT_POINTS,
    SYSCALL_POINTS,
    can_strace,
    kill_journal_create,
    killed_in_the_wal_switch,
)
from support.run_dirs import nightly_job

from provision.errors import UsageError
from provision.executor.journal import ChangeStatus, Journal
from provision.run.rundir import JOURNAL_FILE, RunDir, create_run_dir

HALF_CREATED = f"this run stopped before it started writing ({JOURNAL_FILE} was left half-created)"


def _run_dir(tmp_path: Path) -> RunDir:
    job = nightly_job(tmp_path)
    run = create_run_dir(tmp_path / "reports" / "nightly-20260101T020000Z", job, job.roster.path)
    (run.plan_file).write_text('{"format": 1, "changes": []}', encoding="utf-8")
    return run


def _check(run: RunDir, point: str) -> None:
    if point in CREATED_POINTS:
        run.check_started()  # a journal to resume: writes may have begun
        with Journal.open(run.path) as journal:
            assert journal.counts()[ChangeStatus.PENDING] == CHANGES
    else:
        with pytest.raises(UsageError, match=re.escape(HALF_CREATED)):
            run.check_started()


@pytest.mark.parametrize("point", [*STATEMENT_POINTS, AFTER_CREATE])
def test_a_journal_killed_at_a_statement_is_judged_by_whether_its_creation_committed(tmp_path: Path, point: str) -> None:
    run = _run_dir(tmp_path)
    kill_journal_create(run.journal_file, point)
    _check(run, point)


@pytest.mark.skipif(not can_strace(), reason="strace is not installed or may not trace here")
@pytest.mark.parametrize("point", list(SYSCALL_POINTS))
def test_a_journal_killed_inside_a_statement_is_judged_by_whether_its_creation_committed(tmp_path: Path, point: str) -> None:
    run = _run_dir(tmp_path)
    kill_journal_create(run.journal_file, point)
    _check(run, point)


def test_a_journal_killed_in_the_wal_switch_is_half_created_and_rolled_back(tmp_path: Path) -> None:
    # The same leftovers built by hand, so this holds where strace can't run.
    run = _run_dir(tmp_path)
    killed_in_the_wal_switch(run.journal_file)
    with pytest.raises(UsageError, match=re.escape(HALF_CREATED)):
        run.check_started()
    # Judged after SQLite rolled the killed writer's switch back: nothing of it is left.
    assert run.journal_file.stat().st_size == 0
    assert not Path(f"{run.journal_file}-journal").exists()


def test_judging_a_missing_journal_creates_nothing(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    with pytest.raises(UsageError, match=f"no {JOURNAL_FILE}"):
        run.check_started()
    assert sorted(p.name for p in run.path.iterdir()) == ["job.resolved.json", "job.toml", "plan.json", "roster.csv"]


def test_judging_a_finished_journal_changes_none_of_its_content(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    kill_journal_create(run.journal_file, AFTER_CREATE)  # its WAL never copied back
    with Journal.open(run.path, read_only=True) as journal:
        before = ([e for e in journal.changes()], journal.meta())
    run.check_started()
    run.check_started()
    with Journal.open(run.path, read_only=True) as journal:
        assert ([e for e in journal.changes()], journal.meta()) == before


def _foreign_database(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()


def _not_sqlite(db: Path) -> None:
    db.write_bytes(b"user,mobile\n" * 400)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (_foreign_database, "not a provision run journal (another application's file, or a journal whose creation was interrupted)"),
        (_not_sqlite, "not a provision run journal (not an SQLite database)"),
    ],
)
def test_a_file_that_is_no_journal_is_left_to_the_journal_to_name(tmp_path: Path, build: Callable[[Path], None], words: str) -> None:
    run = _run_dir(tmp_path)
    build(run.journal_file)
    before = run.journal_file.read_bytes()
    run.check_started()  # not judged half-created: opening it says what it is
    with pytest.raises(UsageError, match=re.escape(f"{run.journal_file}: {words}")):
        Journal.open(run.path)
    assert run.journal_file.read_bytes() == before
