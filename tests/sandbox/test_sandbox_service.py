"""The operation service on its own: no HTTP, no app, the same answers the wire carries."""

from __future__ import annotations

import json
import subprocess
import sys

from provision.model import METHOD_IDS, PhoneType
from provision.sandbox.auth import AUTHENTICATION_ADMINISTRATOR, decode_token, make_token
from provision.sandbox.routes import RouteMiss, route, split_path
from provision.sandbox.service import Call, OperationService, Refusal
from provision.sandbox.stats import Stats
from provision.sandbox.tenant import Tenant
from provision.sandbox.wire import read_item_body, read_request_body

MOBILE = METHOD_IDS[PhoneType.MOBILE]
APP = decode_token(make_token())


def _service() -> tuple[OperationService, str]:
    tenant = Tenant()
    user = tenant.create_user("adele@contoso.com")["id"]
    return OperationService(tenant, Stats()), user


def test_a_resolved_call_runs_against_the_tenant() -> None:
    service, user = _service()
    call = service.resolve(APP, "POST", split_path(f"/users/{user}/authentication/phoneMethods"))
    assert isinstance(call, Call) and call.operation.name == "createPhoneMethod"
    reply = service.run(call, b'{"phoneNumber": "+1 2065550100", "phoneType": "mobile"}', read_request_body)
    assert (reply.status, reply.body["id"], reply.error) == (201, MOBILE, None)
    assert service.stats.writes_applied == 1 and service.tenant.phone_count() == 1


def test_a_batch_item_body_and_a_request_body_give_the_same_answer() -> None:
    service, user = _service()
    service.tenant.create_phone(user, "+1 2065550100", "mobile")
    call = service.resolve(APP, "PATCH", split_path(f"users/{user}/authentication/phoneMethods/{MOBILE}"))
    assert isinstance(call, Call)
    direct = service.run(call, b'{"phoneNumber": "x"}', read_request_body)
    item = service.run(call, {"phoneNumber": "x"}, read_item_body)
    assert direct == item and direct.status == 400 and direct.error is not None and direct.error[0] == "badRequest"


def test_refusals_name_what_stats_count_them_under() -> None:
    service, user = _service()
    missing = service.resolve(APP, "GET", split_path("/me/authentication/phoneMethods"))
    wrong_method = service.resolve(APP, "PUT", split_path(f"/users/{user}"))
    masked_reader = decode_token(make_token(scp="UserAuthenticationMethod.Read.All", wids=[AUTHENTICATION_ADMINISTRATOR]))
    forbidden = service.resolve(masked_reader, "DELETE", split_path(f"/users/{user}"))
    assert isinstance(missing, Refusal) and (missing.operation, missing.reply.status) == ("unknownRoute", 400)
    assert missing.reply.error == ("BadRequest", "Resource not found for the segment 'me'.")
    assert isinstance(wrong_method, Refusal) and (wrong_method.operation, wrong_method.reply.status) == ("user", 405)
    assert isinstance(forbidden, Refusal) and (forbidden.operation, forbidden.reply.status) == ("deleteUser", 403)
    masked = service.resolve(masked_reader, "GET", split_path(f"/users/{user}/authentication/phoneMethods"))
    assert isinstance(masked, Call) and masked.masked


def test_routes_are_one_grammar_for_requests_and_items() -> None:
    policy = "Policies/AuthenticationMethodsPolicy/AuthenticationMethodConfigurations/SMS"
    assert route("GET", split_path(policy)) == ("getSmsPolicy", ())
    assert route("POST", split_path(f"/users/a%40b.com//authentication/phoneMethods/{MOBILE}/microsoft.graph.enableSmsSignIn")) == (
        "enableSmsSignIn",
        ("a@b.com", MOBILE),
    )
    assert route("GET", ["$batch"]) == RouteMiss(400, "unknownRoute")


def test_the_service_imports_no_http_framework() -> None:
    probe = (
        "import sys, json, provision.sandbox.service\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'starlette', 'uvicorn', 'httpx'})))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout)
    assert loaded == []
