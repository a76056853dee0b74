"""Two runs of one job against one tenant: the second is refused (exit 3) while the first writes.

Everything is a real process: `provision sandbox serve` (a write-limited profile, so a run
lasts seconds) and `provision apply` / `resume` / `plan` against it. The first apply is
frozen with SIGSTOP once it has written something, so it holds the run lock for as long as
the test needs, whatever the machine's speed; SIGCONT lets it finish.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from support.cli import SUBPROCESS_TIMEOUT_S, Ran, done_changes, run_provision, start_provision

from provision.sandbox.app import create_app
from provision.sandbox.limits import profile_toml

USERS = 120
# The server's write limit sets the run's length (about 4 s): long enough to be caught
# mid-run by a 20 ms poll on any machine.
WRITES_PER_SECOND = 30
JOB_NAME = "nightly"


def _number(i: int) -> str:
    return f"+1 425{4_000_000 + i:07d}"


def _upn(i: int) -> str:
    return f"user{i:04d}@contoso.example"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`provision sandbox serve` holding USERS users without phones; yields its root URL."""
    tenant = create_app().sandbox.tenant
    for i in range(USERS):
        tenant.create_user(_upn(i))
    (tmp_path / "tenant.json").write_text(json.dumps(tenant.to_snapshot()), encoding="utf-8")
    (tmp_path / "slow.toml").write_text(
        profile_toml("slow", throttle={"writes_per_second": WRITES_PER_SECOND, "burst_seconds": 1},
                     latency={"read_ms": 2, "write_ms": 40}),
        encoding="utf-8",
    )
    server = start_provision(
        "sandbox", "serve", "--port", "0", "--snapshot", tmp_path / "tenant.json", "--profile", tmp_path / "slow.toml",
        cwd=tmp_path,
    )
    try:
        assert server.stdout is not None
        v1 = server.stdout.readline().strip()
        assert v1.endswith("/v1.0"), server.communicate(timeout=SUBPROCESS_TIMEOUT_S)[1]
        yield v1.removesuffix("/v1.0")
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=SUBPROCESS_TIMEOUT_S)


def _job(folder: Path, root: str) -> Path:
    rows = ["user,mobile"] + [f"{_upn(i)},{_number(i)}" for i in range(USERS)]
    (folder / "roster.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    job = folder / "job.toml"
    job.write_text(
        f'name = "{JOB_NAME}"\n[roster]\npath = "roster.csv"\n[output]\ndirectory = "reports"\n'
        f'[target]\nurl = "{root}/v1.0"\n',
        encoding="utf-8",
    )
    return job


def _wait_until_writing(proc: subprocess.Popen[str], run_dir: Path) -> None:
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
    while done_changes(run_dir) < 1:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the first run never started writing"
        time.sleep(0.02)
    assert done_changes(run_dir) < USERS, "the first run finished before it could be caught mid-run"


def _error(ran: Ran) -> str:
    errors = [e["message"] for e in ran.json_lines() if e.get("event") == "log" and e.get("level") == "error"]
    assert errors, ran.stderr[-2000:]
    return str(errors[-1])


def _stats(root: str) -> dict[str, Any]:
    response = httpx.get(f"{root}/_sandbox/stats", timeout=30)
    response.raise_for_status()
    return dict(response.json())


def _phones(root: str) -> dict[str, list[tuple[str, str]]]:
    response = httpx.get(f"{root}/_sandbox/snapshot", timeout=30)
    response.raise_for_status()
    return {u["upn"]: [(p["phoneType"], p["phoneNumber"]) for p in u["phones"]] for u in response.json()["users"]}


def test_a_second_apply_is_refused_while_the_first_runs_and_runs_after_it(served: str, tmp_path: Path) -> None:
    job = _job(tmp_path, served)
    first_dir, second_dir = tmp_path / "reports" / "first", tmp_path / "reports" / "second"
    first = start_provision("apply", job, "--yes", "--run-dir", first_dir, cwd=tmp_path, json_logs=True)
    try:
        _wait_until_writing(first, first_dir)
        os.kill(first.pid, signal.SIGSTOP)  # holds the lock, mid-run, until SIGCONT
        try:
            second = run_provision(["apply", job, "--yes", "--run-dir", second_dir, "--log-format", "json"], cwd=tmp_path)
            resumed = run_provision(["resume", first_dir, "--log-format", "json"], cwd=tmp_path)
            planned = run_provision(["plan", job, "--log-format", "json"], cwd=tmp_path)
        finally:
            os.kill(first.pid, signal.SIGCONT)
        _, first_err = first.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=SUBPROCESS_TIMEOUT_S)

    assert second.exit_code == 3, second.stderr[-2000:]
    message = _error(second)
    assert message == (
        f"error: another run of job {JOB_NAME} against the sandbox at {served} is in progress: "
        f"pid {first.pid} on {socket.gethostname()} since {message.split(' since ')[1].split(' ')[0]} (provision apply), "
        f"run directory {first_dir}; wait for it or stop it"
    )
    assert not second_dir.exists()
    assert resumed.exit_code == 3 and f"pid {first.pid} on " in _error(resumed)
    assert planned.exit_code == 0, planned.stderr[-2000:]  # plan only reads: no lock

    assert first.returncode == 0, first_err[-2000:]
    after = run_provision(["apply", job, "--yes", "--log-format", "json"], cwd=tmp_path)
    assert after.exit_code == 0, after.stderr[-2000:]
    assert after.result("run")["rows_ok"] == USERS

    stats = _stats(served)
    assert stats["duplicate_writes"] == 0
    assert stats["writes_applied"] == USERS  # one write per change: nobody sent them twice
    phones = _phones(served)
    assert all(phones[_upn(i)] == [("mobile", _number(i))] for i in range(USERS))


def test_a_run_killed_with_sigkill_leaves_no_lock_behind(served: str, tmp_path: Path) -> None:
    job = _job(tmp_path, served)
    run_dir = tmp_path / "reports" / "killed"
    first = start_provision("apply", job, "--yes", "--run-dir", run_dir, cwd=tmp_path, json_logs=True)
    try:
        _wait_until_writing(first, run_dir)
    finally:
        first.kill()  # SIGKILL: no cleanup of any kind runs
        first.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    assert first.returncode == -signal.SIGKILL

    resumed = run_provision(["resume", run_dir, "--log-format", "json"], cwd=tmp_path)
    assert resumed.exit_code == 0, resumed.stderr[-2000:]
    again = run_provision(["apply", job, "--yes", "--log-format", "json"], cwd=tmp_path)
    assert again.exit_code == 0, again.stderr[-2000:]

    assert _stats(served)["duplicate_writes"] == 0
    phones = _phones(served)
    assert all(phones[_upn(i)] == [("mobile", _number(i))] for i in range(USERS))
