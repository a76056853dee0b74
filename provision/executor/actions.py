"""Carrying out the answer rules: what each action does to the users' chains.

``provision.executor.answers`` says which action an answer leads to; ``Actions`` does it:
journal records for the answer's batch (``Answered.records``, committed in one
transaction), events, the tally, and the scheduling that follows (``Answered.after``,
run only once those records are committed, so the journal's order matches the tenant's).

It also keeps the writes refused for want of permission (``held``) until they can be
judged: a write that lands afterwards shows the credential can write, so each earlier
refusal is about its user (failed); ``denied_in_row`` refusals with none landing are the
credential's (the dispatcher stops the run and they stay pending).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from provision.errors import GraphError
from provision.executor.answers import (
    READ_BACK_RULES,
    WRITE_RULES,
    Purpose,
    ReadAction,
    WriteAction,
    classify_read_back,
    classify_write_answer,
)
from provision.executor.chains import ChangeItem, UserChain
from provision.executor.journal import ChangeResult, ChangeStatus, EventKind, Journal, UserVerification
from provision.executor.progress import Tally
from provision.executor.readback import Phones, sms_state, verify_user
from provision.executor.schedule import Schedule
from provision.executor.settings import ExecutorSettings
from provision.executor.turns import NumberTurns
from provision.graph import ops as graph_ops
from provision.graph.batch import OpResult
from provision.graph.retry import unreached
from provision.model import ChangeKind, PhoneType

__all__ = ["DEPENDENCY_FAILED", "Actions", "Answered"]

DEPENDENCY_FAILED = "dependencyFailed"

_DONE = ChangeStatus.DONE
_PENDING = ChangeStatus.PENDING
_MOBILE_WRITES = (ChangeKind.CREATE, ChangeKind.UPDATE)


@dataclass(slots=True)
class Answered:
    """What one batch's answers lead to: journal records and ``--verify`` results (one
    transaction), then the scheduling that must wait for that commit."""

    records: list[ChangeResult] = field(default_factory=list)
    verifications: list[UserVerification] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)


class Actions:
    """The actions of the answer rules, applied to the users' chains.

    ``silent()`` says whether the target has been silent since before now (the pacer's
    ``silence``): then a request that got no answer at all is retried past the policy's
    caps, and the circuit breaker, not a failed change, ends the outage.
    """

    def __init__(
        self, journal: Journal, schedule: Schedule, settings: ExecutorSettings, tally: Tally,
        silent: Callable[[], bool] = lambda: False,
    ) -> None:
        self.journal = journal
        self.schedule = schedule
        self.settings = settings
        self.retry = settings.retry
        self.tally = tally
        self.silent = silent
        self.unresolved: list[str] = []
        self.held: list[tuple[ChangeItem, int]] = []  # (refused write, writes landed before it)
        self.landed = 0  # writes of this run that landed (answered 2xx or confirmed by read-back)
        self.denied_in_row = 0  # 401/403 write answers since the last write landed
        self.turns = NumberTurns(())  # the run's shared mobile numbers (set when its chains load)

    # -- write answers ------------------------------------------------------------------
    def on_write(self, item: ChangeItem, res: OpResult, now: float, out: Answered) -> None:
        """Carry out ``WRITE_RULES`` for one write's answer."""
        error = res.error
        rule = WRITE_RULES[item.kind, classify_write_answer(error)]
        action = rule.action
        if error is None or action is WriteAction.DONE:
            self._write_done(item, res, now, out)
        elif action is WriteAction.RESEND or action is WriteAction.RESEND_UNREACHED:
            self._resend(item, error, now, out)
        elif action is WriteAction.READ_BACK:
            self._read_back(item, error, rule.read_purpose, now, out)
        elif action is WriteAction.HOLD:
            self._hold(item, error, out)
        else:
            self.fail(item, out, error)

    def _write_done(self, item: ChangeItem, res: OpResult, now: float, out: Answered) -> None:
        error = res.error
        if error is None:
            sms = None
            if item.phone_type is PhoneType.MOBILE and isinstance(res.body, dict):
                sms = res.body.get("smsSignInState")
            out.records.append(
                ChangeResult(item.change.id, _DONE, http_status=res.status, request_id=res.headers.get("request-id"),
                             sms_state_after=sms)
            )
        else:
            out.records.append(item.result(_DONE, error))
        self._landed()
        out.after.append(partial(self.advance, item, now))

    def _resend(self, item: ChangeItem, error: GraphError, now: float, out: Answered) -> None:
        wait = self.retry.decide(
            error, attempt=item.attempts, started=item.started or now, now=now, target_silent=self.silent()
        )
        if wait is None:
            self._give_up(item, error, out)
            return
        out.records.append(item.result(_PENDING, error))
        self.journal.record_event(
            EventKind.RETRY, change_id=item.change.id, http_status=error.status or None, code=error.code,
            request_id=error.request_id, detail={"wait_s": round(wait, 3), "attempt": item.attempts},
        )
        out.after.append(partial(self.schedule.write, item, wait))

    def _give_up(self, item: ChangeItem, error: GraphError, out: Answered) -> None:
        """The retry policy is spent: failed, unless no answer ever came (then it stays
        pending, unresolved, for resume: an outage never fails a change)."""
        if not unreached(error):
            self.fail(item, out, error)
            return
        out.records.append(item.result(_PENDING, error))
        self.unresolved.append(item.change.id)
        item.user.ended = True

    def _read_back(self, item: ChangeItem, error: GraphError, purpose: Purpose, now: float, out: Answered) -> None:
        item.error = error
        item.reads = 0  # the re-reads of this read-back
        reason = "outcome unknown" if purpose is Purpose.UNKNOWN else f"answered {error.status}"
        self.journal.record_event(
            EventKind.READBACK, change_id=item.change.id, http_status=error.status or None, code=error.code,
            request_id=error.request_id, detail={"reason": reason},
        )
        out.after.append(partial(self.schedule.read, item.user, purpose, now + self.settings.settle_s))

    def _resend_after_lag(self, item: ChangeItem, error: GraphError | None, out: Answered) -> None:
        if item.lag_retries >= self.settings.alternate_lag_retries:
            self.fail(item, out, error)
            return
        wait = min(8.0, self.settings.alternate_backoff_s * (2 ** item.lag_retries))
        item.lag_retries += 1
        out.records.append(item.result(_PENDING, error))
        out.after.append(partial(self.schedule.write, item, wait))

    # -- permission refusals ------------------------------------------------------------
    def _hold(self, item: ChangeItem, error: GraphError, out: Answered) -> None:
        """Refused for want of permission: pending, its user waiting, until it can be judged."""
        item.error = error
        out.records.append(item.result(_PENDING, error))
        self.held.append((item, self.landed))
        self.denied_in_row += 1

    def _landed(self) -> None:
        self.tally.done += 1
        self.landed += 1
        self.denied_in_row = 0

    def judge_held(self, out: Answered, *, finished: bool = False) -> None:
        """Fail each held refusal that a write landing after it shows to be its user's
        (``finished``: the run is over, and any write of it landed)."""
        keep: list[tuple[ChangeItem, int]] = []
        for item, landed_before in self.held:
            if self.landed > landed_before or (finished and self.landed > 0):
                self.fail(item, out, item.error)
            else:
                keep.append((item, landed_before))
        self.held = keep

    # -- read-back answers --------------------------------------------------------------
    def on_read(self, user: UserChain, res: OpResult, now: float, out: Answered) -> None:
        """Carry out ``READ_BACK_RULES`` for one read-back's answer."""
        purpose = user.purpose
        if purpose is None:  # every read-back is scheduled with its purpose
            raise RuntimeError(f"read-back of {user.key} without a purpose")
        error = res.error
        phones: Phones = {} if error is not None else graph_ops.parse_phone_list(res.body)
        change = None if purpose is Purpose.VERIFY else user.head.change
        read_back = classify_read_back(error, phones, change, mobile_written=_mobile_written(user))
        action = READ_BACK_RULES[purpose, read_back]
        if error is not None:
            if action is ReadAction.FAIL_GONE:
                self.fail(user.head, out, error)
            else:
                self._retry_read(user, purpose, error, now, out)
            return
        user.read_attempts = 0
        if action is ReadAction.RECORD:
            v = verify_user(user.verify_changes, phones)
            out.verifications.append(
                UserVerification(user.key, v.ok, {"mismatches": list(v.mismatches), "sms_state": v.sms_state})
            )
            return
        item = user.head
        if action is ReadAction.CONFIRM:
            self._confirm(item, phones, now, out)
        elif action is ReadAction.RESEND:
            self._resend_unlanded(item, now, out)
        elif action is ReadAction.RESEND_AFTER_LAG:
            self._resend_after_lag(item, item.error, out)
        elif action is ReadAction.READ_AGAIN:
            self._read_again(item, now, out)
        else:
            self.fail(item, out, item.error, sms_state_after=_mobile_sms_state(item, phones))

    def _retry_read(self, user: UserChain, purpose: Purpose, error: GraphError, now: float, out: Answered) -> None:
        if user.read_attempts == 0:
            user.read_started = now
        user.read_attempts += 1
        wait = self.retry.decide(
            error, attempt=user.read_attempts, started=user.read_started, now=now, target_silent=self.silent()
        )
        if wait is not None:
            due, attempts, started = now + wait, user.read_attempts, user.read_started

            def again() -> None:
                self.schedule.read(user, purpose, due)
                user.read_attempts = attempts  # the same read, continued: keep its count
                user.read_started = started

            out.after.append(again)
            return
        if purpose is Purpose.VERIFY:
            out.verifications.append(UserVerification(user.key, False, {"error": error.code or str(error.status)}))
        else:
            # Can't tell what the tenant holds: leave it in flight for resume to read back.
            self.unresolved.append(user.head.change.id)
            user.ended = True

    def _confirm(self, item: ChangeItem, phones: Phones, now: float, out: Answered) -> None:
        last = item.error
        if last is not None and last.status == 409:  # a conflict to report, not a failure
            http_status, code, message = last.status, last.code, last.message
        else:
            http_status, code, message = None, None, "confirmed by read-back"
        out.records.append(
            ChangeResult(
                item.change.id, _DONE, http_status=http_status, code=code, message=message,
                request_id=last.request_id if last is not None else None,
                sms_state_after=_mobile_sms_state(item, phones), verified=True,
            )
        )
        self._landed()
        out.after.append(partial(self.advance, item, now))

    def _resend_unlanded(self, item: ChangeItem, now: float, out: Answered) -> None:
        last = item.error
        wait = 0.0
        if last is not None:
            decided = self.retry.decide(
                last, attempt=max(item.attempts, 1), started=item.started or now, now=now, target_silent=self.silent()
            )
            if decided is None:
                self._give_up(item, last, out)
                return
            wait = decided
        out.after.append(partial(self.schedule.write, item, wait))

    def _read_again(self, item: ChangeItem, now: float, out: Answered) -> None:
        if item.reads >= self.settings.exists_reads - 1:
            self.fail(item, out, item.error)
            return
        item.reads += 1
        wait = self.settings.settle_s * (2 ** item.reads)
        out.after.append(partial(self.schedule.read, item.user, Purpose.REFUSED, now + wait))

    # -- chains -------------------------------------------------------------------------
    def queue(self, item: ChangeItem) -> None:
        """Send ``item`` now, or once the earlier users given its mobile number are done with it."""
        if self.turns.may_send(item, self.settled):
            self.schedule.write(item)

    def settled(self, item: ChangeItem) -> bool:
        """Whether ``item`` is finished, its user's chain ended, or it waits on permission."""
        user = item.user
        return user.ended or user.pos > item.index or any(held is item for held, _ in self.held)

    def advance(self, item: ChangeItem, now: float) -> None:
        """The item is done: queue the user's next change (or finish the user)."""
        user = item.user
        user.pos = item.index + 1
        settings = self.settings
        if user.pos >= len(user.items):
            user.ended = True
            if settings.verify:
                user.verify_changes = [it.change for it in user.items]
                self.schedule.read(user, Purpose.VERIFY, now + settings.settle_s)
            return
        nxt = user.items[user.pos]
        if (
            item.kind is ChangeKind.CREATE
            and item.phone_type is PhoneType.MOBILE
            and nxt.kind is ChangeKind.CREATE
            and nxt.phone_type is PhoneType.ALTERNATE_MOBILE
            and settings.alternate_settle_s > 0
        ):
            # Graph refuses an alternateMobile until it has replicated the user's new mobile.
            self.schedule.write_at(now + settings.alternate_settle_s, nxt)
        else:
            self.queue(nxt)

    def fail(self, item: ChangeItem, out: Answered, error: GraphError | None, *, sms_state_after: str | None = None) -> None:
        """The item failed: record it, and skip the rest of its user's chain."""
        out.records.append(item.result(ChangeStatus.FAILED, error, sms_state_after=sms_state_after))
        self.tally.failed += 1
        user = item.user
        out.records.extend(self._skips(user, item.index + 1, item.change.id))
        user.ended = True
        user.pos = len(user.items)

    def skip_rest_now(self, user: UserChain, pos: int) -> None:
        """Journal the chain from ``pos`` on as skipped, after the failure before it."""
        failed_id = next((it.change.id for it in reversed(user.items[:pos])), user.items[pos].change.id)
        self.journal.record_results(self._skips(user, pos, failed_id))
        user.ended = True

    def _skips(self, user: UserChain, start: int, failed_id: str) -> list[ChangeResult]:
        records = [
            ChangeResult(
                it.change.id,
                ChangeStatus.SKIPPED,
                code=DEPENDENCY_FAILED,
                message=f"depends on a failed change ({failed_id})",
            )
            for it in user.items[start:]
        ]
        self.tally.skipped += len(records)
        return records


def _mobile_written(user: UserChain) -> bool:
    """Whether the user's chain created or changed the mobile before its head."""
    return any(it.phone_type is PhoneType.MOBILE and it.kind in _MOBILE_WRITES for it in user.items[: user.pos])


def _mobile_sms_state(item: ChangeItem, phones: Phones) -> str | None:
    """The SMS state read, for a change to the mobile (None for other phones)."""
    return sms_state(phones) if item.phone_type is PhoneType.MOBILE else None
