"""provision.roster.numbers: what people type -> Graph's "+CC NSN[xEXT]", or a stable reason."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from provision.masking import mask
from provision.model import PhoneType
from provision.roster.numbers import canonical_digits, normalise, region_for
from provision.sandbox import tenant


def graph_format_ok(value: str) -> bool:
    """The sandbox's own rule; its regex if the sandbox isn't implemented yet."""
    try:
        return tenant.is_graph_phone_number(value)
    except NotImplementedError:
        return re.fullmatch(tenant.PHONE_NUMBER_PATTERN, value) is not None


@pytest.mark.parametrize(
    ("raw", "region", "phone_type", "graph"),
    [
        ("(206) 555-0100", "US", PhoneType.MOBILE, "+1 2065550100"),
        ("206.555.0100", "US", PhoneType.MOBILE, "+1 2065550100"),
        ("+1 206-555-0100", None, PhoneType.MOBILE, "+1 2065550100"),
        ("011 44 20 7946 0958", "US", PhoneType.OFFICE, "+44 2079460958"),
        ("011 44 20 7946 0958", "GB", PhoneType.OFFICE, "+44 2079460958"),  # 011 typed outside NANP
        ("00 44 20 7946 0958", "US", PhoneType.OFFICE, "+44 2079460958"),  # 00 typed inside NANP
        ("0044 20 7946 0958", None, PhoneType.OFFICE, "+44 2079460958"),
        ("020 7946 0958", "GB", PhoneType.OFFICE, "+44 2079460958"),  # trunk zero
        ("+44 (0)20 7946 0958", None, PhoneType.OFFICE, "+44 2079460958"),
        ("tel:+44-20-7946-0958;ext=12", None, PhoneType.OFFICE, "+44 2079460958x12"),
        ("020 7946 0958 ext. 12", "GB", PhoneType.OFFICE, "+44 2079460958x12"),
        ("020 7946 0958 x12", "GB", PhoneType.OFFICE, "+44 2079460958x12"),
        ("020 7946 0958#12", "GB", PhoneType.OFFICE, "+44 2079460958x12"),
        ("\uff10\uff12\uff10\u3000\uff17\uff19\uff14\uff16\u3000\uff10\uff19\uff15\uff18", "GB", None, "+44 2079460958"),
        ("020\u00a07946\u202f0958", "gb", None, "+44 2079460958"),  # no-break spaces, lower-case region
        ("06 12 34 56 78", "FR", PhoneType.MOBILE, "+33 612345678"),
        ("+39 06 1234 5678", None, PhoneType.OFFICE, "+39 0612345678"),  # Italian leading zero kept
        ("2065550100.0", "US", PhoneType.MOBILE, "+1 2065550100"),  # float written to CSV
    ],
)
def test_typed_forms_become_graph_form(raw: str, region: str | None, phone_type: PhoneType | None, graph: str) -> None:
    result = normalise(raw, region, phone_type)
    assert (result.graph, result.problem) == (graph, None)
    assert graph_format_ok(result.graph)


@pytest.mark.parametrize(
    ("raw", "region", "phone_type", "problem"),
    [
        ("n/a", "US", None, "not_a_number"),
        ("call reception", "GB", None, "not_a_number"),
        ("2.06555E+09", "US", None, "scientific_notation"),
        ("123", "US", None, "too_short"),
        ("+1 206 555 01000000", None, None, "too_long"),
        ("+999 123456", None, None, "invalid_country_code"),
        ("2065550100", None, None, "no_region"),
        ("+61 4 1234 567890", None, None, "invalid_number"),  # no Australian number has 11 digits
        ("+1 011 555 0100", None, None, "invalid_for_region"),  # area codes never start with 0
        ("+1 206 555 0100 x12", None, PhoneType.MOBILE, "extension_not_allowed"),
        ("tel:+1-206-555-0100;ext=12", None, PhoneType.ALTERNATE_MOBILE, "extension_not_allowed"),
        ("+1 206 555 0100 ext 12345678901", None, PhoneType.OFFICE, "extension_too_long"),
    ],
)
def test_unusable_numbers_say_why_without_the_number(
    raw: str, region: str | None, phone_type: PhoneType | None, problem: str
) -> None:
    result = normalise(raw, region, phone_type)
    assert (result.graph, result.problem) == (None, problem)
    assert result.reason
    digits = "".join(c for c in raw if c.isdigit())
    assert len(digits) < 7 or digits[-7:] not in "".join(c for c in result.reason if c.isdigit())


def test_fixed_line_and_toll_free_in_a_mobile_slot_warn_but_stay_usable() -> None:
    fixed = normalise("020 7946 0958", "GB", PhoneType.MOBILE)
    assert (fixed.graph, fixed.warning) == ("+44 2079460958", "fixed_line_in_mobile_slot")
    toll_free = normalise("0800 123 4567", "GB", PhoneType.MOBILE)
    assert (toll_free.graph, toll_free.warning) == ("+44 8001234567", "non_mobile_in_mobile_slot")
    # The same fixed line as an office phone, or a US number (US doesn't tell them apart): no warning.
    assert normalise("020 7946 0958", "GB", PhoneType.OFFICE).warning is None
    assert normalise("(206) 555-0100", "US", PhoneType.MOBILE).warning is None


def test_spreadsheet_number_that_lost_its_plus() -> None:
    # 12 digits are no GB national number, but +44 20 7946 0958 is valid: recovered.
    recovered = normalise("442079460958", "GB", PhoneType.OFFICE, from_number=True)
    assert (recovered.graph, recovered.warning, recovered.problem) == ("+44 2079460958", None, None)
    # With no region at all, the international reading is the only one.
    assert normalise("447911123456", None, PhoneType.MOBILE, from_number=True).graph == "+44 7911123456"
    # Valid both as a US number and as +20 1555 0123 (an Egyptian mobile): kept, flagged.
    both = normalise("2015550123", "US", PhoneType.OFFICE, from_number=True)
    assert (both.graph, both.warning) == ("+1 2015550123", "ambiguous_lost_plus")
    assert normalise("+2015550123", None, PhoneType.OFFICE).graph == "+20 15550123"
    # A text cell is read as typed: the national reading, no doubt raised.
    assert normalise("2015550123", "US", PhoneType.OFFICE) == normalise("201-555-0123", "US", PhoneType.OFFICE)
    assert normalise("2015550123", "US", PhoneType.OFFICE).warning is None


def test_mask_keeps_country_code_and_last_three_digits() -> None:
    assert mask("+1 2065550100") == "+1 *******100"
    assert mask("+12065550100") == "+1 *******100"
    assert mask("+44 2079460958x12") == "+44 *******958x**"
    assert mask("020 7946 0958") == "********958"
    assert mask("0123") == "****"  # too short to show any digit
    assert mask("call reception") == "***"


def test_canonical_digits_compare_graph_spellings() -> None:
    assert canonical_digits("+1 2065550100") == canonical_digits("+12065550100") == "12065550100"
    assert canonical_digits("+1 (206) 555-0100") == "12065550100"
    assert canonical_digits("+1 2065550100x12") == "12065550100x12" != canonical_digits("+1 2065550100")


def test_region_cells() -> None:
    assert [region_for(v) for v in ("gb", "UK", "+44", "1", " de ")] == ["GB", "GB", "GB", "US", "DE"]
    assert region_for("Atlantis") is None


# -- every region and type libphonenumber knows -------------------------------------------

_TYPES = [t for t in PhoneNumberType.values() if t not in (PhoneNumberType.UNKNOWN, PhoneNumberType.FIXED_LINE_OR_MOBILE)]


def _examples() -> list[tuple[str | None, phonenumbers.PhoneNumber]]:
    out: list[tuple[str | None, phonenumbers.PhoneNumber]] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        seen = set()
        for kind in _TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None and number.national_number not in seen:
                seen.add(number.national_number)
                out.append((region, number))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            out.append((None, number))
    return out


EXAMPLES = _examples()
STYLES = (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164, PhoneNumberFormat.RFC3966)


def _expected(number: phonenumbers.PhoneNumber) -> str:
    return f"+{number.country_code} {phonenumbers.national_significant_number(number)}"


def _typed(region: str | None, number: phonenumbers.PhoneNumber, style: int) -> tuple[str, str | None]:
    if region is None and style == PhoneNumberFormat.NATIONAL:
        style = PhoneNumberFormat.INTERNATIONAL  # a non-geographic number has no national form
    return phonenumbers.format_number(number, style), region


def test_every_example_number_in_every_style() -> None:
    assert len(EXAMPLES) > 900  # all regions, several types each
    failures = []
    for region, number in EXAMPLES:
        for style in STYLES:
            text, parse_region = _typed(region, number, style)
            result = normalise(text, parse_region)
            if result.graph != _expected(number) or not graph_format_ok(result.graph):
                failures.append((region, style, result.problem))
    assert failures == []


_NOISE_SEPARATORS = (" ", ".", "-", "  ", "\u00a0", " - ", "/")


@st.composite
def typed_examples(draw: st.DrawFn) -> tuple[str, str | None, str]:
    region, number = draw(st.sampled_from(EXAMPLES))
    style = draw(st.sampled_from(STYLES))
    text, parse_region = _typed(region, number, style)
    if style != PhoneNumberFormat.RFC3966:
        separator = draw(st.sampled_from(_NOISE_SEPARATORS))
        text = re.sub(r"[ \-]", lambda _: separator, text)
        groups = text.split(separator) if separator.strip() or separator == " " else [text]
        if draw(st.booleans()) and len(groups) > 2 and groups[1].isdigit():
            groups[1] = f"({groups[1]})"  # "+44 (20) 7946 0958", "(020) 7946 0958" style
            text = separator.join(groups)
        if draw(st.booleans()):
            text = text.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})  # full-width digits
        text = draw(st.sampled_from(("", " ", "\t", "\u00a0"))) + text + draw(st.sampled_from(("", " ", "\u00a0")))
    if parse_region and draw(st.booleans()):
        parse_region = parse_region.lower()
    return text, parse_region, _expected(number)


@settings(max_examples=400, deadline=None)
@given(typed_examples())
def test_noisy_example_numbers_normalise_to_one_graph_string(case: tuple[str, str | None, str]) -> None:
    text, region, expected = case
    result = normalise(text, region)
    assert (result.graph, result.problem) == (expected, None)
    assert graph_format_ok(result.graph)
