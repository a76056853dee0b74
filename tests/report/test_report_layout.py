"""The shared cell rules: formula injection, phone-shaped cells, masking, column layout."""

from __future__ import annotations

import pytest

from provision.masking import mask_in_text
from provision.model import RowOutcome
from provision.report.layout import build_layout, mask_phone, neutralise, safe_column, safe_text
from provision.report.values import RowResult


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(1,2)", "'+SUM(1,2)"),
        ("-Finance", "'-Finance"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tsneaky", "'\tsneaky"),
        ("\rx", "'\rx"),
        ("alice@contoso.com", "alice@contoso.com"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_free_text_starting_with_a_formula_trigger_gets_a_quote(value: str, expected: str) -> None:
    assert neutralise(value) == expected
    assert safe_text(value) == expected


@pytest.mark.parametrize(
    "number",
    ["+1 2065550100", "+44 2079460958x12", "+12065550100", "+49 XXXXXXXXX89", "+1 *******100"],
)
def test_phone_cells_in_graph_form_are_left_intact(number: str) -> None:
    assert safe_text(number, phone=True) == number
    # The same text in a free-text column is neutralised: it starts with "+".
    assert safe_text(number) == "'" + number


@pytest.mark.parametrize("value", ["+1 206=cmd|x", "=2+5", "+HYPERLINK(\"x\")", "-1", "+1 2065550100;x"])
def test_phone_cells_not_in_graph_form_are_neutralised(value: str) -> None:
    assert safe_text(value, phone=True) == "'" + value


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+1 2065550100", "+1 *******100"),
        ("+44 2079460958x12", "+44 *******958x**"),
        ("+12065550100", "+1 *******100"),
        (None, ""),
    ],
)
def test_mask_phone_keeps_country_code_and_last_three_digits(number: str | None, masked: str) -> None:
    assert mask_phone(number) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call +1 206-555-0100 now", "call +1 *******100 now"),
        ("(206) 555 0100 ext. 12", "(*******100 ext. **"),
        ("numbers +1 2065550100, +1 2065550101", "numbers +1 *******100, +1 *******101"),
        ("at 2026-11-23T10:00:00Z", "at 2026-11-23T10:00:00Z"),
        ("id 93b6f17e-452a-4535-a601-69e0a90e3aa2", "id 93b6f17e-452a-4535-a601-69e0a90e3aa2"),
        ("rows 1-200 of 3000", "rows 1-200 of 3000"),
        ("user 12345678-1234-1234-1234-123456789012", "user 12345678-1234-1234-1234-123456789012"),
    ],
)
def test_phone_numbers_inside_free_text_are_masked(text: str, masked: str) -> None:
    assert mask_in_text(text) == masked


def test_layout_puts_passthrough_columns_last_and_renames_clashes() -> None:
    rows = [
        RowResult(2, None, "a@x", RowOutcome.APPLIED, extra={"Dept": "1", "user": "clash"}),
        RowResult(3, None, "b@x", RowOutcome.APPLIED, extra={"Cost centre": "2", "Dept": "3"}),
    ]
    names = [c.name for c in build_layout(rows).columns]
    assert names[-3:] == ["Dept", "extra_user", "Cost centre"]
    assert len(names) == len(set(names))


def test_a_whole_column_gets_the_same_rule_as_each_cell() -> None:
    column = ["alice@contoso.com", "=1+1", "", "+1 2065550100", "+1+1", "@x", "a=b", "\tsneaky", "-100"]
    for phone in (False, True):
        assert safe_column(column, phone=phone) == [safe_text(value, phone=phone) for value in column]
    assert safe_column(column, phone=True)[3] == "+1 2065550100" and safe_column(column)[3] == "'+1 2065550100"
