"""Virtual-time simulation of provision.graph.pacing.Pacer against a throttling server.

No real sleeping: an asyncio event loop whose clock jumps to the next timer whenever
nothing is ready, so a 60-second run takes milliseconds and is deterministic for a seed.
The client is the real ``Pacer`` with its default settings (the same for every R); only
the server and the network are simulated.

Server (as provision/sandbox/limits.py meters writes): a token bucket per app, rate R
operations/s, capacity R * burst_s, full at start. Each ``$batch`` item takes a token;
an item arriving when less than one is left gets 429 with ``Retry-After = ceil(time until
a token)`` (at least 1 s) and still takes its token, down to -capacity (Graph keeps
counting usage while throttled). The bucket is checked when a request arrives; the answer
comes after a lognormal latency (median 210 ms, clipped to 150-300 ms), or at once when
every item was throttled.

Clients: write batches formed as the executor forms them (provision.executor): each sized
when it is formed to ``ExecutorSettings.batch_interval_s`` of the pacer's write rate
(``ExecutorSettings.write_batch_size``; ``--batch-interval 0``: always 20, the comparison
point), at most ``queued_batches`` formed batches waiting for the pacer's permission and
``max_in_flight + 2`` batches in progress (one per worker); nothing is retried (endless work).

Server, ``window`` cases: a sliding window admitting ``rate * window_s`` writes in any
``window_s`` seconds (``SlidingWindowServer``; throttled items are not counted, as in the
sandbox's ``algorithm = "window"``), empty at start, 429 with Retry-After rounded up to
whole seconds. Window cases run 20 s and 60 s jobs and a long one spanning
``--windows-long`` (4) windows: a short job may live off the first, empty window, so the
long run is the verdict.

``--sandbox`` replaces the modelled server with provision/sandbox's real app (in process,
its clock and sleep on the virtual loop, write latency median 210 ms, jitter 0.15, a batch
answering after its slowest item; ``[throttle] algorithm = "window"`` for the window
cases), the requests being $batch PATCHes of mobile numbers.

``--baseline PATH`` also runs another copy of provision/graph/pacing.py (today's, copied
aside before a change) on the same scenarios and seeds: before and after in one run.

Printed per case (token bucket R and burst, or window) and run length over several seeds:
successful writes/s over the run / the limit's average rate (answers received within the
run), and the share of write operations answered 429; last,
against a server that never throttles, the operations a cold pacer lets through in 8 s
over what its concurrency cap carries (is it held back?). Each line ends with its target.

    python -m bench.pacing_sim                     # R = 20, 100, 400, 55, 250; burst 1, 1.5, 2 s;
                                                   # windows 450/15, 1500/60, 3000/150
    python -m bench.pacing_sim --baseline /tmp/base/provision/graph/pacing.py   # before/after
    python -m bench.pacing_sim --durations 60 --seeds 8 --verbose
    python -m bench.pacing_sim --set probe_quadratic=0.0005   # explore a setting
    python -m bench.pacing_sim --sandbox --seeds 2  # the real sandbox app serves the requests
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import math
import os
import random
import selectors
import statistics
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from provision.executor.settings import ExecutorSettings  # noqa: E402
from provision.graph.pacing import Lane, Pacer, PacingSettings, Slot  # noqa: E402

EXECUTOR = ExecutorSettings()
_PACING = sys.modules[Pacer.__module__]


def load_pacing(path: Path) -> ModuleType:
    """Another copy of provision/graph/pacing.py (say, today's code copied aside before a
    change) as a module of its own, to measure before and after in the same run."""
    name = f"_pacing_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


class _VirtualSelector(selectors.BaseSelector):
    """Polls the real selector without blocking and turns the wait into a clock jump."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._inner = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("simulation deadlock: every task waits and no timer is set")
        self._loop.advance(timeout)
        return []

    def close(self) -> None:
        self._inner.close()

    def get_map(self) -> Any:
        return self._inner.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` only moves when every task is waiting on a timer."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += seconds


class TokenBucketServer:
    """The server's write quota as the sandbox meters it."""

    def __init__(self, rate: float, burst_s: float, clock: Any) -> None:
        self.rate = rate
        self.capacity = rate * burst_s
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self.ok = 0
        self.throttled = 0
        self.overflowed = 0.0  # quota the client left unused while the bucket was full

    def admit(self, items: int) -> tuple[int, int, float | None]:
        """(ok, throttled, Retry-After) for a batch of ``items`` arriving now."""
        now = self.clock()
        refilled = self.tokens + (now - self.updated) * self.rate
        self.overflowed += max(0.0, refilled - self.capacity)
        self.tokens = min(self.capacity, refilled)
        self.updated = now
        ok = throttled = 0
        for _ in range(items):
            if self.tokens >= 1:
                ok += 1
            else:
                throttled += 1
            self.tokens = max(self.tokens - 1, -self.capacity)
        self.ok += ok
        self.throttled += throttled
        retry_after = max(1, math.ceil((1 - self.tokens) / self.rate)) if throttled else None
        return ok, throttled, retry_after


class SlidingWindowServer:
    """A quota of ``rate * window_s`` writes per sliding window of ``window_s`` seconds (the
    shape of Graph's identity write quota: 3,000 writes per 150 s per app and tenant).

    Per item: an item is admitted when fewer than the capacity were admitted in the last
    ``window_s`` seconds; otherwise it gets 429 with ``Retry-After = ceil(time until the
    oldest admitted item leaves the window)`` (at least 1 s). Throttled items are not
    counted (the window is a log of admitted writes): a client that keeps sending while
    throttled loses only the requests, not future quota. Empty at start."""

    def __init__(self, rate: float, window_s: float, clock: Any) -> None:
        self.rate = rate
        self.window_s = window_s
        self.capacity = max(1, round(rate * window_s))
        self.clock = clock
        self.admitted: deque[float] = deque()
        self.ok = 0
        self.throttled = 0
        self.overflowed = float("nan")

    def admit(self, items: int) -> tuple[int, int, float | None]:
        now = self.clock()
        while self.admitted and self.admitted[0] <= now - self.window_s:
            self.admitted.popleft()
        ok = min(items, self.capacity - len(self.admitted))
        self.admitted.extend([now] * ok)
        throttled = items - ok
        self.ok += ok
        self.throttled += throttled
        retry_after = None
        if throttled:
            retry_after = max(1, math.ceil(self.admitted[0] + self.window_s - now))
        return ok, throttled, retry_after


@dataclass(frozen=True)
class Scenario:
    rate: float
    """The limit's average rate: the token bucket's refill, or the window's capacity
    over its length."""
    burst_s: float = 1.0
    duration: float = 60.0
    seed: int = 1
    workers: int | None = None
    """Batches in progress at once (one per worker); default: the executor's
    (``ExecutorSettings.max_batches``: the pacer's ``max_in_flight`` + 2)."""
    batch_interval_s: float = EXECUTOR.batch_interval_s
    """The executor's write batch sizing: about this many seconds of the pacer's write rate
    per batch (0: always 20 operations)."""
    latency_median: float = 0.210
    latency_min: float = 0.150
    latency_max: float = 0.300
    check_at: float = 0.0
    """Where in the latency the server checks its bucket (0 = on arrival, as the sandbox
    does: it throttles first and then sleeps the operation's latency)."""
    throttled_answer_at_once: bool = True
    """A request whose items were all throttled is answered without latency (the sandbox
    samples latency only for operations it runs)."""
    window_s: float | None = None
    """A sliding-window server (``rate * window_s`` writes per ``window_s``) instead of the
    token bucket (``burst_s`` then unused)."""

    @property
    def label(self) -> str:
        if self.window_s is None:
            return f"bucket {self.rate:g}/s, burst {self.burst_s:g} s"
        return f"window {self.rate * self.window_s:g}/{self.window_s:g} s"


@dataclass(frozen=True)
class SimResult:
    scenario: Scenario
    succeeded: int
    operations: int
    throttled: int
    overflowed: float
    cuts: int
    final_rate: float
    estimated_limit: float | None

    @property
    def achieved_ratio(self) -> float:
        return self.succeeded / self.scenario.duration / self.scenario.rate

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.operations if self.operations else 0.0


class ExecutorBatches:
    """Write batches as the executor hands them to the pacer: sized to its write rate when
    formed, at most ``queued_batches`` formed ones waiting for its permission at once."""

    def __init__(self, pacer: Any, sc: Scenario) -> None:
        self.pacer = pacer
        self.sizing = dataclasses.replace(EXECUTOR, batch_interval_s=sc.batch_interval_s)
        self.workers = sc.workers or self.sizing.max_batches or pacer.settings.max_in_flight + 2
        self._waiting = asyncio.Semaphore(self.sizing.queued_batches)

    async def next_slot(self) -> Slot:
        """Permission to send the next batch (``slot.operations`` writes); release it after."""
        async with self._waiting:
            snap = self.pacer.snapshot()
            write = snap.lanes[Lane.WRITE]
            # (A baseline copy of pacing.py may predate LaneSnapshot.settled: full batches then.)
            size = self.sizing.write_batch_size(write.rate_limit, settled=getattr(write, "settled", True),
                                                round_trip_s=getattr(write, "round_trip_s", None),
                                                max_in_flight=snap.max_in_flight)
            slot: Slot = await self.pacer.acquire(Lane.WRITE, size)
            return slot


async def _run(sc: Scenario, settings: PacingSettings | None, pacing: ModuleType) -> SimResult:
    loop = asyncio.get_running_loop()
    server: TokenBucketServer | SlidingWindowServer
    if sc.window_s is None:
        server = TokenBucketServer(sc.rate, sc.burst_s, loop.time)
    else:
        server = SlidingWindowServer(sc.rate, sc.window_s, loop.time)
    pacer = pacing.Pacer(settings, clock=loop.time)
    batches = ExecutorBatches(pacer, sc)
    rng = random.Random(sc.seed)
    succeeded = 0

    def latency() -> float:
        return min(sc.latency_max, max(sc.latency_min, rng.lognormvariate(math.log(sc.latency_median), 0.25)))

    async def worker() -> None:
        nonlocal succeeded
        while loop.time() < sc.duration:
            slot = await batches.next_slot()
            try:
                size = slot.operations
                if loop.time() >= sc.duration:
                    slot.report(200)  # never sent; keeps the books straight
                    break
                rtt = latency()
                await asyncio.sleep(rtt * sc.check_at)
                ok, throttled, retry_after = server.admit(size)
                if ok or not sc.throttled_answer_at_once:
                    await asyncio.sleep(rtt * (1 - sc.check_at))
                if loop.time() <= sc.duration:
                    succeeded += ok
                slot.report(200, throttled=throttled, retry_after=retry_after)
            finally:
                slot.release()

    await asyncio.gather(*(worker() for _ in range(batches.workers)))
    write = pacer.snapshot().lanes[Lane.WRITE]
    return SimResult(
        scenario=sc,
        succeeded=succeeded,
        operations=server.ok + server.throttled,
        throttled=server.throttled,
        overflowed=server.overflowed,
        cuts=write.cuts,
        final_rate=write.rate_limit,
        estimated_limit=write.estimated_limit,
    )


async def _run_sandbox(sc: Scenario, settings: PacingSettings | None, pacing: ModuleType) -> SimResult:
    """The same clients against the real sandbox app (in process, httpx.ASGITransport,
    its clock and sleep on the virtual loop): $batch PATCHes of users' mobile numbers."""
    import httpx

    from provision.model import METHOD_IDS, PhoneType
    from provision.sandbox.app import create_app
    from provision.sandbox.limits import LatencySettings, Profile, ThrottleAlgorithm, ThrottleSettings

    loop = asyncio.get_running_loop()
    if sc.window_s is None:
        throttle = ThrottleSettings(writes_per_second=sc.rate, burst_seconds=sc.burst_s)
    else:
        throttle = ThrottleSettings(writes_per_second=sc.rate, algorithm=ThrottleAlgorithm.WINDOW,
                                    window_seconds=sc.window_s)
    profile = Profile(
        name="pacing-sim",
        throttle=throttle,
        latency=LatencySettings(read_ms=sc.latency_median * 1000, write_ms=sc.latency_median * 1000, jitter=0.15),
    )
    app = create_app(profile=profile, clock=loop.time, sleep=asyncio.sleep, seed=sc.seed)
    tenant = app.sandbox.tenant
    users = [tenant.create_user(f"user{i}@contoso.com")["id"] for i in range(400)]
    for i, user in enumerate(users):
        tenant.create_phone(user, f"+1 2065550{i:03d}", "mobile")
    mobile = METHOD_IDS[PhoneType.MOBILE]
    pacer = pacing.Pacer(settings, clock=loop.time)
    batches = ExecutorBatches(pacer, sc)
    sent = 0
    succeeded = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal sent, succeeded
        while loop.time() < sc.duration:
            slot = await batches.next_slot()
            try:
                requests = []
                for item in range(slot.operations):
                    sent += 1
                    requests.append({
                        "id": str(item), "method": "PATCH",
                        "url": f"/users/{users[sent % len(users)]}/authentication/phoneMethods/{mobile}",
                        "headers": {"Content-Type": "application/json"},
                        "body": {"phoneNumber": f"+1 425555{sent % 10000:04d}", "phoneType": "mobile"},
                    })
                answer = await http.post("/v1.0/$batch", json={"requests": requests})
                items = answer.json()["responses"]
                retry_after = [float(i["headers"]["Retry-After"]) for i in items if "Retry-After" in i["headers"]]
                if loop.time() <= sc.duration:
                    succeeded += sum(1 for i in items if i["status"] < 300)
                slot.report(
                    answer.status_code,
                    throttled=sum(1 for i in items if i["status"] == 429),
                    unavailable=sum(1 for i in items if i["status"] == 503),
                    retry_after=max(retry_after, default=None),
                )
            finally:
                slot.release()

    headers = {"Authorization": f"Bearer {app.sandbox.token()}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox", headers=headers) as http:
        await asyncio.gather(*(worker(http) for _ in range(batches.workers)))
    stats = app.sandbox.stats.to_json()
    write = pacer.snapshot().lanes[Lane.WRITE]
    return SimResult(
        scenario=sc,
        succeeded=succeeded,
        operations=stats["operations"],
        throttled=stats["throttled"],
        overflowed=float("nan"),
        cuts=write.cuts,
        final_rate=write.rate_limit,
        estimated_limit=write.estimated_limit,
    )


def simulate(scenario: Scenario, settings: PacingSettings | None = None, *, sandbox: bool = False,
             pacing: ModuleType | None = None) -> SimResult:
    """One run in virtual time (milliseconds of real time; ``sandbox``: about a second).
    ``pacing``: another version of provision.graph.pacing (``load_pacing``) to run instead,
    with its own default settings when ``settings`` is None."""
    loop = VirtualTimeLoop()
    try:
        run = (_run_sandbox if sandbox else _run)(scenario, settings, pacing or _PACING)
        return loop.run_until_complete(run)
    finally:
        loop.close()


def unlimited_carried(settings: PacingSettings | None = None, *, seconds: float = 8.0, workers: int = 16,
                      latency: float = 0.2, batch: int = 10) -> tuple[int, float]:
    """A server that never throttles: (operations the pacer let through in ``seconds`` of
    virtual time, operations its concurrency cap could carry in that time). Workers send
    ``batch``-operation requests answered after ``latency``; the pacer starts cold."""
    settings = settings or PacingSettings()

    async def run() -> int:
        loop = asyncio.get_running_loop()
        pacer = Pacer(settings, clock=loop.time)
        until = loop.time() + seconds

        async def worker() -> None:
            while loop.time() < until:
                async with pacer.slot(Lane.WRITE, batch) as slot:
                    await asyncio.sleep(latency)
                    slot.report(200)

        await asyncio.gather(*(worker() for _ in range(workers)))
        return pacer.snapshot().lanes[Lane.WRITE].ok

    loop = VirtualTimeLoop()
    try:
        ok = loop.run_until_complete(run())
    finally:
        loop.close()
    return ok, batch / latency * min(workers, settings.max_in_flight) * seconds


def _window(text: str) -> tuple[float, float]:
    capacity, _, seconds = text.partition("/")
    return float(capacity), float(seconds)


def _cases(args: argparse.Namespace) -> list[tuple[str, list[Scenario]]]:
    """(group, scenarios of seed 1): token buckets per run length, then windows."""
    groups: list[tuple[str, list[Scenario]]] = []
    for duration in args.durations:
        groups.append((f"token bucket, {duration:g} s jobs", [
            Scenario(rate, burst, duration, batch_interval_s=args.batch_interval)
            for burst in args.bursts for rate in args.rates]))
    windows = [_window(w) for w in args.windows]
    for duration in sorted({*args.durations, *(args.windows_long * seconds for _, seconds in windows)}):
        scenarios = [Scenario(capacity / seconds, 0.0, duration, window_s=seconds, batch_interval_s=args.batch_interval)
                     for capacity, seconds in windows]
        if duration not in args.durations:  # the long run: only windows it spans windows_long times
            scenarios = [sc for sc in scenarios if sc.window_s is not None and duration == args.windows_long * sc.window_s]
        if scenarios:
            groups.append((f"sliding window, {duration:g} s jobs", scenarios))
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[20, 100, 400, 55, 250],
                        help="token-bucket limits, operations/s (55 and 250: never tuned for)")
    parser.add_argument("--bursts", type=float, nargs="+", default=[1.0, 1.5, 2.0])
    parser.add_argument("--durations", type=float, nargs="+", default=[20.0, 60.0])
    parser.add_argument("--windows", nargs="*", default=["450/15", "1500/60", "3000/150"], metavar="N/S",
                        help="sliding-window limits: N writes per S seconds")
    parser.add_argument("--windows-long", type=float, default=4.0, metavar="K",
                        help="also run each window case for K windows")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="one line per seed")
    parser.add_argument("--sandbox", action="store_true",
                        help="serve the requests with the real sandbox app (in process, virtual time)")
    parser.add_argument("--baseline", type=Path, metavar="PACING_PY",
                        help="another provision/graph/pacing.py (today's, copied aside) to measure "
                             "in the same run, with its own defaults: the 'before' columns")
    parser.add_argument("--batch-interval", type=float, default=EXECUTOR.batch_interval_s, metavar="S",
                        help="ExecutorSettings.batch_interval_s: write batches of about S seconds of the "
                             "pacer's write rate (0: always 20, the comparison point)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a PacingSettings field (to explore tuning)")
    args = parser.parse_args(argv)
    overrides = {name: type(getattr(PacingSettings(), name))(value)
                 for name, value in (item.split("=", 1) for item in args.set)}
    settings = dataclasses.replace(PacingSettings(), **overrides)
    baseline = load_pacing(args.baseline) if args.baseline else None

    print(f"Pacer settings: {settings}")
    print(f"Write batches: {args.batch_interval:g} s of the write rate (ExecutorSettings.batch_interval_s)")
    print("Figures: successful writes/s over the run / the limit's average rate (min and mean over "
          f"{args.seeds} seeds), share of write operations answered 429 (mean, max)")
    before_head = f" {'before: min  mean':>18} {'429 max':>8}" if baseline else ""
    print(f"{'case':<30} {'run s':>6} {'writes/s / limit':>17} {'429 share':>16} {'cuts':>5}{before_head}")
    print(f"{'':<30} {'':>6} {'min   mean':>17} {'mean    max':>16}")
    verdicts = []
    for group, cases in _cases(args):
        worst_ratio, worst_share = math.inf, 0.0
        old_ratio, old_share = math.inf, 0.0
        for case in cases:
            scenarios = [dataclasses.replace(case, seed=seed) for seed in range(1, args.seeds + 1)]
            runs = [simulate(sc, settings, sandbox=args.sandbox) for sc in scenarios]
            ratios = [r.achieved_ratio for r in runs]
            shares = [r.throttled_share for r in runs]
            worst_ratio = min(worst_ratio, *ratios)
            worst_share = max(worst_share, *shares)
            line = (f"{case.label:<30} {case.duration:6.0f} {min(ratios):9.3f} {statistics.mean(ratios):6.3f} "
                    f"{statistics.mean(shares):7.2%} {max(shares):7.2%} {statistics.mean(r.cuts for r in runs):5.1f}")
            if baseline is not None:
                old = [simulate(sc, sandbox=args.sandbox, pacing=baseline) for sc in scenarios]
                old_ratios = [r.achieved_ratio for r in old]
                old_shares = [r.throttled_share for r in old]
                old_ratio = min(old_ratio, *old_ratios)
                old_share = max(old_share, *old_shares)
                line += f" {min(old_ratios):11.3f} {statistics.mean(old_ratios):6.3f} {max(old_shares):7.2%}"
            print(line)
            if args.verbose:
                for r in runs:
                    print(f"    seed {r.scenario.seed}: ratio {r.achieved_ratio:.3f} share {r.throttled_share:.2%} "
                          f"cuts {r.cuts} final rate {r.final_rate:.1f} estimated limit {r.estimated_limit}")
        target = 0.95 if group.startswith("sliding") else 0.97
        verdict = (f"{group}: worst writes/s / limit = {worst_ratio:.3f} (target >= {target}); "
                   f"worst 429 share = {worst_share:.2%} (target <= 3%)")
        if baseline is not None:
            verdict += f"; before: {old_ratio:.3f}, {old_share:.2%}"
        verdicts.append(verdict)
    for verdict in verdicts:
        print(verdict)
    ok, capacity = unlimited_carried(settings)
    print(f"unlimited server, cold start: {ok} operations in 8 s = {ok / capacity:.3f} of what "
          f"{settings.max_in_flight} requests in flight carry (target >= 0.6)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
