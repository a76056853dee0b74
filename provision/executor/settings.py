"""The executor's tuning, and the one rule that sizes its write batches."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from provision.graph.batch import MAX_BATCH_SIZE
from provision.graph.pacing import Lane, PacerSnapshot
from provision.graph.retry import DEFAULT_RETRY_POLICY, RetryPolicy, unreachable_after_s

__all__ = ["ExecutorSettings"]


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """Tuning of one run. Defaults suit a real tenant; tests shrink the waits."""

    batch_size: int = MAX_BATCH_SIZE
    """Operations per batch at most (read-backs always; writes see ``batch_interval_s``)."""
    max_batches: int | None = None
    """Batches handed to the client at once (waiting for a pacing slot or an answer).
    Default: the pacer's ``max_in_flight`` + 2, so the pacer, not this, sets concurrency."""
    retry: RetryPolicy = DEFAULT_RETRY_POLICY
    settle_s: float = 2.0
    """Wait before reading back an uncertain write: Graph's replication lag can hide a
    write for a moment (realmjoin's runbook waits 5 s; the sandbox's graph-like lag is 1 s)."""
    exists_reads: int = 3
    """Reads of a user whose write was refused (400/409) while no phone of its type shows,
    before the refusal stands: a read can lag behind a write of ours that landed (a retried
    create Graph calls a duplicate). Waits ``settle_s`` doubling between them."""
    alternate_settle_s: float = 1.0
    """An alternateMobile create waits this long after its user's mobile was created."""
    alternate_lag_retries: int = 5
    alternate_backoff_s: float = 1.0
    """First wait after an alternateMobile create refused for want of a (just created)
    mobile; doubles per retry, at most 8 s."""
    verify: bool = False
    """Read back each user after its last change and record whether it matches the plan."""
    progress_interval_s: float = 0.5
    batch_interval_s: float = 0.25
    """Write batches shrink below ``batch_size`` when the pacer's write rate is low, to
    about this many seconds of it each (at 20 writes/s: 5 per batch, 4 batches/s), so one
    batch never spends a whole second of the tenant's budget at once: at 20 writes/s a
    batch of 20 needs the server's whole 1 s allowance, and latency jitter alone gets some
    of its items throttled (``bench/pacing_sim.py --batch-interval 0``). 0: always full."""
    unsettled_batch_interval_s: float = 0.03
    search_headroom: float = 1.2
    """...and to ``unsettled_batch_interval_s`` of it while the pacer is still searching for
    the limit (``LaneSnapshot.settled`` false), or to what lets the pacer's requests in
    flight carry ``search_headroom`` times the rate in one round trip, if more (at 210 ms
    and 8 in flight: 0.03 s): the server's burst allowance hides its limit until the rate
    is several times above it, and the first throttle costs about a batch and a half.
    1.2, not more: at a limit of 20-55/s with a 2 s allowance (20 s jobs) 1.5 let 3.2% of
    writes be throttled, 1.2 2.1%; 1.1 starts to hold a 400/s search back (0.967 of the
    limit in 20 s, against 0.977) (``bench/pacing_sim.py``)."""
    queued_batches: int = 3
    """Batches handed to the client that may wait for the pacer's permission at once."""
    journal_in_thread: bool = True
    """Commit journal transactions in a worker thread (the event loop keeps serving answers)."""
    unreachable_after_s: float = field(default_factory=unreachable_after_s)
    """The circuit breaker: when the target has answered nothing for this long while
    requests were waiting on it (connections refused or reset, requests timing out or never
    answered: the pacer's ``silence``), dispatch stops, requests still waiting are
    abandoned (their changes stay in flight, read back on resume) and the run ends
    ``UNREACHABLE``. No change is ever failed for want of an answer. Default 120 s, or the
    ``PROVISION_UNREACHABLE_AFTER_S`` environment variable (seconds). Each request is
    bounded too (``GraphClient.timeout_s``: 60 s, or ``PROVISION_REQUEST_TIMEOUT_S``), so a
    target that accepts connections and never answers is noticed within this bound."""

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_SIZE}")
        if self.unreachable_after_s <= 0:
            raise ValueError("unreachable_after_s must be positive")

    def write_batch_size(self, write_rate: float, *, settled: bool = True, round_trip_s: float | None = None,
                         max_in_flight: int = 1) -> int:
        """Operations in the next write batch while the pacer's write lane allows
        ``write_rate`` operations/s: ``batch_interval_s`` of it, between 1 and ``batch_size``.
        While the pacer is still searching for the limit (not ``settled``), less:
        ``unsettled_batch_interval_s``, or as much as ``max_in_flight`` requests need to carry
        ``search_headroom`` times the rate in one ``round_trip_s``, if more."""
        if self.batch_interval_s <= 0:
            return self.batch_size
        interval = self.batch_interval_s
        if not settled:
            carry = self.search_headroom * (round_trip_s or 0.0) / max(1, max_in_flight)
            interval = min(interval, max(self.unsettled_batch_interval_s, carry))
        return max(1, min(self.batch_size, math.ceil(write_rate * interval)))

    def write_batch_size_for(self, pacer: PacerSnapshot) -> int:
        """``write_batch_size`` for the pacer's write lane as ``pacer`` shows it."""
        lane = pacer.lanes[Lane.WRITE]
        return self.write_batch_size(lane.rate_limit, settled=lane.settled, round_trip_s=lane.round_trip_s,
                                     max_in_flight=pacer.max_in_flight)
