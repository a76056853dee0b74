"""The run directory's reports: results.csv, results.xlsx, summary.json, report.html.

The writers only render: they take the ``RowResult`` of every roster row and the run's
``RunSummary`` (``provision.report.values``) and never compute outcomes themselves. Each writer
takes a path or an open file::

    write_csv(rows, dest)              results.csv   UTF-8 with BOM, RFC 4180
    write_xlsx(rows, summary, dest)    results.xlsx  Summary + Results sheets
    write_summary_json(summary, dest)  summary.json  for schedulers
    write_html(rows, summary, dest)    report.html   self-contained, numbers masked

``write_reports`` writes all four into a run directory. Column layout, formula-injection
neutralising and masking decisions live in ``provision.report.layout``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from provision.report.csv_writer import write_csv
from provision.report.html_report import DEFAULT_ROW_CAP, render_html, write_html
from provision.report.layout import build_layout, mask_phone, row_values
from provision.report.summary_json import summary_dict, write_summary_json
from provision.report.values import RowResult, RunSummary
from provision.report.xlsx_writer import write_xlsx

__all__ = [
    "DEFAULT_ROW_CAP",
    "REPORT_FILES",
    "build_layout",
    "mask_phone",
    "render_html",
    "row_values",
    "summary_dict",
    "write_csv",
    "write_html",
    "write_reports",
    "write_summary_json",
    "write_xlsx",
]

REPORT_FILES: dict[str, str] = {
    "csv": "results.csv",
    "xlsx": "results.xlsx",
    "summary": "summary.json",
    "html": "report.html",
}


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    # Write beside the target and rename, so a re-render never leaves half a report behind.
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_reports(run_dir: str | Path, rows: Sequence[RowResult], summary: RunSummary) -> dict[str, Path]:
    """Write every report into ``run_dir`` (created if needed); returns their paths by kind."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    paths = {kind: run / name for kind, name in REPORT_FILES.items()}
    _replace(paths["csv"], lambda p: write_csv(rows, p))
    _replace(paths["xlsx"], lambda p: write_xlsx(rows, summary, p))
    _replace(paths["summary"], lambda p: write_summary_json(summary, p))
    _replace(paths["html"], lambda p: write_html(rows, summary, p))
    return paths
