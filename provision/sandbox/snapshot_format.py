"""The sandbox tenant's snapshot format: parse, validate and serialise the JSON shape.

A snapshot is the tenant's truth (what writes see), not what a lagging read replica
shows; replication lag is transient and never saved. The format is documented field by
field in docs/sandbox-snapshot.md. This module knows the JSON shape; the tenant turns a
parsed ``TenantSnapshot`` into state (and checks the cross-user rules while doing so), and
``snapshot`` reads and writes snapshot files. The tenant imports this module, so it
imports nothing of the tenant's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Mapping

from provision.errors import UsageError
from provision.model import PhoneType

SNAPSHOT_FORMAT = "provision-sandbox-tenant"
SNAPSHOT_VERSION = 1

_TOP_KEYS = frozenset(
    {"format", "version", "tenant_id", "users", "sms_registrations", "sms_policy", "groups", "administrative_units"}
)
_USER_KEYS = frozenset({"id", "upn", "displayName", "accountEnabled", "deleted", "default_method", "roles", "phones"})
_PHONE_KEYS = frozenset({"phoneType", "phoneNumber", "sms"})
_CONTAINER_KEYS = frozenset({"id", "displayName", "members"})


class SnapshotError(UsageError, ValueError):
    """The snapshot file is not a valid tenant snapshot (the message names the field).

    Also a ValueError: to code that just receives a snapshot dict (the HTTP reset
    endpoint) it is simply a bad value. Messages name users and phone types, never
    phone numbers.
    """


class SmsRegistration(StrEnum):
    """Where a phone stands in the SMS sign-in system (stored; smsSignInState is derived from it).

    ``registered``: the number is the user's SMS sign-in name (reserved tenant-wide).
    ``disabled``: SMS sign-in was explicitly disabled. ``notUnique``: the last registration
    attempt failed because another user holds the number. ``none``: never registered
    (e.g. an MFA number that predates SMS sign-in). Only a mobile can be other than ``none``.
    """

    REGISTERED = "registered"
    DISABLED = "disabled"
    NOT_UNIQUE = "notUnique"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class SnapshotPhone:
    phone_type: PhoneType
    phone_number: str  # any non-empty string: snapshots may hold legacy-format numbers
    sms: SmsRegistration = SmsRegistration.NONE


@dataclass(frozen=True, slots=True)
class SnapshotUser:
    id: str
    upn: str
    display_name: str | None
    account_enabled: bool = True
    deleted: bool = False
    default_method: PhoneType | None = None
    phones: tuple[SnapshotPhone, ...] = ()
    roles: tuple[str, ...] = ()  # directory role template ids the user holds (lower case)


@dataclass(frozen=True, slots=True)
class SnapshotContainer:
    """A group or an administrative unit: members are user ids or group ids (lower case)."""

    id: str
    display_name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TenantSnapshot:
    tenant_id: str
    users: tuple[SnapshotUser, ...]
    # digits-only number -> user id; None when the file left it out (then it is derived).
    sms_registrations: Mapping[str, str] | None
    sms_policy: Mapping[str, Any] | None  # Graph JSON; None: the default policy
    groups: tuple[SnapshotContainer, ...] = ()
    administrative_units: tuple[SnapshotContainer, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "tenant_id": self.tenant_id,
            "users": [_user_json(u) for u in self.users],
            "sms_registrations": dict(sorted((self.sms_registrations or {}).items())),
            "sms_policy": self.sms_policy,
        }
        # Written only when there are some: older snapshots stay byte-identical.
        if self.groups:
            out["groups"] = [_container_json(g) for g in self.groups]
        if self.administrative_units:
            out["administrative_units"] = [_container_json(a) for a in self.administrative_units]
        return out


def _container_json(container: SnapshotContainer) -> dict[str, Any]:
    return {"id": container.id, "displayName": container.display_name, "members": list(container.members)}


def _user_json(user: SnapshotUser) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": user.id,
        "upn": user.upn,
        "displayName": user.display_name,
        "accountEnabled": user.account_enabled,
        "deleted": user.deleted,
        "default_method": user.default_method.value if user.default_method else None,
    }
    if user.roles:  # only users holding a role carry the key: older snapshots stay byte-identical
        out["roles"] = sorted(user.roles)
    out["phones"] = [
        {"phoneType": p.phone_type.value, "phoneNumber": p.phone_number, "sms": p.sms.value} for p in user.phones
    ]
    return out


def parse_snapshot(data: Any) -> TenantSnapshot:
    """Validate the JSON shape of a snapshot (field types and vocabularies).

    Cross-field rules (unique UPNs, one phone per type, registrations matching phones)
    are the tenant's to check when it loads the snapshot.
    """
    if not isinstance(data, dict):
        raise SnapshotError("snapshot: the top level must be a JSON object")
    _no_unknown_keys(data, _TOP_KEYS, "snapshot")
    if data.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"snapshot: 'format' must be {SNAPSHOT_FORMAT!r}")
    if data.get("version") != SNAPSHOT_VERSION:
        raise SnapshotError(f"snapshot: unsupported 'version' {data.get('version')!r} (expected {SNAPSHOT_VERSION})")
    tenant_id = data.get("tenant_id")
    if not isinstance(tenant_id, str) or not tenant_id:
        raise SnapshotError("snapshot: 'tenant_id' must be a non-empty string")
    users_raw = data.get("users", [])
    if not isinstance(users_raw, list):
        raise SnapshotError("snapshot: 'users' must be a list")
    users = tuple(_parse_user(u, i) for i, u in enumerate(users_raw))
    regs_raw = data.get("sms_registrations")
    registrations: dict[str, str] | None = None
    if regs_raw is not None:
        if not isinstance(regs_raw, dict) or not all(
            isinstance(k, str) and k.isascii() and k.isdigit() and isinstance(v, str) for k, v in regs_raw.items()
        ):
            raise SnapshotError("snapshot: 'sms_registrations' must map digits-only numbers to user ids")
        registrations = {k: v.lower() for k, v in regs_raw.items()}
    policy = data.get("sms_policy")
    if policy is not None and not isinstance(policy, dict):
        raise SnapshotError("snapshot: 'sms_policy' must be an object (smsAuthenticationMethodConfiguration)")
    return TenantSnapshot(
        tenant_id=tenant_id,
        users=users,
        sms_registrations=registrations,
        sms_policy=policy,
        groups=_parse_containers(data.get("groups", []), "groups"),
        administrative_units=_parse_containers(data.get("administrative_units", []), "administrative_units"),
    )


def _parse_containers(raw: Any, key: str) -> tuple[SnapshotContainer, ...]:
    if not isinstance(raw, list):
        raise SnapshotError(f"snapshot: '{key}' must be a list")
    return tuple(_parse_container(c, f"{key}[{i}]") for i, c in enumerate(raw))


def _parse_container(raw: Any, where: str) -> SnapshotContainer:
    if not isinstance(raw, dict):
        raise SnapshotError(f"{where}: must be an object")
    _no_unknown_keys(raw, _CONTAINER_KEYS, where)
    cid, name = raw.get("id"), raw.get("displayName")
    if not isinstance(cid, str) or not cid:
        raise SnapshotError(f"{where}.id: must be a non-empty string (a GUID)")
    if not isinstance(name, str) or not name.strip():
        raise SnapshotError(f"{where}.displayName: must be a non-empty string")
    members = raw.get("members", [])
    if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
        raise SnapshotError(f"{where} ({name}).members: must be a list of user or group ids")
    return SnapshotContainer(id=cid, display_name=name, members=tuple(members))


def _parse_user(raw: Any, index: int) -> SnapshotUser:
    where = f"users[{index}]"
    if not isinstance(raw, dict):
        raise SnapshotError(f"{where}: must be an object")
    _no_unknown_keys(raw, _USER_KEYS, where)
    uid, upn = raw.get("id"), raw.get("upn")
    if not isinstance(uid, str) or not uid:
        raise SnapshotError(f"{where}.id: must be a non-empty string (a GUID)")
    if not isinstance(upn, str) or not upn:
        raise SnapshotError(f"{where}.upn: must be a non-empty string")
    where = f"users[{index}] ({upn})"
    display_name = raw.get("displayName")
    if display_name is not None and not isinstance(display_name, str):
        raise SnapshotError(f"{where}.displayName: must be a string")
    flags = {}
    for key, default in (("accountEnabled", True), ("deleted", False)):
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise SnapshotError(f"{where}.{key}: must be true or false")
        flags[key] = value
    default_method = raw.get("default_method")
    if default_method is not None:
        default_method = _phone_type(default_method, f"{where}.default_method")
    phones_raw = raw.get("phones", [])
    if not isinstance(phones_raw, list):
        raise SnapshotError(f"{where}.phones: must be a list")
    phones = tuple(_parse_phone(p, f"{where}.phones[{i}]") for i, p in enumerate(phones_raw))
    roles_raw = raw.get("roles", [])
    if not isinstance(roles_raw, list) or not all(isinstance(r, str) and r for r in roles_raw):
        raise SnapshotError(f"{where}.roles: must be a list of directory role template ids")
    return SnapshotUser(
        id=uid,
        upn=upn,
        display_name=display_name,
        account_enabled=flags["accountEnabled"],
        deleted=flags["deleted"],
        default_method=default_method,
        phones=phones,
        roles=tuple(sorted({r.lower() for r in roles_raw})),
    )


def _parse_phone(raw: Any, where: str) -> SnapshotPhone:
    if not isinstance(raw, dict):
        raise SnapshotError(f"{where}: must be an object")
    _no_unknown_keys(raw, _PHONE_KEYS, where)
    phone_type = _phone_type(raw.get("phoneType"), f"{where}.phoneType")
    number = raw.get("phoneNumber")
    if not isinstance(number, str) or not any("0" <= c <= "9" for c in number):
        raise SnapshotError(f"{where}.phoneNumber: must be a string containing digits")
    sms_raw = raw.get("sms", SmsRegistration.NONE.value)
    try:
        sms = SmsRegistration(sms_raw)
    except ValueError:
        allowed = ", ".join(s.value for s in SmsRegistration)
        raise SnapshotError(f"{where}.sms: must be one of {allowed}") from None
    if phone_type is not PhoneType.MOBILE and sms is not SmsRegistration.NONE:
        raise SnapshotError(f"{where}.sms: only a mobile phone can take part in SMS sign-in (use 'none')")
    return SnapshotPhone(phone_type=phone_type, phone_number=number, sms=sms)


def _phone_type(value: Any, where: str) -> PhoneType:
    try:
        return PhoneType(value)
    except ValueError:
        raise SnapshotError(f"{where}: must be one of mobile, alternateMobile, office") from None


def _no_unknown_keys(raw: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise SnapshotError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")


__all__ = [
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_VERSION",
    "SmsRegistration",
    "SnapshotContainer",
    "SnapshotError",
    "SnapshotPhone",
    "SnapshotUser",
    "TenantSnapshot",
    "parse_snapshot",
]
