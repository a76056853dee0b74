"""The confirmation prompt on a real terminal: "no" writes nothing and is not an error (exit 0)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from cli_support import shipped_job
from support.cli import child_env

DEADLINE_S = 90.0


def _read_until(fd: int, needle: bytes, seen: bytearray, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if needle in seen:
            return True
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                return needle in seen
            if not chunk:
                return needle in seen
            seen.extend(chunk)
    return needle in seen


def test_answering_no_writes_nothing_and_exits_0(tmp_path: Path) -> None:
    job = shipped_job(tmp_path, "onboarding")
    master, slave = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "provision", "apply", str(job), "--log-format", "text"],
        cwd=tmp_path, env=child_env({"COLUMNS": "120"}), stdin=slave, stdout=slave, stderr=slave,
    )
    os.close(slave)
    seen = bytearray()
    try:
        deadline = time.monotonic() + DEADLINE_S
        assert _read_until(master, b"[y/N]", seen, deadline), seen.decode(errors="replace")[-2000:]
        os.write(master, b"n\n")
        _read_until(master, b"\x00never", seen, deadline)  # drain until the child closes the terminal
        code = child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    assert code == 0, text[-2000:]
    assert "cancelled: nothing was written" in text and "Traceback" not in text
    reports = tmp_path / "reports"
    assert not reports.exists() or not any((p / "journal.sqlite").exists() for p in reports.iterdir()), list(reports.rglob("*"))
