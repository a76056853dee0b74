"""The sandbox killed mid-apply: `apply` exits 5 within the breaker's bound, nothing failed,
and `provision resume` against the sandbox restarted on the same state and port finishes.

Everything runs as real processes: `provision sandbox serve` (stopped with SIGTERM, so it
saves its tenant, as a service manager stops it) and `provision apply` / `provision resume`
with a short circuit-breaker bound from the environment (``PROVISION_UNREACHABLE_AFTER_S``)
and a short request timeout (``PROVISION_REQUEST_TIMEOUT_S``).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support.cli import child_env, done_changes, start_provision

from provision.executor.journal import Journal
from provision.sandbox.app import create_app

USERS = 300
BOUND_S = 3.0
REQUEST_TIMEOUT_S = 2.0
ENV = {"PROVISION_UNREACHABLE_AFTER_S": str(BOUND_S), "PROVISION_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S)}
# Slow enough writes (the server's write limit sets the pace) that the kill lands mid-run.
PROFILE = "[throttle]\nwrites_per_second = 60\nburst_seconds = 1\n[latency]\nwrite_ms = 20\n"


def _upn(i: int) -> str:
    return f"user{i:04d}@contoso.example"


def _number(i: int) -> str:
    return f"+1 425{4_000_000 + i:07d}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(folder: Path, port: int, snapshot: Path, save: Path) -> subprocess.Popen[str]:
    """`provision sandbox serve` on ``port``, once it answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision", "sandbox", "serve", "--port", str(port), "--snapshot", str(snapshot),
         "--save", str(save), "--profile", str(folder / "profile.toml")],
        cwd=folder, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the v1.0 URL, once it listens
    assert line.startswith("http://127.0.0.1:"), (line, proc.stderr.read() if proc.stderr else "")
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)  # graceful: it saves its tenant
    proc.wait(timeout=30)


def _job(folder: Path, port: int) -> Path:
    rows = ["user,mobile"] + [f"{_upn(i)},{_number(i)}" for i in range(USERS)]
    (folder / "roster.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    job = folder / "job.toml"
    job.write_text(f'[roster]\npath = "roster.csv"\n[target]\nurl = "http://127.0.0.1:{port}/v1.0"\n', encoding="utf-8")
    return job


def test_sandbox_killed_mid_apply_exits_5_in_bound_then_resume_finishes(tmp_path: Path) -> None:
    app = create_app()
    for i in range(USERS):
        app.sandbox.tenant.create_user(_upn(i))
    seed, saved, final = tmp_path / "seed.json", tmp_path / "saved.json", tmp_path / "final.json"
    seed.write_text(json.dumps(app.sandbox.tenant.to_snapshot()), encoding="utf-8")
    (tmp_path / "profile.toml").write_text(PROFILE, encoding="utf-8")
    port = _free_port()
    job, run_dir = _job(tmp_path, port), tmp_path / "run"

    sandbox = _serve(tmp_path, port, seed, saved)
    try:
        apply = start_provision("apply", job, "--yes", "--run-dir", run_dir, cwd=tmp_path, env=ENV, json_logs=True)
        deadline = time.monotonic() + 60
        while done_changes(run_dir) < 30:
            assert apply.poll() is None, apply.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.02)
        _stop(sandbox)  # the target goes away mid-apply
        gone_at = time.monotonic()
        _, err = apply.communicate(timeout=60)
        took = time.monotonic() - gone_at
    finally:
        if sandbox.poll() is None:
            sandbox.kill()

    assert apply.returncode == 5, err[-3000:]  # stopped before it finished: resume it
    # Within the breaker's bound (plus one request timeout and the reports), not the
    # retry policy's two minutes, and not never.
    assert took < BOUND_S + REQUEST_TIMEOUT_S + 15, took
    journal = Journal.open(run_dir, read_only=True)
    counts = journal.counts()
    meta = journal.meta()
    journal.close()
    assert counts.failed == 0 and counts.skipped == 0  # the outage failed nothing
    assert 0 < counts.done < USERS and meta["status"] == "unreachable"
    assert f"provision resume {run_dir}" in err

    sandbox = _serve(tmp_path, port, saved, final)  # back, on the same state and port
    try:
        resumed = start_provision("resume", run_dir, cwd=tmp_path, env=ENV, json_logs=True)
        _, err = resumed.communicate(timeout=120)
        assert resumed.returncode in (0, 1), err[-3000:]
        root = f"http://127.0.0.1:{port}"
        snapshot = httpx.get(f"{root}/_sandbox/snapshot", timeout=30).json()
        stats = httpx.get(f"{root}/_sandbox/stats", timeout=30).json()
    finally:
        _stop(sandbox)

    phones = {u["upn"]: [(p["phoneType"], p["phoneNumber"]) for p in u.get("phones", [])] for u in snapshot["users"]}
    assert phones == {_upn(i): [("mobile", _number(i))] for i in range(USERS)}  # every user at the roster's state
    assert stats["duplicate_writes"] == 0 and "badRequest" not in stats["by_error_code"]
    journal = Journal.open(run_dir, read_only=True)
    assert journal.counts().done == USERS
    journal.close()
