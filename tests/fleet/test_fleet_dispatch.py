"""The Dask dispatcher on its own, with stand-in task functions (``fleet_stand_ins``): results
gathered in order and written to tenant.json, the global cap, lost workers re-dispatched,
a tenant whose every attempt is lost ends ``lost`` (exit 5), and worker processes that may
start child processes. One embedded cluster serves the module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import fleet_stand_ins
import pytest

from provision.fleet.config import QuarantineConfig, TenantSpec
from provision.fleet.dispatch import Executor, open_executor, run_fleet
from provision.fleet.tenant_run import TenantTask


@pytest.fixture(scope="module")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Executor]:
    log = tmp_path_factory.mktemp("dask") / "fleet.log"
    with open_executor(None, workers=2, threads_per_worker=2, log_file=log) as ex:
        yield ex


def tasks(fleet_dir: Path, n: int) -> list[TenantTask]:
    return [
        TenantTask(
            spec=TenantSpec(f"tenant-{i}.example", f"Tenant {i}", f"t{i}", ("smb",), i + 2, None, "stand-in"),
            action="apply",
            tenant_dir=fleet_dir / "tenants" / f"t{i}",
            fleet_dir=fleet_dir,
            quarantine=QuarantineConfig(),
        )
        for i in range(n)
    ]


def tenant_json(task: TenantTask) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((task.tenant_dir / "tenant.json").read_text(encoding="utf-8"))
    return doc


def test_results_come_back_in_task_order_written_to_tenant_json_and_told_as_they_arrive(
    executor: Executor, tmp_path: Path
) -> None:
    work = tasks(tmp_path, 3)
    heard: list[str] = []

    results = run_fleet(work, executor=executor, max_parallel=3, retries=0, fn=fleet_stand_ins.echo,
                        on_result=lambda r: heard.append(r["tenant_id"]))

    assert [r["tenant_id"] for r in results] == [t.spec.tenant_id for t in work]
    assert sorted(heard) == sorted(t.spec.tenant_id for t in work)
    for task, result in zip(work, results):
        assert result["attempts"] == 1
        assert tenant_json(task) == result
        assert (task.tenant_dir / "tenant.json").stat().st_mode & 0o777 == 0o600
        # a worker process may start child processes (a big roster's reader pool)
        assert result["daemon"] is False and result["child"] == 49
    assert executor.embedded and "2 worker processes x 2 threads" in executor.description


def test_never_more_tenants_in_flight_than_the_cap(executor: Executor, tmp_path: Path) -> None:
    # each task waits a moment for company: with a cap of 1 none ever comes
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "wait_s").write_text("0.2")
    capped = run_fleet(tasks(tmp_path / "a", 4), executor=executor, max_parallel=1, retries=0,
                       fn=fleet_stand_ins.count_in_flight)
    assert max(r["seen"] for r in capped) == 1

    # with a cap of 2 (and 4 worker threads), a second one joins; a third never does
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "wait_s").write_text("30")
    two = run_fleet(tasks(tmp_path / "b", 6), executor=executor, max_parallel=2, retries=0,
                    fn=fleet_stand_ins.count_in_flight)
    assert max(r["seen"] for r in two) == 2


def test_a_tenant_whose_worker_is_lost_is_dispatched_again(executor: Executor, tmp_path: Path) -> None:
    work = tasks(tmp_path, 2)

    results = run_fleet(work, executor=executor, max_parallel=2, retries=3, fn=fleet_stand_ins.die_once)

    for task, result in zip(work, results):
        # 2 attempts; more when another kill took an attempt down with it (the other tenant's,
        # on the same worker, or a task handed to a worker just killed)
        assert result["status"] == "ok" and 2 <= result["attempts"] <= 4
        assert tenant_json(task)["attempts"] == result["attempts"]
        assert result["worker"] != f"pid:{result['killed']}"  # finished on a fresh worker process


def test_a_tenant_whose_every_attempt_is_lost_ends_lost_with_exit_5(executor: Executor, tmp_path: Path) -> None:
    (task,) = tasks(tmp_path, 1)

    (result,) = run_fleet([task], executor=executor, max_parallel=1, retries=1, fn=fleet_stand_ins.always_die)

    assert result["status"] == "lost" and result["exit_code"] == 5 and result["attempts"] == 2
    # each attempt ran it, unless it was handed to a worker the previous one had just killed
    assert (task.tenant_dir / "attempts").read_text() in ("x", "xx")
    assert f"provision fleet resume {tmp_path}" in result["message"]
    assert tenant_json(task)["status"] == "lost"


# -- the fleet run directory -------------------------------------------------------------------


def test_the_fleet_directory_knows_which_tenants_to_resume_and_is_locked_while_used(tmp_path: Path) -> None:
    from provision.errors import ExitCode, RunLockedError
    from provision.fleet.config import load_fleet
    from provision.fleet.rundir import create_fleet_dir, fleet_lock, open_fleet_dir, write_tenant_result

    (tmp_path / "job.toml").write_text('name = "j"\n', encoding="utf-8")
    (tmp_path / "tenants.csv").write_text("tenant_id,roster\na,a.csv\nb,b.csv\nc,c.csv\nd,d.csv\n", encoding="utf-8")
    (tmp_path / "fleet.toml").write_text(
        'name = "f"\njob_template = "job.toml"\ntenants = "tenants.csv"\nexclude = ["d"]\n'
        '[target]\nkind = "sandbox"\nurl = "http://127.0.0.1:9/v1.0"\n', encoding="utf-8")
    fleet = load_fleet(tmp_path / "fleet.toml")

    made = create_fleet_dir(fleet, action="apply", executor="test")
    fleet_dir = open_fleet_dir(made.path)
    assert made.path.parent == tmp_path / "reports" and made.path.name.startswith("fleet-f-")
    assert made.path.stat().st_mode & 0o777 == 0o700
    assert (made.path / "fleet.toml").read_bytes() == (tmp_path / "fleet.toml").read_bytes()
    assert (made.path / "tenants.csv").read_bytes() == (tmp_path / "tenants.csv").read_bytes()
    manifest = fleet_dir.manifest()
    assert [t["key"] for t in manifest["tenants"]] == ["a", "b", "c"]
    assert manifest["excluded"] == [{"tenant_id": "d", "reason": "excluded by the fleet file"}]

    write_tenant_result(fleet_dir.tenant_dir("a"), {"tenant_id": "a", "key": "a", "status": "rows_failed", "exit_code": 1})
    write_tenant_result(fleet_dir.tenant_dir("b"), {"tenant_id": "b", "key": "b", "status": "lost", "exit_code": 5})
    assert fleet_dir.unfinished() == ["b", "c"]  # lost, and never finished
    never = fleet_dir.results()[2]
    assert (never["status"], never["exit_code"]) == ("stopped", 5) and "fleet resume" in never["message"]

    with fleet_lock(fleet_dir, command="apply"):
        with pytest.raises(RunLockedError) as refused:
            with fleet_lock(fleet_dir, command="resume"):
                pass
    assert refused.value.exit_code is ExitCode.REFUSED and "fleet apply, pid" in str(refused.value)
    with fleet_lock(fleet_dir, command="resume"):  # released when its holder let go
        pass


def test_a_tenant_that_never_answers_is_given_up_on_and_the_fleet_goes_on(executor: Executor, tmp_path: Path) -> None:
    import dataclasses

    stuck, *others = tasks(tmp_path, 3)
    stuck = dataclasses.replace(stuck, timeout_s=0.1)
    try:
        results = run_fleet([stuck], executor=executor, max_parallel=2, retries=0, fn=fleet_stand_ins.hang,
                            timeout_grace_s=0.5)
        after = run_fleet(others, executor=executor, max_parallel=2, retries=0, fn=fleet_stand_ins.echo)
    finally:
        (stuck.tenant_dir / "hanging").unlink(missing_ok=True)  # let the worker thread go

    (given_up,) = results
    assert (given_up["status"], given_up["exit_code"]) == ("stopped", 5)
    assert "after the tenant timeout" in given_up["message"] and "fleet resume" in given_up["message"]
    assert tenant_json(stuck)["status"] == "stopped"
    assert [r["status"] for r in after] == ["ok", "ok"]


def test_resume_aims_started_runs_at_the_sandbox_this_command_started(tmp_path: Path) -> None:
    from provision.fleet.config import load_fleet, with_sandbox_urls
    from provision.fleet.rundir import create_fleet_dir
    from provision.run.jobs import Job, SandboxTarget
    from provision.run.rundir import create_run_dir

    (tmp_path / "snapshots").mkdir()
    (tmp_path / "job.toml").write_text('name = "j"\n', encoding="utf-8")
    (tmp_path / "a.csv").write_text("upn,mobile\nu@a.example,+1 2065550100\n", encoding="utf-8")
    (tmp_path / "tenants.csv").write_text("tenant_id,roster\na,a.csv\nb,a.csv\n", encoding="utf-8")
    (tmp_path / "fleet.toml").write_text(
        'name = "f"\njob_template = "job.toml"\ntenants = "tenants.csv"\n'
        '[target]\nkind = "sandbox"\nsnapshots = "snapshots"\n', encoding="utf-8")
    first = with_sandbox_urls(load_fleet(tmp_path / "fleet.toml"), "http://127.0.0.1:1111/v1.0")
    fleet_dir = create_fleet_dir(first, action="apply", executor="test")
    job_a = first.tenants[0].job
    assert job_a is not None
    create_run_dir(fleet_dir.tenant_dir("a") / "run", job_a, tmp_path / "a.csv")  # "a" started; "b" never did

    later = with_sandbox_urls(load_fleet(tmp_path / "fleet.toml"), "http://127.0.0.1:2222/v1.0")
    fleet_dir.point_runs_at(["a", "b"], {t.key: t for t in later.tenants})

    resolved = Job.model_validate_json((fleet_dir.tenant_dir("a") / "run" / "job.resolved.json").read_text(encoding="utf-8"))
    assert isinstance(resolved.target, SandboxTarget)
    assert resolved.target.url == "http://127.0.0.1:2222/v1.0" and resolved.target.tenant_id == "a"
    assert not (fleet_dir.tenant_dir("b") / "run").exists()
