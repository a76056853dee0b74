"""The path every Graph operation takes, direct or batched: Graph's gateway in front of the service.

Per operation, in order: route (400/405) -> permission (403) -> throttle (429) -> injected
503/504 -> request body (400) -> tenant rule (its TenantError) -> stats. The service does
the route, permission, body and rule steps; this module stands between them with the
profile's limits (token buckets, injected faults, sampled latency) and counts every answer.
A direct request and each ``$batch`` item go through ``handle`` alike. Each write operation
past throttling is also counted for the profile's outages (``FaultInjector.wrote``). The
profile's ``[behaviour]`` variants (``behaviour``) word the answers last: Retry-After's
format, opaque error texts, list order.
"""

from __future__ import annotations

from typing import Any, Sequence

from provision.sandbox.auth import Principal
from provision.sandbox.behaviour import Behaviour
from provision.sandbox.limits import Fault, Limits, OperationKind, RetryAfterFormat, Throttled
from provision.sandbox.routes import UNKNOWN_ROUTE, RouteMiss, route
from provision.sandbox.service import BodyReader, Call, OperationService, Refusal, Reply, error_reply
from provision.sandbox.stats import Stats

# An operation's reply and the seconds of service time it takes (slept by the HTTP layer).
# A plain tuple: one is built per operation, and a NamedTuple costs four times as much.
Answer = tuple[Reply, float]


# evidence: G36, G37, G40 (documented 429 TooManyRequests with Retry-After, whole seconds by default)
def throttled_reply(throttled: Throttled, fmt: RetryAfterFormat = RetryAfterFormat.WHOLE) -> Reply:
    return error_reply(
        429,
        "TooManyRequests",
        "Please retry again later.",
        {
            "Retry-After": throttled.retry_after_header(fmt),
            "x-ms-throttle-scope": throttled.scope,
            "x-ms-throttle-information": throttled.information,
        },
    )


class Gateway:
    """Answers operations: the service's, within the profile's limits, counted in ``stats``."""

    def __init__(self, service: OperationService, limits: Limits, stats: Stats, behaviour: Behaviour) -> None:
        self.service = service
        self.limits = limits
        self.stats = stats
        self.behaviour = behaviour
        self._retry_after = limits.profile.behaviour.retry_after

    def handle(self, principal: Principal, method: str, segs: Sequence[str], body: Any, read: BodyReader) -> Answer:
        """Answer one operation (a direct request or a batch item) and count it."""
        call = self.service.resolve(principal, method, segs)
        behaviour = self.behaviour
        if isinstance(call, Refusal):
            reply = call.reply
            if behaviour.changes_answers and reply.status == 403:  # a permission refusal, not a route miss
                reply = behaviour.present(call.operation, reply)
            return self.record(call.operation, reply)
        op = call.operation
        limits = self.limits
        throttled = limits.throttler.admit(principal.app_id, principal.tenant_id, op.kind)
        if throttled is not None:  # evidence: G42 (a 429 applies nothing: our choice)
            return self.record(op.name, throttled_reply(throttled, self._retry_after))
        # Draw order matters (one seeded RNG): the fault, then the latency.
        fault = limits.faults.operation_fault()
        latency = limits.latency.sample(op.kind)
        if fault is not None:
            reply = self._fault(call, body, read, fault)
        else:
            reply = self.service.run(call, body, read)
            if behaviour.changes_answers:
                reply = behaviour.present(op.name, reply)
        if op.kind is OperationKind.WRITE:
            limits.faults.wrote()
        return self.record(op.name, reply, latency)

    def _fault(self, call: Call, body: Any, read: BodyReader, fault: Fault) -> Reply:
        """An injected 503 (nothing done) or 504 (done or not: the answer is lost either way)."""
        # evidence: G43 (503 and 504 documented; whether either was applied is unpublished)
        self.stats.faults_injected += 1
        if fault.status == 503:
            return error_reply(503, "serviceNotAvailable", "The service is temporarily unavailable. Please retry.")
        if fault.applied:
            self.service.run(call, body, read, answered=False)  # a refusal by the rule is lost too
        return error_reply(504, "GatewayTimeout", "The gateway timed out waiting for the service.")

    def failed_dependency(self, method: str, segs: Sequence[str]) -> Answer:
        """A batch item not run because an item it depends on failed (424)."""
        found = route(method, segs)
        name = UNKNOWN_ROUTE if isinstance(found, RouteMiss) else found[0]
        return self.record(name, error_reply(424, "FailedDependency", "The request depends on a request that failed."))

    def record(self, operation: str, reply: Reply, latency: float = 0.0) -> Answer:
        """Count an answered operation (``operation``: its stats name) and pass it on."""
        self.stats.record_operation(operation, reply.status, reply.error[0] if reply.error else None)
        return reply, latency


__all__ = ["Answer", "Gateway", "throttled_reply"]
