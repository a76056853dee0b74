"""The sandbox tenant: users, their phone methods, the SMS policy, and Graph's rules.

Pure state and rules: no HTTP, no sleeping. Time comes from an injected clock (only the
replication-lag rule reads it). Every rule violation raises ``TenantError`` carrying the
HTTP status and Graph error code the HTTP layer will answer with.

INTERFACE STUB: the signatures below are the contract used by ``sandbox/app.py`` and by
the planner's property tests. Implementations replace the ``NotImplementedError`` bodies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from provision.model import PhoneType

# Graph's wire format for phone numbers: "+<country code> <number>[x<extension>]".
# Country codes are 1-3 digits (ITU E.164), national numbers up to 14 digits.
PHONE_NUMBER_PATTERN = r"^\+[1-9]\d{0,2} \d{1,14}(x\d{1,10})?$"


def is_graph_phone_number(value: str) -> bool:
    """True when ``value`` is in the format Graph accepts on create/update."""
    raise NotImplementedError


@dataclass(frozen=True, slots=True)
class TenantError(Exception):
    """A rule violation, answered over HTTP as ``status`` with Graph error ``code``.

    ``saved`` is True when the write was applied despite the error (Graph's 409
    phoneNumberNotUnique on a mobile write: the phone is saved, SMS sign-in is not).
    """

    status: int
    code: str
    message: str
    saved: bool = False


class Tenant:
    """One tenant's directory state.

    Users are addressed by ``ref``: their object id (GUID, any case) or their UPN
    (case-insensitive). Soft-deleted users are invisible (404) but their SMS sign-in
    number stays reserved.
    """

    def __init__(
        self,
        *,
        tenant_id: str = "00000000-0000-0000-0000-0000000000aa",
        clock: Callable[[], float] = time.monotonic,
        replication_lag_s: float = 0.0,
    ) -> None:
        raise NotImplementedError

    # users -----------------------------------------------------------------------------
    def create_user(
        self, upn: str, display_name: str | None = None, account_enabled: bool = True, *, id: str | None = None
    ) -> dict[str, Any]:
        """Graph user JSON (id, userPrincipalName, displayName, accountEnabled). 400 on a
        missing/invalid UPN, 400 ``Request_BadRequest`` when the UPN already exists."""
        raise NotImplementedError

    def get_user(self, ref: str) -> dict[str, Any]:
        raise NotImplementedError

    def delete_user(self, ref: str) -> None:
        """Soft delete (the user's SMS sign-in number stays reserved)."""
        raise NotImplementedError

    # phone methods ---------------------------------------------------------------------
    def list_phones(self, ref: str, *, masked: bool = False) -> list[dict[str, Any]]:
        """phoneAuthenticationMethod JSON objects (id, phoneNumber, phoneType, smsSignInState)."""
        raise NotImplementedError

    def get_phone(self, ref: str, method_id: str, *, masked: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def create_phone(self, ref: str, phone_number: Any, phone_type: Any) -> dict[str, Any]:
        raise NotImplementedError

    def update_phone(self, ref: str, method_id: str, phone_number: Any, phone_type: Any = None) -> dict[str, Any]:
        raise NotImplementedError

    def delete_phone(self, ref: str, method_id: str) -> None:
        raise NotImplementedError

    def enable_sms_sign_in(self, ref: str, method_id: str) -> None:
        raise NotImplementedError

    def disable_sms_sign_in(self, ref: str, method_id: str) -> None:
        raise NotImplementedError

    # SMS authentication method policy --------------------------------------------------
    def get_sms_policy(self) -> dict[str, Any]:
        raise NotImplementedError

    def update_sms_policy(self, patch: dict[str, Any]) -> None:
        raise NotImplementedError

    # snapshots -------------------------------------------------------------------------
    def to_snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_snapshot(
        cls, data: dict[str, Any], *, clock: Callable[[], float] = time.monotonic, replication_lag_s: float = 0.0
    ) -> "Tenant":
        raise NotImplementedError


__all__ = ["PHONE_NUMBER_PATTERN", "PhoneType", "Tenant", "TenantError", "is_graph_phone_number"]
