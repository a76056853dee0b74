"""The run directory: everything one apply leaves behind, enough to resume and re-report.

    reports/<job>-<UTC time>/
      job.toml        the job file as it was        roster.<ext>   the roster as it was
      job.resolved.json  the job with every path made absolute (what resume loads)
      plan.json       the plan that was applied     journal.sqlite every change's fate
      results.csv  results.xlsx  summary.json  report.html          run.log

The job file and roster are copied in so that ``resume`` and ``report`` see exactly what
the run saw, even if the originals are edited overnight. The directory holds personal data
(phone numbers): it is created readable by its owner only.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from provision.errors import UsageError
from provision.run.jobs import Job, SandboxTarget

JOB_FILE = "job.toml"
RESOLVED_JOB_FILE = "job.resolved.json"
PLAN_FILE = "plan.json"
JOURNAL_FILE = "journal.sqlite"
LOG_FILE = "run.log"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True, slots=True)
class RunDir:
    path: Path

    @property
    def job_file(self) -> Path:
        return self.path / JOB_FILE

    @property
    def plan_file(self) -> Path:
        return self.path / PLAN_FILE

    @property
    def journal_file(self) -> Path:
        return self.path / JOURNAL_FILE

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    @property
    def summary_file(self) -> Path:
        return self.path / SUMMARY_FILE

    def roster_file(self) -> Path:
        found = sorted(self.path.glob("roster.*"))
        if not found:
            raise UsageError(f"{self.path}: not a run directory (no roster copy)")
        return found[0]

    @property
    def resolved_job_file(self) -> Path:
        return self.path / RESOLVED_JOB_FILE

    def load_job(self) -> Job:
        """The job as it ran (paths resolved then), reading the roster from the run's copy."""
        if not self.resolved_job_file.exists():
            raise UsageError(f"{self.path}: not a run directory (no {RESOLVED_JOB_FILE}); give the directory `provision apply` printed")
        job = Job.model_validate_json(self.resolved_job_file.read_text(encoding="utf-8"))
        return job.model_copy(update={"roster": job.roster.model_copy(update={"path": self.roster_file()})})


def default_run_dir(job: Job, started: datetime) -> Path:
    return job.output.directory / f"{job.name}-{started:%Y%m%dT%H%M%SZ}"


def create_run_dir(path: Path, job: Job, roster_path: Path) -> RunDir:
    if path.exists() and any(path.iterdir()):
        raise UsageError(f"run directory {path} already exists and is not empty; choose another --run-dir")
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    run = RunDir(path)
    if job.source is None:
        raise UsageError("a job loaded from a file is needed to start a run")
    shutil.copyfile(job.source, run.job_file)
    run.resolved_job_file.write_text(_resolved(job).model_dump_json(indent=2), encoding="utf-8")
    shutil.copyfile(roster_path, path / f"roster{roster_path.suffix.lower()}")
    return run


def _resolved(job: Job) -> Job:
    """The job with every path absolute, so a resume from another folder means the same."""
    target = job.target
    if isinstance(target, SandboxTarget):
        snapshot = _absolute(target.snapshot) if target.snapshot is not None else None
        target = target.model_copy(update={"state": _absolute(target.state), "snapshot": snapshot})
    return job.model_copy(
        update={
            "roster": job.roster.model_copy(update={"path": _absolute(job.roster.path)}),
            "output": job.output.model_copy(update={"directory": _absolute(job.output.directory)}),
            "target": target,
        }
    )


def _absolute(path: Path) -> Path:
    return path if path.is_absolute() else path.resolve()
