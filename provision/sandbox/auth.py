"""Sandbox authentication and authorization, shaped like Microsoft Graph's.

Tokens are JWTs (``header.payload.signature``, base64url). The sandbox never checks the
signature (``alg: none`` is fine) but reads the claims Graph authorizes on:

- ``tid``: tenant id, must be the sandbox tenant's (else 401);
- ``roles``: application permissions (app-only token), or
- ``scp`` (space-separated delegated scopes) plus ``wids`` (directory role template ids);
- ``appid`` (or ``azp``): the throttling key, with ``tid``; ``exp`` (optional, unix seconds).

Each operation accepts a set of permissions (the union of Microsoft's current and older
documentation pages). Delegated callers act on other users, so they also need a directory
role; a delegated caller whose only qualifying role is Authentication Administrator reads
masked phone numbers.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

SANDBOX_TENANT_ID = "00000000-0000-0000-0000-0000000000aa"
SANDBOX_APP_ID = "5a4db0c5-0000-4000-8000-00000000a991"
DEFAULT_APP_ROLES: tuple[str, ...] = (
    "UserAuthenticationMethod.ReadWrite.All",
    "Policy.Read.All",
    "User.ReadWrite.All",
    # a job scoped to groups or administrative units reads their members
    "GroupMember.Read.All",
    "AdministrativeUnit.Read.All",
)

# Directory role template ids (reference §8; User Administrator and Authentication Policy
# Administrator from the Entra permissions reference).
AUTHENTICATION_ADMINISTRATOR = "c4e39bd9-1100-46d3-8c65-fb160da0071f"
PRIVILEGED_AUTHENTICATION_ADMINISTRATOR = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
AUTHENTICATION_POLICY_ADMINISTRATOR = "0526716b-113d-4c15-b2c8-68e3c22b9f80"
# Roles whose holders an Authentication Administrator may still manage (entra-docs
# privileged-roles-permissions, "Who can perform sensitive actions"), with users holding none.
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
GUEST_INVITER = "95e79109-95c0-4d8e-aee3-d01accf2d47b"
MESSAGE_CENTER_READER = "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b"
PASSWORD_ADMINISTRATOR = "966707d0-3269-4727-9be2-8c3a10f19b9d"
REPORTS_READER = "4a5d8f65-41da-4de4-8968-e035b65339cf"
USAGE_SUMMARY_REPORTS_READER = "75934031-6c7e-415a-99d7-48dbd49e875e"

@dataclass(frozen=True, slots=True)
class AuthFailure(Exception):
    """401/403 with Graph's error code."""

    status: int
    code: str
    message: str


# evidence: G31 (401 InvalidAuthenticationToken, as field reports quote it)
def _unauthenticated(message: str) -> AuthFailure:
    return AuthFailure(401, "InvalidAuthenticationToken", message)


# The directory's refusal (/users, the policy route) and the authentication-method
# routes' refusal, which is a different service's.
# evidence: G32 (the directory's 403 shape, documented in the JSON batching example)
FORBIDDEN = AuthFailure(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
# evidence: G32 (msgraph-sdk-go#441, msgraph-sdk-powershell#2602, azure-docs#114024 quote it on these routes)
AUTH_METHODS_FORBIDDEN = AuthFailure(403, "accessDenied", "Request Authorization failed")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as read from the token's claims."""

    tenant_id: str
    app_id: str
    delegated: bool
    permissions: frozenset[str]  # casefolded application roles or delegated scopes
    wids: frozenset[str]  # casefolded directory role template ids (delegated)
    object_id: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class OperationAccess:
    """Who may call one operation."""

    application: frozenset[str]
    delegated: frozenset[str]
    roles: frozenset[str]  # a delegated caller needs one of these in ``wids``
    phone_read: bool = False  # the answer carries phone numbers (masking applies)
    refusal: AuthFailure = FORBIDDEN  # the 403 a caller lacking the permission or role gets


def _perm(*names: str) -> frozenset[str]:
    return frozenset(n.casefold() for n in names)


# Roles that see phone numbers unmasked; Authentication Administrator alone sees them masked.
# evidence: G10 (documented for the Authentication Administrator; the other roles see numbers whole)
_UNMASKED_READ_ROLES = _perm(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, GLOBAL_READER)

_PHONE_READ_APP = _perm(
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-Phone.Read.All",
    "UserAuthMethod-Phone.ReadWrite.All",
)
_PHONE_WRITE_APP = _perm("UserAuthenticationMethod.ReadWrite.All", "UserAuthMethod-Phone.ReadWrite.All")
_PHONE_READ_DELEGATED = _PHONE_READ_APP | _perm(
    "UserAuthenticationMethod.Read",
    "UserAuthenticationMethod.ReadWrite",
    "UserAuthMethod-Phone.Read",
    "UserAuthMethod-Phone.ReadWrite",
)
_PHONE_WRITE_DELEGATED = _PHONE_WRITE_APP | _perm("UserAuthenticationMethod.ReadWrite", "UserAuthMethod-Phone.ReadWrite")
_PHONE_WRITE_ROLES = _perm(AUTHENTICATION_ADMINISTRATOR, PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR)
_PHONE_READ_ROLES = _PHONE_WRITE_ROLES | _perm(GLOBAL_READER)

# evidence: G33 (the policy's get page names Policy.Read.AuthenticationMethod its least-privileged read)
_POLICY_READ = _perm("Policy.Read.All", "Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod")
_POLICY_WRITE = _perm("Policy.ReadWrite.AuthenticationMethod")
_POLICY_READ_ROLES = _perm(AUTHENTICATION_POLICY_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, GLOBAL_READER)
_POLICY_WRITE_ROLES = _perm(AUTHENTICATION_POLICY_ADMINISTRATOR, GLOBAL_ADMINISTRATOR)

_USER_READ = _perm(
    "User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"
)
_USER_WRITE = _perm("User.ReadWrite.All", "Directory.ReadWrite.All")
_USER_DELETE = _USER_WRITE | _perm("User.DeleteRestore.All")
_USER_WRITE_ROLES = _perm(USER_ADMINISTRATOR, GLOBAL_ADMINISTRATOR)
_ANY_MEMBER = frozenset[str]()  # user reads need no directory role
# evidence: G56 (the transitiveMembers and AU member pages' permission tables)
_GROUP_READ = _perm(
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
_ADMIN_UNIT_READ = _perm(
    "AdministrativeUnit.Read.All", "AdministrativeUnit.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"
)

_DENIED = AUTH_METHODS_FORBIDDEN
# A delegated caller holding one of these manages every user's phones; one whose only
# qualifying role is Authentication Administrator manages only users whose roles are all in
# AUTH_ADMIN_MANAGEABLE_ROLES (App-only callers aren't limited: the docs say nothing of them.)
_ANY_TARGET_ROLES = _perm(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR)
# evidence: G34 (permissions reference: Authentication Administrator manages "non-administrators and some roles")
AUTH_ADMIN_MANAGEABLE_ROLES = _perm(
    AUTHENTICATION_ADMINISTRATOR,
    DIRECTORY_READERS,
    GUEST_INVITER,
    MESSAGE_CENTER_READER,
    PASSWORD_ADMINISTRATOR,
    REPORTS_READER,
    USAGE_SUMMARY_REPORTS_READER,
)
_PHONE_WRITES = frozenset(
    {"createPhoneMethod", "updatePhoneMethod", "deletePhoneMethod", "enableSmsSignIn", "disableSmsSignIn"}
)
# evidence: G33 (each operation accepts the union of the current and older pages' permissions)
OPERATION_ACCESS: Mapping[str, OperationAccess] = {
    "listPhoneMethods": OperationAccess(
        _PHONE_READ_APP, _PHONE_READ_DELEGATED, _PHONE_READ_ROLES, phone_read=True, refusal=_DENIED
    ),
    "getPhoneMethod": OperationAccess(
        _PHONE_READ_APP, _PHONE_READ_DELEGATED, _PHONE_READ_ROLES, phone_read=True, refusal=_DENIED
    ),
    "createPhoneMethod": OperationAccess(_PHONE_WRITE_APP, _PHONE_WRITE_DELEGATED, _PHONE_WRITE_ROLES, refusal=_DENIED),
    "updatePhoneMethod": OperationAccess(_PHONE_WRITE_APP, _PHONE_WRITE_DELEGATED, _PHONE_WRITE_ROLES, refusal=_DENIED),
    "deletePhoneMethod": OperationAccess(_PHONE_WRITE_APP, _PHONE_WRITE_DELEGATED, _PHONE_WRITE_ROLES, refusal=_DENIED),
    "enableSmsSignIn": OperationAccess(_PHONE_WRITE_APP, _PHONE_WRITE_DELEGATED, _PHONE_WRITE_ROLES, refusal=_DENIED),
    "disableSmsSignIn": OperationAccess(_PHONE_WRITE_APP, _PHONE_WRITE_DELEGATED, _PHONE_WRITE_ROLES, refusal=_DENIED),
    "getSmsPolicy": OperationAccess(_POLICY_READ, _POLICY_READ, _POLICY_READ_ROLES),
    "updateSmsPolicy": OperationAccess(_POLICY_WRITE, _POLICY_WRITE, _POLICY_WRITE_ROLES),
    "createUser": OperationAccess(_USER_WRITE, _USER_WRITE, _USER_WRITE_ROLES),
    "getUser": OperationAccess(_USER_READ, _USER_READ, _ANY_MEMBER),
    "listUsers": OperationAccess(_USER_READ, _USER_READ, _ANY_MEMBER),
    "listUsersPage": OperationAccess(_USER_READ, _USER_READ, _ANY_MEMBER),
    "deleteUser": OperationAccess(_USER_DELETE, _USER_DELETE, _USER_WRITE_ROLES),
    # evidence: G32 (the directory's 403 Authorization_RequestDenied, the default refusal)
    "listGroups": OperationAccess(_GROUP_READ, _GROUP_READ, _ANY_MEMBER),
    "getGroup": OperationAccess(_GROUP_READ, _GROUP_READ, _ANY_MEMBER),
    "listGroupTransitiveMembers": OperationAccess(_GROUP_READ, _GROUP_READ, _ANY_MEMBER),
    "listAdminUnits": OperationAccess(_ADMIN_UNIT_READ, _ADMIN_UNIT_READ, _ANY_MEMBER),
    "getAdminUnit": OperationAccess(_ADMIN_UNIT_READ, _ADMIN_UNIT_READ, _ANY_MEMBER),
    "listAdminUnitMembers": OperationAccess(_ADMIN_UNIT_READ, _ADMIN_UNIT_READ, _ANY_MEMBER),
}


def authorize(principal: Principal, operation: str) -> bool:
    """Check the caller may run ``operation``; returns True when phone numbers must be masked.

    Raises the operation's refusal when a permission or role is missing: 403 ``accessDenied``
    on authentication-method routes, 403 ``Authorization_RequestDenied`` on directory ones.
    """
    access = OPERATION_ACCESS[operation]
    if not principal.delegated:
        if principal.permissions.isdisjoint(access.application):
            raise access.refusal
        return False
    if principal.permissions.isdisjoint(access.delegated):
        raise access.refusal
    if access.roles and principal.wids.isdisjoint(access.roles):
        raise access.refusal
    return access.phone_read and principal.wids.isdisjoint(_UNMASKED_READ_ROLES)


def limited_to_non_admins(principal: Principal, operation: str) -> bool:
    """Whether this caller (already authorized) may run this phone write only on users whose
    roles are all in ``AUTH_ADMIN_MANAGEABLE_ROLES``: a delegated Authentication
    Administrator without a role that manages every user."""
    # evidence: G34 (the HTTP answer is unpublished: 403 accessDenied, delegated callers only)
    return principal.delegated and operation in _PHONE_WRITES and principal.wids.isdisjoint(_ANY_TARGET_ROLES)


def may_manage(target_roles: frozenset[str]) -> bool:
    """Whether an Authentication Administrator may manage a user holding ``target_roles``."""
    return target_roles <= AUTH_ADMIN_MANAGEABLE_ROLES


# --- tokens ----------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def make_token(
    *,
    roles: Iterable[str] | None = None,
    scp: str | Iterable[str] | None = None,
    wids: Iterable[str] = (),
    tid: str = SANDBOX_TENANT_ID,
    appid: str = SANDBOX_APP_ID,
    oid: str | None = None,
    lifetime_s: float = 24 * 3600,
    now: float | None = None,
) -> str:
    """An unsigned JWT the sandbox accepts.

    With neither ``roles`` nor ``scp``: an application token with DEFAULT_APP_ROLES.
    ``scp`` makes a delegated token (space-separated string or an iterable of scopes).
    """
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "aud": "https://graph.microsoft.com",
        "iss": f"https://sts.windows.net/{tid}/",
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(lifetime_s),
        "tid": tid,
        "appid": appid,
    }
    if scp is not None:
        claims["scp"] = scp if isinstance(scp, str) else " ".join(scp)
        claims["wids"] = list(wids)
        claims["oid"] = oid or "00000000-0000-4000-8000-0000000000d1"
    else:
        claims["roles"] = list(DEFAULT_APP_ROLES if roles is None else roles)
        if oid:
            claims["oid"] = oid
    header = {"alg": "none", "typ": "JWT"}
    return f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}."


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Read the claims Graph authorizes on; raises a 401 AuthFailure when they are unusable."""
    tid = claims.get("tid")
    if not isinstance(tid, str) or not tid:
        raise _unauthenticated("Access token validation failure: the token has no tid claim.")
    app_id = claims.get("appid") or claims.get("azp") or ""
    scp = claims.get("scp")
    roles = claims.get("roles")
    exp = claims.get("exp")
    if exp is not None and (isinstance(exp, bool) or not isinstance(exp, (int, float))):
        raise _unauthenticated("Access token validation failure: exp is not a number.")
    if isinstance(scp, str):
        wids = claims.get("wids") or []
        if not isinstance(wids, list) or not all(isinstance(w, str) for w in wids):
            raise _unauthenticated("Access token validation failure: wids must be a list of strings.")
        return Principal(
            tenant_id=tid.casefold(),
            app_id=str(app_id),
            delegated=True,
            permissions=frozenset(s.casefold() for s in scp.split()),
            wids=frozenset(w.casefold() for w in wids),
            object_id=claims.get("oid"),
            expires_at=exp,
        )
    if roles is None:
        roles = []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise _unauthenticated("Access token validation failure: roles must be a list of strings.")
    return Principal(
        tenant_id=tid.casefold(),
        app_id=str(app_id),
        delegated=False,
        permissions=frozenset(r.casefold() for r in roles),
        wids=frozenset(),
        object_id=claims.get("oid"),
        expires_at=exp,
    )


def decode_token(token: str) -> Principal:
    """Parse a JWT's claims (signature not checked); 401 AuthFailure when it is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise _unauthenticated("IDX14100: JWT is not well formed, there are no dots (.) or too many of them.")
    try:
        header = _b64url_json(parts[0])
        claims = _b64url_json(parts[1])
    except (ValueError, binascii.Error, UnicodeError):
        raise _unauthenticated("IDX14102: Unable to decode the header or payload as Base64Url encoded JSON.") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _unauthenticated("IDX14102: Unable to decode the header or payload as Base64Url encoded JSON.")
    return principal_from_claims(claims)


class Authenticator:
    """Turns an Authorization header into a Principal for the sandbox tenant.

    Decoded tokens are cached (a run reuses one token for thousands of requests); the
    tenant and lifetime checks run on every request.
    """

    _CACHE_SIZE = 256

    def __init__(self, tenant_id: str, *, wall_clock: Any = time.time) -> None:
        self.tenant_id = tenant_id.casefold()
        self._wall_clock = wall_clock
        self._cache: dict[str, Principal] = {}

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise _unauthenticated("Access token is empty.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.casefold() != "bearer" or not token:
            raise _unauthenticated("Access token is empty.")
        principal = self._cache.get(token)
        if principal is None:
            principal = decode_token(token)
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.clear()
            self._cache[token] = principal
        if principal.tenant_id != self.tenant_id:
            raise _unauthenticated("Access token validation failure. Invalid audience or tenant.")
        if principal.expires_at is not None and principal.expires_at < self._wall_clock():
            raise _unauthenticated("Lifetime validation failed, the token is expired.")
        return principal


__all__ = [
    "AUTHENTICATION_ADMINISTRATOR",
    "AUTH_ADMIN_MANAGEABLE_ROLES",
    "AUTH_METHODS_FORBIDDEN",
    "DIRECTORY_READERS",
    "GUEST_INVITER",
    "MESSAGE_CENTER_READER",
    "PASSWORD_ADMINISTRATOR",
    "REPORTS_READER",
    "USAGE_SUMMARY_REPORTS_READER",
    "AUTHENTICATION_POLICY_ADMINISTRATOR",
    "DEFAULT_APP_ROLES",
    "FORBIDDEN",
    "GLOBAL_ADMINISTRATOR",
    "GLOBAL_READER",
    "OPERATION_ACCESS",
    "PRIVILEGED_AUTHENTICATION_ADMINISTRATOR",
    "SANDBOX_APP_ID",
    "SANDBOX_TENANT_ID",
    "USER_ADMINISTRATOR",
    "AuthFailure",
    "Authenticator",
    "OperationAccess",
    "Principal",
    "authorize",
    "decode_token",
    "limited_to_non_admins",
    "make_token",
    "may_manage",
    "principal_from_claims",
]
