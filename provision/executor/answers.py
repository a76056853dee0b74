"""The executor's answer rules: what each answer to a write, or to a read-back, leads to.

Every answer is classified once into a small closed set of answer classes; the action is
then looked up in a table: ``WRITE_RULES``, keyed by (change kind, write answer class),
and ``READ_BACK_RULES``, keyed by (read-back purpose, read-back class). The executor
carries out the action the table names (``provision.executor.actions``) and decides nothing
else. Failures are first put in ``provision.graph.retry``'s classes (not sent, outcome
unknown, final), the same classification the state reader and the client's batch path use.

No rule reads the wording of an error message, nor relies on an error code to decide:
Graph does not publish its codes and messages for rule violations, so a refused write is
judged by what the tenant holds. Graph's status, code and message are recorded as they
came. Nothing is ever written twice blindly: a write that may have landed is read back
before it is sent again.

Write answers
-------------
- 2xx (``OK``): done. A mobile create's answer carries its ``smsSignInState``.
- 429 and 503 (``NOT_SENT``: the server refused before doing anything): back to
  ``pending`` and sent again after ``provision.graph.retry``'s wait (the item's Retry-After
  when given), within its attempt cap and per-change deadline; past them the change fails.
- No answer, and certainly nothing sent (``UNREACHED``: connection refused, connect
  timeout, the login endpoint down): back to ``pending``, sent again after the policy's
  wait. Never failed: while the target stays silent it is retried past the caps, and the
  circuit breaker ends the run (``RunStatus.UNREACHABLE``) with it still pending; past the
  caps while the target answers other requests, it is left pending, unresolved, for resume.
- Outcome unknown (a connection reset or timeout after sending, an item answered 500, 502
  or 504, every item of a ``$batch`` whose envelope was answered 5xx, an item the answer
  left out): the change stays ``in_flight``; after ``settle_s`` (replication lag could hide
  a just-made write) the user's phones are read back (purpose ``UNKNOWN``). The after-state
  holds: done. It does not: sent again under the retry policy.
- 400 or 409 (``RULE_REFUSED``): the user's phones are read back after ``settle_s``
  (purpose ``REFUSED``) and the refusal is judged by them (see the read-back answers).
- 404 on a delete (``NOT_FOUND``): read back (purpose ``GONE``): the phone is gone: done.
- 401 or 403 (``DENIED``): not allowed. The change goes back to ``pending`` and its user
  waits (``held``): once a write of this run lands after it, the credential can write and
  only this user is refused (a delegated admin may not manage a privileged user): failed.
  ``DENIED_WRITES_ABORT`` refusals in a row with no write landing (or a run whose work
  is otherwise over with refusals held and no write landed) stop the run as a permission
  failure (``ABORTED``), every held change still pending for resume to send.
- Any other error (404 on a create, update or SMS change included) is final: failed,
  and the user's later changes are ``skipped`` with reason "depends on a failed change".

Read-back answers
-----------------
A write's read-back is checked against its change:

- ``HOLDS``: the phones read show the change's after-state;
- ``NEEDS_MOBILE``: an alternateMobile create does not hold, and the read shows no mobile,
  or this run created or changed the user's mobile (Graph refuses an alternateMobile until
  it has replicated the mobile);
- ``ABSENT``: a create or update does not hold and the read shows no phone of its type
  at all (a read can lag behind a write that landed);
- ``DIFFERS``: it does not hold otherwise (another number, a delete's phone still there,
  another SMS state);
- ``USER_GONE``: the read was answered 404; ``UNREADABLE``: any other failure;
- ``READ``: a ``--verify`` read (checked against every applied change).

And what follows:

- ``UNKNOWN`` / ``RESUMED`` (a write whose outcome is unknown, or found in flight on
  resume): holds: done, ``verified``; does not: sent again under the retry policy.
- ``REFUSED`` (a 400 or 409): holds: done, ``verified`` (a 409's status, code and the SMS
  state read are kept: Graph saved a mobile whose number another user holds for SMS
  sign-in, a conflict to report, not a failure; a 400 that holds was an earlier attempt
  of ours landing); ``NEEDS_MOBILE``: sent again after a doubling wait, at most
  ``alternate_lag_retries`` times (then failed); ``ABSENT``: read again after a doubling
  wait, up to ``exists_reads`` reads (then failed); ``DIFFERS``: failed with Graph's
  status, code and message and the SMS state read.
- ``GONE`` (a 404 on a delete): holds: done; does not: failed with the 404.
- 404 on the read: the change fails with that 404 (``--verify``: as below).
- Unreadable: read again under the retry policy (past its caps only while the target is
  silent: the breaker then ends the run); past it, ``--verify`` records a failed check,
  and a change stays ``in_flight`` (unresolved: resume reads it back).
- ``--verify`` (``VERIFY`` purpose, ``READ``): record whether the user's applied changes hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Mapping

from provision.errors import GraphError
from provision.executor.journal import JournalChange
from provision.executor.readback import Phones, change_holds
from provision.graph.retry import RetryClass, classify, unreached
from provision.model import ChangeKind, PhoneType

__all__ = [
    "READ_BACK_RULES",
    "WRITE_RULES",
    "Purpose",
    "ReadAction",
    "ReadBack",
    "WriteAction",
    "WriteAnswer",
    "WriteRule",
    "classify_read_back",
    "classify_write_answer",
]


class Purpose(StrEnum):
    """Why a user's phones are read back."""

    UNKNOWN = "unknown"  # the write's outcome is unknown (reset, timeout, 5xx)
    RESUMED = "resumed"  # found in flight (or unconfirmed) when the run started
    REFUSED = "refused"  # the write was answered 400 or 409
    GONE = "gone"  # a delete was answered 404
    VERIFY = "verify"  # --verify after the user's last change


# -- write answers ------------------------------------------------------------------------
class WriteAnswer(StrEnum):
    """The answer classes of a write (see the module docstring)."""

    OK = "ok"  # 2xx
    NOT_SENT = "not_sent"  # 429 or 503: refused before anything was done
    UNREACHED = "unreached"  # no answer, and nothing left: connection refused, connect timeout
    OUTCOME_UNKNOWN = "outcome_unknown"  # reset or timeout after sending, 5xx, envelope 5xx
    RULE_REFUSED = "rule_refused"  # 400 or 409: judged by reading the user back
    NOT_FOUND = "not_found"  # 404
    DENIED = "denied"  # 401 or 403
    REFUSED = "refused"  # any other error


def classify_write_answer(error: GraphError | None) -> WriteAnswer:
    """The class of a write's answer (``error`` None: it succeeded), by status alone."""
    if error is None:
        return WriteAnswer.OK
    retry_class = classify(error)
    if retry_class is RetryClass.NOT_SENT:
        return WriteAnswer.UNREACHED if unreached(error) else WriteAnswer.NOT_SENT
    if retry_class is RetryClass.OUTCOME_UNKNOWN:
        return WriteAnswer.OUTCOME_UNKNOWN
    status = error.status
    if status in (400, 409):
        return WriteAnswer.RULE_REFUSED
    if status == 404:
        return WriteAnswer.NOT_FOUND
    if status in (401, 403):
        return WriteAnswer.DENIED
    return WriteAnswer.REFUSED


class WriteAction(StrEnum):
    """What the executor does with a write's answer."""

    DONE = "done"  # journal it done (with what the answer said), then the user's next change
    RESEND = "resend"  # back to pending, sent again after the retry policy's wait; past its caps: failed
    RESEND_UNREACHED = "resend_unreached"  # back to pending, sent again; never failed (see UNREACHED)
    READ_BACK = "read_back"  # keep it in flight (or pending, for a refusal), read the user's phones back
    HOLD = "hold"  # pending; the user waits until the refusal is judged (see DENIED)
    FAIL = "fail"  # failed; the user's later changes are skipped


@dataclass(frozen=True, slots=True)
class WriteRule:
    """An entry of ``WRITE_RULES``: the action, and for ``READ_BACK`` why it reads back."""

    action: WriteAction
    purpose: Purpose | None = None

    def __post_init__(self) -> None:
        if (self.action is WriteAction.READ_BACK) != (self.purpose is not None):
            raise ValueError("a purpose goes with READ_BACK, and only with it")

    @property
    def read_purpose(self) -> Purpose:
        if self.purpose is None:
            raise ValueError(f"{self.action} reads nothing back")
        return self.purpose


_DONE = WriteRule(WriteAction.DONE)
_RESEND = WriteRule(WriteAction.RESEND)
_RESEND_UNREACHED = WriteRule(WriteAction.RESEND_UNREACHED)
_HOLD = WriteRule(WriteAction.HOLD)
_FAIL = WriteRule(WriteAction.FAIL)
_READ_BACK_UNKNOWN = WriteRule(WriteAction.READ_BACK, Purpose.UNKNOWN)
_READ_BACK_REFUSED = WriteRule(WriteAction.READ_BACK, Purpose.REFUSED)
_READ_BACK_GONE = WriteRule(WriteAction.READ_BACK, Purpose.GONE)

# Every (kind, answer) pair; anything not listed below is FAIL.
#
#                       create / update / enable_sms / disable_sms     delete
#   OK                  done                                           done
#   NOT_SENT            resend                                         resend
#   UNREACHED           resend, never failed                           resend, never failed
#   OUTCOME_UNKNOWN     read back unknown                              read back unknown
#   RULE_REFUSED        read back refused                              read back refused
#   NOT_FOUND           fail                                           read back gone
#   DENIED              hold                                           hold
#   REFUSED             fail                                           fail
_LISTED_WRITE_RULES: dict[tuple[ChangeKind, WriteAnswer], WriteRule] = {
    **{(kind, WriteAnswer.OK): _DONE for kind in ChangeKind},
    **{(kind, WriteAnswer.NOT_SENT): _RESEND for kind in ChangeKind},
    **{(kind, WriteAnswer.UNREACHED): _RESEND_UNREACHED for kind in ChangeKind},
    **{(kind, WriteAnswer.OUTCOME_UNKNOWN): _READ_BACK_UNKNOWN for kind in ChangeKind},
    **{(kind, WriteAnswer.RULE_REFUSED): _READ_BACK_REFUSED for kind in ChangeKind},
    **{(kind, WriteAnswer.DENIED): _HOLD for kind in ChangeKind},
    (ChangeKind.DELETE, WriteAnswer.NOT_FOUND): _READ_BACK_GONE,
}
WRITE_RULES: Mapping[tuple[ChangeKind, WriteAnswer], WriteRule] = {
    (kind, answer): _LISTED_WRITE_RULES.get((kind, answer), _FAIL) for kind in ChangeKind for answer in WriteAnswer
}


# -- read-back answers --------------------------------------------------------------------
class ReadBack(StrEnum):
    """The answer classes of a read-back (see the module docstring)."""

    HOLDS = "holds"  # the phones read show the change's after-state
    NEEDS_MOBILE = "needs_mobile"  # an alternateMobile create, and the mobile is missing or just written
    ABSENT = "absent"  # a create/update does not hold and no phone of its type is there
    DIFFERS = "differs"  # it does not hold otherwise
    READ = "read"  # phones read for --verify (checked against every applied change)
    USER_GONE = "user_gone"  # 404
    UNREADABLE = "unreadable"  # any other failure


def classify_read_back(
    error: GraphError | None, phones: Phones | None, change: JournalChange | None, *, mobile_written: bool = False
) -> ReadBack:
    """The class of a read-back's answer: ``error``, else the ``phones`` read, checked
    against ``change`` (None: a ``--verify`` read). ``mobile_written``: this run created or
    changed the user's mobile before ``change``."""
    if error is not None:
        return ReadBack.USER_GONE if error.status == 404 else ReadBack.UNREADABLE
    if change is None or phones is None:
        return ReadBack.READ
    if change_holds(change, phones):
        return ReadBack.HOLDS
    kind, phone_type = ChangeKind(change.kind), PhoneType(change.phone_type)
    if kind is ChangeKind.CREATE and phone_type is PhoneType.ALTERNATE_MOBILE:
        if PhoneType.MOBILE not in phones or mobile_written:
            return ReadBack.NEEDS_MOBILE
    if kind in (ChangeKind.CREATE, ChangeKind.UPDATE) and phone_type not in phones:
        return ReadBack.ABSENT
    return ReadBack.DIFFERS


class ReadAction(StrEnum):
    """What the executor does with a read-back's answer."""

    CONFIRM = "confirm"  # done and verified; a 409's status, code and the SMS state read are kept
    RESEND = "resend"  # the write did not land: sent again under the retry policy (failed past it)
    RESEND_AFTER_LAG = "resend_after_lag"  # pending again after a doubling wait, a bounded number of times; then failed
    READ_AGAIN = "read_again"  # read again after a doubling wait, up to exists_reads reads; then failed
    FAIL = "fail"  # failed with the write's answer and the SMS state read
    FAIL_GONE = "fail_gone"  # failed with the read's 404
    RETRY_READ = "retry_read"  # read again under the retry policy; past it: a failed check / unresolved
    RECORD = "record"  # --verify: record whether the user's applied changes hold


_WRITE_PURPOSES = (Purpose.UNKNOWN, Purpose.RESUMED, Purpose.REFUSED, Purpose.GONE)
_NOT_HELD = (ReadBack.NEEDS_MOBILE, ReadBack.ABSENT, ReadBack.DIFFERS)

# Only the pairs that can occur: a write's read-back is checked against its change, a
# --verify read against the user's applied changes.
#
#                    UNKNOWN / RESUMED   REFUSED             GONE         VERIFY
#   HOLDS            confirm             confirm             confirm      -
#   NEEDS_MOBILE     resend              resend after lag    fail         -
#   ABSENT           resend              read again          fail         -
#   DIFFERS          resend              fail                fail         -
#   READ             -                   -                   -            record
#   USER_GONE        fail (the 404)      fail (the 404)      fail (404)   retry read
#   UNREADABLE       retry read          retry read          retry read   retry read
READ_BACK_RULES: Mapping[tuple[Purpose, ReadBack], ReadAction] = {
    **{(purpose, ReadBack.HOLDS): ReadAction.CONFIRM for purpose in _WRITE_PURPOSES},
    **{(Purpose.UNKNOWN, read_back): ReadAction.RESEND for read_back in _NOT_HELD},
    **{(Purpose.RESUMED, read_back): ReadAction.RESEND for read_back in _NOT_HELD},
    **{(Purpose.GONE, read_back): ReadAction.FAIL for read_back in _NOT_HELD},
    (Purpose.REFUSED, ReadBack.NEEDS_MOBILE): ReadAction.RESEND_AFTER_LAG,
    (Purpose.REFUSED, ReadBack.ABSENT): ReadAction.READ_AGAIN,
    (Purpose.REFUSED, ReadBack.DIFFERS): ReadAction.FAIL,
    **{(purpose, ReadBack.USER_GONE): ReadAction.FAIL_GONE for purpose in _WRITE_PURPOSES},
    **{(purpose, ReadBack.UNREADABLE): ReadAction.RETRY_READ for purpose in Purpose},
    (Purpose.VERIFY, ReadBack.USER_GONE): ReadAction.RETRY_READ,
    (Purpose.VERIFY, ReadBack.READ): ReadAction.RECORD,
}
