"""The sandbox's HTTP surface: a Starlette app speaking Microsoft Graph's wire protocol.

``create_app()`` builds the app around a ``Tenant`` (the pure rules) and a profile
(throttling, latency, faults). Graph traffic (``/v1.0/...``, ``/beta/...``) takes a lean
raw-ASGI path: one operation executor serves direct requests and ``$batch`` items alike,
so both see the same authorization, throttling, faults, rules and statistics.
``/_sandbox/...`` (stats, reset, snapshot) are ordinary Starlette routes without auth.

Per operation, in order: route (404/405) -> permission (403) -> throttle (429) ->
injected 503/504 -> request body (400) -> tenant rule (its TenantError) -> stats.
Per HTTP request: token (401), injected connection reset, then latency (for a batch, the
slowest item's, since Graph runs batch items in parallel).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import unquote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from provision.errors import ProvisionError
from provision.model import METHOD_IDS, PhoneType
from provision.sandbox.auth import (
    Authenticator,
    AuthFailure,
    Principal,
    authorize,
    make_token,
)
from provision.sandbox.batch import BatchError, BatchItem, parse_batch, run_batch
from provision.sandbox.limits import (
    Limits,
    OperationKind,
    Profile,
    ResetPoint,
    load_profile,
)
from provision.sandbox.stats import Stats, WriteTarget
from provision.sandbox.tenant import Tenant, TenantError

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

API_VERSIONS = frozenset({"v1.0", "beta"})
PHONE_ODATA_TYPE = "#microsoft.graph.phoneAuthenticationMethod"
_JSON = "application/json"


@dataclass(slots=True)
class OpResult:
    """One operation's answer before rendering (direct response or batch item)."""

    status: int
    body: Any = None  # success body (JSON-able), None for no content
    error: tuple[str, str] | None = None  # (code, message)
    headers: dict[str, str] | None = None
    latency: float = 0.0


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> OpResult:
    return OpResult(status, error=(code, message), headers=headers)


def error_body(code: str, message: str, request_id: str, client_request_id: str | None) -> dict[str, Any]:
    """Graph's error shape."""
    inner: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    return {"error": {"code": code, "message": message, "innerError": inner}}


def _canonical(body: Any) -> str:
    return "" if body is None else json.dumps(body, sort_keys=True, separators=(",", ":"))


# --- operations ------------------------------------------------------------------------------

Handler = Callable[["Sandbox", tuple[str, ...], Any, bool], tuple[int, Any]]
Targeter = Callable[["Sandbox", tuple[str, ...], Any], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    kind: OperationKind
    handler: Handler
    takes_body: bool = False
    target: Targeter | None = None  # writes: (subject, target) for duplicate detection


def _with_type(phone: dict[str, Any]) -> dict[str, Any]:
    if "@odata.type" in phone:
        return phone
    return {"@odata.type": PHONE_ODATA_TYPE, **phone}


def _body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TenantError(400, "BadRequest", "The request body must be a JSON object.")
    return body


def _list_phones(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    return 200, {"value": [_with_type(x) for x in sb.tenant.list_phones(p[0], masked=masked)]}


def _get_phone(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    return 200, _with_type(sb.tenant.get_phone(p[0], p[1], masked=masked))


def _create_phone(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    data = _body_object(body)
    return 201, _with_type(sb.tenant.create_phone(p[0], data.get("phoneNumber"), data.get("phoneType")))


def _update_phone(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    data = _body_object(body)
    sb.tenant.update_phone(p[0], p[1], data.get("phoneNumber"), data.get("phoneType"))
    return 204, None


def _delete_phone(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    sb.tenant.delete_phone(p[0], p[1])
    return 204, None


def _enable_sms(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    sb.tenant.enable_sms_sign_in(p[0], p[1])
    return 204, None


def _disable_sms(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    sb.tenant.disable_sms_sign_in(p[0], p[1])
    return 204, None


def _get_policy(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    return 200, sb.tenant.get_sms_policy()


def _update_policy(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    sb.tenant.update_sms_policy(_body_object(body))
    return 204, None


def _create_user(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    data = _body_object(body)
    enabled = data.get("accountEnabled", True)
    return 201, sb.tenant.create_user(data.get("userPrincipalName"), data.get("displayName"), enabled)


def _get_user(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    return 200, sb.tenant.get_user(p[0])


def _delete_user(sb: Sandbox, p: tuple[str, ...], body: Any, masked: bool) -> tuple[int, Any]:
    sb.tenant.delete_user(p[0])
    return 204, None


def _user_subject(sb: Sandbox, ref: str) -> str:
    try:
        return str(sb.tenant.get_user(ref)["id"]).casefold()
    except TenantError:
        return ref.casefold()


def _phone_target(sb: Sandbox, p: tuple[str, ...], body: Any) -> tuple[str, str]:
    return _user_subject(sb, p[0]), p[1].casefold()


def _new_phone_target(sb: Sandbox, p: tuple[str, ...], body: Any) -> tuple[str, str]:
    phone_type = body.get("phoneType") if isinstance(body, dict) else None
    try:
        method_id = METHOD_IDS[PhoneType(phone_type)]
    except ValueError:
        method_id = str(phone_type)
    return _user_subject(sb, p[0]), method_id


def _new_user_target(sb: Sandbox, p: tuple[str, ...], body: Any) -> tuple[str, str]:
    upn = body.get("userPrincipalName") if isinstance(body, dict) else None
    return "users", str(upn).casefold()


def _user_target(sb: Sandbox, p: tuple[str, ...], body: Any) -> tuple[str, str]:
    return _user_subject(sb, p[0]), "user"


def _policy_target(sb: Sandbox, p: tuple[str, ...], body: Any) -> tuple[str, str]:
    return "policy", "sms"


R, W = OperationKind.READ, OperationKind.WRITE
ROUTES: Mapping[str, Mapping[str, Operation]] = {
    "phoneMethods": {
        "GET": Operation("listPhoneMethods", R, _list_phones),
        "POST": Operation("createPhoneMethod", W, _create_phone, True, _new_phone_target),
    },
    "phoneMethod": {
        "GET": Operation("getPhoneMethod", R, _get_phone),
        "PATCH": Operation("updatePhoneMethod", W, _update_phone, True, _phone_target),
        "DELETE": Operation("deletePhoneMethod", W, _delete_phone, False, _phone_target),
    },
    "enableSmsSignIn": {"POST": Operation("enableSmsSignIn", W, _enable_sms, False, _phone_target)},
    "disableSmsSignIn": {"POST": Operation("disableSmsSignIn", W, _disable_sms, False, _phone_target)},
    "smsPolicy": {
        "GET": Operation("getSmsPolicy", R, _get_policy),
        "PATCH": Operation("updateSmsPolicy", W, _update_policy, True, _policy_target),
    },
    "users": {"POST": Operation("createUser", W, _create_user, True, _new_user_target)},
    "user": {
        "GET": Operation("getUser", R, _get_user),
        "DELETE": Operation("deleteUser", W, _delete_user, False, _user_target),
    },
}
_SMS_POLICY_PATH = ("policies", "authenticationmethodspolicy", "authenticationmethodconfigurations", "sms")
_ACTIONS = {"enablesmssignin": "enableSmsSignIn", "disablesmssignin": "disableSmsSignIn"}


def match_route(segs: list[str]) -> tuple[str, tuple[str, ...]] | None:
    """(route name, parameters) for the path segments after the API version, or None."""
    n = len(segs)
    if n == 0:
        return None
    head = segs[0].casefold()
    if head == "users":
        if n == 1:
            return "users", ()
        if n == 2:
            return "user", (segs[1],)
        if n >= 4 and segs[2].casefold() == "authentication" and segs[3].casefold() == "phonemethods":
            if n == 4:
                return "phoneMethods", (segs[1],)
            if n == 5:
                return "phoneMethod", (segs[1], segs[4])
            if n == 6:
                action = _ACTIONS.get(segs[5].casefold().removeprefix("microsoft.graph."))
                if action:
                    return action, (segs[1], segs[4])
        return None
    if head == "$batch" and n == 1:
        return "$batch", ()
    if n == 4 and tuple(s.casefold() for s in segs) == _SMS_POLICY_PATH:
        return "smsPolicy", ()
    return None


def split_path(path: str) -> list[str]:
    """Percent-decoded path segments; empty segments (``//``) are dropped."""
    return [unquote(s) if "%" in s else s for s in path.split("/") if s]


def _decode_item_body(body: Any) -> Any:
    """A batch item's body: JSON as an object, or a string holding JSON or base64 JSON."""
    if not isinstance(body, str):
        return body
    try:
        return json.loads(body)
    except ValueError:
        pass
    try:
        return json.loads(base64.b64decode(body, validate=True))
    except (ValueError, binascii.Error):
        raise TenantError(400, "BadRequest", "Unable to read the batch request body as JSON.") from None


_BAD_JSON = "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."
_NOT_FOUND_MESSAGE = "Resource not found for the segment or path: the sandbox serves no such route."


# --- the sandbox -----------------------------------------------------------------------------


class Sandbox:
    """The running sandbox: tenant, limits, auth, stats; executes Graph operations."""

    def __init__(
        self,
        tenant: Tenant,
        limits: Limits,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Clock = time.time,
    ) -> None:
        self.tenant = tenant
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.stats = Stats()
        self.auth = Authenticator(_tenant_id(tenant), wall_clock=wall_clock)

    @property
    def tenant_id(self) -> str:
        return _tenant_id(self.tenant)

    def token(self, **claims: Any) -> str:
        """A token for this sandbox's tenant (``make_token`` arguments; default: the app token)."""
        return make_token(tid=self.tenant_id, **claims)

    # state -----------------------------------------------------------------------------
    def load_snapshot(self, data: Mapping[str, Any]) -> None:
        self.tenant = Tenant.from_snapshot(dict(data), clock=self.clock, replication_lag_s=self.limits.replication_lag_s)
        self.auth = Authenticator(_tenant_id(self.tenant), wall_clock=self.wall_clock)

    def reset(self) -> None:
        self.stats.reset()
        self.limits.throttler.reset()

    # operations ------------------------------------------------------------------------
    def execute(
        self, principal: Principal, method: str, segs: list[str], body: Any, *, body_is_raw: bool
    ) -> OpResult:
        """Run one Graph operation (a direct request or a batch item) and record it."""
        matched = match_route(segs)
        if matched is None or matched[0] == "$batch":
            return self._record("unknownRoute", _error(404, "UnknownError", _NOT_FOUND_MESSAGE))
        route, params = matched
        operation = ROUTES[route].get(method)
        if operation is None:
            return self._record(route, _error(405, "BadRequest", f"The HTTP method '{method}' is not allowed here."))
        return self._record(operation.name, self._run(operation, principal, params, body, body_is_raw))

    def _run(self, op: Operation, principal: Principal, params: tuple[str, ...], body: Any, raw: bool) -> OpResult:
        try:
            masked = authorize(principal, op.name)
        except AuthFailure as failure:
            return _error(failure.status, failure.code, failure.message)
        limits = self.limits
        throttled = limits.throttler.admit(principal.app_id, principal.tenant_id, op.kind)
        if throttled is not None:
            return _error(
                429,
                "TooManyRequests",
                "Please retry again later.",
                {
                    "Retry-After": str(throttled.retry_after),
                    "x-ms-throttle-scope": throttled.scope,
                    "x-ms-throttle-information": throttled.information,
                },
            )
        fault = limits.faults.operation_fault()
        latency = limits.latency.sample(op.kind)
        if fault is not None:
            result = self._fault(op, params, body, raw, masked, fault.status, fault.applied)
        else:
            try:
                status, answer = self._apply(op, params, self._body(op, body, raw), masked)
                result = OpResult(status, answer)
            except TenantError as exc:
                result = _error(exc.status, exc.code, exc.message)
        result.latency = latency
        return result

    def _fault(
        self, op: Operation, params: tuple[str, ...], body: Any, raw: bool, masked: bool, status: int, applied: bool
    ) -> OpResult:
        """An injected 503 (nothing done) or 504 (done or not: the answer is lost either way)."""
        self.stats.faults_injected += 1
        if status == 503:
            return _error(503, "serviceNotAvailable", "The service is temporarily unavailable. Please retry.")
        if applied:
            try:
                self._apply(op, params, self._body(op, body, raw), masked, answered=False)
            except TenantError:
                pass  # the rule refused it; the caller still only sees the timeout
        return _error(504, "GatewayTimeout", "The gateway timed out waiting for the service.")

    def _body(self, op: Operation, body: Any, raw: bool) -> Any:
        if not op.takes_body:
            return None
        if not raw:
            return _decode_item_body(body)
        try:
            return json.loads(body)
        except ValueError:
            raise TenantError(400, "BadRequest", _BAD_JSON) from None

    def _apply(
        self, op: Operation, params: tuple[str, ...], data: Any, masked: bool, *, answered: bool = True
    ) -> tuple[int, Any]:
        """Run the rule; record the write when it changed the tenant (even if it then failed,
        or, ``answered=False``, its answer is replaced by an injected fault)."""
        if op.target is None:
            return op.handler(self, params, data, masked)
        subject, target = op.target(self, params, data)
        write = WriteTarget(subject, target, f"{op.name}|{_canonical(data)}")
        try:
            answer = op.handler(self, params, data, masked)
        except TenantError as exc:
            if exc.saved:
                self.stats.record_write_applied(write, succeeded=False)
            raise
        self.stats.record_write_applied(write, succeeded=answered)
        return answer

    def _record(self, operation: str, result: OpResult) -> OpResult:
        self.stats.record_operation(operation, result.status, result.error[0] if result.error else None)
        return result

    def failed_dependency(self, item: BatchItem) -> OpResult:
        matched = match_route(split_path(item.path))
        operation = ROUTES.get(matched[0], {}).get(item.method) if matched else None
        name = operation.name if operation else "unknownRoute"
        return self._record(name, _error(424, "FailedDependency", "The request depends on a request that failed."))

    # HTTP ------------------------------------------------------------------------------
    def serve(self, method: str, segs: list[str], body: bytes, authorization: str | None, crid: str | None) -> tuple[OpResult, Any]:
        """Answer one HTTP request to a Graph path; returns the result and, for $batch,
        the rendered envelope body."""
        if not segs or segs[0] not in API_VERSIONS:
            return self._record("unknownRoute", _error(404, "UnknownError", _NOT_FOUND_MESSAGE)), None
        try:
            principal = self.auth.authenticate(authorization)
        except AuthFailure as failure:
            return self._record("unauthenticated", _error(failure.status, failure.code, failure.message)), None
        rest = segs[1:]
        if len(rest) == 1 and rest[0].casefold() == "$batch":
            if method != "POST":
                return self._record("unknownRoute", _error(405, "BadRequest", "$batch accepts POST only.")), None
            return self._batch(principal, body, crid)
        return self.execute(principal, method, rest, body, body_is_raw=True), None

    def _batch(self, principal: Principal, body: bytes, crid: str | None) -> tuple[OpResult, Any]:
        try:
            items = parse_batch(json.loads(body))
        except ValueError:
            return _error(400, "BadRequest", _BAD_JSON), None
        except BatchError as exc:
            return _error(400, "BadRequest", str(exc)), None
        self.stats.batches += 1

        def run(item: BatchItem) -> OpResult:
            return self.execute(principal, item.method, split_path(item.path), item.body, body_is_raw=False)

        outcomes = run_batch(items, run, self.failed_dependency, lambda r: r.status)
        responses = []
        latency = 0.0
        for outcome in outcomes:
            result = outcome.result
            latency = max(latency, result.latency)
            request_id = str(uuid.uuid4())
            item_crid = outcome.item.headers.get("client-request-id") or crid
            headers = {"request-id": request_id, "client-request-id": item_crid or request_id}
            if result.headers:
                headers.update(result.headers)
            entry: dict[str, Any] = {"id": outcome.item.id, "status": result.status, "headers": headers}
            if result.error is not None:
                headers["Content-Type"] = _JSON
                entry["body"] = error_body(result.error[0], result.error[1], request_id, item_crid)
            elif result.body is not None:
                headers["Content-Type"] = _JSON
                entry["body"] = result.body
            responses.append(entry)
        return OpResult(200, latency=latency), {"responses": responses}


def _tenant_id(tenant: Tenant) -> str:
    return str(tenant.tenant_id)


# --- ASGI ------------------------------------------------------------------------------------


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while message.get("more_body", False):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


def _render(result: OpResult, envelope: Any, request_id: str, crid: str | None) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    headers = [(b"request-id", request_id.encode()), (b"client-request-id", (crid or request_id).encode("latin-1"))]
    if result.headers:
        headers.extend((k.lower().encode(), v.encode("latin-1")) for k, v in result.headers.items())
    if result.error is not None:
        payload: Any = error_body(result.error[0], result.error[1], request_id, crid)
    else:
        payload = envelope if envelope is not None else result.body
    if payload is None:
        headers.append((b"content-length", b"0"))
        return b"", headers
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    return body, headers


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


class SandboxApp(Starlette):
    """Starlette app whose Graph paths bypass routing and middleware (the hot path)."""

    sandbox: Sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await super().__call__(scope, receive, send)
            return
        await self._graph(scope, receive, send)

    async def _graph(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox = self.sandbox
        sandbox.stats.http_requests += 1
        authorization = crid = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"client-request-id":
                crid = value.decode("latin-1")
        body = await _read_body(receive)
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        segs = split_path(raw_path.split(b"?", 1)[0].decode("latin-1"))
        faults = sandbox.limits.faults
        reset = faults.connection_reset() if faults.active else None
        if reset is ResetPoint.BEFORE:
            sandbox.stats.connection_resets += 1
            await _drop_connection(send)
            return
        result, envelope = sandbox.serve(scope["method"], segs, body, authorization, crid)
        if reset is ResetPoint.AFTER:
            sandbox.stats.connection_resets += 1
            await _drop_connection(send)
            return
        if result.latency > 0:
            await sandbox.sleep(result.latency)
        payload, headers = _render(result, envelope, str(uuid.uuid4()), crid)
        await send({"type": "http.response.start", "status": result.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


# --- /_sandbox endpoints ---------------------------------------------------------------------


def _sandbox_of(request: Request) -> Sandbox:
    return request.app.sandbox  # type: ignore[no-any-return]


async def _stats(request: Request) -> Response:
    return JSONResponse(_sandbox_of(request).stats.to_json())


async def _snapshot(request: Request) -> Response:
    return JSONResponse(_sandbox_of(request).tenant.to_snapshot())


async def _info(request: Request) -> Response:
    sandbox = _sandbox_of(request)
    return JSONResponse({"tenant_id": _tenant_id(sandbox.tenant), "profile": asdict(sandbox.limits.profile)})


async def _reset(request: Request) -> Response:
    sandbox = _sandbox_of(request)
    raw = await request.body()
    if raw.strip():
        try:
            data = json.loads(raw)
        except ValueError:
            return _plain_error(400, "BadRequest", _BAD_JSON)
        snapshot = data.get("snapshot") if isinstance(data, dict) else None
        if snapshot is not None:
            try:
                sandbox.load_snapshot(snapshot)
            except (ProvisionError, TenantError, ValueError, TypeError, KeyError) as exc:
                return _plain_error(400, "BadRequest", f"Invalid snapshot: {exc}")
    sandbox.reset()
    return JSONResponse({"reset": True, "tenant_id": _tenant_id(sandbox.tenant)})


def _plain_error(status: int, code: str, message: str) -> Response:
    request_id = str(uuid.uuid4())
    return JSONResponse(error_body(code, message, request_id, None), status, headers={"request-id": request_id})


def build_sandbox(
    tenant: Tenant | None = None,
    *,
    profile: Profile | str | Path = "unlimited",
    snapshot: Mapping[str, Any] | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    seed: int = 0,
    wall_clock: Clock = time.time,
) -> Sandbox:
    """The sandbox state an app serves (see ``create_app`` for the parameters)."""
    resolved = profile if isinstance(profile, Profile) else load_profile(profile)
    limits = Limits(resolved, clock=clock, rng=rng if rng is not None else random.Random(seed))
    if tenant is None:
        lag = limits.replication_lag_s
        tenant = (
            Tenant.from_snapshot(dict(snapshot), clock=clock, replication_lag_s=lag)
            if snapshot is not None
            else Tenant(clock=clock, replication_lag_s=lag)
        )
    return Sandbox(tenant, limits, clock=clock, sleep=sleep, wall_clock=wall_clock)


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
    ``build_sandbox``) swaps it between requests.
    """
    sandbox = build_sandbox(
        tenant, profile=profile, snapshot=snapshot, clock=clock, sleep=sleep, rng=rng, seed=seed, wall_clock=wall_clock
    )
    app = SandboxApp(
        routes=[
            Route("/_sandbox/stats", _stats, methods=["GET"]),
            Route("/_sandbox/snapshot", _snapshot, methods=["GET"]),
            Route("/_sandbox/info", _info, methods=["GET"]),
            Route("/_sandbox/reset", _reset, methods=["POST"]),
        ]
    )
    app.sandbox = sandbox
    return app


__all__ = [
    "API_VERSIONS",
    "OpResult",
    "Operation",
    "Sandbox",
    "SandboxApp",
    "build_sandbox",
    "create_app",
    "error_body",
    "match_route",
]
