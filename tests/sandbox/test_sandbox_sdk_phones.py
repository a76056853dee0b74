"""Every phone-method rule, driven through the real msgraph-sdk over loopback HTTP.

Each test asserts the HTTP status, Graph error code and the tenant state afterwards.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from msgraph.generated.models.authentication_method_sign_in_state import (
    AuthenticationMethodSignInState as State,
)
from msgraph.generated.models.authentication_phone_type import (
    AuthenticationPhoneType as SdkType,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.phone_authentication_method import (
    PhoneAuthenticationMethod,
)
from support.sandbox import odata_error

from provision.model import METHOD_IDS, PhoneType

MOBILE = METHOD_IDS[PhoneType.MOBILE]
ALTERNATE = METHOD_IDS[PhoneType.ALTERNATE_MOBILE]
OFFICE = METHOD_IDS[PhoneType.OFFICE]


def phone(number: str, kind: SdkType) -> PhoneAuthenticationMethod:
    return PhoneAuthenticationMethod(phone_number=number, phone_type=kind)


def numbers(sandbox: Any, user: str) -> dict[str, tuple[str, str]]:
    return {p["phoneType"]: (p["phoneNumber"], p["smsSignInState"]) for p in sandbox.tenant.list_phones(user)}


@pytest.fixture
def user(sandbox: Any) -> str:
    return sandbox.tenant.create_user("adele@contoso.com", "Adele")["id"]


def test_create_mobile_by_percent_encoded_upn_returns_201_and_registers_sms(sandbox: Any, graph_client: Any, user: str) -> None:
    async def main() -> PhoneAuthenticationMethod:
        async with graph_client(sandbox.v1) as client:
            return await client.users.by_user_id("adele@contoso.com").authentication.phone_methods.post(
                phone("+1 2065555555", SdkType.Mobile)
            )

    created = asyncio.run(main())
    assert created.id == MOBILE and created.phone_number == "+1 2065555555"
    assert created.sms_sign_in_state == State.Ready
    assert numbers(sandbox, user) == {"mobile": ("+1 2065555555", "ready")}
    assert sandbox.stats()["by_status"] == {"201": 1}


def test_list_and_get_by_id_show_each_phone_with_its_sms_state(sandbox: Any, graph_client: Any, user: str) -> None:
    sandbox.tenant.create_phone(user, "+1 2065555555", "mobile")
    sandbox.tenant.create_phone(user, "+1 2065555556", "alternateMobile")
    sandbox.tenant.create_phone(user, "+1 4255555557x12", "office")

    async def main() -> tuple[Any, Any]:
        async with graph_client(sandbox.v1) as client:
            methods = client.users.by_user_id(user).authentication.phone_methods
            listed = await methods.get()
            office = await methods.by_phone_authentication_method_id(OFFICE).get()
            return listed, office

    listed, office = asyncio.run(main())
    states = {p.phone_type: p.sms_sign_in_state for p in listed.value}
    assert states == {SdkType.Mobile: State.Ready, SdkType.AlternateMobile: State.NotSupported, SdkType.Office: State.NotSupported}
    assert office.phone_number == "+1 4255555557x12" and office.id == OFFICE


def test_second_phone_of_a_type_is_rejected_and_the_first_kept(sandbox: Any, graph_client: Any, user: str) -> None:
    sandbox.tenant.create_phone(user, "+1 2065555555", "mobile")

    async def main() -> ODataError:
        async with graph_client(sandbox.v1) as client:
            return await odata_error(
                client.users.by_user_id(user).authentication.phone_methods.post(phone("+1 2065550000", SdkType.Mobile))
            )

    err = asyncio.run(main())
    assert (err.response_status_code, err.error.code) == (400, "badRequest")
    assert numbers(sandbox, user) == {"mobile": ("+1 2065555555", "ready")}


def test_alternate_mobile_needs_a_mobile(sandbox: Any, graph_client: Any, user: str) -> None:
    async def main() -> tuple[ODataError, PhoneAuthenticationMethod]:
        async with graph_client(sandbox.v1) as client:
            methods = client.users.by_user_id(user).authentication.phone_methods
            err = await odata_error(methods.post(phone("+1 2065550001", SdkType.AlternateMobile)))
            await methods.post(phone("+1 2065550000", SdkType.Mobile))
            alternate = await methods.post(phone("+1 2065550001", SdkType.AlternateMobile))
            return err, alternate

    err, alternate = asyncio.run(main())
    assert (err.response_status_code, err.error.code) == (400, "badRequest")
    assert alternate.id == ALTERNATE and alternate.sms_sign_in_state == State.NotSupported
    assert set(numbers(sandbox, user)) == {"mobile", "alternateMobile"}


def test_mobile_cannot_be_deleted_while_an_alternate_exists(sandbox: Any, graph_client: Any, user: str) -> None:
    sandbox.tenant.create_phone(user, "+1 2065550000", "mobile")
    sandbox.tenant.create_phone(user, "+1 2065550001", "alternateMobile")

    async def main() -> ODataError:
        async with graph_client(sandbox.v1) as client:
            methods = client.users.by_user_id(user).authentication.phone_methods
            err = await odata_error(methods.by_phone_authentication_method_id(MOBILE).delete())
            await methods.by_phone_authentication_method_id(ALTERNATE).delete()
            await methods.by_phone_authentication_method_id(MOBILE).delete()
            return err

    err = asyncio.run(main())
    assert (err.response_status_code, err.error.code) == (400, "badRequest")
    assert numbers(sandbox, user) == {}
    assert sandbox.stats()["by_operation"]["deletePhoneMethod"] == 3
    assert sandbox.stats()["by_status"]["204"] == 2


def test_update_returns_204_and_type_cannot_change(sandbox: Any, graph_client: Any, user: str) -> None:
    sandbox.tenant.create_phone(user, "+1 4255550000", "office")

    async def main() -> tuple[Any, ODataError]:
        async with graph_client(sandbox.v1) as client:
            item = client.users.by_user_id(user).authentication.phone_methods.by_phone_authentication_method_id(OFFICE)
            updated = await item.patch(phone("+1 4255550009x7", SdkType.Office))
            err = await odata_error(item.patch(phone("+1 4255550009", SdkType.Mobile)))
            return updated, err

    updated, err = asyncio.run(main())
    assert updated is None  # 204 No Content
    assert (err.response_status_code, err.error.code) == (400, "badRequest")
    assert numbers(sandbox, user) == {"office": ("+1 4255550009x7", "notSupported")}


@pytest.mark.parametrize("bad", ["2065550000", "+1 (206) 555-0000", "+1 206555x", "+0 2065550000", "+2891234567", "+1206555000012345"])  # the last two: no country code, 16 digits
def test_numbers_not_in_graph_format_are_rejected_on_create_and_update(
    sandbox: Any, graph_client: Any, user: str, bad: str
) -> None:
    sandbox.tenant.create_phone(user, "+1 4255550000", "office")

    async def main() -> tuple[ODataError, ODataError]:
        async with graph_client(sandbox.v1) as client:
            methods = client.users.by_user_id(user).authentication.phone_methods
            on_create = await odata_error(methods.post(phone(bad, SdkType.Mobile)))
            on_update = await odata_error(methods.by_phone_authentication_method_id(OFFICE).patch(phone(bad, SdkType.Office)))
            return on_create, on_update

    for err in asyncio.run(main()):
        assert (err.response_status_code, err.error.code) == (400, "badRequest")
    assert numbers(sandbox, user) == {"office": ("+1 4255550000", "notSupported")}


def test_unknown_user_and_unknown_method_are_404(sandbox: Any, graph_client: Any, user: str) -> None:
    async def main() -> tuple[ODataError, ODataError, ODataError]:
        async with graph_client(sandbox.v1) as client:
            nobody = await odata_error(client.users.by_user_id("nobody@contoso.com").authentication.phone_methods.get())
            missing = await odata_error(
                client.users.by_user_id(user).authentication.phone_methods.by_phone_authentication_method_id(MOBILE).get()
            )
            bogus = await odata_error(
                client.users.by_user_id(user).authentication.phone_methods.by_phone_authentication_method_id("nope").delete()
            )
            return nobody, missing, bogus

    nobody, missing, bogus = asyncio.run(main())
    assert (nobody.response_status_code, nobody.error.code) == (404, "Request_ResourceNotFound")
    assert (missing.response_status_code, missing.error.code) == (404, "itemNotFound")
    assert bogus.response_status_code == 404
    assert nobody.error.inner_error.request_id == nobody.response_headers["request-id"]


def test_mobile_number_taken_for_sms_answers_409_but_saves_the_phone(sandbox: Any, graph_client: Any, user: str) -> None:
    other = sandbox.tenant.create_user("megan@contoso.com")["id"]
    sandbox.tenant.create_phone(other, "+1 2065550042", "mobile")

    async def main() -> tuple[ODataError, Any]:
        async with graph_client(sandbox.v1) as client:
            methods = client.users.by_user_id(user).authentication.phone_methods
            err = await odata_error(methods.post(phone("+1 2065550042", SdkType.Mobile)))
            return err, await methods.by_phone_authentication_method_id(MOBILE).get()

    err, saved = asyncio.run(main())
    assert (err.response_status_code, err.error.code) == (409, "phoneNumberNotUnique")
    assert saved.phone_number == "+1 2065550042" and saved.sms_sign_in_state == State.PhoneNumberNotUnique
    stats = sandbox.stats()
    assert stats["writes_applied"] == 1 and stats["writes_succeeded"] == 0


def test_changing_a_mobile_to_a_taken_number_answers_409_and_saves_it(sandbox: Any, graph_client: Any, user: str) -> None:
    other = sandbox.tenant.create_user("megan@contoso.com")["id"]
    sandbox.tenant.create_phone(other, "+1 2065550042", "mobile")
    sandbox.tenant.create_phone(user, "+1 2065550001", "mobile")

    async def main() -> ODataError:
        async with graph_client(sandbox.v1) as client:
            item = client.users.by_user_id(user).authentication.phone_methods.by_phone_authentication_method_id(MOBILE)
            return await odata_error(item.patch(phone("+1 2065550042", SdkType.Mobile)))

    err = asyncio.run(main())
    assert (err.response_status_code, err.error.code) == (409, "phoneNumberNotUnique")
    assert numbers(sandbox, user) == {"mobile": ("+1 2065550042", "phoneNumberNotUnique")}
    assert numbers(sandbox, other) == {"mobile": ("+1 2065550042", "ready")}


def test_disable_then_enable_sms_sign_in(sandbox: Any, graph_client: Any, user: str) -> None:
    sandbox.tenant.create_phone(user, "+1 2065550001", "mobile")

    async def main() -> list[str]:
        async with graph_client(sandbox.v1) as client:
            item = client.users.by_user_id(user).authentication.phone_methods.by_phone_authentication_method_id(MOBILE)
            seen = []
            assert await item.disable_sms_sign_in.post() is None
            seen.append((await item.get()).sms_sign_in_state)
            assert await item.enable_sms_sign_in.post() is None
            seen.append((await item.get()).sms_sign_in_state)
            return seen

    assert asyncio.run(main()) == [State.NotEnabled, State.Ready]
    assert sandbox.stats()["by_operation"]["enableSmsSignIn"] == 1


def test_enable_sms_sign_in_refuses_non_mobile_taken_number_and_policy(sandbox: Any, graph_client: Any, user: str) -> None:
    other = sandbox.tenant.create_user("megan@contoso.com")["id"]
    sandbox.tenant.create_phone(user, "+1 2065550042", "mobile")
    sandbox.tenant.disable_sms_sign_in(user, MOBILE)
    sandbox.tenant.create_phone(other, "+1 2065550042", "mobile")  # now holds the number
    sandbox.tenant.create_phone(user, "+1 2065550043", "alternateMobile")

    async def main() -> tuple[ODataError, ODataError, ODataError]:
        async with graph_client(sandbox.v1) as client:
            methods = client.users.by_user_id(user).authentication.phone_methods
            on_alternate = await odata_error(methods.by_phone_authentication_method_id(ALTERNATE).enable_sms_sign_in.post())
            taken = await odata_error(methods.by_phone_authentication_method_id(MOBILE).enable_sms_sign_in.post())
            sandbox.tenant.update_sms_policy({"excludeTargets": [{"targetType": "user", "id": user}]})
            by_policy = await odata_error(methods.by_phone_authentication_method_id(MOBILE).enable_sms_sign_in.post())
            return on_alternate, taken, by_policy

    on_alternate, taken, by_policy = asyncio.run(main())
    assert (on_alternate.response_status_code, on_alternate.error.code) == (400, "badRequest")
    assert (taken.response_status_code, taken.error.code) == (409, "phoneNumberNotUnique")
    assert (by_policy.response_status_code, by_policy.error.code) == (400, "badRequest")
    assert numbers(sandbox, user)["mobile"] == ("+1 2065550042", "notAllowedByPolicy")


def test_soft_deleted_user_keeps_the_sms_number_reserved(sandbox: Any, graph_client: Any, user: str) -> None:
    leaver = sandbox.tenant.create_user("leaver@contoso.com")["id"]
    sandbox.tenant.create_phone(leaver, "+1 2065550042", "mobile")

    async def main() -> tuple[ODataError, ODataError]:
        async with graph_client(sandbox.v1) as client:
            await client.users.by_user_id(leaver).delete()
            gone = await odata_error(client.users.by_user_id(leaver).get())
            taken = await odata_error(
                client.users.by_user_id(user).authentication.phone_methods.post(phone("+1 2065550042", SdkType.Mobile))
            )
            return gone, taken

    gone, taken = asyncio.run(main())
    assert (gone.response_status_code, gone.error.code) == (404, "Request_ResourceNotFound")
    assert (taken.response_status_code, taken.error.code) == (409, "phoneNumberNotUnique")
    assert numbers(sandbox, user) == {"mobile": ("+1 2065550042", "phoneNumberNotUnique")}
    assert sandbox.tenant.sms_registration_holder("+1 2065550042") == leaver


def test_users_create_get_by_upn_and_id_delete(sandbox: Any, graph_client: Any) -> None:
    from msgraph.generated.models.user import User

    async def main() -> tuple[Any, Any, Any, ODataError]:
        async with graph_client(sandbox.v1) as client:
            created = await client.users.post(User(user_principal_name="new.hire@contoso.com", display_name="New Hire", account_enabled=True))
            by_upn = await client.users.by_user_id("new.hire@contoso.com").get()
            by_id = await client.users.by_user_id(created.id.upper()).get()
            dup = await odata_error(client.users.post(User(user_principal_name="NEW.HIRE@contoso.com", display_name="x", account_enabled=True)))
            await client.users.by_user_id(created.id).delete()
            return created, by_upn, by_id, dup

    created, by_upn, by_id, dup = asyncio.run(main())
    assert len(created.id) == 36 and by_upn.id == by_id.id == created.id
    assert by_upn.display_name == "New Hire" and by_upn.account_enabled is True
    assert (dup.response_status_code, dup.error.code) == (400, "Request_BadRequest")
    assert sandbox.tenant.user_count() == 0 and sandbox.tenant.user_count(include_deleted=True) == 1
    assert sandbox.stats()["by_operation"] == {"createUser": 2, "deleteUser": 1, "getUser": 2}


def test_sms_policy_get_and_patch(sandbox: Any, graph_client: Any, user: str) -> None:
    from msgraph.generated.models.authentication_method_state import (
        AuthenticationMethodState,
    )
    from msgraph.generated.models.authentication_method_target_type import (
        AuthenticationMethodTargetType,
    )
    from msgraph.generated.models.sms_authentication_method_configuration import (
        SmsAuthenticationMethodConfiguration,
    )
    from msgraph.generated.models.sms_authentication_method_target import (
        SmsAuthenticationMethodTarget,
    )

    sandbox.tenant.create_phone(user, "+1 2065550001", "mobile")
    token = sandbox.make_token(roles=["Policy.ReadWrite.AuthenticationMethod", "UserAuthenticationMethod.Read.All"])

    async def main() -> tuple[Any, Any, Any]:
        async with graph_client(sandbox.v1, token) as client:
            sms = client.policies.authentication_methods_policy.authentication_method_configurations.by_authentication_method_configuration_id("sms")
            before = await sms.get()
            target = SmsAuthenticationMethodTarget(id=user, target_type=AuthenticationMethodTargetType.User, is_usable_for_sign_in=False)
            patched = await sms.patch(SmsAuthenticationMethodConfiguration(state=AuthenticationMethodState.Enabled, include_targets=[target]))
            after = await sms.get()
            return before, patched, after

    before, patched, after = asyncio.run(main())
    assert before.state == AuthenticationMethodState.Enabled
    assert before.include_targets[0].id == "all_users"
    assert patched is None  # 204
    assert [(t.id, t.is_usable_for_sign_in) for t in after.include_targets] == [(user, False)]
    assert numbers(sandbox, user)["mobile"][1] == "notAllowedByPolicy"
    assert sandbox.stats()["by_status"] == {"200": 2, "204": 1}
