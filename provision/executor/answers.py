"""The executor's answer rules: what each answer to a write, or to a read-back, leads to.

Every answer is classified once into a small closed set of answer classes; the action is
then looked up in a table: ``WRITE_RULES``, keyed by (change kind, write answer class),
and ``READ_BACK_RULES``, keyed by (read-back purpose, read-back class). The executor
carries out the action the table names (``provision.executor.actions``) and decides nothing
else. Failures are first put in ``provision.graph.retry``'s classes (not sent, outcome
unknown, final), the same classification the state reader and the client's batch path use.

Write answers
-------------
- 2xx (``OK``): done. A mobile create's answer carries its ``smsSignInState``.
- 429, 503, and transport failures that certainly sent nothing (``NOT_SENT``): back to
  ``pending`` and sent again after ``provision.graph.retry``'s wait (the item's Retry-After
  when given), within its attempt cap and per-change deadline; past them the change fails.
- Outcome unknown (connection reset or timeout after sending, 504, 500, 502): the change
  stays ``in_flight``; after ``settle_s`` (replication lag could hide a just-made write)
  the user's phones are read back (purpose ``UNKNOWN``). The after-state holds: done. It
  does not: sent again under the retry policy (500/502 are final then). Nothing is ever
  written twice blindly.
- 409 ``phoneNumberNotUnique`` on a mobile create/update (``MOBILE_NOT_UNIQUE``): Graph
  usually saved the phone but not SMS sign-in: read back (``CONFLICT``); the number is
  there: done, recorded with the 409 and the SMS state read (a conflict to report, not a
  failure); otherwise failed. On ``enable_sms``, on any other kind, and on any other phone
  type (``NOT_UNIQUE``) it is final: failed, SMS state ``phoneNumberNotUnique``.
- 400 "already exists" on a create (``ALREADY_EXISTS``): read back (``EXISTS``); our
  number is there (a retried create whose first attempt landed): done. Replication lag
  may hide it, so up to ``exists_reads`` reads with growing waits before it fails.
- 400 on an alternateMobile create that names the mobile (``NEEDS_MOBILE``: Graph has not
  yet replicated the mobile we just created): bounded retry with backoff. To avoid it in
  the first place, an alternateMobile create waits ``alternate_settle_s`` after its
  mobile's create (the executor's dispatch does that).
- 404 ``itemNotFound`` on a delete (``NOT_FOUND``): the phone is gone, as planned: done.
- Any other error, or any of these on a kind not named above, is final: failed, and the
  user's later changes are ``skipped`` with reason "depends on a failed change".

Read-back answers
-----------------
- The phones read show the change's after-state (``HOLDS``): done, ``verified``.
- They do not (``MISSING``): after an unknown outcome or on resume, the write is sent again
  under the retry policy; after a 409 it fails (with the SMS state read); after "already
  exists" it is read again (see above), then fails.
- 404 on the read (``USER_GONE``): the change fails with that 404 (``--verify``: as below).
- Any other failure (``UNREADABLE``): read again under the retry policy; past it,
  ``--verify`` records a failed check, and a change stays ``in_flight`` (unresolved: resume
  reads it back).
- ``--verify`` (``VERIFY`` purpose, ``READ``): record whether the user's applied changes hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Mapping

from provision.errors import GraphError
from provision.executor.journal import JournalChange
from provision.executor.readback import Phones, change_holds
from provision.graph.retry import RetryClass, classify
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

# Graph's error code for a number another user holds for SMS sign-in.
_NOT_UNIQUE_CODE = "phoneNumberNotUnique"


class Purpose(StrEnum):
    """Why a user's phones are read back."""

    UNKNOWN = "unknown"  # the write's outcome is unknown (reset, timeout, 5xx)
    RESUMED = "resumed"  # found in flight (or unconfirmed) when the run started
    CONFLICT = "conflict"  # 409 phoneNumberNotUnique on a mobile write
    EXISTS = "exists"  # 400 "already exists" on a create
    VERIFY = "verify"  # --verify after the user's last change


# -- write answers ------------------------------------------------------------------------
class WriteAnswer(StrEnum):
    """The answer classes of a write (see the module docstring)."""

    OK = "ok"  # 2xx
    NOT_SENT = "not_sent"  # 429, 503, or a transport failure before anything left
    OUTCOME_UNKNOWN = "outcome_unknown"  # reset or timeout after sending, 500, 502, 504
    MOBILE_NOT_UNIQUE = "mobile_not_unique"  # 409 phoneNumberNotUnique answering a write to the mobile
    NOT_UNIQUE = "not_unique"  # 409 phoneNumberNotUnique on any other phone type
    ALREADY_EXISTS = "already_exists"  # 400 saying the phone already exists
    NEEDS_MOBILE = "needs_mobile"  # 400 on an alternateMobile whose message names the mobile
    NOT_FOUND = "not_found"  # 404 itemNotFound
    REFUSED = "refused"  # any other error


def classify_write_answer(error: GraphError | None, phone_type: PhoneType) -> WriteAnswer:
    """The class of a write's answer (``error`` None: it succeeded) to a ``phone_type`` change."""
    if error is None:
        return WriteAnswer.OK
    retry_class = classify(error)
    if retry_class is RetryClass.NOT_SENT:
        return WriteAnswer.NOT_SENT
    if retry_class is RetryClass.OUTCOME_UNKNOWN:
        return WriteAnswer.OUTCOME_UNKNOWN
    status = error.status
    if status == 409 and error.code == _NOT_UNIQUE_CODE:
        return WriteAnswer.MOBILE_NOT_UNIQUE if phone_type is PhoneType.MOBILE else WriteAnswer.NOT_UNIQUE
    if status == 400:
        message = (error.message or "").lower()
        if "already exist" in message:
            return WriteAnswer.ALREADY_EXISTS
        if phone_type is PhoneType.ALTERNATE_MOBILE and "mobile" in message:
            return WriteAnswer.NEEDS_MOBILE
    if status == 404 and error.code == "itemNotFound":
        return WriteAnswer.NOT_FOUND
    return WriteAnswer.REFUSED


class WriteAction(StrEnum):
    """What the executor does with a write's answer."""

    DONE = "done"  # journal it done (with what the answer said), then the user's next change
    RESEND = "resend"  # back to pending, sent again after the retry policy's wait; past its caps: failed
    READ_BACK = "read_back"  # keep it in flight, read the user's phones back after settle_s
    RESEND_AFTER_LAG = "resend_after_lag"  # pending again after a doubling wait, a bounded number of times; then failed
    FAIL = "fail"  # failed; the user's later changes are skipped
    FAIL_NOT_UNIQUE = "fail_not_unique"  # failed, with the SMS state phoneNumberNotUnique


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
_FAIL = WriteRule(WriteAction.FAIL)
_FAIL_NOT_UNIQUE = WriteRule(WriteAction.FAIL_NOT_UNIQUE)
_READ_BACK_UNKNOWN = WriteRule(WriteAction.READ_BACK, Purpose.UNKNOWN)
_READ_BACK_CONFLICT = WriteRule(WriteAction.READ_BACK, Purpose.CONFLICT)
_READ_BACK_EXISTS = WriteRule(WriteAction.READ_BACK, Purpose.EXISTS)
_RESEND_AFTER_LAG = WriteRule(WriteAction.RESEND_AFTER_LAG)

_CREATE, _UPDATE, _DELETE = ChangeKind.CREATE, ChangeKind.UPDATE, ChangeKind.DELETE

# Every (kind, answer) pair; anything not listed below is FAIL.
#
#                       create              update              delete  enable_sms/disable_sms
#   OK                  done                done                done    done
#   NOT_SENT            resend              resend              resend  resend
#   OUTCOME_UNKNOWN     read back unknown   read back unknown   read back unknown (every kind)
#   MOBILE_NOT_UNIQUE   read back conflict  read back conflict  fail, SMS state phoneNumberNotUnique
#   NOT_UNIQUE          fail, SMS state phoneNumberNotUnique (every kind)
#   ALREADY_EXISTS      read back exists    fail                fail    fail
#   NEEDS_MOBILE        resend after lag    fail                fail    fail
#   NOT_FOUND           fail                fail                done    fail
#   REFUSED             fail (every kind)
_LISTED_WRITE_RULES: dict[tuple[ChangeKind, WriteAnswer], WriteRule] = {
    **{(kind, WriteAnswer.OK): _DONE for kind in ChangeKind},
    **{(kind, WriteAnswer.NOT_SENT): _RESEND for kind in ChangeKind},
    **{(kind, WriteAnswer.OUTCOME_UNKNOWN): _READ_BACK_UNKNOWN for kind in ChangeKind},
    **{(kind, WriteAnswer.MOBILE_NOT_UNIQUE): _FAIL_NOT_UNIQUE for kind in ChangeKind},
    **{(kind, WriteAnswer.NOT_UNIQUE): _FAIL_NOT_UNIQUE for kind in ChangeKind},
    (_CREATE, WriteAnswer.MOBILE_NOT_UNIQUE): _READ_BACK_CONFLICT,
    (_UPDATE, WriteAnswer.MOBILE_NOT_UNIQUE): _READ_BACK_CONFLICT,
    (_CREATE, WriteAnswer.ALREADY_EXISTS): _READ_BACK_EXISTS,
    (_CREATE, WriteAnswer.NEEDS_MOBILE): _RESEND_AFTER_LAG,
    (_DELETE, WriteAnswer.NOT_FOUND): _DONE,
}
WRITE_RULES: Mapping[tuple[ChangeKind, WriteAnswer], WriteRule] = {
    (kind, answer): _LISTED_WRITE_RULES.get((kind, answer), _FAIL) for kind in ChangeKind for answer in WriteAnswer
}


# -- read-back answers --------------------------------------------------------------------
class ReadBack(StrEnum):
    """The answer classes of a read-back (see the module docstring)."""

    HOLDS = "holds"  # the phones read show the change's after-state
    MISSING = "missing"  # they do not
    READ = "read"  # phones read for --verify (checked against every applied change)
    USER_GONE = "user_gone"  # 404
    UNREADABLE = "unreadable"  # any other failure


def classify_read_back(error: GraphError | None, phones: Phones | None, change: JournalChange | None) -> ReadBack:
    """The class of a read-back's answer: ``error``, else the ``phones`` read, checked
    against ``change`` (None: a ``--verify`` read)."""
    if error is not None:
        return ReadBack.USER_GONE if error.status == 404 else ReadBack.UNREADABLE
    if change is None or phones is None:
        return ReadBack.READ
    return ReadBack.HOLDS if change_holds(change, phones) else ReadBack.MISSING


class ReadAction(StrEnum):
    """What the executor does with a read-back's answer."""

    CONFIRM = "confirm"  # done and verified; a 409's status, code and the SMS state read are kept
    RESEND = "resend"  # the write did not land: sent again under the retry policy (failed past it)
    READ_AGAIN = "read_again"  # read again after a doubling wait, up to exists_reads reads; then failed
    FAIL = "fail"  # failed with the write's answer and the SMS state read
    FAIL_GONE = "fail_gone"  # failed with the read's 404
    RETRY_READ = "retry_read"  # read again under the retry policy; past it: a failed check / unresolved
    RECORD = "record"  # --verify: record whether the user's applied changes hold


_WRITE_PURPOSES = (Purpose.UNKNOWN, Purpose.RESUMED, Purpose.CONFLICT, Purpose.EXISTS)

# Only the pairs that can occur: a write's read-back is checked against its change, a
# --verify read against the user's applied changes.
#
#                    UNKNOWN / RESUMED   CONFLICT     EXISTS       VERIFY
#   HOLDS            confirm             confirm      confirm      -
#   MISSING          resend              fail         read again   -
#   READ             -                   -            -            record
#   USER_GONE        fail (the 404)      fail (404)   fail (404)   retry read
#   UNREADABLE       retry read          retry read   retry read   retry read
READ_BACK_RULES: Mapping[tuple[Purpose, ReadBack], ReadAction] = {
    **{(purpose, ReadBack.HOLDS): ReadAction.CONFIRM for purpose in _WRITE_PURPOSES},
    (Purpose.UNKNOWN, ReadBack.MISSING): ReadAction.RESEND,
    (Purpose.RESUMED, ReadBack.MISSING): ReadAction.RESEND,
    (Purpose.CONFLICT, ReadBack.MISSING): ReadAction.FAIL,
    (Purpose.EXISTS, ReadBack.MISSING): ReadAction.READ_AGAIN,
    **{(purpose, ReadBack.USER_GONE): ReadAction.FAIL_GONE for purpose in _WRITE_PURPOSES},
    **{(purpose, ReadBack.UNREADABLE): ReadAction.RETRY_READ for purpose in Purpose},
    (Purpose.VERIFY, ReadBack.USER_GONE): ReadAction.RETRY_READ,
    (Purpose.VERIFY, ReadBack.READ): ReadAction.RECORD,
}
