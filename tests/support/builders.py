"""Builders for model values (plain values, no mocks): roster users, current state, journal changes.

- ``desired(key, sms=None, rows=(2,), mobile=..., alternate=..., office=...)``: a ``DesiredUser``
  (a phone given as ``None`` is a blank cell: "remove it").
- ``current(key, id=..., status=OK, masked=False, sms=None, mobile=..., ...)``: a ``CurrentUser``
  as Graph was read (the mobile's SMS sign-in state is ``sms``, else notEnabled).
- ``one(desired, current)``: the planner's two mappings for a single user.
- ``journal_change(...)``: one ``JournalChange`` (create a mobile for ``u`` unless told otherwise).
- ``make_changes(users)``: two chained journal changes per user, as the planner orders them.

Phone keyword names: ``mobile``, ``alternate`` (or ``alternateMobile``), ``office``.
"""

from __future__ import annotations

from typing import Mapping

from provision.executor.journal import JournalChange
from provision.model import (
    CurrentPhone,
    CurrentUser,
    DesiredUser,
    PhoneType,
    ReadStatus,
    SmsSignInState,
)

M, A, O = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE
USER_ID = "11111111-1111-1111-1111-111111111111"


def phone_type(name: str) -> PhoneType:
    return PhoneType("alternateMobile" if name == "alternate" else name)


def desired(key: str = "ann@contoso.com", sms: bool | None = None, rows: tuple[int, ...] = (2,), **phones: str | None) -> DesiredUser:
    by_type = {phone_type(t): n for t, n in phones.items()}
    return DesiredUser(key=key, user=key, phones=by_type, sms_sign_in=sms, rows=rows)


def current(
    key: str = "ann@contoso.com",
    *,
    id: str | None = USER_ID,
    status: ReadStatus = ReadStatus.OK,
    masked: bool = False,
    sms: SmsSignInState | None = None,
    **phones: str,
) -> CurrentUser:
    by_type: dict[PhoneType, CurrentPhone] = {}
    for t, n in phones.items():
        pt = phone_type(t)
        state = (sms or SmsSignInState.NOT_ENABLED) if pt is PhoneType.MOBILE else SmsSignInState.NOT_SUPPORTED
        by_type[pt] = CurrentPhone(pt, n, state)
    return CurrentUser(key=key, status=status, id=id, phones=by_type, masked=masked)


def one(d: DesiredUser, c: CurrentUser | None) -> tuple[Mapping[str, DesiredUser], Mapping[str, CurrentUser]]:
    return {d.key: d}, ({} if c is None else {c.key: c})


def journal_change(
    id: str = "u#1", user: str = "u", kind: str = "create", phone_type: PhoneType | str = M,
    after: str | None = "+1 2065550100", *, before: str | None = None, depends_on: str | None = None,
    target: str | None = None, rows: tuple[int, ...] = (),
) -> JournalChange:
    """A journal change of ``user`` (its ``target`` too unless given)."""
    return JournalChange(
        id=id, user=user, target=target or user, kind=kind, phone_type=phone_type,
        before=before, after=after, depends_on=depends_on, rows=rows,
    )


def make_changes(users: int) -> list[JournalChange]:
    """Two chained changes per user (mobile, then alternateMobile), as the planner orders them."""
    changes = []
    for u in range(users):
        key = f"user{u:04d}@contoso.com"
        changes.append(journal_change(f"{key}#1", key, "create", M, f"+1 42555{u:05d}", rows=(u + 2,)))
        changes.append(
            journal_change(f"{key}#2", key, "update", A, f"+44 77009{u:05d}", before="+44 7700900001",
                           depends_on=f"{key}#1", rows=(u + 2, u + 900))
        )
    return changes
