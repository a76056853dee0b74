"""write_reports: all four files in the run directory, consistent with each other."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
from report_samples import summary_for

from provision.report import REPORT_FILES, write_reports
from provision.report.values import RowResult, RunSummary


def test_write_reports_writes_every_file(tmp_path: Path, rows: list[RowResult], summary: RunSummary) -> None:
    run_dir = tmp_path / "reports" / "onboarding-20261123T120000Z"
    paths = write_reports(run_dir, rows, summary)
    assert paths == {kind: run_dir / name for kind, name in REPORT_FILES.items()}
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(REPORT_FILES.values())  # no temp files left

    with paths["csv"].open(encoding="utf-8-sig", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    assert openpyxl.load_workbook(paths["xlsx"])["Results"].max_row == len(rows) + 1
    assert json.loads(paths["summary"].read_text(encoding="utf-8"))["rows_total"] == len(rows)
    assert paths["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_write_reports_replaces_an_earlier_render(tmp_path: Path, rows: list[RowResult],
                                                  summary: RunSummary) -> None:
    write_reports(tmp_path, rows, summary)
    paths = write_reports(tmp_path, rows[:2], summary)
    with paths["csv"].open(encoding="utf-8-sig", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 2


def test_write_reports_of_an_empty_roster(tmp_path: Path) -> None:
    summary = summary_for([], exit_code=0, timeline=(), changes={}, changes_done={}, operations=0, throttled=0)
    paths = write_reports(tmp_path, [], summary)
    assert openpyxl.load_workbook(paths["xlsx"])["Results"].max_row == 1
    assert json.loads(paths["summary"].read_text(encoding="utf-8"))["rows_total"] == 0
    assert "The roster had no rows" in paths["html"].read_text(encoding="utf-8")
