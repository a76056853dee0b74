"""The run lock: one run per job and tenant, refused with who holds it, never left stale.

In process, a second ``run_lock`` of the same key is refused like another process would be
(``flock`` locks belong to the open file, not the process). The kill -9 case uses a real
child process that holds the lock until it is killed. (Two real `provision apply` runs:
tests/cli/test_cli_overlap.py.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.cli import SUBPROCESS_TIMEOUT_S, child_env

from provision.errors import ExitCode, RunLockedError, exit_code_for
from provision.run.jobs import Job, parse_job
from provision.run.lock import lock_key, run_lock


def _job(tmp_path: Path, *, name: str = "nightly", target: dict[str, Any] | None = None) -> Job:
    raw: dict[str, Any] = {
        "name": name,
        "roster": {"path": "roster.csv"},
        "output": {"directory": str(tmp_path / "reports")},
        "target": target or {"url": "http://127.0.0.1:8765/v1.0"},
    }
    return parse_job(raw, base=tmp_path)


def _refusal(job: Job) -> RunLockedError:
    with pytest.raises(RunLockedError) as refused:
        with run_lock(job, command="apply"):
            pass
    return refused.value


def test_a_second_run_is_refused_naming_the_first_and_its_run_directory(tmp_path: Path) -> None:
    job = _job(tmp_path)
    with run_lock(job, command="apply") as held:
        early = _refusal(job)
        assert exit_code_for(early) is ExitCode.REFUSED
        assert str(early).startswith("another run of job nightly against the sandbox at http://127.0.0.1:8765 is in progress: ")
        assert f"pid {os.getpid()} on {socket.gethostname()} since " in str(early)
        assert "run directory not created yet" in str(early)
        assert str(early).endswith("; wait for it or stop it")

        held.record_run_dir(tmp_path / "reports" / "nightly-1")
        late = _refusal(job)
        assert f"run directory {tmp_path / 'reports' / 'nightly-1'}; wait for it or stop it" in str(late)
        assert held.key.path.parent == tmp_path / "reports" / ".locks"


def test_the_lock_is_released_when_the_block_ends_even_by_an_exception(tmp_path: Path) -> None:
    job = _job(tmp_path)
    with run_lock(job, command="apply"):
        pass
    with pytest.raises(ZeroDivisionError):
        with run_lock(job, command="apply"):
            1 / 0
    with run_lock(job, command="resume", run_dir=tmp_path / "r") as again:
        assert again.key == lock_key(job)


def test_other_jobs_and_other_targets_run_side_by_side(tmp_path: Path) -> None:
    job = _job(tmp_path)
    other_job = _job(tmp_path, name="onboarding")
    other_sandbox = _job(tmp_path, target={"url": "http://127.0.0.1:8766/v1.0"})
    tenant_a = _job(tmp_path, target={"kind": "graph", "tenant_id": "11111111-1111-1111-1111-111111111111"})
    tenant_b = _job(tmp_path, target={"kind": "graph", "tenant_id": "22222222-2222-2222-2222-222222222222"})
    with run_lock(job, command="apply"), run_lock(other_job, command="apply"), run_lock(other_sandbox, command="apply"):
        with run_lock(tenant_a, command="apply"), run_lock(tenant_b, command="apply"):
            refused = _refusal(_job(tmp_path, target={"kind": "graph", "tenant_id": "11111111-1111-1111-1111-111111111111"}))
    assert "against tenant 11111111-1111-1111-1111-111111111111 (global)" in str(refused)


def test_one_target_spelled_differently_is_one_lock(tmp_path: Path) -> None:
    spellings = ("http://127.0.0.1:8765/v1.0", "http://127.0.0.1:8765/beta", "http://127.0.0.1:8765/v1.0/", "HTTP://127.0.0.1:8765/beta")
    assert len({lock_key(_job(tmp_path, target={"url": url})).path for url in spellings}) == 1
    tenant = "AbCdEf00-0000-0000-0000-000000000000"
    upper = _job(tmp_path, target={"kind": "graph", "tenant_id": tenant, "api_version": "beta"})
    lower = _job(tmp_path, target={"kind": "graph", "tenant_id": tenant.lower()})
    assert lock_key(upper).path == lock_key(lower).path


_HOLDER = """
import json, sys
from pathlib import Path
from provision.run.jobs import parse_job
from provision.run.lock import run_lock
job = parse_job(json.loads(sys.argv[1]), base=Path(sys.argv[2]))
with run_lock(job, command="apply") as held:
    held.record_run_dir(Path(sys.argv[2]) / "run-of-the-killed")
    print("held", flush=True)
    sys.stdin.read()  # until killed
"""


def test_a_lock_left_by_a_killed_process_does_not_block_the_next_run(tmp_path: Path) -> None:
    raw = {"name": "nightly", "roster": {"path": "roster.csv"}, "output": {"directory": str(tmp_path / "reports")},
           "target": {"url": "http://127.0.0.1:8765/v1.0"}}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, json.dumps(raw), str(tmp_path)],
        env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n", holder.communicate(timeout=SUBPROCESS_TIMEOUT_S)[1]
        job = _job(tmp_path)
        refused = _refusal(job)
        assert f"pid {holder.pid} on " in str(refused)
        assert f"run directory {tmp_path / 'run-of-the-killed'};" in str(refused)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    assert holder.returncode == -signal.SIGKILL
    assert lock_key(job).path.exists()  # the file stays; the kernel dropped the lock with the process
    with run_lock(job, command="resume"):
        pass
