"""Fixtures for the report tests (samples in report_samples.py)."""

from __future__ import annotations

import pytest
from report_samples import sample_rows, summary_for

from provision.report.values import RowResult, RunSummary


@pytest.fixture
def rows() -> list[RowResult]:
    return sample_rows()


@pytest.fixture
def summary(rows: list[RowResult]) -> RunSummary:
    return summary_for(rows)
