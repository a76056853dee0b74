"""The executor: apply a run journal's changes to Graph in ``$batch`` requests, resumably.

``execute(client, journal)`` runs every change the journal holds that is not finished:
a fresh run (all ``pending``) and ``provision resume`` (some ``done``, some ``in_flight``)
are the same call. The orchestration creates the journal from the plan
(``Journal.create(run_dir, run_meta=..., changes=journal_changes(plan))``) and reads the
outcome back from it (``journal.changes()``, ``journal.verifications()``).

Dispatch
--------
Each user's changes form a chain in planned order; users are independent. A batch holds
up to 20 *heads*: at most one change per user, none depending on another, and a user's
next change goes into a later batch once its predecessor is done. We never use
``dependsOn``: Graph's known issue for JSON batching says a batch should be either fully
sequential or fully parallel, so mixing several users' dependsOn chains in one batch is
risky on real Graph; and a failed dependency would cost a 424 per dependent item. With
many users there is always enough independent work to fill batches, so chaining across
batches costs no throughput, only a user's own latency. Several batches are in flight at
once; every request goes through the client's shared ``Pacer`` (writes in the write lane,
read-backs in the read lane), which sets the pace and honours Retry-After globally.

Retries and read-backs (per item, see ``_on_write``)
-----------------------------------------------------
- 2xx: done. A mobile create's answer carries its ``smsSignInState``.
- 429, 503, and transport failures that certainly sent nothing: back to ``pending`` and
  sent again after ``provision.graph.retry``'s wait (the item's Retry-After when given), within
  its attempt cap and per-change deadline; past them the change fails.
- Outcome unknown (connection reset or timeout after sending, 504, 500, 502): the change
  stays ``in_flight``; after ``settle_s`` (replication lag could hide a just-made write)
  the user's phones are read back. The after-state holds: done. It does not: sent again
  under the retry policy (500/502 are final then). Nothing is ever written twice blindly.
- 409 ``phoneNumberNotUnique`` on a mobile create/update: Graph usually saved the phone
  but not SMS sign-in: read back; the number is there: done, recorded with the 409 and the
  SMS state read (a conflict to report, not a failure); otherwise failed. On
  ``enable_sms`` it is final (failed, SMS state ``phoneNumberNotUnique``).
- 400 "already exists" on a create: read back; our number is there (a retried create
  whose first attempt landed): done. Replication lag may hide it, so up to
  ``exists_reads`` reads with growing waits before it fails.
- 400 on an alternateMobile create that names the mobile (Graph has not yet replicated
  the mobile we just created): bounded retry with backoff. To avoid it in the first place,
  an alternateMobile create waits ``alternate_settle_s`` after its mobile's create.
- 404 ``itemNotFound`` on a delete: the phone is gone, as planned: done.
- Any other error is final: failed, and the user's later changes are ``skipped`` with
  reason "depends on a failed change".

Durability (``provision.apply.journal``'s protocol): ids are marked ``in_flight`` (committed)
before their batch is handed to the client; each batch's answers are recorded in one
transaction before any dependent change is dispatched. On resume, ``in_flight`` changes
are read back before anything is re-sent. Stop (``stop`` event, or cancelling the task,
which ``asyncio.run`` does on Ctrl-C): no new batches; in-flight ones finish and are
journaled; the result is ``INTERRUPTED`` with the resume command.

The executor never prints; it reports through the ``progress`` callback.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Awaitable, Callable, Iterable

from provision.apply.journal import (
    ChangeLike,
    ChangeResult,
    ChangeStatus,
    EventKind,
    Journal,
    JournalChange,
    StatusCounts,
    UserVerification,
)
from provision.apply.readback import change_holds, sms_state, verify_user
from provision.errors import AuthError, GraphError
from provision.graph import ops as graph_ops
from provision.graph.batch import MAX_BATCH_SIZE, Op, OpResult
from provision.graph.client import GraphClient
from provision.graph.errors import TransportFailure
from provision.graph.pacing import Lane
from provision.graph.retry import DEFAULT_RETRY_POLICY, RetryPolicy
from provision.model import PhoneType

__all__ = [
    "DEPENDENCY_FAILED",
    "ExecutionResult",
    "ExecutorSettings",
    "ProgressEvent",
    "RunStatus",
    "execute",
    "journal_changes",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_PENDING = ChangeStatus.PENDING
_DONE = ChangeStatus.DONE
_FAILED = ChangeStatus.FAILED
_SKIPPED = ChangeStatus.SKIPPED
_IN_FLIGHT = ChangeStatus.IN_FLIGHT
_TERMINAL = frozenset({_DONE, _FAILED, _SKIPPED})

_MOBILE = PhoneType.MOBILE.value
_ALT = PhoneType.ALTERNATE_MOBILE.value
_PHONE_TYPE = {t.value: t for t in PhoneType}
_NOT_SENT_RETRY = frozenset({429, 503})
_UNKNOWN_OUTCOME = frozenset({500, 502, 504})
DEPENDENCY_FAILED = "dependencyFailed"
# Writes refused (401/403) before any write succeeded, after which the run stops as a
# permission failure instead of failing every remaining change one by one. One refused
# user can be legitimate (a delegated admin may not manage a privileged user); a batch's
# worth in a row with no success is the credential.
DENIED_WRITES_ABORT = 20


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """Tuning of one run. Defaults suit a real tenant; tests shrink the waits."""

    batch_size: int = MAX_BATCH_SIZE
    max_batches: int | None = None
    """Batches handed to the client at once (waiting for a pacing slot or an answer).
    Default: the pacer's ``max_in_flight`` + 2, so the pacer, not this, sets concurrency."""
    retry: RetryPolicy = DEFAULT_RETRY_POLICY
    settle_s: float = 2.0
    """Wait before reading back an uncertain write: Graph's replication lag can hide a
    write for a moment (realmjoin's runbook waits 5 s; the sandbox's graph-like lag is 1 s)."""
    exists_reads: int = 3
    """Read-backs of a create answered "already exists" before it counts as failed."""
    alternate_settle_s: float = 1.0
    """An alternateMobile create waits this long after its user's mobile was created."""
    alternate_lag_retries: int = 5
    alternate_backoff_s: float = 1.0
    """First wait after an alternateMobile create refused for want of a (just created)
    mobile; doubles per retry, at most 8 s."""
    verify: bool = False
    """Read back each user after its last change and record whether it matches the plan."""
    progress_interval_s: float = 0.5
    batch_interval_s: float = 0.25
    """Write batches shrink below ``batch_size`` when the pacer's write rate is low, to
    about this many seconds of it each (at 20 writes/s: 5 per batch, 4 batches/s), so one
    batch never spends a whole second of the tenant's budget at once. 0: always full."""
    queued_batches: int = 3
    """Batches handed to the client that may wait for the pacer's permission at once."""
    journal_in_thread: bool = True
    """Commit journal transactions in a worker thread (the event loop keeps serving answers)."""

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_SIZE}")


class RunStatus(StrEnum):
    COMPLETED = "completed"  # every change is done, failed or skipped (or unresolved, see below)
    INTERRUPTED = "interrupted"  # stopped on request: resume continues it
    ABORTED = "aborted"  # authentication/permission failure: nothing else could succeed


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A progress report for the CLI to draw (no phone numbers)."""

    total: int
    done: int
    failed: int
    skipped: int
    in_flight: int  # changes sent or waiting for a read-back
    operations: int  # Graph operations sent so far in this process (reads included)
    operations_per_s: float  # over the last few seconds
    changes_per_s: float  # finished changes per second, over the last few seconds
    throttled: int  # operations answered 429 so far
    pause_reason: str | None  # why dispatch is paused right now (Retry-After), if it is
    eta_s: float | None
    elapsed_s: float
    finished: bool = False

    @property
    def finished_changes(self) -> int:
        return self.done + self.failed + self.skipped


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """How the run ended. Per-change and per-user detail is in the journal:
    ``journal.changes()`` (status, HTTP status, Graph code, message, request-id, attempts,
    ``sms_state_after``, ``verified``) and ``journal.verifications()`` (``--verify``)."""

    status: RunStatus
    counts: StatusCounts
    unresolved: tuple[str, ...]
    """Changes whose outcome could not be established (their read-back failed past
    retrying): left ``in_flight`` so that resume reads them back."""
    write_operations: int
    read_operations: int
    batches: int
    throttled: int
    elapsed_s: float
    run_dir: str
    resume_command: str | None
    message: str
    error: GraphError | None = None


def journal_changes(changes: Iterable[ChangeLike]) -> list[JournalChange]:
    """The journal's records of planner changes (``Plan.changes``), in planned order."""
    return [JournalChange.of(c) for c in changes]


# -- runtime state ------------------------------------------------------------------------
class _Purpose(StrEnum):
    UNKNOWN = "unknown"  # the write's outcome is unknown (reset, timeout, 5xx)
    RESUMED = "resumed"  # found in flight (or unconfirmed) when the run started
    CONFLICT = "conflict"  # 409 phoneNumberNotUnique on a mobile write
    EXISTS = "exists"  # 400 "already exists" on a create
    VERIFY = "verify"  # --verify after the user's last change


class _Item:
    __slots__ = ("change", "user", "index", "attempts", "started", "error", "lag_retries", "reads")

    def __init__(self, change: JournalChange, user: _User, index: int) -> None:
        self.change = change
        self.user = user
        self.index = index
        self.attempts = 0
        self.started: float | None = None
        self.error: GraphError | None = None
        self.lag_retries = 0
        self.reads = 0


class _User:
    __slots__ = ("key", "target", "items", "pos", "purpose", "read_attempts", "read_started", "ended", "verify_changes")

    def __init__(self, key: str, target: str) -> None:
        self.key = key
        self.target = target
        self.items: list[_Item] = []
        self.pos = 0
        self.purpose: _Purpose | None = None
        self.read_attempts = 0
        self.read_started = 0.0
        self.ended = False
        self.verify_changes: list[JournalChange] = []


def _op(op_id: str, change: JournalChange) -> Op:
    kind = change.kind
    target = change.target
    if kind == "create":
        return graph_ops.create_phone(op_id, target, _PHONE_TYPE[change.phone_type], change.after or "")
    if kind == "update":
        return graph_ops.update_phone(op_id, target, _PHONE_TYPE[change.phone_type], change.after or "")
    if kind == "delete":
        return graph_ops.delete_phone(op_id, target, _PHONE_TYPE[change.phone_type])
    if kind == "enable_sms":
        return graph_ops.enable_sms_sign_in(op_id, target)
    return graph_ops.disable_sms_sign_in(op_id, target)


def _result(item: _Item, status: ChangeStatus, error: GraphError | None, **extra: object) -> ChangeResult:
    if error is None:
        return ChangeResult(item.change.id, status, **extra)  # type: ignore[arg-type]
    return ChangeResult(
        item.change.id,
        status,
        http_status=error.status or None,
        code=error.code,
        message=error.message,
        request_id=error.request_id,
        **extra,  # type: ignore[arg-type]
    )


class _Run:
    def __init__(
        self,
        client: GraphClient,
        journal: Journal,
        settings: ExecutorSettings,
        progress: Callable[[ProgressEvent], None] | None,
        stop: asyncio.Event | None,
        clock: Clock,
        sleep: Sleep,
    ) -> None:
        self.client = client
        self.journal = journal
        self.settings = settings
        self.retry = settings.retry
        self.progress = progress
        self.stop = stop
        self.clock = clock
        self.sleep = sleep
        self.pacer = client.pacer
        self.max_batches = settings.max_batches or self.pacer.settings.max_in_flight + 2

        self.ready: deque[_Item] = deque()
        self.reads: deque[_User] = deque()
        self.timers: list[tuple[float, int, int, object]] = []  # (due, tiebreak, what, item|user)
        self._tiebreak = itertools.count()
        self.tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()
        self.stopping = False
        self.fatal: GraphError | None = None
        self.denied = 0  # write answers 401/403 while no write has succeeded yet
        self.crash: BaseException | None = None
        self.unresolved: list[str] = []

        self.total = 0
        self.done = self.failed = self.skipped = 0
        self.write_ops = self.read_ops = self.batches = 0
        self.sending = 0
        self.unanswered = 0  # batches handed to the client whose answer has not come back
        self.gated = False
        self._ops_base = self.pacer.snapshot().operations
        self.started_at = clock()
        self._samples: deque[tuple[float, int, int]] = deque()
        self._last_emit = -1e18

    # -- setup --------------------------------------------------------------------------
    def load(self) -> None:
        users: dict[str, _User] = {}
        statuses: dict[str, ChangeStatus] = {}
        for entry in self.journal.changes():
            change = entry.change
            user = users.get(change.user)
            if user is None:
                user = users[change.user] = _User(change.user, change.target)
            user.items.append(_Item(change, user, len(user.items)))
            statuses[change.id] = entry.status
        self.total = len(statuses)
        verified = self.journal.verifications() if self.settings.verify else {}
        distrust_pending = self.journal.unclean_restart
        now = self.clock()
        for user in users.values():
            items = user.items
            pos = 0
            while pos < len(items) and statuses[items[pos].change.id] in _TERMINAL:
                status = statuses[items[pos].change.id]
                if status is _DONE:
                    self.done += 1
                elif status is _FAILED:
                    self.failed += 1
                else:
                    self.skipped += 1
                pos += 1
            user.pos = pos
            if pos == len(items):
                user.ended = True
                done = self._done_changes(user, statuses)
                if self.settings.verify and user.key not in verified and done:
                    user.verify_changes = done
                    self._schedule_read(user, _Purpose.VERIFY, now)
                continue
            if any(statuses[it.change.id] in (_FAILED, _SKIPPED) for it in items[:pos]):
                # A failure without its skips (an older writer): finish the chain now.
                self.skip_rest_now(user, pos)
                continue
            head = items[pos]
            if statuses[head.change.id] is _IN_FLIGHT or distrust_pending:
                self._schedule_read(user, _Purpose.RESUMED, now + self.settings.settle_s)
            else:
                self.ready.append(head)

    def _done_changes(self, user: _User, statuses: dict[str, ChangeStatus]) -> list[JournalChange]:
        return [it.change for it in user.items if statuses.get(it.change.id) is _DONE]

    def skip_rest_now(self, user: _User, pos: int) -> None:
        failed_id = next(
            (it.change.id for it in reversed(user.items[:pos])), user.items[pos].change.id
        )
        records = self._skips(user, pos, failed_id)
        self.journal.record_results(records)
        user.ended = True

    # -- scheduling helpers -------------------------------------------------------------
    def _at(self, due: float, what: int, obj: object) -> None:
        heapq.heappush(self.timers, (due, next(self._tiebreak), what, obj))

    def _schedule_read(self, user: _User, purpose: _Purpose, due: float) -> None:
        user.purpose = purpose
        user.read_attempts = 0
        if due <= self.clock():
            self.reads.append(user)
        else:
            self._at(due, 1, user)

    def _schedule_write(self, item: _Item, delay: float) -> None:
        if delay <= 0:
            self.ready.append(item)
        else:
            self._at(self.clock() + delay, 0, item)

    def _release_timers(self, now: float) -> None:
        timers = self.timers
        while timers and timers[0][0] <= now:
            _, _, what, obj = heapq.heappop(timers)
            if what == 0:
                self.ready.append(obj)  # type: ignore[arg-type]
            else:
                self.reads.append(obj)  # type: ignore[arg-type]

    def _skips(self, user: _User, start: int, failed_id: str) -> list[ChangeResult]:
        records = [
            ChangeResult(
                it.change.id,
                _SKIPPED,
                code=DEPENDENCY_FAILED,
                message=f"depends on a failed change ({failed_id})",
            )
            for it in user.items[start:]
        ]
        self.skipped += len(records)
        return records

    def _advance(self, item: _Item, now: float) -> None:
        """The item is done: queue the user's next change (or finish the user)."""
        user = item.user
        user.pos = item.index + 1
        if user.pos >= len(user.items):
            user.ended = True
            if self.settings.verify:
                user.verify_changes = [it.change for it in user.items]
                self._schedule_read(user, _Purpose.VERIFY, now + self.settings.settle_s)
            return
        nxt = user.items[user.pos]
        change = item.change
        if (
            change.kind == "create"
            and change.phone_type == _MOBILE
            and nxt.change.kind == "create"
            and nxt.change.phone_type == _ALT
            and self.settings.alternate_settle_s > 0
        ):
            self._at(now + self.settings.alternate_settle_s, 0, nxt)
        else:
            self.ready.append(nxt)

    def _fail(self, item: _Item, records: list[ChangeResult], error: GraphError | None, **extra: object) -> None:
        records.append(_result(item, _FAILED, error, **extra))
        self.failed += 1
        user = item.user
        records.extend(self._skips(user, item.index + 1, item.change.id))
        user.ended = True
        user.pos = len(user.items)

    # -- write answers ------------------------------------------------------------------
    def _on_write(
        self, item: _Item, res: OpResult, now: float, records: list[ChangeResult], after: list[Callable[[], None]]
    ) -> None:
        error = res.error
        change = item.change
        if error is None:
            sms = None
            if change.phone_type == _MOBILE and isinstance(res.body, dict):
                sms = res.body.get("smsSignInState")
            records.append(
                ChangeResult(change.id, _DONE, http_status=res.status, request_id=res.headers.get("request-id"),
                             sms_state_after=sms)
            )
            self.done += 1
            after.append(lambda: self._advance(item, now))
            return
        status = error.status
        code = error.code
        transport = isinstance(error, TransportFailure)
        if status in _NOT_SENT_RETRY or (transport and not error.outcome_unknown):  # type: ignore[union-attr]
            wait = self.retry.decide(error, attempt=item.attempts, started=item.started or now, now=now)
            if wait is None:
                self._fail(item, records, error)
                return
            records.append(_result(item, _PENDING, error))
            self.journal.record_event(
                EventKind.RETRY, change_id=change.id, http_status=status or None, code=code,
                request_id=error.request_id, detail={"wait_s": round(wait, 3), "attempt": item.attempts},
            )
            after.append(lambda: self._schedule_write(item, wait))
            return
        if transport or status in _UNKNOWN_OUTCOME:
            item.error = error
            self.journal.record_event(
                EventKind.READBACK, change_id=change.id, http_status=status or None, code=code,
                request_id=error.request_id, detail={"reason": "outcome unknown"},
            )
            after.append(lambda: self._schedule_read(item.user, _Purpose.UNKNOWN, now + self.settings.settle_s))
            return
        kind = change.kind
        message = (error.message or "").lower()
        if status == 409 and code == "phoneNumberNotUnique":
            if kind in ("create", "update") and change.phone_type == _MOBILE:
                item.error = error
                after.append(lambda: self._schedule_read(item.user, _Purpose.CONFLICT, now + self.settings.settle_s))
            else:
                self._fail(item, records, error, sms_state_after="phoneNumberNotUnique")
            return
        if status == 400 and kind == "create":
            if "already exist" in message:
                item.error = error
                item.reads = 0
                after.append(lambda: self._schedule_read(item.user, _Purpose.EXISTS, now + self.settings.settle_s))
                return
            if (
                change.phone_type == _ALT
                and "mobile" in message
                and item.lag_retries < self.settings.alternate_lag_retries
            ):
                wait = min(8.0, self.settings.alternate_backoff_s * (2 ** item.lag_retries))
                item.lag_retries += 1
                records.append(_result(item, _PENDING, error))
                after.append(lambda: self._schedule_write(item, wait))
                return
        if status == 404 and kind == "delete" and code == "itemNotFound":
            records.append(_result(item, _DONE, error))
            self.done += 1
            after.append(lambda: self._advance(item, now))
            return
        self._fail(item, records, error)

    # -- read-back answers --------------------------------------------------------------
    def _on_read(
        self, user: _User, res: OpResult, now: float, records: list[ChangeResult],
        verifications: list[UserVerification], after: list[Callable[[], None]],
    ) -> None:
        purpose = user.purpose
        error = res.error
        if error is not None:
            if error.status == 404 and purpose is not _Purpose.VERIFY and user.pos < len(user.items):
                self._fail(user.items[user.pos], records, error)
                return
            if user.read_attempts == 0:
                user.read_started = now
            user.read_attempts += 1
            wait = self.retry.decide(error, attempt=user.read_attempts, started=user.read_started, now=now)
            if wait is not None:
                attempts = user.read_attempts
                started = user.read_started

                def again() -> None:
                    self._schedule_read(user, purpose, now + wait)  # type: ignore[arg-type]
                    user.read_attempts = attempts
                    user.read_started = started

                after.append(again)
                return
            if purpose is _Purpose.VERIFY:
                verifications.append(UserVerification(user.key, False, {"error": error.code or str(error.status)}))
            else:
                # Can't tell what the tenant holds: leave it in flight for resume to read back.
                self.unresolved.append(user.items[user.pos].change.id)
                user.ended = True
            return
        phones = graph_ops.parse_phone_list(res.body)
        user.read_attempts = 0
        if purpose is _Purpose.VERIFY:
            v = verify_user(user.verify_changes, phones)
            verifications.append(
                UserVerification(user.key, v.ok, {"mismatches": list(v.mismatches), "sms_state": v.sms_state})
            )
            return
        item = user.items[user.pos]
        change = item.change
        sms = sms_state(phones) if change.phone_type == _MOBILE else None
        last = item.error
        if change_holds(change, phones):
            conflict = last is not None and last.status == 409
            records.append(
                ChangeResult(
                    change.id, _DONE,
                    http_status=last.status if conflict else None,  # type: ignore[union-attr]
                    code=last.code if conflict else None,  # type: ignore[union-attr]
                    message=last.message if conflict else "confirmed by read-back",  # type: ignore[union-attr]
                    request_id=last.request_id if last is not None else None,
                    sms_state_after=sms, verified=True,
                )
            )
            self.done += 1
            after.append(lambda: self._advance(item, now))
            return
        if purpose is _Purpose.CONFLICT:
            self._fail(item, records, last, sms_state_after=sms)
            return
        if purpose is _Purpose.EXISTS:
            if item.reads < self.settings.exists_reads - 1:
                item.reads += 1
                wait = self.settings.settle_s * (2 ** item.reads)
                after.append(lambda: self._schedule_read(user, _Purpose.EXISTS, now + wait))
            else:
                self._fail(item, records, last)
            return
        # UNKNOWN / RESUMED: the write did not land; send it again under the retry policy.
        if last is not None:
            wait = self.retry.decide(last, attempt=max(item.attempts, 1), started=item.started or now, now=now)
            if wait is None:
                self._fail(item, records, last)
                return
        else:
            wait = 0.0
        after.append(lambda: self._schedule_write(item, wait))

    # -- batches ------------------------------------------------------------------------
    async def send_writes(self, items: list[_Item]) -> None:
        ids = [it.change.id for it in items]
        await self._journal(self.journal.mark_in_flight, ids)
        now = self.clock()
        for it in items:
            it.attempts += 1
            if it.started is None:
                it.started = now
        ops = [_op(str(i), it.change) for i, it in enumerate(items)]
        self.write_ops += len(ops)
        self.batches += 1
        records: list[ChangeResult] = []
        after: list[Callable[[], None]] = []
        self.sending += len(items)
        try:
            results = await self.client.batch(ops)
        except AuthError as exc:
            self.unanswered -= 1
            self.sending -= len(items)
            # The envelope was refused before anything ran: nothing was written.
            self.fatal = exc
            self.stopping = True
            await self._journal(self.journal.record_results, [_result(it, _PENDING, exc) for it in items])
            return
        except GraphError as exc:
            self.unanswered -= 1
            self.sending -= len(items)
            for it in items:
                self._fail(it, records, exc)
            await self._commit(records, after)
            return
        self.unanswered -= 1
        self.sending -= len(items)
        if self.done == 0 and all(res.status in (401, 403) for res in results):
            self.denied += len(results)
            if self.denied >= DENIED_WRITES_ABORT:
                # Not one write has succeeded and every answer is "not allowed": the credential
                # lacks the permission, so the rest would fail the same way. Stop; these stay
                # pending, and a resume after the fix sends them.
                first = next((res.error for res in results if res.error is not None), None)
                self.fatal = AuthError(
                    first.status if first else 403,
                    first.code if first else None,
                    f"every write so far was refused ({self.denied} of them): "
                    f"{first.message if first else 'not allowed'}",
                    request_id=first.request_id if first else None,
                )
                self.stopping = True
                await self._journal(self.journal.record_results, [_result(it, _PENDING, res.error) for it, res in zip(items, results)])
                return
        now = self.clock()
        for it, res in zip(items, results):
            self._on_write(it, res, now, records, after)
        await self._commit(records, after)

    async def send_reads(self, users: list[_User]) -> None:
        ops = [graph_ops.list_phones(str(i), u.target) for i, u in enumerate(users)]
        self.read_ops += len(ops)
        self.batches += 1
        records: list[ChangeResult] = []
        verifications: list[UserVerification] = []
        after: list[Callable[[], None]] = []
        try:
            results = await self.client.batch(ops)
        except AuthError as exc:
            self.unanswered -= 1
            self.fatal = exc
            self.stopping = True
            for u in users:
                if u.purpose is not _Purpose.VERIFY and u.pos < len(u.items):
                    self.unresolved.append(u.items[u.pos].change.id)
            return
        except GraphError as exc:
            results = [OpResult(op.id, exc.status, {}, None, exc) for op in ops]
        self.unanswered -= 1
        now = self.clock()
        for u, res in zip(users, results):
            self._on_read(u, res, now, records, verifications, after)
        if verifications:
            self.journal.record_verifications(verifications)
        await self._commit(records, after)

    async def _commit(self, records: list[ChangeResult], after: list[Callable[[], None]]) -> None:
        """Journal one response's results, then (only then) queue what follows from them."""
        if records:
            await self._journal(self.journal.record_results, records)
        for action in after:
            action()

    async def _journal(self, method: Callable[..., None], *args: object) -> None:
        # A commit is usually sub-millisecond, but a WAL checkpoint can take tens of ms:
        # off the event loop, so other batches' answers keep flowing meanwhile.
        if self.settings.journal_in_thread:
            await asyncio.to_thread(method, *args)
        else:
            method(*args)

    # -- the loop -----------------------------------------------------------------------
    def _launch(self, coro: Awaitable[None]) -> None:
        self.unanswered += 1
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.wake.set()
        if not task.cancelled() and task.exception() is not None and self.crash is None:
            # A bug or a journal failure: stop dispatching, let the others finish, re-raise.
            self.crash = task.exception()
            self.stopping = True

    def _dispatch(self) -> None:
        """Hand batches to the client while it has room for them.

        Room: fewer than ``max_batches`` of ours in progress, and fewer than
        ``queued_batches`` waiting for the pacer's permission. Changes are marked in flight
        before their batch is handed over, so a short queue keeps the journal's in-flight
        set (read back on resume) and the work a Ctrl-C still sends small, even when the
        pacer releases one batch a second.
        """
        size = self.settings.batch_size
        self.gated = False
        if not (self.reads or self.ready):
            return
        snap = self.pacer.snapshot()
        waiting = self.unanswered - snap.in_flight
        write_size = size
        if self.settings.batch_interval_s > 0:
            lane = snap.lanes.get(Lane.WRITE)
            if lane is not None:
                write_size = max(1, min(size, int(lane.rate_limit * self.settings.batch_interval_s)))
        while len(self.tasks) < self.max_batches and (self.reads or self.ready):
            if waiting >= self.settings.queued_batches:
                self.gated = True
                return
            waiting += 1
            if self.reads:
                users = [self.reads.popleft() for _ in range(min(size, len(self.reads)))]
                self._launch(self.send_reads(users))
            else:
                items = [self.ready.popleft() for _ in range(min(write_size, len(self.ready)))]
                self._launch(self.send_writes(items))

    async def run(self) -> RunStatus:
        self.load()
        if self.stop is not None:
            stop_task = asyncio.ensure_future(self.stop.wait())
            stop_task.add_done_callback(lambda _t: self.wake.set())
        else:
            stop_task = None
        interrupted = False
        try:
            while True:
                try:
                    if self.stop is not None and self.stop.is_set():
                        self.stopping = True
                        interrupted = interrupted or self.fatal is None
                    now = self.clock()
                    if not self.stopping:
                        self._release_timers(now)
                        self._dispatch()
                    self._emit(now)
                    if not self.tasks and (self.stopping or not (self.ready or self.reads or self.timers)):
                        break
                    await self._wait(now)
                except asyncio.CancelledError:
                    if self.stopping and interrupted:
                        raise  # a second cancellation: give up waiting
                    self.stopping = True
                    interrupted = True
        finally:
            if stop_task is not None:
                stop_task.cancel()
        self.journal.flush()
        if self.crash is not None:
            raise self.crash
        if self.fatal is not None:
            return RunStatus.ABORTED
        if interrupted:
            self.journal.record_event(EventKind.INTERRUPT, detail={"done": self.done, "total": self.total})
            self.journal.flush()
            return RunStatus.INTERRUPTED
        return RunStatus.COMPLETED

    async def _wait(self, now: float) -> None:
        self.wake.clear()
        poll = self.gated and not self.stopping
        if self.tasks and (self.stopping or not self.timers) and not poll:
            await self.wake.wait()
            return
        delay = min(self.timers[0][0] - now, self.settings.progress_interval_s) if self.timers else 1.0
        if poll:
            # Nothing wakes us when the pacer admits a queued batch: look again shortly.
            delay = min(delay, 0.02)
        if not self.tasks:
            await self.sleep(max(delay, 0.0))
            return
        sleeper = asyncio.ensure_future(self.sleep(max(delay, 0.0)))
        waiter = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait((sleeper, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()

    # -- progress -----------------------------------------------------------------------
    def _emit(self, now: float, *, final: bool = False) -> None:
        if self.progress is None:
            return
        if not final and now - self._last_emit < self.settings.progress_interval_s:
            return
        self._last_emit = now
        snap = self.pacer.snapshot()
        finished = self.done + self.failed + self.skipped
        ops = snap.operations - self._ops_base  # dispatched by the pacer (not just queued)
        samples = self._samples
        samples.append((now, finished, ops))
        while len(samples) > 2 and now - samples[0][0] > 10.0:
            samples.popleft()
        t0, f0, o0 = samples[0]
        span = now - t0
        cps = (finished - f0) / span if span > 0 else 0.0
        ops_s = (ops - o0) / span if span > 0 else 0.0
        remaining = self.total - finished
        eta = remaining / cps if cps > 0 else (0.0 if remaining == 0 else None)
        self.progress(
            ProgressEvent(
                total=self.total, done=self.done, failed=self.failed, skipped=self.skipped,
                in_flight=self.sending, operations=ops, operations_per_s=ops_s, changes_per_s=cps,
                throttled=snap.throttled, pause_reason=snap.pause_reason, eta_s=eta,
                elapsed_s=now - self.started_at, finished=final,
            )
        )


async def execute(
    client: GraphClient,
    journal: Journal,
    *,
    settings: ExecutorSettings | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    stop: asyncio.Event | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> ExecutionResult:
    """Apply every unfinished change in ``journal`` through ``client``; see the module doc.

    ``stop``: set it to stop dispatching (the CLI's Ctrl-C handler may set it instead of
    cancelling). ``clock``/``sleep`` drive the executor's own waits (give the client's
    pacer the same ones in tests).
    """
    run = _Run(client, journal, settings or ExecutorSettings(), progress, stop, clock, sleep)
    status = await run.run()
    run._emit(clock(), final=True)
    counts = journal.counts()
    run_dir = str(journal.path.parent)
    snap = client.pacer.snapshot()
    resume = None
    if status is RunStatus.INTERRUPTED:
        resume = f"provision resume {run_dir}"
        message = (
            f"interrupted: {counts.done} of {counts.total} changes done, {counts.in_flight} in flight "
            f"(read back on resume), {counts.pending} not started; continue with: {resume}"
        )
    elif status is RunStatus.ABORTED:
        resume = f"provision resume {run_dir}"
        message = f"stopped: {run.fatal}; fix the credential or permissions, then: {resume}"
    else:
        message = (
            f"{counts.done} done, {counts.failed} failed, {counts.skipped} skipped of {counts.total} changes"
        )
        if run.unresolved:
            resume = f"provision resume {run_dir}"
            message += f"; {len(run.unresolved)} could not be read back (resume reads them again: {resume})"
    return ExecutionResult(
        status=status,
        counts=counts,
        unresolved=tuple(run.unresolved),
        write_operations=run.write_ops,
        read_operations=run.read_ops,
        batches=run.batches,
        throttled=snap.throttled,
        elapsed_s=clock() - run.started_at,
        run_dir=run_dir,
        resume_command=resume,
        message=message,
        error=run.fatal,
    )
