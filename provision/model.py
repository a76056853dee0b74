"""Domain values and closed sets shared by the reader, planner, Graph client, executor and report.

Every closed set the stages agree on lives here, once: phone types and their method ids,
change kinds and their apply order, plan modes, per-user plan decisions, row outcomes,
SMS sign-in states and intents. Everything else is a frozen value: the roster says what
is desired, Graph says what is current, and the planner turns the two into changes. Phone numbers are always held in
Graph's form (``+CC NSN`` or ``+CC NSNxEXT``) once they pass ``provision.roster.numbers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Callable, Mapping, TypeVar

_T = TypeVar("_T")


class PhoneType(StrEnum):
    """Graph's ``authenticationPhoneType``; the value is the wire string."""

    MOBILE = "mobile"
    ALTERNATE_MOBILE = "alternateMobile"
    OFFICE = "office"


# Canonical order: the order creates must happen in (a mobile must exist before an
# alternateMobile), and the column order of every report.
PHONE_TYPES: tuple[PhoneType, ...] = (PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE)

# Graph gives each phone type a fixed method id, identical in every tenant (v1.0 and beta).
METHOD_IDS: Mapping[PhoneType, str] = {
    PhoneType.MOBILE: "3179e48a-750b-4051-897c-87b9720928f7",
    PhoneType.ALTERNATE_MOBILE: "b6332ec1-7057-4abe-9331-3d72feddfe41",
    PhoneType.OFFICE: "e37fc753-ff3b-4958-9484-eaa9425c82bc",
}
PHONE_TYPE_BY_METHOD_ID: Mapping[str, PhoneType] = {v: k for k, v in METHOD_IDS.items()}

# Roster field names for each phone type (job column mapping, reports).
FIELD_BY_PHONE_TYPE: Mapping[PhoneType, str] = {
    PhoneType.MOBILE: "mobile",
    PhoneType.ALTERNATE_MOBILE: "alternate_mobile",
    PhoneType.OFFICE: "office",
}


class ChangeKind(StrEnum):
    """One Graph write the planner can ask for; the value is the journal's and reports' word."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ENABLE_SMS = "enable_sms"
    DISABLE_SMS = "disable_sms"


# The order a user's changes are applied in, and the order reports list kinds in: phone
# writes first (creates/updates go mobile -> alternateMobile -> office, deletes the other way
# round, see provision.planner), then the SMS change, so a refused SMS change can't block them.
CHANGE_KINDS: tuple[ChangeKind, ...] = tuple(ChangeKind)
PHONE_CHANGE_KINDS: frozenset[ChangeKind] = frozenset({ChangeKind.CREATE, ChangeKind.UPDATE, ChangeKind.DELETE})
SMS_CHANGE_KINDS: frozenset[ChangeKind] = frozenset({ChangeKind.ENABLE_SMS, ChangeKind.DISABLE_SMS})
# Phone types in the order deletes must go (an alternateMobile before the mobile it needs).
DELETE_ORDER: tuple[PhoneType, ...] = tuple(reversed(PHONE_TYPES))


class PlanMode(StrEnum):
    """How boldly the roster overrides Graph (the job file's ``mode``)."""

    ADDITIVE = "additive"  # create missing types, update differing numbers, never delete
    FILL_EMPTY = "fill-empty"  # only create where a type is empty
    AUTHORITATIVE = "authoritative"  # roster phones become exact: a blank cell deletes


class UserDecision(StrEnum):
    """What the planner decided for one roster user (``UserPlan.outcome``)."""

    CHANGE = "change"
    NOOP = "noop"
    SKIP = "skip"
    ERROR = "error"


class RowOutcome(StrEnum):
    """A roster row's (or one of its phones') final outcome, from the admin's point of view."""

    APPLIED = "applied"  # every planned change for it succeeded
    UNCHANGED = "unchanged"  # already as desired: nothing to do
    PARTIAL = "partial"  # some changes succeeded, some failed
    FAILED = "failed"  # Graph refused or the change could not be completed
    SKIPPED = "skipped"  # deliberately not touched (masked numbers, user not found, policy...)
    INVALID = "invalid"  # the row itself has errors; nothing was planned for it
    PLANNED = "planned"  # plan only (no apply yet), or the run stopped before reaching it


# Row outcomes that count as "ok" for exit codes and rows_ok.
OK_ROW_OUTCOMES: frozenset[RowOutcome] = frozenset({RowOutcome.APPLIED, RowOutcome.UNCHANGED})


class SmsSignInState(StrEnum):
    """Graph's ``authenticationMethodSignInState`` (read-only, derived by the service)."""

    NOT_SUPPORTED = "notSupported"
    NOT_ALLOWED_BY_POLICY = "notAllowedByPolicy"
    NOT_ENABLED = "notEnabled"
    PHONE_NUMBER_NOT_UNIQUE = "phoneNumberNotUnique"
    READY = "ready"
    NOT_CONFIGURED = "notConfigured"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class SmsIntent(StrEnum):
    """What the job wants for a user's SMS sign-in (job default, overridable per row)."""

    ENABLE = "enable"
    DISABLE = "disable"
    LEAVE = "leave"


class Severity(StrEnum):
    WARNING = "warning"
    ERROR = "error"


class RowStatus(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


def _bulk_maker(cls: type[_T]) -> Callable[..., _T]:
    """``cls``'s values made in bulk, in a third of the dataclass ``__init__``'s time
    (measured; a frozen class pays ``object.__setattr__`` per field): every field positionally, stored into an instance of a plain class with
    the same slots (ordinary attribute stores, no frozen ``__setattr__`` in the way), which
    then becomes a ``cls``. Assigning ``__class__`` between classes of the same slots is
    plain Python, checked by the interpreter (it refuses any other layout). What is made
    is an ordinary ``cls`` value: equal, hashable, frozen and pickled like any other."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]  # a dataclass
    stores = "".join(f"    self.{name} = {name}\n" for name in names)
    env: dict[str, Any] = {"_cls": cls}
    exec(f"def __init__(self, {', '.join(names)}):\n{stores}    self.__class__ = _cls\n", env)  # noqa: S102
    maker: Callable[..., _T] = type(f"{cls.__name__}Maker", (), {"__slots__": tuple(names), "__init__": env["__init__"]})
    return maker


@dataclass(frozen=True, slots=True)
class RowIssue:
    """A problem with one roster row (or one cell of it).

    ``row`` is the row number as a spreadsheet shows it (header is row 1 in a file whose
    header is on the first line). ``code`` is a stable machine-readable reason
    (``invalid_number``, ``duplicate_user_conflict``...), ``reason`` the human sentence.
    Reasons never contain an unmasked phone number.
    """

    row: int
    sheet: str | None
    column: str | None
    severity: Severity
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One data row of the roster file, after parsing; every data row yields exactly one.

    ``key`` is the matching key of the user (trimmed, case-folded UPN or lower-case GUID),
    ``None`` when the user cell is unusable. ``phones`` holds only the phone columns the
    roster has: a type absent from it means "the roster does not speak about this type";
    a ``None`` value means the cell was blank (or invalid, see ``status``).
    ``extra`` carries the passthrough columns for the report.
    """

    row: int
    sheet: str | None
    user: str
    key: str | None
    phones: Mapping[PhoneType, str | None]
    sms_sign_in: bool | None
    status: RowStatus
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DesiredUser:
    """What the roster wants for one user (possibly merged from identical rows).

    ``phones`` follows the same convention as ``RosterRow.phones``: a missing type is
    not managed by this roster; ``None`` is an explicit blank (authoritative mode deletes).
    ``sms_sign_in`` is the per-row override (``None``: use the job's default).
    """

    key: str
    user: str
    phones: Mapping[PhoneType, str | None]
    sms_sign_in: bool | None = None
    rows: tuple[int, ...] = ()


# The roster reader's bulk constructors: the fields in order, all of them.
make_row_issue: Callable[[int, str | None, str | None, Severity, str, str], RowIssue] = _bulk_maker(RowIssue)
make_roster_row: Callable[
    [int, str | None, str, str | None, Mapping[PhoneType, str | None], bool | None, RowStatus, Mapping[str, str]], RosterRow
] = _bulk_maker(RosterRow)
make_desired_user: Callable[
    [str, str, Mapping[PhoneType, str | None], bool | None, tuple[int, ...]], DesiredUser
] = _bulk_maker(DesiredUser)


class ReadStatus(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"  # Graph answered 404 for the user
    FAILED = "failed"  # the read did not succeed (permission, repeated faults...)


@dataclass(frozen=True, slots=True)
class CurrentPhone:
    phone_type: PhoneType
    number: str  # as Graph returned it (may be masked, may be in an older format)
    sms_sign_in_state: SmsSignInState | None = None


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """What Graph has for one roster user at read time."""

    key: str
    status: ReadStatus
    id: str | None = None  # object id when known
    phones: Mapping[PhoneType, CurrentPhone] = field(default_factory=dict)
    masked: bool = False  # numbers were masked by the service: never diff against them
    error_code: str | None = None
    error_message: str | None = None
    http_status: int | None = None  # of a failed read: 403 is a refusal whatever its code says


@dataclass(frozen=True, slots=True)
class SmsPolicy:
    """The tenant's SMS authentication method policy as far as this job could read it.

    ``readable`` is False when the app may not read the policy: then nobody's eligibility
    is known (``allows`` returns None) and the job carries on without that check.
    """

    readable: bool
    enabled: bool = False
    include_all_users: bool = False
    include_ids: frozenset[str] = frozenset()  # user targets with isUsableForSignIn=true
    exclude_ids: frozenset[str] = frozenset()  # user targets
    # Group targets: membership isn't read, so for users they may cover the answer is unknown.
    include_group_ids: frozenset[str] = frozenset()
    exclude_group_ids: frozenset[str] = frozenset()

    def allows(self, user_id: str | None) -> bool | None:
        """Whether policy lets this user sign in with SMS; None when it can't be known."""
        if not self.readable:
            return None
        if not self.enabled:
            return False
        uid = user_id.lower() if user_id is not None else None
        if uid is None and self.exclude_ids:
            return None  # an unknown id may be one of the excluded users
        if uid is not None and uid in self.exclude_ids:
            return False
        if self.include_all_users or (uid is not None and uid in self.include_ids):
            return None if self.exclude_group_ids else True
        if self.include_group_ids or uid is None:
            return None
        return False


UNREADABLE_SMS_POLICY = SmsPolicy(readable=False)
