"""One tenant's run inside a fleet worker: ``run_tenant`` against sandboxes served over loopback.

Each tenant gets a sandbox of its own (served by uvicorn in a thread) until the
multi-tenant sandbox exists; outcomes are asserted on the sandbox's final state and stats,
tenant.json, results.csv and run.log.
"""

from __future__ import annotations

import csv
import json
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.killed_journal import killed_in_the_wal_switch

from provision.fleet.config import QuarantineConfig, TenantSpec
from provision.fleet.tenant_run import TenantTask, Watch, run_tenant
from provision.run.jobs import load_job
from provision.run.rundir import create_run_dir
from provision.sandbox.app import SandboxApp, create_app
from provision.sandbox.auth import AUTHENTICATION_ADMINISTRATOR, GLOBAL_READER, USER_ADMINISTRATOR, make_token
from provision.sandbox.server import serve_in_thread


def upn(i: int) -> str:
    return f"user{i:04d}@contoso.example"


def mobile(i: int) -> str:
    return f"+1 425{3_000_000 + i:07d}"


@contextmanager
def tenant_sandbox(users: int, *, profile: str | Path = "unlimited") -> Iterator[tuple[SandboxApp, str]]:
    """A sandbox with ``users`` users (no phones) served on loopback; yields (app, Graph v1.0 URL)."""
    app = create_app(profile=profile)
    for i in range(users):
        app.sandbox.tenant.create_user(upn(i))
    with serve_in_thread(app) as root:
        yield app, f"{root}/v1.0"


def tenant_spec(folder: Path, url: str, users: Sequence[int], *, key: str = "t1", target: str = "",
                settings: str = "") -> TenantSpec:
    """A roster of ``users`` (one mobile each) and a job file aimed at ``url``, loaded as the fleet would."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user,mobile", *(f"{upn(i)},{mobile(i)}" for i in users)]
    (folder / "roster.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    job_file = folder / "job.toml"
    job_file.write_text(
        f'name = "nightly"\n{settings}\n[roster]\npath = "roster.csv"\ndefault_region = "US"\n'
        f'[output]\ndirectory = "reports"\n[target]\nurl = "{url}"\n{target}\n',
        encoding="utf-8",
    )
    return TenantSpec(tenant_id=f"{key}.example", name=key, key=key, groups=("smb",), line=2,
                      job=load_job(job_file), problem=None)


def task_for(spec: TenantSpec, fleet: Path, *, action: str = "apply", quarantine: QuarantineConfig | None = None,
             **kwargs: Any) -> TenantTask:
    return TenantTask(spec=spec, action=action, tenant_dir=fleet / "tenants" / spec.key, fleet_dir=fleet,  # type: ignore[arg-type]
                      quarantine=quarantine or QuarantineConfig(), **kwargs)


def mobiles(app: SandboxApp) -> dict[str, str]:
    tenant = app.sandbox.tenant
    found = {}
    for u in tenant.list_users(top=999)[0]:
        for p in tenant.list_phones(u["userPrincipalName"]):
            if p["phoneType"] == "mobile":
                found[u["userPrincipalName"]] = p["phoneNumber"]
    return found


def results_csv(tenant_dir: Path) -> list[dict[str, str]]:
    with (tenant_dir / "results.csv").open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def tenant_json(tenant_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tenant_dir / "tenant.json").read_text(encoding="utf-8"))
    return data


def test_a_healthy_tenant_converges_and_reports_every_row(tmp_path: Path) -> None:
    with tenant_sandbox(12) as (app, url):
        spec = tenant_spec(tmp_path / "in", url, range(12))
        result = run_tenant(task_for(spec, tmp_path / "fleet"))
        assert mobiles(app) == {upn(i): mobile(i) for i in range(12)}
        assert app.sandbox.stats.to_json()["duplicate_writes"] == 0
        # Again, in another fleet run: nothing left to change.
        again = run_tenant(task_for(spec, tmp_path / "fleet2"))
        assert (again["status"], again["changes"], app.sandbox.stats.to_json()["writes_applied"]) == ("ok", {}, 12)
    tenant_dir = tmp_path / "fleet" / "tenants" / "t1"
    assert tenant_json(tenant_dir) == result
    assert (result["status"], result["exit_code"], result["message"]) == ("ok", 0, "")
    assert result["run_dir"] == "tenants/t1/run"
    assert (result["rows_total"], result["rows_ok"], result["rows_failed"]) == (12, 12, 0)
    assert result["rows_by_outcome"]["applied"] == 12 and result["rows_by_outcome"]["failed"] == 0
    assert result["changes"] == {"create": 12} and result["changes_done"] == {"create": 12}
    assert result["writes_failed"] == 0 and result["operations"] >= 12
    rows = results_csv(tenant_dir)
    assert [r["user"] for r in rows] == [upn(i) for i in range(12)]
    assert {r["outcome"] for r in rows} == {"applied"}
    assert (tenant_dir / "results.csv").read_bytes() == (tenant_dir / "run" / "results.csv").read_bytes()
    assert (tenant_dir / "tenant.json").stat().st_mode & 0o077 == 0


def test_a_stopped_tenant_resumes_without_writing_twice(tmp_path: Path) -> None:
    # The client's pacer starts at 50 writes/s (a 25-write burst), so 100 users take about a
    # second: the fleet process "dies" once the first write landed, long before the last.
    users = 100
    with tenant_sandbox(users) as (app, url):
        spec = tenant_spec(tmp_path / "in", url, range(users))

        def fleet_alive(pid: int) -> bool:
            return int(app.sandbox.stats.to_json()["writes_succeeded"]) == 0

        first = run_tenant(task_for(spec, tmp_path / "fleet", fleet_pid=4242),
                           watch=Watch(fleet_every_s=0.01, alive=fleet_alive))
        assert (first["status"], first["exit_code"]) == ("stopped", 5)
        assert "fleet process" in first["message"]
        landed = len(mobiles(app))
        assert 1 <= landed < users
        assert first["rows_by_outcome"]["planned"] == users - landed

        second = run_tenant(task_for(spec, tmp_path / "fleet"))
        assert (second["status"], second["exit_code"]) == ("ok", 0)
        assert mobiles(app) == {upn(i): mobile(i) for i in range(users)}
        assert app.sandbox.stats.to_json()["duplicate_writes"] == 0
    assert second["rows_by_outcome"]["applied"] == users
    assert {r["outcome"] for r in results_csv(tmp_path / "fleet" / "tenants" / "t1")} == {"applied"}


def test_a_tenant_whose_worker_was_killed_creating_its_journal_applies_afresh(tmp_path: Path) -> None:
    # The worker was SIGKILLed inside Journal.create's switch to WAL mode (the header page
    # written, its rollback journal not yet deleted): nothing was sent, so the retry applies.
    with tenant_sandbox(3) as (app, url):
        spec = tenant_spec(tmp_path / "in", url, range(3))
        assert spec.job is not None
        run = create_run_dir(tmp_path / "fleet" / "tenants" / "t1" / "run", spec.job, spec.job.roster.path)
        killed_in_the_wal_switch(run.journal_file)
        result = run_tenant(task_for(spec, tmp_path / "fleet"))
        assert mobiles(app) == {upn(i): mobile(i) for i in range(3)}
        assert app.sandbox.stats.to_json()["duplicate_writes"] == 0
    assert (result["status"], result["exit_code"], result["message"]) == ("ok", 0, "")
    assert result["rows_by_outcome"]["applied"] == 3


def test_an_unreadable_roster_ends_bad_input_without_a_run(tmp_path: Path) -> None:
    with tenant_sandbox(2) as (app, url):
        spec = tenant_spec(tmp_path / "in", url, range(2))
        (tmp_path / "in" / "roster.csv").unlink()
        result = run_tenant(task_for(spec, tmp_path / "fleet"))
        assert app.sandbox.stats.to_json()["http_requests"] == 0
    tenant_dir = tmp_path / "fleet" / "tenants" / "t1"
    assert (result["status"], result["exit_code"], result["run_dir"]) == ("bad_input", 2, None)
    assert "roster" in result["message"]
    assert not (tenant_dir / "run").exists() and not (tenant_dir / "results.csv").exists()
    assert tenant_json(tenant_dir)["status"] == "bad_input"


def test_a_spec_with_a_problem_ends_bad_input_naming_it(tmp_path: Path) -> None:
    spec = TenantSpec(tenant_id="x.example", name="", key="x", groups=(), line=7, job=None,
                      problem="tenants.csv line 7: mode: 'bogus' is not one of additive, authoritative, fill_empty")
    result = run_tenant(task_for(spec, tmp_path / "fleet"))
    assert (result["status"], result["exit_code"], result["name"]) == ("bad_input", 2, "x.example")
    assert "mode" in result["message"]
    assert tenant_json(tmp_path / "fleet" / "tenants" / "x")["exit_code"] == 2


def test_refused_and_auth_failed_tenants_still_report_every_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T2_TOKEN", make_token(tid="another-tenant"))
    with tenant_sandbox(6) as (app, url):
        refused = tenant_spec(tmp_path / "a", url, range(6), key="a", settings="[safety]\nmax_changes = 2")
        denied = tenant_spec(tmp_path / "b", url, range(6), key="b", target='token_env = "T2_TOKEN"')
        r = run_tenant(task_for(refused, tmp_path / "fleet"))
        d = run_tenant(task_for(denied, tmp_path / "fleet"))
        assert mobiles(app) == {}
    assert (r["status"], r["exit_code"], d["status"], d["exit_code"]) == ("refused", 3, "auth_failed", 4)
    for key, result in (("a", r), ("b", d)):
        rows = results_csv(tmp_path / "fleet" / "tenants" / key)
        assert [x["user"] for x in rows] == [upn(i) for i in range(6)]
        assert {x["outcome"] for x in rows} == {"skipped"}
        assert all(result["message"] in x["reason"] for x in rows)
        assert result["rows_by_outcome"]["skipped"] == 6 and result["run_dir"] is None


def test_fleet_plan_saves_the_plan_and_reports_drift(tmp_path: Path) -> None:
    with tenant_sandbox(4) as (app, url):
        spec = tenant_spec(tmp_path / "in", url, range(4))
        result = run_tenant(task_for(spec, tmp_path / "fleet", action="plan"))
        assert app.sandbox.stats.to_json()["writes_applied"] == 0
    tenant_dir = tmp_path / "fleet" / "tenants" / "t1"
    assert (result["status"], result["exit_code"], result["plan_file"]) == ("drift", 6, "tenants/t1/plan.json")
    assert json.loads((tenant_dir / "plan.json").read_text(encoding="utf-8"))["job"] == "nightly"
    assert result["changes"] == {"create": 4} and result["rows_by_outcome"]["planned"] == 4
    assert {r["outcome"] for r in results_csv(tenant_dir)} == {"planned"}


def test_two_tenants_in_parallel_threads_keep_their_own_run_logs(tmp_path: Path) -> None:
    # Started together, each run takes about a second (its pacer starts at 50 writes/s):
    # their records interleave in one process.
    users = 100
    with tenant_sandbox(users) as (app_a, url_a), tenant_sandbox(users) as (app_b, url_b):
        specs = [tenant_spec(tmp_path / "a", url_a, range(users), key="a"),
                 tenant_spec(tmp_path / "b", url_b, range(users), key="b")]
        both = threading.Barrier(2)

        def run(spec: TenantSpec) -> dict[str, Any]:
            both.wait()
            return run_tenant(task_for(spec, tmp_path / "fleet"))

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(run, specs))
        assert [r["status"] for r in results] == ["ok", "ok"]
        assert len(mobiles(app_a)) == len(mobiles(app_b)) == users
    logs = {key: (tmp_path / "fleet" / "tenants" / key / "run" / "run.log").read_text(encoding="utf-8")
            for key in ("a", "b")}
    for mine, theirs, url in (("a", "b", url_a), ("b", "a", url_b)):
        other_url = url_b if mine == "a" else url_a
        records = [json.loads(line) for line in logs[mine].splitlines()]
        assert any(r.get("target") == f"sandbox at {url}" for r in records)
        assert other_url not in logs[mine]
        assert f"tenants/{theirs}/" not in logs[mine]
        assert sum(r["message"].startswith("progress:") for r in records) >= 2


def test_a_tenant_whose_writes_keep_failing_is_quarantined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A delegated Authentication Administrator may not change privileged users' phones
    # (403): every other roster user is a User Administrator, so half the writes fail.
    token = make_token(scp="UserAuthenticationMethod.ReadWrite.All User.Read.All Policy.Read.All",
                       wids=(AUTHENTICATION_ADMINISTRATOR, GLOBAL_READER))
    monkeypatch.setenv("Q_TOKEN", token)
    users = 200
    with tenant_sandbox(users) as (app, url):
        for i in range(0, users, 2):
            app.sandbox.tenant.set_user_roles(upn(i), [USER_ADMINISTRATOR])
        spec = tenant_spec(tmp_path / "in", url, range(users), target='token_env = "Q_TOKEN"')
        quarantine = QuarantineConfig(failed_writes=6, failed_percent=90, min_writes=10)
        result = run_tenant(task_for(spec, tmp_path / "fleet", quarantine=quarantine),
                            watch=Watch(journal_every_s=0.02))
        stats = app.sandbox.stats.to_json()
    assert (result["status"], result["exit_code"]) == ("quarantined", 1)
    failed, attempted = (int(n) for n in re.findall(r"(\d+) of (\d+) writes failed", result["message"])[0])
    assert failed >= 6 and result["writes_failed"] >= failed
    # Stopped at a clean point: what was in flight when the watcher saw the threshold
    # finished (at most the executor's batches in flight, 8 of up to 20), nothing else left.
    sent = stats["by_operation"]["createPhoneMethod"]
    assert sent <= attempted + 8 * 20 and sent <= users // 2
    assert result["rows_by_outcome"]["planned"] == users - sent
    assert stats["duplicate_writes"] == 0


def test_a_tenant_past_its_timeout_stops_resumably(tmp_path: Path) -> None:
    with tenant_sandbox(5) as (app, url):
        spec = tenant_spec(tmp_path / "in", url, range(5))
        # The timer fires while the tenant is still reading its users: nothing is sent.
        first = run_tenant(task_for(spec, tmp_path / "fleet", timeout_s=0.0))
        assert (first["status"], first["exit_code"]) == ("stopped", 5)
        assert "timeout" in first["message"]
        assert app.sandbox.stats.to_json()["writes_applied"] == 0
        assert first["rows_by_outcome"]["planned"] == 5 and first["run_dir"] == "tenants/t1/run"
        second = run_tenant(task_for(spec, tmp_path / "fleet"))
        assert (second["status"], second["rows_by_outcome"]["applied"]) == ("ok", 5)
        assert mobiles(app) == {upn(i): mobile(i) for i in range(5)}


def test_run_tenant_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where a crash file goes when the tenant's folder is unusable
    with tenant_sandbox(1) as (app, url):
        spec = tenant_spec(tmp_path / "in", url, range(1))
        (tmp_path / "fleet" / "tenants").mkdir(parents=True)
        (tmp_path / "fleet" / "tenants" / "t1").write_text("not a folder", encoding="utf-8")
        result = run_tenant(task_for(spec, tmp_path / "fleet"))
        assert app.sandbox.stats.to_json()["http_requests"] == 0
    assert (result["status"], result["exit_code"]) == ("stopped", 5)
    assert result["message"].startswith("unexpected error: ")
    assert "\n" not in result["message"]


def test_a_run_log_takes_its_own_run_and_unscoped_records_only(tmp_path: Path) -> None:
    from provision.run.logs import attach_run_log, detach, logger, record_crash, run_scope

    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    attached = threading.Barrier(2)
    emitted = threading.Barrier(3)
    done = threading.Barrier(3)
    crashes: dict[str, Path] = {}

    def run(name: str) -> None:
        with run_scope():
            handler = attach_run_log(logs[name])
            try:
                attached.wait()
                logger().info("record of run %s", name)
                emitted.wait()
                done.wait()  # the unscoped record is emitted meanwhile
                crashes[name] = record_crash(RuntimeError(f"crash in {name}"))
            finally:
                detach(handler)

    threads = [threading.Thread(target=run, args=(n,)) for n in logs]
    for t in threads:
        t.start()
    emitted.wait()
    logger().warning("outside any run")
    done.wait()
    for t in threads:
        t.join()
    for name, other in (("a", "b"), ("b", "a")):
        text = logs[name].read_text(encoding="utf-8")
        assert f"record of run {name}" in text and f"record of run {other}" not in text
        assert "outside any run" in text
        assert crashes[name] == logs[name]
        assert f"crash in {name}" in text and f"crash in {other}" not in text


def test_a_shrunken_roster_is_refused_against_the_tenants_previous_fleet_run(tmp_path: Path) -> None:
    # Authoritative mode compares a roster with the tenant's last finished run (min_roster_percent,
    # default 50): in a fleet that run lives in an earlier fleet run directory's tenants/<key>/run.
    with tenant_sandbox(20) as (app, url):
        full = tenant_spec(tmp_path / "full", url, range(20), settings='mode = "authoritative"')
        assert full.job is not None
        reports = full.job.output.directory
        full = TenantSpec(**{**{f: getattr(full, f) for f in TenantSpec.__slots__}, "job": full.job.model_copy(update={"fleet_key": "t1"})})
        first = run_tenant(task_for(full, reports / "fleet-nightly-20261201T020000Z"))
        assert first["status"] == "ok"
        cut = tenant_spec(tmp_path / "cut", url, range(5), settings='mode = "authoritative"')
        assert cut.job is not None
        job = cut.job.model_copy(update={"fleet_key": "t1", "output": full.job.output})
        cut = TenantSpec(**{**{f: getattr(cut, f) for f in TenantSpec.__slots__}, "job": job})
        second = run_tenant(task_for(cut, reports / "fleet-nightly-20261202T020000Z"))
        assert (second["status"], second["exit_code"]) == ("refused", 3)
        assert "20" in second["message"] and len(mobiles(app)) == 20  # nothing deleted
