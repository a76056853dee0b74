"""Sandbox service profiles: throttling, latency, injected faults, replication lag and
the behaviour variants where public evidence about Graph is absent or contradictory.

A profile is a small TOML file (see docs/sandbox.md for every key). This module parses it
into frozen settings and provides the runtime pieces the HTTP layer consults per
operation: token buckets (or sliding windows) per app+tenant, a latency sampler and a
fault injector. Clock and random source are injected so tests are deterministic; nothing
here sleeps.
"""

from __future__ import annotations

import math
import random
import time
import tomllib
from collections import deque
from dataclasses import dataclass, field, fields
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, get_type_hints

from provision.errors import UsageError

SHIPPED_PROFILES: tuple[str, ...] = ("unlimited", "graph-like", "strict", "graph-window")


class ProfileError(UsageError):
    """A profile file is missing, not TOML, or has an unknown/invalid key (the message names it)."""


# evidence: G39 (refill and capacity unpublished: both readings are offered)
class ThrottleAlgorithm(StrEnum):
    BUCKET = "bucket"  # token bucket: capacity rate * burst_seconds, refilled continuously
    WINDOW = "window"  # sliding window: at most rate * window_seconds admitted in any window


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    reads_per_second: float = 0.0  # 0 = unlimited
    writes_per_second: float = 0.0  # 0 = unlimited
    burst_seconds: float = 1.0  # bucket capacity = rate * burst_seconds
    # evidence: G39 (identity limits documented as a token bucket; "window" reads the quota table literally)
    algorithm: ThrottleAlgorithm = ThrottleAlgorithm.BUCKET
    window_seconds: float = 1.0  # window: capacity = rate * window_seconds


# evidence: G45 (Graph's 60 s cut-off isn't modelled: latency comes only from the profile)
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


# evidence: G16 (replication delay unpublished: none by default, graph-like sets one)
@dataclass(frozen=True, slots=True)
class ConsistencySettings:
    replication_lag_ms: float = 0.0


class BatchOrder(StrEnum):
    REQUEST = "request"  # items run, and are answered, in request order (dependants after)
    SHUFFLED = "shuffled"  # a random run order (dependants still after) and answer order


class RetryAfterFormat(StrEnum):
    WHOLE = "whole"  # whole seconds, rounded up, >= 1
    FRACTIONAL = "fractional"  # exact seconds with three decimals ("2.128")


class NumberFormat(StrEnum):
    LENIENT = "lenient"  # "+CCNSN[xEXT]" is accepted too, and stored as "+CC NSN[xEXT]"
    STRICT = "strict"  # only "+CC NSN[xEXT]" is accepted


class ErrorText(StrEnum):
    SANDBOX = "sandbox"  # the sandbox's own codes and messages
    OPAQUE = "opaque"  # rule violations keep their status; code and message are unknown ones


class ListOrder(StrEnum):
    TYPE = "type"  # mobile, alternateMobile, office
    SHUFFLED = "shuffled"  # a random order per answer


@dataclass(frozen=True, slots=True)
class BehaviourSettings:
    # evidence: G48, G49 (items "might" run and answer in any order; request order is one of them)
    batch_order: BatchOrder = BatchOrder.REQUEST
    # evidence: G37 (the current throttling page's sample is whole seconds; an older one had 2.128)
    retry_after: RetryAfterFormat = RetryAfterFormat.WHOLE
    # evidence: G08 (two production integrations send "+CCNSN" and read back "+CC NSN"; docs say rejected)
    number_format: NumberFormat = NumberFormat.LENIENT
    # evidence: G07, G55 (rule-refusal codes are unpublished; the sandbox's own are a stand-in)
    error_text: ErrorText = ErrorText.SANDBOX
    # evidence: G12 (the v1.0 list example is in type order, the tutorial's is not: no guarantee)
    list_order: ListOrder = ListOrder.TYPE

    @property
    def rewords_answers(self) -> bool:
        """Whether a variant changes answers after the service gave them (else: the fast path)."""
        return self.error_text is not ErrorText.SANDBOX or self.list_order is not ListOrder.TYPE


@dataclass(frozen=True, slots=True)
class Profile:
    name: str = "unlimited"
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    latency: LatencySettings = field(default_factory=LatencySettings)
    faults: FaultSettings = field(default_factory=FaultSettings)
    consistency: ConsistencySettings = field(default_factory=ConsistencySettings)
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)


_Settings = (
    type[ThrottleSettings]
    | type[LatencySettings]
    | type[FaultSettings]
    | type[ConsistencySettings]
    | type[BehaviourSettings]
)
_SECTIONS: dict[str, _Settings] = {
    "throttle": ThrottleSettings,
    "latency": LatencySettings,
    "faults": FaultSettings,
    "consistency": ConsistencySettings,
    "behaviour": BehaviourSettings,
}
_PROBABILITY_SECTIONS = frozenset({"faults"})


def _choices(settings_type: _Settings) -> dict[str, type[StrEnum]]:
    """The keys of a section whose value is one of a closed set of words, with that set."""
    hints = get_type_hints(settings_type)
    return {
        f.name: hints[f.name]
        for f in fields(settings_type)
        if isinstance(hints[f.name], type) and issubclass(hints[f.name], StrEnum)
    }


_CHOICES: dict[str, dict[str, type[StrEnum]]] = {section: _choices(t) for section, t in _SECTIONS.items()}


def _choice(name: str, section: str, key: str, value: object, enum: type[StrEnum]) -> StrEnum:
    allowed = [member.value for member in enum]
    if not isinstance(value, str) or value not in allowed:
        words = " | ".join(f'"{a}"' for a in allowed)
        raise ProfileError(f"profile {name}: {section}.{key} must be one of {words} (got {value!r})")
    return enum(value)


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
        choices = _CHOICES[section]
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key not in allowed:
                raise ProfileError(f"profile {name}: unknown key {section}.{key}")
            enum = choices.get(key)
            if enum is not None:
                kwargs[key] = _choice(name, section, key, value, enum)
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ProfileError(f"profile {name}: {section}.{key} must be a non-negative number")
            if key in _COUNT_KEYS:
                if value != int(value):
                    raise ProfileError(f"profile {name}: {section}.{key} is a count of write operations")
            elif section in _PROBABILITY_SECTIONS and value > 1:
                raise ProfileError(f"profile {name}: {section}.{key} is a probability (0..1)")
            kwargs[key] = float(value)
        sections[section] = settings_type(**kwargs)
    throttle = sections.get("throttle")
    if isinstance(throttle, ThrottleSettings) and throttle.algorithm is ThrottleAlgorithm.WINDOW:
        if throttle.window_seconds <= 0:
            raise ProfileError(f"profile {name}: throttle.window_seconds must be positive with the window algorithm")
    return Profile(name=str(data.get("name", name)), **sections)


def profile_toml(name: str = "custom", **sections: Mapping[str, float | str]) -> str:
    """A profile file's text from section tables (keys left out keep their defaults), e.g.
    ``profile_toml(throttle={"writes_per_second": 20}, behaviour={"batch_order": "shuffled"})``.
    Validated before it is written, so a typo fails here rather than in the server."""
    parse_profile(sections, name)
    lines = [f'name = "{name}"']
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(
            f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {float(value)!r}"
            for key, value in values.items()
        )
    return "\n".join(lines) + "\n"


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``unlimited``, ``graph-like``, ``strict``, ``graph-window``)
    or a TOML file path."""
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

    wait: float  # seconds until the operation would be admitted (> 0)
    scope: str  # x-ms-throttle-scope
    information: str  # x-ms-throttle-information

    @property
    def retry_after(self) -> int:
        """Whole seconds, rounded up, at least 1 (the ``whole`` Retry-After)."""
        return max(1, math.ceil(self.wait - 1e-9))

    def retry_after_header(self, fmt: RetryAfterFormat) -> str:
        """The Retry-After value: whole seconds, or exact seconds rounded up to the millisecond."""
        if fmt is RetryAfterFormat.WHOLE:
            return str(self.retry_after)
        return f"{max(math.ceil(self.wait * 1000 - 1e-6), 1) / 1000:.3f}"


# evidence: G36, G39 (documented token bucket; usage is logged while throttled)
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


# Clock readings this close count as the same instant: a client that sleeps exactly the
# Retry-After it was given must find the window open, whatever float rounding did.
_EPSILON = 1e-9


# evidence: G39 (the quota table read literally; not counting rejected requests is our choice)
class SlidingWindow:
    """At most ``capacity`` admitted requests in any window of ``window`` seconds (a sliding log).

    Our choice: a rejected request is not logged, so Retry-After is exact: it is the time
    until the oldest admitted request leaves the window, and a client that waits that long
    is admitted. (The token bucket models the other reading, usage counted while throttled.)
    """

    __slots__ = ("window", "capacity", "log")

    def __init__(self, capacity: float, window: float) -> None:
        self.window = window
        self.capacity = max(int(capacity), 1)
        self.log: deque[float] = deque()

    def take(self, now: float) -> float | None:
        """Admit one request; None when admitted, else the seconds until the window admits one."""
        log = self.log
        horizon = now - self.window + _EPSILON
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) < self.capacity:
            log.append(now)
            return None
        return max(log[0] + self.window - now, _EPSILON)


class Throttler:
    """A limiter per (app id, tenant id, read|write), as Graph's identity limits are per
    app+tenant: token buckets or sliding windows, as the profile's ``algorithm`` says."""

    def __init__(self, settings: ThrottleSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._limiters: dict[tuple[str, str, OperationKind], TokenBucket | SlidingWindow] = {}

    def reset(self) -> None:
        self._limiters.clear()

    def _limiter(self, rate: float, now: float) -> TokenBucket | SlidingWindow:
        s = self._settings
        if s.algorithm is ThrottleAlgorithm.WINDOW:
            return SlidingWindow(rate * s.window_seconds, s.window_seconds)
        return TokenBucket(rate, rate * s.burst_seconds, now)

    def admit(self, app_id: str, tenant_id: str, kind: OperationKind) -> Throttled | None:
        rate = self._settings.writes_per_second if kind is OperationKind.WRITE else self._settings.reads_per_second
        if rate <= 0:
            return None
        key = (app_id, tenant_id, kind)
        now = self._clock()
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = self._limiter(rate, now)
        wait = limiter.take(now)
        if wait is None:
            return None
        # evidence: G40 (x-ms-throttle-* headers, documented for the identity service)
        if kind is OperationKind.WRITE:
            scope, info = f"Tenant_Application/Write/{app_id}/{tenant_id}", "WriteLimitExceeded"
        else:
            scope, info = f"Tenant_Application/Read/{app_id}/{tenant_id}", "ResourceUnitLimitExceeded"
        return Throttled(wait=wait, scope=scope, information=info)


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
        # evidence: G43 (503 applies nothing; whether a 504 applied is unpublished: 50/50)
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
        # evidence: G44 (nothing public says whether a dropped request ran: before or after, 50/50)
        if self._settings.connection_reset <= 0 or self._rng.random() >= self._settings.connection_reset:
            return None
        return ResetPoint.AFTER if self._rng.random() < 0.5 else ResetPoint.BEFORE

    def batch_fault(self) -> int | None:
        """500 or 502 for a ``$batch`` whose items have run (None: answer it normally)."""
        # evidence: G44 (a failed envelope after the items ran; which ran is unpublished)
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

    @property
    def lenient_numbers(self) -> bool:
        return self.profile.behaviour.number_format is NumberFormat.LENIENT


__all__ = [
    "SHIPPED_PROFILES",
    "BatchOrder",
    "BehaviourSettings",
    "ConsistencySettings",
    "ErrorText",
    "Fault",
    "FaultInjector",
    "FaultSettings",
    "LatencyModel",
    "LatencySettings",
    "Limits",
    "ListOrder",
    "NumberFormat",
    "OperationKind",
    "Outage",
    "Profile",
    "ProfileError",
    "ResetPoint",
    "RetryAfterFormat",
    "SlidingWindow",
    "ThrottleAlgorithm",
    "ThrottleSettings",
    "Throttled",
    "Throttler",
    "TokenBucket",
    "load_profile",
    "parse_profile",
]
