"""kill -9 at several points of a 2,000-user run, then resume: nothing lost, nothing written twice.

The job runs as a subprocess through the CLI (``provision apply JOB --yes --run-dir DIR``,
then ``provision resume DIR``); the sandbox runs in this process over loopback HTTP, so it
survives the kills. The test watches the run journal (read-only, as
``provision report`` would) and sends SIGKILL once it holds N ``done`` changes, for a few
N; then it resumes, and after the last resume the tenant must hold exactly the plan's
after-state, with every write applied exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import executor_scenario as sc
import pytest
from support.cli import done_changes, start_provision

from provision.executor.journal import ChangeStatus, Journal
from provision.model import UNREADABLE_SMS_POLICY
from provision.planner import PlanPolicy, plan
from provision.sandbox.app import create_app
from provision.sandbox.limits import parse_profile
from provision.sandbox.server import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
PROFILE = {
    "latency": {"read_ms": 3, "write_ms": 5, "jitter": 0.3},
    "faults": {"http_503": 0.01, "http_504": 0.005, "connection_reset": 0.01},
    "consistency": {"replication_lag_ms": 300},
}
USERS = 2000


def _start(*args: str) -> subprocess.Popen[bytes]:
    return start_provision(*args, cwd=ROOT, json_logs=True, merge_stderr=True, text=False)


def _write_job(folder: Path, root: str, desired: dict[str, sc.DesiredUser]) -> Path:
    lines = ["user,mobile,alternate_mobile,office"]
    for user in desired.values():
        p = user.phones
        lines.append(f"{user.user},{p.get(sc.MOBILE) or ''},{p.get(sc.ALT) or ''},{p.get(sc.OFFICE) or ''}")
    (folder / "roster.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = folder / "job.toml"
    job.write_text(
        f'''name = "kill-test"
mode = "additive"
[roster]
path = "roster.csv"
[output]
directory = "out"
[target]
kind = "sandbox"
url = "{root}/v1.0"
''',
        encoding="utf-8",
    )
    return job


def _kill_after(proc: subprocess.Popen[bytes], run_dir: Path, done: int, deadline_s: float = 60) -> int:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        seen = done_changes(run_dir)
        if seen >= done:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if os.environ.get("EXECUTOR_KILL_TRACE"):
                journal = Journal.open(run_dir, read_only=True)
                print(f"killed at {seen} done: {journal.counts()}", file=sys.stderr)
                journal.close()
            return seen
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"the job ended before {done} changes were done (exit {proc.returncode}):\n{out}")
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"no {done} done changes within {deadline_s} s")


@pytest.mark.slow
def test_kill_9_at_several_points_then_resume(tmp_path: Path) -> None:
    app = create_app(profile=parse_profile(PROFILE, "kill"), seed=5)
    tenant = app.sandbox.tenant
    sc.add_users(tenant, USERS)
    desired = sc.onboarding_roster(USERS, duplicates=3)
    before = tenant.to_snapshot()
    the_plan = plan(desired, sc.current_from_tenant(tenant, list(desired)), UNREADABLE_SMS_POLICY, PlanPolicy())
    total = len(the_plan.changes)
    run_dir = tmp_path / "run"
    kills: list[int] = []
    with serve_in_thread(app) as root:
        job = _write_job(tmp_path, root, desired)
        proc = _start("apply", str(job), "--yes", "--run-dir", str(run_dir))
        kills.append(_kill_after(proc, run_dir, 400))
        for target in (total // 3, (2 * total) // 3):
            proc = _start("resume", str(run_dir))
            kills.append(_kill_after(proc, run_dir, target))
        proc = _start("resume", str(run_dir))
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out.decode()[-3000:]

    assert kills == sorted(kills) and kills[-1] < total  # really killed mid-run, three times
    journal = Journal.open(run_dir, read_only=True)
    entries = list(journal.changes())
    journal.close()
    assert len(entries) == total
    assert all(e.status is ChangeStatus.DONE for e in entries)
    assert sc.actual_phones(tenant.to_snapshot()) == sc.expected_phones(before, the_plan)
    tenant.check_invariants()
    stats = app.sandbox.stats.to_json()
    assert stats["duplicate_writes"] == 0
    assert stats["writes_applied"] == total  # nothing written twice, nothing lost
    assert "badRequest" not in stats["by_error_code"]
