"""Adaptive pacing: one controller that every in-flight Graph request goes through.

Graph never tells us its limit; it only answers 429 (or 503) with ``Retry-After`` once we
have exceeded it, and it keeps charging throttled requests against the quota. So the
controller discovers the limit and then stays just under it:

* one global pause: after any ``Retry-After`` nobody dispatches until it has passed;
* two lanes, ``read`` and ``write`` (Graph meters them separately), each with its own
  rate limit (a token bucket in operations/s, where a ``$batch`` of n items costs n);
* one cap on in-flight HTTP requests shared by both lanes.

A lane's rate follows three phases:

``startup``    no throttle seen yet: the rate doubles every ``startup_doubling_s`` while it
               is the binding constraint;
``recovery``   after the first throttle: the rate was cut to ``first_cut`` of what caused
               it, and grows again (slower) until the second throttle;
``steady``     from the second throttle on, the lane knows an estimate of what the server
               admits (successful operations between two throttles / time between them:
               the server's bucket was empty at both moments, so what got through in
               between is what it refilled). After each throttle the rate restarts just
               under that ceiling and probes upwards slowly, then faster (a quadratic
               curve, as in TCP CUBIC), so throttles are rare and cheap.

A throttle answers only for the requests dispatched after the last cut: requests that were
already in flight when we cut are part of the same congestion event and cut nothing more
(TCP's once-per-round-trip rule).

Usage, one HTTP request (a ``$batch`` of 20 writes)::

    pacer = Pacer()
    async with pacer.slot("write", operations=20) as slot:
        response = await send_batch(...)
        slot.report(response.status, throttled=n_429_items,
                    unavailable=n_503_items, retry_after=max_retry_after)

A slot released without a report (an exception, a timeout, a reset) counts as a failed
request and changes no rate.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Awaitable, Callable, Mapping

__all__ = [
    "Lane",
    "LanePhase",
    "LaneSnapshot",
    "Pacer",
    "PacerSnapshot",
    "PacingSettings",
    "Slot",
]

Clock = Callable[[], float]
# Waits shorter than this count as done: a clock that only moves by the amount slept
# (a fake one) may never close the last rounding error.
_TIME_EPSILON = 1e-6
Sleep = Callable[[float], Awaitable[None]]


class Lane(StrEnum):
    """Which budget a request draws from (Graph meters reads and writes separately)."""

    READ = "read"
    WRITE = "write"


class LanePhase(StrEnum):
    STARTUP = "startup"
    RECOVERY = "recovery"
    STEADY = "steady"


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """Tuning constants. The defaults were chosen with ``bench/pacing_sim.py``: the same
    values reach >= 0.97 of the server's write limit with <= 3% throttled operations at
    20, 100 and 400 operations/s (burst 1-2 s, latency 150-300 ms)."""

    initial_rate: float = 50.0
    """Operations/s per lane before anything is known: one full batch every 0.4 s, low
    enough that a 20 ops/s tenant loses about one batch to discover its limit."""
    min_rate: float = 0.5
    max_rate: float = 50_000.0
    max_in_flight: int = 16
    """HTTP requests in flight, both lanes together. 16 batches of 20 at 200 ms carry
    1,600 operations/s: well above Graph's per-tenant write quota, small enough that a
    throttle with everything in flight costs few operations."""
    local_burst_s: float = 0.5
    """Our own bucket holds this many seconds of the rate (at least one request), so a
    pause's unused time is partly made up when it ends without bursting past the server."""
    batch_s: float = 0.35
    """``batch_size()`` suggests requests of about this many seconds of the rate."""
    startup_doubling_s: float = 0.5
    startup_slowdown_s: float = 0.25
    first_cut: float = 0.5
    """At the first throttle the server's burst allowance has hidden the limit for a
    while, so the rate that tripped it may be far above the limit: halve it (or less)."""
    cut: float = 0.9
    """Later throttles restart at ``cut`` times the rate held ``lookback_s`` before the
    throttled request, never below what the server demonstrably admitted since the
    previous throttle."""
    restart_bump: float = 0.04
    repeat_cut: float = 0.75
    """A throttle within ``min_estimate_s`` of the previous one cuts the rate this much."""
    max_cut: float = 0.95
    lookback_s: float = 1.0
    recovery_linear: float = 0.05
    probe_linear: float = 0.0
    """After a cut the rate grows by base * (linear * t + quadratic * t^2) after t seconds
    (of rate-bound time): slow near the restart point, faster the longer it holds."""
    probe_quadratic: float = 0.0005
    min_estimate_s: float = 2.0
    """Shortest interval between two throttles that yields an admitted-rate figure."""
    window_s: float = 0.1
    """Rate increases are applied at most this often."""
    default_retry_after_s: float = 1.0
    """Pause after a 429 that carries no Retry-After."""
    unavailable_share_to_cut: float = 0.2
    """503s are usually transient faults; they count as congestion only when this share of
    a lane's recent operations failed with 503 (or when they carry Retry-After... which
    only pauses)."""
    unavailable_memory_ops: float = 50.0

    def __post_init__(self) -> None:
        if not (0 < self.min_rate <= self.initial_rate <= self.max_rate):
            raise ValueError("need 0 < min_rate <= initial_rate <= max_rate")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if not all(0 < f < 1 for f in (self.first_cut, self.cut, self.repeat_cut, self.max_cut)):
            raise ValueError("cut factors must be in (0, 1)")


@dataclass(frozen=True, slots=True)
class LaneSnapshot:
    lane: Lane
    phase: LanePhase
    rate_limit: float
    """Operations/s this lane may dispatch right now."""
    estimated_limit: float | None
    """Operations/s the lane restarted at after its last throttle (None before one)."""
    in_flight: int
    requests: int
    operations: int
    ok: int
    throttled: int
    unavailable: int
    failed_requests: int
    cuts: int


@dataclass(frozen=True, slots=True)
class PacerSnapshot:
    """What progress events show: limits, in-flight work, the pause and counts."""

    at: float
    in_flight: int
    max_in_flight: int
    paused_until: float | None
    pause_reason: str | None
    lanes: Mapping[Lane, LaneSnapshot]

    @property
    def operations(self) -> int:
        return sum(s.operations for s in self.lanes.values())

    @property
    def throttled(self) -> int:
        return sum(s.throttled for s in self.lanes.values())

    @property
    def unavailable(self) -> int:
        return sum(s.unavailable for s in self.lanes.values())


@dataclass(slots=True)
class _LaneState:
    lane: Lane
    rate: float
    tokens: float
    refilled_at: float
    phase: LanePhase = LanePhase.STARTUP
    estimated_limit: float | None = None
    history: deque[tuple[float, float]] = field(default_factory=deque)
    base_rate: float = 0.0
    probe_s: float = 0.0
    last_cut_at: float = -math.inf
    event_at: float | None = None
    first_sent_at: float | None = None
    head_need: int = 0
    sent_since_event: int = 0
    window_start: float = 0.0
    bound_s: float = 0.0
    unavailable_share: float = 0.0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    in_flight: int = 0
    requests: int = 0
    operations: int = 0
    ok: int = 0
    throttled: int = 0
    unavailable: int = 0
    failed_requests: int = 0
    cuts: int = 0


    def rate_at(self, when: float) -> float:
        """The rate limit that was in force at ``when`` (recent past only)."""
        rate = self.history[0][1] if self.history else self.rate
        for changed_at, value in self.history:
            if changed_at > when:
                break
            rate = value
        return rate


class Slot:
    """Permission for one HTTP request carrying ``operations`` operations."""

    __slots__ = ("_pacer", "lane", "operations", "dispatched_at", "rate_at_dispatch", "_reported", "_released")

    def __init__(self, pacer: Pacer, lane: Lane, operations: int, dispatched_at: float, rate: float) -> None:
        self._pacer = pacer
        self.lane = lane
        self.operations = operations
        self.dispatched_at = dispatched_at
        self.rate_at_dispatch = rate
        self._reported = False
        self._released = False

    def report(
        self,
        status: int = 200,
        *,
        throttled: int | None = None,
        unavailable: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Record the answer: the HTTP status of the request (the envelope for ``$batch``),
        how many of its operations were throttled (429) or unavailable (503), and the
        largest Retry-After (seconds) among the request and its items.

        A 429 or 503 status with no counts means every operation got it."""
        if self._reported:
            raise RuntimeError("slot already reported")
        if status == 429 and throttled is None:
            throttled = self.operations
        if status == 503 and unavailable is None:
            unavailable = self.operations
        n_throttled = min(throttled or 0, self.operations)
        n_unavailable = min(unavailable or 0, self.operations - n_throttled)
        self._reported = True
        self._pacer._on_report(self, n_throttled, n_unavailable, retry_after)

    def shrink(self, operations: int) -> None:
        """Send fewer operations than granted (fewer were ready); the rest is given back."""
        if self._reported or self._released:
            raise RuntimeError("slot already used")
        if not 1 <= operations <= self.operations:
            raise ValueError(f"operations must be between 1 and {self.operations}")
        self._pacer._on_shrink(self, self.operations - operations)
        self.operations = operations

    def release(self) -> None:
        """Free the in-flight place (idempotent). Unreported means failed: no rate change."""
        if self._released:
            return
        self._released = True
        self._pacer._on_release(self, reported=self._reported)


class _SlotContext:
    __slots__ = ("_pacer", "_lane", "_operations", "_flexible", "_slot")

    def __init__(self, pacer: Pacer, lane: Lane, operations: int, flexible: bool) -> None:
        self._pacer = pacer
        self._lane = lane
        self._operations = operations
        self._flexible = flexible
        self._slot: Slot | None = None

    async def __aenter__(self) -> Slot:
        self._slot = await self._pacer.acquire(self._lane, self._operations, flexible=self._flexible)
        return self._slot

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._slot is not None:
            self._slot.release()


class Pacer:
    """The shared controller. Create one per run; use it from one event loop."""

    def __init__(
        self,
        settings: PacingSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings or PacingSettings()
        self._clock = clock
        self._sleep = sleep
        now = clock()
        s = self.settings
        self._lanes = {
            lane: _LaneState(
                lane=lane,
                rate=s.initial_rate,
                tokens=max(s.initial_rate * s.local_burst_s, 1.0),
                refilled_at=now,
                window_start=now,
            )
            for lane in Lane
        }
        self._in_flight = 0
        self._paused_until = -math.inf
        self._pause_reason: str | None = None
        self._capacity_waiters: list[asyncio.Future[None]] = []

    # dispatch --------------------------------------------------------------------------
    def slot(self, kind: Lane | str = Lane.WRITE, operations: int = 1, *, flexible: bool = False) -> _SlotContext:
        """``async with pacer.slot("write", 20) as slot:`` waits for permission to send;
        see ``acquire`` for ``flexible``."""
        return _SlotContext(self, Lane(kind), operations, flexible)

    async def acquire(self, kind: Lane | str = Lane.WRITE, operations: int = 1, *, flexible: bool = False) -> Slot:
        """Wait until a request of ``operations`` operations may be sent; call
        ``slot.release()`` when its answer is in (``slot()`` does that for you).

        With ``flexible=True`` the slot may carry fewer operations (``slot.operations``,
        at least 1): as many as ``batch_size()`` suggests when the slot is granted, so
        fill the batch after acquiring."""
        if operations < 1:
            raise ValueError("operations must be at least 1")
        lane = self._lanes[Lane(kind)]
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        lane.waiters.append(turn)
        try:
            # One head of line per lane keeps dispatch FIFO and leaves one sleeper per lane.
            if lane.waiters[0] is not turn:
                await turn
            while True:
                now = self._clock()
                if self._paused_until - now > _TIME_EPSILON:
                    await self._sleep(self._paused_until - now)
                    continue
                if self._in_flight >= self.settings.max_in_flight:
                    await self._wait_for_capacity()
                    continue
                if flexible:
                    operations = min(operations, self.batch_size(lane.lane, operations))
                lane.head_need = operations
                self._refill(lane, now)
                wait = (operations - lane.tokens) / lane.rate
                if wait > _TIME_EPSILON:
                    started = now
                    await self._sleep(wait)
                    lane.bound_s += self._clock() - started
                    continue
                lane.tokens -= operations
                lane.head_need = 0
                if lane.first_sent_at is None:
                    lane.first_sent_at = now
                self._in_flight += 1
                lane.in_flight += 1
                lane.requests += 1
                lane.operations += operations
                return Slot(self, lane.lane, operations, now, lane.rate)
        finally:
            if lane.waiters and lane.waiters[0] is turn:
                lane.waiters.popleft()
                if lane.waiters and not lane.waiters[0].done():
                    lane.waiters[0].set_result(None)
            else:
                lane.waiters.remove(turn)

    def batch_size(self, kind: Lane | str = Lane.WRITE, limit: int = 20) -> int:
        """How many operations to pack into the next request of this lane (at most
        ``limit``): about ``batch_s`` seconds of the current rate. At low limits a
        full batch of 20 would need the server's whole burst allowance at once, so
        latency jitter alone would get some of its items throttled."""
        lane = self._lanes[Lane(kind)]
        return max(1, min(limit, int(lane.rate * self.settings.batch_s)))

    def pause(self, seconds: float, reason: str) -> None:
        """Stop all new dispatch for ``seconds`` from now (never shortens a pause)."""
        now = self._clock()
        until = now + seconds
        if until <= self._paused_until:
            return
        self._paused_until = until
        self._pause_reason = reason

    def snapshot(self) -> PacerSnapshot:
        now = self._clock()
        paused = now < self._paused_until
        return PacerSnapshot(
            at=now,
            in_flight=self._in_flight,
            max_in_flight=self.settings.max_in_flight,
            paused_until=self._paused_until if paused else None,
            pause_reason=self._pause_reason if paused else None,
            lanes={
                s.lane: LaneSnapshot(
                    lane=s.lane,
                    phase=s.phase,
                    rate_limit=s.rate,
                    estimated_limit=s.estimated_limit,
                    in_flight=s.in_flight,
                    requests=s.requests,
                    operations=s.operations,
                    ok=s.ok,
                    throttled=s.throttled,
                    unavailable=s.unavailable,
                    failed_requests=s.failed_requests,
                    cuts=s.cuts,
                )
                for s in self._lanes.values()
            },
        )

    # internals -------------------------------------------------------------------------
    def _capacity(self, lane: _LaneState) -> float:
        # Never smaller than the waiting request, or a big batch could never be afforded.
        return max(lane.rate * self.settings.local_burst_s, float(lane.head_need), 1.0)

    def _refill(self, lane: _LaneState, now: float) -> None:
        capacity = self._capacity(lane)
        lane.tokens = min(capacity, lane.tokens + (now - lane.refilled_at) * lane.rate)
        lane.refilled_at = now

    def _set_rate(self, lane: _LaneState, now: float, rate: float) -> None:
        self._refill(lane, now)
        lane.rate = min(self.settings.max_rate, max(self.settings.min_rate, rate))
        lane.tokens = min(lane.tokens, self._capacity(lane))
        lane.history.append((now, lane.rate))
        horizon = now - 2 * self.settings.lookback_s
        while len(lane.history) > 1 and lane.history[1][0] <= horizon:
            lane.history.popleft()

    async def _wait_for_capacity(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._capacity_waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._capacity_waiters:
                self._capacity_waiters.remove(waiter)

    def _on_shrink(self, slot: Slot, unused: int) -> None:
        lane = self._lanes[slot.lane]
        lane.tokens += unused
        lane.operations -= unused

    def _on_release(self, slot: Slot, *, reported: bool) -> None:
        lane = self._lanes[slot.lane]
        self._in_flight -= 1
        lane.in_flight -= 1
        if not reported:
            lane.failed_requests += 1
        waiters, self._capacity_waiters = self._capacity_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _on_report(self, slot: Slot, throttled: int, unavailable: int, retry_after: float | None) -> None:
        s = self.settings
        lane = self._lanes[slot.lane]
        now = self._clock()
        ok = slot.operations - throttled - unavailable
        lane.ok += ok
        lane.throttled += throttled
        lane.unavailable += unavailable
        # Every answered operation used the server's quota, throttled ones too.
        lane.sent_since_event += slot.operations

        if throttled:
            # Mirror the server's bucket: it is empty, and each throttled item still took
            # a token. Retry-After only promises one token back; this makes the first
            # batch after the pause also wait until the server can take all of it.
            self._refill(lane, now)
            lane.tokens = min(lane.tokens, 0.0) - throttled
        if throttled and retry_after is None:
            retry_after = s.default_retry_after_s
        if retry_after is not None and (throttled or unavailable):
            status = "throttled (429)" if throttled else "unavailable (503)"
            self.pause(retry_after, f"{status} on {slot.lane} requests: Retry-After {retry_after:g}s")

        # An exponentially weighted share of 503s over the lane's last ~N operations.
        decay = (1.0 - 1.0 / s.unavailable_memory_ops) ** slot.operations
        lane.unavailable_share = lane.unavailable_share * decay + (1 - decay) * (unavailable / slot.operations)
        congested = throttled > 0 or lane.unavailable_share >= s.unavailable_share_to_cut
        if congested:
            if slot.dispatched_at >= lane.last_cut_at:
                self._cut(lane, now, slot)
        elif ok:
            self._maybe_increase(lane, now)

    def _cut(self, lane: _LaneState, now: float, slot: Slot) -> None:
        s = self.settings
        throttled_rate = slot.rate_at_dispatch
        # The rate held a moment before the throttled request left: while the server's
        # burst allowance drained, the rate kept climbing, so the last rate overstates.
        held = min(throttled_rate, lane.rate_at(slot.dispatched_at - s.lookback_s))
        admitted: float | None = None
        if lane.event_at is not None and now - lane.event_at >= s.min_estimate_s:
            # The server's bucket was empty at the previous throttle and is empty now:
            # what we sent in between (pause included) is what it refilled, less what
            # overflowed while we ran below its limit. A lower bound of the limit.
            admitted = lane.sent_since_event / (now - lane.event_at)
        if lane.phase is LanePhase.STARTUP:
            new_rate = throttled_rate * s.first_cut
            if lane.first_sent_at is not None and now > lane.first_sent_at:
                # What got through since the start includes the server's burst allowance
                # and misses what overflowed while we ramped up; a rough but often close
                # figure when the ramp took a while (a fast overshoot at high limits).
                new_rate = min(new_rate, lane.sent_since_event / (now - lane.first_sent_at))
            lane.phase = LanePhase.RECOVERY
        elif admitted is None:
            # Throttled again right after a pause: the restart rate was far too high.
            new_rate = throttled_rate * s.repeat_cut
        else:
            # Restart a little above what got through (so the server's refilled burst
            # allowance is used, not wasted), or below the rate held before the throttle
            # if that says more (what got through understates the limit when we ran below it).
            new_rate = max(admitted * (1 + s.restart_bump), held * s.cut)
            lane.phase = LanePhase.STEADY
        new_rate = min(new_rate, throttled_rate * s.max_cut)
        self._set_rate(lane, now, new_rate)
        lane.estimated_limit = lane.rate
        lane.base_rate = lane.rate
        lane.probe_s = 0.0
        lane.last_cut_at = now
        lane.event_at = now
        lane.sent_since_event = 0
        lane.cuts += 1
        lane.unavailable_share = 0.0
        lane.window_start = now
        lane.bound_s = 0.0

    def _maybe_increase(self, lane: _LaneState, now: float) -> None:
        s = self.settings
        if now - lane.window_start < s.window_s:
            return
        lane.window_start = now
        # Grow only for the time the rate held callers back: a lane limited by
        # concurrency, by a pause or by a lack of work must not inflate its limit.
        bound, lane.bound_s = lane.bound_s, 0.0
        if bound <= 0:
            return
        if lane.phase is LanePhase.STARTUP:
            # Doubling slows as the rate grows: reaching a high limit fast matters less
            # than not overshooting it far while the server's burst allowance hides it.
            doublings = math.log2(max(lane.rate / s.initial_rate, 1.0))
            doubling_s = s.startup_doubling_s + s.startup_slowdown_s * doublings
            rate = lane.rate * 2 ** (bound / doubling_s)
        else:
            lane.probe_s += bound
            t = lane.probe_s
            if lane.phase is LanePhase.RECOVERY:
                rate = lane.base_rate * (1 + s.recovery_linear * t)
            else:
                rate = lane.base_rate * (1 + s.probe_linear * t + s.probe_quadratic * t * t)
        self._set_rate(lane, now, rate)
