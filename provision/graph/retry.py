"""The retry policy: which Graph failures are retried, how long to wait, when to give up.

One classification of failures for every request the job makes (reads, whole batches,
and items of a batch retried in a later batch): ``classify(error)`` puts each failure in
one of three classes, by what it says about the request it answers:

- ``NOT_SENT``: certainly not applied, safe to send again: 429, 503, and transport
  failures before anything left (connection refused, connect or pool timeout);
- ``OUTCOME_UNKNOWN``: may have been applied: a connection reset or timeout after the
  request left, an item the batch answer left out, an item answered 500, 502 or 504, and
  every item of a ``$batch`` whose envelope was answered 5xx (``BatchEnvelopeError``:
  Graph's documentation says nothing of which items ran before it failed). A write must
  be read back before it is sent again (the executor does that); a read has no side effect;
- ``FINAL``: the server answered and refused; sending it again changes nothing (4xx are
  the caller's business: the executor reads a refused write's user back to judge it).

The policy, built from tenacity's strategies, retries ``NOT_SENT`` and ``OUTCOME_UNKNOWN``
failures (``is_transient``), 500 and 502 included: a read is safe to send again, and a
write is only sent again once a read-back showed it did not land. A write whose outcome is
unknown is never retried here (``idempotent=False``): the caller reads back first. The
wait honours ``Retry-After`` (from the response or from the batch item's own headers);
without one it backs off exponentially with jitter. Attempts are capped, and an operation
is abandoned rather than started after its deadline (measured from its first attempt on
the injected clock), with one exception: a request that could not reach the target at
all while the target is silent (``target_silent``) is never given up on here, because
giving up would turn an outage into failed rows; the circuit breaker
(``unreachable_after_s``, measured by the pacer's ``silence``) ends the run instead.

``decide`` is the whole policy as a function, so a scheduler that re-batches items can
apply it per item; ``call`` runs one coroutine under it with injected clock and sleep.
``unreachable_after_s`` is the breaker's bound (``PROVISION_UNREACHABLE_AFTER_S``
overrides its default), ``request_timeout_s`` the bound on one HTTP request
(``PROVISION_REQUEST_TIMEOUT_S``).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Awaitable, Callable, Mapping, TypeVar

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

DEFAULT_UNREACHABLE_AFTER_S = 120.0
"""The circuit breaker's default bound: two minutes without any answer from the target."""
DEFAULT_REQUEST_TIMEOUT_S = 60.0
"""The default bound on one HTTP request, from sending it to the last byte of its answer."""
UNREACHABLE_AFTER_ENV = "PROVISION_UNREACHABLE_AFTER_S"
REQUEST_TIMEOUT_ENV = "PROVISION_REQUEST_TIMEOUT_S"


class BatchEnvelopeError(GraphError):
    """What each item of a ``$batch`` carries when the whole request was answered 5xx.

    The envelope's status, code and message, but the item's outcome is unknown: Graph may
    have run some items before the envelope failed (``classify``: ``OUTCOME_UNKNOWN``,
    whatever the status).
    """


def classify(error: BaseException) -> RetryClass:
    """The class of a failure: ``NOT_SENT``, ``OUTCOME_UNKNOWN`` or ``FINAL``."""
    if isinstance(error, TransportFailure):
        return RetryClass.OUTCOME_UNKNOWN if error.outcome_unknown else RetryClass.NOT_SENT
    if isinstance(error, BatchEnvelopeError):
        return RetryClass.OUTCOME_UNKNOWN
    if isinstance(error, GraphError):
        if error.status in _NOT_SENT_STATUSES:
            return RetryClass.NOT_SENT
        if error.status in _OUTCOME_UNKNOWN_STATUSES:
            return RetryClass.OUTCOME_UNKNOWN
    return RetryClass.FINAL


def is_transient(error: BaseException) -> bool:
    """A failure worth sending again (after a read-back, for a write whose outcome is unknown)."""
    return classify(error) is not RetryClass.FINAL


def unreached(error: BaseException) -> bool:
    """No HTTP answer came back at all (refused, reset, timed out): the target may be down."""
    return isinstance(error, TransportFailure)


def seconds_from_env(name: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    """A positive number of seconds from the environment variable ``name``, else ``default``.

    A value that isn't a positive number is ignored (a typo must not switch a bound off).
    """
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def breaker_alarm(silence: float, bound: float) -> float | None:
    """Seconds until a circuit breaker of bound ``bound`` opens, once the target has been
    silent for half of it; None before (every request is silent for its round trip, and
    answers wake the caller: only a long silence needs a wake-up of its own).

    Half, not sooner: a loop on a fake clock whose sleep returns at once would otherwise
    race its clock past a request still being answered in the same process."""
    if silence < bound / 2:
        return None
    return max(0.0, bound - silence)


def unreachable_after_s() -> float:
    """The circuit breaker's bound: ``PROVISION_UNREACHABLE_AFTER_S``, else 120 s."""
    return seconds_from_env(UNREACHABLE_AFTER_ENV, DEFAULT_UNREACHABLE_AFTER_S)


def request_timeout_s() -> float:
    """The bound on one HTTP request: ``PROVISION_REQUEST_TIMEOUT_S``, else 60 s."""
    return seconds_from_env(REQUEST_TIMEOUT_ENV, DEFAULT_REQUEST_TIMEOUT_S)


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
        self, error: BaseException, *, attempt: int, started: float, now: float, idempotent: bool = True,
        target_silent: bool = False,
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when ``error`` is final.

        ``attempt`` counts the attempts made so far (1 after the first failure);
        ``started``/``now`` are readings of the same clock. ``idempotent=False`` (a write
        not yet read back): an ``OUTCOME_UNKNOWN`` failure is final here.
        ``target_silent``: the target has not answered anything since before this attempt;
        a request that got no answer at all is then retried past the caps, at the longest
        backoff (the circuit breaker, not the attempt cap, ends an outage).
        """
        if not is_transient(error):
            return None
        if not idempotent and classify(error) is RetryClass.OUTCOME_UNKNOWN:
            return None
        wait = self._decide(error, attempt=attempt, started=started, now=now)
        if wait is None and target_silent and unreached(error):
            return self.backoff_max_s
        return wait

    def _decide(self, error: BaseException, *, attempt: int, started: float, now: float) -> float | None:
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
