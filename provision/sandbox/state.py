"""The running sandbox's state: what one app serves, swapped as a whole between requests.

A ``Sandbox`` holds the tenant (inside the operation service), the profile's limits, the
counters, the token authenticator, and the gateway every operation goes through. The HTTP
app reads ``app.sandbox`` on every request, so assigning a new one (``build_sandbox``)
swaps state and profile at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from provision.sandbox.auth import Authenticator, make_token
from provision.sandbox.behaviour import Behaviour
from provision.sandbox.gateway import Gateway
from provision.sandbox.limits import Limits, Profile, load_profile
from provision.sandbox.service import OperationService
from provision.sandbox.stats import Stats
from provision.sandbox.tenant import Tenant

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class Sandbox:
    """The running sandbox: tenant, limits, auth, stats, and the gateway to the service."""

    def __init__(
        self,
        tenant: Tenant,
        limits: Limits,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Clock = time.time,
    ) -> None:
        self.limits = limits
        tenant.lenient_numbers = limits.lenient_numbers  # the profile's number format governs
        self.clock = clock
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.stats = Stats()
        self.auth = Authenticator(tenant.tenant_id, wall_clock=wall_clock)
        self.service = OperationService(tenant, self.stats)
        self.behaviour = Behaviour(limits.profile.behaviour, limits.rng)
        self.gateway = Gateway(self.service, limits, self.stats, self.behaviour)

    @property
    def tenant(self) -> Tenant:
        return self.service.tenant

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id

    def token(self, **claims: Any) -> str:
        """A token for this sandbox's tenant (``make_token`` arguments; default: the app token)."""
        return make_token(tid=self.tenant_id, **claims)

    def load_snapshot(self, data: Mapping[str, Any]) -> None:
        """Serve the tenant in ``data`` (a snapshot dict) from now on; tokens must name its id."""
        tenant = Tenant.from_snapshot(
            dict(data),
            clock=self.clock,
            replication_lag_s=self.limits.replication_lag_s,
            lenient_numbers=self.limits.lenient_numbers,
        )
        self.service.tenant = tenant
        self.auth = Authenticator(tenant.tenant_id, wall_clock=self.wall_clock)

    def reset(self) -> None:
        """Clear the counters and the throttling buckets."""
        self.stats.reset()
        self.limits.throttler.reset()


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
    """The sandbox state an app serves (see ``app.create_app`` for the parameters)."""
    resolved = profile if isinstance(profile, Profile) else load_profile(profile)
    limits = Limits(resolved, clock=clock, rng=rng if rng is not None else random.Random(seed))
    if tenant is None:
        lag, lenient = limits.replication_lag_s, limits.lenient_numbers
        tenant = (
            Tenant.from_snapshot(dict(snapshot), clock=clock, replication_lag_s=lag, lenient_numbers=lenient)
            if snapshot is not None
            else Tenant(clock=clock, replication_lag_s=lag, lenient_numbers=lenient)
        )
    return Sandbox(tenant, limits, clock=clock, sleep=sleep, wall_clock=wall_clock)


__all__ = ["Clock", "Sandbox", "Sleep", "build_sandbox"]
