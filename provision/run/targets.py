"""Opening a job's target: the embedded sandbox, a running sandbox, or a real tenant.

Whatever the target, the job gets the same ``GraphClient``; only the base URL and the
credential differ. The embedded sandbox runs in a child process (see
``provision.sandbox.embedded``) and keeps its tenant under ``.provision/`` between runs, so
a second run of the same job shows only no-ops.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import httpx

from provision.errors import UsageError
from provision.graph.client import GraphClient
from provision.graph.clouds import cloud_target, url_target
from provision.graph.credentials import (
    TOKEN_ENV,
    CredentialConfig,
    StaticTokenCredential,
    make_credential,
    read_secret,
)
from provision.graph.pacing import Pacer
from provision.run.jobs import Job, SandboxTarget, TenantTarget
from provision.sandbox.auth import make_token

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
    if isinstance(spec, SandboxTarget):
        if spec.url:
            base_url, description = spec.url, f"sandbox at {spec.url}"
        else:
            child, root = await asyncio.to_thread(_start_embedded, spec)
            base_url = f"{root}/{spec.api_version}"
            description = f"embedded sandbox ({spec.state})"
        token = read_secret(TOKEN_ENV, os.environ) or make_token(tid=await _sandbox_tenant_id(base_url))
        credential: Any = StaticTokenCredential(token)
        graph_target = url_target(base_url)
        kind = "sandbox"
    else:
        graph_target = cloud_target(spec.cloud.value, spec.api_version)
        credential = make_credential(_credential_config(spec), device_code_prompt=device_code_prompt)
        base_url = graph_target.base_url
        description = f"Microsoft Graph {spec.cloud.value} tenant {spec.tenant_id} ({spec.api_version})"
        kind = "graph"
    client = GraphClient(graph_target, credential, pacer=pacer)
    try:
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


async def _sandbox_tenant_id(base_url: str) -> str:
    root = base_url.rsplit("/", 1)[0]
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{root}/_sandbox/info")
            response.raise_for_status()
            return str(response.json()["tenant_id"])
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise UsageError(f"no provision sandbox answers at {root}: {exc}") from None


def _credential_config(spec: TenantTarget) -> CredentialConfig:
    return CredentialConfig(
        kind=spec.credential,
        tenant_id=spec.tenant_id,
        client_id=spec.client_id,
        certificate_path=str(spec.certificate_path) if spec.certificate_path else None,
        cloud=spec.cloud,
    )


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
