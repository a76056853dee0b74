"""The embedded multi-tenant sandbox a rehearsal fleet runs against (``[target] snapshots``).

``fleet_sandbox(fleet)`` starts ``python -m provision.sandbox.embedded --seed-dir --state-dir``
for the command's duration and yields its Graph base URL; every tenant's job is aimed at it
(``config.with_sandbox_urls``). The state directory is kept between commands, so
``fleet resume`` continues the same tenants as they were left (the child saves them when
it stops, and when its parent is killed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import deque
from contextlib import contextmanager
from typing import Iterator

from provision.errors import RunLockedError, UsageError
from provision.fleet.config import Fleet, FleetSandboxTarget

__all__ = ["fleet_sandbox"]


@contextmanager
def fleet_sandbox(fleet: Fleet) -> Iterator[str]:
    target = fleet.target
    assert isinstance(target, FleetSandboxTarget) and target.snapshots is not None
    state = fleet.sandbox_state()
    cmd = [sys.executable, "-m", "provision.sandbox.embedded", "--seed-dir", str(target.snapshots),
           "--state-dir", str(state), "--profile", target.profile]
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Drained all along: a child blocked on a full stderr pipe would stop answering.
    tail: deque[str] = deque(maxlen=20)
    drain = threading.Thread(target=_drain, args=(child, tail), daemon=True)
    drain.start()
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            child.wait(10)
            drain.join(5)
            last = tail[-1].strip() if tail else "no output"
            if child.returncode == 3:
                raise RunLockedError(f"another fleet command is using the sandbox state {state}; wait for it or stop it")
            raise UsageError(f"the fleet's embedded sandbox did not start ({target.snapshots}): {last}")
        root = json.loads(line)["url"]
        yield f"{root}/{target.api_version}"
    finally:
        if child.poll() is None:
            child.terminate()  # SIGTERM: it stops serving and saves every tenant
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        drain.join(5)
        if child.stdout is not None:
            child.stdout.close()


def _drain(child: subprocess.Popen[str], tail: deque[str]) -> None:
    assert child.stderr is not None
    for line in child.stderr:
        if line.strip():
            tail.append(line)
