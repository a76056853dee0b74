"""Fixtures for the run journal tests."""

from __future__ import annotations

import pytest
from journal_builders import StepClock


@pytest.fixture
def clock() -> StepClock:
    return StepClock()
