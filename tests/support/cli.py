"""Running `provision` as a real child process, the way users and schedulers do.

- ``run_provision(args, cwd, env=None)``: ``python -m provision ARGS`` to completion (no TTY:
  stdin closed); returns ``Ran`` (exit code, stdout, stderr).
- ``start_provision(*args, cwd, ...)``: the same, started and left running (``Popen``), for
  tests that signal it, kill it or read its output as it comes.
- ``done_changes(run_dir)``: how many changes a run's journal holds done, read-only (0 until
  the journal exists and is committed), for watching a child's progress.
- ``Ran``: what a finished command said; ``Ran.result("run")`` is its last JSON result event.

The child gets this checkout on PYTHONPATH, unbuffered output and no PROVISION_TOKEN (a
token in the developer's environment must not leak into a test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

from provision.executor.journal import JOURNAL_FILENAME, Journal

REPO = Path(__file__).resolve().parents[2]
SUBPROCESS_TIMEOUT_S = 120


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json_lines(self) -> list[dict[str, Any]]:
        """stderr's JSON lines (--log-format json / no TTY); fails on any other line."""
        return [json.loads(line) for line in self.stderr.splitlines() if line.strip()]

    def result(self, kind: str) -> dict[str, Any]:
        """The last ``result`` event of this kind ("plan" or "run")."""
        found = [e for e in self.json_lines() if e.get("event") == "result" and e.get("event_kind") == kind]
        assert found, f"no {kind} result in:\n{self.stderr}"
        return found[-1]


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a `provision` child: ours, minus PROVISION_TOKEN, plus ``env``."""
    full = {k: v for k, v in os.environ.items() if k != "PROVISION_TOKEN"}
    full.update({"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"})
    full.update(env or {})
    return full


def run_provision(args: Sequence[str | Path], cwd: Path, env: Mapping[str, str] | None = None) -> Ran:
    """`python -m provision ARGS` as a real child process (no TTY: stdin closed)."""
    done = subprocess.run(
        [sys.executable, "-m", "provision", *map(str, args)],
        cwd=cwd,
        env=child_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def start_provision(
    *args: str | Path, cwd: Path, env: Mapping[str, str] | None = None, json_logs: bool = False,
    merge_stderr: bool = False, text: bool = True,
) -> subprocess.Popen[Any]:
    """`python -m provision ARGS` started in ``cwd`` (stdin closed, stdout and stderr piped;
    ``merge_stderr``: both on stdout). ``json_logs`` adds ``--log-format json``. ``text``:
    str pipes, else bytes."""
    command = [sys.executable, "-m", "provision", *map(str, args)] + (["--log-format", "json"] if json_logs else [])
    stderr: int | IO[Any] = subprocess.STDOUT if merge_stderr else subprocess.PIPE
    return subprocess.Popen(
        command, cwd=cwd, env=child_env(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=text,
    )


def done_changes(run_dir: Path) -> int:
    """Changes the run journal in ``run_dir`` holds done (read-only, as `provision report` reads it)."""
    if not (run_dir / JOURNAL_FILENAME).exists():
        return 0
    try:
        journal = Journal.open(run_dir, read_only=True)
    except Exception:  # created but not yet committed: nothing done yet
        return 0
    try:
        return journal.counts().done
    finally:
        journal.close()
