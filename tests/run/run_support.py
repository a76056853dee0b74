"""A whole run in this process against a served sandbox: job, roster, stages, reports.

- ``served(app)``: serve a sandbox app on loopback for the ``with`` block; yields its Graph
  base URL (``http://127.0.0.1:PORT/v1.0``), which a job's ``[target] url`` takes.
- ``write_job(folder, url, rows, ...)``: a roster CSV and a job file aimed at that URL.
- ``apply_in_process(job_file, run_dir, ...)``: plan against the sandbox, create the run
  directory, apply (with the executor settings, stop event and console a test needs) and
  render the reports, through the same stage functions ``provision apply`` uses.
- ``read_summary`` / ``read_results`` / ``xlsx_summary`` / ``report_html``: the run
  directory's reports as a scheduler or an admin reads them.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from provision.executor.settings import ExecutorSettings
from provision.run.apply_stage import apply_planned
from provision.run.console import Console
from provision.run.jobs import load_job
from provision.run.plan_stage import load_roster, make_plan
from provision.run.run_report import RunOutcome, render_reports
from provision.run.rundir import create_run_dir
from provision.run.targets import open_target
from provision.sandbox.app import SandboxApp, create_app
from provision.sandbox.server import serve_in_thread


def upn(i: int) -> str:
    return f"user{i:04d}@contoso.example"


def mobile(i: int) -> str:
    """A valid US mobile number in Graph form, one per ``i``."""
    return f"+1 425{3_000_000 + i:07d}"


@contextmanager
def served(app: SandboxApp) -> Iterator[str]:
    with serve_in_thread(app) as root:
        yield f"{root}/v1.0"


def write_job(folder: Path, url: str, rows: Sequence[Sequence[str]], *, header: str = "user,mobile",
              settings: str = "") -> Path:
    """``folder/roster.csv`` (``header`` then ``rows``) and ``folder/job.toml`` using it."""
    lines = [header] + [",".join(r) for r in rows]
    (folder / "roster.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = folder / "job.toml"
    job.write_text(f'name = "truth"\n{settings}\n[roster]\npath = "roster.csv"\ndefault_region = "US"\n'
                   f'[target]\nurl = "{url}"\n', encoding="utf-8")
    return job


def apply_in_process(
    job_file: Path,
    run_dir: Path,
    *,
    settings: ExecutorSettings | None = None,
    stop: asyncio.Event | None = None,
    console: Console | None = None,
) -> RunOutcome:
    """Plan, apply and report as ``provision apply --yes`` does, with test-sized executor settings."""
    job = load_job(job_file)
    roster = load_roster(job)

    async def go() -> RunOutcome:
        async with open_target(job) as target:
            planned = await make_plan(job, target, roster=roster)
            run = create_run_dir(run_dir, job, roster.path)
            await apply_planned(planned, target, run, settings=settings, stop=stop, console=console)
        return await asyncio.to_thread(render_reports, run, roster=roster)

    return asyncio.run(go())


def read_summary(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return data


def read_results(run_dir: Path) -> dict[str, dict[str, str]]:
    """results.csv by user (each test roster has one row per user)."""
    with (run_dir / "results.csv").open(encoding="utf-8-sig", newline="") as fh:
        return {r["user"]: r for r in csv.DictReader(fh)}


def xlsx_results(run_dir: Path) -> dict[str, dict[str, Any]]:
    wb = load_workbook(run_dir / "results.xlsx", read_only=True)
    rows = list(wb["Results"].iter_rows(values_only=True))
    wb.close()
    head = [str(h) for h in rows[0]]
    return {str(r[head.index("user")]): dict(zip(head, r)) for r in rows[1:]}


def xlsx_summary(run_dir: Path) -> dict[str, tuple[Any, ...]]:
    """The Summary sheet's labelled rows: label -> the values after it."""
    wb = load_workbook(run_dir / "results.xlsx", read_only=True)
    rows = list(wb["Summary"].iter_rows(values_only=True))
    wb.close()
    return {str(r[0]): tuple(r[1:]) for r in rows if r and r[0] is not None}


def report_html(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


class StopAfterFirstChange:
    """A console that asks the run to stop as soon as one change has finished."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, name: str, done: int, total: int | None = None, **fields: Any) -> None:
        if name == "applying" and done > 0:
            self.stop.set()

    def note(self, level: str, message: str, **fields: Any) -> None:
        pass


def tenant_with_users(n: int) -> SandboxApp:
    app = create_app()
    for i in range(n):
        app.sandbox.tenant.create_user(upn(i))
    return app


def mobiles_held(app: SandboxApp, n: int) -> int:
    return sum(1 for i in range(n) if app.sandbox.tenant.list_phones(upn(i)))


def roster(n: int) -> list[tuple[str, str]]:
    return [(upn(i), mobile(i)) for i in range(n)]
