"""A job's finished runs: what a new roster's size is compared against.

``apply`` leaves one run directory per run in the job's output directory, named
``<job>-<UTC time>`` (``rundir.default_run_dir``), and writes its summary.json when the run
finishes (``resume`` and ``report`` rewrite it). ``latest_finished_run`` finds the newest
such directory whose summary.json names the same job and target, and says how many roster
rows that run could act on: ``rows_total`` minus the ``invalid`` rows (rows with errors,
for which nothing was planned), the same count as a new roster's rows without an error.

A fleet tenant's runs live in fleet run directories instead,
``<output>/fleet-<fleet>-<UTC time>/tenants/<key>/run``: with ``fleet_key`` those count too,
ordered by their fleet's start time (any fleet: the same job against the same target is the
same history, whichever fleet file ran it).

Directories given with ``--run-dir`` elsewhere, runs that never finished (no summary.json),
unreadable summaries and runs with no usable row (a forced empty roster) are not history:
without any, the comparison is skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.model import RowOutcome
from provision.run.rundir import SUMMARY_FILE

__all__ = ["PreviousRun", "latest_finished_run"]

# default_run_dir's name: the job name, then the UTC start time (the name may hold dashes).
_RUN_DIR = re.compile(r"(?P<job>.+)-(?P<started>\d{8}T\d{6}Z)")
# fleet.rundir's name: fleet-<fleet name>-<UTC start>, "-<n>" when two started in one second.
_FLEET_DIR = re.compile(r"fleet-.+-(?P<started>\d{8}T\d{6}Z)(?:-\d+)?")


@dataclass(frozen=True, slots=True)
class PreviousRun:
    """A finished run of the job: its directory and the roster rows it could act on."""

    path: Path
    usable_rows: int

    @property
    def name(self) -> str:
        return self.path.name


def latest_finished_run(output_dir: Path, job: str, target: str, *, fleet_key: str | None = None) -> PreviousRun | None:
    """The newest finished run of ``job`` against ``target`` in ``output_dir`` (and, with
    ``fleet_key``, in its fleet run directories), if any."""
    try:
        entries = list(output_dir.iterdir())
    except OSError:  # no output directory yet (first run), or not readable: no history
        return None
    runs: list[tuple[str, Path]] = []
    for entry in entries:
        m = _RUN_DIR.fullmatch(entry.name)
        if m is not None and m.group("job") == job and entry.is_dir():
            runs.append((m.group("started"), entry))
        fleet = _FLEET_DIR.fullmatch(entry.name) if fleet_key is not None else None
        if fleet is not None:
            tenant_run = entry / "tenants" / str(fleet_key) / "run"
            if tenant_run.is_dir():
                runs.append((fleet.group("started"), tenant_run))
    # Newest first; only the summaries read until the first match are opened.
    for _, path in sorted(runs, reverse=True):
        usable = _usable_rows(path / SUMMARY_FILE, job, target)
        if usable:  # a run that could act on no row (a forced empty roster) is no baseline
            return PreviousRun(path, usable)
    return None


def _usable_rows(summary_file: Path, job: str, target: str) -> int | None:
    """The run's rows without an error, or None when it isn't a finished run of job and target."""
    try:
        summary: Any = json.loads(summary_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # not finished (no file), or cut short: not history
        return None
    if not isinstance(summary, dict) or summary.get("job") != job or summary.get("target") != target:
        return None
    total = summary.get("rows_total")
    by_outcome = summary.get("rows_by_outcome")
    invalid = by_outcome.get(RowOutcome.INVALID.value, 0) if isinstance(by_outcome, dict) else 0
    if not isinstance(total, int) or not isinstance(invalid, int):
        return None
    return max(0, total - invalid)
