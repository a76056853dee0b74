"""Progress reports of a run: what the CLI draws while the executor works (no phone numbers)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

from provision.graph.pacing import Pacer

__all__ = ["ProgressEvent", "ProgressMeter", "Tally"]

# Rates are measured over about this many seconds of the most recent reports.
_RATE_WINDOW_S = 10.0


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A progress report for the CLI to draw (no phone numbers)."""

    total: int
    done: int
    failed: int
    skipped: int
    in_flight: int  # changes sent or waiting for a read-back
    operations: int  # Graph operations sent so far in this process (reads included)
    operations_per_s: float  # over the last few seconds
    changes_per_s: float  # finished changes per second, over the last few seconds
    throttled: int  # operations answered 429 so far
    pause_reason: str | None  # why dispatch is paused right now (Retry-After), if it is
    eta_s: float | None
    elapsed_s: float
    finished: bool = False

    @property
    def finished_changes(self) -> int:
        return self.done + self.failed + self.skipped


@dataclass(slots=True)
class Tally:
    """The run's change counts, kept current as answers are journaled."""

    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped


class ProgressMeter:
    """Turns the run's counts and the pacer's figures into ``ProgressEvent`` values, at
    most one per ``interval_s`` (and a final one), with recent rates and an ETA."""

    def __init__(self, report: Callable[[ProgressEvent], None] | None, pacer: Pacer, interval_s: float, started_at: float) -> None:
        self.report = report
        self.pacer = pacer
        self.interval_s = interval_s
        self.started_at = started_at
        self._ops_base = pacer.snapshot().operations
        self._samples: deque[tuple[float, int, int]] = deque()  # (time, finished changes, operations)
        self._last = -1e18

    def emit(self, now: float, tally: Tally, in_flight: int, *, final: bool = False) -> None:
        """Report progress if an event is due; ``in_flight``: changes sent or being read back."""
        if self.report is None:
            return
        if not final and now - self._last < self.interval_s:
            return
        self._last = now
        c = tally
        snap = self.pacer.snapshot()
        finished = c.finished
        ops = snap.operations - self._ops_base  # dispatched by the pacer (not just queued)
        samples = self._samples
        samples.append((now, finished, ops))
        while len(samples) > 2 and now - samples[0][0] > _RATE_WINDOW_S:
            samples.popleft()
        t0, f0, o0 = samples[0]
        span = now - t0
        cps = (finished - f0) / span if span > 0 else 0.0
        ops_s = (ops - o0) / span if span > 0 else 0.0
        remaining = c.total - finished
        eta = remaining / cps if cps > 0 else (0.0 if remaining == 0 else None)
        self.report(
            ProgressEvent(
                total=c.total, done=c.done, failed=c.failed, skipped=c.skipped, in_flight=in_flight,
                operations=ops, operations_per_s=ops_s, changes_per_s=cps, throttled=snap.throttled,
                pause_reason=snap.pause_reason, eta_s=eta, elapsed_s=now - self.started_at, finished=final,
            )
        )
