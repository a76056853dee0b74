"""The one masking rule: how a number is shown to people, and how a Graph-masked number is recognised."""

from __future__ import annotations

import pytest

from provision.masking import is_masked, mask, mask_in_text


@pytest.mark.parametrize("number", ["+1 XXXXXXX100", "+1 *******100", "+1 xxxxxxx100", "+44 XXXXXXXX58x12"])
def test_graph_masks_are_recognised(number: str) -> None:
    assert is_masked(number)


@pytest.mark.parametrize(
    "number",
    ["+1 2065550100", "+44 2079460958x12", "+12065550100X12", "+1 (206) 555-0100 ext. 12", "+1 2065550100 x 12"],
)
def test_real_numbers_with_any_extension_spelling_are_not_masks(number: str) -> None:
    assert not is_masked(number)


@pytest.mark.parametrize("number", ["+1 2065550100", "+1 206-555-0100", "+12065550100"])
def test_a_number_reads_the_same_alone_and_inside_text(number: str) -> None:
    assert mask(number) == "+1 *******100"
    assert mask_in_text(f"Graph said {number} is taken") == "Graph said +1 *******100 is taken"


def test_our_own_masks_are_recognised_as_masks() -> None:
    # A masked number written to a report and read back by a later run is never diffed against.
    assert is_masked(mask("+1 2065550100"))


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Tel2065550100", "Tel*******100"),
        ("number+12065550100", "number+1 *******100"),
        ("ph:+44 20 7946 0958", "ph:+44 *******958"),
        ("mobile=+12065550100&next", "mobile=+1 *******100&next"),
        ("call 2065550100now", "call *******100now"),
        ("desk +1 2065550100X12", "desk +1 *******100X**"),
        ("desk +1 206 555 0100 Ext. 12", "desk +1 *******100 Ext. **"),
        ("cell(206) 555-0142", "cell(*******142"),
        ("+1 2065550100 then 5 2024-05-01", "+1 *******100 then 5 2024-05-01"),
    ],
)
def test_numbers_glued_to_words_are_masked(text: str, masked: str) -> None:
    assert mask_in_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "request-id 0f5c3a2b-1234-5678-9abc-def012345678",
        "client-request-id: {8A5C2D10-2222-4333-8444-123456789012}",
        "object id 00000000-0000-0000-0000-000000000001",
        "at 2024-05-01T02:00:00.1234567Z and 2024-05-01 02:00:00+02:00",
        "2024-05-01",
        "took 00:01:02.1234567",
        "run dir reports/nightly-20240501T020000Z/run.log",
        "date 01/05/2024 or 1.5.2024 or 2024/05/01",
        "rows 1-200 of 3000",
        "rows 200001-400000 of 1000000",
        "sandbox at http://127.0.0.1:54321/v1.0 from 192.168.100.200",
        "sha256:3f2a9c0012345678901234567890abcdef0123456789abcdef0123456789",
        "throttled 12 times, 3456 operations",
        "sign-in refused (AADSTS7000215 invalid_client), HRESULT 0x80070005 at 0x7f893d6e6410",
    ],
)
def test_ids_dates_and_counts_are_not_masked(text: str) -> None:
    assert mask_in_text(text) == text


def test_a_number_next_to_an_id_is_still_masked() -> None:
    text = "request-id 0f5c3a2b-1234-5678-9abc-def012345678: +1 206 555 0100 is taken at 2024-05-01T02:00:00Z"
    assert mask_in_text(text) == (
        "request-id 0f5c3a2b-1234-5678-9abc-def012345678: +1 *******100 is taken at 2024-05-01T02:00:00Z"
    )


def test_an_extension_in_either_case_keeps_no_digit() -> None:
    assert mask("+12065550100X12") == mask("+1 2065550100x12") == "+1 *******100x**"
    assert is_masked(mask("+12065550100X12"))
    # A Graph mask's x's are no extension, whatever their case.
    assert mask("+1 xxxxxxx100") == mask("+1 XXXXXXX100") == "+1 ***"



def _graph_forms() -> list[str]:
    import phonenumbers

    forms = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                forms.append(f"+{example.country_code} {phonenumbers.national_significant_number(example)}")
    return forms


_NEAR_GRAPH_FORMS = [
    "+01 2065550100", "+1 206555", "+1 2065550", "+999 2065550100", "+1 2065550100x12", "+1  2065550100",
    " +1 2065550100", "+1 2065550100 ", "+1 \uff12\uff10\uff16\uff15\uff15\uff15\uff10\uff11\uff10\uff10",
    "+\uff11 2065550100", "+1 206555010\u00b2", "+ 2065550100", "+1 ", "1 2065550100", "+44 20 7946 0958",
]


def test_graph_forms_are_masked_as_the_general_rule_masks_them() -> None:
    # ``mask`` cuts Graph's own form at its space; every answer must be the general rule's.
    from provision.masking import _mask_any

    for number in [*_graph_forms(), *_NEAR_GRAPH_FORMS]:
        assert mask(number) == _mask_any(number), number
