"""The $batch wire format we write and read by hand, and the phone-method ops."""

from __future__ import annotations

import json

import pytest

from provision.errors import AuthError, GraphError
from provision.graph import ops
from provision.graph.batch import decode_batch, encode_batch
from provision.graph.errors import TransportFailure
from provision.model import PhoneType, SmsSignInState

MOBILE = "3179e48a-750b-4051-897c-87b9720928f7"


def test_encode_writes_graph_keys_bodies_headers_and_dependsOn() -> None:
    batch = [
        ops.create_phone("1", "a@contoso.com", PhoneType.MOBILE, "+1 2065550100"),
        ops.enable_sms_sign_in("2", "a@contoso.com", depends_on="1"),
        ops.delete_phone("3", "guest_x.com#EXT#@t.onmicrosoft.com", PhoneType.OFFICE),
    ]
    data = json.loads(encode_batch(batch))
    first, second, third = data["requests"]
    assert first == {
        "id": "1",
        "method": "POST",
        "url": "/users/a%40contoso.com/authentication/phoneMethods",
        "headers": {"Content-Type": "application/json"},
        "body": {"phoneNumber": "+1 2065550100", "phoneType": "mobile"},
    }
    assert second["dependsOn"] == ["1"] and "depends_on" not in second
    assert second["url"] == f"/users/a%40contoso.com/authentication/phoneMethods/{MOBILE}/enableSmsSignIn"
    assert "body" not in second and "headers" not in second
    assert third["url"].startswith("/users/guest_x.com%23EXT%23%40t.onmicrosoft.com/")
    assert third["method"] == "DELETE"


def test_encode_refuses_what_graph_refuses() -> None:
    with pytest.raises(ValueError, match="at most 20"):
        encode_batch([ops.list_phones(str(i), "u") for i in range(21)])
    with pytest.raises(ValueError, match="duplicate"):
        encode_batch([ops.list_phones("a", "u"), ops.list_phones("A", "v")])
    with pytest.raises(ValueError, match="not earlier"):
        encode_batch([ops.enable_sms_sign_in("1", "u", depends_on="2"), ops.list_phones("2", "u")])
    assert len(json.loads(encode_batch([ops.list_phones(str(i), "u") for i in range(20)]))["requests"]) == 20


def test_decode_matches_by_id_parses_errors_and_per_item_retry_after() -> None:
    batch = [ops.list_phones("1", "a"), ops.get_user("2", "b"), ops.list_phones("3", "c"), ops.list_phones("4", "d")]
    raw = json.dumps(
        {
            "responses": [
                {"id": "3", "status": 429, "headers": {"Retry-After": "7"},
                 "body": {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}},
                {"id": "1", "status": 200, "headers": {"Content-Type": "application/json"},
                 "body": {"value": [{"id": MOBILE, "phoneNumber": "+1 2065550100", "phoneType": "mobile",
                                     "smsSignInState": "ready"}]}},
                {"id": "2", "status": 403, "headers": {"request-id": "hdr-rid"},
                 "body": {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges",
                                    "innerError": {"request-id": "inner-rid"}}}},
            ]
        }
    )
    r1, r2, r3, r4 = decode_batch(raw, batch)
    assert [r.id for r in (r1, r2, r3, r4)] == ["1", "2", "3", "4"]
    assert r1.ok and r1.status == 200
    phones = ops.parse_phone_list(r1.body)
    assert phones[PhoneType.MOBILE].number == "+1 2065550100"
    assert phones[PhoneType.MOBILE].sms_sign_in_state is SmsSignInState.READY
    assert isinstance(r2.error, AuthError) and r2.error.request_id == "inner-rid"
    assert r2.error.code == "Authorization_RequestDenied"
    assert r3.status == 429 and r3.retry_after == 7.0 and r3.error.code == "TooManyRequests"
    assert isinstance(r4.error, TransportFailure) and r4.error.outcome_unknown


def test_decode_failed_dependency_is_424_error() -> None:
    batch = [ops.create_phone("1", "u", PhoneType.MOBILE, "+1 2065550100"), ops.enable_sms_sign_in("2", "u", depends_on="1")]
    raw = json.dumps({"responses": [
        {"id": "1", "status": 409, "body": {"error": {"code": "phoneNumberNotUnique", "message": "taken +1 2065550100"}}},
        {"id": "2", "status": 424, "body": {"error": {"code": "FailedDependency", "message": "dependency failed"}}},
    ]})
    first, second = decode_batch(raw, batch)
    assert type(first.error) is GraphError and first.error.code == "phoneNumberNotUnique"
    assert "2065550100" not in first.error.message  # numbers never reach messages unmasked
    assert second.status == 424 and second.error.status == 424


def test_sms_policy_parsing() -> None:
    body = {
        "id": "Sms", "state": "enabled",
        "includeTargets": [
            {"targetType": "user", "id": "AAAAAAAA-0000-0000-0000-000000000001", "isUsableForSignIn": True},
            {"targetType": "user", "id": "aaaaaaaa-0000-0000-0000-000000000002", "isUsableForSignIn": False},
        ],
        "excludeTargets": [{"targetType": "user", "id": "aaaaaaaa-0000-0000-0000-000000000003"}],
    }
    policy = ops.parse_sms_policy(body)
    assert policy.readable and policy.enabled and not policy.include_all_users
    assert policy.allows("aaaaaaaa-0000-0000-0000-000000000001") is True
    assert policy.allows("aaaaaaaa-0000-0000-0000-000000000002") is False
    assert policy.allows("aaaaaaaa-0000-0000-0000-000000000003") is False
    assert ops.policy_targets_users(policy)
    everyone = ops.parse_sms_policy({"state": "enabled", "includeTargets": [{"id": "all_users", "isUsableForSignIn": True}]})
    assert everyone.include_all_users and not ops.policy_targets_users(everyone)
