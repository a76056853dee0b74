"""The run directory: everything one apply leaves behind, enough to resume and re-report.

    reports/<job>-<UTC time>/
      job.toml        the job file as it was        roster.<ext>   the roster as it was
      job.resolved.json  the job with every path made absolute (what resume loads)
      plan.json       the plan that was applied     journal.sqlite every change's fate
      results.csv  results.xlsx  summary.json  report.html          run.log
      rollback_of.json   (a rollback's run only) the run directory it reverses

The job file and roster are copied in so that ``resume`` and ``report`` see exactly what
the run saw, even if the originals are edited overnight. The directory holds personal data
(phone numbers): it is created readable by its owner only (0700), and every file in it
0600 (``provision.private_files``; the reports are narrowed once written, by ``run_report``).

A run directory comes to be in steps, and a run can be killed between any two of them.
``create_run_dir`` fills a hidden temporary directory and renames it, so under its final
name a run directory always holds its job, resolved job and roster copies; the apply stage
then writes plan.json, then creates journal.sqlite (in one transaction), and only then
sends anything. So the journal is the mark that writing may have begun: without one,
nothing reached the tenant, and ``check_started`` tells ``resume`` and ``report`` to say
what is missing and that running ``provision apply`` again is safe.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from provision.errors import UsageError
from provision.executor.journal import creation_interrupted
from provision.private_files import open_private, open_private_binary
from provision.run.jobs import Job, SandboxTarget

JOB_FILE = "job.toml"
RESOLVED_JOB_FILE = "job.resolved.json"
PLAN_FILE = "plan.json"
JOURNAL_FILE = "journal.sqlite"
LOG_FILE = "run.log"
SUMMARY_FILE = "summary.json"
ROLLBACK_OF_FILE = "rollback_of.json"  # in a rollback's run directory: the run it reverses


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
    def rollback_of(self) -> Path | None:
        """The run directory this run reverses (``provision rollback``), None for any other run."""
        try:
            recorded = json.loads((self.path / ROLLBACK_OF_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        found = recorded.get("rollback_of") if isinstance(recorded, dict) else None
        return Path(found) if isinstance(found, str) else None

    def record_rollback_of(self, original: RunDir) -> None:
        """Write down, before anything is sent, which run this rollback reverses."""
        with open_private(self.path / ROLLBACK_OF_FILE) as f:
            f.write(json.dumps({"rollback_of": str(original.path.resolve())}, indent=2) + "\n")

    @property
    def resolved_job_file(self) -> Path:
        return self.path / RESOLVED_JOB_FILE

    def check_started(self) -> None:
        """Raise ``UsageError`` unless this run got as far as its journal (writes may have begun).

        The message names what is missing and the next step: a directory without a journal
        was left by a run stopped before it wrote anything, so applying again is safe.
        """
        if not self.path.is_dir():
            raise UsageError(f"{self.path}: no such run directory; give the directory `provision apply` printed")
        if _journal_created(self.journal_file):
            return
        present = {
            JOB_FILE: self.job_file.is_file(),
            RESOLVED_JOB_FILE: self.resolved_job_file.is_file(),
            "roster copy": any(self.path.glob("roster.*")),
            PLAN_FILE: self.plan_file.is_file(),
        }
        if not any(present.values()) and not self.journal_file.exists():
            raise UsageError(
                f"{self.path}: not a run directory (no {JOB_FILE}, no {JOURNAL_FILE}); give the directory `provision apply` printed"
            )
        missing = [name for name, there in present.items() if not there]
        if self.journal_file.exists():
            what = f"{JOURNAL_FILE} was left half-created" + (f", and no {', no '.join(missing)}" if missing else "")
        else:
            what = "no " + ", no ".join([*missing, JOURNAL_FILE])
        raise UsageError(
            f"{self.path}: this run stopped before it started writing ({what}): nothing was written to "
            f"the tenant and there is nothing to resume or report; run {self._apply_again()} again "
            "(safe: nothing was written)"
        )

    def _apply_again(self) -> str:
        """`provision apply JOB` with the original job file when the run recorded it."""
        try:
            source = Job.model_validate_json(self.resolved_job_file.read_text(encoding="utf-8")).source
        except (OSError, ValueError):
            source = None
        if source is not None:
            return f"`provision apply {source}`"
        copy = f" (this run's copy: {self.job_file})" if self.job_file.is_file() else ""
        return f"`provision apply` with the job file{copy}"

    def load_job(self) -> Job:
        """The job as it ran (paths resolved then), reading the roster from the run's copy."""
        if not self.resolved_job_file.exists():
            raise UsageError(f"{self.path}: not a run directory (no {RESOLVED_JOB_FILE}); give the directory `provision apply` printed")
        job = Job.model_validate_json(self.resolved_job_file.read_text(encoding="utf-8"))
        return job.model_copy(update={"roster": job.roster.model_copy(update={"path": self.roster_file()})})


def default_run_dir(job: Job, started: datetime) -> Path:
    return job.output.directory / f"{job.name}-{started:%Y%m%dT%H%M%SZ}"


def rollback_run_dir(job: Job, started: datetime) -> Path:
    """A rollback's run directory: ``<output dir>/<job>-rollback-<UTC time>``."""
    return job.output.directory / f"{job.name}-rollback-{started:%Y%m%dT%H%M%SZ}"


def create_run_dir(path: Path, job: Job, roster_path: Path) -> RunDir:
    """A new run directory holding the job, resolved job and roster copies (mode 0700).

    Built under a hidden temporary name beside ``path`` and renamed, so a run killed
    meanwhile leaves no half-made run directory, only (at worst) a hidden ``.NAME.*.creating``
    one. An existing empty directory (made for ``--run-dir``) is filled in place instead:
    it may be a mount point or carry permissions of its own, so it is not replaced.
    """
    if job.source is None:
        raise UsageError("a job loaded from a file is needed to start a run")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"run directory {path} already exists and is not empty; choose another --run-dir")
    if path.exists():
        os.chmod(path, 0o700)
        _fill(path, job, roster_path)
        return RunDir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".creating", dir=path.parent))  # mode 0700
    try:
        _fill(building, job, roster_path)
        os.rename(building, path)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return RunDir(path)


def _fill(directory: Path, job: Job, roster_path: Path) -> None:
    assert job.source is not None  # checked by create_run_dir
    _copy_private(job.source, directory / JOB_FILE)
    with open_private(directory / RESOLVED_JOB_FILE) as f:
        f.write(_resolved(job).model_dump_json(indent=2))
    _copy_private(roster_path, directory / f"roster{roster_path.suffix.lower()}")


def _copy_private(source: Path, dest: Path) -> None:
    """Copy ``source`` to a new 0600 file (``shutil.copyfile`` would take the umask's mode)."""
    with source.open("rb") as src, open_private_binary(dest) as dst:
        shutil.copyfileobj(src, dst)


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
            "audit": job.audit.model_copy(update={"file": _absolute(job.audit.file) if job.audit.file else None}),
            "target": target,
        }
    )


def _absolute(path: Path) -> Path:
    return path if path.is_absolute() else path.resolve()


def _journal_created(path: Path) -> bool:
    """A journal exists and its creation committed: writes may have begun.

    A run killed inside ``Journal.create`` leaves a file that ``creation_interrupted``
    recognises; anything else (another application's file too) is left to ``Journal.open``,
    whose own checks name what is wrong with it.
    """
    return path.exists() and not creation_interrupted(path)
