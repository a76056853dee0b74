"""Retention: deleting a job's old run directories (``[output] keep_runs`` / ``keep_days``).

Run directories hold full phone numbers and a nightly job makes one a night, so a job can
bound them: at the start of ``apply`` (once confirmed, before its own run directory
exists) and of ``resume``, ``prune_runs`` deletes this job's run directories beyond the
``keep_runs`` newest, or started more than ``keep_days`` days ago (a directory is deleted
if it fails either rule; the run about to be made is not counted).

Only what is recognisably a run directory of this job is ever deleted: a directory (not a
link) named ``<job>-<UTC time>`` or ``<job>-rollback-<UTC time>`` directly in the job's
output directory, whose ``job.resolved.json`` names this job against the same target (the
same run lock, ``provision.run.lock``). The caller holds that lock, so no other process is
writing any of those directories; the run being resumed is passed as ``keep`` and never
deleted. ``--run-dir`` directories elsewhere, plan files, other jobs' runs and
half-created hidden directories are never touched.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from provision.run.jobs import Job
from provision.run.lock import lock_key
from provision.run.rundir import RESOLVED_JOB_FILE

__all__ = ["RunOnDisk", "describe", "job_runs", "prune_runs"]

_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class RunOnDisk:
    path: Path
    started: datetime  # from the directory's name (UTC)


def job_runs(job: Job) -> list[RunOnDisk]:
    """This job's run directories against its target, newest first."""
    directory = job.output.directory if job.output.directory.is_absolute() else job.output.directory.resolve()
    name = re.compile(rf"{re.escape(job.name)}-(?:rollback-)?(\d{{8}}T\d{{6}}Z)")
    lock = lock_key(job).path
    found: list[RunOnDisk] = []
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return []
    for path in entries:
        matched = name.fullmatch(path.name)
        if matched is None or path.is_symlink() or not path.is_dir():
            continue
        try:
            started = datetime.strptime(matched.group(1), _STAMP).replace(tzinfo=UTC)
        except ValueError:
            continue
        if _same_job_and_target(path, job, lock):
            found.append(RunOnDisk(path, started))
    found.sort(key=lambda r: (r.started, r.path.name), reverse=True)
    return found


def _same_job_and_target(path: Path, job: Job, lock: Path) -> bool:
    try:
        recorded = Job.model_validate_json((path / RESOLVED_JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # not a run directory we can vouch for: left alone
    return recorded.name == job.name and lock_key(recorded).path == lock


def prune_runs(job: Job, *, keep: Path | None = None, now: datetime | None = None) -> list[Path]:
    """Delete this job's run directories the retention rules no longer keep; the deleted ones.

    The caller holds the job's run lock. ``keep`` (the run being resumed) is never deleted.
    """
    keep_runs, keep_days = job.output.keep_runs, job.output.keep_days
    if keep_runs is None and keep_days is None:
        return []
    now = now or datetime.now(UTC)
    oldest = now - timedelta(days=keep_days) if keep_days is not None else None
    kept = keep.resolve() if keep is not None else None
    pruned: list[Path] = []
    for index, run in enumerate(job_runs(job)):
        too_many = keep_runs is not None and index >= keep_runs
        too_old = oldest is not None and run.started < oldest
        if not (too_many or too_old) or run.path.resolve() == kept:
            continue
        shutil.rmtree(run.path)
        pruned.append(run.path)
    return pruned


def describe(pruned: list[Path]) -> str:
    """The log line for what was deleted."""
    return f"retention: deleted {len(pruned)} old run director{'y' if len(pruned) == 1 else 'ies'}: " + ", ".join(
        p.name for p in pruned
    )
