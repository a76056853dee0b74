"""The profile's [behaviour] variants and the sliding-window throttle: each value observable."""

from __future__ import annotations

import asyncio
import tomllib
from typing import Any

import httpx
import pytest
from msgraph.generated.models.authentication_phone_type import AuthenticationPhoneType as SdkType
from msgraph.generated.models.phone_authentication_method import PhoneAuthenticationMethod
from msgraph.generated.models.user import User
from support.clock import FakeClock
from support.sandbox import SandboxHandle, odata_error

from provision.model import METHOD_IDS, PhoneType
from provision.sandbox.app import create_app
from provision.sandbox.auth import (
    AUTHENTICATION_ADMINISTRATOR,
    GLOBAL_ADMINISTRATOR,
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    REPORTS_READER,
)
from provision.sandbox.behaviour import OPAQUE_CODES, OPAQUE_MESSAGE
from provision.sandbox.limits import (
    BehaviourSettings,
    ErrorText,
    ListOrder,
    NumberFormat,
    OperationKind,
    Profile,
    ProfileError,
    RetryAfterFormat,
    SlidingWindow,
    ThrottleAlgorithm,
    Throttled,
    Throttler,
    ThrottleSettings,
    load_profile,
    parse_profile,
    profile_toml,
)
from provision.sandbox.tenant import Tenant

MOBILE = METHOD_IDS[PhoneType.MOBILE]
JSON = {"Content-Type": "application/json"}


def _behaviour(**values: Any) -> Profile:
    return parse_profile({"behaviour": values}, "test")


def _send(handle: Any, *requests: tuple[str, str, Any]) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with handle.client() as http:
            return [await http.request(method, "/v1.0" + url, json=body) for method, url, body in requests]

    return asyncio.run(main())


def _batch(handle: Any, requests: list[dict[str, Any]]) -> httpx.Response:
    (response,) = _send(handle, ("POST", "/$batch", {"requests": requests}))
    return response


def _create_user(item_id: str, upn: str, **extra: Any) -> dict[str, Any]:
    body = {"userPrincipalName": upn, "accountEnabled": True}
    return {"id": item_id, "method": "POST", "url": "/users", "headers": JSON, "body": body, **extra}


# --- profile parsing ------------------------------------------------------------------------


def test_behaviour_defaults_and_every_value_parse() -> None:
    assert Profile().behaviour == BehaviourSettings()
    assert BehaviourSettings().number_format is NumberFormat.LENIENT
    variant = _behaviour(
        batch_order="shuffled", retry_after="fractional", number_format="strict", error_text="opaque", list_order="shuffled"
    ).behaviour
    assert (variant.retry_after, variant.error_text, variant.list_order) == (
        RetryAfterFormat.FRACTIONAL,
        ErrorText.OPAQUE,
        ListOrder.SHUFFLED,
    )
    text = profile_toml("mine", throttle={"algorithm": "window", "window_seconds": 60, "writes_per_second": 2}, behaviour={"batch_order": "shuffled"})
    parsed = parse_profile(tomllib.loads(text), "mine")
    assert parsed.throttle.algorithm is ThrottleAlgorithm.WINDOW and parsed.behaviour.batch_order.value == "shuffled"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"behaviour": {"batch_order": "random"}}, "behaviour.batch_order"),
        ({"behaviour": {"retry_after": 2}}, "behaviour.retry_after"),
        ({"behaviour": {"list_orders": "type"}}, "behaviour.list_orders"),
        ({"behaviour": {"error_text": "Opaque"}}, "behaviour.error_text"),
        ({"throttle": {"algorithm": "leaky"}}, "throttle.algorithm"),
        ({"throttle": {"window_seconds": "150"}}, "throttle.window_seconds"),
        ({"throttle": {"algorithm": "window", "window_seconds": 0}}, "throttle.window_seconds"),
        ({"behavior": {}}, "[behavior]"),
    ],
)
def test_profile_errors_name_the_key(data: dict[str, Any], named: str) -> None:
    with pytest.raises(ProfileError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_profile(data, "bad")


def test_the_shipped_graph_window_profile_allows_3000_writes_per_150_seconds() -> None:
    profile = load_profile("graph-window")
    t = profile.throttle
    assert t.algorithm is ThrottleAlgorithm.WINDOW and t.writes_per_second * t.window_seconds == 3000
    assert t.window_seconds == 150


# --- the sliding window -----------------------------------------------------------------------


def test_a_window_admits_exactly_its_capacity_and_retry_after_points_at_the_next_admission() -> None:
    clock = FakeClock(start=0.0)
    throttler = Throttler(ThrottleSettings(writes_per_second=2, algorithm=ThrottleAlgorithm.WINDOW, window_seconds=5), clock)

    def writes(n: int) -> list[float | None]:
        answers = [throttler.admit("app", "tid", OperationKind.WRITE) for _ in range(n)]
        return [None if a is None else a.wait for a in answers]

    assert writes(5) == [None] * 5  # t = 0
    clock.advance(1)
    assert writes(6) == [None] * 5 + [pytest.approx(4.0)]  # t = 1: capacity 2/s x 5 s = 10 reached
    clock.advance(2)
    assert writes(3) == [pytest.approx(2.0)] * 3  # t = 3: refusals are not counted, the wait holds
    clock.advance(2.0 - 0.001)
    assert writes(1) == [pytest.approx(0.001)]  # not yet
    clock.advance(0.001)  # t = 5: the five writes of t = 0 leave the window
    assert writes(6) == [None] * 5 + [pytest.approx(1.0)]
    assert throttler.admit("app", "tid", OperationKind.READ) is None  # reads: another lane (unlimited here)


def test_a_window_waits_exactly_and_rounds_whole_seconds_up() -> None:
    window = SlidingWindow(capacity=3, window=10)
    assert [window.take(t) for t in (0.0, 0.25, 0.5)] == [None, None, None]
    wait = window.take(1.0)
    assert wait == pytest.approx(9.0)
    wait = window.take(1.7)
    assert wait == pytest.approx(8.3)
    throttled = Throttled(wait=8.3, scope="s", information="i")
    assert throttled.retry_after_header(RetryAfterFormat.WHOLE) == "9"
    assert throttled.retry_after_header(RetryAfterFormat.FRACTIONAL) == "8.300"
    assert window.take(10.0) is None and window.take(10.0) is not None  # 0.0 left, 0.25 not yet


def test_window_counts_every_batch_item_and_its_retry_after_admits(asgi_sandbox: Any, fake_clock: FakeClock) -> None:
    profile = Profile(throttle=ThrottleSettings(writes_per_second=1, algorithm=ThrottleAlgorithm.WINDOW, window_seconds=12))
    asgi_sandbox.configure(profile=profile, clock=fake_clock)
    first = _batch(asgi_sandbox, [_create_user(str(i), f"u{i}@contoso.com") for i in range(15)]).json()["responses"]
    assert [r["status"] for r in first] == [201] * 12 + [429] * 3
    assert {r["headers"]["Retry-After"] for r in first[12:]} == {"12"}
    fake_clock.advance(11.5)
    assert _batch(asgi_sandbox, [_create_user("x", "x@contoso.com")]).json()["responses"][0]["status"] == 429
    fake_clock.advance(0.5)
    again = _batch(asgi_sandbox, [_create_user(str(i), f"u{i}@contoso.com") for i in range(12, 15)]).json()["responses"]
    assert [r["status"] for r in again] == [201, 201, 201]
    assert asgi_sandbox.tenant.user_count() == 15


# --- Retry-After --------------------------------------------------------------------------------


def test_fractional_retry_after_on_direct_answers_and_batch_items(asgi_sandbox: Any, fake_clock: FakeClock) -> None:
    profile = Profile(
        throttle=ThrottleSettings(writes_per_second=3, burst_seconds=1),
        behaviour=BehaviourSettings(retry_after=RetryAfterFormat.FRACTIONAL),
    )
    asgi_sandbox.configure(profile=profile, clock=fake_clock)
    items = _batch(asgi_sandbox, [_create_user(str(i), f"u{i}@contoso.com") for i in range(4)]).json()["responses"]
    (direct,) = _send(asgi_sandbox, ("POST", "/users", {"userPrincipalName": "d@contoso.com"}))
    item_wait = items[3]["headers"]["Retry-After"]
    # The bucket counts usage while throttled: one token short, then two, at 3 tokens/s.
    assert items[3]["status"] == 429 and item_wait == "0.667"  # two thirds of a second, rounded up
    assert direct.status_code == 429 and direct.headers["Retry-After"] == "1.000"
    fake_clock.advance(float(direct.headers["Retry-After"]))
    (after,) = _send(asgi_sandbox, ("POST", "/users", {"userPrincipalName": "d@contoso.com"}))
    assert after.status_code == 201


# --- $batch order -----------------------------------------------------------------------------


def _shuffled_run(seed: int) -> tuple[list[str], list[str]]:
    """(the order users were created in, the order of the answers) for one shuffled batch."""
    app = create_app(profile=_behaviour(batch_order="shuffled"), seed=seed)
    handle = SandboxHandle(app, "http://sandbox", httpx.ASGITransport(app=app))
    requests = [_create_user(str(i), f"u{i}@contoso.com") for i in range(12)]
    requests += [_create_user("after", "after@contoso.com", dependsOn=["3"]), _create_user("chained", "c@contoso.com", dependsOn="after")]
    answers = _batch(handle, requests).json()["responses"]
    assert {a["id"]: a["status"] for a in answers} == {r["id"]: 201 for r in requests}
    created = [u["upn"].split("@")[0] for u in handle.tenant.to_snapshot()["users"]]
    return created, [a["id"] for a in answers]


def test_a_shuffled_batch_runs_and_answers_in_random_orders_that_keep_dependants_after() -> None:
    created, answered = _shuffled_run(seed=7)
    in_request_order = [f"u{i}" for i in range(12)] + ["after", "c"]
    assert created != in_request_order and sorted(created) == sorted(in_request_order)
    assert created.index("u3") < created.index("after") < created.index("c")
    assert answered != [str(i) for i in range(12)] + ["after", "chained"]
    assert answered != [name.removeprefix("u").replace("c", "chained") for name in created]
    assert _shuffled_run(seed=7) == (created, answered)  # the seed decides


def test_request_order_is_the_default_and_more_than_one_dependency_rejects_the_batch(asgi_sandbox: Any) -> None:
    answers = _batch(asgi_sandbox, [_create_user(str(i), f"u{i}@contoso.com") for i in range(5)]).json()["responses"]
    assert [a["id"] for a in answers] == ["0", "1", "2", "3", "4"]
    two = _batch(asgi_sandbox, [_create_user("a", "a@contoso.com"), _create_user("b", "b@contoso.com"), _create_user("c", "c@contoso.com", dependsOn=["a", "b"])])
    assert two.status_code == 400 and "single other request" in two.json()["error"]["message"]
    assert asgi_sandbox.tenant.user_count() == 5


# --- error texts ------------------------------------------------------------------------------


def test_opaque_errors_keep_the_status_and_hide_code_and_message(asgi_sandbox: Any, fake_clock: FakeClock) -> None:
    profile = Profile(throttle=ThrottleSettings(writes_per_second=5), behaviour=BehaviourSettings(error_text=ErrorText.OPAQUE))
    asgi_sandbox.configure(profile=profile, clock=fake_clock)
    user = asgi_sandbox.tenant.create_user("adele@contoso.com")["id"]
    asgi_sandbox.tenant.create_user("bob@contoso.com")
    asgi_sandbox.tenant.create_phone("bob@contoso.com", "+1 2065550100", "mobile")
    phones = f"/users/{user}/authentication/phoneMethods"
    answers = _send(
        asgi_sandbox,
        ("POST", phones, {"phoneNumber": "+1 2065550100", "phoneType": "mobile"}),  # 409, saved anyway
        ("POST", phones, {"phoneNumber": "+1 2065550101", "phoneType": "mobile"}),  # 400 second mobile
        ("GET", "/users/nobody@contoso.com/authentication/phoneMethods", None),  # 404
        ("GET", "/devices", None),  # an unknown segment: not a rule, keeps its text
        *[("POST", "/users", {"userPrincipalName": f"t{i}@contoso.com"}) for i in range(4)],  # the 4th: 429
    )
    rule_answers = answers[:3]
    assert [a.status_code for a in rule_answers] == [409, 400, 404]
    for answer in rule_answers:
        error = answer.json()["error"]
        assert error["code"] in OPAQUE_CODES and error["message"] == OPAQUE_MESSAGE
    assert answers[3].json()["error"]["code"] == "BadRequest"
    assert answers[-1].status_code == 429 and answers[-1].json()["error"]["code"] == "TooManyRequests"
    assert asgi_sandbox.tenant.list_phones(user)[0]["smsSignInState"] == "phoneNumberNotUnique"
    async def denied() -> httpx.Response:
        async with asgi_sandbox.client(asgi_sandbox.make_token(roles=["User.Read.All"])) as http:
            return await http.get("/v1.0" + phones)

    refused = asyncio.run(denied())
    assert refused.status_code == 403 and refused.json()["error"]["code"] in OPAQUE_CODES


def test_sandbox_error_text_is_the_default(asgi_sandbox: Any) -> None:
    user = asgi_sandbox.tenant.create_user("adele@contoso.com")["id"]
    asgi_sandbox.tenant.create_phone(user, "+1 2065550100", "mobile")
    (answer,) = _send(asgi_sandbox, ("POST", f"/users/{user}/authentication/phoneMethods", {"phoneNumber": "+1 2065550101", "phoneType": "mobile"}))
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "badRequest")


# --- list order and shape ---------------------------------------------------------------------


def _three_phones(handle: Any) -> str:
    user: str = handle.tenant.create_user("adele@contoso.com")["id"]
    for number, phone_type in (("+1 2065550100", "mobile"), ("+1 2065550101", "alternateMobile"), ("+1 2065550102", "office")):
        handle.tenant.create_phone(user, number, phone_type)
    return user


def test_shuffled_lists_come_back_in_random_orders(asgi_sandbox: Any) -> None:
    asgi_sandbox.configure(profile=_behaviour(list_order="shuffled"), seed=3)
    user = _three_phones(asgi_sandbox)
    answers = _send(asgi_sandbox, *[("GET", f"/users/{user}/authentication/phoneMethods", None)] * 12)
    orders = {tuple(p["phoneType"] for p in a.json()["value"]) for a in answers}
    assert len(orders) > 1 and all(sorted(o) == ["alternateMobile", "mobile", "office"] for o in orders)


def test_lists_are_in_type_order_by_default_and_carry_their_context(asgi_sandbox: Any) -> None:
    user = _three_phones(asgi_sandbox)
    (answer,) = _send(asgi_sandbox, ("GET", "/users/adele@contoso.com/authentication/phoneMethods", None))
    body = answer.json()
    assert [p["phoneType"] for p in body["value"]] == ["mobile", "alternateMobile", "office"]
    assert body["@odata.context"] == (
        "https://graph.microsoft.com/v1.0/$metadata#users('adele%40contoso.com')/authentication/phoneMethods"
    )
    assert user


# --- number format, over loopback with the real SDK ------------------------------------------------


def test_lenient_numbers_are_stored_with_the_space_and_strict_ones_refused(sandbox: Any, graph_client: Any) -> None:
    user = sandbox.tenant.create_user("adele@contoso.com")["id"]

    async def create(number: str) -> Any:
        async with graph_client(sandbox.v1) as client:
            methods = client.users.by_user_id(user).authentication.phone_methods
            return await methods.post(PhoneAuthenticationMethod(phone_number=number, phone_type=SdkType.Mobile))

    created = asyncio.run(create("+14255550100"))
    assert created.phone_number == "+1 4255550100"
    assert sandbox.tenant.list_phones(user)[0]["phoneNumber"] == "+1 4255550100"

    sandbox.configure(profile=_behaviour(number_format="strict"))
    user = sandbox.tenant.create_user("adele@contoso.com")["id"]

    async def refused() -> Any:
        async with graph_client(sandbox.v1) as client:
            methods = client.users.by_user_id(user).authentication.phone_methods
            return await odata_error(methods.post(PhoneAuthenticationMethod(phone_number="+14255550100", phone_type=SdkType.Mobile)))

    err = asyncio.run(refused())
    assert (err.response_status_code, err.error.code) == (400, "badRequest")
    assert sandbox.tenant.list_phones(user) == []


def test_a_refused_phone_write_over_loopback_is_access_denied(sandbox: Any, graph_client: Any) -> None:
    user = sandbox.tenant.create_user("adele@contoso.com")["id"]

    async def main() -> tuple[Any, Any]:
        async with graph_client(sandbox.v1, sandbox.make_token(roles=["User.Read.All"])) as client:
            methods = client.users.by_user_id(user).authentication.phone_methods
            phone = await odata_error(methods.post(PhoneAuthenticationMethod(phone_number="+1 4255550100", phone_type=SdkType.Mobile)))
            directory = await odata_error(client.users.post(User(user_principal_name="x@contoso.com")))
            return phone, directory

    phone, directory = asyncio.run(main())
    assert (phone.response_status_code, phone.error.code, phone.error.message) == (403, "accessDenied", "Request Authorization failed")
    assert (directory.response_status_code, directory.error.code) == (403, "Authorization_RequestDenied")


# --- an Authentication Administrator manages non-admins only -------------------------------------


def test_an_authentication_administrator_may_not_write_an_admins_phones(asgi_sandbox: Any) -> None:
    tenant = asgi_sandbox.tenant
    users = {name: tenant.create_user(f"{name}@contoso.com")["id"] for name in ("plain", "reader", "admin")}
    tenant.set_user_roles(users["reader"], [REPORTS_READER])
    tenant.set_user_roles(users["admin"], [GLOBAL_ADMINISTRATOR])
    auth_admin = asgi_sandbox.make_token(scp="UserAuthenticationMethod.ReadWrite.All", wids=[AUTHENTICATION_ADMINISTRATOR])
    privileged = asgi_sandbox.make_token(scp="UserAuthenticationMethod.ReadWrite.All", wids=[PRIVILEGED_AUTHENTICATION_ADMINISTRATOR])

    async def post(token: str, user: str, number: str) -> httpx.Response:
        async with asgi_sandbox.client(token) as http:
            body = {"phoneNumber": number, "phoneType": "office"}
            return await http.post(f"/v1.0/users/{user}/authentication/phoneMethods", json=body)

    async def main() -> list[httpx.Response]:
        return [
            await post(auth_admin, users["plain"], "+1 4255550100"),
            await post(auth_admin, users["reader"], "+1 4255550101"),
            await post(auth_admin, users["admin"], "+1 4255550102"),
            await post(asgi_sandbox.token, users["admin"], "+1 4255550103"),  # app-only: not limited
        ]

    plain, reader, admin, app_only = asyncio.run(main())
    assert (plain.status_code, reader.status_code, app_only.status_code) == (201, 201, 201)
    assert (admin.status_code, admin.json()["error"]["code"]) == (403, "accessDenied")
    assert tenant.list_phones(users["admin"])[0]["phoneNumber"] == "+1 4255550103"
    again = asyncio.run(post(privileged, users["admin"], "+1 4255550104"))
    assert again.status_code == 400  # a second office phone: the rule, not the role, refuses it now
    snapshot = tenant.to_snapshot()
    assert [u.get("roles") for u in snapshot["users"]] == [None, [REPORTS_READER], [GLOBAL_ADMINISTRATOR]]
    assert Tenant.from_snapshot(snapshot).user_roles("admin@contoso.com") == frozenset({GLOBAL_ADMINISTRATOR})
