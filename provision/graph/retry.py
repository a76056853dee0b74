"""The retry policy: which Graph failures are retried, how long to wait, when to give up.

One classification of failures for every request the job makes (reads, whole batches,
and items of a batch retried in a later batch): ``classify(error)`` puts each failure in
one of three classes, by what it says about the request it answers:

- ``NOT_SENT``: certainly not applied, safe to send again: 429, 503, and transport
  failures before anything left (connection refused, connect or pool timeout);
- ``OUTCOME_UNKNOWN``: may have been applied: a connection reset or timeout after the
  request left, an item the batch answer left out, 500, 502, 504. A write must be read
  back before it is sent again (the executor does that); a read has no side effect;
- ``FINAL``: the server answered and refused; sending it again changes nothing (4xx are
  the caller's business: 404 is a row outcome, 409 phoneNumberNotUnique needs a
  read-back, not a blind retry).

The policy, built from tenacity's strategies, retries ``NOT_SENT`` and ``OUTCOME_UNKNOWN``
failures (``is_transient``), except 500 and 502: the server itself failed the request and
would fail it again; and a write whose outcome is unknown is never retried here
(``idempotent=False``): the caller reads back first. The wait honours ``Retry-After``
(from the response or from the batch item's own headers); without one it backs off
exponentially with jitter. Attempts are capped, and an operation is abandoned rather than
started after its deadline (measured from its first attempt on the injected clock).

``decide`` is the whole policy as a function, so a scheduler that re-batches items can
apply it per item; ``call`` runs one coroutine under it with injected clock and sleep.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Awaitable, Callable, TypeVar

import tenacity
from tenacity import RetryCallState
from tenacity.stop import stop_after_attempt, stop_base, stop_before_delay
from tenacity.wait import wait_base, wait_exponential_jitter

from provision.errors import GraphError
from provision.graph.errors import TransportFailure

T = TypeVar("T")


class RetryClass(StrEnum):
    """What a failure says about the request it answers (see the module docstring)."""

    NOT_SENT = "not_sent"
    OUTCOME_UNKNOWN = "outcome_unknown"
    FINAL = "final"


_NOT_SENT_STATUSES = frozenset({429, 503})
_OUTCOME_UNKNOWN_STATUSES = frozenset({500, 502, 504})
# The server failed these itself: it may have applied part of a write first, but the same
# request would fail the same way again.
_SERVER_FAILED_STATUSES = frozenset({500, 502})


def classify(error: BaseException) -> RetryClass:
    """The class of a failure: ``NOT_SENT``, ``OUTCOME_UNKNOWN`` or ``FINAL``."""
    if isinstance(error, TransportFailure):
        return RetryClass.OUTCOME_UNKNOWN if error.outcome_unknown else RetryClass.NOT_SENT
    if isinstance(error, GraphError):
        if error.status in _NOT_SENT_STATUSES:
            return RetryClass.NOT_SENT
        if error.status in _OUTCOME_UNKNOWN_STATUSES:
            return RetryClass.OUTCOME_UNKNOWN
    return RetryClass.FINAL


def is_transient(error: BaseException) -> bool:
    """A failure worth sending again (after a read-back, for a write whose outcome is unknown)."""
    retry_class = classify(error)
    if retry_class is RetryClass.NOT_SENT:
        return True
    return (
        retry_class is RetryClass.OUTCOME_UNKNOWN
        and isinstance(error, GraphError)
        and error.status not in _SERVER_FAILED_STATUSES
    )


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
    _retrying: tenacity.Retrying = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stop = stop_after_attempt(self.max_attempts) | stop_before_delay(self.deadline_s)
        wait = wait_retry_after(
            wait_exponential_jitter(multiplier=self.backoff_initial_s, max=self.backoff_max_s, jitter=self.jitter_s)
        )
        object.__setattr__(self, "_stop", stop)
        object.__setattr__(self, "_wait", wait)
        # The strategies only read the call state; this is the state's owner in tenacity's terms.
        object.__setattr__(self, "_retrying", tenacity.Retrying(stop=stop, wait=wait))

    def decide(
        self, error: BaseException, *, attempt: int, started: float, now: float, idempotent: bool = True
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when ``error`` is final.

        ``attempt`` counts the attempts made so far (1 after the first failure);
        ``started``/``now`` are readings of the same clock. ``idempotent=False`` (a write
        not yet read back): an ``OUTCOME_UNKNOWN`` failure is final here.
        """
        if not is_transient(error):
            return None
        if not idempotent and classify(error) is RetryClass.OUTCOME_UNKNOWN:
            return None
        state = RetryCallState(retry_object=self._retrying, fn=None, args=(), kwargs={})
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
