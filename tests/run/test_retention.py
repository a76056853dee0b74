"""Retention: ``[output] keep_runs`` / ``keep_days`` delete this job's old run directories at
the start of a run, never the one being resumed, never anything that isn't one of them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from run_support import apply_in_process, roster, served, tenant_with_users, write_job

from provision.errors import JobFileError
from provision.run.jobs import Job, load_job
from provision.run.pipeline import ApplyOptions, apply_job, load_job_roster, resume_job
from provision.run.retention import job_runs, prune_runs
from provision.run.rundir import RunDir, create_run_dir, default_run_dir, rollback_run_dir

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def job_file(folder: Path, output: str, *, name: str = "nightly", url: str = "http://127.0.0.1:9/v1.0") -> Path:
    (folder / "roster.csv").write_text("user,mobile\nada@contoso.example,+1 4253000001\n", encoding="utf-8")
    path = folder / f"{name}.toml"
    path.write_text(f'name = "{name}"\n[roster]\npath = "roster.csv"\n[output]\ndirectory = "reports"\n{output}\n'
                    f'[target]\nurl = "{url}"\n', encoding="utf-8")
    return path


def make_runs(job: Job, days: list[int], *, rollback: bool = False) -> list[Path]:
    """Run directories of ``job`` started ``days`` before NOW (as create_run_dir leaves them)."""
    made = []
    for d in days:
        started = NOW - timedelta(days=d)
        path = (rollback_run_dir if rollback else default_run_dir)(job, started)
        made.append(create_run_dir(path, job, job.roster.path).path)
    return made


def test_keep_runs_keeps_the_newest_and_the_resumed_one_and_touches_nothing_else(tmp_path: Path) -> None:
    job = load_job(job_file(tmp_path, "keep_runs = 2"))
    newest, second, third, oldest = make_runs(job, [1, 2, 3, 40])
    (rollback,) = make_runs(job, [5], rollback=True)
    other_job = load_job(job_file(tmp_path, "", name="nightly2"))
    (foreign,) = make_runs(other_job, [50])
    other_target = load_job(job_file(tmp_path, "", url="http://127.0.0.1:8/v1.0"))  # same name, other tenant
    (elsewhere,) = make_runs(other_target, [51])
    reports = job.output.directory
    look_alike = reports / "nightly-20250101T000000Z"
    look_alike.mkdir()  # named like a run, but no job.resolved.json: not recognisably one
    plan_file = reports / "nightly-20250101T000000Z-plan.json"
    plan_file.write_text("{}", encoding="utf-8")
    link = reports / "nightly-20240101T000000Z"
    link.symlink_to(oldest)

    pruned = prune_runs(job, keep=oldest, now=NOW)

    assert sorted(pruned) == sorted([third, rollback])
    assert not third.exists() and not rollback.exists()
    for kept in (newest, second, oldest, foreign, elsewhere, look_alike, plan_file, link):
        assert kept.exists() or kept.is_symlink(), kept
    assert [r.path for r in job_runs(job)] == [newest, second, oldest]


def test_keep_days_and_keep_runs_together_prune_a_run_failing_either(tmp_path: Path) -> None:
    job = load_job(job_file(tmp_path, "keep_runs = 3\nkeep_days = 10"))
    r1, r5, r20, r30 = make_runs(job, [1, 5, 20, 30])
    assert sorted(prune_runs(job, now=NOW)) == sorted([r20, r30])
    assert prune_runs(job, now=NOW) == []
    assert [r.path for r in job_runs(job)] == [r1, r5]


def test_without_a_rule_nothing_is_pruned(tmp_path: Path) -> None:
    job = load_job(job_file(tmp_path, ""))
    made = make_runs(job, [1, 400])
    assert prune_runs(job, now=NOW) == [] and all(p.exists() for p in made)


@pytest.mark.parametrize("setting", ["keep_runs = 0", "keep_days = -1", "keep_runs = true", "keep_days = 1.5",
                                     'keep_runs = "3"'])
def test_retention_settings_must_be_positive_whole_numbers(tmp_path: Path, setting: str) -> None:
    with pytest.raises(JobFileError, match=rf"output\.{setting.split()[0]}"):
        load_job(job_file(tmp_path, setting))


def test_apply_and_resume_prune_at_their_start_never_the_resumed_run(tmp_path: Path) -> None:
    users = 3
    app = tenant_with_users(users)
    with served(app) as url:
        job_path = write_job(tmp_path, url, roster(users), settings='[output]\ndirectory = "reports"\nkeep_runs = 1')
        job = load_job(job_path)
        old, middle, recent = (default_run_dir(job, NOW.replace(day=d)) for d in (1, 2, 3))
        for run_dir in (old, middle, recent):
            apply_in_process(job_path, run_dir)  # real, finished runs (the stages alone don't prune)

        asyncio.run(resume_job(RunDir(old)))  # keeps the newest one and the one it resumes
        assert (old.exists(), middle.exists(), recent.exists()) == (True, False, True)

        outcome = asyncio.run(apply_job(job, load_job_roster(job), ApplyOptions()))
    assert (old.exists(), recent.exists()) == (False, True)
    assert [r.path for r in job_runs(job)] == [outcome.run_dir, recent]
