"""Which roster column holds which field: the job's mapping first, then known headers.

Headers are compared with case, accents, spaces and punctuation ignored, so ``User
Principal Name``, ``userPrincipalName`` and ``USER_PRINCIPAL_NAME`` are one header, and so
are ``Büro``, ``buro`` and ``BURO``. Aliases cover the exports admins actually have:
MSOnline (``UserPrincipalName``, ``PhoneNumber``, ``AlternativePhoneNumber``; Get-MsolUser's
``MobilePhone``, ``PhoneNumber``, ``AlternateMobilePhones``), Active Directory (``mobile``,
``telephoneNumber``, ``c``), plain HR sheets (``UPN``, ``Work Email``, ``Mobile Phone``,
``Cell``, ``Office Tel``, ``Work Phone``, ``Country``) and their German, French, Spanish,
Portuguese, Dutch and Nordic spellings (``Handy``, ``Mobil``, ``Portable``, ``Celular``,
``Telefon``, ``Büro``, ``Téléphone``, ``Land``, ``Pays``, ``País``, ``Courriel``...).

A bare "telephone" in any language (``Telefon``, ``Téléphone``, ``Teléfono``) is the office
phone, never the mobile: HR sheets that mean a mobile say so (``Handy``, ``Portable``,
``Celular``, ``Mobil``).

When several columns match one field, the alias listed first below wins and the others stay
passthrough columns; ``validate`` shows which header each field took. One case is a rule of
its own: MSOnline's ``PhoneNumber`` is the mobile (the MFA phone of a
StrongAuthenticationUserDetails export) unless the file also has an explicit mobile column
such as ``MobilePhone``; then it is a Get-MsolUser export, where ``PhoneNumber`` is the
office phone.
"""

from __future__ import annotations

import re
import unicodedata
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
# the others stay passthrough columns. Keys are ``header_key`` forms (no accents, no case).
# MSOnline's PhoneNumber is the MFA phone (a mobile), listed after the explicit "mobile"
# spellings; it is also the office field's last alias, so a file that has both (a
# Get-MsolUser export: MobilePhone and PhoneNumber) gets it as the office phone.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "user": (
        "user", "userprincipalname", "upn", "objectid", "userid", "username", "signinname",
        "workemail", "workemailaddress", "businessemail", "workmail",
        "email", "emailaddress", "mail", "primarysmtpaddress",
        "emailadresse", "emailadres", "adresseemail", "adressecourriel", "courriel",
        "correoelectronico", "correo",
    ),
    "mobile": (
        "mobile", "mobilephone", "mobilenumber", "mobilephonenumber", "mobileno", "cell", "cellphone",
        "cellnumber", "cellphonenumber",
        # de, nl, nordic, fr, es, pt, it
        "mobil", "mobiltelefon", "mobilnummer", "handy", "handynummer", "mobiel", "mobielnummer",
        "portable", "telephoneportable", "celular", "telefonocelular", "telefonecelular", "movil",
        "telefonomovil", "telemovel", "cellulare",
        "phonenumber", "authenticationphone", "authenticationphonenumber",
    ),
    "alternate_mobile": (
        "alternatemobile", "alternatemobilephone", "alternatemobilephones", "alternativephonenumber",
        "alternatephonenumber", "alternatephone", "alternativephone", "altmobile", "secondarymobile", "mobile2",
        "othermobile", "alternateauthenticationphone",
    ),
    "office": (
        "office", "officephone", "officenumber", "officephonenumber", "officetel", "officetelephone",
        "workphone", "workphonenumber", "worktel", "telephonenumber", "businessphone", "businessphones",
        "deskphone", "landline",
        # a bare "telephone" in any language is the office phone, never the mobile
        "telephone", "tel", "burotelefon", "buerotelefon", "buro", "buero", "telefon", "telefonnummer",
        "festnetz", "bureau", "telephonebureau", "telephoneprofessionnel", "telefono", "telefonofijo",
        "telefone", "telefonefixo", "telefoon", "ufficio",
        "phonenumber",
    ),
    "region": (
        "region", "country", "countrycode", "regioncode", "usagelocation", "c", "countryorregion",
        "land", "pays", "pais", "paese",
    ),
    "sms_sign_in": ("smssignin", "smssigninenabled", "enablesmssignin", "smssignon", "sms"),
}

_NOT_ALNUM = re.compile(r"[\W_]+")
_SHOWN_HEADERS = 15  # in an error message listing the columns found
_SHOWN_CHARS = 32


def header_key(header: str) -> str:
    """The form headers are compared in: case folded, accents dropped (``Büro`` -> ``buro``),
    spaces and punctuation removed."""
    decomposed = unicodedata.normalize("NFKD", header.casefold())
    return _NOT_ALNUM.sub("", "".join(c for c in decomposed if not unicodedata.combining(c)))


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
        earlier = next((f for f, i in index.items() if i == position), None)
        if earlier is not None:  # one column can't be two fields: say so rather than pick one
            raise UsageError(f"the {earlier} and {field_name} fields are both mapped to the column {headers[position]!r}")
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
            f"{', '.join(ALIASES['user'][:8])}...); columns found: {found}; {how_to_map('user')}"
        )
    if not any(f in index for f in PHONE_FIELDS):
        raise RosterReadError(
            "the roster has no phone column (mobile, alternate_mobile or office; looked for e.g. "
            f"Mobile, Cell, PhoneNumber, AlternativePhoneNumber, telephoneNumber, Office Phone); columns found: {found}; "
            f"{how_to_map('mobile')}"
        )
    names = {f: headers[i] for f, i in index.items()}
    extra = tuple((i, _unique_name(headers, i)) for i in range(len(headers)) if i not in taken)
    return ColumnMap(index=index, names=names, extra=extra)


def how_to_map(field_name: str) -> str:
    """The hint that ends a missing-column error: the two ways to name the column."""
    return f'map one with --column {field_name}=HEADER or [roster.columns] {field_name} = "HEADER" in the job'


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
