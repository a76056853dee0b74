"""Job files: the TOML that says which roster, which tenant, and how boldly to change it.

A job file is validated in full before anything runs; every problem names its key
(``safety.max_delete_percent: ...``) so an admin can fix it at 2 a.m. without reading
code. Relative paths are resolved against the job file's folder. Secrets never live here:
credentials read them from environment variables or files (see ``provision.graph``).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from provision.errors import JobFileError
from provision.graph.clouds import Cloud
from provision.graph.credentials import SECRET_KEYS, CredentialKind
from provision.model import PlanMode, SmsIntent

ROSTER_FIELDS = ("user", "mobile", "alternate_mobile", "office", "region", "sms_sign_in")



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RosterConfig(_Strict):
    path: Path
    sheet: str | int | None = None
    default_region: str | None = Field(default=None, min_length=2, max_length=2)
    columns: dict[str, str] = Field(default_factory=dict)

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, v: str | None) -> str | None:
        return v.upper() if v else v

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if name not in ROSTER_FIELDS:
                raise ValueError(f"unknown roster field {name!r}{suggest(name, ROSTER_FIELDS)}; fields are {', '.join(ROSTER_FIELDS)}")
        return v


class SafetyConfig(_Strict):
    max_changes: Annotated[int, Field(ge=0)] | None = None
    max_delete_percent: Annotated[float, Field(ge=0, le=100)] | None = None
    max_update_percent: Annotated[float, Field(ge=0, le=100)] | None = None
    # A roster with fewer data rows is refused (an empty or header-only extract); 0: no floor.
    min_roster_rows: Annotated[int, Field(ge=0)] = 1
    # A roster whose usable rows fall below this percentage of the job's previous finished
    # run (same target) is refused; unset: 50 in authoritative mode, off in the others; 0: off.
    min_roster_percent: Annotated[float, Field(ge=0, le=100)] | None = None


class OutputConfig(_Strict):
    directory: Path = Path("reports")
    # Retention: at the start of a run, this job's older run directories beyond the newest
    # `keep_runs`, or older than `keep_days`, are deleted (run.retention). Unset: kept forever.
    keep_runs: Annotated[StrictInt, Field(gt=0)] | None = None
    keep_days: Annotated[StrictInt, Field(gt=0)] | None = None


class AuditConfig(_Strict):
    # A file a log shipper watches: each run's changes.jsonl lines are appended to it once.
    file: Path | None = None


class SandboxTarget(_Strict):
    kind: Literal["sandbox"] = "sandbox"
    # An already running sandbox; without it the job starts an embedded one on a free port.
    url: str | None = None
    # Seeds the embedded sandbox the first time; later runs continue from `state`.
    snapshot: Path | None = None
    state: Path = Path(".provision/sandbox/tenant.json")
    profile: str = "unlimited"
    api_version: Literal["v1.0", "beta"] = "v1.0"
    # A sandbox serving several tenants (fleet rehearsals): the tenant this job's token names.
    # Unset: the one tenant the sandbox serves (asked at /_sandbox/info).
    tenant_id: str | None = None
    # The environment variable holding this job's bearer token (default PROVISION_TOKEN);
    # unset in the environment, the job mints a sandbox token for the tenant.
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("url")
    @classmethod
    def _loopback_only(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from urllib.parse import urlsplit

        parts = urlsplit(v)
        host = parts.hostname or ""
        if host not in {"127.0.0.1", "localhost", "::1"} and not host.startswith("127."):
            raise ValueError("a sandbox url must be a loopback address (127.0.0.1, localhost or ::1)")
        if not parts.path.rstrip("/").endswith(("/v1.0", "/beta")):
            raise ValueError("a sandbox url ends with the API version, e.g. http://127.0.0.1:8000/v1.0 (or /beta)")
        return v.rstrip("/")


class GraphApp(_Strict):
    """The app a real-tenant job signs in as: a job's ``[target]`` less its tenant, which is
    also what a fleet file's ``[target]`` names for every tenant of the fleet."""

    kind: Literal["graph"]
    client_id: str | None = None
    cloud: Cloud = Cloud.GLOBAL
    api_version: Literal["v1.0", "beta"] = "v1.0"
    credential: CredentialKind = CredentialKind.DEFAULT
    # A certificate file (PEM or PFX); its password, if any, comes from the environment.
    certificate_path: Path | None = None
    # The environment variable holding this target's client secret (credential "secret") or
    # certificate password, instead of AZURE_CLIENT_SECRET / AZURE_CLIENT_CERTIFICATE_PASSWORD:
    # a fleet gives each tenant its own.
    secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class TenantTarget(GraphApp):
    tenant_id: str

    @model_validator(mode="after")
    def _needs(self) -> "TenantTarget":
        if self.credential in {CredentialKind.SECRET, CredentialKind.CERTIFICATE, CredentialKind.DEVICE_CODE} and not self.client_id:
            raise ValueError(f"credential {self.credential.value!r} needs client_id")
        if self.credential is CredentialKind.CERTIFICATE and self.certificate_path is None:
            raise ValueError("credential 'certificate' needs certificate_path (the password, if any, comes from AZURE_CLIENT_CERTIFICATE_PASSWORD)")
        return self


class ScopeConfig(_Strict):
    """``[scope]``: plan only the transitive members of these groups and the direct user
    members of these administrative units; roster users outside are reported out_of_scope."""

    # Each entry is an object id or an exact display name (matched case-insensitively).
    groups: tuple[str, ...] = ()
    admin_units: tuple[str, ...] = ()

    @field_validator("groups", "admin_units")
    @classmethod
    def _named(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        entries = tuple(e.strip() for e in v)
        if any(not e for e in entries):
            raise ValueError("an entry is empty: give a group's (or unit's) object id or display name")
        return tuple(dict.fromkeys(entries))

    @property
    def is_set(self) -> bool:
        return bool(self.groups or self.admin_units)


class NotifyConfig(_Strict):
    """``[notify]``: post the run's outcome to a Slack or Teams (Workflows) incoming webhook."""

    # The name of the environment variable holding the webhook URL: the URL carries a secret.
    webhook_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # slack: {"text", "blocks"}; teams: a Workflows message with one Adaptive Card.
    format: Literal["slack", "teams"]
    # failure: the exit code is neither 0 nor 6; drift: the run changed something, or
    # plan --check found changes pending; always: every run.
    on: tuple[Literal["failure", "drift", "always"], ...] = Field(default=("failure",), min_length=1)

    @field_validator("webhook_env", mode="before")
    @classmethod
    def _a_name_not_a_url(cls, v: Any) -> Any:
        if isinstance(v, str) and any(c in v for c in "/:."):  # a URL or a host, not a variable name
            raise ValueError(
                "names the environment variable that holds the webhook URL, never the URL itself "
                "(secrets never go in a job file), e.g. webhook_env = \"PROVISION_WEBHOOK_URL\""
            )
        return v


class Job(_Strict):
    name: str
    description: str = ""
    mode: PlanMode = PlanMode.ADDITIVE
    sms_sign_in: SmsIntent = SmsIntent.LEAVE
    # Re-try enabling SMS sign-in, every run, for mobiles whose number another user holds.
    sms_retry_conflicts: bool = False
    roster: RosterConfig
    safety: SafetyConfig = SafetyConfig()
    output: OutputConfig = OutputConfig()
    audit: AuditConfig = AuditConfig()
    target: Annotated[SandboxTarget | TenantTarget, Field(discriminator="kind")] = SandboxTarget()
    notify: NotifyConfig | None = None
    scope: ScopeConfig = ScopeConfig()
    # Where the job file lives: relative paths were resolved against it.
    source: Path | None = None
    # Set by fleet mode, not written in job files: the tenant's directory name in fleet run
    # directories (``fleet-*/tenants/<key>/run``), where its earlier runs are (run.history).
    fleet_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+$")


def load_job(path: str | Path) -> Job:
    """Read and validate a job file; raise JobFileError naming the key on any problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JobFileError("job file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobFileError(f"can't read job file: {exc}", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise JobFileError(f"not valid TOML: {exc}", path=str(path)) from None
    return parse_job(raw, base=path.parent, source=path)


def parse_job(raw: dict[str, Any], *, base: Path, source: Path | None = None) -> Job:
    _refuse_secrets(raw, source)
    data = dict(raw)
    data.setdefault("name", source.stem if source else "job")
    data.setdefault("target", {"kind": "sandbox"})
    if isinstance(data["target"], dict):
        data["target"] = {"kind": "sandbox", **data["target"]}
    try:
        job = Job.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise JobFileError(describe_errors(exc), path=str(source) if source else None) from None
    return _resolve_paths(job, base)


def _resolve_paths(job: Job, base: Path) -> Job:
    def rel(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else Path(os.path.normpath(base / p))

    roster = job.roster.model_copy(update={"path": rel(job.roster.path) or job.roster.path})
    output = job.output.model_copy(update={"directory": rel(job.output.directory) or job.output.directory})
    audit = job.audit.model_copy(update={"file": rel(job.audit.file) or job.audit.file})
    target = job.target
    if isinstance(target, SandboxTarget):
        # `state` stays relative to the working directory: it is the tool's home, like .git.
        target = target.model_copy(update={"snapshot": rel(target.snapshot) or target.snapshot})
    elif target.certificate_path is not None:
        target = target.model_copy(update={"certificate_path": rel(target.certificate_path) or target.certificate_path})
    return job.model_copy(update={"roster": roster, "output": output, "audit": audit, "target": target})


def _refuse_secrets(raw: Any, source: Path | None, prefix: str = "") -> None:
    if not isinstance(raw, dict):
        return
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key.lower() in SECRET_KEYS:
            raise JobFileError(
                "secrets never go in a job file: set AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PASSWORD) "
                "in the environment, or use certificate_path / a managed identity",
                key=dotted,
                path=str(source) if source else None,
            )
        _refuse_secrets(value, source, f"{dotted}.")


def describe_errors(exc: ValidationError, known_keys: Callable[[list[str]], tuple[str, ...]] | None = None) -> str:
    """A pydantic error as the admin reads it: each key with what is wrong, an unknown key
    with the nearest known one (``known_keys(parent path)``; default: a job file's keys)."""
    known = known_keys or _known_keys
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and p in {"sandbox", "graph"})]
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key{suggest(loc[-1], known(loc[:-1]))}")
        elif err["type"] == "missing":
            lines.append(f"{key}: required key is missing")
        else:
            lines.append(f"{key}: {err['msg']}")
    return "; ".join(lines)


def _known_keys(loc: list[str]) -> tuple[str, ...]:
    model: type[BaseModel] | None = Job
    for part in loc:
        field = model.model_fields.get(part) if model else None
        ann = field.annotation if field else None
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if part == "target":
            return tuple(set(SandboxTarget.model_fields) | set(TenantTarget.model_fields))
    return tuple(model.model_fields) if model else ()


def suggest(word: str, candidates: tuple[str, ...] | list[str]) -> str:
    """" (did you mean 'x'?)" for the nearest candidate, or ""."""
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
