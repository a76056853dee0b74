"""No traceback ever reaches the console: crashes go to a masked crash file (or run.log) and exit 5;
libraries' log records reach stderr masked, as JSON lines under --log-format json."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from cli_support import shipped_job
from support.cli import run_provision

from provision.run.logs import route_library_logs


def _crash_file(stderr: str) -> Path:
    assert "the details are in " in stderr, stderr
    return Path(stderr.split("the details are in ", 1)[1].split(". Nothing", 1)[0].strip())


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_unexpected_error_is_one_line_exit_5_and_a_masked_crash_file(tmp_path: Path, log_format: str) -> None:
    # A plan file can't be written under a path whose parent is a file: an OSError nobody
    # anticipated, the kind of surprise a real machine has at 2 a.m.
    job = shipped_job(tmp_path, "onboarding")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    ran = run_provision(["plan", job, "--out", blocker / "plan.json", "--log-format", log_format], cwd=tmp_path)

    assert ran.exit_code == 5
    assert "Traceback" not in ran.output
    if log_format == "json":
        events = ran.json_lines()  # every stderr line is JSON
        errors = [e for e in events if e.get("level") == "error"]
        assert len(errors) == 1 and errors[0]["exit_code"] == 5
        message = errors[0]["message"]
    else:
        message = next(line for line in ran.stderr.splitlines() if line.startswith("error:"))
    crash = _crash_file(message)
    assert crash.is_file() and crash.stat().st_mode & 0o077 == 0
    details = crash.read_text(encoding="utf-8")
    assert "Traceback" in details and "FileExistsError" in details


def test_library_warnings_are_json_lines_and_masked() -> None:
    stream = io.StringIO()
    handler = route_library_logs(stream, json_lines=True)
    try:
        logging.getLogger("azure.identity").warning("token request for user +1 2065550100 failed")
        logging.getLogger("provision").warning("our own notes go through the console, not here")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["logger"] == "azure.identity" and entry["level"] == "warning"
    assert "2065550100" not in lines[0] and "+1 *******100" in entry["message"]


def test_library_warnings_on_a_terminal_are_one_masked_line_without_traceback() -> None:
    stream = io.StringIO()
    handler = route_library_logs(stream, json_lines=False)
    try:
        try:
            raise ConnectionError("host unreachable for +44 2079460958")
        except ConnectionError:
            logging.getLogger("httpx").warning("request failed for +44 2079460958", exc_info=True)
    finally:
        logging.getLogger().removeHandler(handler)
    out = stream.getvalue()
    assert out.strip() == "warning: httpx: request failed for +44 *******958"
