"""The executor's tuning, and the one rule that sizes its write batches."""

from __future__ import annotations

from dataclasses import dataclass

from provision.graph.batch import MAX_BATCH_SIZE
from provision.graph.retry import DEFAULT_RETRY_POLICY, RetryPolicy

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
    """Read-backs of a create answered "already exists" before it counts as failed."""
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
    queued_batches: int = 3
    """Batches handed to the client that may wait for the pacer's permission at once."""
    journal_in_thread: bool = True
    """Commit journal transactions in a worker thread (the event loop keeps serving answers)."""

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_SIZE}")

    def write_batch_size(self, write_rate: float) -> int:
        """Operations in the next write batch while the pacer's write lane allows
        ``write_rate`` operations/s: ``batch_interval_s`` of it, between 1 and ``batch_size``."""
        if self.batch_interval_s <= 0:
            return self.batch_size
        return max(1, min(self.batch_size, int(write_rate * self.batch_interval_s)))
