"""The embedded sandbox: a child process serving one job run (or a fleet), its state kept between runs.

A job whose target is the default sandbox starts this module as a child process
(``python -m provision.sandbox.embedded``), on a free loopback port. It loads the tenant
from ``--state`` (or seeds it from ``--seed`` the first time), answers with one JSON line
``{"url": ...}`` on stdout once it listens, and writes the state back when it stops
(SIGTERM; it ignores SIGINT, which only its parent acts on).

A child process rather than a thread: the sandbox's CPU stays off the job's core, and the
state survives the job being killed. The child asks Linux to send it SIGTERM when its
parent dies (even by SIGKILL), so it still saves what the killed run wrote and a resume
starts from the same tenant.

Many tenants (a fleet run): ``--seed-dir DIR --state-dir DIR`` serves every snapshot of
the seed directory as a tenant, chosen by the token's tid (``multi``); each tenant is
loaded from ``<state dir>/<tenant id>.json`` when that exists, and saved there on stop
(``tenants_dir``). The lock is ``<state dir>/.lock``.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import signal
import sys
from pathlib import Path

from provision.sandbox.app import create_app, create_multi_app
from provision.sandbox.limits import load_profile
from provision.sandbox.server import serve_forever
from provision.sandbox.snapshot import load_snapshot, save_snapshot
from provision.sandbox.snapshot_format import SnapshotError
from provision.sandbox.tenants_dir import load_tenants, save_tenants, snapshot_paths

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the parent's shutdown path still stops us


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provision.sandbox.embedded")
    parser.add_argument("--state", type=Path, help="one tenant: its state file")
    parser.add_argument("--seed", type=Path, help="one tenant: the snapshot it starts from")
    parser.add_argument("--state-dir", type=Path, help="many tenants: one <tenant id>.json each")
    parser.add_argument("--seed-dir", type=Path, help="many tenants: a directory of snapshots, one per tenant")
    parser.add_argument("--profile", default="unlimited")
    parser.add_argument("--rng-seed", type=int, default=0, help="seed of latency jitter and injected faults")
    args = parser.parse_args(argv)
    many = args.state_dir is not None
    if many == (args.state is not None) or (many and args.seed_dir is None) or (not many and args.seed_dir is not None):
        parser.error("give --state [--seed] (one tenant) or --state-dir with --seed-dir (many tenants)")

    # SIGINT is ignored from the start: a terminal's Ctrl-C reaches the job and us alike,
    # and the job stops gracefully, journaling what is in flight; it needs us answering
    # until it stops us itself (SIGTERM).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if many:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        lock_path = args.state_dir / ".lock"
    else:
        args.state.parent.mkdir(parents=True, exist_ok=True)
        lock_path = args.state.with_name(args.state.name + ".lock")
    lock = open(lock_path, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.stderr.write(f"another provision run is using the sandbox state {args.state_dir if many else args.state}\n")
        return 3

    profile = load_profile(args.profile)
    lag = profile.consistency.replication_lag_ms / 1000.0
    if many:
        try:
            tenants = load_tenants(snapshot_paths(args.seed_dir), state_dir=args.state_dir, replication_lag_s=lag)
        except SnapshotError as exc:
            sys.stderr.write(f"{exc}\n")
            return 2
        app = create_multi_app(tenants, profile=profile, seed=args.rng_seed)
    else:
        source = args.state if args.state.exists() else args.seed
        tenant = load_snapshot(source, replication_lag_s=lag) if source is not None else None
        app = create_app(tenant, profile=profile, seed=args.rng_seed)

    def ready(root: str) -> None:
        # The handshake with the parent, not console output: one JSON line, then silence.
        sys.stdout.write(json.dumps({"url": root}) + "\n")
        sys.stdout.flush()

    # SIGTERM (from the job, or from the kernel when the job dies) stops us gracefully and
    # serve_forever returns, so the state below is saved.
    try:
        serve_forever(app, on_ready=ready, ignore_sigint=True)
    finally:
        if app.tenant_router is not None:
            save_tenants(app.tenant_router.tenants(), args.state_dir)
        else:
            save_snapshot(app.sandbox.tenant, args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
