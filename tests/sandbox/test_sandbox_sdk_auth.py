"""Authentication, permissions, masking and the wire details, through the real msgraph-sdk
over loopback (and httpx for what the SDK can't send)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.authentication_phone_type import (
    AuthenticationPhoneType as SdkType,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.phone_authentication_method import (
    PhoneAuthenticationMethod,
)
from support.sandbox import odata_error

from provision.model import METHOD_IDS, PhoneType
from provision.sandbox.auth import (
    AUTHENTICATION_ADMINISTRATOR,
    GLOBAL_READER,
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    make_token,
)

MOBILE = METHOD_IDS[PhoneType.MOBILE]
RW_ALL = "UserAuthenticationMethod.ReadWrite.All"


@pytest.fixture
def user(sandbox: Any) -> str:
    user_id = sandbox.tenant.create_user("adele@contoso.com")["id"]
    sandbox.tenant.create_phone(user_id, "+44 7700900123", "mobile")
    return user_id


def _list(graph_client: Any, sandbox: Any, user: str, token: str) -> Any:
    async def main() -> Any:
        async with graph_client(sandbox.v1, token) as client:
            try:
                return await client.users.by_user_id(user).authentication.phone_methods.get()
            except ODataError as exc:
                return exc

    return asyncio.run(main())


@pytest.mark.parametrize(
    "token",
    ["", "not-a-jwt", "a.b.c", make_token(tid="11111111-2222-3333-4444-555555555555"), make_token(lifetime_s=-60)],
    ids=["empty", "no-dots", "garbled", "other-tenant", "expired"],
)
def test_missing_garbled_foreign_or_expired_tokens_get_401(sandbox: Any, graph_client: Any, user: str, token: str) -> None:
    err = _list(graph_client, sandbox, user, token)
    assert isinstance(err, ODataError)
    assert (err.response_status_code, err.error.code) == (401, "InvalidAuthenticationToken")


@pytest.mark.parametrize(
    "claims",
    [
        {"roles": ["User.Read.All"]},
        {"roles": ["UserAuthenticationMethod.Read.All"]},  # read-only: no writes
        {"scp": RW_ALL, "wids": []},  # delegated without a directory role
        {"scp": RW_ALL, "wids": [GLOBAL_READER]},  # Global Reader reads only
    ],
    ids=["no-phone-permission", "read-only-app", "delegated-no-role", "global-reader"],
)
def test_writes_without_permission_or_role_get_403_and_change_nothing(
    sandbox: Any, graph_client: Any, user: str, claims: dict[str, Any]
) -> None:
    token = sandbox.make_token(**claims)

    async def main() -> ODataError:
        async with graph_client(sandbox.v1, token) as client:
            item = client.users.by_user_id(user).authentication.phone_methods.by_phone_authentication_method_id(MOBILE)
            return await odata_error(item.patch(PhoneAuthenticationMethod(phone_number="+44 7700900999", phone_type=SdkType.Mobile)))

    err = asyncio.run(main())
    # Authentication-method routes answer as their own service does, not as the directory.
    assert (err.response_status_code, err.error.code) == (403, "accessDenied")
    assert err.error.message == "Request Authorization failed"
    assert sandbox.tenant.list_phones(user)[0]["phoneNumber"] == "+44 7700900123"


@pytest.mark.parametrize(
    "claims",
    [
        {"roles": ["UserAuthMethod-Phone.ReadWrite.All"]},
        {"roles": [RW_ALL]},
        {"scp": "UserAuthMethod-Phone.ReadWrite", "wids": [PRIVILEGED_AUTHENTICATION_ADMINISTRATOR]},
        {"scp": RW_ALL, "wids": [AUTHENTICATION_ADMINISTRATOR]},
    ],
    ids=["app-phone-rw", "app-authmethod-rw", "delegated-pam", "delegated-auth-admin"],
)
def test_accepted_write_permissions(sandbox: Any, graph_client: Any, user: str, claims: dict[str, Any]) -> None:
    token = sandbox.make_token(**claims)

    async def main() -> None:
        async with graph_client(sandbox.v1, token) as client:
            item = client.users.by_user_id(user).authentication.phone_methods.by_phone_authentication_method_id(MOBILE)
            await item.patch(PhoneAuthenticationMethod(phone_number="+44 7700900999", phone_type=SdkType.Mobile))

    asyncio.run(main())
    assert sandbox.tenant.list_phones(user)[0]["phoneNumber"] == "+44 7700900999"


def test_authentication_administrator_reads_masked_numbers_others_unmasked(sandbox: Any, graph_client: Any, user: str) -> None:
    scp = "UserAuthenticationMethod.Read.All"
    masked = _list(graph_client, sandbox, user, sandbox.make_token(scp=scp, wids=[AUTHENTICATION_ADMINISTRATOR]))
    reader = _list(graph_client, sandbox, user, sandbox.make_token(scp=scp, wids=[GLOBAL_READER]))
    app = _list(graph_client, sandbox, user, sandbox.make_token(roles=["UserAuthMethod-Phone.Read.All"]))
    assert masked.value[0].phone_number != "+44 7700900123"
    assert masked.value[0].phone_number.endswith("23") and "7700900" not in masked.value[0].phone_number
    assert reader.value[0].phone_number == app.value[0].phone_number == "+44 7700900123"


def test_policy_needs_policy_permissions(sandbox: Any, graph_client: Any) -> None:
    async def main(token: str) -> Any:
        async with graph_client(sandbox.v1, token) as client:
            sms = client.policies.authentication_methods_policy.authentication_method_configurations.by_authentication_method_configuration_id("sms")
            try:
                return await sms.get()
            except ODataError as exc:
                return exc

    denied = asyncio.run(main(sandbox.make_token(roles=[RW_ALL])))
    allowed = asyncio.run(main(sandbox.make_token(roles=["Policy.Read.All"])))
    assert (denied.response_status_code, denied.error.code) == (403, "Authorization_RequestDenied")
    assert allowed.id == "Sms"


def test_client_request_id_is_echoed_and_request_id_is_fresh(sandbox: Any, graph_client: Any, user: str) -> None:
    async def main() -> tuple[ODataError, ODataError]:
        async with graph_client(sandbox.v1) as client:
            config = RequestConfiguration()
            config.headers.add("client-request-id", "f00dfeed-0000-4000-8000-000000000001")
            methods = client.users.by_user_id("ghost@contoso.com").authentication.phone_methods
            first = await odata_error(methods.get(request_configuration=config))
            second = await odata_error(methods.get(request_configuration=config))
            return first, second

    first, second = asyncio.run(main())
    assert first.error.inner_error.client_request_id == "f00dfeed-0000-4000-8000-000000000001"
    assert first.response_headers["client-request-id"] == "f00dfeed-0000-4000-8000-000000000001"
    assert first.error.inner_error.request_id == first.response_headers["request-id"]
    assert first.response_headers["request-id"] != second.response_headers["request-id"]


def test_beta_behaves_like_v1(sandbox: Any, graph_client: Any, user: str) -> None:
    async def main() -> tuple[Any, None]:
        async with graph_client(sandbox.beta) as client:
            item = client.users.by_user_id("adele@contoso.com").authentication.phone_methods.by_phone_authentication_method_id(MOBILE)
            updated = await item.patch(PhoneAuthenticationMethod(phone_number="+44 7700900777", phone_type=SdkType.Mobile))
            return await item.get(), updated

    got, updated = asyncio.run(main())
    assert updated is None and got.phone_number == "+44 7700900777"


def test_double_slashes_and_a_trailing_slash_base_url_are_tolerated(sandbox: Any, user: str) -> None:
    async def main() -> list[httpx.Response]:
        async with sandbox.client() as http:
            return [
                await http.get("/v1.0//users/adele%40contoso.com/authentication/phoneMethods"),
                await http.get(f"{sandbox.root}//beta//users//{user}//authentication//phoneMethods//{MOBILE}"),
            ]

    listed, got = asyncio.run(main())
    assert listed.status_code == got.status_code == 200
    assert listed.json()["value"][0]["phoneNumber"] == got.json()["phoneNumber"] == "+44 7700900123"
    assert listed.headers["request-id"] and listed.headers["content-type"] == "application/json"


def test_unknown_routes_methods_and_bad_json(sandbox: Any, user: str) -> None:
    async def main() -> list[httpx.Response]:
        async with sandbox.client() as http:
            return [
                await http.get("/v1.0/devices"),
                await http.get("/v2.0/users/x"),
                await http.put(f"/v1.0/users/{user}/authentication/phoneMethods/{MOBILE}", json={}),
                await http.post(
                    f"/v1.0/users/{user}/authentication/phoneMethods",
                    content=b"{not json",
                    headers={"Content-Type": "application/json", "client-request-id": "abc"},
                ),
            ]

    unknown, version, method, bad_json = asyncio.run(main())
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "BadRequest")
    assert unknown.json()["error"]["message"] == "Resource not found for the segment 'devices'."
    assert (version.status_code, version.json()["error"]["code"]) == (404, "UnknownError")
    assert (method.status_code, method.json()["error"]["code"]) == (405, "BadRequest")
    assert (bad_json.status_code, bad_json.json()["error"]["code"]) == (400, "BadRequest")
    assert bad_json.json()["error"]["innerError"]["client-request-id"] == "abc"
    assert set(bad_json.json()["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
