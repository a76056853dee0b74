"""The merged fleet report: fleet_summary.json, fleet.xlsx, report.html, and the fleet exit code.

Input is what the tenant runs left behind: their TenantResult dicts (tenant.json) and each
tenant's ``tenants/<key>/results.csv``. The summary is built once, as data, with tenants in
the order a reader should meet them (needing attention first, worst first, then by name);
the page renders from that data, so the JSON and the page can't disagree. Every file is
written 0600 (fleet.xlsx holds full numbers, as results.csv does) and replaced atomically,
so ``fleet report`` can re-render while someone has the old page open.
"""

from __future__ import annotations

import json
import os
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Callable

from provision.errors import ExitCode, exit_meaning
from provision.executor.journal import creation_interrupted
from provision.fleet.report_html import render_fleet_html
from provision.fleet.report_xlsx import write_fleet_xlsx
from provision.masking import mask_in_text
from provision.model import RowOutcome
from provision.private_files import open_private, open_private_binary
from provision.report.wording import ordered_kinds
from provision.run.rundir import JOURNAL_FILE

__all__ = [
    "ATTENTION_ORDER",
    "FleetReport",
    "STATUSES",
    "fleet_exit_code",
    "fleet_summary",
    "tenant_exit_code",
    "write_fleet_reports",
]

SUMMARY_FILE = "fleet_summary.json"
XLSX_FILE = "fleet.xlsx"
HTML_FILE = "report.html"

# Statuses needing a person, worst first: a sign-in problem blocks every later night, a
# stopped tenant only needs `fleet resume`, and row failures are the everyday kind.
ATTENTION_ORDER: tuple[str, ...] = (
    "auth_failed", "stopped", "lost", "bad_input", "refused", "quarantined", "rows_failed",
)
STATUSES: tuple[str, ...] = (*ATTENTION_ORDER, "drift", "ok")

_EXIT_BY_STATUS: Mapping[str, ExitCode] = {
    "ok": ExitCode.OK,
    "rows_failed": ExitCode.ROWS_FAILED,
    "quarantined": ExitCode.ROWS_FAILED,
    "bad_input": ExitCode.USAGE,
    "refused": ExitCode.REFUSED,
    "auth_failed": ExitCode.AUTH,
    "stopped": ExitCode.STOPPED,
    "lost": ExitCode.STOPPED,
    "drift": ExitCode.DRIFT,
}

# The fleet ends with its worst tenant's code. Stopped ranks first because `fleet resume`
# is the next step whatever else is wrong; drift (plan only) is no failure.
_EXIT_RANK: tuple[ExitCode, ...] = (
    ExitCode.STOPPED, ExitCode.AUTH, ExitCode.USAGE, ExitCode.REFUSED,
    ExitCode.ROWS_FAILED, ExitCode.DRIFT, ExitCode.OK,
)

_RESUMABLE = frozenset({"stopped", "lost"})

# TenantResult fields in the design's order; anything else a dispatcher adds follows them.
_FIELDS: tuple[str, ...] = (
    "tenant_id", "name", "key", "groups", "action", "status", "exit_code", "message", "run_dir",
    "plan_file", "rows_total", "rows_ok", "rows_failed", "rows_by_outcome", "changes", "changes_done",
    "writes_failed", "operations", "throttled", "attempts", "started", "finished", "duration_s", "worker",
)
_INT_FIELDS = frozenset({"rows_total", "rows_ok", "rows_failed", "writes_failed", "operations", "throttled",
                         "attempts"})


@dataclass(frozen=True, slots=True)
class FleetReport:
    exit_code: ExitCode
    tenants_by_status: Mapping[str, int]
    rows_total: int  # rows in fleet.xlsx's Rows sheet: every row of every tenant's results.csv
    paths: tuple[Path, ...]


def tenant_exit_code(result: Mapping[str, Any]) -> ExitCode:
    """The tenant's exit code; from its status when the code is missing or not one of ours.

    A result that says neither is counted as stopped: nobody can tell what it did.
    """
    try:
        return ExitCode(int(result["exit_code"]))
    except (KeyError, TypeError, ValueError):
        return _EXIT_BY_STATUS.get(str(result.get("status", "")), ExitCode.STOPPED)


def fleet_exit_code(results: Iterable[Mapping[str, Any]]) -> ExitCode:
    """The worst tenant's exit code (5 > 4 > 2 > 3 > 1 > 6 > 0); an empty fleet is 0."""
    codes = {tenant_exit_code(r) for r in results}
    return next((c for c in _EXIT_RANK if c in codes), ExitCode.OK)


def _rank(status: str) -> int:
    # An unknown status is still attention: after the known problems, before the healthy.
    if status in ATTENTION_ORDER:
        return ATTENTION_ORDER.index(status)
    if status in STATUSES:
        return STATUSES.index(status)
    return len(ATTENTION_ORDER)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _counts(value: Any) -> dict[str, int]:
    return {str(k): _int(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return "" if value is None else mask_in_text(str(value))


def _quoted(path: Path) -> str:
    return shlex.quote(str(path))


def _tenant_entry(result: Mapping[str, Any], fleet_dir: Path, fleet_resume: str) -> dict[str, Any]:
    status = str(result.get("status", ""))
    entry: dict[str, Any] = {}
    for f in _FIELDS:
        v = result.get(f)
        if f in _INT_FIELDS:
            v = _int(v)
        elif f in ("rows_by_outcome",):
            counts = _counts(v)
            v = {o.value: counts.get(o.value, 0) for o in RowOutcome}
        elif f in ("changes", "changes_done"):
            v = _counts(v)
        elif f == "groups":
            v = [str(g) for g in v] if isinstance(v, (list, tuple)) else []
        elif f == "exit_code":
            v = int(tenant_exit_code(result))
        elif f == "duration_s":
            v = round(float(v), 3) if isinstance(v, (int, float)) else 0.0
        elif f in ("name", "message"):  # free text: masked, whatever the runner did
            v = _text(v)
        elif v is not None and not isinstance(v, (str, int, float, bool)):
            v = str(v)
        entry[f] = v
    if not entry["name"]:
        entry["name"] = _text(entry["tenant_id"])
    entry["status"] = status
    for k, v in result.items():  # what a dispatcher adds: kept when it is a plain value
        if k not in entry and k != "schema" and (v is None or isinstance(v, (str, int, float, bool))):
            entry[k] = _text(v) if isinstance(v, str) else v
    entry["needs_attention"] = status not in ("ok", "drift")
    entry["report_html"] = _report_link(fleet_dir, entry)
    entry["resume_command"] = None
    if status in _RESUMABLE:
        # `provision resume` needs a started journal; without one (or with one whose creation
        # was cut off: nothing was sent), the fleet re-dispatches the tenant afresh.
        run_dir = entry["run_dir"]
        journal = fleet_dir / run_dir / JOURNAL_FILE if run_dir else None
        started = journal is not None and journal.is_file() and not creation_interrupted(journal)
        entry["resume_command"] = f"provision resume {_quoted(fleet_dir / run_dir)}" if started else fleet_resume
    return entry


def _report_link(fleet_dir: Path, entry: Mapping[str, Any]) -> str | None:
    """The tenant run's report.html relative to the fleet directory, when it exists there."""
    run_dir = entry.get("run_dir") or (f"tenants/{entry['key']}/run" if entry.get("key") else None)
    if not run_dir or Path(run_dir).is_absolute() or ".." in Path(run_dir).parts:
        return None
    rel = Path(run_dir) / "report.html"
    return rel.as_posix() if (fleet_dir / rel).is_file() else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _sum_counts(entries: Sequence[Mapping[str, Any]], key: str) -> Counter[str]:
    total: Counter[str] = Counter()
    for e in entries:
        total.update(e[key])
    return total


def fleet_summary(fleet_dir: Path, results: Sequence[Mapping[str, Any]],
                  manifest: Mapping[str, Any]) -> dict[str, Any]:
    """fleet_summary.json as data: fleet facts, exit code, counts, totals, tenants in reading order."""
    code = fleet_exit_code(results)
    fleet_resume = f"provision fleet resume {_quoted(fleet_dir)}"
    entries = [_tenant_entry(r, fleet_dir, fleet_resume) for r in results]
    entries.sort(key=lambda e: (_rank(e["status"]), str(e["name"]).casefold(), str(e["tenant_id"])))
    by_status = Counter(e["status"] for e in entries)
    started = _parse_time(manifest.get("started"))
    ends = [t for t in (_parse_time(e["finished"]) for e in entries) if t is not None]
    finished = _parse_time(manifest.get("finished")) or (max(ends) if ends else None)
    outcomes = _sum_counts(entries, "rows_by_outcome")
    changes, done = _sum_counts(entries, "changes"), _sum_counts(entries, "changes_done")
    kinds = ordered_kinds(changes, done)
    return {
        "schema": 1,
        "fleet": _text(manifest.get("name") or manifest.get("fleet") or fleet_dir.name),
        "action": manifest.get("action"),
        "fleet_dir": str(fleet_dir),
        "executor": _text(manifest.get("executor")) if manifest.get("executor") is not None else None,
        "started": started.isoformat() if started else None,
        "finished": finished.isoformat() if finished else None,
        "duration_s": round((finished - started).total_seconds(), 3) if started and finished else None,
        "exit_code": int(code),
        "exit_meaning": exit_meaning(code),
        "resume_command": fleet_resume if any(e["status"] in _RESUMABLE for e in entries) else None,
        "tenants_total": len(entries),
        "tenants_by_status": {
            **{s: by_status.get(s, 0) for s in STATUSES},
            **{s: n for s, n in sorted(by_status.items()) if s not in STATUSES},
        },
        "tenants_needing_attention": sum(e["needs_attention"] for e in entries),
        "excluded": [{k: _text(v) for k, v in x.items()} for x in manifest.get("excluded") or []
                     if isinstance(x, Mapping)],
        "totals": {
            "rows_total": sum(e["rows_total"] for e in entries),
            "rows_ok": sum(e["rows_ok"] for e in entries),
            "rows_failed": sum(e["rows_failed"] for e in entries),
            "rows_by_outcome": {o.value: outcomes.get(o.value, 0) for o in RowOutcome},
            "changes": {k: changes.get(k, 0) for k in kinds},
            "changes_done": {k: done.get(k, 0) for k in kinds},
            "writes_failed": sum(e["writes_failed"] for e in entries),
            "operations": sum(e["operations"] for e in entries),
            "throttled": sum(e["throttled"] for e in entries),
        },
        "tenants": entries,
    }


def _replace(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        with open_private(tmp, newline="") as fh:
            fh.write(text)
    _replace(path, write)


def write_fleet_reports(fleet_dir: Path, results: Sequence[Mapping[str, Any]],
                        manifest: Mapping[str, Any]) -> FleetReport:
    """Write fleet_summary.json, fleet.xlsx and report.html into ``fleet_dir`` (each 0600)."""
    summary = fleet_summary(fleet_dir, results, manifest)
    _write_text(fleet_dir / SUMMARY_FILE, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")

    rows = 0

    def xlsx(tmp: Path) -> None:
        nonlocal rows
        fh: IO[bytes]
        with open_private_binary(tmp) as fh:
            rows = write_fleet_xlsx(fh, summary["tenants"], fleet_dir)
    _replace(fleet_dir / XLSX_FILE, xlsx)

    _write_text(fleet_dir / HTML_FILE, render_fleet_html(summary))
    return FleetReport(
        exit_code=ExitCode(summary["exit_code"]),
        tenants_by_status={s: n for s, n in summary["tenants_by_status"].items() if n},
        rows_total=rows,
        paths=(fleet_dir / SUMMARY_FILE, fleet_dir / XLSX_FILE, fleet_dir / HTML_FILE),
    )
