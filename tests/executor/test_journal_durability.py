"""What survives kill -9, who may open a journal, and readers alongside the writer."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from support.builders import make_changes

from provision.errors import UsageError
from provision.executor.journal import (
    JOURNAL_FILENAME,
    ChangeResult,
    ChangeStatus,
    EventKind,
    Journal,
    StatusCounts,
)

S = ChangeStatus

# The executor's loop, cut short: three batches of 20 are marked and sent; the first two
# are answered and recorded, the third is answered by the server but the process is
# killed before record_results (the window the protocol must survive).
_KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from provision.executor.journal import ChangeResult, ChangeStatus as S, EventKind, Journal

    journal = Journal.open(sys.argv[1])
    ids = [e.id for e in journal.pending()]
    a, b, c = ids[0:20], ids[20:40], ids[40:60]

    journal.record_event(EventKind.DISPATCH, detail={"batch": 1})
    journal.mark_in_flight(a)
    journal.record_results(
        [ChangeResult(i, S.DONE, 201, request_id="a") for i in a[:15]]
        + [ChangeResult(i, S.FAILED, 400, code="invalidPhoneNumber") for i in a[15:]]
    )
    journal.record_event(EventKind.DISPATCH, detail={"batch": 2})
    journal.mark_in_flight(b)
    journal.record_results(ChangeResult(i, S.DONE, 201, request_id="b") for i in b)
    journal.record_event(EventKind.DISPATCH, detail={"batch": 3})
    journal.mark_in_flight(c)
    acknowledged = [ChangeResult(i, S.DONE, 201, request_id="c") for i in c]  # the server answered
    journal.record_event(EventKind.RESULT, detail={"batch": 3})  # buffered: dies with the process
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_kill_9_loses_nothing_acknowledged_and_leaves_unrecorded_answers_in_flight(tmp_path: Path) -> None:
    changes = make_changes(50)
    ids = [c.id for c in changes]
    with Journal.create(tmp_path, run_meta={"job": "onboarding"}, changes=changes):
        pass

    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(tmp_path)], check=False,
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()

    # The writer lock died with the process: resume can open the journal for writing.
    with Journal.open(tmp_path) as journal:
        statuses = journal.statuses()
        assert {i for i, s in statuses.items() if s is S.DONE} == set(ids[0:15]) | set(ids[20:40])
        assert {i for i, s in statuses.items() if s is S.FAILED} == set(ids[15:20])
        assert [e.id for e in journal.in_flight()] == ids[40:60]
        assert [e.id for e in journal.pending()] == ids[60:100]
        assert journal.counts() == StatusCounts(pending=40, in_flight=20, done=35, failed=5)
        assert all(e.attempts == 1 and e.last_http_status is None for e in journal.in_flight())
        assert {e.request_id for e in journal.by_status(S.DONE)} == {"a", "b"}
        assert [e.detail for e in journal.events()] == [{"batch": 1}, {"batch": 2}, {"batch": 3}]
        assert journal.get_meta("writer_closed_cleanly") == "0"
        assert journal.unclean_restart is False  # same boot: a kill loses no commit

        # Resume: the in-flight batch is read back and found written.
        journal.record_event(EventKind.READBACK, detail={"changes": 20})
        journal.record_results(ChangeResult(i, S.DONE, verified=True) for i in ids[40:60])
        assert journal.counts() == StatusCounts(pending=40, done=55, failed=5)


def test_a_writer_that_ended_uncleanly_on_an_earlier_boot_is_reported(tmp_path: Path) -> None:
    with Journal.create(tmp_path, run_meta={}, changes=make_changes(1)):
        pass
    # What a power loss leaves: the last writer never closed, and the machine rebooted since.
    raw = sqlite3.connect(tmp_path / JOURNAL_FILENAME)
    with raw:
        raw.execute("UPDATE run SET value = '0' WHERE key = 'writer_closed_cleanly'")
        raw.execute("UPDATE run SET value = 'an-earlier-boot' WHERE key = 'writer_boot_id'")
    raw.close()

    with Journal.open(tmp_path) as journal:
        assert journal.unclean_restart is True
    with Journal.open(tmp_path) as journal:
        assert journal.unclean_restart is False


def test_a_second_writer_is_refused_while_the_first_holds_the_journal(tmp_path: Path) -> None:
    first = Journal.create(tmp_path, run_meta={}, changes=make_changes(1))
    with pytest.raises(UsageError, match=f"in use by pid {os.getpid()}"):
        Journal.open(tmp_path)
    with Journal.open(tmp_path, read_only=True) as reader:  # readers are welcome
        assert reader.counts().total == 2
    first.close()
    with Journal.open(tmp_path) as second:
        assert second.counts().pending == 2


def test_a_missing_journal_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no run journal"):
        Journal.open(tmp_path)


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILENAME
    path.write_text("user,mobile\nalice@contoso.com,+1 4255550100\n")
    with pytest.raises(UsageError, match="not an SQLite database"):
        Journal.open(path)
    assert path.read_text() == "user,mobile\nalice@contoso.com,+1 4255550100\n"


def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("CREATE TABLE changes (id TEXT PRIMARY KEY, status TEXT)")
    raw.close()
    before = path.read_bytes()

    with pytest.raises(UsageError, match="not a provision run journal"):
        Journal.open(path)

    assert path.read_bytes() == before  # not switched to WAL, not stamped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]  # no lock file either


def test_a_journal_from_a_newer_provision_is_refused(tmp_path: Path) -> None:
    with Journal.create(tmp_path, run_meta={}, changes=make_changes(1)):
        pass
    raw = sqlite3.connect(tmp_path / JOURNAL_FILENAME)
    raw.execute("PRAGMA user_version = 2")
    raw.close()

    with pytest.raises(UsageError, match="newer provision .journal format 2; this version reads up to 1"):
        Journal.open(tmp_path)
    with pytest.raises(UsageError, match="newer provision"):
        Journal.open(tmp_path, read_only=True)


def test_a_reader_snapshot_is_consistent_and_does_not_block_the_writer(tmp_path: Path) -> None:
    changes = make_changes(1500)  # more rows than one fetch: the snapshot spans the writes
    ids = [c.id for c in changes]
    writer = Journal.create(tmp_path, run_meta={}, changes=changes)
    reader = Journal.open(tmp_path, read_only=True)

    with reader.snapshot():
        assert reader.counts() == StatusCounts(pending=3000)
        rows = reader.changes()
        first = [next(rows) for _ in range(10)]
        # The writer commits while the reader is mid-read (a rollback journal would block here).
        writer.mark_in_flight(ids[:20])
        writer.record_results(ChangeResult(i, S.DONE, 201) for i in ids[:20])
        rest = list(rows)
        assert {e.status for e in first + rest} == {S.PENDING}  # the reader's snapshot
        assert reader.counts() == StatusCounts(pending=3000)
    assert reader.counts() == StatusCounts(pending=2980, done=20)  # a new read sees the commit
    reader.close()
    writer.close()


def test_a_report_reading_while_the_writer_works_always_sees_whole_batches(tmp_path: Path) -> None:
    changes = make_changes(500)
    ids = [c.id for c in changes]
    writer = Journal.create(tmp_path, run_meta={}, changes=changes)
    reader = Journal.open(tmp_path, read_only=True)
    failures: list[BaseException] = []

    def write_all() -> None:
        try:
            for start in range(0, len(ids), 20):
                writer.mark_in_flight(ids[start : start + 20])
                writer.record_results(ChangeResult(i, S.DONE, 201) for i in ids[start : start + 20])
        except Exception as exc:  # noqa: BLE001  (surfaced by the assertion below)
            failures.append(exc)

    thread = threading.Thread(target=write_all)
    thread.start()
    seen = []
    while thread.is_alive() or not seen:
        counts = reader.counts()
        # Transactions are atomic: a reader sees a whole batch marked, answered, or neither.
        assert counts.total == 1000
        assert counts.in_flight in (0, 20)
        assert counts.done % 20 == 0
        seen.append(counts.done)
    thread.join()

    assert failures == []
    assert seen == sorted(seen)
    assert reader.counts() == StatusCounts(done=1000)
    reader.close()
    writer.close()
