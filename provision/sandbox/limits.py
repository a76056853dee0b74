"""Sandbox service profiles: throttling, latency, injected faults and replication lag.

A profile is a small TOML file (see docs/sandbox.md for every key). This module parses it
into frozen settings and provides the runtime pieces the HTTP layer consults per
operation: token buckets per app+tenant, a latency sampler and a fault injector. Clock and
random source are injected so tests are deterministic; nothing here sleeps.
"""

from __future__ import annotations

import math
import random
import time
import tomllib
from dataclasses import dataclass, field, fields
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

from provision.errors import UsageError

SHIPPED_PROFILES: tuple[str, ...] = ("unlimited", "graph-like", "strict")


class ProfileError(UsageError):
    """A profile file is missing, not TOML, or has an unknown/invalid key (the message names it)."""


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    reads_per_second: float = 0.0  # 0 = unlimited
    writes_per_second: float = 0.0  # 0 = unlimited
    burst_seconds: float = 1.0  # bucket capacity = rate * burst_seconds


@dataclass(frozen=True, slots=True)
class LatencySettings:
    read_ms: float = 0.0  # median
    write_ms: float = 0.0  # median
    jitter: float = 0.0  # lognormal sigma (0 = always the median)


@dataclass(frozen=True, slots=True)
class FaultSettings:
    http_503: float = 0.0  # probability per operation (batch items included)
    http_504: float = 0.0  # probability per operation (batch items included)
    connection_reset: float = 0.0  # probability per HTTP request
    batch_500: float = 0.0  # probability per $batch request: its items run, then the whole answer is a 500
    batch_502: float = 0.0  # the same with 502 (a gateway losing the answer of a batch it ran)
    silent_after_writes: float = 0.0  # after this many write operations, stop answering (0: never)
    gone_after_writes: float = 0.0  # after this many write operations, refuse connections (0: never)


# [faults] keys that count write operations rather than give a probability.
_COUNT_KEYS = frozenset({"silent_after_writes", "gone_after_writes"})


@dataclass(frozen=True, slots=True)
class ConsistencySettings:
    replication_lag_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Profile:
    name: str = "unlimited"
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    latency: LatencySettings = field(default_factory=LatencySettings)
    faults: FaultSettings = field(default_factory=FaultSettings)
    consistency: ConsistencySettings = field(default_factory=ConsistencySettings)


_Settings = type[ThrottleSettings] | type[LatencySettings] | type[FaultSettings] | type[ConsistencySettings]
_SECTIONS: dict[str, _Settings] = {
    "throttle": ThrottleSettings,
    "latency": LatencySettings,
    "faults": FaultSettings,
    "consistency": ConsistencySettings,
}
_PROBABILITY_SECTIONS = frozenset({"faults"})


def parse_profile(data: Mapping[str, Any], name: str) -> Profile:
    """Validate a parsed TOML document into a Profile; unknown sections/keys are errors
    (a typo must not silently leave a limit off)."""
    sections: dict[str, Any] = {}
    for section, values in data.items():
        if section == "name":
            continue
        settings_type = _SECTIONS.get(section)
        if settings_type is None:
            raise ProfileError(f"profile {name}: unknown section [{section}]")
        if not isinstance(values, Mapping):
            raise ProfileError(f"profile {name}: [{section}] must be a table")
        allowed = {f.name for f in fields(settings_type)}
        kwargs: dict[str, float] = {}
        for key, value in values.items():
            if key not in allowed:
                raise ProfileError(f"profile {name}: unknown key {section}.{key}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ProfileError(f"profile {name}: {section}.{key} must be a non-negative number")
            if key in _COUNT_KEYS:
                if value != int(value):
                    raise ProfileError(f"profile {name}: {section}.{key} is a count of write operations")
            elif section in _PROBABILITY_SECTIONS and value > 1:
                raise ProfileError(f"profile {name}: {section}.{key} is a probability (0..1)")
            kwargs[key] = float(value)
        sections[section] = settings_type(**kwargs)
    return Profile(name=str(data.get("name", name)), **sections)


def profile_toml(name: str = "custom", **sections: Mapping[str, float]) -> str:
    """A profile file's text from section tables (keys left out default to 0), e.g.
    ``profile_toml(throttle={"writes_per_second": 20}, latency={"write_ms": 200})``.
    Validated before it is written, so a typo fails here rather than in the server."""
    parse_profile(sections, name)
    lines = [f'name = "{name}"']
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {float(value)!r}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``unlimited``, ``graph-like``, ``strict``) or a TOML file path."""
    text: str
    label = str(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in SHIPPED_PROFILES:
        text = resources.files("provision.sandbox").joinpath(f"profiles/{name_or_path}.toml").read_text("utf-8")
    else:
        path = Path(name_or_path)
        if not path.is_file():
            shipped = ", ".join(SHIPPED_PROFILES)
            raise ProfileError(f"profile {label!r} is neither a shipped profile ({shipped}) nor a file")
        text = path.read_text("utf-8")
        label = path.stem
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {label}: not valid TOML ({exc})") from exc
    return parse_profile(data, label)


# --- throttling ---------------------------------------------------------------------------


class OperationKind(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Throttled:
    """A rejected operation: what the 429 answer carries."""

    retry_after: int  # whole seconds, >= 1
    scope: str  # x-ms-throttle-scope
    information: str  # x-ms-throttle-information


class TokenBucket:
    """A token bucket that keeps counting usage while throttled.

    Every request draws one token, admitted or not (Graph "continues to log resource usage
    while a client is being throttled"), so hammering digs the bucket below zero, down to
    ``-capacity``, and delays recovery. A client that honours Retry-After loses one token
    per throttling episode.
    """

    __slots__ = ("rate", "capacity", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self.tokens = self.capacity
        self.updated = now

    def take(self, now: float) -> float | None:
        """Draw one token; None when admitted, else the seconds until one is available."""
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        self.tokens = max(self.tokens - 1.0, -self.capacity)
        return (1.0 - self.tokens) / self.rate


class Throttler:
    """Token buckets per (app id, tenant id, read|write), as Graph's identity limits are per app+tenant."""

    def __init__(self, settings: ThrottleSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._buckets: dict[tuple[str, str, OperationKind], TokenBucket] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def admit(self, app_id: str, tenant_id: str, kind: OperationKind) -> Throttled | None:
        rate = self._settings.writes_per_second if kind is OperationKind.WRITE else self._settings.reads_per_second
        if rate <= 0:
            return None
        key = (app_id, tenant_id, kind)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, rate * self._settings.burst_seconds, now)
        wait = bucket.take(now)
        if wait is None:
            return None
        if kind is OperationKind.WRITE:
            scope, info = f"Tenant_Application/Write/{app_id}/{tenant_id}", "WriteLimitExceeded"
        else:
            scope, info = f"Tenant_Application/Read/{app_id}/{tenant_id}", "ResourceUnitLimitExceeded"
        return Throttled(retry_after=max(1, math.ceil(wait - 1e-9)), scope=scope, information=info)


# --- latency and faults ---------------------------------------------------------------------


class LatencyModel:
    """Lognormal service time per operation: median ``read_ms``/``write_ms``, sigma ``jitter``."""

    def __init__(self, settings: LatencySettings, rng: random.Random) -> None:
        self._settings = settings
        self._rng = rng

    def sample(self, kind: OperationKind) -> float:
        """Seconds this operation takes (0.0 when the profile has no latency)."""
        median_ms = self._settings.write_ms if kind is OperationKind.WRITE else self._settings.read_ms
        if median_ms <= 0:
            return 0.0
        if self._settings.jitter <= 0:
            return median_ms / 1000.0
        return self._rng.lognormvariate(math.log(median_ms), self._settings.jitter) / 1000.0


class ResetPoint(StrEnum):
    """When an injected connection reset drops the connection."""

    BEFORE = "before"  # nothing in the request was applied
    AFTER = "after"  # every operation was applied, the answer is lost


@dataclass(frozen=True, slots=True)
class Fault:
    status: int  # 503 or 504
    applied: bool  # whether the operation was applied anyway (a 504 may time out after the work)


class Outage(StrEnum):
    """The sandbox as an unreachable target, from a given point on."""

    SILENT = "silent"  # connections are accepted, requests read, and never answered
    GONE = "gone"  # connections are refused (over HTTP: dropped before the request is read)


class FaultInjector:
    """Draws injected failures from a seeded RNG, and plays outages.

    503: refused before doing anything. 504: the gateway timed out; the operation was
    applied with probability 0.5. Connection reset: dropped before (0.5) or after (0.5)
    the request's operations were applied, so a client faces a genuinely unknown outcome.
    A ``$batch`` answered 500 or 502 as a whole (``batch_500``/``batch_502``) ran every item
    first: the client can't tell which items ran.

    Outages are deterministic: once ``silent_after_writes`` (or ``gone_after_writes``) write
    operations have run, every later Graph request goes unanswered (or is refused). Tests
    in the same process may also start and end one (``start_outage``, ``end_outage``).
    """

    def __init__(self, settings: FaultSettings, rng: random.Random) -> None:
        self._settings = settings
        self._rng = rng
        self.writes = 0  # write operations run so far
        self.outage: Outage | None = None
        self._armed = settings.silent_after_writes > 0 or settings.gone_after_writes > 0

    @property
    def active(self) -> bool:
        s = self._settings
        return s.http_503 > 0 or s.http_504 > 0 or s.connection_reset > 0

    def operation_fault(self) -> Fault | None:
        s = self._settings
        if s.http_503 <= 0 and s.http_504 <= 0:
            return None
        roll = self._rng.random()
        if roll < s.http_503:
            return Fault(503, applied=False)
        if roll < s.http_503 + s.http_504:
            return Fault(504, applied=self._rng.random() < 0.5)
        return None

    def connection_reset(self) -> ResetPoint | None:
        if self._settings.connection_reset <= 0 or self._rng.random() >= self._settings.connection_reset:
            return None
        return ResetPoint.AFTER if self._rng.random() < 0.5 else ResetPoint.BEFORE

    def batch_fault(self) -> int | None:
        """500 or 502 for a ``$batch`` whose items have run (None: answer it normally)."""
        s = self._settings
        if s.batch_500 <= 0 and s.batch_502 <= 0:
            return None
        roll = self._rng.random()
        if roll < s.batch_500:
            return 500
        if roll < s.batch_500 + s.batch_502:
            return 502
        return None

    def wrote(self) -> None:
        """A write operation ran: count it, and start the outage the profile sets at its count."""
        self.writes += 1
        if not self._armed or self.outage is not None:
            return
        s = self._settings
        if 0 < s.gone_after_writes <= self.writes:
            self.start_outage(Outage.GONE)
        elif 0 < s.silent_after_writes <= self.writes:
            self.start_outage(Outage.SILENT)

    def start_outage(self, outage: Outage) -> None:
        self.outage = outage

    def end_outage(self) -> None:
        """Answer again (and start no outage of the profile's again)."""
        self.outage = None
        self._armed = False


class Limits:
    """The runtime of one profile: throttler, latency model and fault injector."""

    def __init__(
        self,
        profile: Profile,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.profile = profile
        self.rng = rng if rng is not None else random.Random(0)
        self.throttler = Throttler(profile.throttle, clock)
        self.latency = LatencyModel(profile.latency, self.rng)
        self.faults = FaultInjector(profile.faults, self.rng)

    @property
    def replication_lag_s(self) -> float:
        return self.profile.consistency.replication_lag_ms / 1000.0


__all__ = [
    "SHIPPED_PROFILES",
    "ConsistencySettings",
    "Fault",
    "FaultInjector",
    "FaultSettings",
    "LatencyModel",
    "LatencySettings",
    "Limits",
    "OperationKind",
    "Outage",
    "Profile",
    "ProfileError",
    "ResetPoint",
    "ThrottleSettings",
    "Throttled",
    "Throttler",
    "TokenBucket",
    "load_profile",
    "parse_profile",
]
