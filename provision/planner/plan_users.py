"""The planner: one ``UserPlan`` per roster user, composed from the rule modules.

``plan()`` walks the roster in order. A user it can't plan gets a terminal decision with
no changes: outside the job's scope (``skip``: ``out_of_scope`` keys are never read), not
read, not found or read failed (``error``), masked numbers (``skip``: the planner never
diffs against masked numbers). Every other user goes through the rules:
the phone decisions for the job's mode and the mobile/alternateMobile rule
(``phone_rules``), their ordered chain (``chain``), the SMS sign-in decision
(``sms_rules``), and finally the user's outcome from their changes and reason codes.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Collection, Iterator, Mapping

from provision.masking import is_masked
from provision.model import (
    CurrentUser,
    DesiredUser,
    PhoneType,
    ReadStatus,
    SmsIntent,
    SmsPolicy,
    UserDecision,
)
from provision.planner.chain import append_sms_change, phone_chain
from provision.planner.phone_rules import PHONE_DECISIONS, PhoneDecision, mobile_alternate_rule
from provision.planner.reasons import REASON_TEXT, WARNING_CODES, ReasonCode, reason_text
from provision.planner.safety import safety_verdict
from provision.planner.sms_rules import SMS_AFTER, judge_disable, judge_enable, sms_before, sms_intent
from provision.planner.values import Change, Plan, PlanPolicy, UserPlan

__all__ = ["gc_paused", "plan"]

_MOBILE = PhoneType.MOBILE
_ALT = PhoneType.ALTERNATE_MOBILE
_LEAVE = SmsIntent.LEAVE
_ENABLE = SmsIntent.ENABLE
_NO_CODES: tuple[ReasonCode, ...] = ()
_ONE_CODE: Mapping[ReasonCode, tuple[ReasonCode, ...]] = {code: (code,) for code in ReasonCode}


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building or reading a large plan.

    A million-user plan is millions of small acyclic objects: the collector's passes over
    them find nothing and cost ~40% of the run (bench/plan_1m). Reference counting still
    frees everything; the collector resumes (if it was on) when the block ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def plan(
    desired: Mapping[str, DesiredUser],
    current: Mapping[str, CurrentUser],
    sms_policy: SmsPolicy,
    policy: PlanPolicy,
    *,
    out_of_scope: Collection[str] = (),
) -> Plan:
    """Plan every roster user; users appear in ``desired``'s order, one UserPlan each.

    ``out_of_scope``: roster keys outside the job's ``[scope]``; they are skipped with
    ``out_of_scope`` whatever ``current`` holds for them.
    """
    with gc_paused():
        return _plan(desired, current, sms_policy, policy, frozenset(out_of_scope))


def _plan(
    desired: Mapping[str, DesiredUser],
    current: Mapping[str, CurrentUser],
    sms_policy: SmsPolicy,
    policy: PlanPolicy,
    out_of_scope: frozenset[str],
) -> Plan:
    decide = PHONE_DECISIONS[policy.mode]
    job_sms = policy.sms
    retry_conflicts = policy.retry_sms_conflicts
    users: list[UserPlan] = []
    append = users.append
    all_changes: list[Change] = []
    extend = all_changes.extend
    base_phones = 0
    ok = ReadStatus.OK
    for key, d in desired.items():
        if out_of_scope and key in out_of_scope:
            append(_terminal(d, None, UserDecision.SKIP, ReasonCode.OUT_OF_SCOPE))
            continue
        c = current.get(key)
        if c is None:
            append(_terminal(d, None, UserDecision.ERROR, ReasonCode.NOT_READ))
            continue
        status = c.status
        if status is not ok and status != ok:
            if status == ReadStatus.NOT_FOUND:
                append(_terminal(d, c, UserDecision.ERROR, ReasonCode.USER_NOT_FOUND))
            else:
                append(_terminal(d, c, UserDecision.ERROR, ReasonCode.READ_FAILED))
            continue
        phones = c.phones
        base_phones += len(phones)
        if c.masked or (phones and _has_masked_number(c)):
            append(_terminal(d, c, UserDecision.SKIP, ReasonCode.NUMBERS_MASKED))
            continue
        up = _plan_user(d, c, decide, job_sms, sms_policy, retry_conflicts)
        append(up)
        if up.changes:
            extend(up.changes)

    changes = tuple(all_changes)
    safety = safety_verdict(changes, base_phones, policy)
    return Plan(tuple(users), changes, policy, safety, sms_policy)


def _terminal(d: DesiredUser, c: CurrentUser | None, outcome: UserDecision, code: ReasonCode) -> UserPlan:
    return UserPlan(d.key, d.user, outcome, (), REASON_TEXT[code], d.rows, _ONE_CODE[code], d, c)


def _has_masked_number(c: CurrentUser) -> bool:
    # The reader marks masked users; a plan file written by hand or by an older reader may not.
    return any(is_masked(cp.number) for cp in c.phones.values())


def _plan_user(
    d: DesiredUser,
    c: CurrentUser,
    decide: PhoneDecision,
    job_sms: SmsIntent,
    sms_policy: SmsPolicy,
    retry_conflicts: bool,
) -> UserPlan:
    """A readable, unmasked user's plan: phone decisions, their chain, then SMS sign-in."""
    cur = c.phones
    write, delete = decide(d.phones, cur)
    codes = _NO_CODES
    if _ALT in write or _ALT in cur:  # the rule can't bite otherwise: most users skip the call
        write, delete, code = mobile_alternate_rule(write, delete, cur)
        if code is not None:
            codes = _ONE_CODE[code]
    key = d.key
    target = c.id or d.user
    changes = phone_chain(key, target, d.rows, write, delete, cur) if write or delete else []

    intent = sms_intent(d.sms_sign_in, job_sms)
    if intent is not _LEAVE:
        mobile = cur.get(_MOBILE) if _MOBILE not in delete else None  # the mobile the user keeps
        written = write.get(_MOBILE)
        if intent is _ENABLE:
            verdict = judge_enable(mobile, written, c.id, sms_policy, retry_conflicts)
        else:
            verdict = judge_disable(mobile, written, c.id, sms_policy)
        if isinstance(verdict, ReasonCode):
            codes += (verdict,)
        elif verdict is not None:
            append_sms_change(changes, key, target, d.rows, verdict, sms_before(mobile, written), SMS_AFTER[verdict])
    return _final_decision(d, c, changes, codes)


def _final_decision(d: DesiredUser, c: CurrentUser, changes: list[Change], codes: tuple[ReasonCode, ...]) -> UserPlan:
    """The user's outcome: ``error`` if any code is not a warning, else change or noop."""
    if codes:
        is_error = any(code not in WARNING_CODES for code in codes)
        outcome = UserDecision.ERROR if is_error else (UserDecision.CHANGE if changes else UserDecision.NOOP)
        return UserPlan(d.key, d.user, outcome, tuple(changes), reason_text(codes), d.rows, codes, d, c)
    if changes:
        return UserPlan(d.key, d.user, UserDecision.CHANGE, tuple(changes), None, d.rows, (), d, c)
    return UserPlan(d.key, d.user, UserDecision.NOOP, (), None, d.rows, (), d, c)
