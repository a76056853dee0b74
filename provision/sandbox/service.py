"""The operation service: Graph's operations over one tenant, answered as Graph answers them.

Given an authenticated principal and a parsed request (method, the path segments after the
API version, the body as received and how to read it), the service answers with a
``Reply``: status, headers, and a JSON body or an error code and message (the HTTP layer
renders errors in Graph's shape, with its request ids). Direct requests and ``$batch``
items are answered by the same two calls; nothing here knows about HTTP, throttling,
injected faults or latency, which stand between the two calls (see ``gateway``):

- ``resolve``: route (400/405), then permission (403): a ``Call`` to run, or a ``Refusal``;
- ``run``: the target user (403 when a delegated Authentication Administrator writes the
  phones of a user holding an admin role), request body (400), then the tenant's rule (its
  ``TenantError``); a write that changed the tenant is recorded in the stats, even when
  its answer is an error.

Where behaviour variants plug in: every error answer is built by ``error_reply``, every
success body by an operation (``operations``), and batch items run in the order
``batch.run_batch`` gives; the profile's ``[behaviour]`` variants reword answers after the
service gave them (``behaviour``), and the number format is the tenant's rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from provision.sandbox.auth import AUTH_METHODS_FORBIDDEN, AuthFailure, Principal, authorize, limited_to_non_admins, may_manage
from provision.sandbox.operations import OPERATIONS, Operation, Params
from provision.sandbox.routes import RouteMiss, route, unknown_segment
from provision.sandbox.stats import Stats, WriteTarget
from provision.sandbox.tenant import Tenant, TenantError

# Reads a request body as received (raw bytes, or a batch item's "body") into JSON;
# raises TenantError (400) when it can't.
BodyReader = Callable[[Any], Any]

NOT_FOUND_MESSAGE = "Resource not found for the segment or path: the sandbox serves no such route."


# Reply, Call and Refusal are built per operation on the hot path: plain (not frozen)
# slotted dataclasses, which construct about twice as fast as frozen ones.
@dataclass(slots=True)
class Reply:
    """One operation's answer before rendering (a direct response or a batch item's)."""

    status: int
    body: Any = None  # success body (JSON-able), None for no content
    error: tuple[str, str] | None = None  # (code, message)
    headers: Mapping[str, str] | None = None


def error_reply(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    """An error answer; every error the sandbox gives, from any layer, is built here."""
    return Reply(status, error=(code, message), headers=headers)


@dataclass(slots=True)
class Call:
    """An operation the caller may run, with its path parameters."""

    operation: Operation
    params: Params
    masked: bool  # phone numbers in the answer are masked for this caller
    non_admins_only: bool = False  # the caller may run it only on users holding no admin role


@dataclass(slots=True)
class Refusal:
    """A request answered without running an operation (400 unknown segment, 405, 403)."""

    operation: str  # the name stats count it under
    reply: Reply


def _canonical(body: Any) -> str:
    return "" if body is None else json.dumps(body, sort_keys=True, separators=(",", ":"))


class OperationService:
    """Runs Graph operations against ``tenant``; counts applied writes in ``stats``."""

    def __init__(self, tenant: Tenant, stats: Stats) -> None:
        self.tenant = tenant  # replaced as a whole when a snapshot is loaded
        self.stats = stats

    def resolve(self, principal: Principal, method: str, segs: Sequence[str]) -> Call | Refusal:
        """The operation a request names, if there is one and the caller may run it."""
        found = route(method, segs)
        if isinstance(found, RouteMiss):
            return Refusal(found.stats_name, _route_miss(found, method, segs))
        name, params = found
        try:
            masked = authorize(principal, name)
        except AuthFailure as failure:
            return Refusal(name, error_reply(failure.status, failure.code, failure.message))
        return Call(OPERATIONS[name], params, masked, limited_to_non_admins(principal, name))

    def run(self, call: Call, body: Any, read: BodyReader, *, answered: bool = True) -> Reply:
        """Run a resolved call. ``answered=False``: the caller will not see this answer (an
        injected timeout replaces it), so an applied write is not counted as succeeded."""
        op = call.operation
        try:
            if call.non_admins_only and not may_manage(self.tenant.user_roles(call.params[0])):
                refusal = AUTH_METHODS_FORBIDDEN
                return error_reply(refusal.status, refusal.code, refusal.message)
            data = read(body) if op.takes_body else None
            status, answer = self._apply(op, call.params, data, call.masked, answered)
        except TenantError as exc:
            return error_reply(exc.status, exc.code, exc.message)
        return Reply(status, answer)

    def _apply(self, op: Operation, params: Params, data: Any, masked: bool, answered: bool) -> tuple[int, Any]:
        """Run the rule; record the write when it changed the tenant (even if it then failed)."""
        if op.target is None:
            return op.handler(self.tenant, params, data, masked)
        subject, target = op.target(self.tenant, params, data)
        write = WriteTarget(subject, target, f"{op.name}|{_canonical(data)}")
        try:
            answer = op.handler(self.tenant, params, data, masked)
        except TenantError as exc:
            if exc.saved:
                self.stats.record_write_applied(write, succeeded=False)
            raise
        self.stats.record_write_applied(write, succeeded=answered)
        return answer


def _route_miss(miss: RouteMiss, method: str, segs: Sequence[str]) -> Reply:
    if miss.status == 405:  # evidence: G29 (405 is in Graph's table; its code is our choice)
        return error_reply(405, "BadRequest", f"The HTTP method '{method}' is not allowed here.")
    # evidence: G28 (field reports quote this 400 for an unknown segment, not a 404)
    return error_reply(400, "BadRequest", f"Resource not found for the segment '{unknown_segment(segs)}'.")


__all__ = [
    "NOT_FOUND_MESSAGE",
    "BodyReader",
    "Call",
    "OperationService",
    "Refusal",
    "Reply",
    "error_reply",
]
