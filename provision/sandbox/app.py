"""The sandbox's HTTP surface: a Starlette app speaking Microsoft Graph's wire protocol.

``create_app()`` builds the app around a ``Sandbox`` (see ``state``): a tenant, a profile
(throttling, latency, faults), counters. This module is the thin ASGI layer. Graph traffic
(``/v1.0/...``, ``/beta/...``) takes a lean raw-ASGI path: read the request, answer it,
encode the answer. Each operation, a direct request or a ``$batch`` item alike, goes
through the same gateway to the same operation service, so both see the same
authorization, throttling, faults, rules and statistics. ``/_sandbox/...`` (stats, reset,
snapshot, info) are ordinary Starlette routes without auth (see ``admin``).

``create_multi_app()`` serves several tenants from one app: ``app.tenant_router`` picks,
per request, the ``Sandbox`` of the tenant the token's ``tid`` names (see ``multi``), and
everything after that is the single-tenant path unchanged.

Per HTTP request: an outage (the profile's ``silent_after_writes``/``gone_after_writes``:
never answered, or refused), API version (404), token (401), the injected connection reset,
then the operation(s) (see ``gateway`` for the order of checks per operation), then, for a
``$batch``, the injected whole-batch 500/502 (after its items ran), then latency (for a
batch, the slowest item's, since Graph runs batch items in parallel).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

import httpx
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from provision.sandbox.admin import admin_routes
from provision.sandbox.auth import AuthFailure, Principal
from provision.sandbox.batch import BatchError, BatchItem, parse_batch, run_batch
from provision.sandbox.gateway import Answer
from provision.sandbox.limits import Outage, Profile, ResetPoint, load_profile
from provision.sandbox.multi import TenantRouter, build_router
from provision.sandbox.routes import API_VERSIONS, UNKNOWN_ROUTE, is_batch, split_path
from provision.sandbox.service import NOT_FOUND_MESSAGE, Reply, error_reply
from provision.sandbox.state import Clock, Sandbox, Sleep, build_sandbox
from provision.sandbox.tenant import Tenant
from provision.sandbox.wire import (
    BAD_JSON_MESSAGE,
    batch_response,
    encode_response,
    read_item_body,
    read_request_body,
)


def answer_request(
    sandbox: Sandbox, method: str, segs: list[str], body: bytes, authorization: str | None, crid: str | None
) -> Answer:
    """Answer one HTTP request to a Graph path (``segs``: its path segments, version first)."""
    gateway = sandbox.gateway
    if not segs or segs[0] not in API_VERSIONS:  # evidence: G28 (an unknown API version stays 404 UnknownError)
        return gateway.record(UNKNOWN_ROUTE, error_reply(404, "UnknownError", NOT_FOUND_MESSAGE))
    try:
        principal = sandbox.auth.authenticate(authorization)
    except AuthFailure as failure:
        return gateway.record("unauthenticated", error_reply(failure.status, failure.code, failure.message))
    rest = segs[1:]
    if is_batch(rest):
        if method != "POST":
            return gateway.record(UNKNOWN_ROUTE, error_reply(405, "BadRequest", "$batch accepts POST only."))
        return _answer_batch(sandbox, principal, body, crid)
    return gateway.handle(principal, method, rest, body, read_request_body)


def _answer_batch(sandbox: Sandbox, principal: Principal, body: bytes, crid: str | None) -> Answer:
    """A ``$batch`` envelope: its items answered by the gateway, in dependency order (the
    profile's ``batch_order`` says whether in request order or shuffled).

    A bad envelope is a 400 for the whole batch, counted as no operation.
    """
    try:
        items = parse_batch(json.loads(body))
    except ValueError:
        return error_reply(400, "BadRequest", BAD_JSON_MESSAGE), 0.0
    except BatchError as exc:
        return error_reply(400, "BadRequest", str(exc)), 0.0
    sandbox.stats.batches += 1
    gateway = sandbox.gateway

    # evidence: G41 (each item passes the same throttle as a direct request; 429s inside a 200 envelope)
    def run(item: BatchItem) -> Answer:
        return gateway.handle(principal, item.method, split_path(item.path), item.body, read_item_body)

    def failed_dependency(item: BatchItem) -> Answer:
        return gateway.failed_dependency(item.method, split_path(item.path))

    outcomes = run_batch(items, run, failed_dependency, lambda answer: answer[0].status, sandbox.behaviour.batch_rng)
    latency = max((outcome.result[1] for outcome in outcomes), default=0.0)
    envelope_fault = sandbox.limits.faults.batch_fault()
    if envelope_fault is not None:  # every item ran; the client learns nothing of them
        sandbox.stats.faults_injected += 1
        if envelope_fault == 500:
            return error_reply(500, "InternalServerError", "An internal server error occurred."), latency
        return error_reply(502, "BadGateway", "The gateway received an invalid response."), latency
    responses = []
    for outcome in outcomes:
        reply, _ = outcome.result
        item_crid = outcome.item.headers.get("client-request-id") or crid
        responses.append(batch_response(outcome.item.id, reply, item_crid))
    return Reply(200, {"responses": responses}), latency


# --- ASGI ------------------------------------------------------------------------------------


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while message.get("more_body", False):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


async def _drop_connection(send: Send) -> None:
    """Close the connection without an answer, as a connection reset does.

    Under uvicorn the ASGI ``send`` is bound to the request cycle that owns the transport;
    aborting it leaves the client with a dropped connection. In process (httpx's
    ASGITransport) the same outcome is the error httpx raises for a dropped connection.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
    transport.abort()
    for _ in range(3):  # let the server notice the disconnect so it doesn't answer 500
        await asyncio.sleep(0)


async def _refuse_connection(send: Send) -> None:
    """A refused connection: in process, the error httpx raises for one; over HTTP the
    connection (already accepted by the server) is dropped before the request is read."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise httpx.ConnectError("[Errno 111] Connection refused")
    transport.abort()
    for _ in range(3):
        await asyncio.sleep(0)


async def _never_answer(receive: Receive) -> None:
    """Hold the request unanswered until the client goes away (in process: until the
    client's task is cancelled, as its timeout does)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class SandboxApp(Starlette):
    """Starlette app whose Graph paths bypass routing and middleware (the hot path)."""

    sandbox: Sandbox  # the only tenant's; with a router, the first tenant's (admin answers, old clients)
    tenant_router: TenantRouter | None = None  # several tenants: the sandbox answering is the token's tenant's

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await super().__call__(scope, receive, send)
            return
        await self._graph(scope, receive, send)

    async def _graph(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = crid = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"client-request-id":
                crid = value.decode("latin-1")
        router = self.tenant_router
        sandbox = self.sandbox if router is None else router.select(authorization)
        outage = sandbox.limits.faults.outage
        if outage is Outage.GONE:
            await _refuse_connection(send)
            return
        sandbox.stats.http_requests += 1
        body = await _read_body(receive)
        if outage is Outage.SILENT:
            await _never_answer(receive)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        segs = split_path(raw_path.split(b"?", 1)[0].decode("latin-1"))
        faults = sandbox.limits.faults
        reset = faults.connection_reset() if faults.active else None
        if reset is ResetPoint.BEFORE:
            sandbox.stats.connection_resets += 1
            await _drop_connection(send)
            return
        reply, latency = answer_request(sandbox, scope["method"], segs, body, authorization, crid)
        if reset is ResetPoint.AFTER:
            sandbox.stats.connection_resets += 1
            await _drop_connection(send)
            return
        if latency > 0:
            await sandbox.sleep(latency)
        payload, headers = encode_response(reply, str(uuid.uuid4()), crid)
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def create_app(
    tenant: Tenant | None = None,
    *,
    profile: Profile | str | Path = "unlimited",
    snapshot: Mapping[str, Any] | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    seed: int = 0,
    wall_clock: Clock = time.time,
) -> SandboxApp:
    """Build the sandbox app.

    ``tenant``: the state to serve (default: ``snapshot`` loaded, else an empty tenant).
    ``profile``: a Profile, a shipped profile name or a TOML path. ``clock`` drives
    throttling and replication lag (pass the tenant's clock when passing a tenant),
    ``sleep`` the latency, ``rng`` (or ``seed``) latency jitter and faults, ``wall_clock``
    token expiry. ``app.sandbox`` holds the state; assigning a new ``Sandbox`` (see
    ``state.build_sandbox``) swaps it between requests.
    """
    sandbox = build_sandbox(
        tenant, profile=profile, snapshot=snapshot, clock=clock, sleep=sleep, rng=rng, seed=seed, wall_clock=wall_clock
    )
    app = SandboxApp(routes=admin_routes())
    app.sandbox = sandbox
    return app


def create_multi_app(
    tenants: Sequence[Tenant],
    *,
    profile: Profile | str | Path = "unlimited",
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    seed: int = 0,
    wall_clock: Clock = time.time,
) -> SandboxApp:
    """Build a sandbox app serving several tenants, each chosen by the token's ``tid``.

    Each tenant gets its own limits from ``profile`` (its own throttle budget per app, its
    own faults, an rng seeded from ``seed`` and its id) and its own stats (see ``multi``).
    ``app.tenant_router`` holds them; ``app.sandbox`` is the first tenant's.
    """
    resolved = profile if isinstance(profile, Profile) else load_profile(profile)
    router = build_router(tenants, profile=resolved, clock=clock, sleep=sleep, seed=seed, wall_clock=wall_clock)
    app = SandboxApp(routes=admin_routes())
    app.sandbox = router.first
    app.tenant_router = router
    return app


__all__ = ["SandboxApp", "answer_request", "create_app", "create_multi_app"]
