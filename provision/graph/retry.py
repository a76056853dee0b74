"""The retry policy: which Graph failures are retried, how long to wait, when to give up.

One policy for every request the job makes (single calls, whole batches, and items of a
batch retried in a later batch), built from tenacity's strategies:

- retried: 429, 503, 504 and transport failures (connection refused/reset, timeouts);
  every other status is final (4xx are the caller's business: 404 is a row outcome, 409
  phoneNumberNotUnique needs a read-back, not a blind retry);
- a write whose outcome is unknown (transport failure after the request may have left)
  is NOT retried here: the caller must read back first (``idempotent=False``);
- the wait honours ``Retry-After`` (from the response or from the batch item's own
  headers); without one it backs off exponentially with jitter;
- attempts are capped, and an operation is abandoned rather than started after its
  deadline (measured from its first attempt on the injected clock).

``decide`` is the whole policy as a function, so a scheduler that re-batches items can
apply it per item; ``call`` runs one coroutine under it with injected clock and sleep.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, TypeVar

import tenacity
from tenacity import RetryCallState
from tenacity.stop import stop_after_attempt, stop_base, stop_before_delay
from tenacity.wait import wait_base, wait_exponential_jitter

from provision.errors import GraphError
from provision.graph.errors import TransportFailure

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 503, 504})


def is_transient(error: BaseException) -> bool:
    """A failure worth retrying as such (throttling, overload, no answer)."""
    if isinstance(error, TransportFailure):
        return True
    return isinstance(error, GraphError) and error.status in RETRY_STATUSES


class wait_retry_after(wait_base):
    """Wait what the server asked for (Retry-After); otherwise fall back to ``fallback``."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return float(self.fallback(retry_state))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry rules shared by the reader and the executor (defaults suit a real tenant)."""

    max_attempts: int = 10
    deadline_s: float = 900.0  # per operation, from its first attempt
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    jitter_s: float = 0.5
    _stop: stop_base = field(init=False, repr=False, compare=False)
    _wait: wait_base = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stop = stop_after_attempt(self.max_attempts) | stop_before_delay(self.deadline_s)
        wait = wait_retry_after(
            wait_exponential_jitter(multiplier=self.backoff_initial_s, max=self.backoff_max_s, jitter=self.jitter_s)
        )
        object.__setattr__(self, "_stop", stop)
        object.__setattr__(self, "_wait", wait)

    def decide(
        self, error: BaseException, *, attempt: int, started: float, now: float, idempotent: bool = True
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when ``error`` is final.

        ``attempt`` counts the attempts made so far (1 after the first failure);
        ``started``/``now`` are readings of the same clock.
        """
        if not is_transient(error):
            return None
        if not idempotent and isinstance(error, TransportFailure) and error.outcome_unknown:
            return None
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.start_time = started
        state.attempt_number = attempt
        future = tenacity.Future(attempt)
        future.set_exception(error)
        state.outcome = future
        state.outcome_timestamp = now
        state.upcoming_sleep = self._wait(state)
        if self._stop(state):
            return None
        return state.upcoming_sleep

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        idempotent: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """Run ``fn`` until it succeeds or the policy says stop (then its last error is raised)."""
        started = clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await fn()
            except GraphError as exc:
                wait = self.decide(exc, attempt=attempt, started=started, now=clock(), idempotent=idempotent)
                if wait is None:
                    raise
            await sleep(wait)


DEFAULT_RETRY_POLICY = RetryPolicy()
