"""Many tenants in one sandbox: a ``Sandbox`` per tenant, chosen per request by the token's ``tid``.

Each tenant served has its own state, its own ``Limits`` (so its own throttle budget per
app, its own faults and outages, an rng seeded from the seed and the tenant id), its own
``Stats`` and authenticator: everything a single-tenant sandbox holds, so a tenant behaves
exactly as if it were served alone. ``TenantRouter.select`` reads the tenant from the
Authorization header (decoded once per distinct header, then cached); the chosen
sandbox then authenticates the request as a single-tenant one does.

A request no served tenant takes (no token, a garbled token, a tid the sandbox doesn't
serve) goes to ``nobody``: an empty sandbox whose authenticator accepts no token, so it
is answered 401 ``InvalidAuthenticationToken`` as a tenant mismatch is, and counted in
``nobody.stats`` (part of the totals, in no tenant's own).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Iterable, Sequence

from provision.sandbox.auth import Authenticator, AuthFailure, decode_token
from provision.sandbox.limits import Limits, Profile
from provision.sandbox.state import Clock, Sandbox, Sleep
from provision.sandbox.stats import Stats
from provision.sandbox.tenant import Tenant


def tenant_rng(seed: int, tenant_id: str) -> random.Random:
    """The rng of one tenant's limits: deterministic per seed and tenant, independent across tenants."""
    return random.Random(f"{seed}:{tenant_id.casefold()}")


class TenantRouter:
    """The tenants one app serves, by case-folded tenant id (in the order given)."""

    # One entry per distinct Authorization header: a fleet's tenants each reuse one token
    # for thousands of requests. Cleared when full (garbage headers can't grow it unbounded).
    _CACHE_SIZE = 16384

    def __init__(self, sandboxes: Iterable[Sandbox], *, wall_clock: Clock = time.time) -> None:
        self.sandboxes: dict[str, Sandbox] = {}
        for sandbox in sandboxes:
            key = sandbox.tenant_id.casefold()
            if key in self.sandboxes:
                raise ValueError(f"tenant {sandbox.tenant_id} is served twice")
            self.sandboxes[key] = sandbox
        if not self.sandboxes:
            raise ValueError("a multi-tenant sandbox needs at least one tenant")
        self.nobody = Sandbox(Tenant(tenant_id=""), Limits(Profile()), wall_clock=wall_clock)
        # A token's tid is never empty (principal_from_claims refuses it): this accepts no token.
        self.nobody.auth = Authenticator("", wall_clock=wall_clock)
        self._by_header: dict[str, Sandbox] = {}

    @property
    def first(self) -> Sandbox:
        return next(iter(self.sandboxes.values()))

    @property
    def tenant_ids(self) -> list[str]:
        return [sandbox.tenant_id for sandbox in self.sandboxes.values()]

    def get(self, tenant_id: str) -> Sandbox | None:
        return self.sandboxes.get(tenant_id.casefold())

    def select(self, authorization: str | None) -> Sandbox:
        """The sandbox that answers a request carrying this Authorization header."""
        if authorization is None:
            return self.nobody
        sandbox = self._by_header.get(authorization)
        if sandbox is None:
            sandbox = self._route(authorization)
            if len(self._by_header) >= self._CACHE_SIZE:
                self._by_header.clear()
            self._by_header[authorization] = sandbox
        return sandbox

    def _route(self, authorization: str) -> Sandbox:
        _, _, token = authorization.partition(" ")
        try:
            principal = decode_token(token.strip())
        except AuthFailure:
            return self.nobody
        return self.sandboxes.get(principal.tenant_id, self.nobody)

    def total_stats(self) -> Stats:
        """Every counter summed over the tenants (and the requests no tenant took)."""
        total = Stats()
        for sandbox in self.sandboxes.values():
            total.add(sandbox.stats)
        total.add(self.nobody.stats)
        return total

    def per_tenant_stats(self) -> dict[str, Any]:
        return {sandbox.tenant_id: sandbox.stats.to_json() for sandbox in self.sandboxes.values()}

    def reset(self) -> None:
        """Clear every tenant's counters and throttle buckets."""
        for sandbox in self.sandboxes.values():
            sandbox.reset()
        self.nobody.reset()

    def tenants(self) -> list[Tenant]:
        return [sandbox.tenant for sandbox in self.sandboxes.values()]


def build_router(
    tenants: Sequence[Tenant],
    *,
    profile: Profile,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    seed: int = 0,
    wall_clock: Clock = time.time,
) -> TenantRouter:
    """A router over ``tenants``, each with its own limits built from ``profile``."""
    sandboxes = [
        Sandbox(
            tenant,
            Limits(profile, clock=clock, rng=tenant_rng(seed, tenant.tenant_id)),
            clock=clock,
            sleep=sleep,
            wall_clock=wall_clock,
        )
        for tenant in tenants
    ]
    return TenantRouter(sandboxes, wall_clock=wall_clock)


__all__ = ["TenantRouter", "build_router", "tenant_rng"]
