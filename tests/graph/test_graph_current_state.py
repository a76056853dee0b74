"""Reading current state for roster users: outcomes per user, batching, retries, pacing."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from support.sandbox import inprocess_client, loopback_client, write_profile

from provision.errors import TargetUnreachable
from provision.graph.client import GraphClient
from provision.graph.clouds import url_target
from provision.graph.credentials import StaticTokenCredential
from provision.graph.pacing import Pacer
from provision.graph.state_reader import read_current_state
from provision.model import PhoneType, ReadStatus
from provision.sandbox.auth import AUTHENTICATION_ADMINISTRATOR, make_token
from provision.sandbox.limits import Outage
from provision.sandbox.tenant import Tenant

pytestmark = pytest.mark.timeout(120)

USER_IDS = "aaaaaaaa-0000-4000-8000-{:012d}"


def populate(tenant: Tenant, n: int) -> list[str]:
    """n users; every third has a mobile, every fifth an office phone too. Returns UPNs."""
    upns = []
    for i in range(n):
        upn = f"user{i:05d}@contoso.com"
        tenant.create_user(upn, id=USER_IDS.format(i))
        if i % 3 == 0:
            tenant.create_phone(upn, f"+1 206{i:07d}", "mobile")
        if i % 5 == 0:
            tenant.create_phone(upn, f"+44 20{i:08d}", "office")
        upns.append(upn)
    return upns


def test_outcomes_per_user_in_process(make_sandbox, clock) -> None:
    app = make_sandbox()
    tenant = app.sandbox.tenant
    upns = populate(tenant, 45)
    tenant.update_sms_policy({"includeTargets": [
        {"targetType": "user", "id": USER_IDS.format(3), "isRegistrationRequired": False, "isUsableForSignIn": True}]})
    keys = upns + ["ghost@contoso.com", USER_IDS.format(7), upns[0]]  # a missing user, a GUID key, a repeat
    seen: list[tuple[int, int]] = []

    async def run():
        async with inprocess_client(app, pacer=Pacer(clock=clock, sleep=clock.sleep)) as client:
            return await read_current_state(client, keys, policy_needs_ids=True, progress=lambda d, t: seen.append((d, t)),
                                             clock=clock, sleep=clock.sleep)

    users, policy, notes = asyncio.run(run())
    assert len(users) == 47  # each key once
    assert users["ghost@contoso.com"].status is ReadStatus.NOT_FOUND
    assert users["ghost@contoso.com"].error_code == "Request_ResourceNotFound"
    u3 = users[upns[3]]
    assert u3.status is ReadStatus.OK and u3.id == USER_IDS.format(3)
    assert u3.phones[PhoneType.MOBILE].number == "+1 2060000003" and not u3.masked
    assert set(users[upns[15]].phones) == {PhoneType.MOBILE, PhoneType.OFFICE}
    assert users[upns[1]].phones == {}
    assert users[USER_IDS.format(7)].id == USER_IDS.format(7)
    assert policy.readable and policy.allows(USER_IDS.format(3)) is True and policy.allows(u3.id) is True
    # 46 UPN keys need an id lookup, the GUID key does not: 47 + 46 = 93 ops in 5 batches
    assert notes.operations == 93 and notes.batches == 5
    assert notes.not_found == 1 and notes.failed == 0
    assert seen[-1] == (47, 47)
    # the policy did not need ids: no lookups
    async def run_all_users():
        tenant.update_sms_policy({"includeTargets": [
            {"targetType": "group", "id": "all_users", "isRegistrationRequired": False, "isUsableForSignIn": True}]})
        async with inprocess_client(app) as client:
            return await read_current_state(client, upns, policy_needs_ids=True, clock=clock, sleep=clock.sleep)

    users2, _, notes2 = asyncio.run(run_all_users())
    assert notes2.operations == 45 and notes2.batches == 3 and users2[upns[3]].id is None


def test_masked_and_unreadable_policy(make_sandbox, clock) -> None:
    app = make_sandbox()
    upns = populate(app.sandbox.tenant, 6)
    token = make_token(scp="UserAuthenticationMethod.Read.All", wids=[AUTHENTICATION_ADMINISTRATOR])

    async def run():
        async with inprocess_client(app, token=token) as client:
            return await read_current_state(client, upns, policy_needs_ids=True, clock=clock, sleep=clock.sleep)

    users, policy, notes = asyncio.run(run())
    assert not policy.readable
    assert any("can't read the SMS sign-in policy" in r and "Policy.Read.AuthenticationMethod" in r for r in notes.remarks)
    assert users[upns[0]].masked and users[upns[3]].masked
    assert not users[upns[1]].masked  # nothing registered, nothing masked
    assert notes.masked == 3  # users 0, 3 (mobile) and 5 (office)


def test_throttled_items_are_retried_until_read(make_sandbox, clock) -> None:
    # 10 reads/s, burst 1 s; the sandbox and the reader share a fake clock, so waiting the
    # Retry-After refills the bucket without any real sleeping.
    app = make_sandbox("strict")
    upns = populate(app.sandbox.tenant, 60)

    async def run():
        async with inprocess_client(app, pacer=Pacer(clock=clock, sleep=clock.sleep)) as client:
            return await read_current_state(client, upns, policy_needs_ids=False, clock=clock, sleep=clock.sleep)

    users, _, notes = asyncio.run(run())
    assert all(u.status is ReadStatus.OK for u in users.values())
    assert users[upns[30]].phones[PhoneType.MOBILE].number == "+1 2060000030"
    assert notes.operations == 60 + notes.retried
    stats = app.sandbox.stats
    assert stats.by_status.get(429, 0) == notes.throttled


def test_final_errors_become_failed_rows(make_sandbox, clock) -> None:
    app = make_sandbox()
    upns = populate(app.sandbox.tenant, 4)
    token = make_token(roles=["User.Read.All", "Policy.Read.All"])  # may not read phone methods

    async def run():
        async with inprocess_client(app, token=token) as client:
            return await read_current_state(client, upns, policy_needs_ids=False, clock=clock, sleep=clock.sleep)

    users, policy, notes = asyncio.run(run())
    assert policy.readable
    assert all(u.status is ReadStatus.FAILED and u.error_code == "accessDenied" for u in users.values())
    assert notes.failed == 4


def _stats(root: str) -> dict:
    return httpx.get(f"{root}/_sandbox/stats").json()


def test_2000_users_over_loopback_take_at_most_100_round_trips(make_sandbox, serve) -> None:
    app = make_sandbox(real_time=True)
    upns = populate(app.sandbox.tenant, 2000)
    root = serve(app)
    before = _stats(root)["http_requests"]

    async def run():
        async with loopback_client(root) as client:
            return await read_current_state(client, upns, policy_needs_ids=False)

    users, _, notes = asyncio.run(run())
    after = _stats(root)
    assert sum(u.status is ReadStatus.OK for u in users.values()) == 2000
    assert users[upns[1998]].phones[PhoneType.MOBILE].number == "+1 2060001998"
    # 100 batches of 20 + the one SMS policy read (+ retries, none on this profile)
    assert after["http_requests"] - before == 100 + 1 + notes.retried
    assert notes.batches == 100


def test_throttled_profile_keeps_429s_under_5_percent(make_sandbox, run_virtual, tmp_path) -> None:
    # A tenant that admits 400 reads/s (1 s burst) answering in 150 ms, like Graph does; the
    # real pacing controller has to discover the limit. In virtual time (sandbox, pacer and
    # reader on the loop's clock): about 6 s of it, no waiting, the same counts every run.
    # The 429 share against real time is bench/read_state.py's figure (1.6-1.9 %).
    profile = write_profile(tmp_path / "throttled.toml", reads_per_second=400, burst_seconds=1, read_ms=150)

    async def run(loop):
        app = make_sandbox(str(profile), loop=loop)
        upns = populate(app.sandbox.tenant, 2000)
        async with inprocess_client(app, pacer=Pacer(clock=loop.time)) as client:
            read = await read_current_state(client, upns, policy_needs_ids=False, clock=loop.time, sleep=asyncio.sleep)
        return read, app.sandbox.stats.to_json()

    (users, _, notes), stats = run_virtual(run)
    assert sum(u.status is ReadStatus.OK for u in users.values()) == 2000
    assert stats["throttled"] < 0.05 * 2000, stats  # fewer 429s than 5 % of the users read
    assert stats["http_requests"] <= 100 + 1 + notes.retried


def test_faults_are_retried_and_every_user_ends_read(make_sandbox, clock, tmp_path) -> None:
    profile = write_profile(tmp_path / "faulty.toml", http_503=0.2, http_504=0.1, connection_reset=0.1)
    app = make_sandbox(str(profile))
    upns = populate(app.sandbox.tenant, 200)

    async def run():
        async with inprocess_client(app, pacer=Pacer(clock=clock, sleep=clock.sleep)) as client:
            return await read_current_state(client, upns, policy_needs_ids=False, clock=clock, sleep=clock.sleep)

    users, _, notes = asyncio.run(run())
    assert all(u.status is ReadStatus.OK for u in users.values())
    assert users[upns[99]].phones[PhoneType.MOBILE].number == "+1 2060000099"
    stats = app.sandbox.stats
    assert notes.retried > 0 and stats.faults_injected > 0 and stats.connection_resets > 0
    assert notes.operations == 200 + notes.retried


def test_without_user_read_all_only_sms_eligibility_is_unknown(make_sandbox, clock) -> None:
    app = make_sandbox()
    tenant = app.sandbox.tenant
    upns = populate(tenant, 6)
    tenant.update_sms_policy({"includeTargets": [
        {"targetType": "user", "id": USER_IDS.format(3), "isRegistrationRequired": False, "isUsableForSignIn": True}]})
    token = make_token(roles=["UserAuthenticationMethod.ReadWrite.All", "Policy.Read.All"])  # no User.Read.All

    async def run():
        async with inprocess_client(app, token=token) as client:
            return await read_current_state(client, upns, policy_needs_ids=True, clock=clock, sleep=clock.sleep)

    users, policy, notes = asyncio.run(run())
    assert all(u.status is ReadStatus.OK for u in users.values()) and notes.failed == 0  # not read_failed
    assert users[upns[3]].phones[PhoneType.MOBILE].number == "+1 2060000003"
    assert all(u.id is None for u in users.values())
    assert policy.allows(users[upns[3]].id) is None  # eligibility unknown, not "not allowed"
    remark = next(r for r in notes.remarks if "object ids" in r)
    assert "User.Read.All" in remark and "6 user(s)" in remark


def test_an_unreadable_policy_names_the_permission_that_reads_it(make_sandbox, clock) -> None:
    app = make_sandbox()
    upns = populate(app.sandbox.tenant, 2)
    token = make_token(roles=["UserAuthenticationMethod.ReadWrite.All", "User.Read.All"])  # no policy read

    async def run():
        async with inprocess_client(app, token=token) as client:
            return await read_current_state(client, upns, policy_needs_ids=True, clock=clock, sleep=clock.sleep)

    users, policy, notes = asyncio.run(run())
    assert not policy.readable and all(u.status is ReadStatus.OK for u in users.values())
    assert any("Policy.Read.AuthenticationMethod" in r for r in notes.remarks)


def test_read_batches_answered_5xx_as_a_whole_are_read_again(make_sandbox, clock, tmp_path) -> None:
    profile = tmp_path / "envelopes.toml"
    profile.write_text("[faults]\nbatch_500 = 0.2\nbatch_502 = 0.1\n", encoding="utf-8")
    app = make_sandbox(str(profile))
    upns = populate(app.sandbox.tenant, 200)

    async def run():
        async with inprocess_client(app, pacer=Pacer(clock=clock, sleep=clock.sleep)) as client:
            return await read_current_state(client, upns, policy_needs_ids=False, clock=clock, sleep=clock.sleep)

    users, _, notes = asyncio.run(run())
    assert all(u.status is ReadStatus.OK for u in users.values())
    assert app.sandbox.stats.faults_injected > 0 and notes.retried > 0
    assert notes.operations == 200 + notes.retried and notes.failed == 0


def test_a_target_that_refuses_every_connection_stops_the_read(make_sandbox, clock) -> None:
    app = make_sandbox()
    upns = populate(app.sandbox.tenant, 50)
    app.sandbox.limits.faults.start_outage(Outage.GONE)

    async def run():
        async with inprocess_client(app, pacer=Pacer(clock=clock, sleep=clock.sleep)) as client:
            return await read_current_state(client, upns, policy_needs_ids=False, clock=clock, sleep=clock.sleep,
                                             unreachable_after=120)

    started = clock()
    with pytest.raises(TargetUnreachable, match="can't be reached: no answer for 12[0-9] s"):
        asyncio.run(run())
    assert 120 <= clock() - started <= 160  # fake seconds: the breaker's bound, not every user failed


def test_a_target_that_stops_answering_stops_the_read_within_the_bound(make_sandbox, run_virtual) -> None:
    async def run(loop):
        app = make_sandbox(loop=loop)
        upns = populate(app.sandbox.tenant, 50)
        app.sandbox.limits.faults.start_outage(Outage.SILENT)
        client = GraphClient(url_target("http://127.0.0.1/v1.0"), StaticTokenCredential(make_token()),
                             pacer=Pacer(clock=loop.time), transport=httpx.ASGITransport(app), timeout_s=60)
        started = loop.time()
        async with client:
            try:
                await read_current_state(client, upns, policy_needs_ids=False, clock=loop.time, unreachable_after=120)
            except TargetUnreachable as exc:
                return exc, loop.time() - started
        return None, loop.time() - started

    error, elapsed = run_virtual(run)
    assert isinstance(error, TargetUnreachable)
    assert elapsed <= 125  # virtual seconds
