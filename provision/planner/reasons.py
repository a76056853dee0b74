"""Why a user's plan is not a plain change/noop: stable reason codes and their sentences.

A ``UserPlan`` carries the codes (for reports and summaries) and one ``reason`` string made
of ``"<code>: <sentence>"`` parts. Sentences never quote a phone number.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Iterable, Mapping

__all__ = ["REASON_TEXT", "WARNING_CODES", "ReasonCode", "reason_text"]


class ReasonCode(StrEnum):
    """Stable reason codes on a UserPlan; ``WARNING_CODES`` don't make the outcome an error."""

    USER_NOT_FOUND = "user_not_found"
    OUT_OF_SCOPE = "out_of_scope"  # outside the job's [scope] groups and administrative units
    READ_FAILED = "read_failed"
    NOT_READ = "not_read"
    NUMBERS_MASKED = "numbers_masked"
    ALTERNATE_REQUIRES_MOBILE = "alternate_requires_mobile"
    MOBILE_DELETE_BLOCKED = "mobile_delete_blocked_by_alternate"
    SMS_NOT_ALLOWED = "sms_not_allowed_by_policy"
    SMS_NEEDS_MOBILE = "sms_needs_mobile"
    SMS_EXTENSION = "sms_mobile_has_extension"
    SMS_NOT_UNIQUE = "sms_number_not_unique"
    CONFLICT = "conflict"  # rollback: the phone changed since the run being reversed


WARNING_CODES: frozenset[ReasonCode] = frozenset(
    {ReasonCode.SMS_NOT_ALLOWED, ReasonCode.SMS_NEEDS_MOBILE, ReasonCode.SMS_EXTENSION, ReasonCode.SMS_NOT_UNIQUE}
)

_SENTENCES: Mapping[ReasonCode, str] = {
    ReasonCode.USER_NOT_FOUND: "Graph has no such user (404); nothing planned.",
    ReasonCode.OUT_OF_SCOPE: "the user is outside the job's [scope] (its groups and administrative units); nothing planned.",
    ReasonCode.READ_FAILED: "the user's phone methods could not be read; nothing planned.",
    ReasonCode.NOT_READ: "no current state was read for this user; nothing planned.",
    ReasonCode.NUMBERS_MASKED: "Graph returned masked numbers; the planner never diffs against masked numbers.",
    ReasonCode.ALTERNATE_REQUIRES_MOBILE: "an alternateMobile needs a mobile, and the user has none and the roster gives none; alternateMobile not written.",
    ReasonCode.MOBILE_DELETE_BLOCKED: "the roster blanks the mobile but keeps an alternateMobile, which Graph forbids; mobile kept.",
    ReasonCode.SMS_NOT_ALLOWED: "the SMS policy does not let this user sign in with SMS; SMS sign-in not changed.",
    ReasonCode.SMS_NEEDS_MOBILE: "SMS sign-in wanted but the user will have no mobile.",
    ReasonCode.SMS_EXTENSION: "SMS sign-in wanted but the mobile has an extension, which SMS can't dial.",
    ReasonCode.SMS_NOT_UNIQUE: "SMS sign-in wanted but another user already signs in with this number (phoneNumberNotUnique); not retried.",
    ReasonCode.CONFLICT: "the phone changed since the run being rolled back; left as it is.",
}

# Built once: a user plan's reason is looked up, not formatted, per user.
REASON_TEXT: Mapping[ReasonCode, str] = {code: f"{code.value}: {text}" for code, text in _SENTENCES.items()}


def reason_text(codes: Iterable[ReasonCode]) -> str:
    """The ``reason`` of a user plan with these codes, in their order."""
    return " ".join(REASON_TEXT[c] for c in codes)
