"""Creating, reopening and updating a run journal: what is stored is what comes back."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import pytest
from support.builders import make_changes
from support.clock import T0, UtcClock

from provision import __version__
from provision.errors import UsageError
from provision.executor.journal import (
    JOURNAL_FILENAME,
    ChangeResult,
    ChangeStatus,
    EventKind,
    Journal,
    JournalChange,
    StatusCounts,
    UserVerification,
)
from provision.model import PhoneType

S = ChangeStatus


def test_round_trip_keeps_every_change_field_order_and_metadata(tmp_path: Path, utc_clock: UtcClock) -> None:
    changes = make_changes(5)
    with Journal.create(tmp_path, run_meta={"job": "onboarding", "plan_checksum": "sha256:ab"},
                        changes=changes, clock=utc_clock):
        pass

    with Journal.open(tmp_path / JOURNAL_FILENAME, read_only=True) as journal:
        entries = list(journal.changes())
        meta = journal.meta()

    assert [e.change for e in entries] == changes
    assert [e.seq for e in entries] == list(range(10))
    assert entries[1].change.depends_on == "user0000@contoso.com#1"
    assert entries[1].change.rows == (2, 900)
    assert entries[1].change.phone_type == "alternateMobile"
    assert {e.status for e in entries} == {S.PENDING}
    assert all(e.attempts == 0 and e.first_started is None for e in entries)
    assert meta["job"] == "onboarding"
    assert meta["plan_checksum"] == "sha256:ab"
    assert meta["tool_version"] == __version__
    assert datetime.fromisoformat(meta["created"]) == T0 + timedelta(seconds=1)
    assert meta["writer_closed_cleanly"] == "1"


def test_create_refuses_an_existing_journal_and_leaves_it_intact(tmp_path: Path) -> None:
    with Journal.create(tmp_path, run_meta={"job": "first"}, changes=make_changes(2)):
        pass
    before = (tmp_path / JOURNAL_FILENAME).read_bytes()

    with pytest.raises(UsageError, match="already exists"):
        Journal.create(tmp_path, run_meta={"job": "second"}, changes=make_changes(3))

    assert (tmp_path / JOURNAL_FILENAME).read_bytes() == before
    with Journal.open(tmp_path, read_only=True) as journal:
        assert journal.get_meta("job") == "first"
        assert journal.counts().total == 4


def test_duplicate_change_ids_are_refused_and_leave_no_journal(tmp_path: Path) -> None:
    changes = make_changes(2)
    with pytest.raises(ValueError, match="invalid change list"):
        Journal.create(tmp_path, run_meta={}, changes=[*changes, changes[0]])
    assert not (tmp_path / JOURNAL_FILENAME).exists()


def test_a_planner_shaped_change_converts_with_enum_values_as_plain_strings() -> None:
    class Kind(StrEnum):
        CREATE = "create"

    @dataclass(frozen=True)
    class PlannedChange:  # the planner's Change has these fields; the journal must not import it
        id: str
        user: str
        target: str
        kind: Kind
        phone_type: PhoneType
        before: str | None
        after: str | None
        depends_on: str | None
        rows: tuple[int, ...]

    record = JournalChange.of(
        PlannedChange("a@x#1", "a@x", "oid-1", Kind.CREATE, PhoneType.OFFICE, None, "+1 425 5550100", None, (4,))
    )
    assert record == JournalChange("a@x#1", "a@x", "oid-1", "create", "office", None, "+1 425 5550100", None, (4,))
    assert type(record.kind) is str and type(record.phone_type) is str


def test_unknown_kind_or_phone_type_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        JournalChange("a#1", "a", "a", "rename", "mobile", None, "+1 5", None)
    with pytest.raises(ValueError, match="phone type"):
        JournalChange("a#1", "a", "a", "create", "fax", None, "+1 5", None)


def test_statuses_counts_and_outcome_fields(tmp_path: Path, utc_clock: UtcClock) -> None:
    ids = [c.id for c in make_changes(5)]
    journal = Journal.create(tmp_path, run_meta={}, changes=make_changes(5), clock=utc_clock)
    journal.mark_in_flight(ids[:6])
    journal.record_results([
        ChangeResult(ids[0], S.DONE, 201, request_id="r-0", sms_state_after="ready", verified=True,
                     detail={"read_back": "match"}),
        ChangeResult(ids[1], S.FAILED, 400, code="invalidPhoneNumber", message="bad format",
                     request_id="r-1"),
        ChangeResult(ids[2], S.PENDING, 429, code="TooManyRequests", request_id="r-2"),
        ChangeResult(ids[3], S.DONE, 409, code="phoneNumberNotUnique", request_id="r-3",
                     sms_state_after="phoneNumberNotUnique", verified=True),
    ])
    journal.record_results([ChangeResult(ids[7], S.SKIPPED, message="predecessor failed")])
    journal.mark_in_flight(ids[2:3])  # the throttled change is sent again

    assert journal.counts() == StatusCounts(pending=3, in_flight=3, done=2, failed=1, skipped=1)
    assert journal.counts().total == 10
    entries = {e.id: e for e in journal.changes()}
    done, failed, requeued = entries[ids[0]], entries[ids[1]], entries[ids[2]]
    assert (done.status, done.last_http_status, done.request_id) == (S.DONE, 201, "r-0")
    assert (done.sms_state_after, done.verified, done.detail) == ("ready", True, {"read_back": "match"})
    # Clock readings: 1 created, 2 first mark, 3 first results, 4 skip, 5 second mark.
    assert done.first_started == T0 + timedelta(seconds=2)
    assert done.finished == done.last_updated == T0 + timedelta(seconds=3)
    assert (failed.status, failed.graph_code, failed.message) == (S.FAILED, "invalidPhoneNumber", "bad format")
    assert (requeued.status, requeued.attempts, requeued.finished) == (S.IN_FLIGHT, 2, None)
    assert requeued.first_started == T0 + timedelta(seconds=2)  # the first send, not the latest
    assert requeued.last_updated == T0 + timedelta(seconds=5)
    assert entries[ids[3]].graph_code == "phoneNumberNotUnique"
    assert entries[ids[7]].status == S.SKIPPED and entries[ids[7]].attempts == 0
    assert [e.id for e in journal.pending()] == [ids[6], ids[8], ids[9]]
    assert [e.id for e in journal.in_flight()] == [ids[2], ids[4], ids[5]]
    assert [e.id for e in journal.by_status(S.FAILED, S.SKIPPED)] == [ids[1], ids[7]]
    assert journal.statuses()[ids[3]] == S.DONE
    journal.close()


def test_a_result_without_attempts_keeps_the_journal_count_and_an_explicit_one_replaces_it(
    tmp_path: Path,
) -> None:
    ids = [c.id for c in make_changes(1)]
    with Journal.create(tmp_path, run_meta={}, changes=make_changes(1)) as journal:
        for _ in range(3):
            journal.mark_in_flight(ids)
        journal.record_results([ChangeResult(ids[0], S.DONE, 201), ChangeResult(ids[1], S.DONE, 201, attempts=7)])
        assert [e.attempts for e in journal.changes()] == [3, 7]


def test_writes_an_executor_bug_would_make_are_refused_whole(tmp_path: Path) -> None:
    ids = [c.id for c in make_changes(3)]
    with Journal.create(tmp_path, run_meta={}, changes=make_changes(3)) as journal:
        journal.mark_in_flight(ids[:1])
        journal.record_results([ChangeResult(ids[0], S.DONE, 201)])

        with pytest.raises(ValueError, match=r"user0000@contoso.com#1' \(done\)"):
            journal.mark_in_flight([ids[1], ids[0], ids[2]])  # would send a done change again
        with pytest.raises(ValueError, match="'nobody#1' \\(unknown\\)"):
            journal.record_results([ChangeResult(ids[1], S.DONE), ChangeResult("nobody#1", S.DONE)])
        with pytest.raises(ValueError, match="can't set status 'in_flight'"):
            journal.record_results([ChangeResult(ids[1], S.IN_FLIGHT)])

        # Nothing of the refused calls was written.
        assert journal.counts() == StatusCounts(pending=5, done=1)
        assert all(e.attempts == 0 for e in journal.pending())


def test_events_are_buffered_until_the_next_transaction_and_append_only(tmp_path: Path, utc_clock: UtcClock) -> None:
    ids = [c.id for c in make_changes(2)]
    writer = Journal.create(tmp_path, run_meta={}, changes=make_changes(2), clock=utc_clock)
    reader = Journal.open(tmp_path, read_only=True)
    writer.record_event(EventKind.DISPATCH, detail={"batch": 1, "changes": 2})
    assert list(reader.events()) == []  # buffered, not yet written

    writer.mark_in_flight(ids[:2])  # carries the event in its transaction
    writer.record_event(EventKind.RETRY, change_id=ids[1], http_status=503, code="serviceUnavailable",
                        request_id="r-9", detail={"retry_after_s": 2})
    writer.record_event(EventKind.PAUSE, detail={"reason": "throttled"})
    writer.flush()

    events = list(reader.events())
    assert [(e.kind, e.change_id) for e in events] == [
        (EventKind.DISPATCH, None), (EventKind.RETRY, ids[1]), (EventKind.PAUSE, None)]
    assert events[0].detail == {"batch": 1, "changes": 2}
    assert (events[1].http_status, events[1].code, events[1].request_id) == (503, "serviceUnavailable", "r-9")
    assert [e.time for e in events] == sorted(e.time for e in events)
    assert [e.kind for e in reader.events(change_id=ids[1])] == [EventKind.RETRY]
    reader.close()
    writer.close()

    raw = sqlite3.connect(tmp_path / JOURNAL_FILENAME)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("DELETE FROM events")
    raw.close()


def test_verifications_and_metadata(tmp_path: Path) -> None:
    with Journal.create(tmp_path, run_meta={"status": "running"}, changes=make_changes(2)) as journal:
        journal.record_verifications([
            UserVerification("user0000@contoso.com", ok=False, detail={"mobile": "mismatch"}),
            UserVerification("user0001@contoso.com", ok=True),
        ])
        journal.record_verifications([UserVerification("user0000@contoso.com", ok=True)])
        journal.set_meta("status", "finished")
    with Journal.open(tmp_path, read_only=True) as journal:
        assert journal.verifications() == {
            "user0000@contoso.com": UserVerification("user0000@contoso.com", ok=True),
            "user0001@contoso.com": UserVerification("user0001@contoso.com", ok=True),
        }
        assert journal.get_meta("status") == "finished"
        assert journal.get_meta("absent", "-") == "-"


def test_times_must_be_timezone_aware(tmp_path: Path) -> None:
    ids = [c.id for c in make_changes(1)]
    with Journal.create(tmp_path, run_meta={}, changes=make_changes(1)) as journal:
        with pytest.raises(ValueError, match="timezone"):
            journal.mark_in_flight(ids, now=datetime(2026, 1, 1))
        journal.mark_in_flight(ids, now=datetime(2026, 1, 1, tzinfo=UTC))
        assert journal.in_flight()[0].first_started == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_read_only_journal_refuses_writes(tmp_path: Path) -> None:
    with Journal.create(tmp_path, run_meta={}, changes=make_changes(1)):
        pass
    with Journal.open(tmp_path, read_only=True) as journal:
        with pytest.raises(RuntimeError, match="read-only"):
            journal.mark_in_flight(["user0000@contoso.com#1"])
        with pytest.raises(RuntimeError, match="read-only"):
            journal.record_event(EventKind.RESUME)
