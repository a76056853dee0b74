"""summary.json: the run's account for schedulers and monitoring.

Keys always appear in the same order; counts are JSON numbers; every outcome appears in
``rows_by_outcome`` (zero when none) so a parser never meets a missing key. ``status`` says
how the run ended (``completed``, ``interrupted``, ``failed``); ``resume_command`` is the
command that finishes it, ``null`` when nothing is left to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, TextIO

from provision.model import RowOutcome
from provision.report.sinks import text_sink
from provision.report.values import RunSummary
from provision.report.wording import ordered_kinds

__all__ = ["summary_dict", "write_summary_json"]


def summary_dict(summary: RunSummary) -> dict[str, Any]:
    kinds = ordered_kinds(summary.changes, summary.changes_done)
    return {
        "job": summary.job,
        "target": summary.target,
        "mode": summary.mode,
        "started": summary.started,
        "finished": summary.finished,
        "duration_s": round(float(summary.duration_s), 3),
        "status": summary.status.value,
        "resume_command": summary.resume_command,
        "exit_code": int(summary.exit_code),
        "rows_total": int(summary.rows_total),
        "rows_ok": int(summary.rows_ok),
        "rows_failed": int(summary.rows_failed),
        "rows_by_outcome": {o.value: int(summary.rows_by_outcome.get(o.value, 0)) for o in RowOutcome},
        "changes": {k: int(summary.changes.get(k, 0)) for k in kinds},
        "changes_done": {k: int(summary.changes_done.get(k, 0)) for k in kinds},
        "operations": int(summary.operations),
        "throttled": int(summary.throttled),
        "run_dir": summary.run_dir,
    }


def write_summary_json(summary: RunSummary, dest: str | Path | TextIO | IO[str]) -> dict[str, Any]:
    """Write summary.json (UTF-8, indented, trailing newline); returns what was written."""
    data = summary_dict(summary)
    with text_sink(dest) as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return data
