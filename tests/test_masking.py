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
