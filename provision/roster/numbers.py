"""Phone numbers as people type them, turned into Graph's form, on libphonenumber.

Graph accepts ``+<country code> <national significant number>[x<extension>]`` and
nothing else (``+1 2065550100``, ``+44 2079460958x12``). ``normalise`` turns a roster
cell into that form for any country libphonenumber knows, or says why it can't with a
stable ``problem`` code and a sentence that never repeats the number. Masking numbers for
people to read is ``provision.masking``'s job.

Problem codes: ``not_a_number``, ``scientific_notation``, ``no_region``,
``invalid_country_code``, ``too_short``, ``too_long``, ``invalid_number``,
``invalid_for_region``, ``extension_not_allowed``, ``extension_too_long``.
Warning codes: ``fixed_line_in_mobile_slot``, ``non_mobile_in_mobile_slot``,
``ambiguous_lost_plus``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneMetadata,
    PhoneNumberType,
    ValidationResult,
    phonenumberutil,
)

from provision.masking import fold, mask
from provision.model import PhoneType

__all__ = [
    "NormalisedPhone",
    "canonical_digits",
    "normalise",
    "region_for",
]

# Graph's own limits (see sandbox.tenant.PHONE_NUMBER_PATTERN): NSN <= 14 digits, ext <= 10.
_MAX_EXTENSION_DIGITS = 10

# Types an SMS can't reach; in a mobile slot they are almost certainly a data-entry slip.
_NOT_MOBILE_TYPES = frozenset(
    {
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL,
        PhoneNumberType.PAGER,
    }
)
_MOBILE_SLOTS = frozenset({PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE})
# The number types that fit each column, for a spreadsheet number with two valid readings.
_MOBILE_KINDS = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_FITS: dict[PhoneType, frozenset[int]] = {
    PhoneType.MOBILE: _MOBILE_KINDS,
    PhoneType.ALTERNATE_MOBILE: _MOBILE_KINDS,
    PhoneType.OFFICE: frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.VOIP}),
}

# What Excel writes into a CSV once a long number has been displayed as "2.06555E+09":
# the digits past the sixth are gone for good.
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
# A spreadsheet number written out as a float ("2065550100.0"): the digits are intact.
_FLOAT_TEXT = re.compile(r"(\d+)\.0+")
# International call prefixes people type instead of "+" whatever the row's region is:
# 00 (most of the world) and 011 (North America).
_IDD = re.compile(r"[\s().\-/]*(?:00|011)(?=[\s().\-/]*[1-9])")
_DIGITS = re.compile(r"\d")
_EXTENSION_SPLIT = re.compile(r"(?i)\s*(?:;\s*ext=|ext\.?|extension|x|#)\s*")

_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_REGIONS_BY_CODE = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
# A private helper of the library (see _number_type); None if a release ever drops it.
_type_check: Callable[[str, PhoneMetadata], int] | None = getattr(phonenumberutil, "_number_type_helper", None)
_REGION_ALIASES = {"UK": "GB"}

# libphonenumber compiles its metadata's patterns through ``re.compile`` on every use, a
# lookup in the re module's cache that costs ~9% of a number's normalisation (measured on
# bench.roster_read's numbers: 22.6 -> 20.5 µs per cell). The library's own switch keeps
# them compiled (bounded: the metadata's patterns); releases without it just go slower.
_enable_pattern_cache: Callable[[], None] | None = getattr(phonenumbers.re_util, "enable_pattern_cache", None)
if _enable_pattern_cache is not None:
    _enable_pattern_cache()


@dataclass(frozen=True, slots=True)
class NormalisedPhone:
    """The outcome of normalising one cell.

    ``graph`` is Graph's form, ``None`` when the cell was blank or has a ``problem``.
    ``warning`` is a code for a usable but suspicious number. ``reason`` is a sentence
    for the problem (or else the warning), empty when all is well; it never contains the
    number itself.
    """

    graph: str | None
    problem: str | None = None
    reason: str = ""
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.graph is not None

    @property
    def blank(self) -> bool:
        return self.graph is None and self.problem is None


BLANK = NormalisedPhone(graph=None)


def normalise(
    raw: str,
    region: str | None,
    phone_type: PhoneType | None = None,
    *,
    from_number: bool = False,
) -> NormalisedPhone:
    """Turn a typed phone number into Graph's ``+CC NSN[xEXT]`` form.

    ``region`` is the ISO 3166 alpha-2 code used for numbers written without a country
    code (``None``, or a code libphonenumber doesn't know: only international numbers
    are accepted; check region cells with ``region_for``). ``phone_type`` decides
    whether an extension is allowed (not on mobile/alternateMobile: SMS and mobile calls
    can't dial one) and whether a fixed line in a mobile slot is worth a warning.
    ``from_number`` says the cell was a spreadsheet number, which may have lost its
    leading ``+``: the digits are then also tried as an international number.
    """
    return _normalise_cached(raw, _known_region(region), phone_type, from_number)


def normalise_distinct(
    raw: str,
    region: str | None,
    phone_type: PhoneType | None = None,
    *,
    from_number: bool = False,
) -> NormalisedPhone:
    """``normalise`` without its cache, for cells already made distinct (the roster
    reader's): there the cache would only hold memory and never be hit."""
    return _normalise(raw, _known_region(region), phone_type, from_number)


def _known_region(region: str | None) -> str | None:
    if region:
        region = _REGION_ALIASES.get(region.upper(), region.upper())
        if region in phonenumbers.SUPPORTED_REGIONS:
            return region
    return None


def canonical_digits(number: str) -> str:
    """A comparison key for one number in any of Graph's spellings.

    ``+1 2065550100``, ``+12065550100`` and ``+1 (206) 555-0100`` all give
    ``12065550100``; an extension is kept apart: ``+1 2065550100x12`` -> ``12065550100x12``.
    """
    text = fold(number).strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    parts = _EXTENSION_SPLIT.split(text, maxsplit=1)
    main = "".join(_DIGITS.findall(parts[0]))
    ext = "".join(_DIGITS.findall(parts[1])) if len(parts) > 1 else ""
    return f"{main}x{ext}" if ext else main


def region_for(value: str) -> str | None:
    """The ISO region for a roster's country cell: ``gb``, ``UK``, ``+44`` or ``44``.

    A calling code shared by several regions gives its main one (``+1`` -> ``US``);
    that is all a region is used for here. ``None`` when the value names no region.
    """
    text = fold(value).strip()
    code = text.upper()
    code = _REGION_ALIASES.get(code, code)
    if code in phonenumbers.SUPPORTED_REGIONS:
        return code
    digits = code.removeprefix("+").strip()
    if digits.isdigit() and int(digits) in _COUNTRY_CODES:
        region = phonenumbers.region_code_for_country_code(int(digits))
        return region if region in phonenumbers.SUPPORTED_REGIONS else None
    return None


# -- implementation ---------------------------------------------------------------------


def _normalise(raw: str, region: str | None, phone_type: PhoneType | None, from_number: bool) -> NormalisedPhone:
    text = fold(raw).strip()
    if not text:
        return BLANK
    if ("E" in text or "e" in text) and _SCIENTIFIC.fullmatch(text):
        return _problem(
            "scientific_notation",
            "the cell holds a number in scientific notation (as Excel displays long numbers); its digits are lost",
        )
    as_float = _FLOAT_TEXT.fullmatch(text) if "." in text else None
    if as_float:
        text, from_number = as_float.group(1), True
    if from_number and text.isdigit() and not text.startswith("0"):
        return _lost_plus(text, region, phone_type)
    return _parse(text, region, phone_type)


# The planner and single lookups repeat numbers; the reader's cells are distinct already.
_normalise_cached = lru_cache(maxsize=1 << 16)(_normalise)


def _parse(text: str, region: str | None, phone_type: PhoneType | None) -> NormalisedPhone:
    first = _attempt(text, region, phone_type)
    if first.ok:
        return first
    # "00 44 ..." or "011 44 ..." typed in a region whose own prefix is different.
    idd = _IDD.match(text)
    if idd:
        second = _attempt("+" + text[idd.end() :], None, phone_type)
        if second.ok or second.problem == "extension_not_allowed":
            return second
    return first


def _lost_plus(digits: str, region: str | None, phone_type: PhoneType | None) -> NormalisedPhone:
    """A spreadsheet number: national reading with the row's region, or ``+digits``.

    When both readings are valid and differ, the column decides if exactly one reading
    fits it (a mobile column: the one libphonenumber types as mobile; an office column:
    the one it types as a fixed line); otherwise the national reading is kept with a
    warning naming both (masked).
    """
    international, international_kind = _attempt_typed("+" + digits, None, phone_type)
    if region is None:
        return international if international.ok else _attempt(digits, None, phone_type)
    national, national_kind = _attempt_typed(digits, region, phone_type)
    if not international.ok or national.graph == international.graph:
        return national
    if not national.ok or national.graph is None or international.graph is None:
        return international
    fits = _FITS.get(phone_type) if phone_type is not None else None
    if fits is not None:
        national_fits, international_fits = national_kind in fits, international_kind in fits
        if national_fits != international_fits:
            return national if national_fits else international
    return NormalisedPhone(
        graph=national.graph,
        warning="ambiguous_lost_plus",
        reason=(
            f"the cell is a spreadsheet number that reads both as the {region} number {mask(national.graph)} "
            f"and as {mask(international.graph)} (an international number whose '+' was lost); "
            f"the {region} reading was kept: type the number as text with its + to choose"
        ),
    )


def _attempt(text: str, region: str | None, phone_type: PhoneType | None) -> NormalisedPhone:
    return _attempt_typed(text, region, phone_type)[0]


def _attempt_typed(text: str, region: str | None, phone_type: PhoneType | None) -> tuple[NormalisedPhone, int]:
    """The outcome, and libphonenumber's type for the number (UNKNOWN when it isn't valid)."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return _parse_failure(exc, text, region), PhoneNumberType.UNKNOWN
    # The type is UNKNOWN exactly when is_valid_number() is False; one call does both.
    kind = _number_type(number)
    return _typed(number, kind, phone_type), kind


def _typed(number: phonenumbers.PhoneNumber, kind: int, phone_type: PhoneType | None) -> NormalisedPhone:
    if kind == PhoneNumberType.UNKNOWN:
        return _invalid(number)
    extension = number.extension or ""
    if extension and phone_type in _MOBILE_SLOTS:
        return _problem(
            "extension_not_allowed",
            f"a {phone_type} number can't have an extension (SMS and mobile calls can't dial one)",
        )
    if len(extension) > _MAX_EXTENSION_DIGITS:
        return _problem("extension_too_long", f"the extension has more than {_MAX_EXTENSION_DIGITS} digits")
    graph = f"+{number.country_code} {phonenumbers.national_significant_number(number)}"
    if extension:
        graph = f"{graph}x{extension}"
    if phone_type in _MOBILE_SLOTS:
        if kind == PhoneNumberType.FIXED_LINE:
            return NormalisedPhone(
                graph=graph,
                warning="fixed_line_in_mobile_slot",
                reason=sys.intern(f"the number is a fixed line, not a mobile, so it can't receive SMS ({phone_type} slot)"),
            )
        if kind in _NOT_MOBILE_TYPES:
            return NormalisedPhone(
                graph=graph,
                warning="non_mobile_in_mobile_slot",
                reason=sys.intern(f"the number is a {_kind_name(kind)} number, which can't receive SMS ({phone_type} slot)"),
            )
    return NormalisedPhone(graph=graph)


def _number_type(number: phonenumbers.PhoneNumber) -> int:
    """``phonenumbers.number_type`` without its double work.

    For a calling code shared by several regions (+1, +44, +7, +61...), number_type()
    first finds the region by running the full type check against each candidate, then
    runs the check once more on the region found: half of all the time spent on a +1 or
    +44 number. This is the same walk, keeping the answer of the check that found the
    region. Falls back to the public call if the library's internals ever move.
    """
    if _type_check is None:
        return phonenumbers.number_type(number)
    country_code = number.country_code
    regions = _REGIONS_BY_CODE.get(country_code) if country_code is not None else None
    if country_code is None or not regions:
        return PhoneNumberType.UNKNOWN
    nsn = phonenumbers.national_significant_number(number)
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
        return _type_check(nsn, metadata) if metadata is not None else PhoneNumberType.UNKNOWN
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if _leading_digits(metadata.leading_digits).match(nsn):
                return _type_check(nsn, metadata)
            continue
        kind = _type_check(nsn, metadata)
        if kind != PhoneNumberType.UNKNOWN:
            return kind
    return PhoneNumberType.UNKNOWN


@lru_cache(maxsize=None)
def _leading_digits(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _kind_name(kind: int) -> str:
    return PhoneNumberType.to_string(kind).lower().replace("_", "-")


def _parse_failure(exc: NumberParseException, text: str, region: str | None) -> NormalisedPhone:
    if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
        if region is None and not text.lstrip().startswith(("+", "tel:", "TEL:")):
            return _problem(
                "no_region",
                "the number has no +country code and no region applies to the row (set a region column or a default region)",
            )
        return _problem("invalid_country_code", "the country code is not one in use")
    if exc.error_type in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
        return _problem("too_short", "the number is too short")
    if exc.error_type == NumberParseException.TOO_LONG:
        return _problem("too_long", "the number is too long")
    return _problem("not_a_number", "the cell is not a phone number")


def _invalid(number: phonenumbers.PhoneNumber) -> NormalisedPhone:
    # A parsed number always has a country code; the library's type allows None.
    country_code = number.country_code
    region = phonenumbers.region_code_for_country_code(country_code) if country_code is not None else "ZZ"
    where = f"+{country_code}" if region in ("ZZ", "001") else f"{region} (+{country_code})"
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == ValidationResult.TOO_SHORT:
        return _problem("too_short", f"the number is too short for {where}")
    if reason == ValidationResult.TOO_LONG:
        return _problem("too_long", f"the number is too long for {where}")
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        return _problem("invalid_country_code", "the country code is not one in use")
    if reason == ValidationResult.INVALID_LENGTH:
        return _problem("invalid_number", f"no number in {where} has this length")
    return _problem("invalid_for_region", f"the number has a possible length but is not a valid number in {where}")


def _problem(code: str, reason: str) -> NormalisedPhone:
    # Interned: a million-row roster repeats a few dozen sentences in its issues.
    return NormalisedPhone(graph=None, problem=code, reason=sys.intern(reason))
