"""The sandbox's own endpoints, ``/_sandbox/...``: ordinary Starlette routes, no auth.

``GET stats`` (counters), ``GET snapshot`` (the tenant's snapshot), ``GET info`` (tenant id,
profile, the tenants served), ``POST reset`` (clear counters and throttle buckets; with
``{"snapshot": {...}}`` also serve that tenant, or answer 400 and change nothing). They
serve tests, benchmarks and the CLI, never the job.

A sandbox serving several tenants (``multi``): ``?tenant=ID`` picks one for stats,
snapshot and reset (404 when not served); stats without it sum every tenant's counters
(``?per_tenant=1`` adds ``tenants: {id: stats}``); snapshot without it is a 400; reset
without it resets every tenant (with a snapshot: the tenant of the snapshot's id). A
single-tenant sandbox answers exactly as before (``?tenant`` may name its tenant).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provision.errors import ProvisionError
from provision.sandbox.multi import TenantRouter
from provision.sandbox.state import Sandbox
from provision.sandbox.tenant import TenantError
from provision.sandbox.wire import BAD_JSON_MESSAGE, error_body


def _router(request: Request) -> TenantRouter | None:
    router = getattr(request.app, "tenant_router", None)
    return router if isinstance(router, TenantRouter) else None


def _only_sandbox(request: Request) -> Sandbox:
    sandbox = request.app.sandbox
    if not isinstance(sandbox, Sandbox):
        raise TypeError(f"the app serves no Sandbox but {type(sandbox).__name__}")
    return sandbox


def _named(request: Request) -> Sandbox | Response | None:
    """The tenant ``?tenant=ID`` names (404 when not served), or None when none is named."""
    tenant_id = request.query_params.get("tenant")
    if tenant_id is None:
        return None
    router = _router(request)
    if router is not None:
        found = router.get(tenant_id)
    else:
        only = _only_sandbox(request)
        found = only if only.tenant_id.casefold() == tenant_id.casefold() else None
    if found is None:
        return _plain_error(404, "Request_ResourceNotFound", f"The sandbox serves no tenant {tenant_id!r}.")
    return found


def _one_tenant(request: Request) -> Sandbox | Response:
    """The tenant ``?tenant=ID`` names, else the only one; 400 when several are served and none named."""
    named = _named(request)
    if named is not None:
        return named
    router = _router(request)
    if router is not None and len(router.sandboxes) > 1:
        return _plain_error(400, "BadRequest", f"The sandbox serves {len(router.sandboxes)} tenants: name one with ?tenant=ID.")
    return _only_sandbox(request)


def _tenant_ids(request: Request) -> list[str]:
    router = _router(request)
    return router.tenant_ids if router is not None else [_only_sandbox(request).tenant_id]


async def _stats(request: Request) -> Response:
    named = _named(request)
    if isinstance(named, Response):
        return named
    if named is not None:
        return JSONResponse(named.stats.to_json())
    router = _router(request)
    per_tenant = request.query_params.get("per_tenant", "") in ("1", "true", "yes")
    if router is None:
        only = _only_sandbox(request)
        data = only.stats.to_json()
        if per_tenant:
            data["tenants"] = {only.tenant_id: only.stats.to_json()}
        return JSONResponse(data)
    data = router.total_stats().to_json()
    if per_tenant:
        data["tenants"] = router.per_tenant_stats()
    return JSONResponse(data)


async def _snapshot(request: Request) -> Response:
    sandbox = _one_tenant(request)
    if isinstance(sandbox, Response):
        return sandbox
    return JSONResponse(sandbox.tenant.to_snapshot())


async def _info(request: Request) -> Response:
    sandbox = _only_sandbox(request)  # the only tenant, or the first: what older clients read
    return JSONResponse(
        {"tenant_id": sandbox.tenant_id, "profile": asdict(sandbox.limits.profile), "tenants": _tenant_ids(request)}
    )


async def _reset(request: Request) -> Response:
    named = _named(request)
    if isinstance(named, Response):
        return named
    router = _router(request)
    raw = await request.body()
    snapshot = None
    if raw.strip():
        try:
            data = json.loads(raw)
        except ValueError:
            return _plain_error(400, "BadRequest", BAD_JSON_MESSAGE)
        snapshot = data.get("snapshot") if isinstance(data, dict) else None
    sandbox = named if named is not None else (_only_sandbox(request) if router is None else None)
    if snapshot is not None:
        if router is not None:
            # Several tenants: a snapshot replaces the tenant of its own id, which must be served.
            tenant_id = snapshot.get("tenant_id") if isinstance(snapshot, dict) else None
            target = router.get(tenant_id) if isinstance(tenant_id, str) else None
            if target is None or (sandbox is not None and target is not sandbox):
                return _plain_error(400, "BadRequest", "Invalid snapshot: its tenant_id is not the tenant reset here.")
            sandbox = target
        assert sandbox is not None
        try:
            sandbox.load_snapshot(snapshot)
        except (ProvisionError, TenantError, ValueError, TypeError, KeyError) as exc:
            return _plain_error(400, "BadRequest", f"Invalid snapshot: {exc}")
    if sandbox is None:
        assert router is not None
        router.reset()
        return JSONResponse({"reset": True, "tenant_id": router.first.tenant_id, "tenants": router.tenant_ids})
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
