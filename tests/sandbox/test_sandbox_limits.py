"""Profiles, throttling, latency, injected faults and replication lag (deterministic: fake
clock, fake sleep, seeded RNG)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.clock import FakeClock

from provision.model import METHOD_IDS, PhoneType
from provision.sandbox.limits import (
    ConsistencySettings,
    FaultSettings,
    LatencySettings,
    OperationKind,
    Outage,
    Profile,
    ProfileError,
    Throttler,
    ThrottleSettings,
    load_profile,
)

MOBILE = METHOD_IDS[PhoneType.MOBILE]


def test_shipped_profiles_load_with_documented_values() -> None:
    unlimited, graph, strict = (load_profile(n) for n in ("unlimited", "graph-like", "strict"))
    assert unlimited == Profile(name="unlimited")
    assert graph.throttle.writes_per_second == 20  # 3,000 writes per 150 s per app+tenant
    assert 150 <= graph.latency.read_ms <= graph.latency.write_ms <= 300 and graph.latency.jitter > 0
    assert 0 < graph.faults.http_503 < 0.01 and graph.consistency.replication_lag_ms > 0
    assert 0 < strict.throttle.writes_per_second < graph.throttle.writes_per_second


@pytest.mark.parametrize(
    "text, problem",
    [
        ("[throttle]\nwrites_per_secnd = 5\n", "throttle.writes_per_secnd"),
        ("[throtle]\n", "[throtle]"),
        ("[faults]\nhttp_503 = 1.5\n", "probability"),
        ("[faults]\nbatch_502 = 2\n", "probability"),
        ("[faults]\nsilent_after_writes = 2.5\n", "count of write operations"),
        ("[latency]\nread_ms = -1\n", "non-negative"),
        ("[latency\n", "TOML"),
    ],
)
def test_profile_mistakes_are_named(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=problem.replace("[", r"\[").replace(".", r"\.")):
        load_profile(path)
    with pytest.raises(ProfileError, match="neither a shipped profile"):
        load_profile("graph_like")


def test_profile_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "slow.toml"
    path.write_text("[latency]\nread_ms = 40\n[consistency]\nreplication_lag_ms = 250\n")
    profile = load_profile(str(path))
    assert profile.name == "slow" and profile.latency.read_ms == 40 and profile.consistency.replication_lag_ms == 250
    assert profile.throttle.writes_per_second == 0


def test_retry_after_is_whole_seconds_from_refill_and_usage_counts_while_throttled() -> None:
    clock = FakeClock(0.0)
    throttler = Throttler(ThrottleSettings(writes_per_second=4, burst_seconds=1), clock)
    admitted = [throttler.admit("app", "t", OperationKind.WRITE) is None for _ in range(4)]
    assert admitted == [True] * 4
    first = throttler.admit("app", "t", OperationKind.WRITE)
    assert first is not None and first.retry_after == 1
    for _ in range(8):  # hammering digs the bucket deeper
        last = throttler.admit("app", "t", OperationKind.WRITE)
    assert last is not None and last.retry_after >= 2
    assert throttler.admit("other-app", "t", OperationKind.WRITE) is None  # buckets are per app+tenant
    assert throttler.admit("app", "t", OperationKind.READ) is None  # reads unlimited here
    clock.advance(last.retry_after)
    assert throttler.admit("app", "t", OperationKind.WRITE) is None


async def _honouring_client(http: httpx.AsyncClient, clock: Any, user: str, duration: float) -> int:
    """Sends writes back to back, waiting Retry-After on 429; returns the admitted count."""
    admitted, toggle = 0, 0
    start = clock()
    while clock() - start < duration:
        toggle += 1
        number = f"+1 20655{toggle % 100000:05d}"
        response = await http.patch(
            f"/v1.0/users/{user}/authentication/phoneMethods/{MOBILE}", json={"phoneNumber": number}
        )
        if response.status_code == 429:
            clock.advance(int(response.headers["Retry-After"]))
        else:
            assert response.status_code == 204
            admitted += 1
            clock.advance(0.001)
    return admitted


@pytest.mark.parametrize("rate", [20, 50])
def test_a_client_honouring_retry_after_gets_the_configured_write_rate(asgi_sandbox: Any, fake_clock: Any, rate: int) -> None:
    asgi_sandbox.configure(profile=Profile(throttle=ThrottleSettings(writes_per_second=rate, burst_seconds=1)), clock=fake_clock)
    user = asgi_sandbox.tenant.create_user("adele@contoso.com")["id"]
    asgi_sandbox.tenant.create_phone(user, "+1 2065550000", "mobile")

    async def main() -> int:
        async with asgi_sandbox.client() as http:
            return await _honouring_client(http, fake_clock, user, 10.0)

    admitted = asyncio.run(main())
    assert abs(admitted / 10.0 - rate) <= 0.05 * rate
    stats = asgi_sandbox.stats()
    assert stats["writes_succeeded"] == admitted and stats["throttled"] >= 9


def test_a_client_ignoring_retry_after_gets_far_less(asgi_sandbox: Any, fake_clock: Any) -> None:
    asgi_sandbox.configure(profile=Profile(throttle=ThrottleSettings(writes_per_second=50, burst_seconds=1)), clock=fake_clock)
    user = asgi_sandbox.tenant.create_user("adele@contoso.com")["id"]
    asgi_sandbox.tenant.create_phone(user, "+1 2065550000", "mobile")

    async def main() -> int:
        admitted = 0
        async with asgi_sandbox.client() as http:
            for i in range(1000):  # 100 requests/s for 10 s, never waiting
                response = await http.patch(
                    f"/v1.0/users/{user}/authentication/phoneMethods/{MOBILE}", json={"phoneNumber": f"+1 2065551{i:03d}"}
                )
                admitted += response.status_code == 204
                fake_clock.advance(0.01)
        return admitted

    assert asyncio.run(main()) < 0.5 * 50 * 10


def test_direct_request_latency_uses_the_profile_median_with_seeded_jitter(asgi_sandbox: Any) -> None:
    def run(seed: int) -> list[float]:
        clock = FakeClock()
        asgi_sandbox.configure(
            profile=Profile(latency=LatencySettings(read_ms=150, write_ms=300, jitter=0.3)), clock=clock, sleep=clock.sleep, seed=seed
        )
        user = asgi_sandbox.tenant.create_user(f"u{seed}@contoso.com")["id"]

        async def main() -> None:
            async with asgi_sandbox.client() as http:
                for _ in range(200):
                    await http.get(f"/v1.0/users/{user}/authentication/phoneMethods")

        asyncio.run(main())
        return clock.slept

    first, again, other = run(1), run(1), run(2)
    assert first == again and first != other
    median = sorted(first)[len(first) // 2]
    assert 0.13 < median < 0.17 and max(first) > 0.2


def test_503_faults_apply_nothing(asgi_sandbox: Any) -> None:
    asgi_sandbox.configure(profile=Profile(faults=FaultSettings(http_503=1.0)))

    async def main() -> httpx.Response:
        async with asgi_sandbox.client() as http:
            return await http.post("/v1.0/users", json={"userPrincipalName": "a@contoso.com", "displayName": "A"})

    response = asyncio.run(main())
    assert (response.status_code, response.json()["error"]["code"]) == (503, "serviceNotAvailable")
    assert asgi_sandbox.tenant.user_count() == 0
    assert asgi_sandbox.stats()["faults_injected"] == 1


def test_504_faults_and_connection_resets_leave_the_outcome_unknown(asgi_sandbox: Any) -> None:
    asgi_sandbox.configure(profile=Profile(faults=FaultSettings(http_504=1.0)), seed=7)

    async def create_users(count: int, prefix: str) -> list[int | str]:
        outcomes: list[int | str] = []
        async with asgi_sandbox.client() as http:
            for i in range(count):
                try:
                    r = await http.post("/v1.0/users", json={"userPrincipalName": f"{prefix}{i}@contoso.com", "displayName": "x"})
                    outcomes.append(r.status_code)
                except httpx.RemoteProtocolError:
                    outcomes.append("reset")
        return outcomes

    timeouts = asyncio.run(create_users(40, "t"))
    assert set(timeouts) == {504}
    applied_504 = asgi_sandbox.tenant.user_count()
    assert 8 < applied_504 < 32  # about half were applied before the gateway gave up
    assert asgi_sandbox.stats()["writes_applied"] == applied_504 and asgi_sandbox.stats()["writes_succeeded"] == 0

    asgi_sandbox.configure(profile=Profile(faults=FaultSettings(connection_reset=1.0)), seed=7)
    resets = asyncio.run(create_users(40, "r"))
    assert set(resets) == {"reset"}
    applied_reset = asgi_sandbox.tenant.user_count()
    assert 8 < applied_reset < 32
    assert asgi_sandbox.stats()["connection_resets"] == 40


def test_connection_reset_over_loopback_drops_the_connection(sandbox: Any) -> None:
    sandbox.configure(profile=Profile(faults=FaultSettings(connection_reset=1.0)))

    async def main() -> BaseException | None:
        async with sandbox.client() as http:
            try:
                await http.get("/v1.0/users/x")
            except httpx.TransportError as exc:
                return exc
        return None

    error = asyncio.run(main())
    assert isinstance(error, httpx.TransportError)
    sandbox.configure()

    async def after() -> int:
        async with sandbox.client() as http:
            return (await http.get("/v1.0/users/x")).status_code

    assert asyncio.run(after()) == 404  # the server kept serving


def test_replication_lag_hides_a_new_mobile_from_reads_and_the_alternate_rule(asgi_sandbox: Any, fake_clock: Any) -> None:
    asgi_sandbox.configure(profile=Profile(consistency=ConsistencySettings(replication_lag_ms=500)), clock=fake_clock)
    user = asgi_sandbox.tenant.create_user("adele@contoso.com")["id"]
    phones = f"/v1.0/users/{user}/authentication/phoneMethods"

    async def main() -> list[httpx.Response]:
        async with asgi_sandbox.client() as http:
            out = [await http.post(phones, json={"phoneNumber": "+1 2065550000", "phoneType": "mobile"})]
            out.append(await http.get(phones))
            out.append(await http.post(phones, json={"phoneNumber": "+1 2065550001", "phoneType": "alternateMobile"}))
            fake_clock.advance(0.6)
            out.append(await http.get(phones))
            out.append(await http.post(phones, json={"phoneNumber": "+1 2065550001", "phoneType": "alternateMobile"}))
            return out

    created, hidden, too_early, visible, alternate = asyncio.run(main())
    assert created.status_code == 201 and hidden.json()["value"] == []
    assert too_early.status_code == 400
    assert [p["phoneType"] for p in visible.json()["value"]] == ["mobile"]
    assert alternate.status_code == 201


def test_injected_faults_hit_batch_items_one_by_one_and_hide_rule_answers(asgi_sandbox: Any) -> None:
    asgi_sandbox.configure(profile=Profile(faults=FaultSettings(http_504=1.0)), seed=3)

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with asgi_sandbox.client() as http:
            invalid = await http.post("/v1.0/users", json={"userPrincipalName": "not a upn"})
            batch = {"requests": [{"id": str(i), "method": "GET", "url": "/users/nobody"} for i in range(3)]}
            return invalid, await http.post("/v1.0/$batch", json=batch)

    invalid, batch = asyncio.run(main())
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (504, "GatewayTimeout")
    assert batch.status_code == 200
    assert [item["status"] for item in batch.json()["responses"]] == [504, 504, 504]
    assert asgi_sandbox.stats()["faults_injected"] == 4 and asgi_sandbox.tenant.user_count() == 0


def _batch_of_creates(users: list[str]) -> dict[str, Any]:
    return {"requests": [
        {"id": str(i), "method": "POST", "url": f"/users/{u}/authentication/phoneMethods",
         "headers": {"Content-Type": "application/json"},
         "body": {"phoneNumber": f"+1 20655501{i:02d}", "phoneType": "office"}}
        for i, u in enumerate(users)
    ]}


@pytest.mark.parametrize("status", [500, 502])
def test_a_whole_batch_answered_5xx_ran_its_items_first(asgi_sandbox: Any, status: int) -> None:
    faults = {"batch_500": 1.0} if status == 500 else {"batch_502": 1.0}
    asgi_sandbox.configure(profile=Profile(faults=FaultSettings(**faults)))
    users = [asgi_sandbox.tenant.create_user(f"u{i}@contoso.com")["id"] for i in range(3)]

    async def main() -> httpx.Response:
        async with asgi_sandbox.client() as http:
            return await http.post("/v1.0/$batch", json=_batch_of_creates(users))

    response = asyncio.run(main())
    assert response.status_code == status and "responses" not in response.json()
    assert all(len(asgi_sandbox.tenant.list_phones(u)) == 1 for u in users)  # every item ran
    stats = asgi_sandbox.stats()
    assert stats["writes_applied"] == 3 and stats["faults_injected"] == 1


def test_a_profile_outage_starts_after_its_count_of_writes_and_can_be_ended(asgi_sandbox: Any) -> None:
    asgi_sandbox.configure(profile=Profile(faults=FaultSettings(gone_after_writes=2)))
    users = [asgi_sandbox.tenant.create_user(f"u{i}@contoso.com")["id"] for i in range(4)]

    async def create(user: str) -> int | str:
        async with asgi_sandbox.client() as http:
            try:
                r = await http.post(f"/v1.0/users/{user}/authentication/phoneMethods",
                                    json={"phoneNumber": "+1 4255550100", "phoneType": "office"})
            except httpx.ConnectError:
                return "refused"
            return r.status_code

    assert [asyncio.run(create(u)) for u in users[:3]] == [201, 201, "refused"]
    faults = asgi_sandbox.app.sandbox.limits.faults
    assert faults.outage is Outage.GONE and faults.writes == 2
    faults.end_outage()
    assert asyncio.run(create(users[3])) == 201
    assert [len(asgi_sandbox.tenant.list_phones(u)) for u in users] == [1, 1, 0, 1]


def test_a_silent_sandbox_accepts_requests_and_never_answers_them(asgi_sandbox: Any) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/ is not an installed package
    from bench.pacing_sim import VirtualTimeLoop

    asgi_sandbox.configure(profile=Profile(faults=FaultSettings(silent_after_writes=1)))
    user = asgi_sandbox.tenant.create_user("u@contoso.com")["id"]
    url = f"/v1.0/users/{user}/authentication/phoneMethods"

    async def main() -> tuple[int, str]:
        async with asgi_sandbox.client() as http:
            first = await http.post(url, json={"phoneNumber": "+1 4255550100", "phoneType": "office"})
            try:  # a virtual hour: nothing else runs, so only an answer could end it sooner
                await asyncio.wait_for(http.get(url), 3600)
            except TimeoutError:
                return first.status_code, "no answer"
            return first.status_code, "answered"

    loop = VirtualTimeLoop()
    try:
        assert loop.run_until_complete(main()) == (201, "no answer")
    finally:
        loop.close()
    stats = asgi_sandbox.stats()
    assert stats["http_requests"] == 2 and stats["operations"] == 1  # accepted, never served
