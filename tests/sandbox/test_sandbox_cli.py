"""`provision sandbox serve | token | snapshot`, and how the sandbox processes stop.

`serve` stops gracefully on Ctrl-C and SIGTERM alike and saves (--save); the embedded
sandbox a job starts ignores a terminal's Ctrl-C and stops, saving, when the job stops it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support.cli import SUBPROCESS_TIMEOUT_S, child_env, done_changes, run_provision, start_provision
from typer.testing import CliRunner

from provision.cli import app
from provision.errors import ExitCode
from provision.executor.journal import Journal
from provision.masking import mask
from provision.sandbox.app import create_app
from provision.sandbox.auth import SANDBOX_TENANT_ID, decode_token
from provision.sandbox.limits import profile_toml

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "sandbox_tenant.json"
runner = CliRunner()


def test_token_prints_application_and_delegated_tokens() -> None:
    app_token = runner.invoke(app, ["sandbox", "token", "--roles", "User.Read.All, Policy.Read.All"])
    assert app_token.exit_code == 0
    principal = decode_token(app_token.stdout.strip())
    assert not principal.delegated and principal.permissions == {"user.read.all", "policy.read.all"}
    assert principal.tenant_id == SANDBOX_TENANT_ID

    delegated = runner.invoke(
        app, ["sandbox", "token", "--scp", "UserAuthenticationMethod.Read.All User.Read", "--wids", "a,b", "--tid", "t-1"]
    )
    principal = decode_token(delegated.stdout.strip())
    assert principal.delegated and principal.wids == {"a", "b"} and principal.tenant_id == "t-1"
    assert principal.permissions == {"userauthenticationmethod.read.all", "user.read"}

    default = decode_token(runner.invoke(app, ["sandbox", "token"]).stdout.strip())
    assert "userauthenticationmethod.readwrite.all" in default.permissions

    both = runner.invoke(app, ["sandbox", "token", "--roles", "x", "--scp", "y"])
    assert both.exit_code == 2


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_serve_refuses_non_loopback_hosts(host: str) -> None:
    result = runner.invoke(app, ["sandbox", "serve", "--host", host])
    assert result.exit_code == 2
    assert "loopback" in result.stderr


def test_snapshot_refuses_non_loopback_urls(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sandbox", "snapshot", "--url", "http://10.0.0.1:8080/v1.0", "--out", str(tmp_path / "s.json")])
    assert result.exit_code == 2 and not (tmp_path / "s.json").exists()


def test_serve_prints_urls_serves_snapshots_and_saves_on_interrupt(tmp_path: Path) -> None:
    saved = tmp_path / "saved.json"
    process = start_provision("sandbox", "serve", "--port", "0", "--snapshot", SAMPLE, "--save", saved, "--profile", "strict", cwd=tmp_path)
    try:
        assert process.stdout is not None
        v1 = process.stdout.readline().strip()
        beta = process.stdout.readline().strip()
        assert v1.startswith("http://127.0.0.1:") and v1.endswith("/v1.0")
        assert beta == v1.removesuffix("/v1.0") + "/beta"

        token = runner.invoke(app, ["sandbox", "token", "--url", v1]).stdout.strip()
        assert decode_token(token).tenant_id == json.loads(SAMPLE.read_text())["tenant_id"]
        created = httpx.post(
            f"{v1}/users/adele.vance%40contoso.com/authentication/phoneMethods",
            json={"phoneNumber": "+1 2065550199", "phoneType": "office"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201

        fetched = tmp_path / "fetched.json"
        result = runner.invoke(app, ["sandbox", "snapshot", "--url", v1, "--out", str(fetched)])
        assert result.exit_code == 0
        adele = next(u for u in json.loads(fetched.read_text())["users"] if u["upn"] == "adele.vance@contoso.com")
        assert adele["phones"] == [{"phoneType": "office", "phoneNumber": "+1 2065550199", "sms": "none"}]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    assert json.loads(saved.read_text()) == json.loads(fetched.read_text())


NEW_NUMBER = "+1 2065550188"


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_gracefully_and_saves_on_sigterm_and_sigint(tmp_path: Path, stop_signal: signal.Signals) -> None:
    saved = tmp_path / "saved.json"
    process = start_provision("sandbox", "serve", "--port", "0", "--snapshot", SAMPLE, "--save", saved, cwd=tmp_path)
    try:
        assert process.stdout is not None
        v1 = process.stdout.readline().strip()
        token = runner.invoke(app, ["sandbox", "token", "--url", v1]).stdout.strip()
        created = httpx.post(
            f"{v1}/users/adele.vance%40contoso.com/authentication/phoneMethods",
            json={"phoneNumber": NEW_NUMBER, "phoneType": "mobile"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201
    finally:
        process.send_signal(stop_signal)
        _, err = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)

    assert process.returncode == 0, err[-2000:]
    assert f"snapshot saved to {saved}" in err
    adele = next(u for u in json.loads(saved.read_text(encoding="utf-8"))["users"] if u["upn"] == "adele.vance@contoso.com")
    # Structure and a masked comparison: a failing assert must not print the number.
    assert [p["phoneType"] for p in adele["phones"]] == ["mobile"]
    assert [mask(p["phoneNumber"]) for p in adele["phones"]] == [mask(NEW_NUMBER)]
    assert all(p["phoneNumber"] == NEW_NUMBER for p in adele["phones"])


USERS = 120
WRITES_PER_SECOND = 30  # about 4 s of writing: caught mid-run by a 20 ms poll


def test_a_terminal_ctrl_c_stops_the_job_not_its_embedded_sandbox(tmp_path: Path) -> None:
    """Ctrl-C on a terminal signals the whole foreground process group: the job and its
    embedded sandbox. The job stops gracefully (in-flight work journaled, exit 1, resume
    command); the sandbox keeps answering until the job stops it, then saves its state."""
    seed = create_app().sandbox.tenant
    for i in range(USERS):
        seed.create_user(f"user{i:04d}@contoso.example")
    (tmp_path / "seed.json").write_text(json.dumps(seed.to_snapshot()), encoding="utf-8")
    (tmp_path / "slow.toml").write_text(
        profile_toml("slow", throttle={"writes_per_second": WRITES_PER_SECOND, "burst_seconds": 1}, latency={"write_ms": 40}),
        encoding="utf-8",
    )
    rows = ["user,mobile"] + [f"user{i:04d}@contoso.example,+1 425{5_000_000 + i:07d}" for i in range(USERS)]
    (tmp_path / "roster.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    job = tmp_path / "job.toml"
    job.write_text(
        '[roster]\npath = "roster.csv"\n[target]\nsnapshot = "seed.json"\nprofile = "slow.toml"\n', encoding="utf-8"
    )
    run_dir = tmp_path / "run"
    # Its own session: a process group of its own to signal, as a terminal would.
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision", "apply", str(job), "--yes", "--run-dir", str(run_dir), "--log-format", "json"],
        cwd=tmp_path, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
        while done_changes(run_dir) < 1:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)

    assert proc.returncode == ExitCode.STOPPED, err[-2000:]
    result = [json.loads(line) for line in err.splitlines() if '"event": "result"' in line][-1]
    assert result["status"] == "interrupted" and result["resume"] == f"provision resume {run_dir}"
    journal = Journal.open(run_dir, read_only=True)
    counts = journal.counts()
    journal.close()
    assert counts.in_flight == 0 and 0 < counts.done < USERS

    resumed = run_provision(["resume", run_dir, "--log-format", "json"], cwd=tmp_path)
    assert resumed.exit_code == 0, resumed.stderr[-2000:]
    state = json.loads((tmp_path / ".provision" / "sandbox" / "tenant.json").read_text(encoding="utf-8"))
    phones = {u["upn"]: [p["phoneType"] for p in u["phones"]] for u in state["users"]}
    assert len(phones) == USERS and all(types == ["mobile"] for types in phones.values())
