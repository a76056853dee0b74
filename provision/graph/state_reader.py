"""Read what Graph has for every roster user: phone methods, existence, masking, SMS policy.

The SMS policy is read once. Then every user's ``GET .../phoneMethods`` goes out in
``$batch`` requests of 20, several in flight, all through the client's pacing controller.
When the policy names individual users (so eligibility depends on object ids) and the
caller says the policy matters, users keyed by UPN also get a
``GET /users/{upn}?$select=id`` in the same batches (a GUID key already is the id).

Outcomes per user, never exceptions: 404 -> ``NOT_FOUND``; a final error on the phone
methods -> ``FAILED`` with Graph's code and message; masked numbers -> ``masked=True``. An
id lookup that fails (a credential without ``User.Read.All`` is answered 403) costs only
that user's SMS eligibility: the user is read, its id stays unknown, and a remark names
the missing permission. A 403 on the SMS policy likewise makes it unreadable, with a
remark naming ``Policy.Read.AuthenticationMethod``. Throttled or failed items (5xx and
``$batch`` envelopes answered 5xx included: a read is safe to send again) are re-queued
under ``provision.graph.retry``'s policy (honouring each item's Retry-After) and go out
again packed with other ready items.

Two things stop the read instead of giving users outcomes: a 401 (the token itself is
refused: nothing else could succeed), and a target that can't be reached at all: when it
has answered nothing for ``unreachable_after_s`` (connections refused or reset, requests
unanswered; the pacer's ``silence``), ``TargetUnreachable`` is raised rather than every
user being marked read-failed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Mapping, TypeVar

from provision.errors import AuthError, GraphError, TargetUnreachable
from provision.graph import ops as graph_ops
from provision.graph.batch import MAX_BATCH_SIZE, Op, OpResult
from provision.graph.client import GraphClient
from provision.graph.retry import (
    DEFAULT_RETRY_POLICY,
    RetryPolicy,
    breaker_alarm,
    unreachable_after_s,
    unreached,
)
from provision.masking import is_masked
from provision.model import (
    UNREADABLE_SMS_POLICY,
    CurrentPhone,
    CurrentUser,
    PhoneType,
    ReadStatus,
    SmsPolicy,
)

T = TypeVar("T")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ReadNotes:
    """How the read went: figures for the run note and remarks for the report."""

    users: int
    batches: int  # $batch round trips (retried batches included)
    operations: int  # batch items sent (retries included)
    retried: int  # items sent again after a transient failure
    throttled: int  # items answered 429
    not_found: int
    failed: int
    masked: int
    remarks: tuple[str, ...] = ()


@dataclass(slots=True)
class _Item:
    key: str
    kind: str  # "phones" | "user"
    started: float = 0.0
    attempts: int = 0


@dataclass(slots=True)
class _UserAcc:
    pending: int
    phones: dict[PhoneType, CurrentPhone] | None = None
    id: str | None = None
    status: ReadStatus | None = None
    error: GraphError | None = None


@dataclass(slots=True)
class _Counters:
    batches: int = 0
    operations: int = 0
    retried: int = 0
    throttled: int = 0
    remarks: list[str] = field(default_factory=list)
    ids_unread: int = 0  # users whose id lookup failed (their SMS eligibility is unknown)
    id_error: GraphError | None = None  # the first such failure


def target_unreachable(client: GraphClient, silence: float, last: GraphError | None) -> TargetUnreachable:
    """The error that stops a read (or a run) whose target has answered nothing for ``silence`` s."""
    cause = f" (last: {last.message})" if last is not None and last.message else ""
    return TargetUnreachable(
        f"{client.target.base_url} can't be reached: no answer for {silence:.0f} s{cause}; "
        "nothing was changed. Run the command again once it answers."
    )


def _op_for(item: _Item, op_id: str) -> Op:
    if item.kind == "phones":
        return graph_ops.list_phones(op_id, item.key)
    return graph_ops.get_user(op_id, item.key)


async def read_retried(
    client: GraphClient,
    call: Callable[[], Awaitable[T]],
    *,
    refused: Callable[[AuthError], Exception] | None = None,
    retry: RetryPolicy = DEFAULT_RETRY_POLICY,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    unreachable_after: float | None = None,
) -> T:
    """One read (a page, an object) under the retry policy and the unreachable breaker.

    A 403 becomes ``refused(error)`` when given (the message naming the permission to
    grant); other auth errors, and failures past retrying, are raised as they are; a target
    silent for ``unreachable_after`` seconds (default ``provision.graph.retry.unreachable_after_s``)
    raises ``TargetUnreachable``.
    """
    bound = unreachable_after or unreachable_after_s()
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except AuthError as exc:
            if exc.status == 403 and refused is not None:
                raise refused(exc) from None
            raise
        except GraphError as exc:
            silence = client.pacer.silence()
            if unreached(exc) and silence >= bound:
                raise target_unreachable(client, silence, exc) from None
            wait = retry.decide(exc, attempt=attempt, started=started, now=clock(), target_silent=silence > 0)
            if wait is None:
                raise
        if silence > 0:
            wait = min(wait, max(0.0, bound - silence))  # look again when the breaker would open
        await sleep(wait)


async def read_sms_policy_once(
    client: GraphClient,
    *,
    retry: RetryPolicy = DEFAULT_RETRY_POLICY,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    unreachable_after: float | None = None,
) -> tuple[SmsPolicy, str | None]:
    """The SMS policy, or the unreadable value and why (403, or failures past retrying).

    Raises ``AuthError`` on 401 and ``TargetUnreachable`` when the target answers nothing
    for ``unreachable_after`` seconds (default ``provision.graph.retry.unreachable_after_s``).
    """
    try:
        return await read_retried(
            client, client.read_sms_policy, retry=retry, clock=clock, sleep=sleep, unreachable_after=unreachable_after
        )
    except GraphError as exc:
        if exc.status == 401:
            raise
        return UNREADABLE_SMS_POLICY, graph_ops.sms_policy_unreadable(exc.status, exc.code, exc.message)


async def read_current_state(
    client: GraphClient,
    user_keys: Iterable[str],
    *,
    pacer: object | None = None,
    policy_needs_ids: bool,
    progress: Progress | None = None,
    retry: RetryPolicy = DEFAULT_RETRY_POLICY,
    max_in_flight: int = 8,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    unreachable_after: float | None = None,
) -> tuple[dict[str, CurrentUser], SmsPolicy, ReadNotes]:
    """Current state for every key (each key once), the SMS policy, and notes on the read.

    ``pacer``: the pacing controller; every request already goes through the client's, so
    this is only accepted to state the dependency (it must be the client's when given).
    ``max_in_flight`` caps the batches waiting for a pacing slot or an answer at once.
    ``unreachable_after``: the circuit breaker's bound in seconds (default
    ``provision.graph.retry.unreachable_after_s``); past it ``TargetUnreachable`` is raised.
    """
    if pacer is not None and pacer is not client.pacer and getattr(client.pacer, "controller", None) is not pacer:
        raise ValueError("read_current_state: pacer must be the client's pacing controller")
    keys = list(dict.fromkeys(user_keys))
    counters = _Counters()
    bound = unreachable_after or unreachable_after_s()
    policy, reason = await read_sms_policy_once(client, retry=retry, clock=clock, sleep=sleep, unreachable_after=bound)
    if reason:
        counters.remarks.append(reason)
    need_ids = policy_needs_ids and graph_ops.policy_targets_users(policy)
    read = _Read(
        client, keys, need_ids, counters, retry=retry, progress=progress, clock=clock, sleep=sleep, unreachable_after=bound
    )
    await read.run(max_in_flight)
    users, notes = _outcomes(keys, read.accs, counters)
    return users, policy, notes


class _Read:
    """One read of every key's phone methods (and ids): the queues and the answers."""

    def __init__(
        self,
        client: GraphClient,
        keys: list[str],
        need_ids: bool,
        counters: _Counters,
        *,
        retry: RetryPolicy,
        progress: Progress | None,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        unreachable_after: float,
    ) -> None:
        self.client = client
        self.counters = counters
        self.retry = retry
        self.progress = progress
        self.clock = clock
        self.sleep = sleep
        self.accs: dict[str, _UserAcc] = {}
        self.ready: deque[_Item] = deque()
        self.delayed: list[tuple[float, int, _Item]] = []  # (due, tiebreak, item)
        self._tiebreak = itertools.count()
        self.done_users = 0
        self.total = len(keys)
        self.unreachable_after = unreachable_after
        self.last_unreached: GraphError | None = None
        for key in keys:
            guid = _GUID.match(key) is not None
            fetch_id = need_ids and not guid
            self.accs[key] = _UserAcc(pending=2 if fetch_id else 1, id=key.lower() if guid else None)
            self.ready.append(_Item(key, "phones"))
            if fetch_id:
                self.ready.append(_Item(key, "user"))

    # -- chunking and dispatch ----------------------------------------------------------
    async def run(self, max_in_flight: int) -> None:
        """Send every item, ``MAX_BATCH_SIZE`` to a batch, at most ``max_in_flight`` batches
        at once; retried items wait their turn in ``delayed``. A 401 (or a bug) raises."""
        ready, delayed = self.ready, self.delayed
        in_flight: set[asyncio.Future[None]] = set()
        try:
            while ready or delayed or in_flight:
                self.check_reachable()
                now = self.clock()
                while delayed and delayed[0][0] <= now:
                    ready.append(heapq.heappop(delayed)[2])
                while ready and len(in_flight) < max_in_flight:
                    chunk = [ready.popleft() for _ in range(min(MAX_BATCH_SIZE, len(ready)))]
                    in_flight.add(asyncio.ensure_future(self.send(chunk)))
                waiters: set[asyncio.Future[None]] = set(in_flight)
                timer: asyncio.Future[None] | None = None
                wake_in = breaker_alarm(self.client.pacer.silence(), self.unreachable_after)
                if delayed and (len(in_flight) < max_in_flight):
                    due_in = max(0.0, delayed[0][0] - self.clock())
                    wake_in = due_in if wake_in is None else min(wake_in, due_in)
                if wake_in is not None:
                    timer = asyncio.ensure_future(self.sleep(wake_in))
                    waiters.add(timer)
                if not waiters:
                    continue
                finished, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if timer is not None and timer not in finished:
                    timer.cancel()
                for task in finished:
                    if task is timer:
                        continue
                    in_flight.discard(task)
                    task.result()  # a 401 or a bug surfaces here
        finally:
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)

    async def send(self, chunk: list[_Item]) -> None:
        now = self.clock()
        batch_ops: list[Op] = []
        for i, item in enumerate(chunk):
            if item.attempts == 0:
                item.started = now
            item.attempts += 1
            batch_ops.append(_op_for(item, str(i)))
        self.counters.batches += 1
        self.counters.operations += len(batch_ops)
        results = await self.client.batch(batch_ops)
        for item, result in zip(chunk, results):
            self.settle(item, result)
        if self.progress is not None:
            self.progress(self.done_users, self.total)

    # -- answers ------------------------------------------------------------------------
    def check_reachable(self) -> None:
        """Raise ``TargetUnreachable`` once the target has answered nothing for the bound."""
        silence = self.client.pacer.silence()
        if silence >= self.unreachable_after:
            raise target_unreachable(self.client, silence, self.last_unreached)

    def settle(self, item: _Item, result: OpResult) -> None:
        """Record one answer: the phones or the id, not found, again later, or failed."""
        acc = self.accs[item.key]
        error = result.error
        if error is None:
            if item.kind == "phones":
                acc.phones = graph_ops.parse_phone_list(result.body)
            elif isinstance(result.body, dict) and result.body.get("id"):
                acc.id = str(result.body["id"]).lower()
            self._finish(item)
            return
        if error.status == 429:
            self.counters.throttled += 1
        if error.status == 401:
            raise error
        if error.status == 404:
            acc.status = ReadStatus.NOT_FOUND
            acc.error = error
            self._finish(item)
            return
        if unreached(error):
            self.last_unreached = error
        # A read has no side effect: an outcome-unknown failure is simply read again, and
        # one that reached nothing is read again for as long as the breaker allows.
        silent = self.client.pacer.silence() > 0
        wait = self.retry.decide(
            error, attempt=item.attempts, started=item.started, now=self.clock(), idempotent=True, target_silent=silent
        )
        if wait is not None:
            self.counters.retried += 1
            heapq.heappush(self.delayed, (self.clock() + wait, next(self._tiebreak), item))
            return
        if item.kind == "user":
            self._id_unread(acc, error)
        elif acc.status is not ReadStatus.NOT_FOUND:
            acc.status = ReadStatus.FAILED
            acc.error = error
        self._finish(item)

    def _id_unread(self, acc: _UserAcc, error: GraphError) -> None:
        """An id lookup failed for good: the user is still read; only its id (and so its SMS
        eligibility under a policy naming users) stays unknown."""
        acc.id = None
        self.counters.ids_unread += 1
        if self.counters.id_error is None:
            self.counters.id_error = error

    def _finish(self, item: _Item) -> None:
        acc = self.accs[item.key]
        acc.pending -= 1
        if acc.pending == 0:
            self.done_users += 1


# -- notes ----------------------------------------------------------------------------
def _user_outcome(key: str, acc: _UserAcc) -> CurrentUser:
    err = acc.error
    if acc.status is ReadStatus.NOT_FOUND:
        return CurrentUser(
            key, ReadStatus.NOT_FOUND, error_code=err.code if err else None, error_message=err.message if err else None
        )
    if acc.status is ReadStatus.FAILED or acc.phones is None:
        return CurrentUser(
            key,
            ReadStatus.FAILED,
            id=acc.id,
            error_code=(err.code or str(err.status)) if err else "notRead",
            error_message=err.message if err else "phone methods were not read",
            http_status=(err.status or None) if err else None,
        )
    masked = any(is_masked(p.number) for p in acc.phones.values())
    return CurrentUser(key, ReadStatus.OK, id=acc.id, phones=acc.phones, masked=masked)


def _outcomes(keys: list[str], accs: dict[str, _UserAcc], counters: _Counters) -> tuple[dict[str, CurrentUser], ReadNotes]:
    """Every key's ``CurrentUser``, and the notes on the read (figures and remarks)."""
    users = {key: _user_outcome(key, accs[key]) for key in keys}
    id_error = counters.id_error
    if counters.ids_unread and id_error is not None:
        counters.remarks.append(
            graph_ops.user_ids_unreadable(counters.ids_unread, id_error.status, id_error.code, id_error.message)
        )
    not_found = sum(1 for u in users.values() if u.status is ReadStatus.NOT_FOUND)
    failed = sum(1 for u in users.values() if u.status is ReadStatus.FAILED)
    masked_count = sum(1 for u in users.values() if u.masked)
    if masked_count:
        counters.remarks.append(
            f"{masked_count} user(s) have masked phone numbers (the caller may only see masked numbers); "
            "they are never planned against"
        )
    notes = ReadNotes(
        users=len(keys),
        batches=counters.batches,
        operations=counters.operations,
        retried=counters.retried,
        throttled=counters.throttled,
        not_found=not_found,
        failed=failed,
        masked=masked_count,
        remarks=tuple(counters.remarks),
    )
    return users, notes


# Graph's codes for "the caller may not do this" (directory and authentication-methods APIs).
# The status decides (a 403 is a refusal whatever its code); these codes on another status too.
DENIED_CODES = frozenset({"Authorization_RequestDenied", "accessDenied", "Forbidden"})


def _denied(user: CurrentUser) -> bool:
    return user.status is ReadStatus.FAILED and (user.http_status == 403 or user.error_code in DENIED_CODES)


def refuse_if_denied_everywhere(current: Mapping[str, CurrentUser], permission: str) -> None:
    """Every read refused for want of permission is the app's problem, not the rows'.

    One user refused can be legitimate (a delegated admin may not manage a privileged
    user); all of them means the credential lacks ``permission``: stop with exit 4.
    """
    if not current or not all(_denied(c) for c in current.values()):
        return
    sample = next(iter(current.values()))
    raise AuthError(
        403,
        sample.error_code,
        f"the credential may not read users' phone methods (every read was refused); grant the app "
        f"{permission} (application permission) with admin consent",
    )
