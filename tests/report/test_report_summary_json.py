"""summary.json: the keys schedulers read, in a stable order, numbers as numbers."""

from __future__ import annotations

import io
import json
from pathlib import Path

from report_samples import summary_for

from provision.report import write_summary_json
from provision.report.values import RowResult, RunSummary

KEYS = [
    "job", "target", "mode", "started", "finished", "duration_s", "status", "resume_command", "exit_code",
    "rows_total", "rows_ok", "rows_failed", "rows_by_outcome", "changes", "changes_done",
    "operations", "throttled", "run_dir",
]


def test_summary_json_keys_order_and_values(tmp_path: Path, summary: RunSummary) -> None:
    path = tmp_path / "summary.json"
    write_summary_json(summary, path)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert list(data) == KEYS
    assert data["job"] == "onboarding" and data["target"] == "sandbox" and data["mode"] == "additive"
    assert data["started"] == "2026-11-23T12:00:00Z" and data["finished"] == "2026-11-23T12:00:20Z"
    assert data["duration_s"] == 20.0 and isinstance(data["duration_s"], float)
    assert data["exit_code"] == 1
    assert data["status"] == "completed" and data["resume_command"] is None
    assert (data["rows_total"], data["rows_ok"], data["rows_failed"]) == (11, 3, 4)
    assert data["rows_by_outcome"] == {"applied": 2, "unchanged": 1, "partial": 1, "failed": 3,
                                       "skipped": 2, "invalid": 1, "planned": 1}
    assert list(data["changes"].items()) == [("create", 5), ("update", 1), ("delete", 2), ("enable_sms", 1)]
    assert data["changes_done"] == {"create": 1, "update": 1, "delete": 1, "enable_sms": 0}
    assert (data["operations"], data["throttled"]) == (90, 6)
    assert data["run_dir"] == "reports/onboarding-20261123T120000Z"
    for key in ("exit_code", "rows_total", "rows_ok", "rows_failed", "operations", "throttled"):
        assert type(data[key]) is int, key
    assert text.endswith("}\n")


def test_summary_json_is_byte_stable_and_fills_missing_counts(rows: list[RowResult]) -> None:
    summary = summary_for(rows, rows_by_outcome={"applied": 4}, changes={"disable_sms": 2, "create": 1},
                          changes_done={"zz_future_kind": 1}, duration_s=1.23456)
    first, second = io.StringIO(), io.StringIO()
    write_summary_json(summary, first)
    write_summary_json(summary, second)
    assert first.getvalue() == second.getvalue()
    data = json.loads(first.getvalue())
    assert data["rows_by_outcome"]["applied"] == 4 and data["rows_by_outcome"]["planned"] == 0
    assert len(data["rows_by_outcome"]) == 7
    # Known kinds in apply order, unknown ones after; every kind in both maps.
    assert list(data["changes"]) == ["create", "disable_sms", "zz_future_kind"]
    assert data["changes"] == {"create": 1, "disable_sms": 2, "zz_future_kind": 0}
    assert data["changes_done"] == {"create": 0, "disable_sms": 0, "zz_future_kind": 1}
    assert data["duration_s"] == 1.235
