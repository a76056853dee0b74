"""The retry policy: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import asyncio

import pytest
from support.clock import FakeClock

from provision.errors import AuthError, GraphError
from provision.graph.errors import TransportFailure
from provision.graph.retry import (
    BatchEnvelopeError,
    RetryClass,
    RetryPolicy,
    breaker_alarm,
    classify,
    seconds_from_env,
)

POLICY = RetryPolicy(max_attempts=4, deadline_s=100.0, backoff_initial_s=1.0, backoff_max_s=8.0, jitter_s=0.0)


# 500 and 502 are retried since this issue: a read is safe to send again, and a write is only
# sent again after a read-back (it was final before).
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_retried(status: int) -> None:
    assert POLICY.decide(GraphError(status, "x", "m"), attempt=1, started=0.0, now=0.0) == 1.0


@pytest.mark.parametrize("status", [400, 404, 409, 412, 424])
def test_other_statuses_final(status: int) -> None:
    assert POLICY.decide(GraphError(status, "x", "m"), attempt=1, started=0.0, now=0.0) is None
    assert POLICY.decide(AuthError(403, "x", "m"), attempt=1, started=0.0, now=0.0) is None


def test_retry_after_honoured_and_backoff_grows_capped() -> None:
    assert POLICY.decide(GraphError(429, "x", "m", retry_after=13.0), attempt=1, started=0.0, now=0.0) == 13.0
    waits = [POLICY.decide(GraphError(503, "x", "m"), attempt=n, started=0.0, now=0.0) for n in (1, 2, 3)]
    assert waits == [1.0, 2.0, 4.0]
    assert RetryPolicy(max_attempts=20, backoff_initial_s=1.0, backoff_max_s=8.0, jitter_s=0.0).decide(
        GraphError(503, "x", "m"), attempt=10, started=0.0, now=0.0) == 8.0


def test_attempts_and_deadline_cap() -> None:
    assert POLICY.decide(GraphError(503, "x", "m"), attempt=4, started=0.0, now=0.0) is None
    # a wait that would end past the deadline is not started
    assert POLICY.decide(GraphError(429, "x", "m", retry_after=30.0), attempt=1, started=0.0, now=80.0) is None
    assert POLICY.decide(GraphError(429, "x", "m", retry_after=30.0), attempt=1, started=0.0, now=60.0) == 30.0


def test_unknown_outcome_writes_are_not_retried_blindly() -> None:
    reset = TransportFailure("RemoteProtocolError", outcome_unknown=True)
    refused = TransportFailure("ConnectError", outcome_unknown=False)
    assert POLICY.decide(reset, attempt=1, started=0.0, now=0.0) == 1.0
    assert POLICY.decide(reset, attempt=1, started=0.0, now=0.0, idempotent=False) is None
    assert POLICY.decide(refused, attempt=1, started=0.0, now=0.0, idempotent=False) == 1.0


@pytest.mark.parametrize(
    ("error", "retry_class"),
    [
        (GraphError(429, "x", "m"), RetryClass.NOT_SENT),
        (GraphError(503, "x", "m"), RetryClass.NOT_SENT),
        (TransportFailure("ConnectError", outcome_unknown=False), RetryClass.NOT_SENT),
        (TransportFailure("ReadTimeout", outcome_unknown=True), RetryClass.OUTCOME_UNKNOWN),
        (GraphError(500, "x", "m"), RetryClass.OUTCOME_UNKNOWN),
        (GraphError(502, "x", "m"), RetryClass.OUTCOME_UNKNOWN),
        (GraphError(504, "x", "m"), RetryClass.OUTCOME_UNKNOWN),
        (BatchEnvelopeError(503, "x", "m"), RetryClass.OUTCOME_UNKNOWN),  # items of a failed $batch
        (BatchEnvelopeError(500, "x", "m"), RetryClass.OUTCOME_UNKNOWN),
        (GraphError(400, "x", "m"), RetryClass.FINAL),
        (GraphError(404, "x", "m"), RetryClass.FINAL),
        (GraphError(409, "phoneNumberNotUnique", "m"), RetryClass.FINAL),
        (AuthError(401, "x", "m"), RetryClass.FINAL),
        (AuthError(0, "insecureTarget", "m"), RetryClass.FINAL),
        (ValueError("not a Graph failure"), RetryClass.FINAL),
    ],
)
def test_one_classification_of_failures(error: BaseException, retry_class: RetryClass) -> None:
    assert classify(error) is retry_class


def test_an_unknown_outcome_is_read_again_but_a_write_is_read_back_first() -> None:
    timeout = GraphError(504, "GatewayTimeout", "m")
    assert POLICY.decide(timeout, attempt=1, started=0.0, now=0.0) == 1.0
    assert POLICY.decide(timeout, attempt=1, started=0.0, now=0.0, idempotent=False) is None
    # A read answered 500/502 is read again; a write answered so is read back first.
    assert POLICY.decide(GraphError(502, "x", "m"), attempt=1, started=0.0, now=0.0) == 1.0
    assert POLICY.decide(GraphError(500, "x", "m"), attempt=1, started=0.0, now=0.0, idempotent=False) is None
    envelope = BatchEnvelopeError(503, "serviceUnavailable", "m")
    assert POLICY.decide(envelope, attempt=1, started=0.0, now=0.0, idempotent=False) is None


def test_an_unanswered_request_is_not_given_up_while_the_target_is_silent() -> None:
    refused = TransportFailure("ConnectError", outcome_unknown=False)
    past_caps = {"attempt": 4, "started": 0.0, "now": 0.0}
    assert POLICY.decide(refused, **past_caps) is None
    assert POLICY.decide(refused, **past_caps, target_silent=True) == POLICY.backoff_max_s
    assert POLICY.decide(refused, attempt=1, started=0.0, now=500.0, target_silent=True) == POLICY.backoff_max_s
    # Only requests that got no answer: an answered refusal is final whatever the silence.
    assert POLICY.decide(GraphError(503, "x", "m"), **past_caps, target_silent=True) is None
    assert POLICY.decide(GraphError(400, "x", "m"), attempt=1, started=0.0, now=0.0, target_silent=True) is None


def test_the_breaker_wakes_its_caller_only_after_half_its_bound() -> None:
    assert breaker_alarm(0.0, 120.0) is None
    assert breaker_alarm(59.0, 120.0) is None
    assert breaker_alarm(60.0, 120.0) == 60.0
    assert breaker_alarm(130.0, 120.0) == 0.0


def test_bounds_from_the_environment_must_be_positive_numbers() -> None:
    assert seconds_from_env("X", 120.0, {"X": "7.5"}) == 7.5
    assert seconds_from_env("X", 120.0, {}) == 120.0
    for typo in ("", "0", "-3", "two minutes"):
        assert seconds_from_env("X", 120.0, {"X": typo}) == 120.0


def test_call_retries_with_injected_clock_and_sleep() -> None:
    clock = FakeClock(0.0)
    answers = [GraphError(429, "TooManyRequests", "m", retry_after=3.0), GraphError(503, "x", "m"), "done"]

    async def fn() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert asyncio.run(POLICY.call(fn, clock=clock, sleep=clock.sleep)) == "done"
    assert clock.slept == [3.0, 2.0]

    async def always_404() -> str:
        raise GraphError(404, "Request_ResourceNotFound", "gone")

    with pytest.raises(GraphError) as info:
        asyncio.run(POLICY.call(always_404, clock=clock, sleep=clock.sleep))
    assert info.value.status == 404 and clock.slept == [3.0, 2.0]


def test_the_pacer_measures_how_long_the_target_has_been_silent() -> None:
    from provision.graph.pacing import Pacer

    clock = FakeClock(0.0)
    pacer = Pacer(clock=clock, sleep=clock.sleep)

    async def main() -> list[float]:
        seen = [pacer.silence()]  # nothing asked yet
        first = await pacer.acquire("read")
        clock.advance(5)
        seen.append(pacer.silence())  # waiting 5 s on an answer
        first.release()  # no answer at all (refused, reset, timed out)
        clock.advance(20)
        seen.append(pacer.silence())  # still silent, nothing outstanding: the silence goes on
        second, third = await pacer.acquire("read"), await pacer.acquire("read")
        second.report(200)
        second.release()
        seen.append(pacer.silence())  # an answer: silent only for the third, from now
        clock.advance(3)
        third.report(200)
        third.release()
        seen.append(pacer.silence())  # everything answered
        clock.advance(100)
        seen.append(pacer.silence())  # idle (pacing, timers) is not silence
        throttled, lost = await pacer.acquire("read"), await pacer.acquire("read")
        throttled.report(429, retry_after=150)
        throttled.release()
        lost.release()  # then a reset: silent, but the target asked us to wait 150 s first
        clock.advance(140)
        seen.append(pacer.silence())
        clock.advance(20)
        seen.append(pacer.silence())  # 10 s past the pause
        return seen

    assert asyncio.run(main()) == [0.0, 5.0, 25.0, 0.0, 0.0, 0.0, 0.0, 10.0]
