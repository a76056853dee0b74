"""The answer rules as tables: every answer lands in one class, every class has an action.

Write answers are classified by status alone (never by an error message's wording, nor
by an error code); refused writes are judged by reading the user back, and the read-back
classes come from the phones read.
"""

from __future__ import annotations

import pytest

from provision.errors import AuthError, GraphError
from provision.executor.answers import (
    READ_BACK_RULES,
    WRITE_RULES,
    Purpose,
    ReadAction,
    ReadBack,
    WriteAction,
    WriteAnswer,
    WriteRule,
    classify_read_back,
    classify_write_answer,
)
from provision.executor.journal import JournalChange
from provision.graph.errors import TransportFailure
from provision.graph.retry import BatchEnvelopeError
from provision.model import ChangeKind, CurrentPhone, PhoneType

MOBILE, ALT, OFFICE = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (None, WriteAnswer.OK),
        (GraphError(429, "TooManyRequests", "slow down"), WriteAnswer.NOT_SENT),
        (GraphError(503, "serviceUnavailable", "busy"), WriteAnswer.NOT_SENT),
        (TransportFailure("ConnectError", outcome_unknown=False), WriteAnswer.UNREACHED),
        (TransportFailure("ReadError", outcome_unknown=True), WriteAnswer.OUTCOME_UNKNOWN),
        (GraphError(504, "GatewayTimeout", "m"), WriteAnswer.OUTCOME_UNKNOWN),
        (GraphError(500, "generalException", "m"), WriteAnswer.OUTCOME_UNKNOWN),
        (BatchEnvelopeError(503, "serviceUnavailable", "m"), WriteAnswer.OUTCOME_UNKNOWN),
        (BatchEnvelopeError(502, "BadGateway", "m"), WriteAnswer.OUTCOME_UNKNOWN),
        (GraphError(409, "phoneNumberNotUnique", "m"), WriteAnswer.RULE_REFUSED),
        (GraphError(409, "conflict", "m"), WriteAnswer.RULE_REFUSED),
        (GraphError(400, "badRequest", "Phone method Already Exists."), WriteAnswer.RULE_REFUSED),
        (GraphError(400, "badRequest", "a mobile phone is required first"), WriteAnswer.RULE_REFUSED),
        (GraphError(400, None, "anything at all"), WriteAnswer.RULE_REFUSED),
        (GraphError(404, "itemNotFound", "m"), WriteAnswer.NOT_FOUND),
        (GraphError(404, "Request_ResourceNotFound", "m"), WriteAnswer.NOT_FOUND),
        (AuthError(403, "accessDenied", "m"), WriteAnswer.DENIED),
        (AuthError(401, "InvalidAuthenticationToken", "m"), WriteAnswer.DENIED),
        (GraphError(412, "preconditionFailed", "m"), WriteAnswer.REFUSED),
    ],
)
def test_each_write_answer_has_one_class_by_status(error: GraphError | None, answer: WriteAnswer) -> None:
    assert classify_write_answer(error) is answer


def test_no_write_answer_depends_on_the_message_or_the_code() -> None:
    for status in (400, 404, 409, 412, 500, 503):
        classes = {
            classify_write_answer(GraphError(status, code, message))
            for code in ("phoneNumberNotUnique", "badRequest", "itemNotFound", None)
            for message in ("already exists", "needs a mobile phone first", "")
        }
        assert len(classes) == 1, (status, classes)


def test_the_write_table_covers_every_kind_and_answer() -> None:
    assert set(WRITE_RULES) == {(kind, answer) for kind in ChangeKind for answer in WriteAnswer}
    read_back = {k: r.purpose for k, r in WRITE_RULES.items() if r.action is WriteAction.READ_BACK}
    assert read_back == {
        **{(kind, WriteAnswer.OUTCOME_UNKNOWN): Purpose.UNKNOWN for kind in ChangeKind},
        **{(kind, WriteAnswer.RULE_REFUSED): Purpose.REFUSED for kind in ChangeKind},
        (ChangeKind.DELETE, WriteAnswer.NOT_FOUND): Purpose.GONE,
    }
    for kind in ChangeKind:
        assert WRITE_RULES[kind, WriteAnswer.UNREACHED].action is WriteAction.RESEND_UNREACHED
        assert WRITE_RULES[kind, WriteAnswer.DENIED].action is WriteAction.HOLD
        assert WRITE_RULES[kind, WriteAnswer.REFUSED].action is WriteAction.FAIL
    assert WRITE_RULES[ChangeKind.UPDATE, WriteAnswer.NOT_FOUND].action is WriteAction.FAIL
    with pytest.raises(ValueError):
        WriteRule(WriteAction.READ_BACK)


def _change(kind: str, phone_type: PhoneType, after: str | None) -> JournalChange:
    return JournalChange("a#1", "a", "a", kind, phone_type, None, after, None)


def test_read_backs_are_classified_from_the_phones_read() -> None:
    create = _change("create", MOBILE, "+1 2065550100")
    held = {MOBILE: CurrentPhone(MOBILE, "+1 2065550100")}
    other = {MOBILE: CurrentPhone(MOBILE, "+1 2065550199")}
    assert classify_read_back(None, held, create) is ReadBack.HOLDS
    assert classify_read_back(None, {}, create) is ReadBack.ABSENT  # a read may lag behind a write
    assert classify_read_back(None, other, create) is ReadBack.DIFFERS
    assert classify_read_back(None, held, None) is ReadBack.READ
    assert classify_read_back(GraphError(404, "Request_ResourceNotFound", "m"), {}, create) is ReadBack.USER_GONE
    assert classify_read_back(GraphError(503, "x", "m"), {}, create) is ReadBack.UNREADABLE
    delete = _change("delete", OFFICE, None)
    assert classify_read_back(None, {}, delete) is ReadBack.HOLDS
    assert classify_read_back(None, {OFFICE: CurrentPhone(OFFICE, "+1 4255550100")}, delete) is ReadBack.DIFFERS


def test_an_alternate_mobile_waits_for_its_mobile_only_when_the_state_says_so() -> None:
    alt = _change("create", ALT, "+1 3605550100")
    mobile = {MOBILE: CurrentPhone(MOBILE, "+1 2065550100")}
    assert classify_read_back(None, {}, alt) is ReadBack.NEEDS_MOBILE  # no mobile visible yet
    assert classify_read_back(None, mobile, alt, mobile_written=True) is ReadBack.NEEDS_MOBILE  # just created
    assert classify_read_back(None, mobile, alt) is ReadBack.ABSENT  # an old mobile: not the lag
    taken = {**mobile, ALT: CurrentPhone(ALT, "+1 3605550199")}
    assert classify_read_back(None, taken, alt) is ReadBack.DIFFERS


def test_every_read_back_class_has_an_action() -> None:
    for purpose in Purpose:
        if purpose is Purpose.VERIFY:
            classes = {ReadBack.READ}
        else:
            classes = {ReadBack.HOLDS, ReadBack.NEEDS_MOBILE, ReadBack.ABSENT, ReadBack.DIFFERS}
        for read_back in classes | {ReadBack.USER_GONE, ReadBack.UNREADABLE}:
            assert (purpose, read_back) in READ_BACK_RULES
    assert READ_BACK_RULES[Purpose.REFUSED, ReadBack.HOLDS] is ReadAction.CONFIRM
    assert READ_BACK_RULES[Purpose.REFUSED, ReadBack.NEEDS_MOBILE] is ReadAction.RESEND_AFTER_LAG
    assert READ_BACK_RULES[Purpose.REFUSED, ReadBack.ABSENT] is ReadAction.READ_AGAIN
    assert READ_BACK_RULES[Purpose.REFUSED, ReadBack.DIFFERS] is ReadAction.FAIL
    assert READ_BACK_RULES[Purpose.GONE, ReadBack.HOLDS] is ReadAction.CONFIRM
    assert READ_BACK_RULES[Purpose.UNKNOWN, ReadBack.ABSENT] is ReadAction.RESEND
    assert READ_BACK_RULES[Purpose.VERIFY, ReadBack.USER_GONE] is ReadAction.RETRY_READ
