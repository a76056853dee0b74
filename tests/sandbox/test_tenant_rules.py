"""The sandbox tenant's rules, in process: status, error code and resulting state for each."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.clock import FakeClock

from provision.model import METHOD_IDS, PhoneType
from provision.sandbox.snapshot import load_snapshot, save_snapshot
from provision.sandbox.snapshot_format import SnapshotError
from provision.sandbox.tenant import (
    Tenant,
    TenantError,
    TenantInvariantError,
    is_graph_phone_number,
    mask_phone_number,
)

MOBILE = METHOD_IDS[PhoneType.MOBILE]
ALT = METHOD_IDS[PhoneType.ALTERNATE_MOBILE]
OFFICE = METHOD_IDS[PhoneType.OFFICE]
N1, N2, N3 = "+1 2065550101", "+1 2065550102", "+1 2065550103"
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "sandbox_tenant.json"


def numbers(tenant: Tenant, ref: str) -> dict[str, str]:
    return {p["phoneType"]: p["phoneNumber"] for p in tenant.list_phones(ref)}


def states(tenant: Tenant, ref: str) -> dict[str, str]:
    return {p["phoneType"]: p["smsSignInState"] for p in tenant.list_phones(ref)}


def raises(status: int, code: str, fn: Any, *args: Any, **kwargs: Any) -> TenantError:
    with pytest.raises(TenantError) as info:
        fn(*args, **kwargs)
    assert (info.value.status, info.value.code) == (status, code), info.value
    return info.value


@pytest.fixture
def tenant() -> Tenant:
    return Tenant()


@pytest.fixture
def alice(tenant: Tenant) -> str:
    return tenant.create_user("alice@contoso.com", "Alice")["id"]


@pytest.fixture
def bob(tenant: Tenant) -> str:
    return tenant.create_user("bob@contoso.com", "Bob")["id"]


def test_tenant_error_behaves_like_an_exception() -> None:
    error = TenantError(409, "phoneNumberNotUnique", "taken", saved=True)
    error.add_note("hypothesis and pytest attach notes to exceptions")
    assert (error.status, error.code, error.message, error.saved) == (409, "phoneNumberNotUnique", "taken", True)
    assert str(error) == "409 phoneNumberNotUnique: taken (the write was saved)"


# phone number format ---------------------------------------------------------------------
@pytest.mark.parametrize("value", ["+1 2065550100", "+44 2079460958x12", "+1 5555551234x123", "+49 3012345678"])
def test_graph_format_accepts(value: str) -> None:
    assert is_graph_phone_number(value)


@pytest.mark.parametrize(
    "value",
    [
        "+12065550100",  # no space after the country code
        "2065550100",  # no country code
        "+1 206-555-0100",  # separators
        "+1 2065550100 x12",  # space before the extension
        "+1 2065550100X12",  # upper-case X is how masked numbers look
        "+0 2065550100",  # country codes never start with 0
        "+1 ２０６５５５０１００",  # non-ASCII digits
        "+1 2065550100\n",
        "+44 12345678901234",  # 16 digits in all: beyond E.164
        "+1 123",  # too short to be a number
        "",
        None,
        12065550100,
    ],
)
def test_graph_format_rejects(value: Any) -> None:
    assert not is_graph_phone_number(value)


# users -------------------------------------------------------------------------------------
def test_create_user_returns_graph_json_with_uuid4(tenant: Tenant) -> None:
    user = tenant.create_user("Carol@Contoso.com", "Carol", False)
    assert uuid.UUID(user["id"]).version == 4
    assert user == {
        "id": user["id"],
        "userPrincipalName": "Carol@Contoso.com",
        "displayName": "Carol",
        "accountEnabled": False,
    }
    assert tenant.get_user("carol@contoso.COM") == user
    assert tenant.get_user(user["id"].upper()) == user
    assert tenant.user_count() == 1


def test_create_user_with_given_id_is_addressable_in_any_case(tenant: Tenant) -> None:
    given_id = "A1B2C3D4-0000-4000-8000-00000000000F"
    user = tenant.create_user("dave@contoso.com", id=given_id)
    assert user["id"] == given_id.lower()
    assert tenant.get_user(given_id)["userPrincipalName"] == "dave@contoso.com"


def test_duplicate_upn_is_rejected_case_insensitively(tenant: Tenant, alice: str) -> None:
    raises(400, "Request_BadRequest", tenant.create_user, "ALICE@contoso.com")
    assert tenant.user_count() == 1


@pytest.mark.parametrize("upn", ["", "no-at-sign", "two@@contoso.com", "space @contoso.com", "a@nodot"])
def test_invalid_upn_is_rejected(tenant: Tenant, upn: str) -> None:
    raises(400, "Request_BadRequest", tenant.create_user, upn)
    assert tenant.user_count() == 0


def test_duplicate_id_is_rejected(tenant: Tenant, alice: str) -> None:
    raises(400, "Request_BadRequest", tenant.create_user, "other@contoso.com", id=alice)
    assert tenant.user_count() == 1


def test_unknown_user_is_request_resource_not_found(tenant: Tenant) -> None:
    ref = "00000000-0000-4000-8000-000000000123"
    error = raises(404, "Request_ResourceNotFound", tenant.get_user, ref)
    assert error.message == (
        f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present."
    )
    raises(404, "Request_ResourceNotFound", tenant.list_phones, "nobody@contoso.com")
    raises(404, "Request_ResourceNotFound", tenant.create_phone, ref, N1, "mobile")
    raises(404, "Request_ResourceNotFound", tenant.delete_user, ref)


def test_soft_deleted_user_is_invisible_but_keeps_sms_number(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.delete_user("Alice@contoso.com")
    for call, args in [
        (tenant.get_user, (alice,)),
        (tenant.get_user, ("alice@contoso.com",)),
        (tenant.list_phones, (alice,)),
        (tenant.delete_user, (alice,)),
        (tenant.create_phone, (alice, N2, "office")),
    ]:
        raises(404, "Request_ResourceNotFound", call, *args)
    assert tenant.user_count() == 1 and tenant.user_count(include_deleted=True) == 2
    assert tenant.phone_count() == 0
    # Nobody else can register the number for SMS sign-in: the phone is saved, SMS is not.
    error = raises(409, "phoneNumberNotUnique", tenant.create_phone, bob, N1, "mobile")
    assert error.saved is True
    assert states(tenant, bob) == {"mobile": "phoneNumberNotUnique"}
    assert tenant.sms_registration_holder(N1) == alice
    # The UPN itself is free again.
    again = tenant.create_user("alice@contoso.com")
    assert again["id"] != alice
    tenant.check_invariants()


# create ------------------------------------------------------------------------------------
def test_create_mobile_returns_the_phone_object(tenant: Tenant, alice: str) -> None:
    phone = tenant.create_phone(alice, N1, "mobile")
    assert phone == {
        "@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
        "id": MOBILE,
        "phoneNumber": N1,
        "phoneType": "mobile",
        "smsSignInState": "ready",
    }
    assert tenant.list_phones(alice) == [phone]
    assert tenant.get_phone(alice, MOBILE.upper()) == phone
    assert tenant.phone_count(PhoneType.MOBILE) == 1


@pytest.mark.parametrize(
    ("number", "phone_type"),
    [(None, "mobile"), (N1, None), (N1, "fax"), (N1, "Mobile"), (N1, 3), (12065550101, "mobile")],
)
def test_create_requires_number_and_known_type(tenant: Tenant, alice: str, number: Any, phone_type: Any) -> None:
    raises(400, "badRequest", tenant.create_phone, alice, number, phone_type)
    assert tenant.list_phones(alice) == []


@pytest.mark.parametrize("number", ["2065550100", "+1 206-555-0100", "+1 2065550100 x12", "+12065550100 x12", "+0065550100"])
def test_create_rejects_bad_format_without_echoing_the_number(tenant: Tenant, alice: str, number: str) -> None:
    error = raises(400, "badRequest", tenant.create_phone, alice, number, "office")
    assert number not in error.message and "2065550100" not in error.message and "65550100" not in error.message
    assert tenant.list_phones(alice) == []


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("+12065550100", "+1 2065550100"),
        ("+442079460958x12", "+44 2079460958x12"),
        ("+3531234567", "+353 1234567"),  # a three-digit country code
        ("+1 2065550100", "+1 2065550100"),
    ],
)
def test_a_lenient_tenant_stores_unspaced_numbers_with_the_space(tenant: Tenant, alice: str, sent: str, stored: str) -> None:
    tenant.create_phone(alice, sent, "office")
    assert numbers(tenant, alice) == {"office": stored}


def test_a_lenient_tenant_treats_an_unspaced_number_as_the_same_number(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.update_phone(alice, MOBILE, N1.replace(" ", ""))  # the same number: nothing changes
    assert states(tenant, alice) == {"mobile": "ready"}
    raises(409, "phoneNumberNotUnique", tenant.create_phone, bob, N1.replace(" ", ""), "mobile")
    assert numbers(tenant, bob) == {"mobile": N1}


def test_a_strict_tenant_refuses_unspaced_numbers() -> None:
    tenant = Tenant(lenient_numbers=False)
    alice = tenant.create_user("alice@contoso.com")["id"]
    raises(400, "badRequest", tenant.create_phone, alice, "+12065550100", "office")
    tenant.create_phone(alice, "+1 2065550100", "office")
    raises(400, "badRequest", tenant.update_phone, alice, OFFICE, "+12065550101")
    assert numbers(tenant, alice) == {"office": "+1 2065550100"}


def test_second_phone_of_a_type_is_rejected(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, N1, "office")
    error = raises(400, "badRequest", tenant.create_phone, alice, N2, "office")
    assert "already exists" in error.message and "office" in error.message
    assert numbers(tenant, alice) == {"office": N1}


def test_alternate_mobile_requires_a_mobile(tenant: Tenant, alice: str) -> None:
    raises(400, "badRequest", tenant.create_phone, alice, N2, "alternateMobile")
    assert tenant.list_phones(alice) == []
    tenant.create_phone(alice, N1, "mobile")
    alt = tenant.create_phone(alice, N2, "alternateMobile")
    assert (alt["id"], alt["smsSignInState"]) == (ALT, "notSupported")
    office = tenant.create_phone(alice, N3, "office")  # an office phone needs nothing
    assert (office["id"], office["smsSignInState"]) == (OFFICE, "notSupported")
    assert [p["phoneType"] for p in tenant.list_phones(alice)] == ["mobile", "alternateMobile", "office"]


def test_office_phone_needs_no_mobile(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, N3, "office")
    assert states(tenant, alice) == {"office": "notSupported"}


def test_phones_are_listed_in_canonical_order(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, N3, "office")
    tenant.create_phone(alice, N1, "mobile")
    tenant.create_phone(alice, N2, "alternateMobile")
    assert [p["id"] for p in tenant.list_phones(alice)] == [MOBILE, ALT, OFFICE]


# update ------------------------------------------------------------------------------------
def test_update_unknown_method_or_absent_phone_is_item_not_found(tenant: Tenant, alice: str) -> None:
    raises(404, "itemNotFound", tenant.update_phone, alice, "not-a-method", N1)
    raises(404, "itemNotFound", tenant.update_phone, alice, OFFICE, N1)
    raises(404, "itemNotFound", tenant.get_phone, alice, OFFICE)
    assert tenant.list_phones(alice) == []


def test_update_cannot_change_a_phones_type(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, N3, "office")
    error = raises(400, "badRequest", tenant.update_phone, alice, OFFICE, N1, "mobile")
    assert "can't change a phone's type" in error.message
    assert numbers(tenant, alice) == {"office": N3}
    tenant.update_phone(alice, OFFICE, N2, "office")  # the same type may be repeated
    assert numbers(tenant, alice) == {"office": N2}


def test_update_rejects_bad_format(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, N3, "office")
    error = raises(400, "badRequest", tenant.update_phone, alice, OFFICE, "+1 206 555 0103")
    assert "206" not in error.message.replace("+1 5555551234", "")
    assert numbers(tenant, alice) == {"office": N3}


def test_update_mobile_moves_the_sms_registration(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.update_phone(alice, MOBILE, N2)
    assert tenant.get_phone(alice, MOBILE) == {
        "@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
        "id": MOBILE,
        "phoneNumber": N2,
        "phoneType": "mobile",
        "smsSignInState": "ready",
    }
    assert tenant.sms_registration_holder(N2) == alice
    assert tenant.sms_registration_holder(N1) is None
    tenant.create_phone(bob, N1, "mobile")  # the old number is free for someone else
    assert states(tenant, bob) == {"mobile": "ready"}
    tenant.check_invariants()


def test_update_mobile_to_a_taken_number_saves_it_and_answers_409(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.create_phone(bob, N2, "mobile")
    error = raises(409, "phoneNumberNotUnique", tenant.update_phone, bob, MOBILE, N1)
    assert error.saved is True and "2065550101" not in error.message
    assert tenant.get_phone(bob, MOBILE)["phoneNumber"] == N1
    assert states(tenant, bob) == {"mobile": "phoneNumberNotUnique"}
    assert tenant.sms_registration_holder(N1) == alice
    assert tenant.sms_registration_holder(N2) is None  # bob's old number was released
    tenant.check_invariants()


def test_numbers_compare_by_digits_only(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, "+1 2065550101", "mobile")
    raises(409, "phoneNumberNotUnique", tenant.create_phone, bob, "+12 065550101", "mobile")
    assert states(tenant, bob) == {"mobile": "phoneNumberNotUnique"}


def test_reformatting_a_mobile_keeps_its_registration(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, "+1 2065550101", "mobile")
    tenant.disable_sms_sign_in(alice, MOBILE)
    tenant.update_phone(alice, MOBILE, "+12 065550101")  # same digits: not a new number
    assert states(tenant, alice) == {"mobile": "notEnabled"}
    tenant.update_phone(alice, MOBILE, N2)  # a new number: registration attempted again
    assert states(tenant, alice) == {"mobile": "ready"}


# delete ------------------------------------------------------------------------------------
def test_delete_absent_or_unknown_phone_is_item_not_found(tenant: Tenant, alice: str) -> None:
    raises(404, "itemNotFound", tenant.delete_phone, alice, MOBILE)
    raises(404, "itemNotFound", tenant.delete_phone, alice, "00000000-0000-0000-0000-000000000000")


def test_mobile_cannot_be_deleted_while_an_alternate_exists(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.create_phone(alice, N2, "alternateMobile")
    raises(400, "badRequest", tenant.delete_phone, alice, MOBILE)
    assert numbers(tenant, alice) == {"mobile": N1, "alternateMobile": N2}
    tenant.delete_phone(alice, ALT)
    tenant.delete_phone(alice, MOBILE)
    assert tenant.list_phones(alice) == [] and tenant.phone_count() == 0
    assert tenant.sms_registration_holder(N1) is None  # deleting a mobile releases its number
    tenant.create_phone(bob, N1, "mobile")
    assert states(tenant, bob) == {"mobile": "ready"}


def test_default_mfa_method_cannot_be_deleted(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.create_phone(alice, N3, "office")
    tenant.set_default_method(alice, "office")
    raises(400, "badRequest", tenant.delete_phone, alice, OFFICE)
    assert numbers(tenant, alice) == {"mobile": N1, "office": N3}
    tenant.delete_phone(alice, MOBILE)  # not the default: allowed
    assert numbers(tenant, alice) == {"office": N3}
    tenant.set_default_method(alice, None)
    tenant.delete_phone(alice, OFFICE)
    assert tenant.list_phones(alice) == []


# smsSignInState ---------------------------------------------------------------------------
def test_sms_state_not_allowed_by_policy_and_no_registration(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.update_sms_policy({"excludeTargets": [{"targetType": "user", "id": bob}]})
    # Bob isn't allowed: no registration is attempted, so a taken number is no error.
    phone = tenant.create_phone(bob, N1, "mobile")
    assert phone["smsSignInState"] == "notAllowedByPolicy"
    assert tenant.sms_registration_holder(N1) == alice
    assert states(tenant, alice) == {"mobile": "ready"}


def test_sms_state_not_configured_when_allowed_but_never_registered(tenant: Tenant, alice: str) -> None:
    tenant.update_sms_policy({"state": "disabled"})
    tenant.create_phone(alice, N1, "mobile")
    assert states(tenant, alice) == {"mobile": "notAllowedByPolicy"}
    tenant.update_sms_policy({"state": "enabled"})
    assert states(tenant, alice) == {"mobile": "notConfigured"}
    tenant.enable_sms_sign_in(alice, MOBILE)
    assert states(tenant, alice) == {"mobile": "ready"}


def test_policy_disabled_hides_ready_but_keeps_registration(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.update_sms_policy({"state": "disabled"})
    assert states(tenant, alice) == {"mobile": "notAllowedByPolicy"}
    assert tenant.sms_registration_holder(N1) == alice
    tenant.update_sms_policy({"state": "enabled"})
    assert states(tenant, alice) == {"mobile": "ready"}


# enable / disable --------------------------------------------------------------------------
def test_enable_only_on_the_mobile_method(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.create_phone(alice, N2, "alternateMobile")
    for method in (ALT, OFFICE, "whatever"):
        raises(400, "badRequest", tenant.enable_sms_sign_in, alice, method)
        raises(400, "badRequest", tenant.disable_sms_sign_in, alice, method)
    assert states(tenant, alice) == {"mobile": "ready", "alternateMobile": "notSupported"}


def test_enable_needs_a_mobile(tenant: Tenant, alice: str) -> None:
    raises(404, "itemNotFound", tenant.enable_sms_sign_in, alice, MOBILE)
    raises(404, "itemNotFound", tenant.disable_sms_sign_in, alice, MOBILE)


def test_enable_needs_the_policy(tenant: Tenant, alice: str) -> None:
    tenant.update_sms_policy({"excludeTargets": [{"targetType": "user", "id": alice}]})
    tenant.create_phone(alice, N1, "mobile")
    error = raises(400, "badRequest", tenant.enable_sms_sign_in, alice, MOBILE)
    assert error.message == "Cannot enable SMS sign-in on phone auth method as the credential policy is not enabled on user"
    assert tenant.sms_registration_count() == 0
    assert states(tenant, alice) == {"mobile": "notAllowedByPolicy"}


def test_enable_needs_a_unique_number(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.update_sms_policy({"state": "disabled"})
    tenant.create_phone(bob, N1, "mobile")  # saved without a registration attempt
    tenant.update_sms_policy({"state": "enabled"})
    assert states(tenant, bob) == {"mobile": "notConfigured"}
    error = raises(409, "phoneNumberNotUnique", tenant.enable_sms_sign_in, bob, MOBILE)
    assert error.saved is False
    assert states(tenant, bob) == {"mobile": "phoneNumberNotUnique"}
    tenant.disable_sms_sign_in(alice, MOBILE)
    tenant.enable_sms_sign_in(bob, MOBILE)
    assert states(tenant, bob) == {"mobile": "ready"}
    assert states(tenant, alice) == {"mobile": "notEnabled"}
    assert tenant.sms_registration_holder(N1) == bob
    tenant.check_invariants()


def test_enable_is_idempotent_and_disable_releases(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.enable_sms_sign_in(alice, MOBILE)
    tenant.enable_sms_sign_in(alice, MOBILE)
    assert states(tenant, alice) == {"mobile": "ready"} and tenant.sms_registration_count() == 1
    tenant.disable_sms_sign_in(alice, MOBILE)
    tenant.disable_sms_sign_in(alice, MOBILE)
    assert states(tenant, alice) == {"mobile": "notEnabled"} and tenant.sms_registration_count() == 0
    tenant.create_phone(bob, N1, "mobile")
    assert states(tenant, bob) == {"mobile": "ready"}
    raises(409, "phoneNumberNotUnique", tenant.enable_sms_sign_in, alice, MOBILE)
    assert states(tenant, alice) == {"mobile": "phoneNumberNotUnique"}


# SMS policy ---------------------------------------------------------------------------------
def test_default_policy(tenant: Tenant) -> None:
    assert tenant.get_sms_policy() == {
        "@odata.type": "#microsoft.graph.smsAuthenticationMethodConfiguration",
        "id": "Sms",
        "state": "enabled",
        "includeTargets": [
            {"targetType": "group", "id": "all_users", "isRegistrationRequired": False, "isUsableForSignIn": True}
        ],
        "excludeTargets": [],
    }


def test_policy_targets_decide_who_is_allowed(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.update_sms_policy(
        {
            "includeTargets": [
                {"targetType": "user", "id": alice.upper(), "isUsableForSignIn": True},
                {"targetType": "user", "id": bob, "isUsableForSignIn": False},
            ]
        }
    )
    policy = tenant.get_sms_policy()
    assert policy["state"] == "enabled"  # untouched by the patch
    assert policy["includeTargets"] == [
        {"targetType": "user", "id": alice, "isRegistrationRequired": False, "isUsableForSignIn": True},
        {"targetType": "user", "id": bob, "isRegistrationRequired": False, "isUsableForSignIn": False},
    ]
    assert tenant.sms_allowed(alice) and not tenant.sms_allowed(bob)
    tenant.create_phone(alice, N1, "mobile")
    tenant.create_phone(bob, N2, "mobile")
    assert states(tenant, alice) == {"mobile": "ready"}
    assert states(tenant, bob) == {"mobile": "notAllowedByPolicy"}
    tenant.update_sms_policy({"excludeTargets": [{"targetType": "group", "id": "all_users"}]})
    assert not tenant.sms_allowed(alice)


@pytest.mark.parametrize(
    "patch",
    [
        {"state": "on"},
        {"state": None},
        {"includeTargets": "all_users"},
        {"includeTargets": [{"targetType": "device", "id": "all_users"}]},
        {"includeTargets": [{"targetType": "user", "id": "not-a-guid"}]},
        {"includeTargets": [{"targetType": "group", "id": "all_users", "isUsableForSignIn": "yes"}]},
        {"excludeTargets": [{"targetType": "user"}]},
        {"excludeTargets": [{"targetType": "user", "id": "all_users", "isUsableForSignIn": True}]},
        {"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration"},
        {"id": "Fido2"},
        {"unknownProperty": 1},
        ["state", "disabled"],
    ],
)
def test_bad_policy_patch_is_rejected_whole(tenant: Tenant, patch: Any) -> None:
    before = tenant.get_sms_policy()
    body = {"state": "disabled", **patch} if isinstance(patch, dict) else patch
    raises(400, "badRequest", tenant.update_sms_policy, body)
    assert tenant.get_sms_policy() == before


def test_policy_patch_replaces_only_the_given_keys(tenant: Tenant, alice: str) -> None:
    tenant.update_sms_policy({"state": "disabled"})
    tenant.update_sms_policy({"excludeTargets": [{"targetType": "user", "id": alice}]})
    tenant.update_sms_policy({"includeTargets": [{"targetType": "user", "id": alice}]})
    policy = tenant.get_sms_policy()
    assert policy["state"] == "disabled"
    assert policy["excludeTargets"] == [{"targetType": "user", "id": alice}]
    assert policy["includeTargets"] == [
        {"targetType": "user", "id": alice, "isRegistrationRequired": False, "isUsableForSignIn": True}
    ]


def test_policy_reads_are_copies(tenant: Tenant) -> None:
    tenant.get_sms_policy()["includeTargets"][0]["isUsableForSignIn"] = False
    assert tenant.get_sms_policy()["includeTargets"][0]["isUsableForSignIn"] is True


# masked reads -------------------------------------------------------------------------------
def test_masked_reads(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, "+1 2065550100", "mobile")
    tenant.create_phone(alice, "+44 2079460958x12", "office")
    assert numbers(tenant, alice) == {"mobile": "+1 2065550100", "office": "+44 2079460958x12"}
    masked = {p["phoneType"]: p["phoneNumber"] for p in tenant.list_phones(alice, masked=True)}
    assert masked == {"mobile": "+1 XXXXXXXX00", "office": "+44 XXXXXXXX58"}
    assert tenant.get_phone(alice, MOBILE, masked=True)["phoneNumber"] == "+1 XXXXXXXX00"
    assert not is_graph_phone_number(masked["mobile"])
    assert mask_phone_number("+12065550100") == "+XXXXXXXXX00"  # legacy formats too


# replication lag ----------------------------------------------------------------------------
def test_just_created_mobile_is_invisible_to_reads_and_the_alternate_rule() -> None:
    clock = FakeClock()
    tenant = Tenant(clock=clock, replication_lag_s=2.0)
    alice = tenant.create_user("alice@contoso.com")["id"]
    tenant.create_phone(alice, N1, "mobile")
    assert tenant.list_phones(alice) == []
    raises(404, "itemNotFound", tenant.get_phone, alice, MOBILE)
    raises(400, "badRequest", tenant.create_phone, alice, N2, "alternateMobile")
    # Writes to the same type see it at once.
    error = raises(400, "badRequest", tenant.create_phone, alice, N2, "mobile")
    assert "already exists" in error.message
    clock.now += 1.999
    assert tenant.list_phones(alice) == []
    clock.now += 0.001
    assert numbers(tenant, alice) == {"mobile": N1}
    tenant.create_phone(alice, N2, "alternateMobile")
    assert numbers(tenant, alice) == {"mobile": N1, "alternateMobile": N2}
    tenant.check_invariants()


def test_just_changed_mobile_reads_show_the_old_number() -> None:
    clock = FakeClock()
    tenant = Tenant(clock=clock, replication_lag_s=5.0)
    alice = tenant.create_user("alice@contoso.com")["id"]
    tenant.create_phone(alice, N1, "mobile")
    clock.now += 5
    tenant.update_phone(alice, MOBILE, N2)
    assert numbers(tenant, alice) == {"mobile": N1}
    tenant.create_phone(alice, N3, "alternateMobile")  # a mobile existed before the change
    tenant.update_phone(alice, MOBILE, N3)  # a write during the lag extends it
    clock.now += 4
    assert tenant.get_phone(alice, MOBILE)["phoneNumber"] == N1
    clock.now += 1
    assert tenant.get_phone(alice, MOBILE)["phoneNumber"] == N3
    assert tenant.sms_registration_holder(N3) == alice


def test_no_lag_by_default(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.create_phone(alice, N2, "alternateMobile")
    assert numbers(tenant, alice) == {"mobile": N1, "alternateMobile": N2}


# counts and invariants ----------------------------------------------------------------------
def test_counts(tenant: Tenant, alice: str, bob: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.create_phone(alice, N2, "office")
    tenant.create_phone(bob, N3, "office")
    assert tenant.counts() == {
        "users": 2,
        "deleted_users": 0,
        "phones": 3,
        "phones_mobile": 1,
        "phones_alternateMobile": 0,
        "phones_office": 2,
        "sms_registrations": 1,
    }
    tenant.delete_user(bob)
    assert (tenant.user_count(), tenant.phone_count(), tenant.phone_count(PhoneType.OFFICE)) == (1, 2, 1)


def test_check_invariants_reports_broken_state(tenant: Tenant, alice: str) -> None:
    tenant.create_phone(alice, N1, "mobile")
    tenant.create_phone(alice, N2, "alternateMobile")
    tenant.check_invariants()
    # Break the state behind the rules' back: the checker must notice.
    del tenant._users[alice].phones[PhoneType.MOBILE]
    with pytest.raises(TenantInvariantError) as info:
        tenant.check_invariants()
    assert any("alternateMobile without a mobile" in v for v in info.value.violations)
    assert any("SMS registry" in v for v in info.value.violations)
    assert not any("2065550101" in v for v in info.value.violations)


_PHONE_OPS = st.tuples(
    st.sampled_from(["create", "update", "delete", "enable", "disable", "policy", "delete_user"]),
    st.integers(0, 2),  # user
    st.sampled_from(list(PhoneType)),
    st.sampled_from([N1, N2, N3, "+12 065550101", "bad"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_PHONE_OPS, max_size=40))
def test_any_sequence_of_operations_keeps_invariants(ops: list[tuple[str, int, PhoneType, str]]) -> None:
    clock = FakeClock()
    tenant = Tenant(clock=clock, replication_lag_s=1.0)
    users = [tenant.create_user(f"u{i}@contoso.com")["id"] for i in range(3)]
    for op, who, phone_type, number in ops:
        ref, method = users[who], METHOD_IDS[phone_type]
        clock.now += 0.5
        try:
            if op == "create":
                tenant.create_phone(ref, number, phone_type.value)
            elif op == "update":
                tenant.update_phone(ref, method, number)
            elif op == "delete":
                tenant.delete_phone(ref, method)
            elif op == "enable":
                tenant.enable_sms_sign_in(ref, method)
            elif op == "disable":
                tenant.disable_sms_sign_in(ref, method)
            elif op == "policy":
                tenant.update_sms_policy({"state": "disabled" if who == 0 else "enabled"})
            else:
                tenant.delete_user(ref)
        except TenantError as error:
            assert error.status in (400, 404, 409)
        tenant.check_invariants()
    assert Tenant.from_snapshot(tenant.to_snapshot()).to_snapshot() == tenant.to_snapshot()


# snapshots ----------------------------------------------------------------------------------
def _varied_tenant() -> Tenant:
    tenant = Tenant(tenant_id="11111111-2222-4333-8444-555555555555")
    a = tenant.create_user("alice@contoso.com", "Alice")["id"]
    b = tenant.create_user("bob@contoso.com", "Bob", False)["id"]
    c = tenant.create_user("carol@contoso.com")["id"]
    d = tenant.create_user("dave@contoso.com")["id"]
    tenant.create_phone(a, N1, "mobile")
    tenant.create_phone(a, N2, "alternateMobile")
    tenant.create_phone(a, "+44 2079460958x12", "office")
    tenant.set_default_method(a, "mobile")
    tenant.create_phone(d, N3, "mobile")
    tenant.delete_user(d)
    with pytest.raises(TenantError):
        tenant.create_phone(b, N3, "mobile")  # notUnique: dave (deleted) holds it
    tenant.create_phone(c, "+49 3012345678", "mobile")
    tenant.disable_sms_sign_in(c, MOBILE)
    tenant.update_sms_policy({"excludeTargets": [{"targetType": "user", "id": c}]})
    return tenant


def test_snapshot_round_trip_keeps_state_and_rules(tmp_path: Path) -> None:
    tenant = _varied_tenant()
    data = tenant.to_snapshot()
    assert json.loads(json.dumps(data)) == data
    path = tmp_path / "tenant.json"
    save_snapshot(tenant, path)
    loaded = load_snapshot(path)
    assert loaded.to_snapshot() == data
    loaded.check_invariants()
    for ref in ("alice@contoso.com", "bob@contoso.com", "carol@contoso.com"):
        assert loaded.list_phones(ref) == tenant.list_phones(ref)
    assert states(loaded, "bob@contoso.com") == {"mobile": "phoneNumberNotUnique"}
    assert states(loaded, "carol@contoso.com") == {"mobile": "notAllowedByPolicy"}
    raises(404, "Request_ResourceNotFound", loaded.get_user, "dave@contoso.com")
    raises(400, "badRequest", loaded.delete_phone, "alice@contoso.com", MOBILE)  # the alternate exists
    loaded.delete_phone("alice@contoso.com", ALT)
    raises(400, "badRequest", loaded.delete_phone, "alice@contoso.com", MOBILE)  # the default method
    raises(409, "phoneNumberNotUnique", loaded.update_phone, "alice@contoso.com", MOBILE, N3)
    assert loaded.counts()["deleted_users"] == 1


def _snapshot_with(users: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"format": "provision-sandbox-tenant", "version": 1, "tenant_id": "t", "users": users, **extra}


def _user(n: int, **fields: Any) -> dict[str, Any]:
    return {"id": f"00000000-0000-4000-8000-00000000000{n}", "upn": f"u{n}@contoso.com", **fields}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"format": "other", "version": 1, "tenant_id": "t"}, "format"),
        (_snapshot_with([]) | {"version": 2}, "version"),
        (_snapshot_with([], extra=1), "unknown key"),
        (_snapshot_with([_user(1), _user(2, upn="U1@contoso.com")]), "userPrincipalName"),
        (_snapshot_with([_user(1), _user(1, upn="x@contoso.com")]), "property id"),
        (_snapshot_with([_user(1, phones=[{"phoneType": "pager", "phoneNumber": N1}])]), "phoneType"),
        (_snapshot_with([_user(1, phones=[{"phoneType": "office", "phoneNumber": N1, "sms": "registered"}])]), "sms"),
        (_snapshot_with([_user(1, phones=[{"phoneType": "office", "phoneNumber": N1}] * 2)]), "more than one"),
        (_snapshot_with([_user(1, phones=[{"phoneType": "alternateMobile", "phoneNumber": N1}])]), "needs a mobile"),
        (
            _snapshot_with(
                [_user(n, phones=[{"phoneType": "mobile", "phoneNumber": N1, "sms": "registered"}]) for n in (1, 2)]
            ),
            "already registered",
        ),
        (
            _snapshot_with(
                [_user(1, phones=[{"phoneType": "mobile", "phoneNumber": N1}])], sms_registrations={"1": "x"}
            ),
            "sms_registrations",
        ),
        (_snapshot_with([], sms_policy={"state": "sometimes"}), "sms_policy"),
    ],
)
def test_invalid_snapshots_are_refused(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SnapshotError) as info:
        Tenant.from_snapshot(data)
    assert isinstance(info.value, ValueError)  # what code handed a bad dict expects
    assert fragment in str(info.value)
    assert "2065550101" not in str(info.value)


def test_snapshot_may_hold_a_deleted_and_a_live_user_with_one_upn() -> None:
    users = [_user(1, upn="x@contoso.com"), _user(2, upn="x@contoso.com", deleted=True)]
    tenant = Tenant.from_snapshot(_snapshot_with(users))
    assert tenant.get_user("x@contoso.com")["id"].endswith("1")
    assert (tenant.user_count(), tenant.user_count(include_deleted=True)) == (1, 2)


def test_unreadable_snapshot_file_is_a_snapshot_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError):
        load_snapshot(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(SnapshotError, match="not valid JSON"):
        load_snapshot(bad)


def test_sample_tenant_snapshot() -> None:
    tenant = load_snapshot(SAMPLE)
    tenant.check_invariants()
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    assert tenant.to_snapshot() == data  # the sample is written in canonical form
    assert tenant.user_count() == 11 and tenant.user_count(include_deleted=True) == 12
    seen = {
        state
        for user in data["users"]
        if not user["deleted"]
        for state in states(tenant, user["id"]).values()
    }
    assert {"ready", "notSupported", "notAllowedByPolicy", "notConfigured", "notEnabled"} <= seen
    deleted = next(u for u in data["users"] if u["deleted"])
    held = next(p["phoneNumber"] for p in deleted["phones"] if p["sms"] == "registered")
    assert tenant.sms_registration_holder(held) == deleted["id"]
    assert all(u["upn"].endswith("@contoso.com") for u in data["users"])
