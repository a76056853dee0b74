"""$batch: envelope limits, dependsOn/424, per-item throttling, one latency per request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from provision.model import METHOD_IDS, PhoneType
from provision.sandbox.limits import LatencySettings, Profile, ThrottleSettings

MOBILE = METHOD_IDS[PhoneType.MOBILE]
JSON = {"Content-Type": "application/json"}


def _post_batch(handle: Any, requests: list[dict[str, Any]], **kwargs: Any) -> httpx.Response:
    async def main() -> httpx.Response:
        async with handle.client() as http:
            return await http.post("/v1.0/$batch", json={"requests": requests}, **kwargs)

    return asyncio.run(main())


def _by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200
    return {item["id"]: item for item in response.json()["responses"]}


def _create_user(item_id: str, upn: str, **extra: Any) -> dict[str, Any]:
    body = {"userPrincipalName": upn, "displayName": upn.split("@")[0], "accountEnabled": True}
    return {"id": item_id, "method": "POST", "url": "/users", "headers": JSON, "body": body, **extra}


def test_more_than_20_requests_or_duplicate_ids_reject_the_whole_batch(asgi_sandbox: Any) -> None:
    too_many = _post_batch(asgi_sandbox, [_create_user(str(i), f"u{i}@contoso.com") for i in range(21)])
    duplicate = _post_batch(asgi_sandbox, [_create_user("a", "a@contoso.com"), _create_user("A", "b@contoso.com")])
    absolute = _post_batch(asgi_sandbox, [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users/x"}])
    for response in (too_many, duplicate, absolute):
        assert (response.status_code, response.json()["error"]["code"]) == (400, "BadRequest")
    assert asgi_sandbox.tenant.user_count() == 0
    exactly_20 = _post_batch(asgi_sandbox, [_create_user(str(i), f"u{i}@contoso.com") for i in range(20)])
    assert {item["status"] for item in exactly_20.json()["responses"]} == {201}
    assert asgi_sandbox.tenant.user_count() == 20


def test_items_run_through_the_same_rules_and_answer_with_their_own_ids(asgi_sandbox: Any) -> None:
    user = asgi_sandbox.tenant.create_user("adele@contoso.com")["id"]
    phones = f"/users/{user}/authentication/phoneMethods"
    answers = _by_id(
        _post_batch(
            asgi_sandbox,
            [
                {"id": "m", "method": "POST", "url": phones, "headers": JSON, "body": {"phoneNumber": "+1 2065550100", "phoneType": "mobile"}},
                {"id": "bad", "method": "POST", "url": phones, "headers": JSON, "body": {"phoneNumber": "2065550100", "phoneType": "office"}},
                {"id": "alt", "method": "POST", "url": phones, "headers": JSON, "dependsOn": ["m"], "body": {"phoneNumber": "+1 2065550101", "phoneType": "alternateMobile"}},
                {"id": "list", "method": "GET", "url": phones, "dependsOn": ["alt"], "headers": {"client-request-id": "item-crid"}},
                {"id": "ghost", "method": "GET", "url": "users/ghost%40contoso.com"},
            ],
            headers={"client-request-id": "envelope-crid"},
        )
    )
    assert answers["m"]["status"] == 201 and answers["m"]["body"]["smsSignInState"] == "ready"
    assert answers["bad"]["status"] == 400 and answers["bad"]["body"]["error"]["code"] == "badRequest"
    assert answers["alt"]["status"] == 201
    assert [p["phoneType"] for p in answers["list"]["body"]["value"]] == ["mobile", "alternateMobile"]
    assert answers["list"]["headers"]["client-request-id"] == "item-crid"
    ghost = answers["ghost"]
    assert ghost["status"] == 404 and ghost["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert ghost["body"]["error"]["innerError"]["client-request-id"] == "envelope-crid"
    assert ghost["body"]["error"]["innerError"]["request-id"] == ghost["headers"]["request-id"]
    assert len({a["headers"]["request-id"] for a in answers.values()}) == 5
    stats = asgi_sandbox.stats()
    assert (stats["http_requests"], stats["batches"], stats["operations"]) == (1, 1, 5)
    assert stats["by_operation"] == {"createPhoneMethod": 3, "getUser": 1, "listPhoneMethods": 1}


def test_a_failed_or_missing_dependency_gives_424_and_the_dependant_never_runs(asgi_sandbox: Any) -> None:
    answers = _by_id(
        _post_batch(
            asgi_sandbox,
            [
                _create_user("1", "not a upn"),
                _create_user("2", "second@contoso.com", dependsOn=["1"]),
                _create_user("3", "third@contoso.com", dependsOn=["2"]),
                _create_user("4", "fourth@contoso.com", dependsOn=["missing"]),
                _create_user("5", "fifth@contoso.com"),
            ],
        )
    )
    assert {k: v["status"] for k, v in answers.items()} == {"1": 400, "2": 424, "3": 424, "4": 424, "5": 201}
    assert answers["2"]["body"]["error"]["code"] == "FailedDependency"
    assert [u["upn"] for u in asgi_sandbox.tenant.to_snapshot()["users"]] == ["fifth@contoso.com"]


def test_each_item_is_throttled_on_its_own_with_its_own_retry_after(asgi_sandbox: Any, fake_clock: Any) -> None:
    asgi_sandbox.configure(profile=Profile(throttle=ThrottleSettings(writes_per_second=2, burst_seconds=1)), clock=fake_clock)
    first = _by_id(_post_batch(asgi_sandbox, [_create_user(str(i), f"u{i}@contoso.com") for i in range(5)]))
    statuses = [first[str(i)]["status"] for i in range(5)]
    assert statuses == [201, 201, 429, 429, 429]
    throttled = first["2"]
    assert throttled["body"]["error"]["code"] == "TooManyRequests"
    assert int(throttled["headers"]["Retry-After"]) >= 1
    assert throttled["headers"]["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert throttled["headers"]["x-ms-throttle-scope"].startswith("Tenant_Application/Write/")
    assert asgi_sandbox.tenant.user_count() == 2
    fake_clock.advance(max(int(first[str(i)]["headers"]["Retry-After"]) for i in (2, 3, 4)))
    retry = _by_id(_post_batch(asgi_sandbox, [_create_user("2", "u2@contoso.com")]))
    assert retry["2"]["status"] == 201
    assert asgi_sandbox.stats()["throttled"] == 3


def test_batch_latency_is_the_slowest_item_not_the_sum(asgi_sandbox: Any, fake_clock: Any) -> None:
    profile = Profile(latency=LatencySettings(read_ms=100, write_ms=300))
    asgi_sandbox.configure(profile=profile, clock=fake_clock, sleep=fake_clock.sleep)
    user = asgi_sandbox.tenant.create_user("adele@contoso.com")["id"]
    _post_batch(asgi_sandbox, [{"id": str(i), "method": "GET", "url": f"/users/{user}"} for i in range(4)] + [_create_user("w", "w@contoso.com")])

    async def direct() -> None:
        async with asgi_sandbox.client() as http:
            await http.get(f"/v1.0/users/{user}")

    asyncio.run(direct())
    assert fake_clock.slept == [0.3, 0.1]


def test_batch_through_the_sdk_adapter_over_loopback(sandbox: Any, graph_client: Any) -> None:
    user = sandbox.tenant.create_user("adele@contoso.com")["id"]
    phones = f"/users/{user}/authentication/phoneMethods"
    payload = {
        "requests": [
            {"id": "1", "method": "POST", "url": phones, "headers": JSON, "body": {"phoneNumber": "+1 2065550100", "phoneType": "mobile"}},
            {"id": "2", "method": "POST", "url": f"{phones}/{MOBILE}/disableSmsSignIn", "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": f"{phones}/{MOBILE}", "dependsOn": ["2"]},
        ]
    }

    async def main() -> tuple[dict[str, Any], ODataError]:
        async with graph_client(sandbox.v1) as client:
            info = RequestInformation()
            info.http_method = Method.POST
            info.url = sandbox.v1 + "/$batch"
            info.headers.try_add("Content-Type", "application/json")
            info.content = json.dumps(payload).encode()
            raw = await client.request_adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
            info.content = json.dumps({"requests": [{"id": "x", "method": "GET", "url": "/users/a"}] * 2}).encode()
            try:
                await client.request_adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
            except ODataError as exc:
                return json.loads(raw), exc
            raise AssertionError("duplicate ids were accepted")

    answer, rejected = asyncio.run(main())
    by_id = {item["id"]: item for item in answer["responses"]}
    assert [by_id[i]["status"] for i in "123"] == [201, 204, 200]
    assert by_id["3"]["body"]["smsSignInState"] == "notEnabled"
    assert (rejected.response_status_code, rejected.error.code) == (400, "BadRequest")


def test_a_dependency_on_a_later_item_or_on_two_items_rejects_the_batch() -> None:
    from provision.sandbox.batch import BatchError, parse_batch

    def batch(*requests: dict[str, Any]) -> Any:
        return parse_batch({"requests": list(requests)})

    ok = batch({"id": "a", "method": "GET", "url": "x"}, {"id": "b", "method": "get", "url": "/x", "dependsOn": "A"})
    assert ok[1].depends_on == ("A",) and ok[1].method == "GET" and ok[0].path == "/x"
    for bad in (
        [{"id": "c", "method": "GET", "url": "/x", "dependsOn": ["b"]}, {"id": "b", "method": "GET", "url": "/x"}],
        [{"id": "loop", "method": "GET", "url": "/x", "dependsOn": ["loop"]}],
        [{"id": "a", "method": "GET", "url": "/x"}, {"id": "b", "method": "GET", "url": "/x"}, {"id": "c", "method": "GET", "url": "/x", "dependsOn": ["a", "b"]}],
    ):
        with pytest.raises(BatchError):
            batch(*bad)


def test_dependants_run_after_their_dependencies_and_cycles_fail() -> None:
    from provision.sandbox.batch import BatchItem, run_batch

    def item(item_id: str, *depends: str) -> BatchItem:
        return BatchItem(item_id, "GET", "/x", {}, None, depends)

    # run_batch orders whatever it is given (parse_batch lets through only earlier dependencies).
    items = [item("c", "b"), item("b", "a"), item("a"), item("loop1", "loop2"), item("loop2", "LOOP1")]
    ran: list[str] = []

    def execute(item: Any) -> int:
        ran.append(item.id)
        return 200

    outcomes = run_batch(items, execute, lambda item: 424, lambda status: status)
    assert ran == ["a", "b", "c"]
    assert [(o.item.id, o.result) for o in outcomes] == [("c", 200), ("b", 200), ("a", 200), ("loop1", 424), ("loop2", 424)]
