"""One run at a time per job and tenant: the lock ``apply`` and ``resume`` hold while they write.

Two runs of the same job against the same tenant (last night's run still going when the
next one starts, or an admin's manual run beside the scheduled one) would plan and send
the same changes twice. ``run_lock(job, ...)`` refuses the second with
``RunLockedError`` (exit 3), naming the run that holds the lock.

The lock is ``<output directory>/.locks/<job>-<hash of target>.lock``: the key is the job's
name and its target (tenant id and cloud, sandbox URL, or embedded sandbox state file),
so the same job against two tenants, or two jobs against one tenant, run side by side.
It is an ``fcntl.flock`` on an open descriptor: the kernel releases it when the holder
exits, however it exits (even ``kill -9``), so a lock is never stale and never needs
deleting by hand. The file's one JSON line says who holds it (pid, host, start time, run
directory), only for the refusal message; the file itself stays between runs.

Limits: two output directories (two copies of a job file with different
``output.directory``) are two locks; so are two hosts over a network file system whose
``flock`` is local. On Windows (no ``fcntl``) no lock is taken: overlapping runs are not
refused there, and a warning in run.log says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from provision.errors import RunLockedError
from provision.run.jobs import Job, SandboxTarget
from provision.run.logs import logger

LOCK_DIR = ".locks"
# How long a refused run waits for a brand-new holder to finish writing who it is.
_HOLDER_READ_WAIT_S = 0.5


@dataclass(frozen=True, slots=True)
class LockKey:
    """Which lock a job takes: its file, and the words the refusal uses for job and target."""

    path: Path
    job: str
    target: str


def lock_key(job: Job) -> LockKey:
    """The lock of ``job`` against its target (the same for ``apply`` and ``resume``)."""
    label, identity = _target_identity(job)
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", job.name)[:64] or "job"
    directory = job.output.directory if job.output.directory.is_absolute() else job.output.directory.resolve()
    return LockKey(directory / LOCK_DIR / f"{safe_name}-{digest}.lock", job.name, label)


def _target_identity(job: Job) -> tuple[str, str]:
    """(what the message calls the target, what identifies it: the hash's input)."""
    target = job.target
    if not isinstance(target, SandboxTarget):
        tenant = target.tenant_id.strip().lower()
        return f"tenant {target.tenant_id} ({target.cloud.value})", f"graph|{target.cloud.value}|{tenant}"
    if target.url:
        root = _sandbox_root(target.url)
        if target.tenant_id:
            tenant = target.tenant_id.strip().lower()
            return f"tenant {target.tenant_id} of the sandbox at {root}", f"sandbox-url|{root}|{tenant}"
        return f"the sandbox at {root}", f"sandbox-url|{root}"
    state = target.state if target.state.is_absolute() else target.state.resolve()
    return f"the embedded sandbox ({state})", f"sandbox-state|{state}"


def _sandbox_root(url: str) -> str:
    """One spelling per sandbox: no trailing slash, no /v1.0 or /beta, host lower-cased."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    for suffix in ("/v1.0", "/beta"):
        path = path.removesuffix(suffix)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


class HeldLock:
    """The lock while it is held; ``record_run_dir`` adds the run directory once it exists."""

    def __init__(self, key: LockKey, fd: int | None, holder: dict[str, Any]) -> None:
        self.key = key
        self._fd = fd
        self._holder = holder

    def record_run_dir(self, run_dir: Path) -> None:
        self._holder["run_dir"] = str(run_dir)
        if self._fd is not None:
            _write_holder(self._fd, self._holder)


@contextmanager
def run_lock(job: Job, *, command: str, run_dir: Path | None = None) -> Iterator[HeldLock]:
    """Hold the job's lock for the block, or raise ``RunLockedError`` naming its holder.

    Released when the block ends, by an exception too; by the kernel if the process dies.
    """
    key = lock_key(job)
    holder: dict[str, Any] = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "job": job.name,
        "target": key.target,
        "run_dir": str(run_dir) if run_dir is not None else None,
    }
    if sys.platform == "win32":  # pragma: no cover (no fcntl: see the module docstring)
        logger().warning("run lock not available on Windows: overlapping runs of %s are not refused", job.name)
        yield HeldLock(key, None, holder)
        return
    fd = _acquire(key)
    try:
        _write_holder(fd, holder)
        yield HeldLock(key, fd, holder)
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


if sys.platform != "win32":
    import fcntl

    def _acquire(key: LockKey) -> int:
        key.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Not O_TRUNC: the holder's line must survive a refused run opening the file. Not
        # inheritable (Python's default): the embedded sandbox and the roster's spawned
        # workers don't share the lock, so it dies with this process alone.
        fd = os.open(key.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(_refusal(key, holder)) from None
        except BaseException:
            os.close(fd)
            raise
        return fd


def _write_holder(fd: int, holder: dict[str, Any]) -> None:
    # One write at offset 0, then cut the tail: a reader sees the old line or the new one
    # as the first line, never an empty file (the first line is all that is read).
    data = (json.dumps(holder, ensure_ascii=False) + "\n").encode("utf-8")
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


def _read_holder(fd: int) -> dict[str, Any] | None:
    """The holder's line; a holder that has only just taken the lock gets a moment to write it."""
    deadline = time.monotonic() + _HOLDER_READ_WAIT_S
    while True:
        try:
            line = os.pread(fd, 4096, 0).split(b"\n", 1)[0]
            found = json.loads(line.decode("utf-8")) if line else None
        except (OSError, ValueError):
            found = None
        if isinstance(found, dict) or time.monotonic() >= deadline:
            return found if isinstance(found, dict) else None
        time.sleep(0.05)


def _refusal(key: LockKey, holder: dict[str, Any] | None) -> str:
    head = f"another run of job {key.job} against {key.target} is in progress"
    advice = "wait for it or stop it"
    if holder is None:
        return f"{head} (lock {key.path}); {advice}"
    run_dir = holder.get("run_dir") or "not created yet (still planning or asking)"
    command = f" (provision {holder['command']})" if holder.get("command") else ""
    since = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('started', '?')}"
    return f"{head}: {since}{command}, run directory {run_dir}; {advice}"


__all__ = ["LOCK_DIR", "HeldLock", "LockKey", "lock_key", "run_lock"]
