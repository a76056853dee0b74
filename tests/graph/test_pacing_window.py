"""provision.graph.pacing against a window quota (N writes per W seconds): what the lane
learns from the writes that filled the window, the Retry-After's rounding, and later
throttles. Virtual time; the requests are reported by hand, as a window server would."""

from __future__ import annotations

from typing import Any

import pytest
from support.pacing import admit_all, fill_window

from bench.pacing_sim import Scenario, VirtualTimeLoop, simulate
from provision.graph.pacing import Lane, LanePhase, Pacer, PacingSettings


async def _throttle(pacer: Pacer, retry_after: float) -> None:
    async with pacer.slot(Lane.WRITE, 10) as slot:
        slot.report(200, throttled=10, retry_after=retry_after)


async def _admit_all(pacer: Pacer, loop: VirtualTimeLoop, seconds: float) -> int:
    """Eight workers sending 5-write batches, all admitted, for ``seconds``: how many got through."""
    return len(await admit_all(pacer, loop, workers=8, batch=5, until=loop.time() + seconds))


def _write(pacer: Pacer) -> Any:
    return pacer.snapshot().lanes[Lane.WRITE]


def test_a_request_counted_into_the_full_window_that_comes_back_throttled_is_taken_out(run_virtual: Any) -> None:
    # When the first 429 of a full window comes back, a request sent just before it is
    # still on its way and is counted as admitted (it reached the window first). Its answer
    # says 10 of its writes were throttled: the window held 10 fewer, and admits that much
    # less per second.
    async def main(loop: VirtualTimeLoop) -> tuple[float, float]:
        pacer = Pacer(clock=loop.time)
        await fill_window(pacer, loop, 440)
        early = await pacer.acquire(Lane.WRITE, 10)  # reaches the window just before it fills
        await _throttle(pacer, 14)
        counted = _write(pacer).estimated_limit
        early.report(200, throttled=10, retry_after=14)
        early.release()
        return counted, _write(pacer).estimated_limit

    counted, corrected = run_virtual(main)
    # Room for (a share of) one request is kept either way: any stretch of W can hold one more.
    room = PacingSettings().window_first_room * 10
    assert corrected == pytest.approx(counted * (440 - room) / (450 - room), rel=1e-6)


def test_a_throttle_while_holding_the_middle_estimate_moves_to_the_longest_window(run_virtual: Any) -> None:
    # Retry-After 14 s, rounded up: the window is 14-15 s past our first request. The lane
    # starts from the middle; throttled again a window later although it kept to it, the
    # window is longer than that: it goes to the longest it can be, and keeps room for one
    # request, so it is not throttled for the same reason again.
    async def main(loop: VirtualTimeLoop) -> tuple[float, float, float, Any, Any]:
        pacer = Pacer(clock=loop.time)
        first = await fill_window(pacer, loop, 450)
        await _throttle(pacer, 14)
        longest = loop.time() + 14 - first
        held = _write(pacer).estimated_limit
        await _admit_all(pacer, loop, 14 + 14.6)  # the pause, then 14.6 s at the estimate
        await _throttle(pacer, 1)
        return longest, held, _write(pacer).estimated_limit, _write(pacer), pacer.snapshot()

    longest, held, after, write, _ = run_virtual(main)
    assert write.phase is LanePhase.WINDOW and write.cuts == 2
    assert after < held
    assert (450 - 10) / longest * 0.97 <= after <= 450 / longest


def test_a_window_held_unthrottled_tries_a_shorter_one(run_virtual: Any) -> None:
    # A whole window (the longest it can be, plus a second) went through at the estimate
    # unthrottled: the window is no longer than the estimate, so the lane tries the middle
    # of what is left, a higher rate, and holds that for a window.
    async def main(loop: VirtualTimeLoop) -> tuple[float, float]:
        pacer = Pacer(clock=loop.time)
        await fill_window(pacer, loop, 450)
        await _throttle(pacer, 14)
        held = _write(pacer).estimated_limit
        await _admit_all(pacer, loop, 14 + 17)
        return held, _write(pacer).estimated_limit

    held, tried = run_virtual(main)
    # The middle of 14-15 s, then of 14-14.5 s: a quarter of a second shorter, ~1.7% more.
    assert held * 1.01 < tried < held * 1.03


def test_the_window_search_stops_when_what_is_left_is_narrow(run_virtual: Any) -> None:
    settings = PacingSettings(window_search_s=1.5)  # wider than the Retry-After's second

    async def main(loop: VirtualTimeLoop) -> tuple[float, float]:
        pacer = Pacer(settings, clock=loop.time)
        await fill_window(pacer, loop, 450)
        await _throttle(pacer, 14)
        held = _write(pacer).estimated_limit
        await _admit_all(pacer, loop, 14 + 17)
        return held, _write(pacer).estimated_limit

    held, after = run_virtual(main)
    assert held <= after < held * 1.005  # then probing as in steady: a slow climb


@pytest.mark.parametrize("seed", [1, 2])
def test_against_the_sandbox_window_no_sawtooth(seed: int) -> None:
    # The sandbox's own window (its Retry-After rounding, its latency): four windows of
    # 450 per 15 s. Counts only; the achieved rate is bench/pacing_sim.py --sandbox's verdict.
    result = simulate(Scenario(rate=30, duration=60, seed=seed, window_s=15), sandbox=True)
    assert result.cuts <= 3  # the first, one for a too-short estimate, one for a try
    assert result.throttled <= 0.03 * result.operations
    assert result.succeeded >= 0.93 * 30 * 60
