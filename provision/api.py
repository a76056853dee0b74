"""The Python API for scripts, notebooks and schedulers: validate, plan and apply a roster.

    frame = provision.validate("hr.xlsx", region="US")            # no tenant: one row per data row
    result = provision.plan("jobs/onboarding.toml", roster=df)    # .changes, .summary (no writes)
    result = provision.apply("jobs/onboarding.toml", roster=df)   # .results, .summary, .exit_code

A roster is a file path or a pandas DataFrame (its column names are the headers, rows are
numbered 2..n+1 as in a sheet). A job is a job file's path or a loaded ``Job``. The steps
are the CLI's own (``read_roster``, ``provision.run.pipeline``): ``provision.plan`` is
``provision plan`` and ``provision.apply`` is ``provision apply --yes``, with the same
safety thresholds, lock, journal, run directory and reports.

A DataFrame applied still leaves a run directory that ``provision resume``, ``report`` and
``rollback`` can use: the frame is written there as ``roster.csv`` (mode 0600), in the
text the reader took from it, so reading that copy gives the same rows.

Nothing here prints. Every refusal is a ``ProvisionError`` carrying its ``exit_code``
(``UsageError`` 2, ``SafetyError`` 3, ``AuthError`` 4, ``StoppedError`` 5...), and a
declined apply (``yes=False``) raises ``Cancelled``. The calls work inside a running
event loop too (a notebook): the run then gets a loop of its own in a worker thread.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.errors import ExitCode
from provision.masking import mask
from provision.model import PHONE_CHANGE_KINDS
from provision.roster.reader import Roster, read_roster
from provision.run.loop import run_to_end

if TYPE_CHECKING:
    import pandas

    from provision.run.jobs import Job
    from provision.run.plan_stage import PlannedRun
    from provision.run.rundir import RunDir

__all__ = ["ApplyResult", "PlanResult", "apply", "plan", "validate"]

CHANGE_COLUMNS = ("user", "phone_type", "action", "before", "after", "reason", "rows")


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What ``plan`` found. ``changes``: one row per planned change (``CHANGE_COLUMNS``;
    numbers masked unless ``plan(..., unmasked=True)``); ``summary``: the CLI's plan summary
    (counts, reasons, safety); ``plan_file``: where the plan was saved (``out=``), else None."""

    changes: "pandas.DataFrame"
    summary: dict[str, Any]
    plan_file: Path | None = None

    @property
    def safe(self) -> bool:
        """Within every safety threshold (``apply`` refuses otherwise unless forced)."""
        return bool(self.summary["safety"] == "ok")


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """How ``apply`` ended. ``results``: one row per roster row, results.csv's columns (numbers
    in full, as there); ``summary``: summary.json; ``exit_code``: what ``provision apply``
    would exit with; ``run_dir``: the run directory (resume, report and rollback take it)."""

    results: "pandas.DataFrame"
    summary: dict[str, Any]
    exit_code: ExitCode
    run_dir: Path


def validate(
    roster: "str | Path | pandas.DataFrame",
    *,
    region: str | None = None,
    sheet: str | int | None = None,
    columns: Mapping[str, str] | None = None,
) -> "pandas.DataFrame":
    """Check a roster without touching any tenant: one DataFrame row per data row, the columns
    of ``provision validate --out`` (``row, user, mobile, alternate_mobile, office, status,
    problems`` and the passthrough columns). ``columns`` maps fields to headers the reader
    doesn't recognise (``{"user": "Login"}``). The numbers are in full: mask them
    (``provision.mask``) before logging any."""
    from provision.roster.frame import roster_frame

    return roster_frame(read_roster(_source(roster), columns=columns, default_region=region, sheet=sheet))


def plan(
    job: "str | Path | Job",
    roster: "str | Path | pandas.DataFrame | None" = None,
    *,
    unmasked: bool = False,
    out: str | Path | None = None,
) -> PlanResult:
    """Plan the job against live state, as ``provision plan`` does (never writes to the tenant).

    ``roster``: instead of the job's ``roster.path`` (the job's column mapping and default
    region still apply). ``out``: also save the reviewable plan file there (``apply``'s
    ``plan_file`` can then insist the live plan still matches it)."""
    from provision.run.pipeline import plan_job, plan_summary
    from provision.run.plan_stage import save_plan

    loaded = _job(job)
    planned = run_to_end(plan_job(loaded, _roster(loaded, roster)))
    saved = None
    if out is not None:
        saved = Path(out)
        save_plan(planned, saved)
    return PlanResult(_changes(planned, unmasked=unmasked), plan_summary(planned), saved)


def apply(
    job: "str | Path | Job",
    roster: "str | Path | pandas.DataFrame | None" = None,
    *,
    yes: bool = True,
    run_dir: str | Path | None = None,
    force: bool = False,
    verify: bool = False,
    plan_file: str | Path | None = None,
) -> ApplyResult:
    """Plan, check, apply and report, as ``provision apply --yes`` does.

    ``yes=False`` plans and stops before any write (raises ``Cancelled``). ``force``: apply
    past a safety threshold; ``verify``: read changed users back; ``plan_file``: refuse
    (``PlanMismatchError``) unless the live plan still matches that reviewed plan file.
    A run that ends with rows failed is not an exception: read ``exit_code`` and ``results``."""
    import pandas

    from provision.run.pipeline import ApplyOptions, apply_job

    loaded = _job(job)
    source = _source(roster) if roster is not None else None

    async def confirm(planned: PlannedRun, target: str) -> bool:
        return yes

    with tempfile.TemporaryDirectory(prefix="provision-roster-") as scratch:
        roster_data = _roster(loaded, source)
        on_run_dir = _no_hook
        if isinstance(source, pandas.DataFrame):
            # The run directory copies Roster.path: point it at the frame written as a file.
            copy = _write_frame(source, Path(scratch) / "roster.csv", loaded.roster.columns or None)
            roster_data = replace(roster_data, path=copy)
            on_run_dir = _private_roster_copy
        options = ApplyOptions(
            plan_file=Path(plan_file) if plan_file is not None else None,
            force=force,
            run_dir=Path(run_dir) if run_dir is not None else None,
            verify=verify,
            confirm=confirm,
            on_run_dir=on_run_dir,
        )
        outcome = run_to_end(apply_job(loaded, roster_data, options))
    summary_file = outcome.reports["summary"]
    return ApplyResult(
        results=_results_frame(outcome.reports["csv"]),
        summary=json.loads(summary_file.read_text(encoding="utf-8")),
        exit_code=ExitCode(outcome.summary.exit_code),
        run_dir=outcome.run_dir,
    )


# -- helpers ------------------------------------------------------------------------------


def _source(roster: "str | Path | pandas.DataFrame") -> "Path | pandas.DataFrame":
    return Path(roster) if isinstance(roster, (str, os.PathLike)) else roster


def _job(job: "str | Path | Job") -> Job:
    from provision.run.jobs import load_job

    return load_job(Path(job)) if isinstance(job, (str, os.PathLike)) else job


def _roster(job: Job, roster: "str | Path | pandas.DataFrame | None") -> Roster:
    """The job's roster, another file, or a DataFrame, read with the job's [roster] settings."""
    from provision.run.pipeline import load_job_roster

    source = _source(roster) if roster is not None else None
    if source is None or isinstance(source, Path):
        return load_job_roster(job, source)
    cfg = job.roster
    return read_roster(source, columns=cfg.columns or None, default_region=cfg.default_region)


def _no_hook(run: RunDir) -> None:
    pass


def _private_roster_copy(run: RunDir) -> None:
    os.chmod(run.roster_file(), 0o600)


def _write_frame(frame: "pandas.DataFrame", dest: Path, columns: Mapping[str, str] | None) -> Path:
    """The frame as a CSV roster (mode 0600) that reads back as the frame did.

    The cells are the reader's own text for the frame (``files.frame_table``). A number
    cell in a phone column is written as ``digits.0``, the spelling the number reader
    takes for a spreadsheet number, so a number that lost its ``+`` is read the same way.
    """
    from provision.roster.columns import match_columns
    from provision.roster.files import frame_table

    table = frame_table(frame)
    try:
        colmap = match_columns(table.header, columns)
        phone_at = {colmap.index[f] for f in colmap.phone_fields}
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, dialect="excel")
            writer.writerow(table.header)
            for record in table.records:
                writer.writerow(
                    [
                        f"{cell}.0" if i in record.numeric and i in phone_at and cell.isdigit() else cell
                        for i, cell in enumerate(record.cells)
                    ]
                )
    finally:
        table.close()
    return dest


def _changes(planned: PlannedRun, *, unmasked: bool) -> "pandas.DataFrame":
    import pandas

    records = []
    for user_plan in planned.plan.users:
        rows = ", ".join(str(r) for r in user_plan.rows)
        for change in user_plan.changes:
            before, after = change.before or "", change.after or ""
            if change.kind in PHONE_CHANGE_KINDS and not unmasked:
                before, after = (mask(before) if before else ""), (mask(after) if after else "")
            records.append(
                (change.user, change.phone_type.value, change.kind.value, before, after, user_plan.reason or "", rows)
            )
    return pandas.DataFrame.from_records(records, columns=list(CHANGE_COLUMNS)).astype("string")


def _results_frame(results_csv: Path) -> "pandas.DataFrame":
    """results.csv as a DataFrame: ``row`` as int64, every other column as pandas strings."""
    import pandas

    frame = pandas.read_csv(results_csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return frame.astype({"row": "int64", **{c: "string" for c in frame.columns if c != "row"}})
