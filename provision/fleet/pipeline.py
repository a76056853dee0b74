"""A whole fleet command in one call: what ``provision fleet ...`` (and any script) runs.

- ``plan_fleet(path)`` / ``apply_fleet(path)``: load the fleet file, create the fleet run
  directory, start the fleet's embedded sandbox when it rehearses on one, dispatch every
  tenant (``dispatch.run_fleet``), write the merged reports.
- ``resume_fleet(dir)``: the same for the tenants of a fleet run directory that did not
  finish (no tenant.json, or stopped / lost), under the same directory; finished tenants
  are left alone and keep their results in the merged reports.
- ``report_fleet(dir)``: re-render the merged reports from the tenant.json files.

Interaction is injected (``FleetOptions``): ``confirm`` is asked before an apply writes,
``on_start`` hears the fleet directory and executor, ``on_result`` each finished tenant.
The fleet directory is locked (``rundir.fleet_lock``) while tenants run in it.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

from provision.errors import Cancelled, StoppedError, UsageError
from provision.fleet.config import Fleet, load_fleet, with_sandbox_urls
from provision.fleet.report import FleetReport, write_fleet_reports
from provision.fleet.rundir import FleetDir, create_fleet_dir, fleet_lock, open_fleet_dir

__all__ = ["FleetOptions", "FleetOutcome", "apply_fleet", "plan_fleet", "report_fleet", "resume_fleet"]

Action = Literal["plan", "apply"]


@dataclass(frozen=True, slots=True)
class FleetOptions:
    cluster: str | None = None  # a scheduler address; None: the fleet file's, PROVISION_CLUSTER, else embedded
    only: tuple[str, ...] = ()  # tenant ids or keys
    groups: tuple[str, ...] = ()  # replaces the fleet file's groups
    confirm: Callable[[Fleet], bool] = lambda fleet: True  # apply: asked once, before any tenant runs
    on_start: Callable[[FleetDir, str], None] = lambda fleet_dir, executor: None
    on_result: Callable[[dict[str, Any]], None] = lambda result: None


@dataclass(frozen=True, slots=True)
class FleetOutcome:
    fleet_dir: FleetDir
    results: list[dict[str, Any]]  # every tenant with a tenant.json, in the manifest's order
    report: FleetReport

    @property
    def exit_code(self) -> int:
        return int(self.report.exit_code)


def plan_fleet(path: Path, options: FleetOptions = FleetOptions()) -> FleetOutcome:
    """Plan every tenant (no writes): each tenant's plan.json and results.csv; exit 6 when changes are pending."""
    return _fresh(path, "plan", options)


def apply_fleet(path: Path, options: FleetOptions = FleetOptions()) -> FleetOutcome:
    """Apply every tenant's job (each an ordinary run in ``tenants/<key>/run``)."""
    return _fresh(path, "apply", options)


def resume_fleet(path: Path, options: FleetOptions = FleetOptions()) -> FleetOutcome:
    """Finish the tenants of a fleet run directory that did not finish."""
    fleet_dir = open_fleet_dir(path)
    manifest = fleet_dir.manifest()
    action: Action = "plan" if manifest.get("action") == "plan" else "apply"
    keys_by_id = {t["tenant_id"]: t["key"] for t in manifest["tenants"]}
    with fleet_lock(fleet_dir, command="resume"):
        unfinished = fleet_dir.unfinished()
        if unfinished:
            source = Path(str(manifest.get("fleet_file", "")))
            if not source.is_file():
                raise UsageError(f"{fleet_dir.manifest_file}: its fleet file {source} is gone; resume needs it (and its job templates)")
            wanted = {t["tenant_id"] for t in manifest["tenants"] if t["key"] in unfinished}
            fleet = load_fleet(source, only=tuple(sorted(wanted)))
            # The keys the directory already uses, whatever the tenants file's order is now.
            specs = tuple(replace(t, key=keys_by_id[t.tenant_id]) for t in fleet.tenants if t.tenant_id in keys_by_id)
            fleet = replace(fleet, tenants=specs)
            resumed = [*manifest.get("resumed", []), _now()]
            fleet_dir.record(resumed=resumed)
            _run(fleet, fleet_dir, action, options, resuming=True)
    return _report(fleet_dir)


def report_fleet(path: Path) -> FleetOutcome:
    """Re-render fleet_summary.json, fleet.xlsx and report.html from the tenant.json files."""
    return _report(open_fleet_dir(path))


def _fresh(path: Path, action: Action, options: FleetOptions) -> FleetOutcome:
    fleet = load_fleet(path, only=options.only, groups=options.groups)
    if action == "apply" and not options.confirm(fleet):
        raise Cancelled("cancelled: nothing was written")
    selection = {"only": list(options.only), "groups": list(options.groups)}
    fleet_dir = create_fleet_dir(fleet, action=action, executor="(starting)", selection=selection)
    with fleet_lock(fleet_dir, command=action):
        _run(fleet, fleet_dir, action, options, resuming=False)
    return _report(fleet_dir)


def _run(fleet: Fleet, fleet_dir: FleetDir, action: Action, options: FleetOptions, *, resuming: bool) -> None:
    from provision.fleet.dispatch import open_executor, run_fleet
    from provision.fleet.tenant_run import TenantTask

    ex = fleet.executor
    try:
        with ExitStack() as stack:
            if fleet.embedded_sandbox:
                from provision.fleet.sandbox import fleet_sandbox

                fleet = with_sandbox_urls(fleet, stack.enter_context(fleet_sandbox(fleet)))
            if resuming:
                fleet_dir.point_runs_at([t.key for t in fleet.tenants], {t.key: t for t in fleet.tenants})
            executor = stack.enter_context(
                open_executor(fleet.cluster(options.cluster), workers=ex.workers,
                              threads_per_worker=ex.threads_per_worker, log_file=fleet_dir.log_file)
            )
            fleet_dir.record(executor=executor.description)
            options.on_start(fleet_dir, executor.description)
            tasks = [
                TenantTask(
                    spec=spec,
                    action=action,
                    tenant_dir=fleet_dir.tenant_dir(spec.key),
                    fleet_dir=fleet_dir.path,
                    quarantine=fleet.quarantine,
                    # Only an embedded cluster's workers share this machine (and its pids).
                    fleet_pid=os.getpid() if executor.embedded else None,
                    timeout_s=ex.tenant_timeout_minutes * 60,
                )
                for spec in fleet.tenants
            ]
            run_fleet(tasks, executor=executor, max_parallel=ex.max_parallel_tenants, retries=ex.retries,
                      on_result=options.on_result)
    except KeyboardInterrupt:
        _stopped(fleet_dir)
        raise StoppedError(
            f"interrupted: tenants still running were stopped; finish them with `provision fleet resume {fleet_dir.path}`"
        ) from None
    except StoppedError:
        _stopped(fleet_dir)
        raise
    fleet_dir.record(finished=_now())


def _stopped(fleet_dir: FleetDir) -> None:
    """The merged reports of a fleet command that stopped early: tenants not finished show as stopped."""
    fleet_dir.record(finished=_now())
    _report(fleet_dir)


def _report(fleet_dir: FleetDir) -> FleetOutcome:
    results = fleet_dir.results()
    manifest = fleet_dir.manifest()
    report = write_fleet_reports(fleet_dir.path, results, manifest)
    return FleetOutcome(fleet_dir, results, report)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
