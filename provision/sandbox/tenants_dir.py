"""Many tenants on disk: the snapshots a multi-tenant sandbox starts from, and its state directory.

A seed is a list of snapshot files (every ``*.json`` of a directory, or files named one by
one); each file is one tenant, its id the snapshot's ``tenant_id``. A state directory holds
one ``<tenant id>.json`` per tenant, written when the sandbox stops; when a tenant's state
file exists it is loaded instead of its seed, so a restarted sandbox (a resumed fleet)
serves the tenants as they were left.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from provision.sandbox.snapshot import load_snapshot, save_snapshot
from provision.sandbox.snapshot_format import SnapshotError
from provision.sandbox.tenant import Tenant

_UNSAFE = re.compile(r"[^a-z0-9._-]")


def state_file_name(tenant_id: str) -> str:
    """The state file of a tenant: its case-folded id, made file-name safe."""
    return _UNSAFE.sub("_", tenant_id.casefold()) + ".json"


def snapshot_paths(directory: Path) -> list[Path]:
    """The snapshot files of a directory (every ``*.json``, by name); SnapshotError when there are none."""
    if not directory.is_dir():
        raise SnapshotError(f"{directory}: not a directory of tenant snapshots")
    paths = sorted(p for p in directory.glob("*.json") if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise SnapshotError(f"{directory}: holds no tenant snapshot (*.json)")
    return paths


def load_tenants(
    seeds: Sequence[Path],
    *,
    state_dir: Path | None = None,
    clock: Callable[[], float] = time.monotonic,
    replication_lag_s: float = 0.0,
) -> list[Tenant]:
    """One tenant per seed file (from ``state_dir`` when it holds that tenant's state), in seed order.

    SnapshotError names the file when one isn't a valid snapshot or two name the same tenant.
    """
    saved = {p.name for p in state_dir.glob("*.json")} if state_dir is not None and state_dir.is_dir() else set()
    tenants: list[Tenant] = []
    seen: dict[str, Path] = {}
    for seed in seeds:
        source = seed
        tenant_id = _tenant_id_of(seed)
        if state_dir is not None and state_file_name(tenant_id) in saved:
            source = state_dir / state_file_name(tenant_id)
        tenant = load_snapshot(source, clock=clock, replication_lag_s=replication_lag_s)
        key = tenant.tenant_id.casefold()
        if key in seen:
            raise SnapshotError(f"{seed}: tenant {tenant.tenant_id} is also in {seen[key]}")
        seen[key] = seed
        tenants.append(tenant)
    return tenants


def _tenant_id_of(path: Path) -> str:
    """A snapshot file's tenant id, read cheaply (the whole file is validated when loaded)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{path}: can't read the snapshot ({exc})") from exc
    tenant_id = data.get("tenant_id") if isinstance(data, dict) else None
    if not isinstance(tenant_id, str) or not tenant_id:
        raise SnapshotError(f"{path}: tenant_id: required, a non-empty string")
    return tenant_id


def save_tenants(tenants: Iterable[Tenant], state_dir: Path) -> None:
    """Write each tenant to ``state_dir/<tenant id>.json`` (each atomically; the directory 0700)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    for tenant in tenants:
        save_snapshot(tenant, state_dir / state_file_name(tenant.tenant_id))


__all__ = ["load_tenants", "save_tenants", "snapshot_paths", "state_file_name"]
