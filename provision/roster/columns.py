"""Which roster column holds which field: the job's mapping first, then known headers.

Headers are compared with case, spaces and punctuation ignored, so ``User Principal
Name``, ``userPrincipalName`` and ``USER_PRINCIPAL_NAME`` are one header. Aliases cover
the exports admins actually have: MSOnline (``UserPrincipalName``, ``PhoneNumber``,
``AlternativePhoneNumber``), Active Directory (``mobile``, ``telephoneNumber``, ``c``)
and plain HR sheets (``UPN``, ``Email``, ``Mobile Phone``, ``Work Phone``, ``Country``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from provision.errors import RosterReadError, UsageError
from provision.masking import mask_in_text
from provision.model import PhoneType

FIELDS: tuple[str, ...] = ("user", "mobile", "alternate_mobile", "office", "region", "sms_sign_in")
PHONE_FIELDS: Mapping[str, PhoneType] = {
    "mobile": PhoneType.MOBILE,
    "alternate_mobile": PhoneType.ALTERNATE_MOBILE,
    "office": PhoneType.OFFICE,
}

# In priority order: when a file has several of a field's aliases, the first one wins and
# the others stay passthrough columns. MSOnline's PhoneNumber is the MFA phone (a mobile),
# listed after the explicit "mobile" spellings.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "user": (
        "user", "userprincipalname", "upn", "objectid", "userid", "username", "signinname",
        "email", "emailaddress", "mail", "primarysmtpaddress",
    ),
    "mobile": (
        "mobile", "mobilephone", "mobilenumber", "mobilephonenumber", "cell", "cellphone",
        "cellnumber", "phonenumber", "authenticationphone", "authenticationphonenumber",
    ),
    "alternate_mobile": (
        "alternatemobile", "alternatemobilephone", "alternativephonenumber", "alternatephonenumber",
        "alternatephone", "alternativephone", "altmobile", "secondarymobile", "mobile2",
        "othermobile", "alternateauthenticationphone",
    ),
    "office": (
        "office", "officephone", "officenumber", "officephonenumber", "workphone", "workphonenumber",
        "telephonenumber", "businessphone", "businessphones", "deskphone", "landline",
    ),
    "region": ("region", "country", "countrycode", "regioncode", "usagelocation", "c"),
    "sms_sign_in": ("smssignin", "smssigninenabled", "enablesmssignin", "smssignon", "sms"),
}

_NOT_ALNUM = re.compile(r"[\W_]+")
_SHOWN_HEADERS = 15  # in an error message listing the columns found
_SHOWN_CHARS = 32


def header_key(header: str) -> str:
    return _NOT_ALNUM.sub("", header.casefold())


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Field -> column position and header; every other column is passthrough."""

    index: Mapping[str, int]
    names: Mapping[str, str]
    extra: tuple[tuple[int, str], ...]

    @property
    def phone_fields(self) -> tuple[str, ...]:
        return tuple(f for f in PHONE_FIELDS if f in self.index)


def match_columns(headers: Sequence[str], columns: Mapping[str, str] | None = None) -> ColumnMap:
    """Resolve every field to a column, or raise RosterReadError naming the columns found."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise UsageError(f"unknown roster field(s) {', '.join(unknown)}; fields are {', '.join(FIELDS)}")
    found = _found(headers)
    keys = [header_key(h) for h in headers]
    index: dict[str, int] = {}
    for field_name, header in columns.items():
        position = _find(headers, keys, header)
        if position is None:
            raise RosterReadError(f"the {field_name} column {header!r} is not in the roster; columns found: {found}")
        index[field_name] = position
    taken = set(index.values())
    for field_name in FIELDS:
        if field_name in index:
            continue
        for alias in ALIASES[field_name]:
            position = next((i for i, k in enumerate(keys) if k == alias and i not in taken), None)
            if position is not None:
                index[field_name] = position
                taken.add(position)
                break
    if "user" not in index:
        raise RosterReadError(
            "the roster has no user column (a UPN or object id; looked for "
            f"{', '.join(ALIASES['user'][:6])}...); columns found: {found}"
        )
    if not any(f in index for f in PHONE_FIELDS):
        raise RosterReadError(
            "the roster has no phone column (mobile, alternate_mobile or office; looked for e.g. "
            f"Mobile, PhoneNumber, AlternativePhoneNumber, telephoneNumber, Work Phone); columns found: {found}"
        )
    names = {f: headers[i] for f, i in index.items()}
    extra = tuple((i, _unique_name(headers, i)) for i in range(len(headers)) if i not in taken)
    return ColumnMap(index=index, names=names, extra=extra)


def _found(headers: Sequence[str]) -> str:
    """The headers, for an error message: the first few, each cut short, numbers masked
    (a file without a header row shows its first data row here)."""
    named = [h for h in headers if h]
    if not named:
        return "(none)"
    shown = ", ".join(repr(h if len(h) <= _SHOWN_CHARS else h[: _SHOWN_CHARS - 1] + "…") for h in named[:_SHOWN_HEADERS])
    more = len(named) - _SHOWN_HEADERS
    return mask_in_text(shown + (f" and {more:,} more" if more > 0 else ""))


def _find(headers: Sequence[str], keys: Sequence[str], header: str) -> int | None:
    if header in headers:
        return headers.index(header)
    key = header_key(header)
    return next((i for i, k in enumerate(keys) if k and k == key), None)


def _unique_name(headers: Sequence[str], i: int) -> str:
    name = headers[i] or f"column {i + 1}"
    earlier = sum(1 for h in headers[:i] if h == headers[i])
    return f"{name}.{earlier}" if earlier else name
