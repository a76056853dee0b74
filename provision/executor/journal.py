"""The run journal: one SQLite file (``journal.sqlite``) in the run directory.

It holds the run's metadata, every planned change with its status (pending, in flight,
done, failed, skipped), attempts, last HTTP status, Graph error code, request-id and times,
an append-only event log, and the per-user ``--verify`` results. The executor writes it;
``provision resume`` and the report read it. It takes plain records (``JournalChange``,
``ChangeResult``) so that it depends on nothing but ``model`` and ``errors``.

Durability protocol (what the executor follows)
------------------------------------------------
The one promise: *nothing the server acknowledged is lost if the process is killed*, and
resume never sends a write twice without reading back first.

1. **Mark, commit, then send.** Before any request that may write leaves the process
   (a ``$batch`` of up to 20 items, or a single call, first attempt or retry), call
   ``mark_in_flight(ids_of_that_request)``. It returns once the transaction has committed;
   only then send. Each mark counts one attempt.
2. **Record each answer as it arrives.** When a ``$batch`` response (or a single answer)
   comes back, call ``record_results(results_of_that_response)``: one transaction per
   response. Record before dispatching the dependents of those changes, so the journal's
   order matches the tenant's.
3. **Retryable or unknown outcomes.** A 429/503 that certainly did not write may be
   recorded as ``ChangeStatus.PENDING`` (back in the queue) or left in flight; a timeout
   or connection reset *must* stay in flight (the outcome is unknown) and is read back
   before it is retried. Re-mark before every re-send.
4. **Resume.** ``Journal.open(run_dir)``; ``done`` stays done; ``failed``/``skipped`` are
   final and reported; ``pending()`` is dispatched normally; every change in ``in_flight()``
   is read back first: if the tenant shows the change's effect (``after`` for a write, no
   phone of that type for a delete, the SMS state for an SMS change), record it done
   (``verified=True``), otherwise mark and send it again. ``statuses()`` gives the id -> status map for
   dependency decisions.
5. **Interrupt.** On Ctrl-C: stop dispatching, await in-flight requests, record their
   results, ``record_event(EventKind.INTERRUPT)``, ``close()``.

Why this holds under ``kill -9``: a request is only sent after its in-flight mark
committed, so a change the server acknowledged is either recorded with its result or, if
the process died between the server's answer and ``record_results``, still ``in_flight``,
and resume reads it back instead of writing blindly. It is never ``pending``.

Why writes are cheap: the database runs in WAL mode with ``synchronous=NORMAL``. A commit
appends to the WAL through the operating system's page cache and returns without
``fsync``; the data survives the death of the process (``kill -9``, a crash, Ctrl-C) because
it is already in the kernel. Only a power loss or an operating-system crash can lose the
commits made since the WAL was last synced to disk (at each checkpoint, every ~100 commits);
SQLite still comes back to a consistent, earlier state. Acceptable because the issue's
promise is about the job being killed, which loses nothing; and because what a lost
commit can hide is bounded and detectable: an in-flight mark lost that way means resume sees
``pending`` for a write the tenant may already hold; ``Journal.unclean_restart`` reports
when the previous writer ended without ``close()`` on an earlier boot of the machine, so
resume can then read back every user that is not done before writing. Callers who want
power-loss durability per commit pass ``sync="full"`` (one ``fsync`` per transaction).

Grouping: ``mark_in_flight`` and ``record_results`` each commit one transaction per call
(callers pass one ``$batch``'s worth); ``record_event`` and ``record_verifications`` are
buffered and ride along with the next transaction, or ``flush()`` / ``close()``. A call
typically takes a fraction of a millisecond: a commit appends to the WAL, and the
checkpoints that copy it back into the database (and sync both files: tens of ms on a busy
disk) run in a thread of the writer's own, every ``_CHECKPOINT_EVERY`` commits, so no call
waits for one. With ``sync="full"`` every commit syncs the WAL: an async caller then calls
the journal through ``asyncio.to_thread`` (all methods are thread-safe).

The file holds phone numbers (``before``/``after``) because resume compares read-backs with
them: it is created ``0600`` and must stay in a protected run directory. Event details and
messages must not contain unmasked numbers.

One writer at a time: a writer holds an advisory lock (``journal.sqlite.lock``, released
by the kernel if the process dies), so two ``resume`` runs cannot interleave writes.
Readers (``read_only=True``) never block the writer, nor the writer them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Literal, Protocol, Self

from provision import __version__
from provision.errors import UsageError
from provision.model import ChangeKind, PhoneType

try:  # the writer lock; without fcntl (Windows) the journal still works, unlocked
    import fcntl

    _CAN_LOCK = True
except ImportError:  # pragma: no cover
    _CAN_LOCK = False

__all__ = [
    "JOURNAL_FILENAME",
    "SCHEMA_VERSION",
    "ChangeLike",
    "ChangeResult",
    "ChangeStatus",
    "EventKind",
    "Journal",
    "JournalChange",
    "JournalEntry",
    "JournalEvent",
    "StatusCounts",
    "UserVerification",
    "creation_interrupted",
]

JOURNAL_FILENAME = "journal.sqlite"
SCHEMA_VERSION = 1
# Stored in the SQLite header (PRAGMA application_id): tells our journal from any other
# SQLite file without reading a table. ASCII "prov".
APPLICATION_ID = 0x70726F76

# What the journal stores for a change's kind and phone type: the enums' values.
_KINDS: frozenset[str] = frozenset(k.value for k in ChangeKind)
_PHONE_TYPES: frozenset[str] = frozenset(p.value for p in PhoneType)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ChangeStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


_STATUSES = {status.value: status for status in ChangeStatus}  # faster than calling the enum
_TERMINAL = frozenset({ChangeStatus.DONE, ChangeStatus.FAILED, ChangeStatus.SKIPPED})
# A result may return a change to the queue (PENDING) or end it; it can't re-open a finished one.
_RESULT_STATUSES = _TERMINAL | {ChangeStatus.PENDING}


class EventKind(StrEnum):
    DISPATCH = "dispatch"
    RESULT = "result"
    RETRY = "retry"
    READBACK = "readback"
    PAUSE = "pause"
    RESUME = "resume"
    INTERRUPT = "interrupt"
    UNREACHABLE = "unreachable"


class ChangeLike(Protocol):
    """Anything shaped like the planner's ``Change`` (the journal does not import the planner)."""

    @property
    def id(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def phone_type(self) -> str: ...
    @property
    def before(self) -> str | None: ...
    @property
    def after(self) -> str | None: ...
    @property
    def depends_on(self) -> str | None: ...
    @property
    def rows(self) -> tuple[int, ...]: ...


@dataclass(frozen=True, slots=True)
class JournalChange:
    """One planned change, as the journal stores it (the executor converts planner Changes).

    ``kind`` is a ``ChangeKind`` value, ``phone_type`` a ``PhoneType`` value; enum members
    of either are accepted and stored as their string value (what the journal file holds).
    """

    id: str
    user: str
    target: str
    kind: str
    phone_type: str
    before: str | None
    after: str | None
    depends_on: str | None
    rows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # StrEnum members become plain strings so that what we read back compares equal.
        object.__setattr__(self, "kind", str(self.kind))
        object.__setattr__(self, "phone_type", str(self.phone_type))
        if self.kind not in _KINDS:
            raise ValueError(f"change {self.id!r}: unknown kind {self.kind!r}")
        if self.phone_type not in _PHONE_TYPES:
            raise ValueError(f"change {self.id!r}: unknown phone type {self.phone_type!r}")
        # Callers may pass any sequence of row numbers (a list from JSON).
        object.__setattr__(self, "rows", tuple(self.rows))

    @classmethod
    def of(cls, change: ChangeLike) -> JournalChange:
        """The journal's record of a planner ``Change`` (or anything with the same fields)."""
        return cls(
            id=change.id, user=change.user, target=change.target, kind=change.kind,
            phone_type=change.phone_type, before=change.before, after=change.after,
            depends_on=change.depends_on, rows=tuple(change.rows),
        )


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """The answer for one change, from the server or from a read-back.

    ``status`` is DONE, FAILED, SKIPPED, or PENDING (certainly not written; queue it again).
    The HTTP status, code, message and request-id replace the change's previous ones (they
    describe the latest answer; the event log keeps the history). ``attempts`` ``None``
    keeps the journal's own count (one per ``mark_in_flight``); ``sms_state_after``,
    ``verified`` and ``detail`` ``None`` keep what was recorded before.
    """

    id: str
    status: ChangeStatus
    http_status: int | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    attempts: int | None = None
    sms_state_after: str | None = None
    verified: bool | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A change with everything the journal knows about it (resume and report read these)."""

    change: JournalChange
    seq: int  # planned order, 0-based
    status: ChangeStatus
    attempts: int
    last_http_status: int | None
    graph_code: str | None
    message: str | None
    request_id: str | None
    first_started: datetime | None
    last_updated: datetime | None
    finished: datetime | None
    sms_state_after: str | None
    verified: bool | None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.change.id


@dataclass(frozen=True, slots=True)
class JournalEvent:
    seq: int
    time: datetime
    kind: EventKind
    change_id: str | None
    http_status: int | None
    code: str | None
    request_id: str | None
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class UserVerification:
    """``--verify`` outcome for one user: ``ok`` when the read-back matches the plan."""

    key: str
    ok: bool
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusCounts:
    pending: int = 0
    in_flight: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.in_flight + self.done + self.failed + self.skipped

    def __getitem__(self, status: ChangeStatus) -> int:
        return int(getattr(self, status.value))


_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE run (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE changes (
        seq             INTEGER PRIMARY KEY,        -- planned order; rows stored in it
        id              TEXT NOT NULL UNIQUE,
        user            TEXT NOT NULL,
        target          TEXT NOT NULL,
        kind            TEXT NOT NULL,
        phone_type      TEXT NOT NULL,
        before          TEXT,
        after           TEXT,
        depends_on      TEXT,
        rows            TEXT NOT NULL,              -- JSON array of roster row numbers
        status          TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'in_flight', 'done', 'failed', 'skipped')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_http_status INTEGER,
        graph_code      TEXT,
        message         TEXT,
        request_id      TEXT,
        first_started   TEXT,                       -- ISO-8601 UTC
        last_updated    TEXT,
        finished        TEXT,
        sms_state_after TEXT,
        verified        INTEGER,                    -- NULL unknown, 1 read back ok, 0 mismatch
        detail          TEXT                        -- JSON object
    )
    """,
    """
    CREATE INDEX changes_by_status ON changes (status, seq)
    """,
    """
    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY,
        time        TEXT NOT NULL,
        change_id   TEXT,
        kind        TEXT NOT NULL,
        http_status INTEGER,
        code        TEXT,
        request_id  TEXT,
        detail      TEXT
    )
    """,
    """
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END
    """,
    """
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END
    """,
    """
    CREATE TABLE users (
        key      TEXT PRIMARY KEY,
        verified TEXT NOT NULL CHECK (verified IN ('ok', 'mismatch')),
        detail   TEXT,
        time     TEXT NOT NULL
    ) WITHOUT ROWID
    """,
)

_PLANNED_COLUMNS = "id, user, target, kind, phone_type, before, after, depends_on, rows, status"
_CHANGE_COLUMNS = (
    "id, user, target, kind, phone_type, before, after, depends_on, rows, seq, status, attempts,"
    " last_http_status, graph_code, message, request_id, first_started, last_updated, finished,"
    " sms_state_after, verified, detail"
)

_MARK_SQL = (
    "UPDATE changes SET status = 'in_flight', attempts = attempts + 1,"
    " first_started = COALESCE(first_started, ?1), last_updated = ?1"
    " WHERE id = ?2 AND status IN ('pending', 'in_flight')"
)

_RESULT_SQL = (
    "UPDATE changes SET status = ?1, last_http_status = ?2, graph_code = ?3, message = ?4,"
    " request_id = ?5, attempts = COALESCE(?6, attempts),"
    " sms_state_after = COALESCE(?7, sms_state_after), verified = COALESCE(?8, verified),"
    " detail = COALESCE(?9, detail), last_updated = ?10, finished = ?11"
    " WHERE id = ?12 AND status IN ('pending', 'in_flight')"
)

_EVENT_SQL = (
    "INSERT INTO events (time, change_id, kind, http_status, code, request_id, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)

_USER_SQL = (
    "INSERT INTO users (key, verified, detail, time) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET verified = excluded.verified, detail = excluded.detail,"
    " time = excluded.time"
)

# Commits between two background checkpoints: about SQLite's default of 1,000 WAL pages at
# the few pages an executor's transaction writes.
_CHECKPOINT_EVERY = 100

# Meta keys the journal maintains itself.
_META_CREATED = "created"
_META_TOOL_VERSION = "tool_version"
_META_WRITER_BOOT = "writer_boot_id"
_META_WRITER_CLEAN = "writer_closed_cleanly"


def _iso(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("journal times must be timezone-aware")
    return now.astimezone(UTC).isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _boot_id() -> str | None:
    """An id that changes whenever the machine boots (Linux); ``None`` where unknown."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _resolve(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / JOURNAL_FILENAME if p.is_dir() else p


class _WriterLock:
    """An advisory, kernel-released lock next to the journal: one writer per run."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path.with_name(db_path.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if not _CAN_LOCK:  # pragma: no cover
            return
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        f = os.fdopen(fd, "r+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = f.read().strip() or "another process"
            f.close()
            raise UsageError(
                f"{self._path.parent}: the run journal is in use by {holder}; "
                "wait for it to finish or stop it first"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


class _Checkpointer:
    """Copies the WAL back into the database file from a thread of its own, so that no
    commit waits for it: a checkpoint syncs both files, tens of ms on a busy disk, while a
    commit (``synchronous=NORMAL``) only appends to the WAL. The writer's connection has
    SQLite's automatic checkpoints off and pokes this every ``_CHECKPOINT_EVERY`` commits;
    the writer's own close, the database's last, does the final one."""

    def __init__(self, db: Path) -> None:
        self._conn = _connect(db, read_only=False)
        self._due = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="journal-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            if self._stopping:
                return
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # the next checkpoint (or the writer's close) copies what this one could not

    def close(self) -> None:
        self._stopping = True
        self._due.set()
        self._thread.join()
        self._conn.close()


class Journal:
    """The SQLite run journal. Build one with ``Journal.create`` or ``Journal.open``.

    Methods are safe to call from several threads (one lock serialises them), so an async
    executor may call them directly or through ``asyncio.to_thread``.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        clock: Clock,
        read_only: bool,
        lock: _WriterLock | None,
        unclean_restart: bool = False,
    ) -> None:
        # Private: use create() or open().
        self._conn = conn
        self._path = path
        self._clock = clock
        self._read_only = read_only
        self._writer_lock = lock
        self._lock = threading.RLock()
        self._events: list[tuple[Any, ...]] = []
        self._users: list[tuple[Any, ...]] = []
        self._unclean_restart = unclean_restart
        self._closed = False
        self._commits = 0
        self._checkpointer = None if read_only else _Checkpointer(path)

    # ---------------------------------------------------------------- construction

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        run_meta: Mapping[str, str],
        changes: Iterable[JournalChange],
        clock: Clock = _utc_now,
        sync: Literal["normal", "full"] = "normal",
    ) -> Journal:
        """Create a new journal holding ``changes`` (all pending, in the given order).

        ``path`` is the journal file, or the run directory (``journal.sqlite`` inside it).
        Refuses (``UsageError``) if the journal already exists. ``run_meta`` is stored in
        the ``run`` table; ``created`` and ``tool_version`` are added unless given.
        """
        db = _resolve(path)
        db.parent.mkdir(parents=True, exist_ok=True)
        lock = _WriterLock(db)
        lock.acquire()
        try:
            try:
                # O_EXCL claims the path atomically; 0600 because the file holds phone
                # numbers (SQLite gives the -wal and -shm files the same mode).
                os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                raise UsageError(f"{db}: a run journal already exists; use resume") from None
            conn = _connect(db, read_only=False)
            try:
                # Writes the header page, in a transaction of its own (creation_interrupted).
                _configure_writer(conn, sync)
                now = _iso(clock())
                meta = {_META_CREATED: now, _META_TOOL_VERSION: __version__, **run_meta}
                meta[_META_WRITER_BOOT] = _boot_id() or ""
                meta[_META_WRITER_CLEAN] = "0"
                conn.execute("BEGIN IMMEDIATE")
                # Not executescript(): it would commit, and creation must be one transaction
                # so that an interrupted create leaves no half-made journal.
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.executemany("INSERT INTO run (key, value) VALUES (?, ?)", meta.items())
                conn.executemany(
                    "INSERT INTO changes (id, user, target, kind, phone_type, before, after,"
                    " depends_on, rows, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (
                            c.id, c.user, c.target, c.kind, c.phone_type, c.before, c.after,
                            c.depends_on, json.dumps(c.rows, separators=(",", ":")), seq,
                        )
                        for seq, c in enumerate(changes)
                    ),
                )
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                conn.close()
                _remove_database(db)
                raise ValueError(f"invalid change list: {exc}") from exc
            except BaseException:
                conn.close()
                _remove_database(db)
                raise
        except BaseException:
            lock.release()
            raise
        return cls(conn, db, clock=clock, read_only=False, lock=lock)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        clock: Clock = _utc_now,
        sync: Literal["normal", "full"] = "normal",
    ) -> Journal:
        """Open an existing journal: to resume (writer) or to report (``read_only=True``).

        Refuses with ``UsageError`` a missing file, a file that is not a provision journal,
        or one written by a newer provision. A writer also refuses while another process
        holds the journal. Readers never block the writer.
        """
        db = _resolve(path)
        if not db.is_file():
            raise UsageError(f"{db}: no run journal here")
        conn = _connect(db, read_only=read_only)
        lock: _WriterLock | None = None
        try:
            # Identity first, before any lock file or pragma: a foreign file stays untouched.
            _check_identity(conn, db)
            unclean = False
            if read_only:
                conn.execute("PRAGMA query_only = ON")
            else:
                lock = _WriterLock(db)
                lock.acquire()
                _configure_writer(conn, sync)
                meta = dict(conn.execute("SELECT key, value FROM run"))
                boot = _boot_id() or ""
                unclean = meta.get(_META_WRITER_CLEAN) == "0" and meta.get(_META_WRITER_BOOT) != boot
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT OR REPLACE INTO run (key, value) VALUES (?, ?)",
                    ((_META_WRITER_BOOT, boot), (_META_WRITER_CLEAN, "0")),
                )
                conn.execute("COMMIT")
        except BaseException:
            conn.close()
            if lock is not None:
                lock.release()
            raise
        return cls(conn, db, clock=clock, read_only=read_only, lock=lock, unclean_restart=unclean)

    # ---------------------------------------------------------------- properties

    @property
    def path(self) -> Path:
        return self._path

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def unclean_restart(self) -> bool:
        """True when the previous writer ended without ``close()`` on an earlier boot.

        Only then may the last commits be missing (power loss / OS crash with
        ``synchronous=NORMAL``): resume should read back every user that is not done
        before writing, rather than trusting ``pending``. A plain ``kill -9`` leaves this
        False: killed processes lose nothing that was committed.
        """
        return self._unclean_restart

    # ---------------------------------------------------------------- writes

    def mark_in_flight(self, ids: Iterable[str], *, now: datetime | None = None) -> None:
        """Mark changes as being sent and commit, before the request leaves.

        One transaction per call (pass one request's worth, up to 20). Each mark counts
        one attempt. Only pending or in-flight changes can be marked: anything else (an
        unknown id, a change already done) is an executor bug, and raises ``ValueError``
        with nothing written.
        """
        id_list = list(ids)
        stamp = _iso(now or self._clock())
        with self._write() as conn:
            cur = conn.executemany(_MARK_SQL, ((stamp, i) for i in id_list))
            if cur.rowcount != len(id_list):
                raise ValueError(self._refusal(conn, id_list, "mark in flight"))

    def record_results(self, results: Iterable[ChangeResult], *, now: datetime | None = None) -> None:
        """Record the answers of one response in one transaction (durable on return).

        Only pending or in-flight changes take a result; a result for an unknown or
        already finished change raises ``ValueError`` and nothing of the call is written
        (the changes stay in flight, so resume reads them back).
        """
        stamp = _iso(now or self._clock())
        rows = []
        for r in results:
            status = ChangeStatus(r.status)
            if status not in _RESULT_STATUSES:
                raise ValueError(f"change {r.id!r}: a result can't set status {status.value!r}")
            rows.append(
                (
                    status.value, r.http_status, r.code, r.message, r.request_id, r.attempts,
                    r.sms_state_after, None if r.verified is None else int(r.verified),
                    _json(r.detail), stamp, stamp if status in _TERMINAL else None, r.id,
                )
            )
        with self._write() as conn:
            cur = conn.executemany(_RESULT_SQL, rows)
            if cur.rowcount != len(rows):
                raise ValueError(self._refusal(conn, [r[-1] for r in rows], "record a result for"))

    def record_event(
        self,
        kind: EventKind,
        *,
        change_id: str | None = None,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Append an event; written with the next transaction (or ``flush()``).

        ``detail`` is JSON; never put an unmasked phone number in it.
        """
        self._check_writable()
        row = (
            _iso(now or self._clock()), change_id, EventKind(kind).value, http_status, code,
            request_id, _json(detail),
        )
        with self._lock:
            self._events.append(row)

    def record_verifications(
        self, verifications: Iterable[UserVerification], *, now: datetime | None = None
    ) -> None:
        """Store ``--verify`` results (a user's later result replaces an earlier one).

        Buffered like events: written with the next transaction or ``flush()``.
        """
        self._check_writable()
        stamp = _iso(now or self._clock())
        rows = [(v.key, "ok" if v.ok else "mismatch", _json(v.detail), stamp) for v in verifications]
        with self._lock:
            self._users.extend(rows)

    def flush(self) -> None:
        """Commit buffered events and verifications now."""
        with self._write():
            pass

    def set_meta(self, key: str, value: str) -> None:
        """Set one run metadata value (committed at once, with any buffered writes)."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO run (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        """Flush buffered writes, record a clean end, release the writer lock. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                if not self._read_only:
                    with self._write() as conn:
                        conn.execute(
                            "INSERT OR REPLACE INTO run (key, value) VALUES (?, '1')",
                            (_META_WRITER_CLEAN,),
                        )
                    self._conn.execute("PRAGMA optimize")
            finally:
                self._closed = True
                if self._checkpointer is not None:
                    self._checkpointer.close()
                self._conn.close()
                if self._writer_lock is not None:
                    self._writer_lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- reads

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def meta(self) -> dict[str, str]:
        with self._lock:
            return dict(self._conn.execute("SELECT key, value FROM run ORDER BY key"))

    def counts(self) -> StatusCounts:
        with self._lock:
            found = dict(self._conn.execute("SELECT status, count(*) FROM changes GROUP BY status"))
        return StatusCounts(**found)

    def by_status(self, *statuses: ChangeStatus) -> list[JournalEntry]:
        """The changes in any of ``statuses``, in planned order."""
        wanted = [ChangeStatus(s).value for s in statuses]
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_CHANGE_COLUMNS} FROM changes WHERE status IN ({marks}) ORDER BY seq",
                wanted,
            ).fetchall()
        return [_entry(r) for r in rows]

    def pending(self) -> list[JournalEntry]:
        """Changes never sent, or returned to the queue: dispatch them normally."""
        return self.by_status(ChangeStatus.PENDING)

    def in_flight(self) -> list[JournalEntry]:
        """Changes sent without a recorded answer: read them back before any re-send."""
        return self.by_status(ChangeStatus.IN_FLIGHT)

    def statuses(self) -> dict[str, ChangeStatus]:
        """Every change id with its status (cheap; for dependency decisions on resume)."""
        with self._lock:
            return {i: ChangeStatus(s) for i, s in self._conn.execute("SELECT id, status FROM changes")}

    def changes(self) -> Iterator[JournalEntry]:
        """Every change in planned order, streamed (for the report).

        Iterate inside ``snapshot()`` to read one consistent state alongside ``counts()``.
        """
        for row in self._stream(f"SELECT {_CHANGE_COLUMNS} FROM changes ORDER BY seq"):
            yield _entry(row)

    def planned(self) -> Iterator[tuple[JournalChange, ChangeStatus]]:
        """Every change in planned order with its status, streamed: what the executor takes
        up (``changes()`` without the times, counts and details it has no use for)."""
        for row in self._stream(f"SELECT {_PLANNED_COLUMNS} FROM changes ORDER BY seq"):
            yield _change(row), _STATUSES[row[9]]

    def events(self, *, change_id: str | None = None) -> Iterator[JournalEvent]:
        """The event log in order (committed events only), optionally for one change."""
        sql = "SELECT seq, time, kind, change_id, http_status, code, request_id, detail FROM events"
        args: tuple[Any, ...] = ()
        if change_id is not None:
            sql += " WHERE change_id = ?"
            args = (change_id,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY seq", args).fetchall()
        for seq, time, kind, cid, http, code, rid, detail in rows:
            yield JournalEvent(
                seq=seq, time=datetime.fromisoformat(time), kind=EventKind(kind), change_id=cid,
                http_status=http, code=code, request_id=rid, detail=json.loads(detail) if detail else {},
            )

    def verifications(self) -> dict[str, UserVerification]:
        """``--verify`` results by user key."""
        with self._lock:
            rows = self._conn.execute("SELECT key, verified, detail FROM users ORDER BY key").fetchall()
        return {
            k: UserVerification(key=k, ok=v == "ok", detail=json.loads(d) if d else {}) for k, v, d in rows
        }

    def _stream(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """The rows of a query, fetched in chunks (the lock is held per chunk, not throughout)."""
        with self._lock:
            cur = self._conn.execute(sql)
        while True:
            with self._lock:
                chunk = cur.fetchmany(1000)
            if not chunk:
                return
            yield from chunk

    @contextmanager
    def snapshot(self) -> Iterator[Journal]:
        """Read one consistent state across several queries (WAL: the writer carries on).

        Meant for readers (the report); on a writer, write nothing inside the block.
        """
        with self._lock:
            self._conn.execute("BEGIN")
        try:
            yield self
        finally:
            with self._lock:
                self._conn.execute("COMMIT")

    # ---------------------------------------------------------------- internals

    def _check_writable(self) -> None:
        if self._read_only:
            raise RuntimeError(f"{self._path}: journal opened read-only")
        if self._closed:
            raise RuntimeError(f"{self._path}: journal is closed")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, carrying buffered events and verifications with it."""
        self._check_writable()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self._events:
                    conn.executemany(_EVENT_SQL, self._events)
                if self._users:
                    conn.executemany(_USER_SQL, self._users)
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT (disk full): leave no transaction open.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._events.clear()
            self._users.clear()
            self._commits += 1
            if self._checkpointer is not None and self._commits % _CHECKPOINT_EVERY == 0:
                self._checkpointer.poke()

    @staticmethod
    def _refusal(conn: sqlite3.Connection, ids: list[str], action: str) -> str:
        # Runs inside the failing transaction, before its rollback: names the culprits.
        found = {}
        for i in ids:
            row = conn.execute("SELECT status FROM changes WHERE id = ?", (i,)).fetchone()
            found[i] = row[0] if row else None
        bad = [f"{i!r} ({s or 'unknown'})" for i, s in found.items() if s not in ("pending", "in_flight")]
        dupes = len(ids) != len(set(ids))
        what = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "") if bad else "repeated ids"
        return f"can't {action} {what}" + (" (ids repeated in one call)" if dupes and bad else "")


def _connect(db: Path, *, read_only: bool) -> sqlite3.Connection:
    uri = f"{db.resolve().as_uri()}?mode={'ro' if read_only else 'rw'}"
    # Autocommit mode: every transaction here is explicit (BEGIN IMMEDIATE ... COMMIT).
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _configure_writer(conn: sqlite3.Connection, sync: str) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":  # pragma: no cover (a filesystem without shared memory)
        raise UsageError(f"can't use WAL mode for the run journal (got {mode!r})")
    conn.execute(f"PRAGMA synchronous = {'FULL' if sync == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # the journal's _Checkpointer does them


def _check_identity(conn: sqlite3.Connection, db: Path) -> None:
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError:
        raise UsageError(f"{db}: not a provision run journal (not an SQLite database)") from None
    if app_id != APPLICATION_ID:
        raise UsageError(
            f"{db}: not a provision run journal (another application's file, or a journal "
            "whose creation was interrupted)"
        )
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{db}: written by a newer provision (journal format {version}; this version "
            f"reads up to {SCHEMA_VERSION}); resume it with that version"
        )
    if version < 1:
        raise UsageError(f"{db}: not a provision run journal (no format version)")


def creation_interrupted(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds what a ``Journal.create`` killed before its commit leaves.

    ``create`` claims an empty file, switches it to WAL mode (which writes the database's
    header page in a rollback-journal transaction of its own), then commits the schema, the
    application id and every change in one transaction: until that commits, the file has
    neither a table nor our application id. It is opened read-write, as ``Journal.open``
    opens it, so that SQLite first undoes what a killed writer left half done: a kill inside
    the WAL switch leaves its rollback journal hot, which a read-only open can't roll back
    (it fails, and the file looked like a journal), and rolled back the file is empty. The
    open never creates the file (``mode=rw``) and only reads; closing it may copy a killed
    writer's committed WAL into the database file, as any writer's open does: no content
    changes.

    False for a missing file, a finished journal, and another application's database or a
    file that is not SQLite: ``Journal.open`` names what those are.
    """
    db = _resolve(path)
    try:
        if db.stat().st_size == 0:
            return True  # claimed, killed before SQLite wrote a page
    except FileNotFoundError:
        return False
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return False  # not SQLite, or not ours to open: Journal.open says which
    return bool(app_id != APPLICATION_ID and tables == 0)


def _remove_database(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(f"{db}{suffix}")
        except FileNotFoundError:
            pass


def _change(row: tuple[Any, ...]) -> JournalChange:
    """The change of a row whose first columns are ``_PLANNED_COLUMNS``."""
    id_, user, target, kind, phone_type, before, after, depends_on, rows = row[:9]
    return JournalChange(
        id=id_, user=user, target=target, kind=kind, phone_type=phone_type, before=before,
        after=after, depends_on=depends_on, rows=tuple(json.loads(rows)),
    )


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    (
        seq, status, attempts, http, code, message, request_id, first_started, last_updated, finished, sms,
        verified, detail,
    ) = row[9:]
    return JournalEntry(
        change=_change(row),
        seq=seq,
        status=_STATUSES[status],
        attempts=attempts,
        last_http_status=http,
        graph_code=code,
        message=message,
        request_id=request_id,
        first_started=_time(first_started),
        last_updated=_time(last_updated),
        finished=_time(finished),
        sms_state_after=sms,
        verified=None if verified is None else bool(verified),
        detail=json.loads(detail) if detail else {},
    )
