"""GraphClient against the real sandbox through the real msgraph-sdk (in process)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from support.sandbox import inprocess_client, loopback_client, write_profile

from provision.errors import AuthError, GraphError
from provision.graph import ops
from provision.graph.errors import TransportFailure
from provision.masking import is_masked
from provision.model import METHOD_IDS, UNREADABLE_SMS_POLICY, PhoneType, SmsSignInState
from provision.sandbox.auth import AUTHENTICATION_ADMINISTRATOR, make_token

UPN = "ada@contoso.com"
MOBILE = "+1 2065550100"


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps the ASGI transport to see what actually goes on the wire."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


def test_every_phone_operation_changes_the_sandbox(make_sandbox) -> None:
    app = make_sandbox()
    tenant = app.sandbox.tenant
    tenant.create_user(UPN)

    async def run() -> None:
        async with inprocess_client(app) as client:
            created = await client.create_phone(UPN, PhoneType.MOBILE, MOBILE)
            assert created is not None and created.number == MOBILE
            assert created.sms_sign_in_state is SmsSignInState.READY  # policy enables all users by default
            await client.create_phone(UPN, PhoneType.ALTERNATE_MOBILE, "+1 2065550101")
            await client.create_phone(UPN, PhoneType.OFFICE, "+1 2065550102x12")
            listed = await client.list_phones(UPN)
            assert {t: p.number for t, p in listed.items()} == {
                PhoneType.MOBILE: MOBILE, PhoneType.ALTERNATE_MOBILE: "+1 2065550101", PhoneType.OFFICE: "+1 2065550102x12"}
            assert (await client.get_phone(UPN, PhoneType.OFFICE)).number == "+1 2065550102x12"
            await client.update_phone(UPN, PhoneType.MOBILE, "+1 2065550199")
            await client.disable_sms_sign_in(UPN)
            assert (await client.get_phone(UPN, PhoneType.MOBILE)).sms_sign_in_state is SmsSignInState.NOT_ENABLED
            await client.enable_sms_sign_in(UPN)
            await client.delete_phone(UPN, PhoneType.ALTERNATE_MOBILE)
            user = await client.get_user(UPN)
            assert user.user_principal_name == UPN
            assert (await client.get_user(user.id)).id == user.id
            policy, reason = await client.read_sms_policy()
            assert reason is None and policy.readable and policy.enabled and policy.include_all_users

    asyncio.run(run())
    phones = {p["phoneType"]: p for p in tenant.list_phones(UPN)}
    assert set(phones) == {"mobile", "office"}
    assert phones["mobile"]["phoneNumber"] == "+1 2065550199"
    assert phones["mobile"]["smsSignInState"] == "ready"


def test_wire_format_single_slashes_auth_header_no_sdk_retry(make_sandbox, clock) -> None:
    app = make_sandbox("strict")  # 5 writes/s, burst 1 s, on a clock that never moves
    app.sandbox.tenant.create_user(UPN)
    rec = RecordingTransport(httpx.ASGITransport(app))
    client = inprocess_client(app, transport=rec)

    async def run() -> GraphError:
        statuses: list[Any] = []
        for i in range(10):
            try:
                await client.create_phone(UPN, PhoneType.OFFICE, f"+1 20655501{i:02d}")
                statuses.append("ok")
            except GraphError as exc:
                if exc.status == 429:
                    return exc
                statuses.append(exc.code)
        raise AssertionError(f"never throttled: {statuses}")

    throttled = asyncio.run(run())
    asyncio.run(client.close())
    assert throttled.code == "TooManyRequests" and throttled.retry_after is not None and throttled.retry_after >= 1
    assert throttled.request_id
    first = rec.requests[0]
    assert first.url.raw_path.decode() == "/v1.0/users/ada%40contoso.com/authentication/phoneMethods"
    assert first.headers["authorization"].startswith("Bearer ")
    # The SDK's RetryHandler is off: every POST went out exactly once.
    assert all("retry-attempt" not in r.headers for r in rec.requests)
    assert app.sandbox.stats.http_requests == len(rec.requests)


def test_error_translation(make_sandbox) -> None:
    app = make_sandbox()
    tenant = app.sandbox.tenant
    tenant.create_user(UPN)
    tenant.create_user("bob@contoso.com")

    async def run() -> None:
        async with inprocess_client(app) as client:
            with pytest.raises(GraphError) as nf:
                await client.list_phones("nobody@contoso.com")
            assert nf.value.status == 404 and nf.value.code == "Request_ResourceNotFound" and nf.value.request_id
            await client.create_phone(UPN, PhoneType.MOBILE, MOBILE)
            with pytest.raises(GraphError) as dup:
                await client.create_phone("bob@contoso.com", PhoneType.MOBILE, MOBILE)
            assert dup.value.status == 409 and dup.value.code == "phoneNumberNotUnique"
            assert "2065550100" not in str(dup.value)
            with pytest.raises(GraphError) as bad:
                await client.create_phone(UPN, PhoneType.OFFICE, "2065550100")
            assert bad.value.status == 400 and not isinstance(bad.value, AuthError)
        reader = inprocess_client(app, token=make_token(roles=["User.Read.All"]))
        async with reader:
            with pytest.raises(AuthError) as denied:
                await reader.create_phone(UPN, PhoneType.OFFICE, "+1 2065550111")
            assert denied.value.status == 403 and denied.value.code == "accessDenied"
            policy, reason = await reader.read_sms_policy()
            assert policy == UNREADABLE_SMS_POLICY and "can't read" in reason
        anonymous = inprocess_client(app, token="not-a-jwt")
        async with anonymous:
            with pytest.raises(AuthError) as unauth:
                await anonymous.list_phones(UPN)
            assert unauth.value.status == 401

    asyncio.run(run())
    # 409 phoneNumberNotUnique saved bob's phone anyway (Graph's reported behaviour).
    assert tenant.list_phones("bob@contoso.com")[0]["phoneType"] == "mobile"


def test_transport_failures_say_whether_the_request_may_have_landed(make_sandbox, tmp_path) -> None:
    async def refused() -> TransportFailure:
        # A port nobody listens on: the request never left.
        client = loopback_client("http://127.0.0.1:9")
        async with client:
            with pytest.raises(TransportFailure) as info:
                await client.list_phones(UPN)
            return info.value

    failure = asyncio.run(refused())
    assert failure.status == 0 and failure.outcome_unknown is False

    profile = write_profile(tmp_path / "reset.toml", connection_reset=1)
    app = make_sandbox(str(profile))
    app.sandbox.tenant.create_user(UPN)

    async def reset() -> list:
        async with inprocess_client(app) as client:
            with pytest.raises(TransportFailure) as info:
                await client.create_phone(UPN, PhoneType.MOBILE, MOBILE)
            assert info.value.outcome_unknown is True
            return await client.batch([ops.list_phones("1", UPN), ops.list_phones("2", UPN)])

    results = asyncio.run(reset())
    assert [type(r.error) for r in results] == [TransportFailure, TransportFailure]
    assert all(r.error.outcome_unknown for r in results)


def test_batch_dependsOn_424_and_per_item_results(make_sandbox) -> None:
    app = make_sandbox()
    tenant = app.sandbox.tenant
    tenant.create_user(UPN)

    async def run():
        async with inprocess_client(app) as client:
            return await client.batch([
                ops.create_phone("1", UPN, PhoneType.ALTERNATE_MOBILE, "+1 2065550101"),  # no mobile yet: rejected
                ops.delete_phone("2", UPN, PhoneType.ALTERNATE_MOBILE, depends_on="1"),
                ops.create_phone("3", UPN, PhoneType.MOBILE, MOBILE),
                ops.update_phone("4", UPN, PhoneType.MOBILE, "+1 2065550177", depends_on="3"),
                ops.disable_sms_sign_in("5", UPN, depends_on="4"),
                ops.list_phones("6", "ghost@contoso.com"),
                ops.get_sms_policy("7"),
            ])

    r = asyncio.run(run())
    assert r[0].status == 400 and r[0].error is not None
    assert r[1].status == 424 and r[1].error.status == 424
    assert r[2].status == 201 and r[2].body["phoneType"] == "mobile"
    assert r[3].status in (200, 204) and r[3].ok
    assert r[4].status == 204
    assert r[5].status == 404 and r[5].error.code == "Request_ResourceNotFound"
    assert r[6].ok and ops.parse_sms_policy(r[6].body).enabled
    mobile = tenant.get_phone(UPN, METHOD_IDS[PhoneType.MOBILE])
    assert mobile["phoneNumber"] == "+1 2065550177" and mobile["smsSignInState"] == "notEnabled"
    assert [p["phoneType"] for p in tenant.list_phones(UPN)] == ["mobile"]


def test_batch_items_throttled_carry_their_retry_after(make_sandbox) -> None:
    app = make_sandbox("strict")  # 10 reads/s with a 1 s burst; the clock does not move
    app.sandbox.tenant.create_user(UPN)

    async def run():
        async with inprocess_client(app) as client:
            return await client.batch([ops.list_phones(str(i), UPN) for i in range(20)])

    results = asyncio.run(run())
    throttled = [r for r in results if r.status == 429]
    assert 0 < len(throttled) < 20
    assert all(r.retry_after is not None and r.retry_after >= 1 for r in throttled)
    assert all(r.error.code == "TooManyRequests" for r in throttled)


def test_masked_numbers_for_authentication_administrator(make_sandbox) -> None:
    app = make_sandbox()
    tenant = app.sandbox.tenant
    tenant.create_user(UPN)
    tenant.create_phone(UPN, MOBILE, "mobile")
    token = make_token(scp="UserAuthenticationMethod.Read.All", wids=[AUTHENTICATION_ADMINISTRATOR])

    async def run():
        async with inprocess_client(app, token=token) as client:
            return await client.list_phones(UPN)

    phones = asyncio.run(run())
    assert is_masked(phones[PhoneType.MOBILE].number)


def test_beta_root_works_too(make_sandbox) -> None:
    app = make_sandbox()
    app.sandbox.tenant.create_user(UPN)

    async def run():
        async with inprocess_client(app, version="beta") as client:
            await client.create_phone(UPN, PhoneType.MOBILE, MOBILE)
            return await client.batch([ops.list_phones("1", UPN)])

    (result,) = asyncio.run(run())
    assert ops.parse_phone_list(result.body)[PhoneType.MOBILE].number == MOBILE
