"""The answer rules as tables: every answer lands in one class, every class has an action."""

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
from provision.model import ChangeKind, CurrentPhone, PhoneType

MOBILE, ALT, OFFICE = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE


@pytest.mark.parametrize(
    ("error", "phone_type", "answer"),
    [
        (None, MOBILE, WriteAnswer.OK),
        (GraphError(429, "TooManyRequests", "slow down"), MOBILE, WriteAnswer.NOT_SENT),
        (GraphError(503, "serviceUnavailable", "busy"), OFFICE, WriteAnswer.NOT_SENT),
        (TransportFailure("ConnectError", outcome_unknown=False), MOBILE, WriteAnswer.NOT_SENT),
        (TransportFailure("ReadError", outcome_unknown=True), MOBILE, WriteAnswer.OUTCOME_UNKNOWN),
        (GraphError(504, "GatewayTimeout", "m"), MOBILE, WriteAnswer.OUTCOME_UNKNOWN),
        (GraphError(500, "generalException", "m"), MOBILE, WriteAnswer.OUTCOME_UNKNOWN),
        (GraphError(409, "phoneNumberNotUnique", "m"), MOBILE, WriteAnswer.MOBILE_NOT_UNIQUE),
        (GraphError(409, "phoneNumberNotUnique", "m"), OFFICE, WriteAnswer.NOT_UNIQUE),
        (GraphError(409, "conflict", "m"), MOBILE, WriteAnswer.REFUSED),
        (GraphError(400, "badRequest", "Phone method Already Exists."), ALT, WriteAnswer.ALREADY_EXISTS),
        (GraphError(400, "badRequest", "a mobile phone is required first"), ALT, WriteAnswer.NEEDS_MOBILE),
        (GraphError(400, "badRequest", "a mobile phone is required first"), OFFICE, WriteAnswer.REFUSED),
        (GraphError(404, "itemNotFound", "m"), OFFICE, WriteAnswer.NOT_FOUND),
        (GraphError(404, "Request_ResourceNotFound", "m"), OFFICE, WriteAnswer.REFUSED),
        (AuthError(403, "accessDenied", "m"), MOBILE, WriteAnswer.REFUSED),
    ],
)
def test_each_write_answer_has_one_class(error: GraphError | None, phone_type: PhoneType, answer: WriteAnswer) -> None:
    assert classify_write_answer(error, phone_type) is answer


def test_the_write_table_covers_every_kind_and_answer() -> None:
    assert set(WRITE_RULES) == {(kind, answer) for kind in ChangeKind for answer in WriteAnswer}
    read_back = {k: r.purpose for k, r in WRITE_RULES.items() if r.action is WriteAction.READ_BACK}
    assert read_back == {
        **{(kind, WriteAnswer.OUTCOME_UNKNOWN): Purpose.UNKNOWN for kind in ChangeKind},
        (ChangeKind.CREATE, WriteAnswer.MOBILE_NOT_UNIQUE): Purpose.CONFLICT,
        (ChangeKind.UPDATE, WriteAnswer.MOBILE_NOT_UNIQUE): Purpose.CONFLICT,
        (ChangeKind.CREATE, WriteAnswer.ALREADY_EXISTS): Purpose.EXISTS,
    }
    assert WRITE_RULES[ChangeKind.ENABLE_SMS, WriteAnswer.MOBILE_NOT_UNIQUE].action is WriteAction.FAIL_NOT_UNIQUE
    assert WRITE_RULES[ChangeKind.DELETE, WriteAnswer.NOT_FOUND].action is WriteAction.DONE
    assert WRITE_RULES[ChangeKind.UPDATE, WriteAnswer.NOT_FOUND].action is WriteAction.FAIL
    assert WRITE_RULES[ChangeKind.CREATE, WriteAnswer.NEEDS_MOBILE].action is WriteAction.RESEND_AFTER_LAG
    with pytest.raises(ValueError):
        WriteRule(WriteAction.READ_BACK)


def test_read_backs_are_classified_against_the_change_and_every_class_has_an_action() -> None:
    change = JournalChange("a#1", "a", "a", ChangeKind.CREATE, MOBILE, None, "+1 2065550100", None)
    held = {MOBILE: CurrentPhone(MOBILE, "+1 2065550100")}
    assert classify_read_back(None, held, change) is ReadBack.HOLDS
    assert classify_read_back(None, {}, change) is ReadBack.MISSING
    assert classify_read_back(None, held, None) is ReadBack.READ
    assert classify_read_back(GraphError(404, "Request_ResourceNotFound", "m"), {}, change) is ReadBack.USER_GONE
    assert classify_read_back(GraphError(503, "x", "m"), {}, change) is ReadBack.UNREADABLE
    for purpose in Purpose:
        classes = {ReadBack.READ} if purpose is Purpose.VERIFY else {ReadBack.HOLDS, ReadBack.MISSING}
        for read_back in classes | {ReadBack.USER_GONE, ReadBack.UNREADABLE}:
            assert (purpose, read_back) in READ_BACK_RULES
    assert READ_BACK_RULES[Purpose.EXISTS, ReadBack.MISSING] is ReadAction.READ_AGAIN
    assert READ_BACK_RULES[Purpose.VERIFY, ReadBack.USER_GONE] is ReadAction.RETRY_READ
