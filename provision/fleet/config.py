"""Fleet files: one job template run across many tenants, listed in a tenants CSV.

``load_fleet(path)`` reads the fleet TOML and its tenants.csv and hands back a ``Fleet``:
the executor and quarantine settings, the selected tenants (each a ``TenantSpec`` with its
own validated ``Job``) and the tenants left out, with why.

A tenant's job is the template's TOML (or the tenant's own ``job`` template) with its
``[target]`` and ``[output]`` replaced by the fleet's, the tenant's overrides applied and
its roster path set, then validated by ``run.jobs.parse_job``: the one validation a single
run gets, so a fleet tenant and ``provision apply`` of the same job mean the same thing.

Two kinds of error, on purpose:

- the fleet's structure (the fleet TOML, its job template, the tenants CSV's columns, a
  missing tenant id or roster, a duplicate tenant id) stops the whole command with exit 2,
  naming the key or the CSV line, before any tenant runs;
- a bad per-tenant value (``mode = bogus``, a ``job`` template that doesn't parse) only
  fails that tenant: its ``TenantSpec.problem`` says why, naming the column, and it ends
  ``bad_input`` (exit 2) while the others run.
"""

from __future__ import annotations

import copy
import csv
import os
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator

from provision.errors import JobFileError, UsageError
from provision.run.jobs import GraphApp, Job, SandboxTarget, describe_errors, parse_job, suggest

__all__ = [
    "Excluded",
    "ExecutorConfig",
    "Fleet",
    "FleetGraphTarget",
    "FleetSandboxTarget",
    "QuarantineConfig",
    "TenantSpec",
    "load_fleet",
    "tenant_key",
    "with_sandbox_url",
]

PROVISION_CLUSTER_ENV = "PROVISION_CLUSTER"


@dataclass(frozen=True, slots=True)
class TenantSpec:
    tenant_id: str
    name: str  # "" in the CSV -> tenant_id
    key: str  # directory-safe, unique in the fleet
    groups: tuple[str, ...]
    line: int  # its line in tenants.csv
    job: Job | None  # the validated per-tenant Job (roster path absolute, target with tenant_id)
    problem: str | None  # why job is None: the tenant ends bad_input (exit 2) without running
    # When job is None: the template's job without this tenant's overrides, only to list its
    # roster's rows in the reports (as skipped, with the problem); never run.
    roster_job: Job | None = None


@dataclass(frozen=True, slots=True)
class QuarantineConfig:
    failed_writes: int = 25
    failed_percent: float = 50.0
    min_writes: int = 20


@dataclass(frozen=True, slots=True)
class Excluded:
    tenant_id: str
    reason: str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExecutorConfig(_Strict):
    # "tcp://HOST:8786": an existing Dask scheduler; "" (and no PROVISION_CLUSTER): embedded.
    cluster: str = ""
    workers: Annotated[StrictInt, Field(ge=0)] = 0  # embedded: worker processes (0: the machine's cores)
    # Tenants one worker process runs at once: the work waits on Graph, so more threads than cores.
    threads_per_worker: Annotated[StrictInt, Field(ge=1)] = 16
    max_parallel_tenants: Annotated[StrictInt, Field(ge=1)] = 32
    tenant_timeout_minutes: Annotated[float, Field(gt=0)] = 120
    retries: Annotated[StrictInt, Field(ge=0)] = 2  # re-dispatches of a tenant whose worker was lost

    @field_validator("cluster")
    @classmethod
    def _an_address(cls, v: str) -> str:
        v = v.strip()
        if v and not re.match(r"^(tcp|tls|inproc|ws|wss)://[^\s]+$", v):
            raise ValueError("a Dask scheduler address such as tcp://10.0.0.5:8786 (or empty: an embedded cluster)")
        return v


class _QuarantineSection(_Strict):
    failed_writes: Annotated[StrictInt, Field(ge=1)] = 25
    failed_percent: Annotated[float, Field(gt=0, le=100)] = 50.0
    min_writes: Annotated[StrictInt, Field(ge=0)] = 20


class FleetSandboxTarget(_Strict):
    kind: Literal["sandbox"] = "sandbox"
    # A running multi-tenant sandbox, or a directory of snapshots for an embedded one.
    url: str | None = None
    snapshots: Path | None = None
    # The embedded sandbox's state (kept so `fleet resume` continues the same tenants);
    # Relative to the fleet file; default .provision/fleet-sandbox/<fleet name>/ under the working directory.
    state: Path | None = None
    profile: str = "unlimited"
    api_version: Literal["v1.0", "beta"] = "v1.0"

    @model_validator(mode="after")
    def _one_source(self) -> "FleetSandboxTarget":
        if (self.url is None) == (self.snapshots is None):
            raise ValueError("a sandbox fleet names either url (a running multi-tenant sandbox) or snapshots (a directory of tenant snapshots)")
        return self


class FleetGraphTarget(GraphApp):
    """Every tenant's app; each tenant's id (and credential overrides) come from tenants.csv."""


class _FleetOutput(_Strict):
    directory: Path = Path("reports")


class _FleetFile(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    job_template: Path
    tenants: Path
    groups: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    executor: ExecutorConfig = ExecutorConfig()
    quarantine: _QuarantineSection = _QuarantineSection()
    target: Annotated[FleetSandboxTarget | FleetGraphTarget, Field(discriminator="kind")]
    output: _FleetOutput = _FleetOutput()


FleetTarget = FleetSandboxTarget | FleetGraphTarget


@dataclass(frozen=True, slots=True)
class Fleet:
    name: str
    source: Path  # the fleet file, absolute
    tenants_file: Path  # absolute
    template: Path  # the default job template, absolute
    executor: ExecutorConfig
    quarantine: QuarantineConfig
    target: FleetTarget
    output_dir: Path  # absolute
    tenants: tuple[TenantSpec, ...]  # selected, in CSV order
    excluded: tuple[Excluded, ...]

    @property
    def embedded_sandbox(self) -> bool:
        """The fleet starts its own multi-tenant sandbox (``[target] snapshots``) for its duration."""
        return isinstance(self.target, FleetSandboxTarget) and self.target.snapshots is not None

    def sandbox_state(self, cwd: Path | None = None) -> Path:
        """Where the embedded sandbox keeps its tenants between commands (absolute): ``state``
        against the fleet file's folder, as every path in it; unset, under the working directory
        (``.provision/fleet-sandbox/<name>``, beside the single jobs' embedded sandbox)."""
        assert isinstance(self.target, FleetSandboxTarget)
        if self.target.state is not None:
            return self.target.state if self.target.state.is_absolute() else self.source.parent / self.target.state
        return (cwd or Path.cwd()) / ".provision" / "fleet-sandbox" / self.name

    def cluster(self, override: str | None = None) -> str | None:
        """The scheduler address: ``--cluster``, else ``[executor] cluster``, else PROVISION_CLUSTER; None: embedded."""
        for candidate in (override, self.executor.cluster, os.environ.get(PROVISION_CLUSTER_ENV)):
            if candidate and candidate.strip():
                return candidate.strip()
        return None


# Optional tenants.csv columns that override one job key each: column -> (section, key).
_OVERRIDES: dict[str, tuple[str | None, str]] = {
    "mode": (None, "mode"),
    "sms_sign_in": (None, "sms_sign_in"),
    "max_changes": ("safety", "max_changes"),
    "max_delete_percent": ("safety", "max_delete_percent"),
    "max_update_percent": ("safety", "max_update_percent"),
    "min_roster_rows": ("safety", "min_roster_rows"),
    "default_region": ("roster", "default_region"),
    "sheet": ("roster", "sheet"),
}
_GRAPH_COLUMNS = ("client_id", "credential", "certificate_path", "secret_env")
_SANDBOX_COLUMNS = ("token_env",)
COLUMNS = ("tenant_id", "name", "roster", "groups", "enabled", "job", *_OVERRIDES, *_GRAPH_COLUMNS, *_SANDBOX_COLUMNS, "notes")
_YES = {"yes", "true", "1", "y"}
_NO = {"no", "false", "0", "n"}


def load_fleet(path: str | Path, *, only: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> Fleet:
    """Read and validate a fleet file and its tenants CSV; ``only`` (tenant ids or keys) and
    ``groups`` (replacing the file's ``groups``) narrow the tenants. Raises ``UsageError``
    (exit 2) naming the key or line on any structural problem."""
    path = Path(path).absolute()
    raw = _read_toml(path, what="fleet file")
    try:
        spec = _FleetFile.model_validate(raw)
    except ValidationError as exc:
        raise JobFileError(describe_errors(exc, _known_keys), path=str(path)) from None
    base = path.parent
    template = _absolute(spec.job_template, base)
    tenants_file = _absolute(spec.tenants, base)
    target: FleetTarget = spec.target
    if isinstance(target, FleetSandboxTarget) and target.snapshots is not None:
        snapshots = _absolute(target.snapshots, base)
        if not snapshots.is_dir():
            raise JobFileError(f"no such directory {snapshots}", key="target.snapshots", path=str(path))
        target = target.model_copy(update={"snapshots": snapshots})
    if isinstance(target, FleetSandboxTarget) and target.url is not None:
        # The same loopback and version checks a single job's sandbox url gets.
        try:
            SandboxTarget(url=target.url)
        except ValidationError as exc:
            raise JobFileError(exc.errors()[0]["msg"], key="target.url", path=str(path)) from None
        target = target.model_copy(update={"url": target.url.rstrip("/")})
    if isinstance(target, FleetGraphTarget) and target.certificate_path is not None:
        target = target.model_copy(update={"certificate_path": _absolute(target.certificate_path, base)})
    output_dir = _absolute(spec.output.directory, base)
    template_raw = _read_template(template, key="job_template", fleet=path)

    rows = _read_tenants(tenants_file)
    wanted_groups = tuple(groups) or spec.groups
    chosen = _check_names(only, rows, what="--only")
    never = _check_names(spec.exclude, rows, what="exclude", fleet=path)
    templates: dict[Path, dict[str, Any] | str] = {template: template_raw}
    tenants: list[TenantSpec] = []
    excluded: list[Excluded] = []
    for row in rows:
        reason = _left_out(row, wanted_groups, chosen, never)
        if reason is not None:
            excluded.append(Excluded(row.tenant_id, reason))
            continue
        job, problem, roster_job = _tenant_job(row, fleet_target=target, output_dir=output_dir, default_template=template,
                                               templates=templates, csv_path=tenants_file)
        tenants.append(TenantSpec(row.tenant_id, row.name or row.tenant_id, row.key, row.groups, row.line, job, problem,
                                  roster_job))
    if not tenants:
        raise UsageError(f"{path}: no tenant to run ({len(rows)} in {tenants_file.name}, every one left out: "
                         f"{_reasons(excluded)})")
    quarantine = QuarantineConfig(spec.quarantine.failed_writes, spec.quarantine.failed_percent, spec.quarantine.min_writes)
    return Fleet(spec.name, path, tenants_file, template, spec.executor, quarantine, target, output_dir,
                 tuple(tenants), tuple(excluded))


def with_sandbox_url(job: Job, url: str) -> Job:
    """``job`` aimed at a sandbox started later (the fleet's embedded multi-tenant one): same tenant, this url."""
    target = job.target
    if not isinstance(target, SandboxTarget):
        return job
    return job.model_copy(update={"target": target.model_copy(update={"url": url.rstrip("/")})})


def with_sandbox_urls(fleet: Fleet, url: str) -> Fleet:
    """Every tenant of ``fleet`` aimed at ``url`` (see ``with_sandbox_url``)."""
    tenants = tuple(replace(t, job=with_sandbox_url(t.job, url)) if t.job is not None else t for t in fleet.tenants)
    return replace(fleet, tenants=tenants)


def tenant_key(tenant_id: str, taken: set[str]) -> str:
    """A directory name for a tenant: its id with anything unsafe replaced, unique among ``taken``."""
    base = re.sub(r"[^a-z0-9._-]+", "_", tenant_id.strip().lower()).strip("._") or "tenant"
    base = base[:80]
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    taken.add(key)
    return key


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    tenant_id: str
    name: str
    key: str
    roster: Path
    groups: tuple[str, ...]
    enabled: bool
    cells: dict[str, str]  # the other non-empty columns


def _read_tenants(path: Path) -> list[_Row]:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{where}: tenants file not found (the fleet file's `tenants`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: can't read the tenants file: {exc}") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise UsageError(f"{where}: line 1: no header row; the columns are tenant_id, roster, and optionally {', '.join(COLUMNS[2:])}")
    names = [h.strip().lower() for h in header]
    for column in names:
        if column not in COLUMNS:
            raise UsageError(f"{where}: line 1: unknown column {column!r}{suggest(column, COLUMNS)}; columns are {', '.join(COLUMNS)}")
    for required in ("tenant_id", "roster"):
        if required not in names:
            raise UsageError(f"{where}: line 1: the required column {required!r} is missing")
    if len(set(names)) != len(names):
        raise UsageError(f"{where}: line 1: a column appears twice")
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    keys: set[str] = set()
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(names):
            raise UsageError(f"{where}: line {line}: {len(values)} cells, but the header has {len(names)} columns")
        cells = {n: v.strip() for n, v in zip(names, values)}
        tenant_id, roster = cells.get("tenant_id", ""), cells.get("roster", "")
        if not tenant_id:
            raise UsageError(f"{where}: line {line}: tenant_id is empty")
        if not roster:
            raise UsageError(f"{where}: line {line}: roster is empty (tenant {tenant_id})")
        folded = tenant_id.lower()
        if folded in seen:
            raise UsageError(f"{where}: line {line}: duplicate tenant_id {tenant_id!r} (first on line {seen[folded]})")
        seen[folded] = line
        enabled_cell = cells.get("enabled", "").lower()
        if enabled_cell and enabled_cell not in _YES | _NO:
            raise UsageError(f"{where}: line {line}: enabled must be yes or no (or true/false, 1/0), not {cells['enabled']!r}")
        groups = tuple(dict.fromkeys(g.strip() for g in cells.get("groups", "").split(";") if g.strip()))
        rest = {k: v for k, v in cells.items() if v and k not in {"tenant_id", "name", "roster", "groups", "enabled", "notes"}}
        rows.append(_Row(line, tenant_id, cells.get("name", ""), tenant_key(tenant_id, keys), _absolute(Path(roster), path.parent),
                         groups, enabled_cell not in _NO, rest))
    if not rows:
        raise UsageError(f"{where}: no tenants (only a header row)")
    return rows


def _check_names(names: tuple[str, ...], rows: list[_Row], *, what: str, fleet: Path | None = None) -> set[str]:
    """The tenant ids ``names`` (ids or keys, any case) stand for; an unknown one is an error."""
    by_name = {r.tenant_id.lower(): r.tenant_id for r in rows} | {r.key: r.tenant_id for r in rows}
    found: set[str] = set()
    for name in names:
        tenant = by_name.get(name.strip().lower())
        if tenant is None:
            prefix = f"{fleet}: exclude: " if fleet is not None else f"{what}: "
            raise UsageError(f"{prefix}no tenant {name!r} in the tenants file{suggest(name, list(by_name))}")
        found.add(tenant)
    return found


def _left_out(row: _Row, groups: tuple[str, ...], chosen: set[str], never: set[str]) -> str | None:
    if row.tenant_id in never:
        return "excluded by the fleet file"
    if not row.enabled:
        return "enabled = no in the tenants file"
    if chosen and row.tenant_id not in chosen:
        return "not selected (--only)"
    if groups and not set(groups) & set(row.groups):
        return f"not in group {', '.join(groups)}"
    return None


def _tenant_job(
    row: _Row, *, fleet_target: FleetTarget, output_dir: Path, default_template: Path,
    templates: dict[Path, dict[str, Any] | str], csv_path: Path,
) -> tuple[Job | None, str | None, Job | None]:
    """(the tenant's validated Job, None, None), or (None, why naming the column at fault,
    the job without the tenant's overrides if that one parses: its roster can still be listed)."""
    where = f"{csv_path.name} line {row.line}"
    template = default_template
    if "job" in row.cells:
        template = _absolute(Path(row.cells["job"]), csv_path.parent)
        if template not in templates:
            try:
                templates[template] = _read_template(template, key="job", fleet=None)
            except UsageError as exc:
                templates[template] = str(exc)
    loaded = templates[template]
    if isinstance(loaded, str):
        return None, f"{where}: column job: {loaded}", None
    raw = copy.deepcopy(loaded)
    try:
        raw["target"] = _tenant_target(row, fleet_target)
    except ValueError as exc:
        return None, f"{where}: {exc}", None
    raw["output"] = {"directory": str(output_dir)}
    raw["fleet_key"] = row.key  # where its earlier runs are: min_roster_percent compares against them
    roster = dict(raw.get("roster") or {})
    roster["path"] = str(row.roster)
    raw["roster"] = roster
    base = copy.deepcopy(raw)  # before the overrides: enough to read the roster if one is bad
    for column, (section, key) in _OVERRIDES.items():
        if column not in row.cells:
            continue
        value: Any = row.cells[column]
        if column == "sheet" and value.isdigit():
            value = int(value)
        if section is None:
            raw[key] = value
        else:
            raw[section] = {**dict(raw.get(section) or {}), key: value}
    try:
        return parse_job(raw, base=template.parent, source=template), None, None
    except JobFileError as exc:
        try:
            roster_job: Job | None = parse_job(base, base=template.parent, source=template)
        except JobFileError:
            roster_job = None
        return None, f"{where}: {_name_columns(str(exc), template)}", roster_job


def _tenant_target(row: _Row, fleet_target: FleetTarget) -> dict[str, Any]:
    cells = row.cells
    if isinstance(fleet_target, FleetSandboxTarget):
        wrong = [c for c in _GRAPH_COLUMNS if c in cells]
        if wrong:
            raise ValueError(f"column {wrong[0]}: only for a graph fleet (this fleet's target is the sandbox)")
        target: dict[str, Any] = {"kind": "sandbox", "tenant_id": row.tenant_id, "profile": fleet_target.profile,
                                  "api_version": fleet_target.api_version}
        if fleet_target.url is not None:
            target["url"] = fleet_target.url
        if "token_env" in cells:
            target["token_env"] = cells["token_env"]
        return target
    if "token_env" in cells:
        raise ValueError("column token_env: only for a sandbox fleet (a graph tenant signs in with credential / secret_env)")
    target = fleet_target.model_dump(mode="json", exclude_none=True)
    target["tenant_id"] = row.tenant_id
    for column in _GRAPH_COLUMNS:
        if column in cells:
            target[column] = cells[column]
    return target


def _name_columns(message: str, template: Path) -> str:
    """parse_job's message with the job keys the CSV overrides named as its columns."""
    message = message.removeprefix(f"{template}: ")
    for column, (section, key) in _OVERRIDES.items():
        dotted = f"{section}.{key}" if section else key
        message = re.sub(rf"(^|; ){re.escape(dotted)}:", rf"\1column {column} ({dotted}):", message)
    for column in (*_GRAPH_COLUMNS, *_SANDBOX_COLUMNS):
        message = re.sub(rf"(^|; )target\.{column}:", rf"\1column {column} (target.{column}):", message)
    return message


def _read_template(path: Path, *, key: str, fleet: Path | None) -> dict[str, Any]:
    """A job template's raw TOML, checked once on its own (with a stand-in roster path)."""
    raw = _read_toml(path, what="job template", key=key, fleet=fleet)
    raw.pop("target", None)
    raw.pop("output", None)
    check = copy.deepcopy(raw)
    check["roster"] = {**dict(check.get("roster") or {}), "path": "roster.csv"}
    parse_job(check, base=path.parent, source=path)
    return raw


def _read_toml(path: Path, *, what: str, key: str | None = None, fleet: Path | None = None) -> dict[str, Any]:
    # Named by the fleet file's key when it comes from one, else by its own path.
    where = {"key": key, "path": str(fleet)} if fleet is not None else {"path": str(path)}
    named = f"{what} {path}" if fleet is not None else what
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JobFileError(f"{named} not found", **where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobFileError(f"can't read {named}: {exc}", **where) from None
    except tomllib.TOMLDecodeError as exc:
        raise JobFileError(f"{named} is not valid TOML: {exc}", **where) from None


def _known_keys(loc: list[str]) -> tuple[str, ...]:
    sections: dict[str, type[BaseModel]] = {"executor": ExecutorConfig, "quarantine": _QuarantineSection, "output": _FleetOutput}
    if not loc:
        return tuple(_FleetFile.model_fields)
    if loc[0] == "target":
        return tuple(set(FleetSandboxTarget.model_fields) | set(FleetGraphTarget.model_fields))
    model = sections.get(loc[0])
    return tuple(model.model_fields) if model else ()


def _reasons(excluded: list[Excluded]) -> str:
    counts: dict[str, int] = {}
    for e in excluded:
        counts[e.reason] = counts.get(e.reason, 0) + 1
    return "; ".join(f"{n} {reason}" for reason, n in counts.items())


def _absolute(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else Path(os.path.normpath(base / path))
