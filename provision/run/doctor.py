"""`provision doctor`: is this job ready to run? A checklist, each item with its fix.

The checks, in order, each a ``Check`` (no printing: the CLI renders them):

- **job file**: it loads and validates (every problem names its key);
- **roster**: the job's roster reads (its first user is the one the phone read uses; a
  roster that doesn't read yet is a warning: doctor is about the connection);
- **credential**: a token is obtained, through the same sign-in every command does
  (``run.targets.open_target``); it runs before Graph is asked anything, so a refused
  credential never reaches Graph, but is listed after the next two;
- **target**: the Graph endpoint (or sandbox) answers HTTP at all, within ``PROBE_TIMEOUT_S``
  (no proxy from the environment, like the GraphClient's own requests);
- **clock**: the target's ``Date`` header against this machine's clock (tokens and
  certificate assertions are time-bound: more than ``CLOCK_SKEW_WARN`` apart is a warning);
- **permissions**: the token's ``roles`` (application) or ``scp`` + ``wids`` (delegated) set
  against what this job needs (``needs_for``), judged by the same per-operation table the
  sandbox enforces (``provision.sandbox.auth.OPERATION_ACCESS``, docs/graph-evidence.md
  G33). The payload is decoded without checking the signature (it is our own token); a
  token that isn't a readable JWT is a warning, and the reads below still prove the rest;
- **phone read**: one real ``GET .../phoneMethods`` (the roster's first user, else any
  user of the tenant); only phone types are reported, never numbers;
- **SMS policy**: one real read of the SMS authentication method policy.

Once a check fails in a way the later ones depend on (the job doesn't load, nothing
answers, no token), the rest are ``skip``. ``exit_code`` turns the list into the command's
exit code: 5 when nothing answered, 4 for a credential or permission problem, 2 for a job
file problem, else 0 (warnings allowed).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import httpx

from provision.errors import ExitCode, GraphError, ProvisionError, exit_code_for
from provision.masking import is_masked
from provision.model import SmsIntent
from provision.run.jobs import Job, SandboxTarget, load_job

if TYPE_CHECKING:
    from provision.graph.client import GraphClient

PROBE_TIMEOUT_S = 10.0
CLOCK_SKEW_WARN = timedelta(minutes=5)


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # not run: an earlier check it depends on failed


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""
    # For a failure: the exit code it stands for (AUTH, STOPPED, USAGE...).
    code: ExitCode = ExitCode.OK


@dataclass(frozen=True, slots=True)
class Need:
    """One thing the job does on Graph and the permission it takes."""

    name: str  # the check's name: "permission: <name>"
    used_by: str  # what needs it, for the check's detail
    operation: str  # a key of provision.sandbox.auth.OPERATION_ACCESS
    permission: str  # the least-privileged application permission that allows it
    required: bool  # missing: a failure (True) or a warning (False)


def needs_for(job: Job, *, plan_only: bool, sms_in_roster: bool = False) -> list[Need]:
    """What this job needs: phone reads always; writes unless only ``plan`` runs (then what
    ``apply`` would need is a warning); the SMS policy read and user lookups when the job
    manages SMS sign-in (the job's default or a roster column); member reads when the job
    has a ``[scope]``."""
    phone_read = "UserAuthenticationMethod.Read.All"
    phone_write = "UserAuthenticationMethod.ReadWrite.All"
    needs = [
        Need("phone reads", "plan and apply", "listPhoneMethods", phone_read, True),
        Need("phone writes", "apply" if not plan_only else "apply only; plan doesn't need it", "createPhoneMethod", phone_write, not plan_only),
    ]
    if job.sms_sign_in is not SmsIntent.LEAVE or sms_in_roster:
        policy_read = "Policy.Read.AuthenticationMethod"
        needs.append(Need("SMS policy read", "SMS sign-in changes", "getSmsPolicy", policy_read, True))
        # Only when the policy names individual users; without it their SMS eligibility is unknown.
        needs.append(Need("user lookups", "an SMS policy that names users", "getUser", "User.Read.All", False))
    # A scoped job reads its groups' and units' members before anything else (graph.scope_reader).
    if job.scope.groups:
        needs.append(Need("group members", "the job's [scope] groups", "listGroupTransitiveMembers", "GroupMember.Read.All", True))
    if job.scope.admin_units:
        needs.append(
            Need("unit members", "the job's [scope] admin_units", "listAdminUnitMembers", "AdministrativeUnit.Read.All", True)
        )
    return needs


def exit_code(checks: Sequence[Check]) -> ExitCode:
    """5 if nothing answered, else 4 for a credential or permission failure, else the first
    other failure's code; 0 when nothing failed (warnings allowed)."""
    codes = [c.code for c in checks if c.status is Status.FAIL]
    for code in (ExitCode.STOPPED, ExitCode.AUTH):
        if code in codes:
            return code
    return codes[0] if codes else ExitCode.OK


# --- the token ------------------------------------------------------------------------


def token_claims(token: str) -> dict[str, Any] | None:
    """A JWT's payload (base64url JSON, signature not checked), or None for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _role_names() -> dict[str, str]:
    from provision.sandbox import auth

    return {
        auth.AUTHENTICATION_ADMINISTRATOR: "Authentication Administrator",
        auth.PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: "Privileged Authentication Administrator",
        auth.GLOBAL_ADMINISTRATOR: "Global Administrator",
        auth.GLOBAL_READER: "Global Reader",
        auth.AUTHENTICATION_POLICY_ADMINISTRATOR: "Authentication Policy Administrator",
        auth.USER_ADMINISTRATOR: "User Administrator",
    }


def permission_checks(claims: Mapping[str, Any] | None, needs: Sequence[Need], *, sandbox: bool) -> list[Check]:
    """The token's permissions against ``needs``: one check per need (a warning for an
    opaque token: the reads that follow prove what they can)."""
    from provision.sandbox.auth import OPERATION_ACCESS, AuthFailure, principal_from_claims

    if claims is None:
        return [
            Check(
                "permissions",
                Status.WARN,
                "the token is not a readable JWT, so its permissions can't be listed; the reads below test them",
            )
        ]
    try:
        principal = principal_from_claims(claims)
    except AuthFailure as exc:
        return [Check("permissions", Status.WARN, f"the token's claims can't be read: {exc.message}")]
    held = _held(claims, principal.delegated)
    kind = "delegated scopes" if principal.delegated else "application roles"
    checks = [Check("token", Status.OK, f"{kind}: {', '.join(held) if held else '(none)'}")]
    names = _role_names()
    # Without a wids claim the account's directory roles can't be judged here: the reads test them.
    roles_known = not principal.delegated or "wids" in claims
    if not roles_known:
        checks.append(Check("directory roles", Status.WARN, "the token carries no wids claim: the account's roles can't be listed"))
    for need in needs:
        access = OPERATION_ACCESS[need.operation]
        accepted = access.delegated if principal.delegated else access.application
        missing_role = roles_known and principal.delegated and bool(access.roles) and principal.wids.isdisjoint(access.roles)
        if not principal.permissions.isdisjoint(accepted) and not missing_role:
            checks.append(Check(f"permission: {need.name}", Status.OK, f"{_granted_by(held, accepted)} (for {need.used_by})"))
            continue
        status = Status.FAIL if need.required else Status.WARN
        if principal.permissions.isdisjoint(accepted):
            detail = f"the token lacks {need.permission} (for {need.used_by})"
            fix = _grant_fix(need.permission, held, tenant=principal.tenant_id, delegated=principal.delegated, sandbox=sandbox)
            if need.operation == "createPhoneMethod" and need.required:
                fix += "; or, if this job only ever runs plan (a read-only dry run), run doctor --plan-only"
        else:
            roles = " or ".join(names[r] for r in names if r.casefold() in access.roles)
            detail = f"the signed-in account holds none of the directory roles {need.used_by} needs"
            fix = f"assign the signed-in account {roles} (Entra admin center > Roles and administrators), then sign in again"
        checks.append(Check(f"permission: {need.name}", status, detail, fix, ExitCode.AUTH if need.required else ExitCode.OK))
    return checks


def _held(claims: Mapping[str, Any], delegated: bool) -> list[str]:
    if delegated:
        return str(claims.get("scp") or "").split()
    roles = claims.get("roles") or []
    return [str(r) for r in roles] if isinstance(roles, list) else []


def _granted_by(held: Sequence[str], accepted: frozenset[str]) -> str:
    by = [name for name in held if name.casefold() in accepted]
    return f"granted by {', '.join(by)}"


def _grant_fix(permission: str, held: Sequence[str], *, tenant: str, delegated: bool, sandbox: bool) -> str:
    if sandbox:
        if delegated:
            return f"set PROVISION_TOKEN to a sandbox token whose scopes hold it: provision sandbox token --scp '{permission} ...' --tid {tenant}"
        roles = ",".join([*held, permission])
        return f"set PROVISION_TOKEN to a sandbox token that holds it: provision sandbox token --roles {roles} --tid {tenant}"
    kind = "Delegated" if delegated else "Application"
    return (
        f"add the Microsoft Graph {kind.lower()} permission {permission} to the app registration (API permissions > "
        f"Add a permission > Microsoft Graph > {kind} permissions), grant admin consent, then run doctor again"
    )


# --- the clock and the target's answer ------------------------------------------------------


async def probe(base_url: str, *, timeout_s: float = PROBE_TIMEOUT_S, transport: httpx.AsyncBaseTransport | None = None) -> httpx.Response:
    """One unauthenticated GET of the base URL: any HTTP answer means the target is reachable
    (Graph answers 4xx without a token, with its ``Date``). Raises ``httpx.HTTPError``."""
    # No proxy from the environment: the GraphClient's own transport takes none either.
    async with httpx.AsyncClient(timeout=timeout_s, transport=transport, trust_env=False) as http:
        return await http.get(base_url)


def clock_check(date_header: str | None, local: datetime) -> Check:
    """The target's ``Date`` against this machine's clock."""
    if not date_header:
        return Check("clock", Status.WARN, "the target sent no Date header: the clock can't be compared")
    try:
        remote = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return Check("clock", Status.WARN, f"the target's Date header can't be read: {date_header[:60]!r}")
    if remote.tzinfo is None:
        remote = remote.replace(tzinfo=timezone.utc)
    skew = local - remote
    seconds = abs(skew.total_seconds())
    ahead = "ahead of" if skew > timedelta(0) else "behind"
    if abs(skew) > CLOCK_SKEW_WARN:
        return Check(
            "clock",
            Status.WARN,
            f"this machine's clock is {seconds / 60:.0f} min {ahead} the target's: tokens and certificate sign-ins "
            f"are time-bound and may be refused",
            "set the system clock right (NTP), then run doctor again",
        )
    return Check("clock", Status.OK, f"within {max(seconds, 1):.0f} s of the target's")


# --- the whole checklist --------------------------------------------------------------------


def _job_check(path: Path) -> tuple[Check, Job | None]:
    try:
        job = load_job(path)
    except ProvisionError as exc:
        return Check("job file", Status.FAIL, str(exc), "correct the job file as the message says, then run doctor again", exit_code_for(exc)), None
    where = "embedded sandbox" if isinstance(job.target, SandboxTarget) and not job.target.url else (
        f"sandbox at {job.target.url}" if isinstance(job.target, SandboxTarget) else
        f"tenant {job.target.tenant_id} ({job.target.cloud.value}, credential {job.target.credential.value})"
    )
    detail = f"{job.name}: mode {job.mode.value}, sms_sign_in {job.sms_sign_in.value}, target {where}"
    return Check("job file", Status.OK, detail), job


def _roster_check(job: Job) -> tuple[Check, list[str], bool]:
    """The roster's users (for the phone read) and whether it carries an SMS column."""
    from provision.run.plan_stage import load_roster

    try:
        roster = load_roster(job)
    except ProvisionError as exc:
        return Check("roster", Status.WARN, f"can't read it yet: {exc}", "run provision validate on it"), [], False
    users = list(roster.users)
    detail = f"{roster.path.name}: {len(roster.rows)} rows, {len(users)} users"
    return Check("roster", Status.OK, detail), users, "sms_sign_in" in roster.columns


def _skipped(names: Sequence[str], why: str) -> list[Check]:
    return [Check(name, Status.SKIP, f"not checked: {why}") for name in names]


_UNREACHABLE_FIX = "check the network, DNS, proxy and firewall between this machine and it, then run doctor again"
_SANDBOX_DOWN_FIX = "start the sandbox (provision sandbox serve) or correct target.url, then run doctor again"
_AFTER_TARGET = ("credential", "permissions", "phone read", "SMS policy")


async def diagnose(
    job_path: Path,
    *,
    plan_only: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> list[Check]:
    """Run every check for the job at ``job_path``, in order; never raises a ProvisionError."""
    job_check, job = _job_check(job_path)
    if job is None:
        return [job_check, *_skipped(("roster", "target", "clock", *_AFTER_TARGET), "the job file doesn't load")]
    checks = [job_check]
    roster_check, users, sms_in_roster = _roster_check(job)
    checks.append(roster_check)
    checks += await _signed_in_checks(job, users, plan_only=plan_only, sms_in_roster=sms_in_roster, now=now)
    return checks


async def _reach(base_url: str, now: Callable[[], datetime]) -> list[Check]:
    try:
        response = await probe(base_url)  # after the sign-in: a refused credential never reaches Graph
    except httpx.HTTPError as exc:
        reason = f"no answer within {PROBE_TIMEOUT_S:g} s" if isinstance(exc, httpx.TimeoutException) else str(exc)
        return [
            Check(
                "target",
                Status.FAIL,
                f"{base_url} did not answer: {reason or type(exc).__name__}",
                _SANDBOX_DOWN_FIX if base_url.startswith("http://") else _UNREACHABLE_FIX,
                ExitCode.STOPPED,
            ),
            Check("clock", Status.SKIP, "not checked: the target did not answer"),
        ]
    return [
        Check("target", Status.OK, f"{base_url} answers (HTTP {response.status_code})"),
        clock_check(response.headers.get("date"), now()),
    ]


async def _signed_in_checks(
    job: Job, users: Sequence[str], *, plan_only: bool, sms_in_roster: bool, now: Callable[[], datetime]
) -> list[Check]:
    """Open the target as every command does (a tenant is signed in to there), then the
    checks that need it."""
    from provision.run.targets import open_target

    checks: list[Check] = []
    try:
        async with open_target(job) as target:
            reach = await _reach(target.base_url, now)
            checks += reach
            if reach[0].status is Status.FAIL:
                return checks + _skipped(_AFTER_TARGET, "the target did not answer")
            client = target.client
            provider = client.auth_provider.access_token_provider
            token = await provider.get_authorization_token(f"{client.target.base_url}/users")
            if not token:
                checks.append(Check("credential", Status.FAIL, "no token was obtained", "check target.credential", ExitCode.AUTH))
                return checks + _skipped(_AFTER_TARGET[1:], "no token")
            checks.append(Check("credential", Status.OK, f"a token was obtained ({target.description})"))
            needs = needs_for(job, plan_only=plan_only, sms_in_roster=sms_in_roster)
            checks += permission_checks(token_claims(token), needs, sandbox=target.kind == "sandbox")
            checks.append(await _phone_read(client, users))
            checks.append(await _policy_read(client, required=any(n.operation == "getSmsPolicy" for n in needs)))
    except ProvisionError as exc:
        # Opening the target signs in: a refusal is the credential's (4), no answer is 5.
        code = exit_code_for(exc)
        tenant = not isinstance(job.target, SandboxTarget)  # a tenant's target is opened by signing in
        name = "credential" if code is ExitCode.AUTH or tenant else "target"
        fix = {
            ExitCode.AUTH: "the message names the cause and its fix; then run doctor again",
            ExitCode.STOPPED: _UNREACHABLE_FIX if tenant else _SANDBOX_DOWN_FIX,
        }.get(code, "correct what the message names, then run doctor again")
        checks.append(Check(name, Status.FAIL, str(exc), fix, code))
        done = {c.name for c in checks}
        checks += _skipped([n for n in ("target", "clock", *_AFTER_TARGET) if n not in done and n != name], f"the {name} check failed")
    return checks


async def _phone_read(client: GraphClient, users: Sequence[str]) -> Check:
    """One real phone-method read: the roster's first user, else (none, or not in the
    tenant) the tenant's first user."""
    user = users[0] if users else None
    phones = None
    if user is not None:
        try:
            phones = await client.list_phones(user)
        except GraphError as exc:
            if exc.status != 404:
                return _read_failure("phone read", exc, "UserAuthenticationMethod.Read.All")
    if phones is None:
        try:
            # The client follows a next link as given: this one asks for a single user.
            found, _ = await client.list_users_page(f"{client.target.base_url}/users?$top=1&$select=id,userPrincipalName")
        except GraphError as exc:
            why = "the roster's first user is not in the tenant" if user else "the roster names no user"
            return _read_failure("phone read", exc, f"User.Read.All ({why}, so doctor looks one up)")
        if not found:
            return Check("phone read", Status.WARN, "the tenant has no users: no phone methods could be read")
        user = found[0].user_principal_name or found[0].id
        try:
            phones = await client.list_phones(user)
        except GraphError as exc:
            return _read_failure("phone read", exc, "UserAuthenticationMethod.Read.All")
    kinds = ", ".join(sorted(p.value for p in phones)) or "no phone methods"
    masked = [p for p in phones.values() if is_masked(p.number)]
    if masked:
        return Check(
            "phone read",
            Status.WARN,
            f"read {user}'s phone methods ({kinds}) but Graph hid the numbers (masked)",
            "sign in with Privileged Authentication Administrator (or use an app permission): masked numbers can't be compared",
        )
    return Check("phone read", Status.OK, f"read {user}'s phone methods ({kinds})")


async def _policy_read(client: GraphClient, *, required: bool) -> Check:
    try:
        policy, reason = await client.read_sms_policy()
    except GraphError as exc:
        return _read_failure("SMS policy", exc, "Policy.Read.AuthenticationMethod")
    if reason is not None:
        if required:
            return Check("SMS policy", Status.FAIL, reason, _grant_fix_any("Policy.Read.AuthenticationMethod"), ExitCode.AUTH)
        return Check("SMS policy", Status.WARN, f"{reason} (this job leaves SMS sign-in alone: not needed)")
    state = "enabled" if policy.enabled else "disabled"
    scope = "all users" if policy.include_all_users else (
        f"{len(policy.include_ids)} users, {len(policy.include_group_ids)} groups"
    )
    return Check("SMS policy", Status.OK, f"SMS sign-in method {state} for {scope}")


def _read_failure(name: str, exc: GraphError, permission: str) -> Check:
    if exc.status == 0:
        return Check(name, Status.FAIL, f"no answer: {exc.message}", "check the network, then run doctor again", ExitCode.STOPPED)
    if exc.status == 401:
        return Check(
            name,
            Status.FAIL,
            f"the token was refused: {exc}",
            "the token is for another tenant, expired, or not for Graph: check target.tenant_id and target.cloud "
            "(a sandbox: PROVISION_TOKEN), then run doctor again",
            ExitCode.AUTH,
        )
    if exc.status == 403:
        return Check(name, Status.FAIL, f"refused: {exc}", _grant_fix_any(permission), ExitCode.AUTH)
    return Check(name, Status.FAIL, f"Graph answered {exc}", "run doctor again; if it persists, check Graph's service health", ExitCode.STOPPED)


def _grant_fix_any(permission: str) -> str:
    return f"grant the credential {permission} (and admin consent), then run doctor again"
