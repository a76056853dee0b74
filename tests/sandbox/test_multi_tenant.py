"""One sandbox serving many tenants: each token sees its own tenant, with its own state,
throttle budget and counters; admin endpoints per tenant and summed; `serve --tenants`."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from support.cli import SUBPROCESS_TIMEOUT_S, child_env, start_provision
from support.clock import FakeClock
from support.sandbox import sdk_client
from typer.testing import CliRunner

from provision.cli import app as cli
from provision.sandbox.app import SandboxApp, create_app, create_multi_app
from provision.sandbox.auth import make_token
from provision.sandbox.fleet_seed import seed_fleet
from provision.sandbox.limits import Profile, ThrottleSettings
from provision.sandbox.tenant import Tenant
from provision.sandbox.tenants_dir import state_file_name

A, B, C = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b", "cccccccc-0000-4000-8000-00000000000c"
UPN = "adele@contoso.com"  # a user of the same name in A and B, with different phones
PHONES = f"/v1.0/users/{UPN}/authentication/phoneMethods"


def _tenant(tenant_id: str, clock: FakeClock | None = None, *, number: str | None = None) -> Tenant:
    tenant = Tenant(tenant_id=tenant_id, clock=clock) if clock is not None else Tenant(tenant_id=tenant_id)
    user = tenant.create_user(UPN)["id"]
    if number is not None:
        tenant.create_phone(user, number, "mobile")
    tenant.create_user(f"only.{tenant_id[:4]}@contoso.com")
    return tenant


def _app(profile: Profile | None = None, clock: FakeClock | None = None) -> SandboxApp:
    tenants = [_tenant(A, clock, number="+1 2065550100"), _tenant(B, clock, number="+1 2065550200"), _tenant(C, clock)]
    if clock is None:
        return create_multi_app(tenants, profile=profile or Profile())
    return create_multi_app(tenants, profile=profile or Profile(), clock=clock, sleep=clock.sleep)


def _client(app: SandboxApp, tid: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {make_token(tid=tid)}"} if tid else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox", headers=headers)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_each_token_sees_only_its_tenant_and_a_write_leaves_the_others_unchanged() -> None:
    app = _app()

    async def main() -> tuple[Any, ...]:
        async with _client(app, A) as a, _client(app, B) as b, _client(app) as admin:
            b_before = (await admin.get("/_sandbox/snapshot", params={"tenant": B})).json()
            a_phones = (await a.get(PHONES)).json()["value"]
            b_phones = (await b.get(PHONES)).json()["value"]
            b_sees_a_only_user = await b.get("/v1.0/users/only.aaaa@contoso.com")
            created = await a.post(PHONES, json={"phoneNumber": "+1 4255550100", "phoneType": "office"})
            a_after = (await admin.get("/_sandbox/snapshot", params={"tenant": A})).json()
            b_after = (await admin.get("/_sandbox/snapshot", params={"tenant": B})).json()
            return a_phones, b_phones, b_sees_a_only_user, created, a_after, b_before, b_after

    a_phones, b_phones, b_sees_a_only_user, created, a_after, b_before, b_after = _run(main())
    assert [p["phoneNumber"] for p in a_phones] == ["+1 2065550100"]
    assert [p["phoneNumber"] for p in b_phones] == ["+1 2065550200"]
    assert b_sees_a_only_user.status_code == 404
    assert created.status_code == 201
    adele = next(u for u in a_after["users"] if u["upn"] == UPN)
    assert [p["phoneType"] for p in adele["phones"]] == ["mobile", "office"]
    assert b_after == b_before and b_after["tenant_id"] == B


def test_throttle_budgets_are_per_tenant() -> None:
    clock = FakeClock()
    app = _app(Profile(throttle=ThrottleSettings(writes_per_second=1, burst_seconds=1)), clock)
    body = {"phoneNumber": "+1 4255550100", "phoneType": "office"}

    async def main() -> list[int]:
        async with _client(app, A) as a, _client(app, B) as b:
            first_a = await a.post(PHONES, json=body)
            second_a = await a.patch(f"{PHONES}/3179e48a-750b-4051-897c-87b9720928f7", json={"phoneNumber": "+1 4255550101"})
            first_b = await b.post(PHONES, json=body)
            return [first_a.status_code, second_a.status_code, first_b.status_code]

    assert _run(main()) == [201, 429, 201]  # A's bucket is empty, B's untouched (the clock never moved)
    router = app.tenant_router
    assert router is not None
    assert [router.sandboxes[t].stats.throttled for t in (A, B)] == [1, 0]


def test_a_token_for_a_tenant_not_served_is_401_and_counted_in_no_tenant() -> None:
    app = _app()

    async def main() -> tuple[Any, ...]:
        async with _client(app, "dddddddd-0000-4000-8000-00000000000d") as stranger, _client(app) as anonymous:
            unknown = await stranger.get(PHONES)
            no_token = await anonymous.get(PHONES)
            garbled = await anonymous.get(PHONES, headers={"Authorization": "Bearer x.y"})
            totals = (await anonymous.get("/_sandbox/stats", params={"per_tenant": "1"})).json()
            return unknown, no_token, garbled, totals

    unknown, no_token, garbled, totals = _run(main())
    assert unknown.status_code == no_token.status_code == garbled.status_code == 401
    assert unknown.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "Invalid audience or tenant" in unknown.json()["error"]["message"]
    assert totals["by_operation"] == {"unauthenticated": 3}
    assert all(stats["operations"] == 0 for stats in totals["tenants"].values())


def test_stats_per_tenant_and_summed_info_lists_tenants_reset_per_tenant() -> None:
    app = _app()

    async def main() -> dict[str, Any]:
        async with _client(app, A) as a, _client(app, B) as b, _client(app) as admin:
            await a.get(PHONES)
            await a.get(PHONES)
            await b.post(PHONES, json={"phoneNumber": "+1 4255550200", "phoneType": "office"})
            out: dict[str, Any] = {
                "a": (await admin.get("/_sandbox/stats", params={"tenant": A})).json(),
                "b": (await admin.get("/_sandbox/stats", params={"tenant": B.upper()})).json(),
                "sum": (await admin.get("/_sandbox/stats")).json(),
                "per": (await admin.get("/_sandbox/stats", params={"per_tenant": "1"})).json(),
                "unknown": await admin.get("/_sandbox/stats", params={"tenant": "nope"}),
                "snapshot_unnamed": await admin.get("/_sandbox/snapshot"),
                "info": (await admin.get("/_sandbox/info")).json(),
            }
            out["reset_a"] = (await admin.post("/_sandbox/reset", params={"tenant": A})).json()
            out["after_reset_a"] = (await admin.get("/_sandbox/stats", params={"per_tenant": "1"})).json()
            snapshot_b = (await admin.get("/_sandbox/snapshot", params={"tenant": B})).json()
            snapshot_b["users"] = snapshot_b["users"][:1]
            out["wrong_tenant"] = await admin.post("/_sandbox/reset", params={"tenant": A}, json={"snapshot": snapshot_b})
            out["reset_b"] = await admin.post("/_sandbox/reset", json={"snapshot": snapshot_b})
            out["b_users"] = len((await admin.get("/_sandbox/snapshot", params={"tenant": B})).json()["users"])
            out["reset_all"] = (await admin.post("/_sandbox/reset")).json()
            out["after_all"] = (await admin.get("/_sandbox/stats")).json()
            return out

    out = _run(main())
    assert out["a"]["by_operation"] == {"listPhoneMethods": 2} and out["a"]["http_requests"] == 2
    assert out["b"]["by_operation"] == {"createPhoneMethod": 1} and out["b"]["writes_succeeded"] == 1
    assert out["sum"]["http_requests"] == 3 and out["sum"]["operations"] == 3
    assert out["sum"]["by_operation"] == {"createPhoneMethod": 1, "listPhoneMethods": 2}
    assert out["sum"]["by_status"] == {"200": 2, "201": 1}
    assert "tenants" not in out["sum"]
    assert out["per"]["tenants"][A] == out["a"] and out["per"]["tenants"][B] == out["b"]
    assert out["per"]["tenants"][C]["operations"] == 0
    assert out["unknown"].status_code == 404 and out["snapshot_unnamed"].status_code == 400
    assert out["info"]["tenant_id"] == A and out["info"]["tenants"] == [A, B, C]
    assert out["reset_a"] == {"reset": True, "tenant_id": A}
    assert out["after_reset_a"]["tenants"][A]["operations"] == 0 and out["after_reset_a"]["tenants"][B]["operations"] == 1
    assert out["wrong_tenant"].status_code == 400
    assert out["reset_b"].status_code == 200 and out["b_users"] == 1
    assert out["reset_all"] == {"reset": True, "tenant_id": A, "tenants": [A, B, C]}
    assert out["after_all"]["operations"] == 0


def test_a_single_tenant_sandbox_lists_its_tenant_and_takes_tenant_parameters() -> None:
    app = create_app(_tenant(A))

    async def main() -> tuple[Any, ...]:
        async with _client(app, A) as a, _client(app) as admin:
            await a.get(PHONES)
            info = (await admin.get("/_sandbox/info")).json()
            plain = (await admin.get("/_sandbox/stats")).json()
            named = (await admin.get("/_sandbox/stats", params={"tenant": A})).json()
            other = await admin.get("/_sandbox/snapshot", params={"tenant": B})
            return info, plain, named, other

    info, plain, named, other = _run(main())
    assert info["tenant_id"] == A and info["tenants"] == [A]
    assert plain == named and plain["operations"] == 1 and "tenants" not in plain
    assert other.status_code == 404


def _read_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


def test_serve_tenants_dir_answers_the_sdk_per_tenant_and_saves_each_tenant(tmp_path: Path) -> None:
    fleet = seed_fleet(tmp_path / "fleet", tenants=3, users=4, seed=7)
    first, second = fleet.tenants[0], fleet.tenants[1]
    saved = tmp_path / "state"
    process = start_provision(
        "sandbox", "serve", "--port", "0", "--tenants", fleet.snapshots, "--save-dir", saved, cwd=tmp_path
    )
    try:
        v1 = _read_line(process)
        assert v1.endswith("/v1.0")

        async def phones(tenant_id: str, upn: str) -> list[str]:
            client, http = sdk_client(v1, make_token(tid=tenant_id))
            try:
                result = await client.users.by_user_id(upn).authentication.phone_methods.get()
                return [p.phone_number for p in result.value]
            finally:
                await http.aclose()

        upn_first = f"user00000@{first.key}.example.com"
        upn_second = f"user00000@{second.key}.example.com"
        seen_first = asyncio.run(phones(first.tenant_id, upn_first))
        seen_second = asyncio.run(phones(second.tenant_id, upn_second))
        crossed = httpx.get(
            f"{v1}/users/{upn_first}/authentication/phoneMethods",
            headers={"Authorization": f"Bearer {make_token(tid=second.tenant_id)}"},
        )
        created = httpx.post(
            f"{v1}/users/user00001@{first.key}.example.com/authentication/phoneMethods",
            json={"phoneNumber": "+1 2065550111", "phoneType": "alternateMobile"},
            headers={"Authorization": f"Bearer {make_token(tid=first.tenant_id)}"},
        )
        info = httpx.get(v1.removesuffix("/v1.0") + "/_sandbox/info").json()
        ambiguous_token = CliRunner().invoke(cli, ["sandbox", "token", "--url", v1])
        fetched = tmp_path / "second.json"
        fetch = CliRunner().invoke(
            cli, ["sandbox", "snapshot", "--url", v1, "--tenant", second.tenant_id, "--out", str(fetched)]
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)

    assert process.returncode == 0, err[-2000:]
    for tenant, seen in ((first, seen_first), (second, seen_second)):
        snapshot = json.loads(tenant.snapshot.read_text())
        assert seen == [p["phoneNumber"] for p in snapshot["users"][0]["phones"]]
    assert crossed.status_code == 404  # the second tenant has no such user
    assert ambiguous_token.exit_code == 2 and "--tid" in ambiguous_token.stderr
    assert fetch.exit_code == 0 and json.loads(fetched.read_text())["tenant_id"] == second.tenant_id
    assert created.status_code == 201
    assert sorted(info["tenants"]) == sorted(t.tenant_id for t in fleet.tenants)
    assert sorted(p.name for p in saved.glob("*.json")) == sorted(state_file_name(t.tenant_id) for t in fleet.tenants)
    kept = json.loads((saved / state_file_name(first.tenant_id)).read_text())
    assert "alternateMobile" in [p["phoneType"] for p in kept["users"][1]["phones"]]
    assert json.loads((saved / state_file_name(second.tenant_id)).read_text())["users"] == json.loads(
        second.snapshot.read_text()
    )["users"]


def test_the_embedded_child_serves_a_seed_dir_and_resumes_from_its_state_dir(tmp_path: Path) -> None:
    fleet = seed_fleet(tmp_path / "fleet", tenants=2, users=3, seed=1)
    state = tmp_path / "state"
    tenant = fleet.tenants[1]
    upn = f"user00002@{tenant.key}.example.com"
    command = [sys.executable, "-m", "provision.sandbox.embedded", "--seed-dir", str(fleet.snapshots), "--state-dir", str(state)]

    def start() -> tuple[subprocess.Popen[str], str]:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(None))
        return child, json.loads(_read_line(child))["url"]

    headers = {"Authorization": f"Bearer {make_token(tid=tenant.tenant_id)}"}
    child, root = start()
    try:
        second = subprocess.run(command, capture_output=True, text=True, env=child_env(None), timeout=SUBPROCESS_TIMEOUT_S)
        created = httpx.post(
            f"{root}/v1.0/users/{upn}/authentication/phoneMethods",
            json={"phoneNumber": "+1 2065550122", "phoneType": "alternateMobile"},
            headers=headers,
        )
    finally:
        child.terminate()
        child.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    assert second.returncode == 3  # one child per state directory
    assert created.status_code == 201 and child.returncode == 0

    child, root = start()
    try:
        listed = httpx.get(f"{root}/v1.0/users/{upn}/authentication/phoneMethods", headers=headers).json()["value"]
    finally:
        child.terminate()
        child.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    assert "alternateMobile" in [p["phoneType"] for p in listed]


def test_serve_refuses_save_for_several_tenants_and_a_tenant_served_twice(tmp_path: Path) -> None:
    fleet = seed_fleet(tmp_path / "fleet", tenants=2, users=2, seed=3)
    first, second = (str(t.snapshot) for t in fleet.tenants)
    runner = CliRunner()
    several = runner.invoke(cli, ["sandbox", "serve", "--snapshot", first, "--snapshot", second, "--save", str(tmp_path / "s.json")])
    assert several.exit_code == 2 and "--save-dir" in several.stderr
    twice = runner.invoke(cli, ["sandbox", "serve", "--tenants", str(fleet.snapshots), "--snapshot", first])
    assert twice.exit_code == 2 and "also in" in twice.stderr
    assert not (tmp_path / "s.json").exists()
