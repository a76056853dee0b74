"""Small builders for planner inputs (plain model values, no mocks)."""

from __future__ import annotations

from typing import Mapping

from provision.model import (
    CurrentPhone,
    CurrentUser,
    DesiredUser,
    PhoneType,
    ReadStatus,
    SmsSignInState,
)

M, A, O = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE


def desired(key: str = "ann@contoso.com", sms: bool | None = None, rows: tuple[int, ...] = (2,), **phones: str | None) -> DesiredUser:
    by_type = {PhoneType(t if t != "alternate" else "alternateMobile"): n for t, n in phones.items()}
    return DesiredUser(key=key, user=key, phones=by_type, sms_sign_in=sms, rows=rows)


def current(
    key: str = "ann@contoso.com",
    *,
    id: str | None = "11111111-1111-1111-1111-111111111111",
    status: ReadStatus = ReadStatus.OK,
    masked: bool = False,
    sms: SmsSignInState | None = None,
    **phones: str,
) -> CurrentUser:
    by_type: dict[PhoneType, CurrentPhone] = {}
    for t, n in phones.items():
        pt = PhoneType(t if t != "alternate" else "alternateMobile")
        state = (sms or SmsSignInState.NOT_ENABLED) if pt is PhoneType.MOBILE else SmsSignInState.NOT_SUPPORTED
        by_type[pt] = CurrentPhone(pt, n, state)
    return CurrentUser(key=key, status=status, id=id, phones=by_type, masked=masked)


def one(d: DesiredUser, c: CurrentUser | None) -> tuple[Mapping[str, DesiredUser], Mapping[str, CurrentUser]]:
    return {d.key: d}, ({} if c is None else {c.key: c})
