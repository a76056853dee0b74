"""The sandbox tenant: users, their phone methods, the SMS policy, and Graph's rules.

Pure state and rules: no HTTP, no sleeping. Time comes from an injected clock (only the
replication-lag rule reads it). Every rule violation raises ``TenantError`` carrying the
HTTP status and Graph error code the HTTP layer will answer with.

Every operation is a handful of dict lookups: the sandbox must serve thousands of
operations per second, so nothing here scans all users.

Error codes Graph's documentation does not pin down (reference §1 "UNVERIFIED") are
answered as 400 ``badRequest``: bad number format, a second phone of an existing type,
an alternateMobile without a mobile, deleting a mobile while an alternateMobile exists,
deleting the default MFA method, changing a phone's type, SMS sign-in not allowed by
policy. Unknown phone method ids are 404 ``itemNotFound``; unknown users 404
``Request_ResourceNotFound`` (the directory's documented shape).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from provision.model import (
    METHOD_IDS,
    PHONE_TYPE_BY_METHOD_ID,
    PHONE_TYPES,
    PhoneType,
    SmsSignInState,
)
from provision.sandbox.groups import MEMBERS_PAGE_SIZE, Container, page_of, transitive_member_ids
from provision.sandbox.snapshot_format import (
    SmsRegistration,
    SnapshotContainer,
    SnapshotError,
    SnapshotPhone,
    SnapshotUser,
    TenantSnapshot,
    parse_snapshot,
)

# Graph's wire format for phone numbers: "+<country code> <number>[x<extension>]".
# Country codes are 1-3 digits and never start with 0; the national number is 4-14
# digits; ASCII digits only (``\d`` would admit other scripts' digits); lower-case ``x``
# only, so a masked number ("+1 XXXXXXXX00") can never pass for a real one.
# ``is_graph_phone_number`` also caps country code + national number at 15 digits (E.164).
# evidence: G08, G09 (the documented "+CC NSN[xEXT]", written and read back spaced)
PHONE_NUMBER_PATTERN = r"\+([1-9][0-9]{0,2}) ([0-9]{4,14})(?:x([0-9]{1,10}))?"
_PHONE_RE = re.compile(PHONE_NUMBER_PATTERN)
_E164_MAX_DIGITS = 15
# The same number without the space ("+14255550100"), which the lenient number format
# accepts: Graph splits off the country code itself (ITU codes are prefix-free).
_UNSPACED_RE = re.compile(r"\+([1-9][0-9]{4,14})(?:x([0-9]{1,10}))?")
_COUNTRY_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)

# Graph's allowed UPN characters: letters, digits, ' . - _ ! # ^ ~ before the @.
_UPN_RE = re.compile(r"[A-Za-z0-9'_!#^~+-]+(?:\.[A-Za-z0-9'_!#^~+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_NON_DIGITS = re.compile(r"[^0-9]")

PHONE_ODATA_TYPE = "#microsoft.graph.phoneAuthenticationMethod"
USER_ODATA_TYPE = "#microsoft.graph.user"
GROUP_ODATA_TYPE = "#microsoft.graph.group"
GROUPS_PAGE_SIZE = 100
SMS_POLICY_ODATA_TYPE = "#microsoft.graph.smsAuthenticationMethodConfiguration"
ALL_USERS = "all_users"
_TARGET_TYPES = frozenset({"group", "user"})
_POLICY_KEYS = frozenset({"@odata.type", "id", "state", "includeTargets", "excludeTargets"})
_INCLUDE_KEYS = frozenset({"@odata.type", "targetType", "id", "isRegistrationRequired", "isUsableForSignIn"})
_EXCLUDE_KEYS = frozenset({"@odata.type", "targetType", "id"})

# evidence: G19 (the message quoted in msgraph-sdk-dotnet#2549; its status and code are unknown)
SMS_NOT_ALLOWED_MESSAGE = "Cannot enable SMS sign-in on phone auth method as the credential policy is not enabled on user"
_FORMAT_MESSAGE = (
    "Invalid phone number format. Use '+<country code> <number>' with an optional 'x<extension>', "
    "for example '+1 5555551234' or '+1 5555551234x123'."
)


def is_graph_phone_number(value: object) -> bool:
    """True when ``value`` is in the format Graph accepts on create/update."""
    if not isinstance(value, str):
        return False
    match = _PHONE_RE.fullmatch(value)
    return match is not None and len(match.group(1)) + len(match.group(2)) <= _E164_MAX_DIGITS


def spaced_phone_number(value: object) -> str | None:
    """``value`` in Graph's format: as given when it is already, "+CC NSN[xEXT]" when it is
    "+CCNSN[xEXT]" with a known country code, else None."""
    # evidence: G08 (field tools send "+CCNSN" and read back "+CC NSN"; the docs say refused)
    if not isinstance(value, str):
        return None
    if is_graph_phone_number(value):
        return value
    match = _UNSPACED_RE.fullmatch(value)
    if match is None:
        return None
    digits, extension = match.group(1), match.group(2)
    for length in (1, 2, 3):
        if digits[:length] in _COUNTRY_CODES:
            spaced = f"+{digits[:length]} {digits[length:]}" + (f"x{extension}" if extension else "")
            return spaced if is_graph_phone_number(spaced) else None
    return None


def sms_key(phone_number: str) -> str:
    """The SMS sign-in system's identity of a number: its digits, without the extension.

    Uniqueness is about the handset an SMS reaches, so formatting and extensions don't
    make two numbers different.
    """
    return _NON_DIGITS.sub("", phone_number.split("x", 1)[0])


def mask_phone_number(phone_number: str) -> str:
    """The number as Graph shows it to an Authentication Administrator: "+1 XXXXXXXX00".

    Keeps the country code and the last two digits of the national number; drops the
    extension. A number not in Graph's format keeps its "+" and last two digits only.
    """
    # evidence: G10 (masking is documented, its format is not: our choice)
    match = _PHONE_RE.fullmatch(phone_number)
    if match is not None:
        nsn = match.group(2)
        return f"+{match.group(1)} {'X' * (len(nsn) - 2)}{nsn[-2:]}"
    digits = sms_key(phone_number)
    prefix = "+" if phone_number.lstrip().startswith("+") else ""
    return prefix + "X" * max(len(digits) - 2, 0) + digits[-2:]


class TenantError(Exception):
    """A rule violation, answered over HTTP as ``status`` with Graph error ``code``.

    ``saved`` is True when the write was applied despite the error (Graph's 409
    phoneNumberNotUnique on a mobile write: the phone is saved, SMS sign-in is not).
    ``message`` never contains a phone number.
    """

    # A plain class rather than a frozen dataclass: frozen instances refuse the attribute
    # writes Python itself makes on exceptions (``add_note``, used by hypothesis).
    def __init__(self, status: int, code: str, message: str, saved: bool = False) -> None:
        super().__init__(status, code, message, saved)
        self.status = status
        self.code = code
        self.message = message
        self.saved = saved

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}" + (" (the write was saved)" if self.saved else "")

    def __repr__(self) -> str:
        return f"TenantError({self.status!r}, {self.code!r}, {self.message!r}, saved={self.saved!r})"


class TenantInvariantError(AssertionError):
    """``Tenant.check_invariants`` found broken invariants (listed in ``violations``)."""

    def __init__(self, violations: list[str]) -> None:
        super().__init__("; ".join(violations))
        self.violations = violations


# evidence: G07 (a rule refusal's status and code are unpublished: 400 badRequest is our choice)
def _bad_request(message: str) -> TenantError:
    return TenantError(400, "badRequest", message)


# evidence: G26 (the directory's 404 Request_ResourceNotFound; unverified on phone routes)
def _user_not_found(ref: str) -> TenantError:
    return TenantError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present.",
    )


# evidence: G26 (the directory's 404 Request_ResourceNotFound, as for users)
def _object_not_found(ref: str) -> TenantError:
    return TenantError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present.",
    )


# evidence: G27 (the answer for an absent method id is unpublished: 404 itemNotFound is our choice)
def _method_not_found(method_id: str) -> TenantError:
    return TenantError(
        404, "itemNotFound", f"The phone authentication method '{method_id}' was not found for this user."
    )


# evidence: G18, G20 (409 phoneNumberNotUnique quoted by RealmJoin; on enable: our choice)
def _not_unique(saved: bool) -> TenantError:
    tail = " The phone was saved; SMS sign-in is not enabled for it." if saved else ""
    return TenantError(
        409,
        "phoneNumberNotUnique",
        "The phone number is already used for SMS sign-in by another user and can't be used as a sign-in name." + tail,
        saved=saved,
    )


# Replica of a mobile as reads see it during replication lag: (number, registration).
_Replica = tuple[str, SmsRegistration]


@dataclass(slots=True)
class _Phone:
    number: str
    sms: SmsRegistration = SmsRegistration.NONE
    # Replication lag: until ``lag_until`` reads see ``replica`` (None: not yet visible).
    lag_until: float | None = None
    replica: _Replica | None = None


@dataclass(slots=True)
class _User:
    id: str
    upn: str
    display_name: str
    account_enabled: bool
    deleted: bool = False
    default_method: PhoneType | None = None
    phones: dict[PhoneType, _Phone] = field(default_factory=dict)
    roles: frozenset[str] = frozenset()  # directory role template ids (lower case)

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userPrincipalName": self.upn,
            "displayName": self.display_name,
            "accountEnabled": self.account_enabled,
        }


@dataclass(frozen=True, slots=True)
class _PolicyView:
    """The SMS policy reduced to what eligibility checks need (O(1) per check)."""

    enabled: bool
    include_all: bool
    include_ids: frozenset[str]
    exclude_all: bool
    exclude_ids: frozenset[str]

    def allows(self, user_id: str) -> bool:
        if not self.enabled or self.exclude_all or user_id in self.exclude_ids:
            return False
        return self.include_all or user_id in self.include_ids


def default_sms_policy() -> dict[str, Any]:
    """A new tenant's SMS policy: enabled for all users, usable for sign-in."""
    # evidence: G23 (the documented policy shape; a new tenant's contents are our choice)
    return {
        "@odata.type": SMS_POLICY_ODATA_TYPE,
        "id": "Sms",
        "state": "enabled",
        "includeTargets": [
            {"targetType": "group", "id": ALL_USERS, "isRegistrationRequired": False, "isUsableForSignIn": True}
        ],
        "excludeTargets": [],
    }


class Tenant:
    """One tenant's directory state.

    Users are addressed by ``ref``: their object id (GUID, any case) or their UPN
    (case-insensitive). Soft-deleted users are invisible (404) but their SMS sign-in
    number stays reserved.

    ``replication_lag_s``: a just-created or just-changed mobile stays invisible to reads
    and to the alternateMobile rule for this long (reads of a changed mobile show the old
    number); writes to the same phone see it at once.

    ``lenient_numbers``: writes accept "+CCNSN" (no space) too and store it as "+CC NSN",
    as field evidence says Graph does; False: only "+CC NSN" (the documented format).
    """

    def __init__(
        self,
        *,
        tenant_id: str = "00000000-0000-0000-0000-0000000000aa",
        clock: Callable[[], float] = time.monotonic,
        replication_lag_s: float = 0.0,
        lenient_numbers: bool = True,
    ) -> None:
        self.tenant_id = tenant_id
        self.clock = clock
        self.replication_lag_s = replication_lag_s
        self.lenient_numbers = lenient_numbers
        self._users: dict[str, _User] = {}  # lower-case id -> user, soft-deleted included
        self._upn_index: dict[str, str] = {}  # case-folded UPN -> id, live users only
        self._sms_registry: dict[str, str] = {}  # sms_key(number) -> user id, soft-deleted included
        self._live_users = 0
        self._phones_by_type: dict[PhoneType, int] = dict.fromkeys(PHONE_TYPES, 0)  # live users only
        self._sms_policy: dict[str, Any] = {}
        self._policy = _PolicyView(False, False, frozenset(), False, frozenset())
        self._set_policy(default_sms_policy())
        self._groups: dict[str, Container] = {}  # lower-case id -> group
        self._admin_units: dict[str, Container] = {}  # lower-case id -> administrative unit
        # A member list is walked once and then paged from this cache; any change to users
        # or memberships empties it (a client pages through a list in a few requests).
        self._member_lists: dict[tuple[str, str | None], list[dict[str, Any]]] = {}

    # users -----------------------------------------------------------------------------
    def create_user(
        self,
        upn: object,
        display_name: object = None,
        account_enabled: object = True,
        *,
        id: str | None = None,
        deleted: bool = False,
    ) -> dict[str, Any]:
        """Graph user JSON (id, userPrincipalName, displayName, accountEnabled). 400
        ``Request_BadRequest`` on a missing/invalid UPN, display name, flag or id, and when
        the UPN (of a live user) or the id (of any user) already exists.

        The values are typed ``object``: they come from request bodies, and checking them is
        this rule's job. ``deleted=True`` adds an already soft-deleted user (snapshots): its
        UPN is free.
        """
        if not isinstance(upn, str) or _UPN_RE.fullmatch(upn) is None:
            raise TenantError(400, "Request_BadRequest", "Invalid value specified for property 'userPrincipalName'.")
        if display_name is None:
            name = upn.split("@", 1)[0]
        elif isinstance(display_name, str) and display_name.strip():
            name = display_name
        else:
            raise TenantError(400, "Request_BadRequest", "Invalid value specified for property 'displayName'.")
        if not isinstance(account_enabled, bool):
            raise TenantError(400, "Request_BadRequest", "Invalid value specified for property 'accountEnabled'.")
        user_id = str(uuid.uuid4()) if id is None else _canonical_guid(id)
        if user_id is None:
            raise TenantError(400, "Request_BadRequest", "Invalid value specified for property 'id'.")
        if upn.casefold() in self._upn_index and not deleted:
            raise TenantError(
                400,
                "Request_BadRequest",
                "Another object with the same value for property userPrincipalName already exists.",
            )
        if user_id in self._users:
            raise TenantError(
                400, "Request_BadRequest", "Another object with the same value for property id already exists."
            )
        user = _User(
            id=user_id,
            upn=upn,
            display_name=name,
            account_enabled=account_enabled,
            deleted=deleted,
        )
        self._users[user_id] = user
        self._member_lists.clear()
        if not deleted:
            self._upn_index[upn.casefold()] = user_id
            self._live_users += 1
        return user.json()

    def get_user(self, ref: str) -> dict[str, Any]:
        return self._resolve(ref).json()

    def list_users(self, *, after: str | None = None, top: int = 999) -> tuple[list[dict[str, Any]], str | None]:
        """A page of live users in creation order (``id`` and ``userPrincipalName``, as
        ``$select=id,userPrincipalName`` returns them), and the cursor of the next page
        (None on the last). ``after``: the previous page's cursor (the id of its last user;
        soft-deleted users keep their place, so a cursor stays valid). 400 for an unknown cursor.
        """
        users = iter(self._users.values())
        if after is not None:
            if after.lower() not in self._users:
                raise _bad_request("The $skiptoken is not valid.")
            for user in users:
                if user.id == after.lower():
                    break
        page: list[dict[str, Any]] = []
        last: str | None = None
        for user in users:
            if user.deleted:
                continue
            if len(page) == top:
                return page, last
            page.append({"id": user.id, "userPrincipalName": user.upn})
            last = user.id
        return page, None

    def delete_user(self, ref: str) -> None:
        """Soft delete (the user's SMS sign-in number stays reserved)."""
        # evidence: G24 (unpublished; RealmJoin suspects deleted users of holding numbers)
        user = self._resolve(ref)
        user.deleted = True
        self._member_lists.clear()
        del self._upn_index[user.upn.casefold()]
        self._live_users -= 1
        for phone_type in user.phones:
            self._phones_by_type[phone_type] -= 1

    def set_default_method(self, ref: str, phone_type: PhoneType | str | None) -> None:
        """Mark which phone type is the user's default MFA method (None: not a phone).

        The sandbox has no other way to choose a default; tests and snapshots use this.
        """
        user = self._resolve(ref)
        user.default_method = None if phone_type is None else self._phone_type(phone_type)

    def set_user_roles(self, ref: str, roles: Iterable[str]) -> None:
        """Give the user these directory roles (template ids); the sandbox has no role API,
        tests and snapshots use this."""
        self._resolve(ref).roles = frozenset(r.lower() for r in roles)

    def user_roles(self, ref: str) -> frozenset[str]:
        """The directory role template ids the user holds (404 for an unknown user)."""
        return self._resolve(ref).roles

    # groups and administrative units ----------------------------------------------------
    # The sandbox has no API to write them: tests and snapshots use these three methods.
    def create_group(self, display_name: str, members: Iterable[str] = (), *, id: str | None = None) -> str:
        """Add a group; returns its id. ``members``: user ids or UPNs, or group ids (nested
        groups; a group added later can join with ``add_members``)."""
        return self._create_container(self._groups, display_name, members, id)

    def create_admin_unit(self, display_name: str, members: Iterable[str] = (), *, id: str | None = None) -> str:
        """Add an administrative unit; returns its id. ``members``: user ids or UPNs, or group ids."""
        return self._create_container(self._admin_units, display_name, members, id)

    def add_members(self, container_id: str, members: Iterable[str]) -> None:
        """Add members (user ids or UPNs, or group ids) to a group or an administrative unit;
        members already in it stay where they are. 404 for an unknown container or member."""
        key = container_id.lower() if isinstance(container_id, str) else ""
        container = self._groups.get(key) or self._admin_units.get(key)
        if container is None:
            raise _object_not_found(str(container_id))
        ids = [self._member_id(m) for m in members]  # all or nothing
        container.members.update(dict.fromkeys(ids))
        self._member_lists.clear()

    def get_group(self, group_id: str) -> dict[str, Any]:
        return self._container(self._groups, group_id).json()

    def get_admin_unit(self, unit_id: str) -> dict[str, Any]:
        return self._container(self._admin_units, unit_id).json()

    def list_groups(self, *, after: str | None = None, top: int = GROUPS_PAGE_SIZE) -> tuple[list[dict[str, Any]], str | None]:
        """A page of groups ({"id", "displayName"}, creation order) and the next page's cursor."""
        return self._page([g.json() for g in self._groups.values()], after, top)

    def list_admin_units(
        self, *, after: str | None = None, top: int = GROUPS_PAGE_SIZE
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of administrative units ({"id", "displayName"}) and the next page's cursor."""
        return self._page([a.json() for a in self._admin_units.values()], after, top)

    def group_transitive_members(
        self, group_id: str, *, after: str | None = None, top: int = MEMBERS_PAGE_SIZE, only: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the group's transitive members: every user reachable through nested
        groups, each once, and the nested groups themselves (``only``: "user" or "group"
        keeps one kind, as a type-cast segment does). Deleted users never appear."""
        group = self._container(self._groups, group_id)
        items = self._member_lists.get((group.id, only))
        if items is None:
            items = self._member_lists[(group.id, only)] = self._member_items(
                transitive_member_ids(self._groups, group), only
            )
        return self._page(items, after, top)

    def admin_unit_members(
        self, unit_id: str, *, after: str | None = None, top: int = MEMBERS_PAGE_SIZE, only: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the administrative unit's *direct* members (users and groups)."""
        unit = self._container(self._admin_units, unit_id)
        items = self._member_lists.get((unit.id, only))
        if items is None:
            items = self._member_lists[(unit.id, only)] = self._member_items(unit.members, only)
        return self._page(items, after, top)

    def group_count(self) -> int:
        return len(self._groups)

    def admin_unit_count(self) -> int:
        return len(self._admin_units)

    def _create_container(
        self, into: dict[str, Container], display_name: str, members: Iterable[str], id: str | None
    ) -> str:
        if not isinstance(display_name, str) or not display_name.strip():
            raise TenantError(400, "Request_BadRequest", "Invalid value specified for property 'displayName'.")
        container_id = str(uuid.uuid4()) if id is None else _canonical_guid(id)
        if container_id is None:
            raise TenantError(400, "Request_BadRequest", "Invalid value specified for property 'id'.")
        if container_id in self._users or container_id in self._groups or container_id in self._admin_units:
            raise TenantError(
                400, "Request_BadRequest", "Another object with the same value for property id already exists."
            )
        ids = [self._member_id(m) for m in members]
        into[container_id] = Container(container_id, display_name, dict.fromkeys(ids))
        self._member_lists.clear()
        return container_id

    def _member_id(self, ref: str) -> str:
        """A member's id: a group's (by id) or a live user's (by id or UPN); 404 otherwise."""
        if isinstance(ref, str) and ref.lower() in self._groups:
            return ref.lower()
        return self._resolve(ref).id

    def _container(self, within: dict[str, Container], ref: str) -> Container:
        container = within.get(ref.lower()) if isinstance(ref, str) else None
        if container is None:
            raise _object_not_found(str(ref))
        return container

    def _member_items(self, ids: Iterable[str], only: str | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for member_id in ids:
            user = self._users.get(member_id)
            if user is not None:
                if not user.deleted and only in (None, "user"):
                    items.append({"@odata.type": USER_ODATA_TYPE, "id": user.id, "userPrincipalName": user.upn})
                continue
            group = self._groups.get(member_id)
            if group is not None and only in (None, "group"):
                items.append({"@odata.type": GROUP_ODATA_TYPE, "id": group.id, "displayName": group.display_name})
        return items

    @staticmethod
    def _page(items: list[dict[str, Any]], after: str | None, top: int) -> tuple[list[dict[str, Any]], str | None]:
        try:
            return page_of(items, after, top)
        except ValueError:
            raise _bad_request("The $skiptoken is not valid.") from None

    # phone methods ---------------------------------------------------------------------
    def list_phones(self, ref: str, *, masked: bool = False) -> list[dict[str, Any]]:
        """phoneAuthenticationMethod JSON objects (id, phoneNumber, phoneType, smsSignInState)."""
        user = self._resolve(ref)
        out = []
        # evidence: G12 (no order is promised; type order, varied by list_order)
        for phone_type in PHONE_TYPES:
            phone = user.phones.get(phone_type)
            view = None if phone is None else self._read_view(phone)
            if view is not None:
                out.append(self._phone_json(user, phone_type, view[0], view[1], masked))
        return out

    def get_phone(self, ref: str, method_id: str, *, masked: bool = False) -> dict[str, Any]:
        user = self._resolve(ref)
        phone_type = self._method_type(method_id)
        phone = user.phones.get(phone_type)
        view = None if phone is None else self._read_view(phone)
        if view is None:
            raise _method_not_found(method_id)
        return self._phone_json(user, phone_type, view[0], view[1], masked)

    def create_phone(self, ref: str, phone_number: Any, phone_type: Any) -> dict[str, Any]:
        """Add a phone; returns the new object (the HTTP layer answers 201).

        A mobile of a policy-enabled user is registered for SMS sign-in at once; when
        another user holds the number the phone is saved anyway and the call raises 409
        ``phoneNumberNotUnique`` with ``saved=True``.
        """
        user = self._resolve(ref)
        if phone_number is None:
            raise _bad_request("The request must include 'phoneNumber'.")
        if phone_type is None:
            raise _bad_request("The request must include 'phoneType'.")
        ptype = self._phone_type(phone_type)
        phone_number = self._accept_number(phone_number)
        if ptype in user.phones:  # evidence: G02 (one phone per type, documented)
            raise _bad_request(
                f"A phone of type '{ptype.value}' already exists for this user: a user can have one phone of each "
                "type. Update the existing phone instead."
            )
        # evidence: G03, G16 (alternateMobile needs a mobile, visible past replication lag)
        if ptype is PhoneType.ALTERNATE_MOBILE and not self._mobile_visible(user):
            raise _bad_request("A user must have a mobile phone before an alternateMobile phone can be added.")
        phone = _Phone(number=phone_number)
        if ptype is PhoneType.MOBILE:
            self._start_lag(phone, None)
        user.phones[ptype] = phone
        self._phones_by_type[ptype] += 1
        # evidence: G17, G18 (a mobile is registered for SMS sign-in; a taken number is saved, then 409)
        if ptype is PhoneType.MOBILE and self._policy.allows(user.id) and not self._register(user, phone):
            raise _not_unique(saved=True)
        return self._phone_json(user, ptype, phone.number, phone.sms, False)

    def update_phone(self, ref: str, method_id: str, phone_number: Any, phone_type: Any = None) -> dict[str, Any]:
        """Change a phone's number (``None``: leave it); its type can't change.

        A changed mobile of a policy-enabled user is re-registered for SMS sign-in (409
        ``phoneNumberNotUnique`` with ``saved=True`` when another user holds the number).
        A change of formatting only (same digits) keeps the registration as it is.
        """
        user = self._resolve(ref)
        ptype = self._method_type(method_id)
        phone = user.phones.get(ptype)
        if phone is None:
            raise _method_not_found(method_id)
        if phone_type is not None and self._phone_type(phone_type) is not ptype:  # evidence: G06 (documented)
            raise _bad_request(
                "You can't change a phone's type. Add a phone of the new type, then delete the original phone."
            )
        if phone_number is not None:
            phone_number = self._accept_number(phone_number)
        # evidence: G15 (a PATCH to the same number is unpublished: 204 and nothing changes)
        if phone_number is None or phone_number == phone.number:
            return self._phone_json(user, ptype, phone.number, phone.sms, False)
        same_handset = sms_key(phone_number) == sms_key(phone.number)
        if ptype is PhoneType.MOBILE:
            self._start_lag(phone, (phone.number, phone.sms))
        if not same_handset:
            self._release(user, phone)
            phone.sms = SmsRegistration.NONE
        phone.number = phone_number
        # evidence: G17, G18 (a changed mobile is re-registered; a taken number is saved, then 409)
        if (
            ptype is PhoneType.MOBILE
            and not same_handset
            and self._policy.allows(user.id)
            and not self._register(user, phone)
        ):
            raise _not_unique(saved=True)
        return self._phone_json(user, ptype, phone.number, phone.sms, False)

    def delete_phone(self, ref: str, method_id: str) -> None:
        user = self._resolve(ref)
        ptype = self._method_type(method_id)
        phone = user.phones.get(ptype)
        if phone is None:
            raise _method_not_found(method_id)
        if ptype is PhoneType.MOBILE and PhoneType.ALTERNATE_MOBILE in user.phones:  # evidence: G04 (documented)
            raise _bad_request(
                "A user can't have an alternateMobile phone without a mobile phone. Update the mobile phone "
                "instead, or delete the alternateMobile phone first."
            )
        if user.default_method is ptype:  # evidence: G05 (documented; the default is set by snapshot)
            raise _bad_request(
                "This phone is the user's default multi-factor authentication method and can't be deleted. "
                "Change the user's default method first."
            )
        self._release(user, phone)
        del user.phones[ptype]
        self._phones_by_type[ptype] -= 1

    def enable_sms_sign_in(self, ref: str, method_id: str) -> None:
        """Register the user's mobile for SMS sign-in (idempotent when already ready)."""
        user = self._resolve(ref)
        phone = self._sms_mobile(user, method_id)
        if not self._policy.allows(user.id):
            # evidence: G19 (refused with the quoted message; 400 badRequest is our choice)
            raise _bad_request(SMS_NOT_ALLOWED_MESSAGE)
        # evidence: G20 (another user's number is refused, 409 is our choice; already ours: a no-op)
        if not self._register(user, phone):
            raise _not_unique(saved=False)

    def disable_sms_sign_in(self, ref: str, method_id: str) -> None:
        """Take the user's mobile out of SMS sign-in; the number is released (notEnabled)."""
        user = self._resolve(ref)
        phone = self._sms_mobile(user, method_id)
        self._release(user, phone)
        phone.sms = SmsRegistration.DISABLED

    # SMS authentication method policy --------------------------------------------------
    def get_sms_policy(self) -> dict[str, Any]:
        policy = self._sms_policy
        return {
            **policy,
            "includeTargets": [dict(t) for t in policy["includeTargets"]],
            "excludeTargets": [dict(t) for t in policy["excludeTargets"]],
        }

    def update_sms_policy(self, patch: dict[str, Any]) -> None:
        """PATCH semantics: the given top-level keys replace the current ones.

        Validated as a whole before anything changes (400 ``badRequest``). Existing
        registrations are kept; eligibility (and so smsSignInState) follows the policy.
        """
        if not isinstance(patch, dict):
            raise _bad_request("The request body must be a smsAuthenticationMethodConfiguration object.")
        unknown = sorted(set(patch) - _POLICY_KEYS)
        if unknown:
            raise _bad_request(f"Unknown or read-only property '{unknown[0]}' in smsAuthenticationMethodConfiguration.")
        merged = {**self._sms_policy, **patch}
        self._set_policy(merged)

    def sms_allowed(self, ref: str) -> bool:
        """Whether the SMS policy lets this user sign in with SMS."""
        return self._policy.allows(self._resolve(ref).id)

    # counts and checks -----------------------------------------------------------------
    def user_count(self, *, include_deleted: bool = False) -> int:
        return len(self._users) if include_deleted else self._live_users

    def phone_count(self, phone_type: PhoneType | None = None) -> int:
        """Phones of live (not soft-deleted) users, of one type or all."""
        if phone_type is None:
            return sum(self._phones_by_type.values())
        return self._phones_by_type[PhoneType(phone_type)]

    def sms_registration_count(self) -> int:
        return len(self._sms_registry)

    def sms_registration_holder(self, phone_number: str) -> str | None:
        """The id of the user (soft-deleted ones included) holding this number for SMS sign-in."""
        return self._sms_registry.get(sms_key(phone_number))

    def counts(self) -> dict[str, int]:
        """Figures for the HTTP layer's stats endpoint."""
        return {
            "users": self._live_users,
            "deleted_users": len(self._users) - self._live_users,
            "phones": self.phone_count(),
            **{f"phones_{t.value}": n for t, n in self._phones_by_type.items()},
            "sms_registrations": len(self._sms_registry),
        }

    def invariant_violations(self) -> list[str]:
        """Every broken invariant, described without phone numbers (empty when sound).

        Scans the whole tenant: meant for tests, not for the request path.
        """
        problems: list[str] = []
        live = 0
        phones = dict.fromkeys(PHONE_TYPES, 0)
        registered: dict[str, str] = {}
        upns: dict[str, str] = {}
        for key, user in self._users.items():
            name = f"user {user.id}"
            if key != user.id:
                problems.append(f"{name}: indexed under another id")
            if not user.deleted:
                live += 1
                folded = user.upn.casefold()
                if folded in upns:
                    problems.append(f"{name}: UPN shared with live user {upns[folded]}")
                upns[folded] = user.id
                if self._upn_index.get(folded) != user.id:
                    problems.append(f"{name}: missing from the UPN index")
            # Keys typed as object: this looks for state broken behind the rules' back.
            stored: Iterable[tuple[object, _Phone]] = user.phones.items()
            for phone_type, phone in stored:
                if not isinstance(phone_type, PhoneType):
                    problems.append(f"{name}: phone stored under a non-type key")
                    continue
                if not user.deleted:
                    phones[phone_type] += 1
                if phone_type is not PhoneType.MOBILE and phone.sms is not SmsRegistration.NONE:
                    problems.append(f"{name}: {phone_type.value} phone has SMS state {phone.sms.value}")
                if phone_type is PhoneType.MOBILE and phone.sms is SmsRegistration.REGISTERED:
                    key_ = sms_key(phone.number)
                    if key_ in registered:
                        problems.append(f"{name}: SMS sign-in number also registered to user {registered[key_]}")
                    registered[key_] = user.id
                    if self._sms_registry.get(key_) != user.id:
                        problems.append(f"{name}: registered mobile missing from the SMS registry")
            if PhoneType.ALTERNATE_MOBILE in user.phones and PhoneType.MOBILE not in user.phones:
                problems.append(f"{name}: alternateMobile without a mobile")
        for key_, holder in self._sms_registry.items():
            if registered.get(key_) != holder:
                problems.append(f"SMS registry entry held by user {holder} matches no registered mobile of that user")
        if len(self._upn_index) != live:
            problems.append("UPN index holds users that are not live")
        if live != self._live_users:
            problems.append(f"live user count {self._live_users} != {live}")
        if phones != self._phones_by_type:
            problems.append("phone counters out of step with the phones")
        for container in (*self._groups.values(), *self._admin_units.values()):
            strays = [m for m in container.members if m not in self._users and m not in self._groups]
            if strays:
                problems.append(f"group or unit {container.id}: {len(strays)} member(s) that are no user or group")
        if self._groups.keys() & self._admin_units.keys() or (self._groups.keys() | self._admin_units.keys()) & self._users.keys():
            problems.append("a group or unit shares its id with another object")
        return problems

    def check_invariants(self) -> None:
        """Raise ``TenantInvariantError`` listing every broken invariant (one phone per
        type, alternateMobile implies mobile, SMS registrations unique and matching their
        mobiles, SMS states only on mobiles, indexes and counters consistent)."""
        problems = self.invariant_violations()
        if problems:
            raise TenantInvariantError(problems)

    # snapshots -------------------------------------------------------------------------
    def to_snapshot(self) -> dict[str, Any]:
        users = tuple(
            SnapshotUser(
                id=u.id,
                upn=u.upn,
                display_name=u.display_name,
                account_enabled=u.account_enabled,
                deleted=u.deleted,
                default_method=u.default_method,
                roles=tuple(sorted(u.roles)),
                phones=tuple(
                    SnapshotPhone(phone_type=t, phone_number=u.phones[t].number, sms=u.phones[t].sms)
                    for t in PHONE_TYPES
                    if t in u.phones
                ),
            )
            for u in self._users.values()
        )
        return TenantSnapshot(
            tenant_id=self.tenant_id,
            users=users,
            sms_registrations=dict(self._sms_registry),
            sms_policy=self.get_sms_policy(),
            groups=tuple(_snapshot_container(g) for g in self._groups.values()),
            administrative_units=tuple(_snapshot_container(a) for a in self._admin_units.values()),
        ).to_json()

    @classmethod
    def from_snapshot(
        cls,
        data: dict[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        replication_lag_s: float = 0.0,
        lenient_numbers: bool = True,
    ) -> "Tenant":
        """A tenant holding the snapshot's state; ``SnapshotError`` when it breaks a rule."""
        snap = parse_snapshot(data)
        tenant = cls(
            tenant_id=snap.tenant_id, clock=clock, replication_lag_s=replication_lag_s, lenient_numbers=lenient_numbers
        )
        if snap.sms_policy is not None:
            try:
                tenant._set_policy({**default_sms_policy(), **snap.sms_policy})
            except TenantError as exc:
                raise SnapshotError(f"sms_policy: {exc.message}") from None
        for index, raw in enumerate(snap.users):
            tenant._load_user(raw, f"users[{index}] ({raw.upn})")
        if snap.sms_registrations is not None and dict(snap.sms_registrations) != tenant._sms_registry:
            raise SnapshotError(
                "sms_registrations: must list exactly the mobiles whose sms is 'registered' "
                "(digits-only number -> user id); leave it out to derive it"
            )
        tenant._load_containers(snap.groups, snap.administrative_units)
        return tenant

    def _load_containers(self, groups: Iterable[SnapshotContainer], units: Iterable[SnapshotContainer]) -> None:
        """Groups first (all of them: a group may nest one listed after it), then their
        members, then the administrative units. Members are ids of any user (a soft-deleted
        one is kept, never listed) or of a group."""
        loaded: list[tuple[str, SnapshotContainer, Container]] = []
        for key, within, raws in (("groups", self._groups, groups), ("administrative_units", self._admin_units, units)):
            for index, raw in enumerate(raws):
                where = f"{key}[{index}] ({raw.display_name})"
                try:
                    container_id = self._create_container(within, raw.display_name, (), raw.id)
                except TenantError as exc:
                    raise SnapshotError(f"{where}: {exc.message}") from None
                loaded.append((where, raw, within[container_id]))
        for where, raw, container in loaded:
            for member in raw.members:
                member_id = member.lower()
                if member_id not in self._users and member_id not in self._groups:
                    raise SnapshotError(f"{where}.members: '{member}' is no user's or group's id")
                container.members[member_id] = None
        self._member_lists.clear()

    def _load_user(self, raw: SnapshotUser, where: str) -> None:
        try:
            created = self.create_user(raw.upn, raw.display_name, raw.account_enabled, id=raw.id, deleted=raw.deleted)
        except TenantError as exc:
            raise SnapshotError(f"{where}: {exc.message}") from None
        user = self._users[created["id"]]
        user.default_method = raw.default_method
        user.roles = frozenset(raw.roles)
        for p in raw.phones:
            if p.phone_type in user.phones:
                raise SnapshotError(f"{where}: more than one {p.phone_type.value} phone")
            user.phones[p.phone_type] = _Phone(number=p.phone_number, sms=p.sms)
            if not user.deleted:
                self._phones_by_type[p.phone_type] += 1
            if p.sms is SmsRegistration.REGISTERED:
                key = sms_key(p.phone_number)
                holder = self._sms_registry.get(key)
                if holder is not None:
                    raise SnapshotError(f"{where}: SMS sign-in number already registered to user {holder}")
                self._sms_registry[key] = user.id
        if PhoneType.ALTERNATE_MOBILE in user.phones and PhoneType.MOBILE not in user.phones:
            raise SnapshotError(f"{where}: an alternateMobile phone needs a mobile phone")

    # internals -------------------------------------------------------------------------
    def _resolve(self, ref: str) -> _User:
        # evidence: G25 (object id or UPN, documented; case-insensitive both ways)
        if isinstance(ref, str):
            user = self._users.get(ref.lower())
            if user is None:
                user_id = self._upn_index.get(ref.casefold())
                user = None if user_id is None else self._users[user_id]
            if user is not None and not user.deleted:
                return user
        raise _user_not_found(str(ref))

    @staticmethod
    def _phone_type(value: Any) -> PhoneType:
        try:
            return PhoneType(value)
        except ValueError:
            raise _bad_request("Invalid value for 'phoneType': expected mobile, alternateMobile or office.") from None

    @staticmethod
    def _method_type(method_id: Any) -> PhoneType:
        phone_type = PHONE_TYPE_BY_METHOD_ID.get(method_id.lower()) if isinstance(method_id, str) else None
        if phone_type is None:
            raise _method_not_found(str(method_id))
        return phone_type

    def _accept_number(self, value: Any) -> str:
        """The number as stored, or 400 when this tenant's number format refuses it."""
        # evidence: G08 (lenient by default: field tools write "+CCNSN"; strict is the documented form)
        stored = spaced_phone_number(value) if self.lenient_numbers else value
        if not is_graph_phone_number(stored):
            raise _bad_request(_FORMAT_MESSAGE)
        return str(stored)

    def _sms_mobile(self, user: _User, method_id: Any) -> _Phone:
        # evidence: G21 (mobile only, documented; 400 for another id and 404 with no mobile: our choice)
        if not isinstance(method_id, str) or method_id.lower() != METHOD_IDS[PhoneType.MOBILE]:
            raise _bad_request("SMS sign-in can only be enabled or disabled on the mobile phone method.")
        phone = user.phones.get(PhoneType.MOBILE)
        if phone is None:
            raise _method_not_found(method_id)
        return phone

    def _register(self, user: _User, phone: _Phone) -> bool:
        """Try to make the mobile the user's SMS sign-in name; False when the number is taken."""
        key = sms_key(phone.number)
        holder = self._sms_registry.get(key)
        if holder is not None and holder != user.id:
            phone.sms = SmsRegistration.NOT_UNIQUE
            return False
        self._sms_registry[key] = user.id
        phone.sms = SmsRegistration.REGISTERED
        return True

    def _release(self, user: _User, phone: _Phone) -> None:
        if phone.sms is SmsRegistration.REGISTERED:
            key = sms_key(phone.number)
            if self._sms_registry.get(key) == user.id:
                del self._sms_registry[key]

    def _start_lag(self, phone: _Phone, before: _Replica | None) -> None:
        """Hide a write from reads for ``replication_lag_s``.

        While a lag is running, later writes extend it and keep the replica reads already
        see (the state before the first unreplicated write).
        """
        # evidence: G16 (replication delay unpublished: none unless the profile sets one)
        if self.replication_lag_s <= 0:
            return
        now = self.clock()
        if phone.lag_until is None or now >= phone.lag_until:
            phone.replica = before
        phone.lag_until = now + self.replication_lag_s

    def _read_view(self, phone: _Phone) -> _Replica | None:
        if phone.lag_until is not None:
            if self.clock() < phone.lag_until:
                return phone.replica
            phone.lag_until = None
            phone.replica = None
        return phone.number, phone.sms

    def _mobile_visible(self, user: _User) -> bool:
        mobile = user.phones.get(PhoneType.MOBILE)
        return mobile is not None and self._read_view(mobile) is not None

    def _phone_json(
        self, user: _User, phone_type: PhoneType, number: str, sms: SmsRegistration, masked: bool
    ) -> dict[str, Any]:
        return {
            "@odata.type": PHONE_ODATA_TYPE,
            "id": METHOD_IDS[phone_type],  # evidence: G01 (one fixed, documented id per phone type)
            "phoneNumber": mask_phone_number(number) if masked else number,
            "phoneType": phone_type.value,
            "smsSignInState": self._sms_state(user, phone_type, sms).value,
        }

    def _sms_state(self, user: _User, phone_type: PhoneType, sms: SmsRegistration) -> SmsSignInState:
        # evidence: G22 (documented values; which follows which is our choice)
        if phone_type is not PhoneType.MOBILE:
            return SmsSignInState.NOT_SUPPORTED
        if not self._policy.allows(user.id):
            return SmsSignInState.NOT_ALLOWED_BY_POLICY
        return _STATE_BY_REGISTRATION[sms]

    def _set_policy(self, policy: dict[str, Any]) -> None:
        """Validate a whole policy object, then make it current (all or nothing)."""
        odata_type = policy.get("@odata.type", SMS_POLICY_ODATA_TYPE)
        if odata_type != SMS_POLICY_ODATA_TYPE:
            raise _bad_request(f"'@odata.type' must be '{SMS_POLICY_ODATA_TYPE}'.")
        policy_id = policy.get("id", "Sms")
        if not isinstance(policy_id, str) or policy_id.lower() != "sms":
            raise _bad_request("'id' of the SMS method configuration is 'Sms' and can't be changed.")
        state = policy.get("state")
        if state not in ("enabled", "disabled"):
            raise _bad_request("Invalid value for 'state': expected enabled or disabled.")
        includes = [_include_target(t) for t in _target_list(policy.get("includeTargets"), "includeTargets")]
        excludes = [_exclude_target(t) for t in _target_list(policy.get("excludeTargets"), "excludeTargets")]
        usable = {t["id"] for t in includes if t["isUsableForSignIn"]}
        excluded = {t["id"] for t in excludes}
        self._sms_policy = {
            "@odata.type": SMS_POLICY_ODATA_TYPE,
            "id": "Sms",
            "state": state,
            "includeTargets": includes,
            "excludeTargets": excludes,
        }
        self._policy = _PolicyView(
            enabled=state == "enabled",
            include_all=ALL_USERS in usable,
            include_ids=frozenset(usable - {ALL_USERS}),
            exclude_all=ALL_USERS in excluded,
            exclude_ids=frozenset(excluded - {ALL_USERS}),
        )


# evidence: G22 (after a disable notEnabled, never registered notConfigured: our choice)
_STATE_BY_REGISTRATION = {
    SmsRegistration.REGISTERED: SmsSignInState.READY,
    SmsRegistration.NOT_UNIQUE: SmsSignInState.PHONE_NUMBER_NOT_UNIQUE,
    SmsRegistration.DISABLED: SmsSignInState.NOT_ENABLED,
    SmsRegistration.NONE: SmsSignInState.NOT_CONFIGURED,
}


def _snapshot_container(container: Container) -> SnapshotContainer:
    return SnapshotContainer(id=container.id, display_name=container.display_name, members=tuple(container.members))


def _canonical_guid(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _target_list(value: Any, name: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise _bad_request(f"'{name}' must be a list of target objects.")
    return value


def _target_id_and_type(target: dict[str, Any], allowed: frozenset[str]) -> tuple[str, str]:
    unknown = sorted(set(target) - allowed)
    if unknown:
        raise _bad_request(f"Unknown property '{unknown[0]}' in an SMS policy target.")
    target_type = target.get("targetType")
    if target_type not in _TARGET_TYPES:
        raise _bad_request("Invalid value for 'targetType': expected group or user.")
    target_id = target.get("id")
    if target_id == ALL_USERS:
        return ALL_USERS, target_type
    guid = _canonical_guid(target_id)
    if guid is None:
        raise _bad_request("Invalid target 'id': expected 'all_users' or an object id (GUID).")
    return guid, target_type


def _include_target(target: dict[str, Any]) -> dict[str, Any]:
    target_id, target_type = _target_id_and_type(target, _INCLUDE_KEYS)
    flags = {}
    for key, default in (("isRegistrationRequired", False), ("isUsableForSignIn", True)):
        value = target.get(key, default)
        if not isinstance(value, bool):
            raise _bad_request(f"Invalid value for '{key}': expected true or false.")
        flags[key] = value
    return {"targetType": target_type, "id": target_id, **flags}


def _exclude_target(target: dict[str, Any]) -> dict[str, Any]:
    target_id, target_type = _target_id_and_type(target, _EXCLUDE_KEYS)
    return {"targetType": target_type, "id": target_id}


__all__ = [
    "ALL_USERS",
    "GROUPS_PAGE_SIZE",
    "GROUP_ODATA_TYPE",
    "USER_ODATA_TYPE",
    "PHONE_NUMBER_PATTERN",
    "SMS_NOT_ALLOWED_MESSAGE",
    "PhoneType",
    "SmsRegistration",
    "Tenant",
    "TenantError",
    "TenantInvariantError",
    "default_sms_policy",
    "is_graph_phone_number",
    "mask_phone_number",
    "sms_key",
    "spaced_phone_number",
]
