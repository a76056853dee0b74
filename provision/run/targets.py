"""Opening a job's target: the embedded sandbox, a running sandbox, or a real tenant.

Whatever the target, the job gets the same ``GraphClient``; only the base URL and the
credential differ. The embedded sandbox runs in a child process (see
``provision.sandbox.embedded``) and keeps its tenant under ``.provision/`` between runs, so
a second run of the same job shows only no-ops.

A real tenant is signed in to before the target is handed out: the credential is built
(its certificate checked) and the first token fetched through the client's own auth
provider, so a refused credential (exit 4) or an unreachable login endpoint (exit 5) ends
the command here with its cause and fix, before any Graph request; later requests reuse
that token from the credential's cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, Mapping

import httpx

from provision.errors import CredentialError, RunLockedError, TargetUnreachable, UsageError
from provision.graph.client import GraphClient
from provision.graph.clouds import cloud_target, url_target
from provision.graph.credentials import (
    CERT_PASSWORD_ENV,
    SECRET_ENV,
    TOKEN_ENV,
    CredentialConfig,
    CredentialKind,
    SignInFacts,
    StaticTokenCredential,
    make_credential,
    read_secret,
    sign_in_facts,
)
from provision.graph.errors import login_unreachable, sign_in_failure
from provision.graph.pacing import Pacer
from provision.run.jobs import Job, SandboxTarget, TenantTarget
from provision.sandbox.auth import AuthFailure, decode_token, make_token

EMBEDDED_START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "sandbox" | "graph"
    description: str  # for plan.json, summary.json and the console: no secrets
    base_url: str
    client: GraphClient


@asynccontextmanager
async def open_target(
    job: Job,
    *,
    pacer: Pacer | None = None,
    device_code_prompt: Callable[[str, str, Any], None] | None = None,
) -> AsyncIterator[Target]:
    spec = job.target
    child: subprocess.Popen[str] | None = None
    facts: SignInFacts | None = None
    if isinstance(spec, SandboxTarget):
        if spec.url:
            base_url, description = spec.url, f"sandbox at {spec.url}"
            if spec.tenant_id:  # one of the tenants a multi-tenant sandbox serves
                description += f" (tenant {spec.tenant_id})"
        else:
            child, root = await asyncio.to_thread(_start_embedded, spec)
            base_url = f"{root}/{spec.api_version}"
            description = f"embedded sandbox ({spec.state})"
        token_env = spec.token_env or TOKEN_ENV
        token = read_secret(token_env, os.environ)
        if token is None:
            token = make_token(tid=spec.tenant_id or await _sandbox_tenant_id(base_url))
        elif spec.tenant_id:
            _check_token_tenant(token, token_env, spec.tenant_id)
        credential: Any = StaticTokenCredential(token)
        graph_target = url_target(base_url)
        kind = "sandbox"
    else:
        graph_target = cloud_target(spec.cloud.value, spec.api_version)
        config, env = _credential_config(spec), _credential_env(spec)
        credential = make_credential(config, env=env, device_code_prompt=device_code_prompt)
        facts = sign_in_facts(config, env=env)
        base_url = graph_target.base_url
        description = f"Microsoft Graph {spec.cloud.value} tenant {spec.tenant_id} ({spec.api_version})"
        kind = "graph"
    client = GraphClient(graph_target, credential, pacer=pacer)
    try:
        if facts is not None:
            await _sign_in(client, facts)
        yield Target(kind=kind, description=description, base_url=base_url, client=client)
    finally:
        await client.close()
        close = getattr(credential, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result
        if child is not None:
            await asyncio.to_thread(_stop_embedded, child)


async def _sign_in(client: GraphClient, facts: SignInFacts) -> None:
    """Fetch the run's first token the way every request will (the client's auth provider,
    same scope, same options), so a failure is named here and the token is cached.

    Bounded like any request (``client.timeout_s``): azure-identity's own timeouts would let
    a firewall that drops packets hold a 2 a.m. run for many minutes. A device-code sign-in
    waits for a person instead, so it is not bounded.
    """
    provider = client.auth_provider.access_token_provider
    bound = None if facts.kind is CredentialKind.DEVICE_CODE else client.timeout_s
    try:
        with _library_warnings_hushed():
            async with asyncio.timeout(bound):
                await provider.get_authorization_token(f"{client.target.base_url}/users")
    except TimeoutError:
        if bound is None:
            raise
        raise login_unreachable(facts, f"no answer within {bound:g} s") from None
    except Exception as exc:
        error = sign_in_failure(exc, facts)
        if error is None:
            raise
        raise error from exc


@contextmanager
def _library_warnings_hushed() -> Iterator[None]:
    """azure-identity logs a failed get_token as a warning of its own; the one error line
    that follows names the same failure with its fix, so the warning would only say it twice."""
    identity = logging.getLogger("azure.identity")
    level = identity.level
    identity.setLevel(logging.ERROR)
    try:
        yield
    finally:
        identity.setLevel(level)


async def _sandbox_tenant_id(base_url: str) -> str:
    root = base_url.rsplit("/", 1)[0]
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{root}/_sandbox/info")
            response.raise_for_status()
            info = response.json()
            tenant, served = str(info["tenant_id"]), info.get("tenants") or [info["tenant_id"]]
    except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
        raise TargetUnreachable(f"no provision sandbox answers at {root}: {exc}") from None
    if len(served) > 1:  # guessing the first would write into a tenant nobody named
        raise UsageError(
            f"the sandbox at {root} serves {len(served)} tenants: name one with target.tenant_id "
            f"(e.g. tenant_id = \"{served[0]}\")"
        )
    return tenant


def _check_token_tenant(token: str, token_env: str, tenant_id: str) -> None:
    """A token for another tenant of the same sandbox would be admitted and act there: refuse it."""
    try:
        tid = decode_token(token).tenant_id
    except AuthFailure:  # not a JWT: the sandbox refuses it with its own 401 (exit 4)
        return
    if tid != tenant_id.strip().casefold():
        raise CredentialError(
            f"the token in {token_env} is for tenant {tid}, not this job's target.tenant_id {tenant_id}: "
            f"set {token_env} to a token for {tenant_id}"
        )


def _credential_config(spec: TenantTarget) -> CredentialConfig:
    return CredentialConfig(
        kind=spec.credential,
        tenant_id=spec.tenant_id,
        client_id=spec.client_id,
        certificate_path=str(spec.certificate_path) if spec.certificate_path else None,
        cloud=spec.cloud,
    )


def _credential_env(spec: TenantTarget) -> Mapping[str, str]:
    """The environment the credential reads its secret from: ``target.secret_env`` (a fleet
    tenant's own secret) stands in for the client secret and certificate password."""
    if spec.secret_env is None:
        return os.environ
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_NAMES}
    value = read_secret(spec.secret_env, os.environ)
    if value:
        env[SECRET_ENV] = env[CERT_PASSWORD_ENV] = value
    return env


_SECRET_NAMES = frozenset({SECRET_ENV, CERT_PASSWORD_ENV, f"{SECRET_ENV}_FILE", f"{CERT_PASSWORD_ENV}_FILE"})


def _start_embedded(spec: SandboxTarget) -> tuple[subprocess.Popen[str], str]:
    state = spec.state if spec.state.is_absolute() else Path.cwd() / spec.state
    cmd = [sys.executable, "-m", "provision.sandbox.embedded", "--state", str(state), "--profile", spec.profile]
    if spec.snapshot is not None:
        if not spec.snapshot.exists():
            raise UsageError(f"target.snapshot: no such file {spec.snapshot}")
        cmd += ["--seed", str(spec.snapshot)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        err = child.stderr.read() if child.stderr else ""
        child.wait(5)
        if child.returncode == 3:  # embedded.py: another process holds this state file
            raise RunLockedError(f"another provision run is using the embedded sandbox state {state}; wait for it or stop it")
        raise UsageError(f"the embedded sandbox did not start: {err.strip().splitlines()[-1] if err.strip() else 'no output'}")
    return child, json.loads(line)["url"]


def _stop_embedded(child: subprocess.Popen[str]) -> None:
    child.terminate()  # SIGTERM: uvicorn shuts down, then the child saves the tenant
    try:
        child.wait(30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(5)
    if child.returncode not in (0, -15):
        err = child.stderr.read() if child.stderr else ""
        raise UsageError(f"the embedded sandbox failed on shutdown (exit {child.returncode}): {err.strip()[-500:]}")
