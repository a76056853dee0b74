"""The sandbox's own endpoints, ``/_sandbox/...``: ordinary Starlette routes, no auth.

``GET stats`` (counters), ``GET snapshot`` (the tenant's snapshot), ``GET info`` (tenant id
and profile), ``POST reset`` (clear counters and throttle buckets; with ``{"snapshot":
{...}}`` also serve that tenant, or answer 400 and change nothing). They serve tests,
benchmarks and the CLI, never the job.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provision.errors import ProvisionError
from provision.sandbox.state import Sandbox
from provision.sandbox.tenant import TenantError
from provision.sandbox.wire import BAD_JSON_MESSAGE, error_body


def _sandbox_of(request: Request) -> Sandbox:
    sandbox = request.app.sandbox
    if not isinstance(sandbox, Sandbox):
        raise TypeError(f"the app serves no Sandbox but {type(sandbox).__name__}")
    return sandbox


async def _stats(request: Request) -> Response:
    return JSONResponse(_sandbox_of(request).stats.to_json())


async def _snapshot(request: Request) -> Response:
    return JSONResponse(_sandbox_of(request).tenant.to_snapshot())


async def _info(request: Request) -> Response:
    sandbox = _sandbox_of(request)
    return JSONResponse({"tenant_id": sandbox.tenant_id, "profile": asdict(sandbox.limits.profile)})


async def _reset(request: Request) -> Response:
    sandbox = _sandbox_of(request)
    raw = await request.body()
    if raw.strip():
        try:
            data = json.loads(raw)
        except ValueError:
            return _plain_error(400, "BadRequest", BAD_JSON_MESSAGE)
        snapshot = data.get("snapshot") if isinstance(data, dict) else None
        if snapshot is not None:
            try:
                sandbox.load_snapshot(snapshot)
            except (ProvisionError, TenantError, ValueError, TypeError, KeyError) as exc:
                return _plain_error(400, "BadRequest", f"Invalid snapshot: {exc}")
    sandbox.reset()
    return JSONResponse({"reset": True, "tenant_id": sandbox.tenant_id})


def _plain_error(status: int, code: str, message: str) -> Response:
    request_id = str(uuid.uuid4())
    return JSONResponse(error_body(code, message, request_id, None), status, headers={"request-id": request_id})


def admin_routes() -> list[Route]:
    """The ``/_sandbox`` routes, for the app's Starlette router."""
    return [
        Route("/_sandbox/stats", _stats, methods=["GET"]),
        Route("/_sandbox/snapshot", _snapshot, methods=["GET"]),
        Route("/_sandbox/info", _info, methods=["GET"]),
        Route("/_sandbox/reset", _reset, methods=["POST"]),
    ]


__all__ = ["admin_routes"]
