"""The fleet run directory: one per ``fleet plan`` or ``fleet apply``, holding every tenant's run.

    <output dir>/fleet-<fleet name>-<UTC yyyymmddTHHMMSSZ>/      (0700)
      fleet.json       the manifest: name, fleet file, action, started, executor, the tenants
                       (id, name, key, groups) and those left out (with why)
      fleet.toml       a copy of the fleet file        tenants.csv   a copy of the tenants file
      fleet.log        the fleet's own log (Dask's included), JSON lines
      tenants/<key>/   one per tenant: run/ (its ordinary run directory), plan.json (plan),
                       results.csv, tenant.json (how it ended)
      fleet_summary.json  fleet.xlsx  report.html   the merged reports

``fleet resume`` reads the manifest and each tenant.json: a tenant whose tenant.json says it
finished (any status but stopped or lost) is done; the others are dispatched again (their
run directory's journal is resumed, or they apply afresh when they never started writing).

``fleet_lock`` makes a second ``fleet apply``/``resume`` of the same directory refuse (exit 3)
while one runs: an ``fcntl.flock`` the kernel releases when its holder exits, however it exits
(on Windows, as for single runs, no lock is taken).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal

from provision.errors import ExitCode, RunLockedError, UsageError
from provision.fleet.config import Fleet, TenantSpec
from provision.private_files import open_private, open_private_binary, replaced_privately, write_private_json
from provision.run.jobs import Job, SandboxTarget

__all__ = [
    "FINISHED_STATUSES",
    "FleetDir",
    "create_fleet_dir",
    "fleet_lock",
    "open_fleet_dir",
]

MANIFEST = "fleet.json"
FLEET_COPY = "fleet.toml"
TENANTS_COPY = "tenants.csv"
LOG_FILE = "fleet.log"
LOCK_FILE = ".fleet.lock"
TENANTS_DIR = "tenants"
TENANT_FILE = "tenant.json"
RUN_DIR = "run"
# A tenant.json with one of these says the tenant is done; `fleet resume` leaves it alone.
FINISHED_STATUSES = frozenset({"ok", "rows_failed", "bad_input", "refused", "auth_failed", "quarantined", "drift"})


@dataclass(frozen=True, slots=True)
class FleetDir:
    path: Path

    @property
    def manifest_file(self) -> Path:
        return self.path / MANIFEST

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    def manifest(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.manifest_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"{self.path}: not a fleet run directory (no {MANIFEST}); give the directory `provision fleet apply` printed") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.manifest_file}: can't be read: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("tenants"), list):
            raise UsageError(f"{self.manifest_file}: not a fleet manifest")
        return doc

    def tenant_dir(self, key: str) -> Path:
        return self.path / TENANTS_DIR / key

    def tenant_result(self, key: str) -> dict[str, Any] | None:
        """The tenant's tenant.json, or None when it has none (never ran, or killed before the end)."""
        try:
            doc = json.loads((self.tenant_dir(key) / TENANT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def results(self) -> list[dict[str, Any]]:
        """Every tenant's tenant.json in the manifest's order; a tenant without one (it never
        finished: the fleet was stopped or killed first) as ``stopped``, exit 5."""
        results = []
        for tenant in self.manifest()["tenants"]:
            found = self.tenant_result(tenant["key"])
            results.append(found if found is not None else self._never_finished(tenant))
        return results

    def _never_finished(self, tenant: dict[str, Any]) -> dict[str, Any]:
        run = self.tenant_dir(tenant["key"]) / RUN_DIR
        return {
            "schema": 1, "tenant_id": tenant["tenant_id"], "name": tenant.get("name") or tenant["tenant_id"],
            "key": tenant["key"], "groups": list(tenant.get("groups") or []), "action": self.manifest().get("action"),
            "status": "stopped", "exit_code": int(ExitCode.STOPPED),
            "message": f"did not finish (the fleet command stopped first): `provision fleet resume {self.path}` finishes it",
            "run_dir": f"{TENANTS_DIR}/{tenant['key']}/{RUN_DIR}" if run.is_dir() else None, "plan_file": None,
            "rows_total": 0, "rows_ok": 0, "rows_failed": 0, "rows_by_outcome": {}, "changes": {}, "changes_done": {},
            "writes_failed": 0, "operations": 0, "throttled": 0, "attempts": 0,
            "started": None, "finished": None, "duration_s": 0.0, "worker": "",
        }

    def unfinished(self) -> list[str]:
        """The keys of the manifest's tenants that `fleet resume` must (re)dispatch."""
        keys = []
        for tenant in self.manifest()["tenants"]:
            result = self.tenant_result(tenant["key"])
            if result is None or result.get("status") not in FINISHED_STATUSES:
                keys.append(tenant["key"])
        return keys

    def record(self, **fields: Any) -> None:
        """Update manifest fields (atomically), e.g. the last command's ``resumed`` time."""
        doc = self.manifest()
        doc.update(fields)
        write_private_json(self.manifest_file, doc)

    def point_runs_at(self, keys: list[str], specs: dict[str, TenantSpec]) -> None:
        """Aim the unfinished sandbox runs of ``keys`` at the sandbox this command started.

        A fleet's embedded sandbox listens on a new port each time it starts, and a run
        directory's resolved job (what ``resume`` loads) names the url of the first one:
        the same tenant of the same sandbox state, now served elsewhere.
        """
        for key in keys:
            spec = specs.get(key)
            if spec is None or spec.job is None or not isinstance(spec.job.target, SandboxTarget):
                continue
            resolved = self.tenant_dir(key) / RUN_DIR / "job.resolved.json"
            try:
                job = Job.model_validate_json(resolved.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(job.target, SandboxTarget) or job.target.url == spec.job.target.url:
                continue
            retargeted = job.model_copy(update={"target": job.target.model_copy(update={"url": spec.job.target.url})})
            with replaced_privately(resolved) as f:
                f.write(retargeted.model_dump_json(indent=2))


def create_fleet_dir(
    fleet: Fleet,
    *,
    action: Literal["plan", "apply"],
    executor: str,
    started: datetime | None = None,
    selection: dict[str, list[str]] | None = None,
) -> FleetDir:
    """A new fleet run directory (0700) with its manifest, the fleet file's copies and a folder per tenant."""
    started = started or datetime.now(timezone.utc)
    stamp = f"{started:%Y%m%dT%H%M%SZ}"
    fleet.output_dir.mkdir(parents=True, exist_ok=True)
    path = fleet.output_dir / f"fleet-{fleet.name}-{stamp}"
    n = 2
    while path.exists():  # two commands in one second
        path = fleet.output_dir / f"fleet-{fleet.name}-{stamp}-{n}"
        n += 1
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    _copy(fleet.source, path / FLEET_COPY)
    _copy(fleet.tenants_file, path / TENANTS_COPY)
    for spec in fleet.tenants:
        (path / TENANTS_DIR / spec.key).mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(path / TENANTS_DIR, 0o700)
    manifest = {
        "schema": 1,
        "fleet": fleet.name,
        "fleet_file": str(fleet.source),
        "tenants_file": str(fleet.tenants_file),
        "action": action,
        "started": started.isoformat(timespec="seconds"),
        "executor": executor,
        "selection": selection or {},
        "tenants": [
            {"tenant_id": t.tenant_id, "name": t.name, "key": t.key, "groups": list(t.groups)} for t in fleet.tenants
        ],
        "excluded": [{"tenant_id": e.tenant_id, "reason": e.reason} for e in fleet.excluded],
    }
    write_private_json(path / MANIFEST, manifest)
    with open_private(path / LOG_FILE, append=True):
        pass  # created 0600 before any handler opens it (a FileHandler would take the umask's mode)
    return FleetDir(path)


def open_fleet_dir(path: Path) -> FleetDir:
    """An existing fleet run directory (its manifest is checked)."""
    fleet_dir = FleetDir(path.absolute())
    if not path.is_dir():
        raise UsageError(f"{path}: no such fleet run directory; give the directory `provision fleet apply` printed")
    fleet_dir.manifest()
    return fleet_dir


@contextmanager
def fleet_lock(fleet_dir: FleetDir, *, command: str) -> Iterator[None]:
    """Refuse (exit 3) while another ``fleet apply``/``resume`` holds this fleet directory."""
    if sys.platform == "win32":  # pragma: no cover (no fcntl: as provision.run.lock, no lock is taken)
        yield
        return
    import fcntl

    lock_path = fleet_dir.path / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(lock_path)
            raise RunLockedError(
                f"another fleet command is running in {fleet_dir.path}{holder}; wait for it to finish "
                "(or stop it), then run `provision fleet resume` on this directory"
            ) from None
        os.ftruncate(fd, 0)
        who = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
               "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.write(fd, (json.dumps(who) + "\n").encode("utf-8"))
        yield
    finally:
        os.close(fd)  # releases the flock


def _read_holder(path: Path) -> str:
    try:
        who = json.loads(path.read_text(encoding="utf-8"))
        return f" (fleet {who['command']}, pid {who['pid']} on {who['host']}, since {who['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def relative_to_fleet(path: Path, fleet_dir: Path) -> str:
    """How tenant.json names a path under the fleet run directory (posix, relative; else whole)."""
    try:
        return path.relative_to(fleet_dir).as_posix()
    except ValueError:
        return str(path)


def write_tenant_result(tenant_dir: Path, result: dict[str, Any]) -> None:
    """``tenant_dir/tenant.json``, replaced whole: written by the tenant's run where it ran, and
    by the dispatcher from the returned result (a worker on another machine may not share the disk)."""
    tenant_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private_json(tenant_dir / TENANT_FILE, result)


def _copy(source: Path, dest: Path) -> None:
    with source.open("rb") as src, open_private_binary(dest) as dst:
        shutil.copyfileobj(src, dst)
