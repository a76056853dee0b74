"""The Graph operations the sandbox serves, each as a call into the tenant's rules.

An operation takes the tenant, its path parameters, its decoded request body and whether
phone numbers must be masked, and returns the success status and JSON body (None: no
content); a rule it breaks raises ``TenantError``. A write also names what it changes
(``target``), so the service can count an applied write and spot one repeated by a retry.

The success bodies here are everything an operation says on the wire: a variant in how
numbers are spelled or objects shaped would change them here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import quote

from provision.model import METHOD_IDS, PhoneType
from provision.sandbox.limits import OperationKind
from provision.sandbox.routes import SKIPTOKEN_PREFIX
from provision.sandbox.tenant import Tenant, TenantError

Params = tuple[str, ...]
Handler = Callable[[Tenant, Params, Any, bool], tuple[int, Any]]
Targeter = Callable[[Tenant, Params, Any], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    kind: OperationKind
    handler: Handler
    takes_body: bool = False
    target: Targeter | None = None  # writes: (subject, target) for duplicate detection


def _body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TenantError(400, "BadRequest", "The request body must be a JSON object.")
    return body


# --- handlers --------------------------------------------------------------------------------


# evidence: G13 (the tutorial's list answers carry @odata.context, with the user as addressed)
_PHONES_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#users('{}')/authentication/phoneMethods"


def _phones_context(ref: str) -> str:
    return _PHONES_CONTEXT.format(quote(ref, safe=""))


def _list_phones(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    phones = tenant.list_phones(p[0], masked=masked)
    return 200, {"@odata.context": _phones_context(p[0]), "value": phones}


def _get_phone(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    return 200, tenant.get_phone(p[0], p[1], masked=masked)


# evidence: G11 (create 201 with the object; update, delete, enable and disable 204: documented)
def _create_phone(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    data = _body_object(body)
    return 201, tenant.create_phone(p[0], data.get("phoneNumber"), data.get("phoneType"))


def _update_phone(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    data = _body_object(body)
    tenant.update_phone(p[0], p[1], data.get("phoneNumber"), data.get("phoneType"))
    return 204, None


def _delete_phone(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    tenant.delete_phone(p[0], p[1])
    return 204, None


def _enable_sms(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    tenant.enable_sms_sign_in(p[0], p[1])
    return 204, None


def _disable_sms(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    tenant.disable_sms_sign_in(p[0], p[1])
    return 204, None


def _get_policy(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    return 200, tenant.get_sms_policy()


def _update_policy(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    tenant.update_sms_policy(_body_object(body))
    return 204, None


def _create_user(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    data = _body_object(body)
    enabled = data.get("accountEnabled", True)
    return 201, tenant.create_user(data.get("userPrincipalName"), data.get("displayName"), enabled)


def _get_user(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    return 200, tenant.get_user(p[0])


# The sandbox can't see query options (the HTTP layer drops query strings), so every page
# of GET /users is as long as the longest Graph serves: what $top=999 asks for.
USERS_PAGE_SIZE = 999
_USERS_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName)"


def _users_page(tenant: Tenant, after: str | None, next_prefix: str) -> tuple[int, Any]:
    users, cursor = tenant.list_users(after=after, top=USERS_PAGE_SIZE)
    body: dict[str, Any] = {"@odata.context": _USERS_CONTEXT, "value": users}
    if cursor is not None:
        # Relative to the request's URL: ".../users" -> "users/$skiptoken=..", and from
        # ".../users/$skiptoken=.." -> "$skiptoken=..": both resolve to ".../users/$skiptoken=..".
        body["@odata.nextLink"] = f"{next_prefix}{SKIPTOKEN_PREFIX}{cursor}"
    return 200, body


def _list_users(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    return _users_page(tenant, None, "users/")


def _list_users_page(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    return _users_page(tenant, p[0], "")


# Groups, administrative units and their members: pages of 100 (Graph's default for
# directory objects; no $top reaches here), next links relative like the users list's.
_GROUPS_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#groups(id,displayName)"
_UNITS_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#directory/administrativeUnits(id,displayName)"
_MEMBERS_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"
_CAST_SEGMENTS = {"user": "microsoft.graph.user", "group": "microsoft.graph.group"}
_Page = tuple[list[dict[str, Any]], str | None]


def _cursor(p: Params, at: int) -> str | None:
    """The page cursor the path named at ``p[at]``, None on a first page."""
    return p[at] if len(p) > at else None


def _list_page(context: str, page: _Page, cursor: str | None, first_prefix: str) -> tuple[int, Any]:
    items, next_cursor = page
    body: dict[str, Any] = {"@odata.context": context, "value": items}
    if next_cursor is not None:
        # The first page's link is relative to ".../<last segment>"; a later page's to
        # ".../<last segment>/$skiptoken=..": both resolve to ".../<last segment>/$skiptoken=..".
        prefix = first_prefix if cursor is None else ""
        body["@odata.nextLink"] = f"{prefix}{SKIPTOKEN_PREFIX}{next_cursor}"
    return 200, body


def _list_groups(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    cursor = _cursor(p, 0)
    return _list_page(_GROUPS_CONTEXT, tenant.list_groups(after=cursor), cursor, "groups/")


def _list_units(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    cursor = _cursor(p, 0)
    return _list_page(_UNITS_CONTEXT, tenant.list_admin_units(after=cursor), cursor, "administrativeUnits/")


def _get_group(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    return 200, tenant.get_group(p[0])


def _get_unit(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    return 200, tenant.get_admin_unit(p[0])


def _members_prefix(list_segment: str, cast: str) -> str:
    return f"{_CAST_SEGMENTS[cast]}/" if cast else f"{list_segment}/"


def _group_members(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    cursor = _cursor(p, 2)
    page = tenant.group_transitive_members(p[0], after=cursor, only=p[1] or None)
    return _list_page(_MEMBERS_CONTEXT, page, cursor, _members_prefix("transitiveMembers", p[1]))


def _unit_members(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    cursor = _cursor(p, 2)
    page = tenant.admin_unit_members(p[0], after=cursor, only=p[1] or None)
    return _list_page(_MEMBERS_CONTEXT, page, cursor, _members_prefix("members", p[1]))


def _delete_user(tenant: Tenant, p: Params, body: Any, masked: bool) -> tuple[int, Any]:
    tenant.delete_user(p[0])
    return 204, None


# --- write targets ---------------------------------------------------------------------------


def _user_subject(tenant: Tenant, ref: str) -> str:
    try:
        return str(tenant.get_user(ref)["id"]).casefold()
    except TenantError:
        return ref.casefold()


def _phone_target(tenant: Tenant, p: Params, body: Any) -> tuple[str, str]:
    return _user_subject(tenant, p[0]), p[1].casefold()


def _new_phone_target(tenant: Tenant, p: Params, body: Any) -> tuple[str, str]:
    phone_type = body.get("phoneType") if isinstance(body, dict) else None
    try:
        method_id = METHOD_IDS[PhoneType(phone_type)] if isinstance(phone_type, str) else str(phone_type)
    except ValueError:
        method_id = str(phone_type)
    return _user_subject(tenant, p[0]), method_id


def _new_user_target(tenant: Tenant, p: Params, body: Any) -> tuple[str, str]:
    upn = body.get("userPrincipalName") if isinstance(body, dict) else None
    return "users", str(upn).casefold()


def _user_target(tenant: Tenant, p: Params, body: Any) -> tuple[str, str]:
    return _user_subject(tenant, p[0]), "user"


def _policy_target(tenant: Tenant, p: Params, body: Any) -> tuple[str, str]:
    return "policy", "sms"


R, W = OperationKind.READ, OperationKind.WRITE
_ALL = (
    Operation("listPhoneMethods", R, _list_phones),
    Operation("createPhoneMethod", W, _create_phone, True, _new_phone_target),
    Operation("getPhoneMethod", R, _get_phone),
    Operation("updatePhoneMethod", W, _update_phone, True, _phone_target),
    Operation("deletePhoneMethod", W, _delete_phone, False, _phone_target),
    Operation("enableSmsSignIn", W, _enable_sms, False, _phone_target),
    Operation("disableSmsSignIn", W, _disable_sms, False, _phone_target),
    Operation("getSmsPolicy", R, _get_policy),
    Operation("updateSmsPolicy", W, _update_policy, True, _policy_target),
    Operation("createUser", W, _create_user, True, _new_user_target),
    Operation("getUser", R, _get_user),
    Operation("listUsers", R, _list_users),
    Operation("listUsersPage", R, _list_users_page),
    Operation("deleteUser", W, _delete_user, False, _user_target),
    Operation("listGroups", R, _list_groups),
    Operation("getGroup", R, _get_group),
    Operation("listGroupTransitiveMembers", R, _group_members),
    Operation("listAdminUnits", R, _list_units),
    Operation("getAdminUnit", R, _get_unit),
    Operation("listAdminUnitMembers", R, _unit_members),
)
OPERATIONS: Mapping[str, Operation] = {op.name: op for op in _ALL}


__all__ = ["OPERATIONS", "USERS_PAGE_SIZE", "Handler", "Operation", "Params", "Targeter"]
