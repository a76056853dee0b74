"""What a read-back of a user's phones says about the executor's changes (pure).

The executor reads a user's phone methods back in these situations: a write whose outcome
is unknown (connection reset, timeout, 5xx, a ``$batch`` answered 5xx as a whole), a write
Graph refused (400 or 409: it may still have saved it, as with a 409
``phoneNumberNotUnique`` on a mobile, or an earlier attempt of ours may have landed), a
delete answered 404, and ``--verify`` after the user's last change. This module decides,
from the phones read, whether a change's after-state holds, and whether a whole user's
applied changes hold.

Numbers compare by digits and extension (Graph echoes ``+1 2065550100``; a write may have
been sent in another spelling). A masked read (``+1 XXXXXXXX00``) can't prove a number:
it is accepted when the type is present and its last two digits agree, the most a masked
reader can know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from provision.executor.journal import JournalChange
from provision.masking import is_masked
from provision.model import ChangeKind, CurrentPhone, PhoneType, SmsSignInState
from provision.roster.numbers import canonical_digits

Phones = Mapping[PhoneType, CurrentPhone]

_READY = SmsSignInState.READY


def same_number(read: str, wanted: str) -> bool:
    """Whether a number read back is the number we wrote.

    A masked read (``masking.is_masked``) never is: its visible digits can't tell our number
    from another with the same ending, so it neither confirms nor verifies a write.
    """
    if is_masked(read):
        return False
    if read == wanted:
        return True
    return canonical_digits(read) == canonical_digits(wanted)


def change_holds(change: JournalChange, phones: Phones) -> bool:
    """Whether the tenant, as read, shows ``change``'s after-state."""
    kind = ChangeKind(change.kind)
    phone_type = PhoneType(change.phone_type)
    if kind is ChangeKind.CREATE or kind is ChangeKind.UPDATE:
        phone = phones.get(phone_type)
        return phone is not None and change.after is not None and same_number(phone.number, change.after)
    if kind is ChangeKind.DELETE:
        return phone_type not in phones
    mobile = phones.get(PhoneType.MOBILE)
    state = mobile.sms_sign_in_state if mobile is not None else None
    if kind is ChangeKind.ENABLE_SMS:
        return state is _READY or state == _READY
    # disable_sms: a missing mobile can't sign in with SMS either.
    return mobile is None or state != _READY


def sms_state(phones: Phones) -> str | None:
    """The mobile's smsSignInState as read (None: no mobile, or no state given)."""
    mobile = phones.get(PhoneType.MOBILE)
    if mobile is None or mobile.sms_sign_in_state is None:
        return None
    return str(mobile.sms_sign_in_state.value)


@dataclass(frozen=True, slots=True)
class Verification:
    """``--verify`` for one user: ``ok`` when every applied change's end state holds.

    ``mismatches`` names phone types (and ``sms``) that differ, never numbers.
    """

    ok: bool
    mismatches: tuple[str, ...]
    sms_state: str | None


def verify_user(done: Iterable[JournalChange], phones: Phones) -> Verification:
    """Compare the end state the user's done changes aimed for with the phones read.

    Later changes of a type override earlier ones (create then delete leaves nothing).
    An SMS change only counts when the user's last SMS change was done; a mobile write
    answered 409 ``phoneNumberNotUnique`` is done for its number, not for SMS.
    """
    numbers: dict[PhoneType, str | None] = {}
    sms: ChangeKind | None = None
    for change in done:
        phone_type = PhoneType(change.phone_type)
        kind = ChangeKind(change.kind)
        if kind is ChangeKind.CREATE or kind is ChangeKind.UPDATE:
            numbers[phone_type] = change.after
        elif kind is ChangeKind.DELETE:
            numbers[phone_type] = None
        else:
            sms = kind
    mismatches: list[str] = []
    for phone_type, wanted in numbers.items():
        phone = phones.get(phone_type)
        if wanted is None:
            if phone is not None:
                mismatches.append(phone_type.value)
        elif phone is None or not same_number(phone.number, wanted):
            mismatches.append(phone_type.value)
    state = sms_state(phones)
    if sms is ChangeKind.ENABLE_SMS and state != _READY.value:
        mismatches.append("sms")
    elif sms is ChangeKind.DISABLE_SMS and state == _READY.value:
        mismatches.append("sms")
    return Verification(not mismatches, tuple(mismatches), state)


__all__ = ["Phones", "Verification", "change_holds", "same_number", "sms_state", "verify_user"]
