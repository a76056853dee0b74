"""``[notify]``: a run's end posted to a webhook, against a loopback receiver.

Runs go through ``pipeline`` (and ``plan --check`` through the CLI, in process) against a
served sandbox; the receiver records every body it gets. Asserted: which runs post under
each ``on``, the Slack and Teams body shapes, that no roster number's digits reach the
body, and that a receiver that is down leaves the run's exit code alone and logs only the
webhook's host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from run_support import mobile, roster, served, tenant_with_users, upn, write_job
from typer.testing import CliRunner

from provision.cli import app as cli_app
from provision.errors import ExitCode, JobFileError, SafetyError
from provision.run.jobs import load_job, parse_job
from provision.run.pipeline import ApplyOptions, apply_job, check_job, load_job_roster
from provision.run.run_report import RunOutcome

ENV = "PROVISION_TEST_WEBHOOK"
SECRET = "s3cr3tT0ken"


class Receiver:
    """A loopback webhook: records each JSON body; answers ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/workflows/hook/{SECRET}?sig={SECRET}"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv(ENV, r.url)
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def _notify(on: str, fmt: str = "slack") -> str:
    return f'[notify]\nwebhook_env = "{ENV}"\nformat = "{fmt}"\non = {on}\n'


BAD_ROW = (upn(99), "not a number")  # an invalid row: the run ends with exit 1


def _apply(tmp_path: Path, url: str, rows: list[tuple[str, str]], settings: str, name: str = "run") -> RunOutcome:
    folder = tmp_path / name
    folder.mkdir()
    job = load_job(write_job(folder, url, rows, settings=settings))
    return asyncio.run(apply_job(job, load_job_roster(job), ApplyOptions(run_dir=folder / "out")))


def _digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())[1:]  # the national number, no country code


def _no_numbers(body: dict[str, Any], n: int) -> None:
    text = json.dumps(body)
    assert not [mobile(i) for i in range(n) if _digits(mobile(i)) in text]


def test_a_run_with_failed_rows_posts_under_failure_and_a_clean_one_does_not(tmp_path: Path, receiver: Receiver) -> None:
    app = tenant_with_users(3)
    with served(app) as url:
        failed = _apply(tmp_path, url, [*roster(3), BAD_ROW], _notify('["failure"]'), "failed")
        clean = _apply(tmp_path, url, roster(3), _notify('["failure"]'), "clean")
    assert failed.summary.exit_code == ExitCode.ROWS_FAILED and clean.summary.exit_code == ExitCode.OK
    assert len(receiver.bodies) == 1  # the clean run posted nothing
    (body,) = receiver.bodies
    assert set(body) == {"text"}  # Slack: text alone
    text = body["text"]
    assert "provision apply truth: completed (exit 1)" in text
    assert "*Rows:* applied 3, invalid 1" in text
    assert "*Changes written:* 3" in text
    assert "*Top problems:* not_a_number x1" in text  # reason codes with their row counts
    assert f"*Run directory:* {failed.run_dir}" in text
    _no_numbers(body, 3)


def test_always_posts_a_teams_card_for_a_clean_run(tmp_path: Path, receiver: Receiver) -> None:
    app = tenant_with_users(2)
    with served(app) as url:
        outcome = _apply(tmp_path, url, roster(2), _notify('["always"]', "teams"))
    assert outcome.summary.exit_code == ExitCode.OK
    (body,) = receiver.bodies
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, facts = card["body"]
    assert title["type"] == "TextBlock" and title["text"] == "provision apply truth: completed (exit 0)"
    assert facts["type"] == "FactSet"
    values = {f["title"]: f["value"] for f in facts["facts"]}
    assert values["Job"] == "truth" and values["Status"] == "completed"
    assert values["Exit code"].startswith("0 ") and values["Changes written"] == "2"
    assert values["Target"].startswith("sandbox at http://127.0.0.1:")
    assert values["Run directory"] == str(outcome.run_dir)
    assert "Top problems" not in values
    _no_numbers(body, 2)


def test_drift_posts_for_a_run_that_wrote_and_not_for_one_with_nothing_to_do(tmp_path: Path, receiver: Receiver) -> None:
    app = tenant_with_users(2)
    with served(app) as url:
        _apply(tmp_path, url, roster(2), _notify('["drift"]'), "first")
        second = _apply(tmp_path, url, roster(2), _notify('["drift"]'), "second")
    assert second.summary.exit_code == ExitCode.OK
    assert [("Changes written:* 2" in b["text"]) for b in receiver.bodies] == [True]


def test_plan_check_drift_posts_under_drift_through_the_cli(tmp_path: Path, receiver: Receiver) -> None:
    app = tenant_with_users(2)
    with served(app) as url:
        job_file = write_job(tmp_path, url, roster(2), settings=_notify('["drift"]'))
        ran = CliRunner().invoke(cli_app, ["plan", str(job_file), "--check", "--log-format", "json"])
        assert ran.exit_code == ExitCode.DRIFT
        (body,) = receiver.bodies
        assert "provision plan --check truth: drift (exit 6)" in body["text"]
        assert "*Changes pending:* 2" in body["text"] and "*Rows:* ok 2" in body["text"]
        _no_numbers(body, 2)
        # Once applied, the check finds no drift and stays quiet.
        job = load_job(job_file)
        asyncio.run(apply_job(job, load_job_roster(job), ApplyOptions(run_dir=tmp_path / "out")))
        receiver.bodies.clear()
        planned = asyncio.run(check_job(job, load_job_roster(job)))
    assert not planned.plan.changes and receiver.bodies == []


def test_a_refused_run_posts_under_failure(tmp_path: Path, receiver: Receiver) -> None:
    app = tenant_with_users(2)
    with served(app) as url, pytest.raises(SafetyError):
        _apply(tmp_path, url, roster(2), _notify('["failure"]') + "[safety]\nmax_changes = 1\n")
    (body,) = receiver.bodies
    assert "provision apply truth: refused (exit 3)" in body["text"] and "*Error:* " in body["text"]
    assert app.sandbox.tenant.list_phones(upn(0)) == []  # nothing was written


def test_a_roster_that_never_arrived_posts_under_failure_through_the_cli(tmp_path: Path, receiver: Receiver) -> None:
    app = tenant_with_users(2)
    with served(app) as url:
        job_file = write_job(tmp_path, url, roster(2), settings=_notify('["failure"]'))
        load_job(job_file).roster.path.unlink()  # the HR extract didn't arrive tonight
        ran = CliRunner().invoke(cli_app, ["apply", str(job_file), "--yes", "--log-format", "json"])
    assert ran.exit_code == ExitCode.USAGE
    (body,) = receiver.bodies
    assert "provision apply truth: failed (exit 2)" in body["text"] and "*Error:* " in body["text"]
    assert app.sandbox.stats.to_json()["writes_succeeded"] == 0


def test_a_receiver_that_is_down_leaves_the_exit_code_and_logs_the_host_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(ENV, f"http://127.0.0.1:{port}/hook/{SECRET}?sig={SECRET}")
    app = tenant_with_users(2)
    with served(app) as url, caplog.at_level(logging.WARNING, logger="provision.notify"):
        outcome = _apply(tmp_path, url, [*roster(2), BAD_ROW], _notify('["always"]'))
    assert outcome.summary.exit_code == ExitCode.ROWS_FAILED
    (record,) = [r for r in caplog.records if r.name == "provision.notify"]
    assert "notification to 127.0.0.1 failed: ConnectError" in record.getMessage()
    assert SECRET not in caplog.text


def test_a_receiver_answering_an_error_is_tried_twice_then_logged(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 503
    app = tenant_with_users(1)
    with served(app) as url, caplog.at_level(logging.WARNING, logger="provision.notify"):
        outcome = _apply(tmp_path, url, roster(1), _notify('["always"]'))
    assert outcome.summary.exit_code == ExitCode.OK
    assert len(receiver.bodies) == 2
    assert "failed: HTTP 503" in caplog.text and SECRET not in caplog.text
    run_log = (outcome.run_dir / "run.log").read_text(encoding="utf-8")
    assert "notification to 127.0.0.1 failed: HTTP 503" in run_log and SECRET not in run_log


def test_an_unset_variable_is_logged_and_the_run_ends_as_it_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    app = tenant_with_users(1)
    with served(app) as url, caplog.at_level(logging.WARNING, logger="provision.notify"):
        outcome = _apply(tmp_path, url, roster(1), _notify('["always"]'))
    assert outcome.summary.exit_code == ExitCode.OK
    assert f"the environment variable {ENV} is not set" in caplog.text


@pytest.mark.parametrize(
    ("notify", "key"),
    [
        ('webhook_env = "https://hooks.slack.com/services/T0/B0/' + SECRET + '"\nformat = "slack"', "webhook_env"),
        ('webhook_env = "HOOK"', "format"),
        ('webhook_env = "HOOK"\nformat = "slack"\non = ["sometimes"]', "on"),
        ('webhook_env = "HOOK"\nformat = "slack"\non = []', "on"),
    ],
)
def test_the_notify_section_is_checked(notify: str, key: str) -> None:
    import tomllib

    raw = tomllib.loads(f'name = "j"\n[roster]\npath = "r.csv"\n[notify]\n{notify}\n')
    with pytest.raises(JobFileError) as refused:
        parse_job(raw, base=Path("."))
    assert f"notify.{key}" in str(refused.value) and SECRET not in str(refused.value)
