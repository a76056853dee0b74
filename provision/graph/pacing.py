"""Adaptive pacing: one controller that every in-flight Graph request goes through.

Graph never tells us its limit; it answers 429 (or 503) with ``Retry-After`` once we have
exceeded it, and keeps charging throttled requests against the quota. So the controller
discovers the limit and then stays just under it, with:

* one global pause: after any ``Retry-After`` nobody dispatches until it has passed;
* two lanes, ``read`` and ``write`` (Graph meters them separately), each with its own
  rate limit: a token bucket in operations/s, where a ``$batch`` of n items costs n;
* one cap on in-flight HTTP requests shared by both lanes.

A lane's rate goes through three phases (four against a window quota):

``startup``    no throttle yet: slow start, clocked by answers (as TCP's): each operation
               answered while the rate held callers back adds half of itself per round trip,
               so the rate grows 50% per round trip (per 0.2 s at most) whatever the limit,
               from a few items in the lane's bucket, not a burst. Write batches are small
               meanwhile (``ExecutorSettings.unsettled_batch_interval_s``): the server's
               burst allowance hides its limit until we are far above it, and the first
               throttle costs about a batch and a half;
``recovery``   after the first throttle: the limit R for which a server bucket holding 1.5 s
               of R (the middle of what we expect), full at our first request, would have
               run dry just then given what we sent (what got through per second would
               count the allowance, and miss what overflowed while we ramped up below R);
               after a long ramp (a high limit, concurrency binding) what got through
               outright. Then growing 15% a second until the next throttle;
``steady``     from the second throttle on, the lane knows what the server refilled
               between two throttles: its bucket was empty at both, so that is what we
               sent in between plus the debt the first left (throttled items still take
               tokens), counted by dispatch (the order the server saw), replayed against a
               bucket holding a second of the rate, so what overflowed while we ran below it
               counts too: its limit. It restarts at that and probes upwards, slowly at first
               and faster the longer nothing is throttled (as TCP CUBIC does).

After every throttle the server's bucket refills during the pause (up to its allowance:
at least a second of its rate): once the limit is measured (``steady``) the lane sends
that on top of its rate once the pause ends (less a tenth of a second of it, for the
estimate's error), or it would sit there unspent at the end of a short job. Not in
``recovery``: on top of a guessed rate that is too high, it brings the next throttle at once. A 20 s job can get at most (allowance + 20 s) of the
limit: every tenth of a second of it wasted costs 0.5%.

A long ``Retry-After`` (``long_retry_after_s``, 5 s, or more) says the server counts over a
window instead (a quota of N writes per W seconds, the shape of Graph's identity write
quota: 3,000 per 150 s per app and tenant), and the lane switches to that model for good:

``window``     the window is full now and reopens when the pause ends. The first time, what
               got through since our first request filled it: N = what got through (plus
               what was still on its way ahead of the throttled request, less what of it
               comes back throttled), and W = (end of the pause) - (first request), known
               only to within the Retry-After's rounding (whole seconds, up): the lane
               takes the middle of that second. It restarts at (N - room for one request)
               / W (any stretch of W can hold one request more than W's worth of an even
               rate), evenly from the comeback (items leave the window at the rate they
               entered it, so a burst would only refill it; the first time, holding what
               the ramp's first writes free by when its first request can go, even if the
               window reopened only as the pause ended), and holds that for the
               longest W could be. A throttle while it kept to it says W is longer: the
               lane goes to the longest W still possible (later Retry-Afters, against when
               our admitted writes left, narrow it) and sends no burst after the pause
               (the pause's gap reaches the window's far end a window later). A window held
               unthrottled says W is no longer: while more than ``window_search_s`` is left
               open the lane tries the middle of the shorter half, then probes as in
               ``steady``. It never restarts at a handful per second and never bursts into
               a window that has just been shown to be full.

A request throttled whole is answered at once, ahead of requests sent before it: when
one of those comes back throttled too, the server ran dry there, earlier than the cut
assumed, and the cut's figure (the ramp's, or the throttle-to-throttle one) is redone from
it, lowering the rate if it comes out lower.

Only requests dispatched after the last cut can cause another: the ones already in flight
when we cut are part of the same congestion event (TCP's once-per-round-trip rule), and
their answers' Retry-After counts from their dispatch (the server counted it from when it
checked them), so they don't stretch the pause while the server's bucket refills past
full. After a throttle, the lane's bucket copies the server's (empty, minus the throttled
items, minus what is still on its way), so the first request after the pause waits until
the server can take all of it.

Usage, one HTTP request (a ``$batch`` of up to 20 writes)::

    pacer = Pacer()                                  # one per run, shared by everything
    async with pacer.slot("write", len(batch)) as slot:
        response = await send_batch(batch)
        slot.report(response.status, throttled=n_items_429,
                    unavailable=n_items_503, retry_after=max_retry_after_s)

How many operations a request carries is the caller's choice: the executor sizes its
write batches to a fraction of a second of the write lane's rate, read from ``snapshot()``
(``provision.executor.settings.ExecutorSettings.write_batch_size``).

A slot released without a report (an exception, a timeout, a reset) counts as a failed
request and changes no rate. ``pacer.snapshot()`` gives progress events their figures.

Because every request goes through it, the pacer also knows how long the target has been
silent: ``pacer.silence()`` is the time since the target last answered anything while a
request was waiting on it (sent and unanswered, or failed without an answer). Time spent
pausing or pacing sends nothing and counts for nothing. The circuit breakers of the
executor and the state reader read it.
"""

from __future__ import annotations

import asyncio
import bisect
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
# Requests remembered since the last throttle, to replay against a model of the server's
# bucket at the next one; past this many the plain count (a lower bound) is used instead.
_CUT_LOG_MAX = 20_000
# The requests a window lane will send next are sized like those of the last second (the
# executor sizes its batches to the rate), not like the bigger ones of a faster past.
_RECENT_REQUESTS_S = 1.0
# Admitted writes remembered while no window is known: two of Graph's 150 s windows.
_WINDOW_MEMORY_S = 300.0


def _rate_run_dry(sends: list[tuple[float, int]], start: float | None, burst_s: float, low: float,
                  high: float) -> float:
    """The refill rate R for which a bucket holding ``burst_s`` of R, holding ``start``
    tokens at the first send (None: full), has nothing left after ``sends`` ((time,
    operations), in order). What is left grows with R: bisect between ``low`` and ``high``
    (``high`` if even that leaves it in debt)."""

    def left(rate: float) -> float:
        capacity = rate * burst_s
        tokens, last = (capacity if start is None else start), sends[0][0]
        for at, ops in sends:
            tokens = min(capacity, tokens + rate * (at - last)) - ops
            last = at
        return tokens

    high = max(high, low)
    if left(high) < 0:
        return high
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (mid, high) if left(mid) < 0 else (low, mid)
    return high


def _window_fits(admitted: list[tuple[float, int]], dispatched: float, answered: float, retry_after: float,
                 low: float, high: float, step: float = 0.005) -> tuple[float, float] | None:
    """The window lengths W in [``low``, ``high``] that agree with a throttle of a sliding
    window: full when it checked the request (between its dispatch and its answer), it
    reopens when its oldest admitted write leaves, W after that write arrived, and said so
    in whole seconds rounded up (``retry_after``). ``admitted``: (dispatch time, writes) of
    our admitted writes, in order; a write arrives no earlier than it left and no later
    than the throttled request's round trip after. None if no W agrees (someone else's
    writes share the window)."""
    times = [at for at, _ in admitted]
    late = answered - dispatched
    fits = []
    for i in range(int((high - low) / step) + 2):
        w = min(low + i * step, high)
        k = bisect.bisect_right(times, dispatched - w)
        if k < len(times) and dispatched + retry_after - 1 - late < times[k] + w <= answered + retry_after:
            fits.append(w)
    return (fits[0], fits[-1]) if fits else None


def _admitted_within(admitted: list[tuple[float, int]], since: float) -> int:
    return sum(ok for at, ok in admitted if at > since)


def _replay_credit(admitted: list[tuple[float, int]], since: float, rate: float, request: float, cap: float) -> float:
    """The most a lane coming back into a window that may reopen only as it comes back
    (its longest length) can hold at the comeback, at most ``cap``, and send at ``rate``
    in requests of ``request`` without ever having sent more than the window freed: what
    it admitted in the first x seconds after ``since`` ((dispatch time, writes), in order)
    has left x seconds after the comeback. The first request waits until the lane holds
    it, so the ramp's first small requests need not cover it alone."""
    steps: list[tuple[float, int]] = []  # (x, admitted up to and including x)
    total = 0
    for at, ok in admitted:
        if at >= since:
            total += ok
            steps.append((at - since, total))
    if not steps or rate <= 0:
        return 0.0

    def fits(credit: float) -> bool:
        first = max(0.0, (request - credit) / rate)  # when the first request can leave
        if steps[0][0] > first:
            return False  # the first request would leave before anything had
        for i, (x, count) in enumerate(steps):
            until = steps[i + 1][0] if i + 1 < len(steps) else math.inf
            if until <= first:
                continue
            if math.isinf(until):
                return True  # past the ramp the rate's own room keeps it under the count
            if count < credit + rate * max(first, until):
                return False
        return True

    low, high = 0.0, max(0.0, cap)
    if fits(high):
        return high
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


class Lane(StrEnum):
    """Which budget a request draws from (Graph meters reads and writes separately)."""

    READ = "read"
    WRITE = "write"


class LanePhase(StrEnum):
    STARTUP = "startup"
    RECOVERY = "recovery"
    STEADY = "steady"
    WINDOW = "window"


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """Tuning constants, chosen with ``bench/pacing_sim.py`` (virtual time, a token-bucket
    server that charges throttled items, 150-300 ms latency, write batches formed as the
    executor forms them): with these same values, over 20 s runs (5 seeds), the achieved
    write rate is >= 0.97 of a limit of 12, 20, 35, 55, 100, 150, 250 or 400 operations/s
    for a burst allowance of 1-2 s (0.974 at worst; 0.972 against the sandbox app itself,
    whose batches answer after their slowest item), and over 60 s runs >= 0.986, with <= 2.7% of
    operations throttled in 20 s (the first throttle at a limit of 12-55/s with a 2 s
    allowance, reached at 6-10 times the limit, costs a batch and a half of a few items;
    at 12/s that is up to 2% of a 20 s job) and <= 1.3% in 60 s. Against a sliding
    window (450/15 s, 1,500/60 s, 3,000/150 s, four windows long) they get >= 0.95 of its
    average rate (0.959 at worst, 0.952 against the sandbox) with <= 2.4% throttled. A
    20 s job against 450/15 s is one window and a third: its first throttle alone (the
    ramp is at ~800/s when the window fills: a 20-write batch and part of another) is
    4-6% of its writes, and the Retry-After's rounding delays its comeback by 0-1 s, up
    to 5% of its rate (0.94-0.99)."""

    initial_rate: float = 50.0
    """Operations/s per lane before anything is known; the lane starts with
    ``initial_burst_s`` of it in its bucket (a few items), not a burst: a limit of 12/s
    with a 1 s allowance has room for 12 items at the start."""
    initial_burst_s: float = 0.1
    min_rate: float = 0.5
    max_rate: float = 50_000.0
    max_in_flight: int = 8
    """HTTP requests in flight, both lanes together. 8 batches of 20 at 200-300 ms carry
    500-800 operations/s, more than any Graph quota for this API (a limit of 700/s is
    about what they carry at 210 ms: the cap, not the pacer, binds there)."""
    local_burst_s: float = 0.5
    """Our own bucket holds this many seconds of the rate (at least one request). Larger
    buckets burst into the server after a lull and get throttled."""
    startup_gain: float = 0.5
    startup_min_round_trip_s: float = 0.2
    """Before the first throttle (slow start, clocked by answers as TCP's is) each operation
    answered adds ``startup_gain`` / its round trip (at least ``startup_min_round_trip_s``)
    to the rate while the rate held callers back: +50% per round trip, whatever the limit,
    and never faster than that per 0.2 s. The server's burst allowance hides its limit
    until we are well above it (6-10x at a 1-2 s allowance), so the growth rate trades
    what overflows below a high limit against what the first throttle costs at a low one
    (batches are small meanwhile: ``ExecutorSettings.unsettled_batch_interval_s``)."""
    first_cut: float = 0.5
    """At the first throttle without a better figure (nothing got through yet), and at a
    repeated one before any throttle-to-throttle figure exists, the rate is halved."""
    long_ramp_s: float = 3.0
    """A first throttle this long after the first request restarts the lane at what got
    through since the start (the burst allowance, spread over that long, inflates the
    figure by a third of a second's worth of the limit at most)."""
    ramp_burst_s: float = 1.5
    """...and after a shorter one at the limit for which a server bucket holding this many
    seconds of it, full at our first request, would have run dry at the throttled request
    given what we sent (what got through per second would miss what overflowed while we
    ramped up below the limit). The middle of the 1-2 s allowances we expect: the next
    throttle, a throttle-to-throttle figure, corrects it either way."""
    assumed_burst_s: float = 1.0
    """The least allowance we expect, in seconds of the limit: the model of the server's
    bucket that the throttle-to-throttle figure replays what we sent against (what it
    refilled past that while we ran below its limit overflowed), and the most the lane
    expects the server to have stored during a pause."""
    spend_boost: float = 0.5
    spend_margin_s: float = 0.1
    """After a throttle the server's bucket refills while we pause; we send what it stored
    (as the lane's rate says, up to ``assumed_burst_s`` of it, less ``spend_margin_s`` of
    it) on top of the rate, at ``spend_boost`` times the rate, from the pause's end.
    Running at the rate alone would leave it there, unspent at the end of a short job."""
    recovery_spend: float = 0.0
    """...but only this share of it while the rate is the first throttle's guess
    (``recovery``): the guess assumes a 1.5 s allowance and is a third too high at 2 s,
    and a burst on top of a rate that is too high brings the next throttle within a round
    trip or two (at 12/s with a 2 s allowance, 20 s jobs: 3 items of a 255-item run that
    may lose 7). The cost, where the guess is low (12/s, 1 s allowance): 0.4-0.9% of the
    limit (``bench/pacing_sim.py``)."""
    restart_bump: float = 0.0
    """Later throttles restart the rate at (what the server refilled between the last two
    throttles, per second) * (1 + bump). The stored refill is spent separately (above),
    so no bump: a rate above the limit would bring the next throttle within seconds."""
    repeat_cut: float = 0.75
    """A throttle within ``min_estimate_s`` of the previous one (steady phase) cuts this much."""
    max_cut: float = 0.95
    """Every throttle lowers the rate to at most this times the rate that was throttled."""
    min_estimate_s: float = 1.0
    """Shortest interval between two throttles that yields an admitted-rate figure (a pause
    is at least 1 s: a throttle right after it still yields one)."""
    recovery_linear: float = 0.15
    """After the first throttle the rate grows by 15% of its restart value per second: a
    restart below the limit climbs back to it before the server's bucket, refilling
    meanwhile, overflows (and the next throttle measures the limit anyway)."""
    probe_linear: float = 0.0
    probe_quadratic: float = 0.00015
    """After later throttles it grows by restart * (linear * t + quadratic * t^2) after t
    seconds of rate-bound time: flat near the restart point, faster the longer nothing is
    throttled (+1.5% after 10 s, +13.5% after 30 s), so throttles are rare and cost one or
    two items each (bench/apply_throughput.py at 400/s)."""
    window_s: float = 0.1
    """Rate increases are applied at most this often."""
    long_retry_after_s: float = 5.0
    """A Retry-After at least this long says the server counts writes over a window (a
    quota of N per W seconds), not in a token bucket (whose Retry-After is the time one
    token, or the debt, takes to refill: a second or three). The lane then restarts at the
    rate the window admitted (see ``Pacer``), evenly, when the window reopens."""
    window_search_s: float = 0.2
    """Against a window quota, Retry-After (whole seconds, rounded up) says how long the
    window is to within a second; the lane starts from the middle of that and, while what
    is left open is wider than this, tries the middle of the shorter half after each
    window it went through unthrottled (a throttle puts it back at the longest). Each try
    risks a throttle (a second's pause at least) for half the width's worth of rate."""
    window_hold_margin_s: float = 1.0
    """A window estimate counts as held once the longest window it could be, plus this
    (the answer's round trip and the Retry-After's rounding), went by unthrottled."""
    window_first_room: float = 0.5
    """Sent evenly at r, any W of a window quota can still hold r * W plus one request (writes
    go several to a request), so the lane keeps room for the biggest request of the last W:
    the rate is (N - biggest) / W. After the first throttle, only this share of it: the
    requests that filled the window were sized for the ramp's rate, several times what
    the lane sends from now on (a throttle a window later says if it was not enough)."""
    """A window estimate counts as held once the longest window it could be, plus this
    (the answer's round trip and the Retry-After's rounding), went by unthrottled."""
    default_retry_after_s: float = 1.0
    """Pause after a 429 that carries no Retry-After."""
    unavailable_share_to_cut: float = 0.2
    unavailable_memory_ops: float = 50.0
    """503s are mostly transient faults (the faults profile injects 5% of them): they cut
    the rate only when about ``unavailable_share_to_cut`` of the lane's last
    ``unavailable_memory_ops`` operations failed with 503. A Retry-After on them pauses."""

    def __post_init__(self) -> None:
        if not (0 < self.min_rate <= self.initial_rate <= self.max_rate):
            raise ValueError("need 0 < min_rate <= initial_rate <= max_rate")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if not all(0 < f < 1 for f in (self.first_cut, self.repeat_cut, self.max_cut)):
            raise ValueError("cut factors must be in (0, 1)")


@dataclass(frozen=True, slots=True)
class LaneSnapshot:
    """One lane's state and counts: ``requests`` and ``operations`` dispatched; ``ok``,
    ``throttled`` (429) and ``unavailable`` (503) operations reported; requests released
    without a report (``failed_requests``); rate cuts made (``cuts``)."""

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
    round_trip_s: float | None = None
    """Smoothed time from dispatch to answer of requests that were not throttled whole."""

    @property
    def settled(self) -> bool:
        """Whether the lane's rate comes from a measured limit (a throttle-to-throttle
        figure or a window), not from a search for it."""
        return self.phase in (LanePhase.STEADY, LanePhase.WINDOW)


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
    base_rate: float = 0.0
    probe_s: float = 0.0
    last_cut_at: float = -math.inf
    resumed_at: float = -math.inf
    event_at: float | None = None
    first_sent_at: float | None = None
    head_need: int = 0
    sent_since_event: int = 0
    crossing_candidates: list[Slot] = field(default_factory=list)
    ramp_log: list[Slot] = field(default_factory=list)
    # The last cut's request and what its figure came from (``Pacer._recut``): the ramp
    # (``basis_ramp``) or the previous event's crossing candidates and log.
    cut_slot: Slot | None = None
    basis_ramp: bool = False
    basis_candidates: list[Slot] = field(default_factory=list)
    basis_log: list[Slot] = field(default_factory=list)
    basis_log_full: bool = False
    cut_log: list[Slot] = field(default_factory=list)
    cut_log_full: bool = False
    comeback_at: float | None = None
    ok_since_comeback: int = 0
    window_len: float | None = None
    window_low: float = 0.0
    window_high: float = 0.0
    window_count: float = 0.0
    window_room: float = 1.0
    window_counted: set[Slot] = field(default_factory=set)
    ok_log: deque[tuple[float, int]] = field(default_factory=deque)
    window_start: float = 0.0
    bound_s: float = 0.0
    spend: float = 0.0
    spend_fresh: bool = False
    last_bound_at: float = -math.inf
    last_full_at: float = -math.inf
    round_trip_s: float | None = None
    unavailable_share: float = 0.0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    live: set[Slot] = field(default_factory=set)
    in_flight: int = 0
    requests: int = 0
    operations: int = 0
    ok: int = 0
    throttled: int = 0
    unavailable: int = 0
    failed_requests: int = 0
    cuts: int = 0


class Slot:
    """Permission for one HTTP request carrying ``operations`` operations."""

    __slots__ = ("_pacer", "lane", "operations", "dispatched_at", "rate_at_dispatch", "sent_before",
                 "throttled_ops", "ok_ops", "_reported", "_released")

    def __init__(self, pacer: Pacer, lane: Lane, operations: int, dispatched_at: float, rate: float,
                 sent_before: int = 0) -> None:
        self._pacer = pacer
        self.lane = lane
        self.operations = operations
        self.dispatched_at = dispatched_at
        self.rate_at_dispatch = rate
        self.sent_before = sent_before
        """Operations the lane dispatched before this request (its place in the sequence)."""
        self.throttled_ops = 0
        self.ok_ops = 0
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
        self.throttled_ops = n_throttled
        self.ok_ops = self.operations - n_throttled - n_unavailable
        self._pacer._on_report(self, status, n_throttled, n_unavailable, retry_after)

    def release(self) -> None:
        """Free the in-flight place (idempotent). Unreported means failed: no rate change."""
        if self._released:
            return
        self._released = True
        self._pacer._on_release(self, reported=self._reported)


class _SlotContext:
    __slots__ = ("_pacer", "_lane", "_operations", "_slot")

    def __init__(self, pacer: Pacer, lane: Lane, operations: int) -> None:
        self._pacer = pacer
        self._lane = lane
        self._operations = operations
        self._slot: Slot | None = None

    async def __aenter__(self) -> Slot:
        self._slot = await self._pacer.acquire(self._lane, self._operations)
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
                tokens=max(s.initial_rate * s.initial_burst_s, 1.0),
                refilled_at=now,
                window_start=now,
            )
            for lane in Lane
        }
        self._in_flight = 0
        self._paused_until = -math.inf
        self._pause_reason: str | None = None
        self._capacity_waiters: list[asyncio.Future[None]] = []
        # Since when a request has been waiting on the target with no answer from it (None:
        # the last request sent was answered, or nothing was sent yet).
        self._silent_since: float | None = None

    # dispatch --------------------------------------------------------------------------
    def slot(self, kind: Lane | str = Lane.WRITE, operations: int = 1) -> _SlotContext:
        """``async with pacer.slot("write", 20) as slot:`` waits for permission to send."""
        return _SlotContext(self, Lane(kind), operations)

    async def acquire(self, kind: Lane | str = Lane.WRITE, operations: int = 1) -> Slot:
        """Wait until a request of ``operations`` operations may be sent; call
        ``slot.release()`` when its answer is in (``slot()`` does that for you)."""
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
            rate_bound = crowded = False
            while True:
                now = self._clock()
                if self._paused_until - now > _TIME_EPSILON:
                    await self._sleep(self._paused_until - now)
                    continue
                if self._in_flight >= self.settings.max_in_flight:
                    await self._wait_for_capacity()
                    crowded = True
                    continue
                lane.head_need = operations
                self._refill(lane, now)
                wait = (operations - lane.tokens) / self._fill_rate(lane)
                if wait > _TIME_EPSILON:
                    started = now
                    await self._sleep(wait)
                    lane.bound_s += self._clock() - started
                    rate_bound = True
                    continue
                lane.tokens -= operations
                lane.head_need = 0
                # This request waited for the rate (or for a place in flight): it left as
                # soon as the pacer allowed, and the answers to it say the rate held back.
                if rate_bound:
                    lane.last_bound_at = now
                if crowded:
                    lane.last_full_at = now
                if lane.first_sent_at is None:
                    lane.first_sent_at = now
                if lane.comeback_at is None:
                    lane.comeback_at = now
                self._in_flight += 1
                if self._silent_since is None:
                    self._silent_since = now
                lane.in_flight += 1
                lane.requests += 1
                slot = Slot(self, lane.lane, operations, now, lane.rate, lane.operations)
                lane.operations += operations
                lane.live.add(slot)
                if lane.phase is LanePhase.STARTUP and now - lane.first_sent_at < self.settings.long_ramp_s:
                    lane.ramp_log.append(slot)
                if lane.phase in (LanePhase.RECOVERY, LanePhase.STEADY) and not lane.cut_log_full:
                    lane.cut_log.append(slot)
                    lane.cut_log_full = len(lane.cut_log) > _CUT_LOG_MAX
                return slot
        finally:
            if lane.waiters and lane.waiters[0] is turn:
                lane.head_need = 0
                lane.waiters.popleft()
                if lane.waiters and not lane.waiters[0].done():
                    lane.waiters[0].set_result(None)
            else:
                lane.waiters.remove(turn)

    def pause(self, seconds: float, reason: str, *, since: float | None = None) -> None:
        """Stop all new dispatch for ``seconds`` from now (or ``since``; never shortens a pause)."""
        until = (self._clock() if since is None else since) + seconds
        if until <= self._paused_until:
            return
        self._paused_until = until
        self._pause_reason = reason

    def silence(self, now: float | None = None) -> float:
        """Seconds the target has been silent: since its last answer (or, when none has come
        since, since the first request sent after it) while requests were waiting on it or
        had failed without an answer. 0 once it answers with nothing else outstanding.

        A pause the target asked for (Retry-After) is not silence: it answered, and we
        are the ones waiting; the silence counts from the pause's end."""
        if self._silent_since is None:
            return 0.0
        since = max(self._silent_since, self._paused_until)
        return max(0.0, (self._clock() if now is None else now) - since)

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
                    round_trip_s=s.round_trip_s,
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
        gained = (now - lane.refilled_at) * lane.rate
        if lane.spend > 0:
            # What the server stored during the last pause goes out on top of the rate,
            # from the pause's end on, until it is spent.
            spending = max(0.0, now - max(lane.refilled_at, self._paused_until))
            extra = min(lane.spend, spending * lane.rate * self.settings.spend_boost)
            lane.spend -= extra
            gained += extra
        lane.tokens = min(capacity, lane.tokens + gained)
        lane.refilled_at = now

    def _fill_rate(self, lane: _LaneState) -> float:
        return lane.rate * (1 + self.settings.spend_boost) if lane.spend > 0 else lane.rate

    def _set_rate(self, lane: _LaneState, now: float, rate: float) -> None:
        self._refill(lane, now)
        lane.rate = min(self.settings.max_rate, max(self.settings.min_rate, rate))
        lane.tokens = min(lane.tokens, self._capacity(lane))

    async def _wait_for_capacity(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._capacity_waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._capacity_waiters:
                self._capacity_waiters.remove(waiter)

    def _on_release(self, slot: Slot, *, reported: bool) -> None:
        lane = self._lanes[slot.lane]
        self._in_flight -= 1
        lane.in_flight -= 1
        lane.live.discard(slot)
        lane.window_counted.discard(slot)
        if not reported:
            lane.failed_requests += 1
            if self._silent_since is None:  # no answer: the silence goes on (or starts)
                self._silent_since = self._clock()
        waiters, self._capacity_waiters = self._capacity_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _on_report(self, slot: Slot, status: int, throttled: int, unavailable: int, retry_after: float | None) -> None:
        s = self.settings
        lane = self._lanes[slot.lane]
        now = self._clock()
        # The target answered: silent only for the requests still waiting on it, from now.
        self._silent_since = now if self._in_flight > 1 else None
        ok = slot.operations - throttled - unavailable
        if ok:  # a request throttled whole is answered at once: not a round trip
            sample = now - slot.dispatched_at
            lane.round_trip_s = sample if lane.round_trip_s is None else 0.8 * lane.round_trip_s + 0.2 * sample
        lane.ok += ok
        lane.throttled += throttled
        lane.unavailable += unavailable
        # Every answered operation used the server's quota, throttled ones too.
        lane.sent_since_event += slot.operations
        if lane.comeback_at is not None and slot.dispatched_at >= lane.comeback_at:
            lane.ok_since_comeback += ok
        if ok:
            # Admitted writes of the last window (by when they left), to measure it; from
            # the start, before any window is known (the first fills it).
            lane.ok_log.append((slot.dispatched_at, ok))
            memory = 2 * lane.window_len if lane.window_len is not None else _WINDOW_MEMORY_S
            while lane.ok_log and lane.ok_log[0][0] < now - memory:
                lane.ok_log.popleft()

        if slot in lane.window_counted:
            self._uncount(lane, now, slot, throttled)
        if throttled and retry_after is None:
            retry_after = s.default_retry_after_s
        if retry_after is not None:
            what = "throttled (429)" if throttled else "unavailable (503)" if unavailable else f"answered {status}"
            # A request that left before the pause in force began belongs to the congestion
            # event that caused it: the server counted its Retry-After from when it checked
            # the request (on arrival), not from our reading of the answer a latency later.
            # Counted from the answer, each such answer would extend the pause while the
            # server's bucket refills past full.
            same_event = throttled > 0 and slot.dispatched_at <= lane.last_cut_at and self._paused_until > now
            since = slot.dispatched_at if same_event else None
            self.pause(retry_after, f"{what} on {slot.lane} requests: Retry-After {retry_after:g}s", since=since)

        # An exponentially weighted share of 503s over the lane's last ~N operations.
        decay = (1.0 - 1.0 / s.unavailable_memory_ops) ** slot.operations
        lane.unavailable_share = lane.unavailable_share * decay + (1 - decay) * (unavailable / slot.operations)
        congested = throttled > 0 or lane.unavailable_share >= s.unavailable_share_to_cut
        long_wait = throttled > 0 and (
            lane.window_len is not None or (retry_after is not None and retry_after >= s.long_retry_after_s))
        if congested:
            if slot.dispatched_at > lane.last_cut_at:
                if long_wait:
                    self._window_cut(lane, now, slot, retry_after or 0.0)
                else:
                    self._cut(lane, now, slot, retry_after or 0.0)
            elif throttled and not long_wait and lane.cut_slot is not None and (
                    slot.sent_before < lane.cut_slot.sent_before):
                self._recut(lane, now, slot)
        elif ok:
            self._maybe_increase(lane, now, slot, ok)
        if throttled and not long_wait:
            self._mirror_empty_server(lane, now, slot, throttled, retry_after or 0.0)

    def _mirror_empty_server(self, lane: _LaneState, now: float, slot: Slot, throttled: int, pause: float) -> None:
        # Retry-After only promises the server one token back, not room for a batch. So
        # our bucket copies the server's, at the lane's (just cut) rate: empty when it
        # checked this request (no earlier than its dispatch), minus its throttled items
        # (they still took tokens), minus what is still on its way there, plus what it
        # refills until the pause ends. The first request after the pause then waits
        # until the server can take it whole, and no longer: waiting longer would let the
        # server's bucket overflow.
        self._refill(lane, now)
        s = self.settings
        on_the_way = sum(o.operations for o in lane.live if o is not slot and o.dispatched_at > slot.dispatched_at)
        at_pause_end = lane.rate * (now + pause - slot.dispatched_at) - throttled - on_the_way
        lane.tokens = min(lane.tokens, at_pause_end - lane.rate * pause)
        # What the server stored beyond what our own bucket holds goes out on top of the
        # rate after the pause (``_refill``), less a margin for our estimate's error.
        stored = min(at_pause_end, lane.rate * s.assumed_burst_s) - s.spend_margin_s * lane.rate
        spend = max(0.0, stored - max(0.0, min(at_pause_end, self._capacity(lane))))
        if lane.phase is LanePhase.RECOVERY:
            spend *= s.recovery_spend
        # Answers of the same congestion event (still on their way at the cut) only lower it.
        lane.spend = spend if lane.spend_fresh else min(lane.spend, spend)
        lane.spend_fresh = False

    def _cut(self, lane: _LaneState, now: float, slot: Slot, retry_after: float) -> None:
        s = self.settings
        throttled_rate = slot.rate_at_dispatch
        admitted = self._throttle_to_throttle(lane.crossing_candidates, lane.cut_log, lane.cut_log_full, slot)
        lane.cut_slot = slot
        lane.basis_ramp = False
        lane.basis_candidates, lane.basis_log, lane.basis_log_full = [], [], False
        lane.spend_fresh = True
        lane.spend = 0.0
        if lane.phase is LanePhase.STARTUP:
            new_rate = throttled_rate * s.first_cut
            if lane.first_sent_at is not None and now > lane.first_sent_at:
                # What got through since the start is the limit plus the server's burst
                # allowance spread over the ramp, less what overflowed while we ramped up
                # below the limit: after a long ramp (a high limit, concurrency binding) a
                # close figure. After a short one the allowance dominates it: take it out.
                ramp_s = now - lane.first_sent_at
                got_through = lane.sent_since_event / ramp_s
                if ramp_s >= s.long_ramp_s:
                    new_rate = got_through
                else:
                    new_rate = min(got_through, self._ramp_estimate(lane.ramp_log, slot, throttled_rate))
                    lane.basis_ramp = True
                    lane.basis_log = lane.ramp_log
            lane.phase = LanePhase.RECOVERY
            lane.ramp_log = []
        elif admitted is None:
            # Throttled again right after a pause: the restart rate was too high (far too
            # high if no throttle-to-throttle figure was ever made).
            new_rate = throttled_rate * (s.repeat_cut if lane.phase is LanePhase.STEADY else s.first_cut)
        else:
            new_rate = admitted * (1 + s.restart_bump)
            lane.phase = LanePhase.STEADY
            lane.basis_candidates, lane.basis_log = lane.crossing_candidates, lane.cut_log
            lane.basis_log_full = lane.cut_log_full
        new_rate = min(new_rate, throttled_rate * s.max_cut)
        self._set_rate(lane, now, new_rate)
        lane.resumed_at = max(now, self._paused_until)
        lane.estimated_limit = lane.rate
        lane.base_rate = lane.rate
        lane.probe_s = 0.0
        lane.last_cut_at = now
        lane.event_at = now
        lane.sent_since_event = 0
        # Where the server's bucket ran dry this time: the throttled request or one sent
        # before it whose answer is still on its way (the next throttle tells which).
        lane.crossing_candidates = [o for o in lane.live if o.sent_before <= slot.sent_before]
        lane.cut_log = sorted(lane.live, key=lambda o: o.sent_before)
        lane.cut_log_full = False
        lane.cuts += 1
        lane.unavailable_share = 0.0
        lane.window_start = now
        lane.bound_s = 0.0

    def _recut(self, lane: _LaneState, now: float, slot: Slot) -> None:
        """An answer of the last congestion event, to a request sent before the one that
        caused the cut, came back throttled too: the server ran dry earlier than the cut
        assumed (a request throttled whole is answered at once, ahead of the slower answers
        of requests sent before it), so less got through before it. Redo the cut's figure
        from this request; lower the rate if it comes out lower."""
        if lane.basis_ramp:
            figure: float | None = self._ramp_estimate(lane.basis_log, slot, lane.rate)
        elif lane.basis_log:
            figure = self._throttle_to_throttle(lane.basis_candidates, lane.basis_log, lane.basis_log_full, slot)
        else:
            return
        if figure is None or figure >= lane.rate:
            return
        self._set_rate(lane, now, figure)
        lane.estimated_limit = lane.base_rate = lane.rate

    def _ramp_estimate(self, ramp_log: list[Slot], slot: Slot, ceiling: float) -> float:
        """The limit R for which a server bucket holding ``ramp_burst_s`` of R, full at
        our first request, would have run dry exactly at ``slot`` given what we sent: unlike
        what got through per second, this counts what overflowed while we ramped up below R."""
        before = [o for o in ramp_log if o.sent_before < slot.sent_before]
        if not (slot.ok_ops or any(o.ok_ops or not o._reported for o in before)):
            return ceiling  # throttled before anything got through: its bucket was not full
        sends = [(o.dispatched_at, o.operations) for o in before]
        sends.append((slot.dispatched_at, slot.ok_ops))
        return _rate_run_dry(sends, None, self.settings.ramp_burst_s, self.settings.min_rate, ceiling)

    def _throttle_to_throttle(self, candidates: list[Slot], cut_log: list[Slot], cut_log_full: bool,
                              slot: Slot) -> float | None:
        """What the server refilled per second between the previous throttle and this one
        (None if that span is too short to say): its bucket was empty at both, so it refilled
        what we sent in between, plus the debt the previous one left (its throttled items
        still took tokens), plus what overflowed while it was full (we ran below its limit,
        or paused longer than it holds): the rate for which a bucket holding
        ``assumed_burst_s`` of it, in that debt at the first, runs dry at the second given
        what we sent. Counted by dispatch, not by answer: an answer's latency moves it across
        an event, not the server's bucket. (If a request sent just before this one, still
        unanswered, ran it dry, the figure counts that request too, a batch or so high,
        until its answer comes: ``_recut``.)"""
        throttled = [o for o in candidates if o.throttled_ops]
        if not throttled:
            return None
        dry = min(throttled, key=lambda o: o.sent_before)  # the first request it throttled
        span = slot.dispatched_at - dry.dispatched_at
        if span < self.settings.min_estimate_s:
            return None
        between = slot.sent_before - dry.sent_before - dry.operations
        floor = (dry.throttled_ops + between + slot.ok_ops) / span
        if cut_log_full:
            return floor
        sends = [(dry.dispatched_at, 0)]
        sends += [(o.dispatched_at, o.operations) for o in cut_log
                  if dry.sent_before < o.sent_before < slot.sent_before]
        sends.append((slot.dispatched_at, slot.ok_ops))
        return _rate_run_dry(sends, -dry.throttled_ops, self.settings.assumed_burst_s, floor, 2 * slot.rate_at_dispatch)

    def _window_cut(self, lane: _LaneState, now: float, slot: Slot, retry_after: float) -> None:
        # The server counts over a window: full now, it admits again when the pause ends.
        # Retry-After is whole seconds, rounded up: the window reopens half a second
        # earlier on average; 1 s is the least a server says, and a window just full at
        # the edge of its rate reopens about as it answers.
        comeback = now + retry_after
        reopens = comeback - (0.5 if retry_after > 1 else retry_after)
        first = lane.window_len is None
        # Requests that left before the throttled one reached the window before it: count
        # them as admitted, though their answers (slower than a 429's) are still on the way
        # (``_uncount`` takes out what they bring back throttled).
        if first:
            # The first time: what got through since our first request (or the comeback
            # before it) fills the window, and its oldest item leaves as it reopens: W is
            # known to within the Retry-After's rounding (a second), and the rate is taken
            # from the middle of that (a short job lives off the first window).
            since = lane.comeback_at if lane.comeback_at is not None else slot.dispatched_at
            counted = {o for o in lane.live if o.dispatched_at >= since and o.sent_before < slot.sent_before}
            in_window = lane.ok_since_comeback + sum(o.operations for o in counted)
            if in_window == 0:
                # Full before we sent anything (another run of the same app, say): nothing
                # says at what rate it admits. Wait, and measure from the comeback instead.
                lane.comeback_at = comeback
                lane.ok_since_comeback = 0
                lane.last_cut_at = now
                return
            floor = self.settings.long_retry_after_s
            late = now - slot.dispatched_at
            window_len = max(reopens - since, floor)
            lane.window_low = max(slot.dispatched_at + retry_after - 1 - late - since, floor)
            lane.window_high = max(comeback - since, floor)
        else:
            # Later: the window was full when it checked this request. Its Retry-After,
            # against when our admitted writes left, narrows W; the count of what got
            # through over the shortest and the longest W bounds what it holds. The rate
            # comes from the longest W: the side that does not throttle again.
            counted = {o for o in lane.live if o.sent_before < slot.sent_before}
            admitted = sorted([*lane.ok_log, *((o.dispatched_at, o.operations) for o in counted)])
            fits = _window_fits(admitted, slot.dispatched_at, now, retry_after, lane.window_low, lane.window_high)
            if fits is not None:
                lane.window_low, lane.window_high = fits
            held = lane.window_len or lane.window_high
            if held < lane.window_high:  # the window is longer than the one we kept to
                lane.window_low = max(lane.window_low, held)
            least = _admitted_within(admitted, slot.dispatched_at - lane.window_low)
            most = _admitted_within(admitted, slot.dispatched_at - lane.window_high)
            in_window = int(min(max(lane.window_count, least), most))
            window_len = lane.window_high
            since = slot.dispatched_at - window_len
        lane.window_count = in_window
        lane.window_counted = counted
        lane.window_len = window_len
        lane.ramp_log.clear()
        lane.window_room = self.settings.window_first_room if first else 1.0
        admitted_rate = self._window_rate(lane, slot.dispatched_at, in_window, window_len, lane.window_room)
        self._set_rate(lane, now, min(admitted_rate, slot.rate_at_dispatch))
        # Evenly from the comeback on: items leave the window at the rate they entered it,
        # so a burst would only refill it. The one exception is what it freed between
        # reopening and our comeback (the Retry-After's rounding)...
        freed = 0.0
        if first:
            # ...of which, the first time, only our first request is sure to have left at
            # the comeback: the window may reopen as late as that, and slow start sent
            # little at first. But our first request after it waits until the lane holds
            # it (it is sized like those of the last second), and by then more of the
            # ramp has left: the lane holds what keeps it, from then on, within what the
            # window frees even at its longest. (Later, the pause left a gap in what we
            # sent, and the window frees it a window later: a burst now would fill it
            # again just then.)
            cap = lane.rate * (comeback - reopens)
            freed = min(cap, sum(ok for at, ok in lane.ok_log if at <= since))
            biggest = max([ok for at, ok in lane.ok_log if at > slot.dispatched_at - _RECENT_REQUESTS_S]
                          + [o.operations for o in lane.live], default=0)
            admitted = sorted([*lane.ok_log, *((o.dispatched_at, o.operations) for o in counted)])
            freed = max(freed, _replay_credit(admitted, since, lane.rate, biggest, cap))
        lane.tokens = min(lane.tokens, 0.0) - lane.rate * (comeback - now) + freed
        # Answers still on their way belong to the window that just filled.
        lane.sent_since_event = -sum(o.operations for o in lane.live if o is not slot)
        lane.phase = LanePhase.WINDOW
        lane.spend = 0.0
        lane.comeback_at = comeback
        lane.ok_since_comeback = 0
        lane.resumed_at = comeback
        lane.estimated_limit = lane.rate
        lane.base_rate = lane.rate
        # Sending that rate evenly keeps a window of that size just full: probe only after
        # a whole window of it went through unthrottled.
        lane.probe_s = -self._hold_s(lane)
        lane.last_cut_at = now
        lane.event_at = comeback
        lane.cuts += 1
        lane.unavailable_share = 0.0
        lane.window_start = now
        lane.bound_s = 0.0

    def _window_rate(self, lane: _LaneState, now: float, count: float, length: float, room: float = 1.0) -> float:
        # Writes go in requests of several: any stretch of W can hold one request more
        # than W's worth of the rate. Keep room for ``room`` times the biggest of late.
        biggest = max([ok for at, ok in lane.ok_log if at > now - _RECENT_REQUESTS_S] + [o.operations for o in lane.live],
                      default=0)
        return max(count - room * biggest, 1.0) / length

    def _uncount(self, lane: _LaneState, now: float, slot: Slot, throttled: int) -> None:
        """A request the last window cut counted as admitted came back with ``throttled``
        items: the window held that many fewer, and admits that much less per second."""
        lane.window_counted.discard(slot)
        if not throttled or lane.window_len is None or lane.phase is not LanePhase.WINDOW:
            return
        lane.window_count -= throttled
        rate = self._window_rate(lane, slot.dispatched_at, lane.window_count, lane.window_len, lane.window_room)
        if rate >= lane.rate:
            return
        old = lane.rate
        self._set_rate(lane, now, rate)
        # The lane's bucket was set to be just full at the comeback at the old rate: keep
        # that moment, or the lower rate would push our comeback later.
        lane.tokens += (old - lane.rate) * max(0.0, self._paused_until - now)
        lane.estimated_limit = lane.base_rate = lane.rate

    def _maybe_increase(self, lane: _LaneState, now: float, slot: Slot, ok: int) -> None:
        s = self.settings
        if lane.phase is LanePhase.STARTUP:
            # Slow start, clocked by answers: what came back in one round trip, times the
            # gain, is added per round trip, so the rate grows by the same factor per round
            # trip whatever the limit, and not at all before answers come.
            rtt = max(now - slot.dispatched_at, s.startup_min_round_trip_s)
            # Held back by the rate, or by concurrency while requests are small (the
            # executor sizes them to the rate: more rate, bigger ones), but not once they
            # are big enough for the requests in flight to carry twice the rate: a lane
            # limited by concurrency or a lack of work must not inflate its limit.
            crowded = lane.last_full_at >= slot.dispatched_at and (
                lane.rate < 2 * s.max_in_flight * slot.operations / rtt)
            if lane.last_bound_at >= slot.dispatched_at or crowded:
                self._set_rate(lane, now, lane.rate + s.startup_gain * ok / rtt)
            return
        if now - lane.window_start < s.window_s:
            return
        lane.window_start = now
        # Grow only for the time the rate held callers back: a lane limited by
        # concurrency, by a pause or by a lack of work must not inflate its limit.
        bound, lane.bound_s = lane.bound_s, 0.0
        if bound <= 0:
            return
        if lane.phase is LanePhase.WINDOW and lane.probe_s < 0 <= lane.probe_s + bound:
            self._window_held(lane, now)
            return
        lane.probe_s += bound
        t = max(lane.probe_s, 0.0)
        if lane.phase is LanePhase.RECOVERY:
            rate = lane.base_rate * (1 + s.recovery_linear * t)
        else:
            rate = lane.base_rate * (1 + s.probe_linear * t + s.probe_quadratic * t * t)
        self._set_rate(lane, now, rate)

    def _hold_s(self, lane: _LaneState) -> float:
        # A window too full shows when its longest possible length has passed since the
        # comeback, and the answer saying so takes a round trip and a second's rounding.
        return lane.window_high + self.settings.window_hold_margin_s

    def _window_held(self, lane: _LaneState, now: float) -> None:
        """A whole window went through at the lane's estimate, unthrottled: the window is no
        longer than the estimate. While what the Retry-After's rounding left open is wide,
        try the middle of what remains for the next window (a throttle puts the estimate
        back at its longest); then probe as in ``steady``."""
        assert lane.window_len is not None
        lane.probe_s = 0.0
        if lane.window_high - lane.window_low > self.settings.window_search_s:
            lane.window_high = lane.window_len
            lane.window_len = (lane.window_low + lane.window_high) / 2
            lane.probe_s = -self._hold_s(lane)
        lane.window_room = 1.0
        rate = self._window_rate(lane, now, lane.window_count, lane.window_len)
        if rate > lane.rate:
            self._set_rate(lane, now, rate)
            lane.base_rate = lane.estimated_limit = lane.rate
