"""Plans applied to the real sandbox tenant (in-process, pure) never break a Graph rule.

Hypothesis draws tenants whose phones obey Graph's rules, SMS policies and rosters; the
plan's changes are applied in order through ``Tenant``; a ``TenantError`` there is a rule
the planner broke. Afterwards the tenant must hold the roster's state (per mode), the
tenant's invariants must hold, and planning again from a fresh read must give no changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from provision.model import (
    METHOD_IDS,
    PHONE_TYPES,
    ChangeKind,
    CurrentPhone,
    CurrentUser,
    DesiredUser,
    PhoneType,
    PlanMode,
    ReadStatus,
    SmsIntent,
    SmsPolicy,
    SmsSignInState,
    UserDecision,
)
from provision.planner import Change, Plan, PlanPolicy, ReasonCode, plan
from provision.roster.numbers import canonical_digits
from provision.sandbox.tenant import Tenant, TenantError

M, A, O = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE


def upn(i: int) -> str:
    return f"user{i}@contoso.com"


def uid(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


def number(i: int, j: int, ext: str | None) -> str:
    # digits unique per user: no SMS sign-in conflicts between users in the main property
    return f"+1 {2065550000 + i * 10 + j}" + (f"x{ext}" if ext else "")


@dataclass(frozen=True)
class UserCase:
    exists: bool
    current: Mapping[PhoneType, str]
    sms_seed: str  # registered | disabled | none (the mobile's SMS registration before planning)
    desired: Mapping[PhoneType, str | None]
    sms_override: bool | None


def numbers(i: int) -> st.SearchStrategy[str]:
    return st.builds(number, st.just(i), st.integers(0, 3), st.sampled_from([None, None, "12"]))


@st.composite
def user_case(draw: st.DrawFn, i: int) -> UserCase:
    current: dict[PhoneType, str] = {}
    if draw(st.integers(0, 3)) > 0:
        current[M] = draw(numbers(i))
        if draw(st.booleans()):
            current[A] = draw(numbers(i))
    if draw(st.booleans()):
        current[O] = draw(numbers(i))
    desired: dict[PhoneType, str | None] = {}
    for t in PHONE_TYPES:
        choice = draw(st.sampled_from(["absent", "blank", "number", "number"]))
        if choice == "blank":
            desired[t] = None
        elif choice == "number":
            desired[t] = draw(numbers(i))
    return UserCase(
        exists=draw(st.integers(0, 9)) > 0,
        current=current,
        sms_seed=draw(st.sampled_from(["registered", "disabled", "none"])),
        desired=desired,
        sms_override=draw(st.sampled_from([None, None, True, False])),
    )


@st.composite
def scenario(draw: st.DrawFn):
    n = draw(st.integers(1, 4))
    users = [draw(user_case(i)) for i in range(n)]
    mode = draw(st.sampled_from([PlanMode.ADDITIVE, PlanMode.FILL_EMPTY, PlanMode.AUTHORITATIVE, PlanMode.AUTHORITATIVE]))
    job_sms = draw(st.sampled_from(list(SmsIntent)))
    truth = draw(st.sampled_from(["all", "disabled", "some"]))
    allowed_ids = frozenset(uid(i) for i in range(n) if truth == "all" or (truth == "some" and draw(st.booleans())))
    # An unreadable policy is only drawn where the truth allows everyone: with the policy
    # unknown, an enable after a new mobile is the planner's best guess and may be refused.
    known = truth != "all" or draw(st.booleans())
    return users, mode, job_sms, truth, allowed_ids, known


def seed_tenant(users: list[UserCase], truth: str, allowed_ids: frozenset[str]) -> Tenant:
    tenant = Tenant()
    tenant.update_sms_policy({"state": "disabled"})
    for i, u in enumerate(users):
        if not u.exists:
            continue
        tenant.create_user(upn(i), id=uid(i))
        for t in PHONE_TYPES:
            if t in u.current:
                tenant.create_phone(upn(i), u.current[t], t.value)
    tenant.update_sms_policy({"state": "enabled"})  # default targets: all users
    for i, u in enumerate(users):
        if u.exists and M in u.current:
            if u.sms_seed == "registered":
                tenant.enable_sms_sign_in(upn(i), METHOD_IDS[M])
            elif u.sms_seed == "disabled":
                tenant.disable_sms_sign_in(upn(i), METHOD_IDS[M])
    if truth == "disabled":
        tenant.update_sms_policy({"state": "disabled"})
    elif truth == "some":
        targets = [{"targetType": "user", "id": x, "isUsableForSignIn": True} for x in sorted(allowed_ids)]
        tenant.update_sms_policy({"includeTargets": targets})
    tenant.check_invariants()
    return tenant


def read_current(tenant: Tenant, keys: list[str]) -> dict[str, CurrentUser]:
    """What the Graph reader would build, from the tenant's own JSON answers."""
    out: dict[str, CurrentUser] = {}
    for key in keys:
        try:
            user_id = tenant.get_user(key)["id"]
            listed = tenant.list_phones(key)
        except TenantError as exc:
            assert exc.status == 404
            out[key] = CurrentUser(key, ReadStatus.NOT_FOUND, error_code=exc.code)
            continue
        phones = {
            PhoneType(p["phoneType"]): CurrentPhone(PhoneType(p["phoneType"]), p["phoneNumber"], SmsSignInState(p["smsSignInState"]))
            for p in listed
        }
        out[key] = CurrentUser(key, ReadStatus.OK, user_id, phones)
    return out


def apply(tenant: Tenant, changes: tuple[Change, ...]) -> None:
    for ch in changes:
        mid = METHOD_IDS[ch.phone_type]
        try:
            if ch.kind is ChangeKind.CREATE:
                tenant.create_phone(ch.target, ch.after, ch.phone_type.value)
            elif ch.kind is ChangeKind.UPDATE:
                tenant.update_phone(ch.target, mid, ch.after, ch.phone_type.value)
            elif ch.kind is ChangeKind.DELETE:
                tenant.delete_phone(ch.target, mid)
            elif ch.kind is ChangeKind.ENABLE_SMS:
                tenant.enable_sms_sign_in(ch.target, mid)
            else:
                tenant.disable_sms_sign_in(ch.target, mid)
        except TenantError as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"change {ch.id} ({ch.kind} {ch.phone_type}) broke a rule: {exc}")


def expected_phones(u: UserCase, mode: PlanMode) -> dict[PhoneType, str]:
    """The roster's state per mode, stated declaratively (the spec, not the planner's code)."""
    exp = dict(u.current)
    for t, w in u.desired.items():
        have = u.current.get(t)
        if w is None:
            if mode is PlanMode.AUTHORITATIVE:
                exp.pop(t, None)
        elif have is None or (mode is not PlanMode.FILL_EMPTY and canonical_digits(have) != canonical_digits(w)):
            exp[t] = w
    if A in exp and M not in exp:  # what Graph can't hold: keep the mobile, else drop the new alternate
        if M in u.current:
            exp[M] = u.current[M]
        elif A in u.current:
            exp[A] = u.current[A]
        else:
            del exp[A]
    return exp


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_applying_a_plan_breaks_no_rule_reaches_the_roster_state_and_replans_to_nothing(case):
    users, mode, job_sms, truth, allowed_ids, known = case
    tenant = seed_tenant(users, truth, allowed_ids)
    keys = [upn(i) for i in range(len(users))]
    desired = {
        upn(i): DesiredUser(upn(i), upn(i), u.desired, u.sms_override, (i + 2,)) for i, u in enumerate(users)
    }
    sms_policy = (
        SmsPolicy(readable=True, enabled=truth != "disabled", include_ids=allowed_ids) if known else SmsPolicy(readable=False)
    )
    policy = PlanPolicy(mode, job_sms)

    first = plan(desired, read_current(tenant, keys), sms_policy, policy)
    assert [up.key for up in first.users] == keys
    if mode is not PlanMode.AUTHORITATIVE:
        assert all(ch.kind is not ChangeKind.DELETE for ch in first.changes)
    for up in first.users:  # every chain is linked in order, and only to its own user
        assert all(ch.user == up.key for ch in up.changes)
        assert [ch.depends_on for ch in up.changes] == [None, *(ch.id for ch in up.changes)][: len(up.changes)]

    for kind in sorted({ch.kind.value for ch in first.changes}):
        event(f"plans {kind}")
    for code in sorted({c.value for up in first.users for c in up.codes}):
        event(f"reason {code}")
    apply(tenant, first.changes)
    tenant.check_invariants()

    after = read_current(tenant, keys)
    for i, u in enumerate(users):
        cu = after[upn(i)]
        if not u.exists:
            assert first.users[i].codes == (ReasonCode.USER_NOT_FOUND,) and not first.users[i].changes
            continue
        got = {t: p.number for t, p in cu.phones.items()}
        assert got == expected_phones(u, mode)
        mobile = cu.phones.get(M)
        if mobile is None or "x" in mobile.number:
            continue
        intent = job_sms if u.sms_override is None else (SmsIntent.ENABLE if u.sms_override else SmsIntent.DISABLE)
        if intent is SmsIntent.ENABLE and uid(i) in allowed_ids and truth != "disabled":
            assert mobile.sms_sign_in_state is SmsSignInState.READY
        elif intent is SmsIntent.DISABLE:
            assert mobile.sms_sign_in_state is not SmsSignInState.READY

    second = plan(desired, after, sms_policy, policy)
    assert second.changes == ()
    assert all(up.outcome is not UserDecision.CHANGE for up in second.users)


def _sms_conflict_tenant() -> Tenant:
    tenant = Tenant()
    tenant.create_user(upn(0), id=uid(0))
    tenant.create_user(upn(1), id=uid(1))
    tenant.create_phone(upn(0), "+1 2065550100", "mobile")  # registered for SMS sign-in by user0
    return tenant


def test_sms_conflict_saves_the_phone_and_the_replan_reports_it_without_retrying():
    tenant = _sms_conflict_tenant()
    desired = {upn(1): DesiredUser(upn(1), upn(1), {M: "+1 2065550100"}, True, (3,))}
    sms_policy = SmsPolicy(readable=True, enabled=True, include_all_users=True)
    policy = PlanPolicy(PlanMode.ADDITIVE, SmsIntent.ENABLE)

    first = plan(desired, read_current(tenant, [upn(1)]), sms_policy, policy)
    assert [ch.kind for ch in first.changes] == [ChangeKind.CREATE]
    with pytest.raises(TenantError) as exc:
        tenant.create_phone(first.changes[0].target, first.changes[0].after, "mobile")
    assert (exc.value.status, exc.value.code, exc.value.saved) == (409, "phoneNumberNotUnique", True)
    tenant.check_invariants()

    current = read_current(tenant, [upn(1)])
    assert current[upn(1)].phones[M].sms_sign_in_state is SmsSignInState.PHONE_NUMBER_NOT_UNIQUE
    # A re-run does not try again (it would fail the same way): the conflict is a warning.
    second = plan(desired, current, sms_policy, policy)
    assert second.changes == ()
    assert second.users[0].outcome is UserDecision.NOOP
    assert second.users[0].codes == (ReasonCode.SMS_NOT_UNIQUE,)

    # A job that opts into retries plans the enable; it fails while the number is held...
    retrying = PlanPolicy(PlanMode.ADDITIVE, SmsIntent.ENABLE, retry_sms_conflicts=True)
    third = plan(desired, current, sms_policy, retrying)
    assert [(ch.kind, ch.before) for ch in third.changes] == [(ChangeKind.ENABLE_SMS, "phoneNumberNotUnique")]
    with pytest.raises(TenantError) as exc:
        tenant.enable_sms_sign_in(third.changes[0].target, METHOD_IDS[M])
    assert (exc.value.status, exc.value.code, exc.value.saved) == (409, "phoneNumberNotUnique", False)

    # ...and once the other user lets go of the number, the same plan succeeds and settles.
    tenant.disable_sms_sign_in(upn(0), METHOD_IDS[M])
    apply(tenant, plan(desired, read_current(tenant, [upn(1)]), sms_policy, retrying).changes)
    settled = read_current(tenant, [upn(1)])
    assert settled[upn(1)].phones[M].sms_sign_in_state is SmsSignInState.READY
    assert plan(desired, settled, sms_policy, policy).changes == ()
    tenant.check_invariants()


def test_masked_read_from_the_sandbox_plans_nothing():
    tenant = _sms_conflict_tenant()
    masked = tenant.list_phones(upn(0), masked=True)
    phones = {M: CurrentPhone(M, masked[0]["phoneNumber"], SmsSignInState(masked[0]["smsSignInState"]))}
    desired = {upn(0): DesiredUser(upn(0), upn(0), {M: None, O: "+1 2065550109"})}
    for flagged in (True, False):  # caught from the numbers even when the reader missed it
        current = {upn(0): CurrentUser(upn(0), ReadStatus.OK, uid(0), phones, masked=flagged)}
        p: Plan = plan(desired, current, SmsPolicy(readable=False), PlanPolicy(PlanMode.AUTHORITATIVE, SmsIntent.DISABLE))
        assert p.changes == () and p.users[0].codes == (ReasonCode.NUMBERS_MASKED,)


def test_legacy_format_numbers_in_the_tenant_are_not_rewritten():
    snapshot = {
        "format": "provision-sandbox-tenant",
        "version": 1,
        "tenant_id": "00000000-0000-0000-0000-0000000000aa",
        "users": [
            {
                "id": uid(0),
                "upn": upn(0),
                "phones": [
                    {"phoneType": "mobile", "phoneNumber": "+12065550100", "sms": "registered"},
                    {"phoneType": "office", "phoneNumber": "+44 20 7123 4567", "sms": "none"},
                ],
            }
        ],
    }
    tenant = Tenant.from_snapshot(snapshot)
    desired = {upn(0): DesiredUser(upn(0), upn(0), {M: "+1 2065550100", O: "+44 2071234567", A: None}, True)}
    current = read_current(tenant, [upn(0)])
    assert current[upn(0)].phones[M].number == "+12065550100"
    p = plan(desired, current, SmsPolicy(readable=True, enabled=True, include_all_users=True), PlanPolicy(PlanMode.AUTHORITATIVE))
    assert p.changes == () and p.users[0].outcome is UserDecision.NOOP
