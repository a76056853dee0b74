"""provision.graph.pacing: the shared pause, rate cuts and recovery, the concurrency cap, one cut
per congestion event, batch accounting, and convergence against a simulated server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.clock import FakeClock
from support.pacing import admit_all, fill_window

from bench.pacing_sim import Scenario, VirtualTimeLoop, simulate
from provision.graph.pacing import Lane, LanePhase, Pacer, PacingSettings


async def _send(pacer: Pacer, operations: int, *, latency: float = 0.2, **report: Any) -> None:
    async with pacer.slot(Lane.WRITE, operations) as slot:
        await asyncio.sleep(latency)
        slot.report(200, **report)


async def _healthy_traffic(pacer: Pacer, loop: VirtualTimeLoop, seconds: float, workers: int = 8) -> None:
    """Workers sending 10-operation batches, all succeeding, for ``seconds`` of virtual time."""
    until = loop.time() + seconds

    async def worker() -> None:
        while loop.time() < until:
            await _send(pacer, 10)

    await asyncio.gather(*(worker() for _ in range(workers)))


# Retry-After ---------------------------------------------------------------------------


def test_retry_after_pauses_every_lane_until_it_passes(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> tuple[float, dict[str, float], Any, Any]:
        pacer = Pacer(clock=loop.time)
        slot = await pacer.acquire(Lane.WRITE, 20)
        await asyncio.sleep(0.2)
        slot.report(200, throttled=3, retry_after=4)  # three batch items throttled
        slot.release()
        throttled_at = loop.time()
        during = pacer.snapshot()
        granted: dict[str, float] = {}

        async def take(kind: Lane) -> None:
            async with pacer.slot(kind, 1) as s:
                granted[kind] = loop.time()
                s.report(200)

        await asyncio.gather(take(Lane.READ), take(Lane.WRITE))
        return throttled_at, granted, during, pacer.snapshot()

    throttled_at, granted, during, after = run_virtual(main)
    assert during.paused_until == pytest.approx(throttled_at + 4)
    assert during.pause_reason is not None and "429" in during.pause_reason and "Retry-After 4s" in during.pause_reason
    # Reads were never throttled, yet they wait too: the pause is global.
    assert granted[Lane.READ] == pytest.approx(throttled_at + 4, abs=1e-3)
    assert granted[Lane.WRITE] >= throttled_at + 4
    assert after.paused_until is None and after.pause_reason is None


def test_injected_sleep_waits_exactly_until_the_pause_ends() -> None:
    clock = FakeClock(100.0)

    async def main() -> None:
        pacer = Pacer(clock=clock, sleep=clock.sleep)
        async with pacer.slot(Lane.READ, 1) as slot:
            slot.report(429, retry_after=2.5)
        assert clock.slept == []
        async with pacer.slot(Lane.READ, 1) as slot:
            slot.report(200)

    asyncio.run(main())
    assert clock.slept[0] == pytest.approx(2.5)
    assert clock.now >= 102.5


def test_a_pause_is_never_shortened_by_a_smaller_retry_after() -> None:
    clock = FakeClock(100.0)

    async def main() -> Any:
        pacer = Pacer(clock=clock, sleep=clock.sleep)
        pacer.pause(10, "maintenance window")
        slot = await pacer.acquire(Lane.WRITE, 1)  # waits the 10 s
        clock.now += 0.1
        pacer.pause(30, "long")
        slot.report(429, retry_after=1)
        slot.release()
        return pacer.snapshot()

    snap = asyncio.run(main())
    assert snap.paused_until == pytest.approx(100 + 10 + 0.1 + 30)
    assert snap.pause_reason == "long"


def test_a_429_without_retry_after_pauses_for_the_default_and_throttles_every_item() -> None:
    clock = FakeClock(100.0)

    async def main() -> tuple[float, Any]:
        pacer = Pacer(clock=clock, sleep=clock.sleep)
        async with pacer.slot(Lane.WRITE, 20) as slot:
            answered_at = clock.now
            slot.report(429)
        return answered_at, pacer.snapshot()

    answered_at, snap = asyncio.run(main())
    assert snap.paused_until == pytest.approx(answered_at + PacingSettings().default_retry_after_s)
    write = snap.lanes[Lane.WRITE]
    assert (write.throttled, write.ok, write.cuts) == (20, 0, 1)


# rate: down on throttle, up while healthy ----------------------------------------------


def test_a_first_throttle_after_a_long_ramp_restarts_at_what_got_through(run_virtual: Any) -> None:
    # Workers too few to reach the rate limit (concurrency binds, as in a real run at a
    # high limit): halving the limit would drop far below what the server took.
    async def main(loop: VirtualTimeLoop) -> tuple[Any, Any, float, float]:
        pacer = Pacer(clock=loop.time)
        started = loop.time()
        await _healthy_traffic(pacer, loop, 5.0, workers=3)
        before = pacer.snapshot().lanes[Lane.WRITE]
        await _send(pacer, 10, throttled=4, retry_after=1)
        after = pacer.snapshot().lanes[Lane.WRITE]
        return before, after, started, loop.time()

    before, after, started, ended = run_virtual(main)
    got_through = before.operations / (ended - started)
    assert before.rate_limit > 1.5 * got_through  # the rate was not what held it back
    assert after.rate_limit == pytest.approx(got_through, rel=0.1)
    assert (after.phase, after.cuts) == (LanePhase.RECOVERY, 1)


async def _send_at(pacer: Pacer, loop: VirtualTimeLoop, at: float, operations: int, **report: Any) -> float:
    """Wait until ``at``, then send one request (answered 0.2 s later); its dispatch time."""
    await asyncio.sleep(max(0.0, at - loop.time()))
    async with pacer.slot(Lane.WRITE, operations) as slot:
        sent_at = loop.time()
        await asyncio.sleep(0.2)
        slot.report(200, **report)
    return sent_at


def test_a_first_throttle_restarts_where_a_full_bucket_would_have_run_dry(run_virtual: Any) -> None:
    # 5 writes at 0 s and at 1 s, then 10 at 2 s of which 4 are throttled. A server bucket
    # holding 1.5 s of R (``ramp_burst_s``), full at the start, runs dry at 2 s for
    # R = 16 / 3.5: it held 1.5R - 5 after the first request, 2.5R - 10 after the second
    # and 3.5R - 10 when the third came (never full again: nothing overflowed), which the 6
    # items that got through emptied. What got through per second (20 in 2.2 s) says 9.
    async def main(loop: VirtualTimeLoop) -> Any:
        pacer = Pacer(clock=loop.time)
        await _send_at(pacer, loop, 0.0, 5)
        await _send_at(pacer, loop, 1.0, 5)
        await _send_at(pacer, loop, 2.0, 10, throttled=4, retry_after=1)
        return pacer.snapshot().lanes[Lane.WRITE]

    write = run_virtual(main)
    assert PacingSettings().ramp_burst_s == 1.5
    assert (write.phase, write.cuts) == (LanePhase.RECOVERY, 1)
    assert write.rate_limit == pytest.approx(16 / 3.5, rel=1e-3)


def _left_in_bucket(rate: float, start: float, sends: list[tuple[float, int]]) -> float:
    """A bucket of ``rate``/s holding ``assumed_burst_s`` of it, ``start`` tokens at the
    first send: what is left after ``sends`` ((time, operations))."""
    capacity = rate * PacingSettings().assumed_burst_s
    tokens, last = start, sends[0][0]
    for at, ops in sends:
        tokens = min(capacity, tokens + rate * (at - last)) - ops
        last = at
    return tokens


def test_throttle_to_throttle_counts_the_debt_and_what_overflowed_meanwhile(run_virtual: Any) -> None:
    # The server's bucket was empty when the first throttled item arrived and again when
    # the second throttle's first throttled item did: in between it refilled the first
    # request's throttled items (they took tokens too), what was sent after it and what the
    # second throttled request got through, plus what overflowed while it was full (the
    # pause is longer than the least allowance we expect). Counted by dispatch time.
    async def main(loop: VirtualTimeLoop) -> tuple[list[tuple[float, int]], Any]:
        pacer = Pacer(clock=loop.time)
        await _send_at(pacer, loop, 0.0, 10)
        dry_at = await _send_at(pacer, loop, 0.2, 10, throttled=6, retry_after=1)
        sends = [(dry_at, 0)]
        for at in (3.0, 3.5, 4.0):
            sends.append((await _send_at(pacer, loop, at, 5), 5))
        sends.append((await _send_at(pacer, loop, 4.5, 5, throttled=3, retry_after=1), 2))
        return sends, pacer.snapshot().lanes[Lane.WRITE]

    sends, write = run_virtual(main)
    assert (write.phase, write.cuts) == (LanePhase.STEADY, 2)
    limit = write.estimated_limit
    assert limit is not None
    # A server of that rate, with the least allowance, runs dry exactly at the second throttle...
    assert _left_in_bucket(limit, -6, sends) == pytest.approx(0.0, abs=1e-3)
    # ...which counting what we sent alone (a lower bound) would have put lower.
    counted = (6 + 3 * 5 + 2) / (sends[-1][0] - sends[0][0])
    assert limit > 1.1 * counted


def test_a_first_throttle_answered_ahead_of_an_earlier_one_is_corrected_by_it(run_virtual: Any) -> None:
    # As in the test above, but a request sent just after the 10 at 2 s is throttled whole
    # and answered at once, ahead of them: the cut first takes it for where the server ran
    # dry. The 10's answer (4 throttled) says it ran dry earlier: the rate is redone from
    # them, the figure the test above gets.
    async def main(loop: VirtualTimeLoop) -> tuple[float, Any]:
        pacer = Pacer(clock=loop.time)
        await _send_at(pacer, loop, 0.0, 5)
        await _send_at(pacer, loop, 1.0, 5)
        await asyncio.sleep(2.0 - loop.time())
        early = await pacer.acquire(Lane.WRITE, 10)
        await asyncio.sleep(0.05)
        late = await pacer.acquire(Lane.WRITE, 5)
        late.report(429, retry_after=1)
        late.release()
        first_figure = pacer.snapshot().lanes[Lane.WRITE].rate_limit
        await asyncio.sleep(0.15)
        early.report(200, throttled=4, retry_after=1)
        early.release()
        return first_figure, pacer.snapshot().lanes[Lane.WRITE]

    first_figure, write = run_virtual(main)
    assert (write.phase, write.cuts) == (LanePhase.RECOVERY, 1)
    assert write.rate_limit == pytest.approx(16 / 3.5, rel=1e-3)
    assert write.rate_limit < first_figure
    assert write.estimated_limit == write.rate_limit


def test_a_throttle_to_throttle_figure_is_redone_from_an_earlier_request_throttled_too(
        run_virtual: Any) -> None:
    # The second throttle's first answer is a request throttled whole (answered at once);
    # one sent before it, answered later, had items throttled too: the server's bucket ran
    # dry there, and the figure is redone with it as the crossing.
    async def main(loop: VirtualTimeLoop) -> tuple[list[tuple[float, int]], float, Any]:
        pacer = Pacer(clock=loop.time)
        await _send_at(pacer, loop, 0.0, 40)
        dry_at = await _send_at(pacer, loop, 0.2, 40, throttled=24, retry_after=1)
        sends = [(dry_at, 0)]
        for at in (3.0, 3.5):
            sends.append((await _send_at(pacer, loop, at, 5), 5))
        await asyncio.sleep(4.0 - loop.time())
        early = await pacer.acquire(Lane.WRITE, 5)
        sends.append((loop.time(), 2))
        await asyncio.sleep(0.05)
        late = await pacer.acquire(Lane.WRITE, 5)
        late.report(429, retry_after=1)
        late.release()
        first_figure = pacer.snapshot().lanes[Lane.WRITE].rate_limit
        await asyncio.sleep(0.15)
        early.report(200, throttled=3, retry_after=1)
        early.release()
        return sends, first_figure, pacer.snapshot().lanes[Lane.WRITE]

    sends, first_figure, write = run_virtual(main)
    assert (write.phase, write.cuts) == (LanePhase.STEADY, 2)
    limit = write.estimated_limit
    assert limit is not None and limit < first_figure
    assert _left_in_bucket(limit, -24, sends) == pytest.approx(0.0, abs=1e-3)


def test_after_a_throttle_what_the_server_stored_during_the_pause_goes_out_on_top_of_the_rate(
        run_virtual: Any) -> None:
    # Once the limit is known (a throttle-to-throttle figure), the server's bucket refills
    # during each pause: sending at the rate alone afterwards would leave that unspent.
    async def main(loop: VirtualTimeLoop) -> tuple[float, float, list[float]]:
        pacer = Pacer(clock=loop.time)
        await _send_at(pacer, loop, 0.0, 40)
        await _send_at(pacer, loop, 0.2, 40, throttled=24, retry_after=1)
        for at in (3.0, 3.5, 4.0):
            await _send_at(pacer, loop, at, 20)
        await _send_at(pacer, loop, 4.5, 20, throttled=2, retry_after=1)
        write = pacer.snapshot().lanes[Lane.WRITE]
        assert write.phase is LanePhase.STEADY
        resumed = pacer.snapshot().paused_until or loop.time()
        sent = await admit_all(pacer, loop, workers=16, batch=1, until=resumed + 2.0)
        return write.rate_limit, resumed, sent

    rate, resumed, sent = run_virtual(main)
    in_two_seconds = sum(1 for t in sent if resumed <= t < resumed + 2.0)
    settings = PacingSettings()
    # More than the rate and our own bucket allow, no more than the server could have stored.
    assert in_two_seconds > rate * (2.0 + settings.local_burst_s) + 1
    assert in_two_seconds <= rate * (2.0 + settings.assumed_burst_s) + 1


def test_after_a_first_throttle_the_rate_is_a_guess_and_nothing_goes_out_on_top_of_it(
        run_virtual: Any) -> None:
    # The first throttle's rate assumes an allowance; if the server's is larger, the guess
    # is too high, and a burst on top of it would bring the next throttle at once.
    async def main(loop: VirtualTimeLoop) -> tuple[float, float, list[float]]:
        pacer = Pacer(clock=loop.time)
        await _send_at(pacer, loop, 0.0, 40)
        await _send_at(pacer, loop, 0.2, 40, throttled=2, retry_after=2)
        write = pacer.snapshot().lanes[Lane.WRITE]
        assert write.phase is LanePhase.RECOVERY
        resumed = pacer.snapshot().paused_until or loop.time()
        sent = await admit_all(pacer, loop, workers=16, batch=2, until=resumed + 1.0)
        return write.rate_limit, resumed, sent

    rate, resumed, sent = run_virtual(main)
    in_the_second = sum(1 for t in sent if resumed <= t < resumed + 1.0)
    # The rate (it grows 15% a second meanwhile) and our own bucket, no more.
    assert in_the_second <= rate * (1.15 + PacingSettings().local_burst_s) + 2


def test_answers_of_the_same_congestion_event_do_not_extend_the_pause(run_virtual: Any) -> None:
    # The server counts a Retry-After from when it checked the request (on arrival): an
    # answer still on its way when a throttle paused us says nothing new about when to resume.
    async def main(loop: VirtualTimeLoop) -> tuple[float, float, Any]:
        pacer = Pacer(clock=loop.time)
        first = await pacer.acquire(Lane.WRITE, 2)
        await asyncio.sleep(0.05)
        second = await pacer.acquire(Lane.WRITE, 2)
        second.report(429, retry_after=1)  # throttled whole: answered at once
        second.release()
        paused_at = loop.time()
        await asyncio.sleep(0.25)
        first.report(200, throttled=1, retry_after=1)  # same event, answered later
        first.release()
        return paused_at, loop.time(), pacer.snapshot()

    paused_at, answered_at, snap = run_virtual(main)
    assert snap.paused_until == pytest.approx(paused_at + 1)
    assert snap.paused_until < answered_at + 1
    assert snap.lanes[Lane.WRITE].cuts == 1


def test_slow_start_grows_by_what_came_back_per_round_trip(run_virtual: Any) -> None:
    # Before any throttle, answers (not time) make the rate grow: nothing before the first
    # answer, then by ``startup_gain`` per round trip, never faster than per
    # ``startup_min_round_trip_s`` however quick the answers.
    settings = PacingSettings()

    def rates(latency: float) -> tuple[float, float]:
        async def main(loop: VirtualTimeLoop) -> tuple[float, float]:
            pacer = Pacer(clock=loop.time)
            until = loop.time() + 2.0

            async def worker() -> None:
                while loop.time() < until:
                    await _send(pacer, 2, latency=latency)

            work = asyncio.gather(*(worker() for _ in range(8)))
            await asyncio.sleep(latency * 0.9)
            before_answers = pacer.snapshot().lanes[Lane.WRITE].rate_limit
            await work
            return before_answers, pacer.snapshot().lanes[Lane.WRITE].rate_limit

        result: tuple[float, float] = run_virtual(main)
        return result

    quick_first, quick = rates(0.02)
    slow_first, slow = rates(0.4)
    assert quick_first == slow_first == settings.initial_rate
    bound = settings.initial_rate * (1 + settings.startup_gain) ** (2.0 / settings.startup_min_round_trip_s)
    assert settings.initial_rate * 4 < quick <= bound
    assert settings.initial_rate < slow < quick


def test_rate_drops_on_throttle_and_climbs_back_while_healthy(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> list[Any]:
        pacer = Pacer(clock=loop.time)
        seen = [pacer.snapshot().lanes[Lane.WRITE]]
        await _healthy_traffic(pacer, loop, 2.0)  # shorter than long_ramp_s: halving
        seen.append(pacer.snapshot().lanes[Lane.WRITE])
        await _send(pacer, 10, throttled=4, retry_after=1)
        seen.append(pacer.snapshot().lanes[Lane.WRITE])
        await _healthy_traffic(pacer, loop, 6.0)
        seen.append(pacer.snapshot().lanes[Lane.WRITE])
        return seen

    initial, grown, cut, recovered = run_virtual(main)
    assert initial.rate_limit == PacingSettings().initial_rate and initial.phase is LanePhase.STARTUP
    assert grown.rate_limit > 2 * initial.rate_limit  # it only grows because the rate binds
    assert cut.rate_limit <= grown.rate_limit * PacingSettings().first_cut + 1e-9
    assert (cut.phase, cut.cuts, cut.throttled) == (LanePhase.RECOVERY, 1, 4)
    assert recovered.rate_limit > cut.rate_limit * 1.2
    assert recovered.cuts == 1


def test_rate_does_not_grow_while_something_else_limits_the_lane(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> Any:
        pacer = Pacer(clock=loop.time)
        for _ in range(30):  # one small request a second: far under the rate limit
            await _send(pacer, 2)
            await asyncio.sleep(1.0)
        return pacer.snapshot().lanes[Lane.WRITE]

    write = run_virtual(main)
    assert write.rate_limit == PacingSettings().initial_rate
    assert write.ok == 60


def test_one_congestion_event_cuts_once(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> tuple[Any, Any, Any]:
        pacer = Pacer(clock=loop.time)
        in_flight = [await pacer.acquire(Lane.WRITE, 20) for _ in range(5)]
        rate_before = pacer.snapshot().lanes[Lane.WRITE].rate_limit
        await asyncio.sleep(0.2)
        for slot in in_flight:  # all five were sent before anyone heard of a throttle
            slot.report(200, throttled=15, retry_after=1)
            slot.release()
        after_event = pacer.snapshot().lanes[Lane.WRITE]
        await _send(pacer, 20, throttled=20, retry_after=1)  # sent after the cut: a new event
        return rate_before, after_event, pacer.snapshot().lanes[Lane.WRITE]

    rate_before, after_event, after_second = run_virtual(main)
    assert after_event.cuts == 1
    assert after_event.throttled == 75
    assert after_event.rate_limit <= rate_before * PacingSettings().first_cut
    assert after_second.cuts == 2
    assert after_second.rate_limit < after_event.rate_limit


def test_scattered_503s_cut_nothing_but_an_outage_does(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> tuple[Any, Any]:
        pacer = Pacer(clock=loop.time)
        for _ in range(20):  # 5% of items fail with 503: transient faults
            await _send(pacer, 20, unavailable=1)
        scattered = pacer.snapshot()
        refused = [await pacer.acquire(Lane.WRITE, 20) for _ in range(3)]
        await asyncio.sleep(0.2)
        for slot in refused:  # whole requests refused: the service is overloaded
            slot.report(503)
            slot.release()
        return scattered, pacer.snapshot()

    scattered, outage = run_virtual(main)
    assert scattered.lanes[Lane.WRITE].cuts == 0 and scattered.lanes[Lane.WRITE].unavailable == 20
    assert scattered.paused_until is None
    assert outage.lanes[Lane.WRITE].cuts == 1
    assert outage.lanes[Lane.WRITE].rate_limit < scattered.lanes[Lane.WRITE].rate_limit
    assert outage.unavailable == 80


def test_any_retry_after_reported_pauses_everyone(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> tuple[float, Any]:
        pacer = Pacer(clock=loop.time)
        async with pacer.slot(Lane.READ, 1) as slot:
            slot.report(504, retry_after=2)
        return loop.time(), pacer.snapshot()

    now, snap = run_virtual(main)
    assert snap.paused_until == pytest.approx(now + 2)
    assert snap.pause_reason is not None and "504" in snap.pause_reason
    assert snap.lanes[Lane.READ].cuts == 0  # a gateway timeout is not a throttle


def test_a_503_with_retry_after_pauses_everyone(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> tuple[float, Any]:
        pacer = Pacer(clock=loop.time)
        await _send(pacer, 20, unavailable=1, retry_after=7)
        return loop.time(), pacer.snapshot()

    now, snap = run_virtual(main)
    assert snap.paused_until == pytest.approx(now + 7)
    assert snap.pause_reason is not None and "503" in snap.pause_reason


# concurrency, batches, failures ----------------------------------------------------------


def test_concurrency_cap_holds_across_both_lanes(run_virtual: Any) -> None:
    settings = PacingSettings(max_in_flight=3, initial_rate=1000)

    async def main(loop: VirtualTimeLoop) -> tuple[int, int, int]:
        pacer = Pacer(settings, clock=loop.time)
        current = peak = done = 0

        async def worker(kind: Lane) -> None:
            nonlocal current, peak, done
            while True:
                async with pacer.slot(kind, 1) as slot:
                    if loop.time() >= 4.0:
                        slot.report(200)
                        return
                    current += 1
                    peak = max(peak, current, pacer.snapshot().in_flight)
                    await asyncio.sleep(1.0)
                    current -= 1
                    slot.report(200)
                    done += 1

        await asyncio.gather(*(worker(Lane.READ if i % 2 else Lane.WRITE) for i in range(10)))
        return peak, done, pacer.snapshot().in_flight

    peak, done, left = run_virtual(main)
    assert peak == 3
    assert done == 12  # 3 at a time, 1 s each, for 4 s
    assert left == 0


def test_batch_outcomes_are_counted_per_operation(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> Any:
        pacer = Pacer(clock=loop.time)
        await _send(pacer, 20, throttled=5, unavailable=2, retry_after=3)
        return pacer.snapshot()

    snap = run_virtual(main)
    write = snap.lanes[Lane.WRITE]
    assert (write.requests, write.operations, write.ok, write.throttled, write.unavailable) == (1, 20, 13, 5, 2)
    assert snap.operations == 20 and snap.throttled == 5 and snap.unavailable == 2
    assert snap.lanes[Lane.READ].operations == 0


def test_an_unreported_slot_counts_as_failed_and_changes_no_rate(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> Any:
        pacer = Pacer(clock=loop.time)
        with pytest.raises(ConnectionResetError):
            async with pacer.slot(Lane.WRITE, 20):
                raise ConnectionResetError("reset by peer")
        return pacer.snapshot()

    snap = run_virtual(main)
    write = snap.lanes[Lane.WRITE]
    assert (write.failed_requests, write.ok, write.cuts, snap.in_flight) == (1, 0, 0, 0)
    assert write.rate_limit == PacingSettings().initial_rate
    assert snap.paused_until is None


def test_a_cancelled_waiter_does_not_block_the_next(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> float:
        pacer = Pacer(PacingSettings(max_in_flight=1), clock=loop.time)
        held = await pacer.acquire(Lane.WRITE, 1)
        first = asyncio.ensure_future(pacer.acquire(Lane.WRITE, 1))
        second = asyncio.ensure_future(pacer.acquire(Lane.WRITE, 1))
        await asyncio.sleep(1)
        first.cancel()
        await asyncio.sleep(1)
        held.report(200)
        held.release()
        slot = await asyncio.wait_for(second, timeout=5)
        slot.release()
        return loop.time()

    assert run_virtual(main) == pytest.approx(2.0)


def test_invalid_use_is_refused(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        pacer = Pacer(clock=loop.time)
        with pytest.raises(ValueError):
            await pacer.acquire(Lane.WRITE, 0)
        async with pacer.slot(Lane.WRITE, 2) as slot:
            slot.report(200)
            with pytest.raises(RuntimeError):
                slot.report(200)
        with pytest.raises(ValueError):
            Lane("delete")

    run_virtual(main)
    with pytest.raises(ValueError):
        PacingSettings(first_cut=1.5)


# a window quota (N writes per W seconds): long Retry-After --------------------------------


async def _fill_window(pacer: Pacer, loop: VirtualTimeLoop, quota: int) -> tuple[float, float, float]:
    """Four workers send 10-write batches, all admitted, until ``quota`` got through; the
    next batch finds the window full: 429 on every item, Retry-After 14 s (a 15 s window
    filled in its first seconds). Returns (first request's time, the 429's time, the
    write rate limit just before it)."""
    first = await fill_window(pacer, loop, quota)
    rate = pacer.snapshot().lanes[Lane.WRITE].rate_limit
    async with pacer.slot(Lane.WRITE, 10) as slot:
        slot.report(200, throttled=10, retry_after=14)
    return first, loop.time(), rate


async def _grants(pacer: Pacer, loop: VirtualTimeLoop, seconds: float) -> list[float]:
    """Eight workers (more than the rate needs) sending 5-write batches, all admitted, for
    ``seconds`` from now: when each batch was let go."""
    until = loop.time() + seconds
    granted: list[float] = []

    async def worker() -> None:
        while loop.time() < until:
            async with pacer.slot(Lane.WRITE, 5) as slot:
                granted.append(loop.time())
                await asyncio.sleep(0.2)
                slot.report(200)

    await asyncio.gather(*(worker() for _ in range(8)))
    return granted


def test_after_a_long_retry_after_it_resumes_at_the_rate_the_window_admitted(run_virtual: Any) -> None:
    # 450 writes got through in the first ~2 s, then the server said "come back in 14 s":
    # a window of ~15 s admits 450, so ~30 writes/s, far above the floor a halving (or a
    # single probe request) would restart from, and far below the rate that filled it.
    async def main(loop: VirtualTimeLoop) -> tuple[float, float, float, list[float]]:
        pacer = Pacer(clock=loop.time)
        first, throttled_at, sending = await _fill_window(pacer, loop, 450)
        granted = await _grants(pacer, loop, 14 + 10)
        return first, throttled_at, sending, granted

    first, throttled_at, sending, granted = run_virtual(main)
    comeback = throttled_at + 14
    window_rate = 450 / (comeback - first)
    assert throttled_at - first < 4 and window_rate < 0.3 * sending  # it was sending far faster
    assert min(granted) == pytest.approx(comeback, abs=0.5)  # back when the window reopens
    after = [t for t in granted if comeback <= t < comeback + 10]
    achieved = 5 * len(after) / 10  # operations/s over the 10 s after the comeback
    # (Retry-After is rounded up to whole seconds: the window may have reopened up to 1 s
    # before the comeback, so the rate it admitted may be a few % above ``window_rate``.)
    assert 0.9 * window_rate <= achieved <= 1.15 * window_rate


def test_a_later_window_throttle_counts_the_writes_admitted_before_the_first(run_virtual: Any) -> None:
    # The window filled in the first seconds; right after the comeback it is full again
    # (it reopened later than the rounded Retry-After said). What it holds now includes
    # most of the writes that filled it the first time: counting only those sent since
    # the first throttle would put its rate at a few writes/s.
    async def main(loop: VirtualTimeLoop) -> tuple[Any, Any]:
        pacer = Pacer(clock=loop.time)
        await _fill_window(pacer, loop, 450)
        first = pacer.snapshot().lanes[Lane.WRITE]
        await asyncio.sleep(14)
        async with pacer.slot(Lane.WRITE, 5) as slot:
            slot.report(200, throttled=5, retry_after=1)
        return first, pacer.snapshot().lanes[Lane.WRITE]

    first, second = run_virtual(main)
    assert (first.phase, second.phase, second.cuts) == (LanePhase.WINDOW, LanePhase.WINDOW, 2)
    assert first.estimated_limit is not None and second.estimated_limit is not None
    assert second.estimated_limit >= 0.8 * first.estimated_limit


def test_after_a_long_retry_after_it_does_not_burst_into_the_window(run_virtual: Any) -> None:
    # The window it comes back to frees its items at the rate they entered: what a burst
    # would get through is what just left. So the first second back carries about one
    # second of the admitted rate (plus the Retry-After's rounding), spread over it.
    async def main(loop: VirtualTimeLoop) -> tuple[float, float, list[float]]:
        pacer = Pacer(clock=loop.time)
        first, throttled_at, _ = await _fill_window(pacer, loop, 450)
        granted = await _grants(pacer, loop, 14 + 3)
        return first, throttled_at, granted

    first, throttled_at, granted = run_virtual(main)
    comeback = throttled_at + 14
    window_rate = 450 / (comeback - first)
    first_second = [t for t in granted if comeback <= t < comeback + 1]
    assert 5 * len(first_second) <= 1.5 * window_rate + 5
    halves = [sum(1 for t in first_second if t < comeback + 0.5), sum(1 for t in first_second if t >= comeback + 0.5)]
    assert min(halves) >= 1  # spread over the second, not all at the start


def test_a_window_full_before_anything_got_through_teaches_no_rate() -> None:
    # Another run of the same app filled the window: the first request gets a long
    # Retry-After. Nothing of ours got through, so nothing says how fast the window admits:
    # wait it out, and do not restart at the floor.
    clock = FakeClock(100.0)

    async def main() -> Any:
        pacer = Pacer(clock=clock, sleep=clock.sleep)
        async with pacer.slot(Lane.WRITE, 10) as slot:
            slot.report(200, throttled=10, retry_after=60)
        async with pacer.slot(Lane.WRITE, 10) as slot:
            slot.report(200)
        return pacer.snapshot().lanes[Lane.WRITE]

    write = asyncio.run(main())
    assert clock.now >= 160
    assert write.rate_limit == PacingSettings().initial_rate


@pytest.mark.parametrize(("quota", "window", "seconds"), [(450, 15, 60), (1500, 60, 240)])
def test_converges_to_a_sliding_window_quota(quota: int, window: int, seconds: int) -> None:
    # The same defaults as against the token bucket; four windows of a server admitting
    # ``quota`` writes in any ``window`` seconds. Counts and the pacer's state only (the
    # achieved rate is bench/pacing_sim.py's verdict).
    rate = quota / window
    result = simulate(Scenario(rate=rate, duration=seconds, seed=7, window_s=window))
    assert result.cuts <= 4  # one per window at most: no sawtooth of short throttles
    assert result.throttled <= 0.03 * result.operations
    assert result.estimated_limit is not None and 0.9 * rate <= result.estimated_limit <= 1.05 * rate
    # Not held far below the quota (>= 0.95 of it over several seeds is the bench's verdict:
    # one seed's figure moves by an extra throttle, 1.7% of a 60 s run).
    assert result.succeeded >= 0.92 * rate * seconds


# convergence against a simulated token-bucket server ---------------------------------------


@pytest.mark.parametrize("limit", [20, 100, 400])
def test_converges_just_under_an_unknown_write_limit(limit: int) -> None:
    # Same settings for every limit; the server's bucket holds 1.5 s and charges throttled
    # items too; 150-300 ms latency; 60 s of virtual time. Counts and the pacer's state only:
    # the writes/s achieved against the limit and the 429 share are bench/pacing_sim.py's
    # verdicts (targets >= 0.97 of the limit, <= 3 % throttled).
    result = simulate(Scenario(rate=limit, burst_s=1.5, duration=60, seed=7))
    assert result.cuts <= 8  # it settles: a few cuts in a minute, not a sawtooth
    assert result.throttled <= limit  # fewer 429s in the whole minute than one second of quota
    assert result.estimated_limit is not None
    assert 0.95 * limit <= result.estimated_limit <= 1.2 * limit
    assert 0.95 * limit <= result.final_rate <= 1.2 * limit  # it ends at the limit, not below it


def test_an_unlimited_server_is_not_held_back(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> Any:
        pacer = Pacer(clock=loop.time)
        await _healthy_traffic(pacer, loop, 8.0, workers=16)
        return pacer.snapshot().lanes[Lane.WRITE]

    write = run_virtual(main)
    # max_in_flight requests of 10 at 0.2 s each carry 50 * max_in_flight operations/s;
    # the rate limit must have grown past that (it stops growing once concurrency binds).
    # (The operations carried against that capacity are a bench/pacing_sim.py verdict.)
    carried = 50 * PacingSettings().max_in_flight
    assert write.rate_limit >= carried
    assert (write.phase, write.cuts, write.throttled) == (LanePhase.STARTUP, 0, 0)  # nothing slowed the ramp


def test_after_a_pause_a_batch_waits_until_the_server_can_take_all_of_it(run_virtual: Any) -> None:
    async def main(loop: VirtualTimeLoop) -> tuple[float, float, float]:
        pacer = Pacer(clock=loop.time)
        await _send(pacer, 20, throttled=15, retry_after=1)  # the server is 15 tokens in debt
        resumes_at = loop.time() + 1
        async with pacer.slot(Lane.READ, 1) as other:  # the other lane: only the pause
            read_at = loop.time()
            other.report(200)
        async with pacer.slot(Lane.WRITE, 20) as slot:
            write_at = loop.time()
            slot.report(200)
        return resumes_at, read_at, write_at

    resumes_at, read_at, write_at = run_virtual(main)
    assert read_at == pytest.approx(resumes_at, abs=1e-3)
    # Retry-After only promised one token back; 20 items need the 15-token debt repaid too.
    assert write_at > resumes_at + 0.2
