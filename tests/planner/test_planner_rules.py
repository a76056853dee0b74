"""Planner unit tests: modes, Graph ordering rules, unreadable users, SMS sign-in, safety."""

from __future__ import annotations

import re

import pytest
from support.builders import USER_ID as UID
from support.builders import A, M, O, current, desired, one

from provision.errors import SafetyError
from provision.model import (
    UNREADABLE_SMS_POLICY,
    ChangeKind,
    PlanMode,
    ReadStatus,
    SmsIntent,
    SmsPolicy,
    SmsSignInState,
    UserDecision,
)
from provision.planner import (
    PlanPolicy,
    ReasonCode,
    check_safety,
    plan,
    summarize,
    users_by_outcome,
)
from provision.planner.safety import RosterSize, roster_thresholds, with_roster_thresholds

ALLOW_ALL = SmsPolicy(readable=True, enabled=True, include_all_users=True)
DENY_ALL = SmsPolicy(readable=True, enabled=False)
ADDITIVE = PlanPolicy(PlanMode.ADDITIVE)
FILL = PlanPolicy(PlanMode.FILL_EMPTY)
AUTH = PlanPolicy(PlanMode.AUTHORITATIVE)


def steps(d, c, policy=ADDITIVE, sms_policy=UNREADABLE_SMS_POLICY):
    """(kind, type, before, after) of the single user's plan, plus that user plan."""
    p = plan(*one(d, c), sms_policy, policy)
    assert len(p.users) == 1
    up = p.users[0]
    return [(ch.kind, ch.phone_type, ch.before, ch.after) for ch in up.changes], up


# -- modes -------------------------------------------------------------------------------
def test_additive_creates_missing_updates_differing_and_never_deletes():
    s, up = steps(
        desired(mobile="+1 2065550100", alternate="+1 2065550101", office=None),
        current(mobile="+1 2065550199", office="+44 2071234567"),
    )
    assert s == [
        (ChangeKind.UPDATE, M, "+1 2065550199", "+1 2065550100"),
        (ChangeKind.CREATE, A, None, "+1 2065550101"),
    ]
    assert up.outcome is UserDecision.CHANGE and up.reason is None


def test_same_number_in_older_format_is_no_change():
    s, up = steps(desired(mobile="+1 2065550100x12", office="+44 2071234567"), current(mobile="+12065550100X12", office="+44 20 7123 4567"))
    assert s == [] and up.outcome is UserDecision.NOOP


def test_type_not_in_roster_is_left_alone_even_in_authoritative():
    s, _ = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550100", office="+44 2071234567"), AUTH)
    assert s == []


def test_fill_empty_only_creates_where_empty():
    s, _ = steps(
        desired(mobile="+1 2065550100", office="+44 2071234567", alternate=None),
        current(mobile="+1 2065550199", alternate="+1 2065550111"),
        FILL,
    )
    assert s == [(ChangeKind.CREATE, O, None, "+44 2071234567")]


def test_authoritative_blank_deletes_and_differing_updates():
    s, _ = steps(desired(mobile="+1 2065550100", office=None), current(mobile="+1 2065550199", office="+44 2071234567"), AUTH)
    assert s == [
        (ChangeKind.UPDATE, M, "+1 2065550199", "+1 2065550100"),
        (ChangeKind.DELETE, O, "+44 2071234567", None),
    ]


# -- ordering rules ----------------------------------------------------------------------
def test_number_moving_between_types_is_create_new_then_delete_old():
    s, up = steps(desired(mobile="+44 2071234567", office=None), current(office="+44 2071234567"), AUTH)
    assert s == [
        (ChangeKind.CREATE, M, None, "+44 2071234567"),
        (ChangeKind.DELETE, O, "+44 2071234567", None),
    ]
    first, second = up.changes
    assert (first.id, second.id) == ("ann@contoso.com#1", "ann@contoso.com#2")
    assert first.depends_on is None and second.depends_on == first.id


def test_new_mobile_is_created_before_new_alternate():
    s, up = steps(desired(alternate="+1 2065550101", mobile="+1 2065550100"), current())
    assert [(k, t) for k, t, *_ in s] == [(ChangeKind.CREATE, M), (ChangeKind.CREATE, A)]
    assert up.changes[1].depends_on == up.changes[0].id


def test_deleting_mobile_and_alternate_deletes_alternate_first():
    s, _ = steps(desired(mobile=None, alternate=None), current(mobile="+1 2065550100", alternate="+1 2065550101"), AUTH)
    assert [(k, t) for k, t, *_ in s] == [(ChangeKind.DELETE, A), (ChangeKind.DELETE, M)]


def test_blank_mobile_with_kept_alternate_is_an_error_and_plans_the_rest():
    s, up = steps(
        desired(mobile=None, alternate="+1 2065550102", office=None),
        current(mobile="+1 2065550100", alternate="+1 2065550101", office="+44 2071234567"),
        AUTH,
    )
    assert s == [
        (ChangeKind.UPDATE, A, "+1 2065550101", "+1 2065550102"),
        (ChangeKind.DELETE, O, "+44 2071234567", None),
    ]
    assert up.outcome is UserDecision.ERROR and up.codes == (ReasonCode.MOBILE_DELETE_BLOCKED,)


def test_blank_mobile_with_unmanaged_alternate_is_kept():
    s, up = steps(desired(mobile=None), current(mobile="+1 2065550100", alternate="+1 2065550101"), AUTH)
    assert s == [] and up.outcome is UserDecision.ERROR and up.codes == (ReasonCode.MOBILE_DELETE_BLOCKED,)


def test_alternate_without_any_mobile_is_an_error_not_a_rule_breaking_create():
    s, up = steps(desired(alternate="+1 2065550101", office="+44 2071234567"), current())
    assert s == [(ChangeKind.CREATE, O, None, "+44 2071234567")]
    assert up.outcome is UserDecision.ERROR and up.codes == (ReasonCode.ALTERNATE_REQUIRES_MOBILE,)
    assert "alternate_requires_mobile" in up.reason


def test_alternate_with_blank_mobile_cell_and_no_current_mobile_is_an_error():
    s, up = steps(desired(mobile=None, alternate="+1 2065550101"), current(), AUTH)
    assert s == [] and up.codes == (ReasonCode.ALTERNATE_REQUIRES_MOBILE,)


def test_changes_never_change_a_type_and_target_is_object_id_else_upn():
    _, up = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550199"))
    assert up.changes[0].target == UID and up.changes[0].rows == (2,)
    _, up = steps(desired(mobile="+1 2065550100"), current(id=None))
    assert up.changes[0].target == "ann@contoso.com"


# -- users that can't be planned ---------------------------------------------------------
@pytest.mark.parametrize(
    "c, outcome, code",
    [
        (current(status=ReadStatus.NOT_FOUND, id=None), UserDecision.ERROR, ReasonCode.USER_NOT_FOUND),
        (current(status=ReadStatus.FAILED, mobile="+1 2065550100"), UserDecision.ERROR, ReasonCode.READ_FAILED),
        (current(masked=True, mobile="+1 *******100"), UserDecision.SKIP, ReasonCode.NUMBERS_MASKED),
        (current(mobile="+1 *******100"), UserDecision.SKIP, ReasonCode.NUMBERS_MASKED),
        (None, UserDecision.ERROR, ReasonCode.NOT_READ),
    ],
)
def test_unplannable_users_get_one_user_plan_and_no_changes(c, outcome, code):
    d = desired(mobile=None, office=None, sms=True)
    s, up = steps(d, c, AUTH, ALLOW_ALL)
    assert s == [] and up.outcome is outcome and up.codes == (code,)
    assert up.key == d.key and up.rows == (2,)


def test_every_desired_user_gets_exactly_one_user_plan_in_roster_order():
    ds = {k: desired(k, mobile="+1 20655501%02d" % i) for i, k in enumerate(["c@x", "a@x", "b@x"])}
    cs = {"a@x": current("a@x"), "c@x": current("c@x", status=ReadStatus.NOT_FOUND), "zz@x": current("zz@x")}
    p = plan(ds, cs, UNREADABLE_SMS_POLICY, ADDITIVE)
    assert [u.key for u in p.users] == ["c@x", "a@x", "b@x"]
    assert [u.outcome for u in p.users] == [UserDecision.ERROR, UserDecision.CHANGE, UserDecision.ERROR]
    assert [u.key for u in users_by_outcome(p, "error")] == ["c@x", "b@x"]


# -- SMS sign-in -------------------------------------------------------------------------
ENABLE = PlanPolicy(PlanMode.ADDITIVE, SmsIntent.ENABLE)
DISABLE = PlanPolicy(PlanMode.ADDITIVE, SmsIntent.DISABLE)


def test_enable_on_unchanged_mobile_not_ready():
    s, _ = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550100"), ENABLE, ALLOW_ALL)
    assert s == [(ChangeKind.ENABLE_SMS, M, "notEnabled", "ready")]


def test_enable_when_ready_is_nothing():
    s, up = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550100", sms=SmsSignInState.READY), ENABLE, ALLOW_ALL)
    assert s == [] and up.outcome is UserDecision.NOOP


def test_enable_refused_by_policy_is_a_warning_without_change():
    s, up = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550100"), ENABLE, DENY_ALL)
    assert s == [] and up.outcome is UserDecision.NOOP and up.codes == (ReasonCode.SMS_NOT_ALLOWED,)
    assert "sms_not_allowed_by_policy" in up.reason


def test_enable_with_mobile_write_and_policy_allowing_relies_on_auto_registration():
    s, _ = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550199"), ENABLE, ALLOW_ALL)
    assert [k for k, *_ in s] == [ChangeKind.UPDATE]


def test_enable_with_mobile_write_and_unknown_policy_enables_after_the_write():
    s, up = steps(desired(mobile="+1 2065550100", office="+44 2071234567"), current(), ENABLE, UNREADABLE_SMS_POLICY)
    assert [(k, t) for k, t, *_ in s] == [(ChangeKind.CREATE, M), (ChangeKind.CREATE, O), (ChangeKind.ENABLE_SMS, M)]
    assert up.changes[2].depends_on == up.changes[1].id and up.changes[2].before is None


def test_unknown_policy_but_mobile_reads_not_allowed_is_a_warning():
    c = current(mobile="+1 2065550100", sms=SmsSignInState.NOT_ALLOWED_BY_POLICY)
    s, up = steps(desired(mobile="+1 2065550100"), c, ENABLE, UNREADABLE_SMS_POLICY)
    assert s == [] and up.codes == (ReasonCode.SMS_NOT_ALLOWED,)


def test_policy_per_user_targets_decide_eligibility():
    only_other = SmsPolicy(readable=True, enabled=True, include_ids=frozenset({"someone-else"}))
    s, up = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550100"), ENABLE, only_other)
    assert s == [] and up.codes == (ReasonCode.SMS_NOT_ALLOWED,)
    mine = SmsPolicy(readable=True, enabled=True, include_ids=frozenset({UID}))
    s, _ = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550100"), ENABLE, mine)
    assert [k for k, *_ in s] == [ChangeKind.ENABLE_SMS]


def test_row_override_beats_job_default():
    c = current(mobile="+1 2065550100", sms=SmsSignInState.READY)
    s, _ = steps(desired(mobile="+1 2065550100", sms=False), c, ENABLE, ALLOW_ALL)
    assert s == [(ChangeKind.DISABLE_SMS, M, "ready", "notEnabled")]
    s, _ = steps(desired(mobile="+1 2065550100", sms=True), current(mobile="+1 2065550100"), PlanPolicy(sms=SmsIntent.LEAVE), ALLOW_ALL)
    assert [k for k, *_ in s] == [ChangeKind.ENABLE_SMS]


def test_leave_plans_no_sms_change():
    s, _ = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550100", sms=SmsSignInState.READY), ADDITIVE, ALLOW_ALL)
    assert s == []


def test_disable_after_a_mobile_write_that_auto_registers():
    s, _ = steps(desired(mobile="+1 2065550100"), current(), DISABLE, ALLOW_ALL)
    assert [k for k, *_ in s] == [ChangeKind.CREATE, ChangeKind.DISABLE_SMS]
    s, _ = steps(desired(mobile="+1 2065550100"), current(), DISABLE, DENY_ALL)
    assert [k for k, *_ in s] == [ChangeKind.CREATE]


def test_disable_when_not_ready_is_nothing():
    s, _ = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550100"), DISABLE, ALLOW_ALL)
    assert s == []


def test_enable_without_mobile_or_with_extension_warns():
    s, up = steps(desired(office="+44 2071234567"), current(), ENABLE, ALLOW_ALL)
    assert [k for k, *_ in s] == [ChangeKind.CREATE] and up.outcome is UserDecision.CHANGE
    assert up.codes == (ReasonCode.SMS_NEEDS_MOBILE,)
    s, up = steps(desired(mobile="+1 2065550100x5"), current(mobile="+1 2065550100x5"), ENABLE, ALLOW_ALL)
    assert s == [] and up.codes == (ReasonCode.SMS_EXTENSION,)


def test_enable_on_a_mobile_being_deleted_is_a_warning():
    s, up = steps(desired(mobile=None), current(mobile="+1 2065550100"), PlanPolicy(PlanMode.AUTHORITATIVE, SmsIntent.ENABLE), ALLOW_ALL)
    assert [k for k, *_ in s] == [ChangeKind.DELETE] and up.codes == (ReasonCode.SMS_NEEDS_MOBILE,)


# -- safety ------------------------------------------------------------------------------
def _fleet(n_users: int, n_deleted: int, n_updated: int):
    ds, cs = {}, {}
    for i in range(n_users):
        k = f"u{i}@x"
        ds[k] = desired(k, mobile="+1 20655501%02d" % i if i >= n_deleted else None, office="+44 20712345%02d" % i)
        mobile = "+1 20655501%02d" % i if i >= n_deleted + n_updated else "+1 30655501%02d" % i
        cs[k] = current(k, mobile=mobile, office="+44 20712345%02d" % i)
    return ds, cs


def test_safety_names_each_exceeded_threshold_with_limit_and_actual():
    ds, cs = _fleet(20, n_deleted=5, n_updated=4)  # 40 phones: 5 deletes = 12.5%, 4 updates = 10%
    pol = PlanPolicy(PlanMode.AUTHORITATIVE, max_changes=8, max_delete_percent=5, max_update_percent=10)
    p = plan(ds, cs, UNREADABLE_SMS_POLICY, pol)
    assert not p.safety.ok and p.safety.base_phones == 40
    assert [t.name for t in p.safety.exceeded] == ["max_changes", "max_delete_percent"]
    assert p.safety.exceeded[0].message == "changes 9 > max_changes 8"
    assert p.safety.exceeded[1].message.startswith("deletes 12.5% > max_delete_percent 5%")
    assert p.safety.exceeded[1].actual == pytest.approx(12.5)
    with pytest.raises(SafetyError) as exc:
        check_safety(p, force=False)
    assert "max_changes" in str(exc.value) and "max_delete_percent 5%" in str(exc.value)
    assert exc.value.exit_code == 3
    check_safety(p, force=True)  # forced: no refusal


def test_safety_ok_within_limits_and_base_ignores_unreadable_users():
    ds, cs = _fleet(20, n_deleted=1, n_updated=2)
    cs["u19@x"] = current("u19@x", status=ReadStatus.FAILED)
    p = plan(ds, cs, UNREADABLE_SMS_POLICY, PlanPolicy(PlanMode.AUTHORITATIVE, max_changes=3, max_delete_percent=5, max_update_percent=10))
    assert p.safety.base_phones == 38 and p.safety.ok
    check_safety(p)


def test_safety_with_no_current_phones_counts_zero_percent():
    p = plan(*one(desired(mobile="+1 2065550100"), current()), UNREADABLE_SMS_POLICY, PlanPolicy(max_delete_percent=0, max_update_percent=0))
    assert p.safety.ok and p.safety.base_phones == 0


def test_an_empty_roster_is_below_min_roster_rows_in_every_mode():
    for mode in PlanMode:
        p = with_roster_thresholds(plan({}, {}, UNREADABLE_SMS_POLICY, PlanPolicy(mode)), RosterSize(rows=0, usable=0))
        assert [t.name for t in p.safety.exceeded] == ["min_roster_rows"] and p.changes == ()
        message = p.safety.exceeded[0].message
        assert "no data rows" in message and "min_roster_rows 1" in message and "--force" in message
        with pytest.raises(SafetyError, match="no data rows") as exc:
            check_safety(p)
        assert exc.value.exit_code == 3
        check_safety(p, force=True)
    off = PlanPolicy(PlanMode.AUTHORITATIVE, min_roster_rows=None)
    assert roster_thresholds(RosterSize(rows=0, usable=0), off) == ()
    assert roster_thresholds(RosterSize(rows=4, usable=0), PlanPolicy(min_roster_rows=5))[0].message.startswith(
        "the roster has 4 data rows, fewer than min_roster_rows 5"
    )


def test_a_roster_far_smaller_than_the_previous_run_is_refused_with_its_counts():
    policy = PlanPolicy(PlanMode.AUTHORITATIVE, min_roster_percent=50)
    shrunk = RosterSize(rows=450, usable=400, previous_usable=1_000, previous_run="nightly-20240501T020000Z")
    (threshold,) = roster_thresholds(shrunk, policy)
    assert (threshold.name, threshold.limit, threshold.actual) == ("min_roster_percent", 50, pytest.approx(40.0))
    assert threshold.message.startswith(
        "the roster has 400 usable rows, 40% of the 1,000 of the previous run nightly-20240501T020000Z "
        "(same job and target), below min_roster_percent 50%"
    )
    assert "--force" in threshold.message and "[safety] min_roster_percent" in threshold.message
    # At the threshold, above it, without a previous run, or with the check off: nothing.
    assert roster_thresholds(RosterSize(500, 500, 1_000, "r"), policy) == ()
    assert roster_thresholds(RosterSize(1_200, 1_200, 1_000, "r"), policy) == ()
    assert roster_thresholds(RosterSize(10, 10), policy) == ()
    assert roster_thresholds(shrunk, PlanPolicy(PlanMode.AUTHORITATIVE)) == ()


def test_roster_thresholds_come_first_and_keep_the_plans_own():
    ds, cs = _fleet(20, n_deleted=5, n_updated=0)
    pol = PlanPolicy(PlanMode.AUTHORITATIVE, max_delete_percent=5, min_roster_percent=50)
    p = with_roster_thresholds(plan(ds, cs, UNREADABLE_SMS_POLICY, pol), RosterSize(20, 20, 100, "r"))
    assert [t.name for t in p.safety.exceeded] == ["min_roster_percent", "max_delete_percent"]
    assert p.safety.base_phones == 40
    unchanged = plan(ds, cs, UNREADABLE_SMS_POLICY, pol)
    assert with_roster_thresholds(unchanged, RosterSize(20, 20, 30, "r")) is unchanged


def test_deletes_never_appear_outside_authoritative():
    ds, cs = _fleet(10, n_deleted=3, n_updated=3)
    for mode in (PlanMode.ADDITIVE, PlanMode.FILL_EMPTY):
        p = plan(ds, cs, ALLOW_ALL, PlanPolicy(mode, SmsIntent.DISABLE))
        assert all(ch.kind is not ChangeKind.DELETE for ch in p.changes)


# -- summary and reasons -----------------------------------------------------------------
def test_summary_counts_and_top_reasons():
    ds = {
        "a@x": desired("a@x", mobile="+1 2065550100", office=None),
        "b@x": desired("b@x", alternate="+1 2065550101"),
        "c@x": desired("c@x", mobile="+1 2065550102"),
        "d@x": desired("d@x", mobile="+1 2065550103"),
    }
    cs = {
        "a@x": current("a@x", mobile="+1 2065550199", office="+44 2071234567"),
        "b@x": current("b@x"),
        "c@x": current("c@x", status=ReadStatus.NOT_FOUND),
        "d@x": current("d@x", status=ReadStatus.NOT_FOUND),
    }
    s = summarize(plan(ds, cs, UNREADABLE_SMS_POLICY, AUTH))
    assert s.total_changes == 2 and s.users == 4
    assert s.by_kind[ChangeKind.UPDATE] == 1 and s.by_kind[ChangeKind.DELETE] == 1 and s.by_kind[ChangeKind.CREATE] == 0
    assert s.by_phone_type[M][ChangeKind.UPDATE] == 1 and s.by_phone_type[O][ChangeKind.DELETE] == 1
    assert s.by_outcome[UserDecision.ERROR] == 3 and s.by_outcome[UserDecision.CHANGE] == 1
    assert s.top_errors == (("user_not_found", 2), ("alternate_requires_mobile", 1))


def test_reasons_never_contain_digits_of_numbers():
    s, up = steps(desired(mobile=None, alternate="+1 2065550102"), current(mobile="+1 2065550100", alternate="+1 2065550101"), AUTH)
    assert up.reason and not re.search(r"\d{3}", up.reason)


def test_other_spellings_compare_through_canonical_digits():
    s, _ = steps(desired(office="+1 2065550100x12"), current(office="+1 (206) 555-0100 ext. 12"))
    assert s == []
    s, _ = steps(desired(office="+1 2065550100x13"), current(office="+1 (206) 555-0100 ext. 12"))
    assert s == [(ChangeKind.UPDATE, O, "+1 (206) 555-0100 ext. 12", "+1 2065550100x13")]


def test_enable_after_a_mobile_write_that_keeps_the_handset():
    # dropping only the extension is no new SMS number: Graph won't auto-register it
    s, _ = steps(desired(mobile="+1 2065550100"), current(mobile="+1 2065550100x5"), ENABLE, ALLOW_ALL)
    assert [k for k, *_ in s] == [ChangeKind.UPDATE, ChangeKind.ENABLE_SMS]


def test_planning_leaves_the_garbage_collector_as_it_found_it():
    import gc

    assert gc.isenabled()
    plan(*one(desired(mobile="+1 2065550100"), current()), UNREADABLE_SMS_POLICY, ADDITIVE)
    assert gc.isenabled()
    gc.disable()
    try:
        plan(*one(desired(mobile="+1 2065550100"), current()), UNREADABLE_SMS_POLICY, ADDITIVE)
        assert not gc.isenabled()
    finally:
        gc.enable()
