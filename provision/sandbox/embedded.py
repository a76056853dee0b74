"""The embedded sandbox: a child process serving one job run, its state kept between runs.

A job whose target is the default sandbox starts this module as a child process
(``python -m provision.sandbox.embedded``), on a free loopback port. It loads the tenant
from ``--state`` (or seeds it from ``--seed`` the first time), answers with one JSON line
``{"url": ...}`` on stdout once it listens, and writes the state back when it stops
(SIGTERM; it ignores SIGINT, which only its parent acts on).

A child process rather than a thread: the sandbox's CPU stays off the job's core, and the
state survives the job being killed. The child asks Linux to send it SIGTERM when its
parent dies (even by SIGKILL), so it still saves what the killed run wrote and a resume
starts from the same tenant.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import signal
import sys
from pathlib import Path

from provision.sandbox.app import create_app
from provision.sandbox.limits import load_profile
from provision.sandbox.server import serve_forever
from provision.sandbox.snapshot import load_snapshot, save_snapshot

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the parent's shutdown path still stops us


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provision.sandbox.embedded")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--seed", type=Path)
    parser.add_argument("--profile", default="unlimited")
    args = parser.parse_args(argv)

    # SIGINT is ignored from the start: a terminal's Ctrl-C reaches the job and us alike,
    # and the job stops gracefully, journaling what is in flight; it needs us answering
    # until it stops us itself (SIGTERM).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    args.state.parent.mkdir(parents=True, exist_ok=True)
    lock = open(args.state.with_name(args.state.name + ".lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.stderr.write(f"another provision run is using the sandbox state {args.state}\n")
        return 3

    profile = load_profile(args.profile)
    lag = profile.consistency.replication_lag_ms / 1000.0
    source = args.state if args.state.exists() else args.seed
    tenant = load_snapshot(source, replication_lag_s=lag) if source is not None else None
    app = create_app(tenant, profile=profile)

    def ready(root: str) -> None:
        # The handshake with the parent, not console output: one JSON line, then silence.
        sys.stdout.write(json.dumps({"url": root}) + "\n")
        sys.stdout.flush()

    # SIGTERM (from the job, or from the kernel when the job dies) stops us gracefully and
    # serve_forever returns, so the state below is saved.
    try:
        serve_forever(app, on_ready=ready, ignore_sigint=True)
    finally:
        save_snapshot(app.sandbox.tenant, args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
