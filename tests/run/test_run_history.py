"""run.history: the latest finished run of the same job and target, and its usable rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provision.run.history import latest_finished_run

TARGET = "sandbox at http://127.0.0.1:8000/v1.0"


def finished(output: Path, name: str, *, job: str = "nightly", target: str = TARGET, total: int = 100, invalid: int = 0) -> Path:
    run = output / name
    run.mkdir(parents=True)
    summary: dict[str, Any] = {"job": job, "target": target, "exit_code": 0, "rows_total": total,
                               "rows_by_outcome": {"applied": total - invalid, "invalid": invalid}}
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return run


def test_the_newest_finished_run_of_the_job_and_target_counts_its_usable_rows(tmp_path: Path) -> None:
    finished(tmp_path, "nightly-20240501T020000Z", total=900)
    newest = finished(tmp_path, "nightly-20240503T020000Z", total=1_000, invalid=40)
    previous = latest_finished_run(tmp_path, "nightly", TARGET)
    assert previous is not None and (previous.path, previous.usable_rows) == (newest, 960)
    assert previous.name == "nightly-20240503T020000Z"


def test_other_jobs_targets_unfinished_and_unreadable_runs_are_not_history(tmp_path: Path) -> None:
    expected = finished(tmp_path, "nightly-20240501T020000Z", total=500)
    finished(tmp_path, "nightly-extra-20240509T020000Z", job="nightly-extra")  # another job, sharing a prefix
    finished(tmp_path, "nightly-20240502T020000Z", target="sandbox at http://127.0.0.1:9999/v1.0")
    (tmp_path / "nightly-20240503T020000Z").mkdir()  # stopped before its summary
    finished(tmp_path, "nightly-20240504T020000Z").joinpath("summary.json").write_text("{not json", encoding="utf-8")
    finished(tmp_path, "nightly-20240505T020000Z", total=0)  # a forced empty roster is no baseline
    (tmp_path / "nightly-20240506T020000Z-plan.json").write_text("{}", encoding="utf-8")  # a plan file, not a run
    previous = latest_finished_run(tmp_path, "nightly", TARGET)
    assert previous is not None and (previous.path, previous.usable_rows) == (expected, 500)
    assert latest_finished_run(tmp_path, "nightly-extra", TARGET) is not None


def test_no_output_directory_means_no_history(tmp_path: Path) -> None:
    assert latest_finished_run(tmp_path / "reports", "nightly", TARGET) is None


def test_a_fleet_tenant_finds_its_earlier_runs_in_fleet_run_directories(tmp_path: Path) -> None:
    graph = "Microsoft Graph global tenant contoso.onmicrosoft.com (v1.0)"
    finished(tmp_path, "fleet-msp-20240501T020000Z/tenants/contoso/run", target=graph, total=300)
    newest = finished(tmp_path, "fleet-msp-20240502T020000Z-1/tenants/contoso/run", target=graph, total=400)
    finished(tmp_path, "fleet-msp-20240503T020000Z/tenants/fabrikam/run", target=graph, total=10)  # another tenant's key
    (tmp_path / "fleet-msp-20240504T020000Z/tenants/contoso/run").mkdir(parents=True)  # killed before its summary
    previous = latest_finished_run(tmp_path, "nightly", graph, fleet_key="contoso")
    assert previous is not None and (previous.path, previous.usable_rows) == (newest, 400)
    assert latest_finished_run(tmp_path, "nightly", graph) is None  # a single run never looks into fleets
