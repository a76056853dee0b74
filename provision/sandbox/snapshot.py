"""Snapshot files: a tenant read from one, or written to one (atomically).

The JSON shape is ``snapshot_format``'s (documented in docs/sandbox-snapshot.md); turning
it into a tenant, and back, is the tenant's (``Tenant.from_snapshot`` / ``to_snapshot``).
This module sits on top of both: it adds the file, its encoding and the error messages
that name it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from provision.sandbox.snapshot_format import SnapshotError
from provision.sandbox.tenant import Tenant


def load_snapshot(
    path: str | os.PathLike[str],
    *,
    clock: Callable[[], float] = time.monotonic,
    replication_lag_s: float = 0.0,
) -> Tenant:
    """Read a snapshot file into a new tenant; SnapshotError when it is not valid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SnapshotError(f"{path}: can't read the snapshot ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno})") from exc
    try:
        return Tenant.from_snapshot(data, clock=clock, replication_lag_s=replication_lag_s)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from exc


def save_snapshot(tenant: Tenant, path: str | os.PathLike[str]) -> None:
    """Write the tenant's snapshot atomically (a crash never leaves half a file)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(tenant.to_snapshot(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)


__all__ = ["load_snapshot", "save_snapshot"]
