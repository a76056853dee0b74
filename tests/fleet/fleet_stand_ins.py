"""Stand-in task functions for the dispatcher's tests: module-level, so Dask workers import them.

Each takes a ``TenantTask`` and returns a TenantResult-shaped dict; what it observed goes
into the dict (the worker's pid, whether it may start a child process) or into files under
the task's tenant directory, which the test reads back.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

from provision.fleet.tenant_run import TenantTask


def result(task: TenantTask, **fields: Any) -> dict[str, Any]:
    return {"schema": 1, "tenant_id": task.spec.tenant_id, "key": task.spec.key, "status": "ok", "exit_code": 0,
            "worker": f"pid:{os.getpid()}", **fields}


def _square(n: int) -> int:
    return n * n


def echo(task: TenantTask) -> dict[str, Any]:
    """Reports whether its worker process may start a child process (a roster reader's pool)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        child = pool.apply(_square, (7,))
    return result(task, child=child, daemon=multiprocessing.current_process().daemon)


def die_once(task: TenantTask) -> dict[str, Any]:
    """Kills its worker the first time it runs for a tenant (a lost worker), then succeeds."""
    marker = task.tenant_dir / "died"
    if not marker.exists():
        task.tenant_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return result(task, killed=int(marker.read_text()))


def always_die(task: TenantTask) -> dict[str, Any]:
    task.tenant_dir.mkdir(parents=True, exist_ok=True)
    with (task.tenant_dir / "attempts").open("a") as f:
        f.write("x")
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def count_in_flight(task: TenantTask) -> dict[str, Any]:
    """Marks itself running in a folder shared by the tasks and records how many run at once.

    It waits (up to ``<fleet dir>/wait_s`` seconds) for a second task to join, so that two
    in flight is seen whenever the dispatcher allows two; the cap is checked on the most seen.
    """
    running = task.fleet_dir / "running"
    running.mkdir(parents=True, exist_ok=True)
    mine = running / task.spec.key
    mine.touch()
    seen = 0
    try:
        deadline = time.monotonic() + float((task.fleet_dir / "wait_s").read_text())
        while time.monotonic() < deadline:
            seen = max(seen, len(list(running.iterdir())))
            if seen >= 2:
                break
            time.sleep(0.01)
        time.sleep(0.05)
        seen = max(seen, len(list(running.iterdir())))
    finally:
        mine.unlink()
    return result(task, seen=seen)




def hang(task: TenantTask) -> dict[str, Any]:
    """Never answers in time (a tenant stuck past its timeout); gives up when its marker goes."""
    task.tenant_dir.mkdir(parents=True, exist_ok=True)
    marker = task.tenant_dir / "hanging"
    marker.touch()
    deadline = time.monotonic() + 120
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return result(task)
