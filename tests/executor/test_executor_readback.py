"""The read-back judgements: does the tenant, as read, show a change's after-state?"""

from __future__ import annotations

from provision.executor.journal import JournalChange
from provision.executor.readback import change_holds, same_number, verify_user
from provision.model import CurrentPhone, PhoneType, SmsSignInState

M, A, O = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE
READY, NOT_ENABLED = SmsSignInState.READY, SmsSignInState.NOT_ENABLED


def ch(kind: str, phone_type: PhoneType = M, after: str | None = "+1 2065550100") -> JournalChange:
    return JournalChange("u#1", "u", "u", kind, phone_type, None, after, None)


def phones(**by_type: tuple[str, SmsSignInState | None]) -> dict[PhoneType, CurrentPhone]:
    names = {"mobile": M, "alternate": A, "office": O}
    return {names[k]: CurrentPhone(names[k], n, s) for k, (n, s) in by_type.items()}


def test_numbers_compare_by_digits_and_extension() -> None:
    assert same_number("+1 2065550100", "+12065550100")
    assert not same_number("+1 2065550100", "+1 2065550101")
    assert not same_number("+1 2065550100x12", "+1 2065550100")
    # A masked read never confirms a write, even when its visible digits agree.
    assert not same_number("+1 XXXXXXXX00", "+1 2065550100")
    assert not same_number("+1 *******100", "+1 2065550100")
    assert not same_number("+1 XXXXXXXX99", "+1 2065550100")


def test_create_and_update_hold_when_the_number_is_there() -> None:
    assert change_holds(ch("create"), phones(mobile=("+1 2065550100", READY)))
    assert not change_holds(ch("create"), phones(office=("+1 2065550100", None)))
    assert not change_holds(ch("update", O), phones(office=("+1 4255550100", None)))


def test_delete_holds_when_the_type_is_gone() -> None:
    assert change_holds(ch("delete", O, None), phones(mobile=("+1 2065550100", READY)))
    assert not change_holds(ch("delete", O, None), phones(office=("+1 4255550100", None)))


def test_sms_changes_hold_by_the_mobiles_state() -> None:
    assert change_holds(ch("enable_sms", M, "ready"), phones(mobile=("+1 2065550100", READY)))
    assert not change_holds(ch("enable_sms", M, "ready"), phones(mobile=("+1 2065550100", NOT_ENABLED)))
    assert change_holds(ch("disable_sms", M, "notEnabled"), phones(mobile=("+1 2065550100", NOT_ENABLED)))
    assert change_holds(ch("disable_sms", M, "notEnabled"), {})
    assert not change_holds(ch("disable_sms", M, "notEnabled"), phones(mobile=("+1 2065550100", READY)))


def test_verify_user_names_the_types_that_differ_never_numbers() -> None:
    done = [ch("create", M), ch("create", O, "+1 4255550100"), ch("enable_sms", M, "ready")]
    ok = verify_user(done, phones(mobile=("+1 2065550100", READY), office=("+1 4255550100", None)))
    assert ok.ok and ok.mismatches == () and ok.sms_state == "ready"
    bad = verify_user(done, phones(mobile=("+1 2065550199", NOT_ENABLED)))
    assert not bad.ok and bad.mismatches == ("mobile", "office", "sms")
    moved = verify_user([ch("create", M), ch("delete", O, None)], phones(mobile=("+1 2065550100", READY)))
    assert moved.ok


def test_a_masked_read_back_never_verifies_a_write() -> None:
    done = [ch("create")]
    assert not verify_user(done, phones(mobile=("+1 XXXXXXXX00", READY))).ok
    assert not change_holds(ch("create"), phones(mobile=("+1 *******100", READY)))
