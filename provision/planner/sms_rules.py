"""Whether a user's SMS sign-in changes, judged against the mobile they will have after the plan.

The intent is the job default (``SmsIntent``), overridden per row by ``DesiredUser.sms_sign_in``.

- enable: nothing when the unchanged mobile is already ``ready``. Policy says no (or the
  mobile reads ``notAllowedByPolicy`` while the policy is unreadable): no change, warning
  ``sms_not_allowed_by_policy``. A mobile with an extension: no change, warning
  ``sms_mobile_has_extension`` (SMS can't dial extensions). Policy allows and the plan
  creates the mobile or changes its digits: no change, because Graph registers such a
  mobile for SMS sign-in by itself. Otherwise (mobile unchanged and not ready, only its
  extension/spelling changes while not ready, or policy unknown) ``enable_sms`` after the
  mobile write. An unchanged mobile reading ``phoneNumberNotUnique``: no change, warning
  ``sms_number_not_unique``, unless the job retries conflicts.
- disable: ``disable_sms`` when the unchanged mobile reads ``ready``, or when the plan
  writes the mobile and policy allows or is unknown (the write may auto-register it).
- leave: nothing.

Both are idempotent: once applied, the mobile reads ``ready`` (enable) or not (disable),
and planning again yields no SMS change.

Each judge takes ``mobile``, the user's current mobile unless the plan deletes it, and
``written``, the number the plan writes to the mobile (``None``: no write).
"""

from __future__ import annotations

from typing import Mapping

from provision.model import ChangeKind, CurrentPhone, SmsIntent, SmsPolicy, SmsSignInState
from provision.planner.reasons import ReasonCode
from provision.planner.same_number import same_handset

__all__ = ["SMS_AFTER", "SmsVerdict", "judge_disable", "judge_enable", "sms_before", "sms_intent"]

# What the judges answer: the change to plan, or the warning why none is, or None (nothing to do).
SmsVerdict = ChangeKind | ReasonCode | None

# The smsSignInState an SMS change aims for (its ``after``).
SMS_AFTER: Mapping[ChangeKind, str] = {
    ChangeKind.ENABLE_SMS: SmsSignInState.READY.value,
    ChangeKind.DISABLE_SMS: SmsSignInState.NOT_ENABLED.value,
}

_ENABLE = SmsIntent.ENABLE
_DISABLE = SmsIntent.DISABLE
_READY = SmsSignInState.READY
_NOT_ALLOWED_STATE = SmsSignInState.NOT_ALLOWED_BY_POLICY
_NOT_UNIQUE_STATE = SmsSignInState.PHONE_NUMBER_NOT_UNIQUE


def sms_intent(override: bool | None, job_default: SmsIntent) -> SmsIntent:
    """The user's intent: the row's ``sms_sign_in`` when it says yes or no, else the job's."""
    if override is None:
        return job_default
    return _ENABLE if override else _DISABLE


def _allowed(sms_policy: SmsPolicy, user_id: str | None, state: SmsSignInState | None) -> bool | None:
    allowed = sms_policy.allows(user_id)
    if allowed is None and state == _NOT_ALLOWED_STATE:
        return False  # the unreadable policy shows through the mobile's state
    return allowed


def judge_enable(
    mobile: CurrentPhone | None,
    written: str | None,
    user_id: str | None,
    sms_policy: SmsPolicy,
    retry_conflicts: bool,
) -> SmsVerdict:
    """``enable_sms``, a warning code, or None (already ready, or Graph registers it itself)."""
    if written is None:
        if mobile is None:
            return ReasonCode.SMS_NEEDS_MOBILE
        state = mobile.sms_sign_in_state
        if state == _READY:
            return None
        if state == _NOT_UNIQUE_STATE and not retry_conflicts:
            # Retrying would fail the same way every run until the other user's number
            # is freed; report the conflict instead (the job can opt into retries).
            return ReasonCode.SMS_NOT_UNIQUE
        number = mobile.number
    else:
        state = mobile.sms_sign_in_state if mobile is not None else None
        number = written
    allowed = _allowed(sms_policy, user_id, state)
    if allowed is False:
        return ReasonCode.SMS_NOT_ALLOWED
    if "x" in number or "X" in number:
        return ReasonCode.SMS_EXTENSION
    if allowed is None or written is None or (mobile is not None and state != _READY and same_handset(mobile.number, written)):
        # a write only auto-registers a new handset (created, or other digits)
        return ChangeKind.ENABLE_SMS
    return None


def judge_disable(
    mobile: CurrentPhone | None,
    written: str | None,
    user_id: str | None,
    sms_policy: SmsPolicy,
) -> ChangeKind | None:
    """``disable_sms`` or None (not registered, or a write policy keeps from registering)."""
    if written is None:
        if mobile is not None and mobile.sms_sign_in_state == _READY:
            return ChangeKind.DISABLE_SMS
        return None
    state = mobile.sms_sign_in_state if mobile is not None else None
    if _allowed(sms_policy, user_id, state) is not False:
        return ChangeKind.DISABLE_SMS
    return None


def sms_before(mobile: CurrentPhone | None, written: str | None) -> str | None:
    """An SMS change's ``before``: the state as read, or None when the mobile is written first."""
    if written is not None or mobile is None or mobile.sms_sign_in_state is None:
        return None
    return mobile.sms_sign_in_state.value
