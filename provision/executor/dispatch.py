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
batches costs no throughput, only a user's own latency. The one order across users: a
mobile number the roster gives several users is written for them in roster order
(``provision.executor.turns``), so the same user ends up signing in by SMS with it whatever
order Graph runs a batch's items in. Several batches are in flight at
once; every request goes through the client's shared ``Pacer`` (writes in the write lane,
read-backs in the read lane), which sets the pace and honours Retry-After globally.

Answers
-------
What each answer to a write or to a read-back leads to (done, sent again, read back,
failed...) is decided in one place: ``provision.executor.answers`` classifies the answer and
looks the action up in its tables, where the rules are written out;
``provision.executor.actions`` carries the action out. The executor only sends and journals.

Durability (``provision.executor.journal``'s protocol): ids are marked ``in_flight`` (committed)
before their batch is handed to the client; each batch's answers are recorded in one
transaction before any dependent change is dispatched. On resume, ``in_flight`` changes
are read back before anything is re-sent. Stop (``stop`` event, or cancelling the task,
which ``asyncio.run`` does on Ctrl-C): no new batches; in-flight ones finish and are
journaled; the result is ``INTERRUPTED`` with the resume command.

Outages and refusals lose nothing
---------------------------------
A request that gets no answer never fails a change: it stays ``pending`` when nothing was
sent, ``in_flight`` (read back later) when something may have been. The circuit breaker
(``ExecutorSettings.unreachable_after_s``) watches the pacer's ``silence``: once the target
has answered nothing for that long while requests waited on it, dispatch stops, requests
still waiting are abandoned (their changes stay in flight) and the run ends
``UNREACHABLE`` with the resume command. Writes refused for want of permission stay
``pending`` until judged (``provision.executor.actions``); ``DENIED_WRITES_ABORT`` of them in
a row with none landing end the run ``ABORTED``, and a resume with the permission granted
sends them all.

The executor never prints; it reports through the ``progress`` callback
(``provision.executor.progress``). Its parts: ``settings`` (tuning, write batch sizing),
``chains`` (each user's changes and their state), ``schedule`` (what is due to be sent),
``answers`` and ``actions`` (the answer rules), ``outcome`` (how the run ended).
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Iterable

from provision.errors import AuthError, GraphError
from provision.executor.actions import DEPENDENCY_FAILED, Actions, Answered
from provision.executor.answers import Purpose
from provision.executor.chains import ChangeItem, UserChain, load_chains
from provision.executor.journal import (
    ChangeLike,
    ChangeStatus,
    EventKind,
    Journal,
    JournalChange,
    UserVerification,
)
from provision.executor.outcome import ExecutionResult, RunStatus, ending_message
from provision.executor.progress import ProgressEvent, ProgressMeter, Tally
from provision.executor.schedule import Schedule
from provision.executor.settings import ExecutorSettings
from provision.executor.turns import NumberTurns
from provision.graph import ops as graph_ops
from provision.graph.batch import Op, OpResult
from provision.graph.client import GraphClient
from provision.graph.retry import breaker_alarm

__all__ = [
    "DENIED_WRITES_ABORT",
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

_TERMINAL = frozenset({ChangeStatus.DONE, ChangeStatus.FAILED, ChangeStatus.SKIPPED})
# Writes refused (401/403) in a row, with no write landing, after which the run stops as a
# permission failure instead of refusing every remaining change one by one. One refused
# user can be legitimate (a delegated admin may not manage a privileged user); a batch's
# worth in a row with no success is the credential.
DENIED_WRITES_ABORT = 20


def journal_changes(changes: Iterable[ChangeLike]) -> list[JournalChange]:
    """The journal's records of planner changes (``Plan.changes``), in planned order."""
    return [JournalChange.of(c) for c in changes]


class _Run:
    """One execution: dispatches batches from the schedule, journals their answers."""

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
        self.stop = stop
        self.clock = clock
        self.sleep = sleep
        self.pacer = client.pacer
        self.max_batches = settings.max_batches or self.pacer.settings.max_in_flight + 2
        self.schedule = Schedule(clock)
        self.tally = Tally()
        self.actions = Actions(journal, self.schedule, settings, self.tally, silent=lambda: self.pacer.silence() > 0)

        self.tasks: set[asyncio.Task[None]] = set()
        self.asking: set[asyncio.Task[None]] = set()  # tasks waiting on the client for an answer
        self.wake = asyncio.Event()
        self.stopping = False
        self.fatal: GraphError | None = None
        self.unreachable = False  # the circuit breaker opened
        self.silence_s = 0.0  # how long the target had been silent when it did
        self.crash: BaseException | None = None

        self.write_ops = self.read_ops = self.batches = 0
        self.sending = 0
        self.unanswered = 0  # batches handed to the client whose answer has not come back
        self.gated = False
        self.meter = ProgressMeter(progress, self.pacer, settings.progress_interval_s, clock())
        self.started_at = self.meter.started_at

    # -- setup --------------------------------------------------------------------------
    def load(self) -> None:
        """Take up every unfinished chain: a fresh run and a resume are the same."""
        users, statuses = load_chains(self.journal.planned())
        self.actions.turns = NumberTurns(item for user in users.values() for item in user.items)
        self.tally.total = len(statuses)
        verified = self.journal.verifications() if self.settings.verify else {}
        distrust_pending = self.journal.unclean_restart
        now = self.clock()
        for user in users.values():
            self._take_up(user, statuses, verified, distrust_pending, now)

    def _take_up(
        self, user: UserChain, statuses: dict[str, ChangeStatus], verified: dict[str, UserVerification],
        distrust_pending: bool, now: float,
    ) -> None:
        items = user.items
        tally = self.tally
        pos = 0
        while pos < len(items) and statuses[items[pos].change.id] in _TERMINAL:
            status = statuses[items[pos].change.id]
            if status is ChangeStatus.DONE:
                tally.done += 1
            elif status is ChangeStatus.FAILED:
                tally.failed += 1
            else:
                tally.skipped += 1
            pos += 1
        user.pos = pos
        if pos == len(items):
            user.ended = True
            done = [it.change for it in items if statuses.get(it.change.id) is ChangeStatus.DONE]
            if self.settings.verify and user.key not in verified and done:
                user.verify_changes = done
                self.schedule.read(user, Purpose.VERIFY, now)
            return
        if any(statuses[it.change.id] in (ChangeStatus.FAILED, ChangeStatus.SKIPPED) for it in items[:pos]):
            # A failure without its skips (an older writer): finish the chain now.
            self.actions.skip_rest_now(user, pos)
            return
        head = items[pos]
        if statuses[head.change.id] is ChangeStatus.IN_FLIGHT or distrust_pending:
            self.schedule.read(user, Purpose.RESUMED, now + self.settings.settle_s)
        else:
            self.actions.queue(head)

    # -- batches ------------------------------------------------------------------------
    async def _ask(self, ops: list[Op]) -> list[OpResult] | None:
        """The client's answer to one batch; None when the circuit breaker abandoned it."""
        task = asyncio.current_task()
        if task is not None:
            self.asking.add(task)
        try:
            return await self.client.batch(ops)
        except asyncio.CancelledError:
            if not (self.unreachable and task is not None and task.cancelling()):
                raise
            task.uncancel()  # abandoned by the breaker, not a cancelled run
            return None
        finally:
            if task is not None:
                self.asking.discard(task)

    async def send_writes(self, items: list[ChangeItem]) -> None:
        await self._journal(self.journal.mark_in_flight, [it.change.id for it in items])
        if self.unreachable:  # the breaker opened meanwhile: nothing of this batch was sent
            self.unanswered -= 1
            await self._journal(self.journal.record_results, [it.result(ChangeStatus.PENDING, None) for it in items])
            return
        now = self.clock()
        for it in items:
            it.attempts += 1
            if it.started is None:
                it.started = now
        ops = [it.write_op(str(i)) for i, it in enumerate(items)]
        self.write_ops += len(ops)
        self.batches += 1
        out = Answered()
        self.sending += len(items)
        try:
            results = await self._ask(ops)
        except AuthError as exc:
            # The envelope was refused before anything ran: nothing was written.
            self.fatal = exc
            self.stopping = True
            await self._journal(self.journal.record_results, [it.result(ChangeStatus.PENDING, exc) for it in items])
            return
        except GraphError as exc:  # a batch Graph would not take at all (malformed): nothing ran
            for it in items:
                self.actions.fail(it, out, exc)
            await self._commit(out)
            return
        finally:
            self.unanswered -= 1
            self.sending -= len(items)
        if results is None:  # abandoned unanswered: in flight, read back on resume
            return
        now = self.clock()
        for it, res in zip(items, results):
            self.actions.on_write(it, res, now, out)
        self.actions.judge_held(out)
        self._check_denied()  # before the commit's wait, so no further batch leaves meanwhile
        await self._commit(out)

    def _check_denied(self) -> None:
        """Stop the run when ``DENIED_WRITES_ABORT`` writes in a row were refused 401/403."""
        actions = self.actions
        if actions.denied_in_row < DENIED_WRITES_ABORT or self.fatal is not None:
            return
        # The credential lacks the permission, so the rest would be refused the same way.
        # The refused changes stay pending, and a resume after the fix sends them.
        first = next((item.error for item, _ in actions.held if item.error is not None), None)
        so_far = "every write so far was refused" if actions.landed == 0 else "the last writes were refused"
        self.fatal = AuthError(
            first.status if first else 403,
            first.code if first else None,
            f"{so_far} ({actions.denied_in_row} of them): {first.message if first else 'not allowed'}",
            request_id=first.request_id if first else None,
        )
        self.stopping = True

    async def send_reads(self, users: list[UserChain]) -> None:
        ops = [graph_ops.list_phones(str(i), u.target) for i, u in enumerate(users)]
        self.read_ops += len(ops)
        self.batches += 1
        out = Answered()
        try:
            answered = await self._ask(ops)
        except AuthError as exc:
            self.fatal = exc
            self.stopping = True
            answered = None
        except GraphError as exc:
            answered = [OpResult(op.id, exc.status, {}, None, exc) for op in ops]
        finally:
            self.unanswered -= 1
        if answered is None:  # not read: what they wait for stays in flight for resume
            for u in users:
                if u.purpose is not Purpose.VERIFY and u.pos < len(u.items):
                    self.actions.unresolved.append(u.head.change.id)
            return
        now = self.clock()
        for u, res in zip(users, answered):
            self.actions.on_read(u, res, now, out)
        if out.verifications:
            self.journal.record_verifications(out.verifications)
        self.actions.judge_held(out)
        await self._commit(out)

    async def _commit(self, out: Answered) -> None:
        """Journal one response's results, then (only then) queue what follows from them."""
        if out.records:
            await self._journal(self.journal.record_results, out.records)
        for action in out.after:
            action()

    async def _journal(self, method: Callable[..., None], *args: object) -> None:
        # A commit is sub-millisecond (the journal checkpoints in a thread of its own) unless
        # the disk is slow or sync="full"; in a worker thread none stalls the event loop, at
        # about a tenth of the client's CPU per operation (bench/apply_cpu.py).
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
        pacer releases one batch a second. Read-backs go first, in full batches; write
        batches are sized to the pacer's write rate (``ExecutorSettings.write_batch_size``).
        """
        self.gated = False
        schedule = self.schedule
        if not schedule.due:
            return
        snap = self.pacer.snapshot()
        waiting = self.unanswered - snap.in_flight
        write_size = self.settings.write_batch_size_for(snap)
        while len(self.tasks) < self.max_batches and schedule.due:
            if waiting >= self.settings.queued_batches:
                self.gated = True
                return
            waiting += 1
            if schedule.reads:
                self._launch(self.send_reads(schedule.take_reads(self.settings.batch_size)))
            else:
                self._launch(self.send_writes(schedule.take_writes(write_size)))

    async def run(self) -> RunStatus:
        self.load()
        stop_task: asyncio.Task[object] | None = None
        if self.stop is not None:
            waiting = asyncio.ensure_future(self.stop.wait())
            waiting.add_done_callback(lambda _t: self.wake.set())
            stop_task = waiting
        interrupted = False
        try:
            while True:
                try:
                    if self.stop is not None and self.stop.is_set():
                        self.stopping = True
                        interrupted = interrupted or self.fatal is None
                    now = self.clock()
                    if not self.stopping:
                        self._check_reachable()
                    if not self.stopping:
                        self._unpark()
                        self.schedule.release(now)
                        self._dispatch()
                    self.emit(now)
                    if not self.tasks and (self.stopping or not self.schedule):
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
        return self._ending(interrupted)

    def _unpark(self) -> None:
        """Queue the writes of shared mobile numbers whose turn has come (all of them when
        nothing else is left to send or answer: nothing could free them any more)."""
        turns = self.actions.turns
        if turns.parked:
            for item in turns.unparked(self.actions.settled, all_=not self.tasks and not self.schedule):
                self.schedule.write(item)

    def _check_reachable(self) -> None:
        """Open the circuit breaker once the target has answered nothing for the bound."""
        silence = self.pacer.silence()
        if silence < self.settings.unreachable_after_s:
            return
        self.unreachable = True
        self.stopping = True
        self.silence_s = silence
        self.journal.record_event(EventKind.UNREACHABLE, detail={"silent_s": round(silence, 1)})
        for task in list(self.asking):
            task.cancel()  # no answer is coming: their changes stay in flight

    def _ending(self, interrupted: bool) -> RunStatus:
        self.journal.flush()
        if self.crash is not None:
            raise self.crash
        if self.fatal is None and not self.unreachable and not interrupted and self.actions.held:
            self._judge_held_at_end()
        if self.fatal is not None:
            return RunStatus.ABORTED
        if self.unreachable:
            self.journal.flush()
            return RunStatus.UNREACHABLE
        if interrupted:
            self.journal.record_event(EventKind.INTERRUPT, detail={"done": self.tally.done, "total": self.tally.total})
            self.journal.flush()
            return RunStatus.INTERRUPTED
        return RunStatus.COMPLETED

    def _judge_held_at_end(self) -> None:
        """Everything else is finished: refusals are the users' when a write of this run
        landed, else the credential's (the run is a permission failure; they stay pending)."""
        actions = self.actions
        if actions.landed == 0:
            actions.denied_in_row = max(actions.denied_in_row, DENIED_WRITES_ABORT)
            self._check_denied()
            return
        out = Answered()
        actions.judge_held(out, finished=True)
        self.journal.record_results(out.records)

    async def _wait(self, now: float) -> None:
        self.wake.clear()
        poll = self.gated and not self.stopping
        next_time = self.schedule.next_time
        alarm = None if self.stopping else breaker_alarm(self.pacer.silence(), self.settings.unreachable_after_s)
        if alarm is not None:
            next_time = now + alarm if next_time is None else min(next_time, now + alarm)
        if self.tasks and (self.stopping or next_time is None) and not poll:
            await self.wake.wait()
            return
        delay = min(next_time - now, self.settings.progress_interval_s) if next_time is not None else 1.0
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

    def emit(self, now: float, *, final: bool = False) -> None:
        self.meter.emit(now, self.tally, self.sending, final=final)


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
    run.emit(clock(), final=True)
    counts = journal.counts()
    run_dir = str(journal.path.parent)
    unresolved = tuple(run.actions.unresolved)
    message, resume = ending_message(
        status, counts, run_dir, fatal=run.fatal, unresolved=len(unresolved), target=client.target.base_url,
        silence_s=run.silence_s,
    )
    return ExecutionResult(
        status=status,
        counts=counts,
        unresolved=unresolved,
        write_operations=run.write_ops,
        read_operations=run.read_ops,
        batches=run.batches,
        throttled=client.pacer.snapshot().throttled,
        elapsed_s=clock() - run.started_at,
        run_dir=run_dir,
        resume_command=resume,
        message=message,
        error=run.fatal,
    )
