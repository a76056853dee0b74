"""Ctrl-C or SIGTERM during `provision apply`: dispatch stops, in-flight work is journaled,
the run exits 5 with summary.json saying `interrupted`, and resume finishes.

The job runs as a real process against a loopback sandbox in this process (slow enough
writes that there is something to interrupt). SIGINT is what a terminal's Ctrl-C sends;
SIGTERM is what a service manager or `kill` sends.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from support.cli import done_changes, start_provision

from provision.executor.journal import Journal
from provision.sandbox.app import create_app
from provision.sandbox.limits import parse_profile
from provision.sandbox.server import serve_in_thread

USERS = 200
# The server's write limit, not the client's pacing, sets how long the run takes (≥ 5 s),
# so the interrupt always lands mid-run.
WRITES_PER_SECOND = 40


def _number(i: int) -> str:
    return f"+1 425{3_000_000 + i:07d}"


def _job(folder: Path, url: str) -> Path:
    rows = ["user,mobile"] + [f"user{i:04d}@contoso.example,{_number(i)}" for i in range(USERS)]
    (folder / "roster.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    job = folder / "job.toml"
    job.write_text(f'[roster]\npath = "roster.csv"\n[target]\nurl = "{url}/v1.0"\n', encoding="utf-8")
    return job


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_stops_cleanly_and_resume_finishes(tmp_path: Path, stop_signal: signal.Signals) -> None:
    profile = parse_profile(
        {"throttle": {"writes_per_second": WRITES_PER_SECOND, "burst_seconds": 1}, "latency": {"read_ms": 2, "write_ms": 40}},
        "interrupt",
    )
    app = create_app(profile=profile)
    for i in range(USERS):
        app.sandbox.tenant.create_user(f"user{i:04d}@contoso.example")
    run_dir = tmp_path / "run"
    with serve_in_thread(app) as root:
        job = _job(tmp_path, root)
        proc = start_provision("apply", job, "--yes", "--run-dir", run_dir, cwd=tmp_path, json_logs=True)
        deadline = time.monotonic() + 60
        while done_changes(run_dir) < 20:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.02)
        proc.send_signal(stop_signal)
        _, err = proc.communicate(timeout=60)

        assert proc.returncode == 5, err[-2000:]
        for line in err.splitlines():  # --log-format json: every stderr line is JSON, numbers masked
            json.loads(line)
            assert not any(_number(i) in line or _number(i).replace(" ", "") in line for i in range(USERS))
        result = next(json.loads(line) for line in err.splitlines() if '"event": "result"' in line and '"run"' in line)
        assert result["status"] == "interrupted"
        assert result["resume"] == f"provision resume {run_dir}"
        journal = Journal.open(run_dir, read_only=True)
        counts = journal.counts()
        journal.close()
        assert counts.in_flight == 0  # everything sent was answered and journaled before exiting
        assert 0 < counts.done < USERS and counts.pending == USERS - counts.done
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        assert summary["rows_by_outcome"]["planned"] == counts.pending  # not reached yet, and said so
        assert summary["status"] == "interrupted" and summary["exit_code"] == 5
        assert summary["resume_command"] and str(run_dir) in summary["resume_command"]

        resumed = start_provision("resume", run_dir, cwd=tmp_path, json_logs=True)
        _, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err[-2000:]

    tenant = app.sandbox.tenant
    for i in range(USERS):
        phones = tenant.list_phones(f"user{i:04d}@contoso.example")
        assert [(p["phoneType"], p["phoneNumber"]) for p in phones] == [("mobile", _number(i))]
    assert app.sandbox.stats.to_json()["duplicate_writes"] == 0
