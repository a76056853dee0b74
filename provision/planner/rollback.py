"""The inverse of a finished (or stopped) run: what ``provision rollback`` plans, purely.

Given the changes a run actually applied (journal status ``done``) and every user's phones
as read now, each applied change is turned around: a create becomes a delete, an update
restores the number it replaced, a delete re-creates the number it removed, an
``enable_sms`` becomes ``disable_sms`` and the other way round. An inverse is planned only
where the live value still equals what the run wrote; anything changed since is a
``conflict`` (reason code and sentence, never a number) and is left alone.

The inverses of a user form one chain in the planner's order (``planner.chain``):
creates/updates mobile -> alternateMobile -> office, deletes office -> alternateMobile ->
mobile, the SMS change last; so undoing "create mobile + create alternateMobile" deletes
the alternateMobile first. Graph's own rules are kept on the state the chain leaves: a
mobile is not deleted while an alternateMobile stays, an alternateMobile is not written
without a mobile, and no SMS change is sent for a mobile the chain deletes (deleting the
mobile ends its SMS sign-in).

SMS sign-in is restored to the readiness the mobile had before the run (the run's plan
recorded it): a run that enabled it, or renumbered the mobile (Graph re-registers a new
mobile by itself), is followed by ``disable_sms`` when the mobile was not ready before, and
``enable_sms`` when it was. Graph offers no way back to ``notConfigured``: "not ready" ends
as ``notEnabled``. Like the rest of the planner: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from provision.model import (
    DELETE_ORDER,
    PHONE_TYPES,
    ChangeKind,
    CurrentUser,
    DesiredUser,
    PhoneType,
    ReadStatus,
    SmsPolicy,
    SmsSignInState,
    UserDecision,
)
from provision.planner.reasons import REASON_TEXT, ReasonCode
from provision.planner.safety import safety_verdict
from provision.planner.same_number import same_handset, same_number
from provision.planner.sms_rules import SMS_AFTER
from provision.planner.values import Change, Plan, PlanPolicy, UserPlan

__all__ = ["AppliedChange", "RunUser", "inverse_plan", "inverse_user"]

_MOBILE = PhoneType.MOBILE
_ALTERNATE = PhoneType.ALTERNATE_MOBILE
_SMS_INVERSE = {ChangeKind.ENABLE_SMS: ChangeKind.DISABLE_SMS, ChangeKind.DISABLE_SMS: ChangeKind.ENABLE_SMS}


CONFLICT = ReasonCode.CONFLICT


@dataclass(frozen=True, slots=True)
class AppliedChange:
    """A change the run applied, and the smsSignInState Graph reported after it (if any)."""

    change: Change
    sms_state_after: str | None = None


@dataclass(frozen=True, slots=True)
class RunUser:
    """One user of the run being reversed: who, which roster rows, what it applied (in order)."""

    key: str
    user: str
    rows: tuple[int, ...]
    applied: tuple[AppliedChange, ...] = ()
    before: CurrentUser | None = None  # as the run read the user before writing (its plan's ``current``)


@dataclass(frozen=True, slots=True)
class _Inverse:
    kind: ChangeKind
    phone_type: PhoneType
    before: str | None
    after: str | None
    target: str
    rows: tuple[int, ...]


def inverse_plan(
    users: Sequence[RunUser], current: Mapping[str, CurrentUser], sms_policy: SmsPolicy, policy: PlanPolicy
) -> Plan:
    """The rollback of a run: one ``UserPlan`` per user of the run, in the run's order."""
    planned = tuple(inverse_user(u, current.get(u.key)) for u in users)
    changes = tuple(c for up in planned for c in up.changes)
    base = sum(len(c.phones) for c in current.values() if c.status is ReadStatus.OK)
    return Plan(planned, changes, policy, safety_verdict(changes, base, policy), sms_policy)


def _skip(u: RunUser, live: CurrentUser | None, outcome: UserDecision, code: ReasonCode, reason: str) -> UserPlan:
    return UserPlan(u.key, u.user, outcome, (), reason, u.rows, (code,), None, live)


def inverse_user(u: RunUser, live: CurrentUser | None) -> UserPlan:
    """The inverse chain of one user's applied changes, judged against their live phones."""
    if not u.applied:
        return UserPlan(u.key, u.user, UserDecision.NOOP, (), None, u.rows, (), None, live)
    if live is None or live.status is not ReadStatus.OK:
        code = ReasonCode.USER_NOT_FOUND if live is not None and live.status is ReadStatus.NOT_FOUND else ReasonCode.READ_FAILED
        outcome = UserDecision.SKIP if code is ReasonCode.USER_NOT_FOUND else UserDecision.ERROR
        return _skip(u, live, outcome, code, REASON_TEXT[code].replace("nothing planned", "nothing rolled back"))
    if live.masked:
        return _skip(u, live, UserDecision.SKIP, ReasonCode.NUMBERS_MASKED, REASON_TEXT[ReasonCode.NUMBERS_MASKED])
    phones: dict[PhoneType, str] = {t: p.number for t, p in live.phones.items()}
    inverses: dict[PhoneType, _Inverse] = {}
    conflicts: list[str] = []
    sms: AppliedChange | None = None
    for applied in u.applied:
        c = applied.change
        if c.kind not in _SMS_INVERSE:
            _invert_phone(c, phones.get(c.phone_type), inverses, conflicts)
        else:
            sms = applied
    _keep_graph_rules(inverses, phones, conflicts)
    sms_inverse = _invert_sms(u, sms, live, inverses, conflicts)
    chain = _chain(u.key, inverses, sms_inverse)
    desired = DesiredUser(u.key, u.user, {t: i.after for t, i in inverses.items()}, None, u.rows)
    if not conflicts:
        return UserPlan(u.key, u.user, UserDecision.CHANGE if chain else UserDecision.NOOP, chain, None, u.rows, (), desired, live)
    reason = f"{ReasonCode.CONFLICT.value}: " + " ".join(conflicts)
    outcome = UserDecision.ERROR if chain else UserDecision.SKIP
    return UserPlan(u.key, u.user, outcome, chain, reason, u.rows, (CONFLICT,), desired, live)


def _same(a: str | None, b: str | None) -> bool:
    return a is None and b is None or (a is not None and b is not None and same_number(a, b))


def _invert_phone(c: Change, now: str | None, inverses: dict[PhoneType, _Inverse], conflicts: list[str]) -> None:
    if not _same(now, c.after):
        what = "was deleted" if now is None else ("was added" if c.after is None else "holds another number")
        conflicts.append(f"the {c.phone_type} {what} since the run; left as it is.")
        return
    kind = {ChangeKind.CREATE: ChangeKind.DELETE, ChangeKind.UPDATE: ChangeKind.UPDATE, ChangeKind.DELETE: ChangeKind.CREATE}[c.kind]
    inverses[c.phone_type] = _Inverse(kind, c.phone_type, now, c.before, c.target, c.rows)


def _after(phones: Mapping[PhoneType, str], inverses: Mapping[PhoneType, _Inverse]) -> dict[PhoneType, str]:
    final = dict(phones)
    for t, i in inverses.items():
        if i.after is None:
            final.pop(t, None)
        else:
            final[t] = i.after
    return final


def _keep_graph_rules(inverses: dict[PhoneType, _Inverse], phones: Mapping[PhoneType, str], conflicts: list[str]) -> None:
    """Drop an inverse Graph would refuse on the state the chain leaves (the reason says why)."""
    mobile = inverses.get(_MOBILE)
    if mobile is not None and mobile.after is None and _ALTERNATE in _after(phones, inverses):
        del inverses[_MOBILE]
        conflicts.append("the mobile can't be deleted while the user keeps an alternateMobile; mobile left as it is.")
    alternate = inverses.get(_ALTERNATE)
    if alternate is not None and alternate.after is not None and _MOBILE not in _after(phones, inverses):
        del inverses[_ALTERNATE]
        conflicts.append("an alternateMobile needs a mobile, and the user has none; alternateMobile not restored.")


def _invert_sms(
    u: RunUser, sms: AppliedChange | None, live: CurrentUser, inverses: Mapping[PhoneType, _Inverse], conflicts: list[str]
) -> _Inverse | None:
    """The SMS change that gives the mobile back the SMS sign-in it had before the run.

    Only for a user whose mobile or SMS sign-in the run changed, and whose mobile stays
    (a mobile the chain deletes takes its SMS sign-in with it). Readiness is what can be
    restored: Graph has no way back to ``notConfigured``, so "not ready" ends ``notEnabled``.
    """
    final_mobile = _after({t: p.number for t, p in live.phones.items()}, inverses).get(_MOBILE)
    touched_mobile = any(a.change.phone_type is _MOBILE and a.change.kind not in _SMS_INVERSE for a in u.applied)
    if final_mobile is None or (sms is None and not touched_mobile):
        return None
    mobile = live.phones[_MOBILE]
    now = mobile.sms_sign_in_state.value if mobile.sms_sign_in_state is not None else None
    if any(s.startswith(f"the {_MOBILE} ") for s in conflicts) or (
        sms is not None and now != (sms.sms_state_after or SMS_AFTER[sms.change.kind])
    ):
        conflicts.append("SMS sign-in changed since the run (or its mobile did); left as it is.")
        return None
    pre = u.before.phones.get(_MOBILE) if u.before is not None else None
    if pre is None:
        return None
    was_ready = pre.sms_sign_in_state is SmsSignInState.READY
    renumbered = _MOBILE in inverses and not same_handset(inverses[_MOBILE].after or "", mobile.number)
    ready_then = None if renumbered else now == SmsSignInState.READY.value  # None: Graph decides on the new number
    if ready_then is was_ready:
        return None
    kind = ChangeKind.ENABLE_SMS if was_ready else ChangeKind.DISABLE_SMS
    target = sms.change.target if sms is not None else next(a.change.target for a in u.applied)
    return _Inverse(kind, _MOBILE, None if renumbered else now, SMS_AFTER[kind], target, u.rows)


def _chain(key: str, inverses: Mapping[PhoneType, _Inverse], sms: _Inverse | None) -> tuple[Change, ...]:
    """Creates/updates in ``PHONE_TYPES`` order, then deletes in ``DELETE_ORDER``, SMS last."""
    ordered = [inverses[t] for t in PHONE_TYPES if t in inverses and inverses[t].kind is not ChangeKind.DELETE]
    ordered += [inverses[t] for t in DELETE_ORDER if t in inverses and inverses[t].kind is ChangeKind.DELETE]
    if sms is not None:
        ordered.append(sms)
    changes: list[Change] = []
    for n, i in enumerate(ordered, 1):
        prev = changes[-1].id if changes else None
        changes.append(Change(f"{key}#{n}", key, i.target, i.kind, i.phone_type, i.before, i.after, prev, i.rows))
    return tuple(changes)

