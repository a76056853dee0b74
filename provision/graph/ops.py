"""Batch ops for every phone-method operation, and fast parsers for their answers.

Users are addressed by object id or UPN; a UPN is percent-encoded whole
(``quote(upn, safe='')``: ``@`` and ``#`` must not reach the URL raw). Op ids are the
caller's (unique within one batch).
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote

from provision.graph.batch import Op
from provision.model import (
    METHOD_IDS,
    PHONE_TYPE_BY_METHOD_ID,
    CurrentPhone,
    PhoneType,
    SmsPolicy,
    SmsSignInState,
)

SMS_POLICY_URL = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/sms"
# The least-privileged permissions for what the job reads besides phone methods (Microsoft
# Graph permissions reference): the SMS policy, and users' object ids when the policy
# names users (User.ReadBasic.All is enough for ``$select=id``; User.Read.All is the usual grant).
SMS_POLICY_READ_PERMISSION = "Policy.Read.AuthenticationMethod"
USER_ID_READ_PERMISSION = "User.Read.All"

_MOBILE_ID = METHOD_IDS[PhoneType.MOBILE]


def user_url(user: str) -> str:
    return f"/users/{quote(user, safe='')}"


def phones_url(user: str) -> str:
    return f"/users/{quote(user, safe='')}/authentication/phoneMethods"


def phone_url(user: str, phone_type: PhoneType) -> str:
    return f"{phones_url(user)}/{METHOD_IDS[phone_type]}"


def list_phones(id: str, user: str) -> Op:
    return Op(id, "GET", phones_url(user))


def get_phone(id: str, user: str, phone_type: PhoneType) -> Op:
    return Op(id, "GET", phone_url(user, phone_type))


def create_phone(id: str, user: str, phone_type: PhoneType, number: str, *, depends_on: str | None = None) -> Op:
    return Op(id, "POST", phones_url(user), {"phoneNumber": number, "phoneType": phone_type.value}, depends_on)


def update_phone(id: str, user: str, phone_type: PhoneType, number: str, *, depends_on: str | None = None) -> Op:
    return Op(id, "PATCH", phone_url(user, phone_type), {"phoneNumber": number, "phoneType": phone_type.value}, depends_on)


def delete_phone(id: str, user: str, phone_type: PhoneType, *, depends_on: str | None = None) -> Op:
    return Op(id, "DELETE", phone_url(user, phone_type), None, depends_on)


def enable_sms_sign_in(id: str, user: str, *, depends_on: str | None = None) -> Op:
    return Op(id, "POST", f"{phones_url(user)}/{_MOBILE_ID}/enableSmsSignIn", None, depends_on)


def disable_sms_sign_in(id: str, user: str, *, depends_on: str | None = None) -> Op:
    return Op(id, "POST", f"{phones_url(user)}/{_MOBILE_ID}/disableSmsSignIn", None, depends_on)


def get_user(id: str, user: str) -> Op:
    return Op(id, "GET", f"{user_url(user)}?$select=id,userPrincipalName")


def get_sms_policy(id: str) -> Op:
    return Op(id, "GET", SMS_POLICY_URL)


def parse_phone(item: Mapping[str, Any]) -> CurrentPhone | None:
    """A phoneAuthenticationMethod JSON object as a CurrentPhone (None: a type we don't know)."""
    phone_type = _phone_type(item)
    if phone_type is None:
        return None
    state_raw = item.get("smsSignInState")
    try:
        state = SmsSignInState(state_raw) if state_raw is not None else None
    except ValueError:
        state = SmsSignInState.UNKNOWN_FUTURE_VALUE
    return CurrentPhone(phone_type, str(item.get("phoneNumber") or ""), state)


def _phone_type(item: Mapping[str, Any]) -> PhoneType | None:
    """The method's ``phoneType``, else the type its well-known id stands for."""
    raw_type = item.get("phoneType")
    if isinstance(raw_type, str):
        try:
            return PhoneType(raw_type)
        except ValueError:
            pass
    return PHONE_TYPE_BY_METHOD_ID.get(str(item.get("id", "")).lower())


def parse_phone_list(body: Any) -> dict[PhoneType, CurrentPhone]:
    phones: dict[PhoneType, CurrentPhone] = {}
    values = body.get("value") if isinstance(body, dict) else None
    for item in values or ():
        phone = parse_phone(item)
        if phone is not None:
            phones[phone.phone_type] = phone
    return phones


def parse_sms_policy(body: Any) -> SmsPolicy:
    """An smsAuthenticationMethodConfiguration JSON object as our SmsPolicy.

    Only include targets usable for sign-in count; target ids are kept lower-cased, users'
    and groups apart. Group membership is not read: for a user a group target may cover,
    ``SmsPolicy.allows`` answers "unknown" rather than guess.
    """
    if not isinstance(body, dict):
        return SmsPolicy(readable=True)
    include_all = False
    include: set[str] = set()
    include_groups: set[str] = set()
    for target in body.get("includeTargets") or ():
        if not isinstance(target, dict) or not target.get("isUsableForSignIn", False):
            continue
        tid = str(target.get("id", "")).lower()
        if tid == "all_users":
            include_all = True
        elif tid and str(target.get("targetType", "")).lower() == "group":
            include_groups.add(tid)
        elif tid:
            include.add(tid)
    exclude: set[str] = set()
    exclude_groups: set[str] = set()
    for target in body.get("excludeTargets") or ():
        if not isinstance(target, dict) or not target.get("id"):
            continue
        tid = str(target["id"]).lower()
        (exclude_groups if str(target.get("targetType", "")).lower() == "group" else exclude).add(tid)
    return SmsPolicy(
        readable=True,
        enabled=str(body.get("state", "")).lower() == "enabled",
        include_all_users=include_all,
        include_ids=frozenset(include),
        exclude_ids=frozenset(exclude),
        include_group_ids=frozenset(include_groups),
        exclude_group_ids=frozenset(exclude_groups),
    )


def sms_policy_unreadable(status: int, code: str | None, message: str) -> str:
    """Why the SMS policy could not be read, for the plan's remarks: a refusal (401/403)
    names the permission that reads it; eligibility is then unknown for every user."""
    answer = f"{status} {code}" if code else str(status)
    if status in (401, 403):
        return (
            f"can't read the SMS sign-in policy ({answer}: {message}): the credential lacks "
            f"{SMS_POLICY_READ_PERMISSION}; SMS sign-in eligibility is unknown for every user"
        )
    return f"can't read the SMS sign-in policy ({answer}: {message}); SMS sign-in eligibility is unknown for every user"


def user_ids_unreadable(users: int, status: int, code: str | None, message: str) -> str:
    """Why some users' object ids (needed only for the SMS policy's user targets) were not
    read: their SMS sign-in eligibility is unknown, nothing else is affected."""
    answer = f"{status} {code}" if code else str(status)
    cause = f"the credential lacks {USER_ID_READ_PERMISSION}" if status in (401, 403) else "the lookups failed"
    return (
        f"can't read the object ids of {users} user(s) that the SMS sign-in policy may name ({answer}: {message}): "
        f"{cause}; their SMS sign-in eligibility is unknown"
    )


def policy_targets_users(policy: SmsPolicy) -> bool:
    """Whether deciding eligibility needs users' object ids (the policy names individual ids)."""
    return policy.readable and policy.enabled and (bool(policy.include_ids) or bool(policy.exclude_ids))
