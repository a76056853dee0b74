"""/_sandbox endpoints: stats (incl. duplicate writes), snapshot and reset."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from provision.model import METHOD_IDS, PhoneType

MOBILE = METHOD_IDS[PhoneType.MOBILE]
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "sandbox_tenant.json"


def test_stats_count_requests_operations_statuses_and_errors(sandbox: Any) -> None:
    user = sandbox.tenant.create_user("adele@contoso.com")["id"]
    phones = f"/v1.0/users/{user}/authentication/phoneMethods"

    async def main() -> dict[str, Any]:
        async with sandbox.client() as http:
            await http.post(phones, json={"phoneNumber": "+1 2065550000", "phoneType": "mobile"})
            await http.post(phones, json={"phoneNumber": "+1 2065550000", "phoneType": "mobile"})
            await http.get(phones)
            await http.get(phones, headers={"Authorization": "Bearer x.y"})
            batch = {"requests": [{"id": str(i), "method": "GET", "url": f"/users/{user}"} for i in range(3)]}
            await http.post("/v1.0/$batch", json=batch)
            async with httpx.AsyncClient(base_url=sandbox.root) as anonymous:
                return (await anonymous.get("/_sandbox/stats")).json()

    stats = asyncio.run(main())
    assert stats["http_requests"] == 5 and stats["batches"] == 1
    assert stats["operations"] == 7
    assert stats["writes_succeeded"] == 1 and stats["duplicate_writes"] == 0
    assert stats["by_status"] == {"200": 4, "201": 1, "400": 1, "401": 1}
    assert stats["by_operation"] == {"createPhoneMethod": 2, "getUser": 3, "listPhoneMethods": 1, "unauthenticated": 1}
    assert stats["by_error_code"] == {"InvalidAuthenticationToken": 1, "badRequest": 1}


def test_duplicate_writes_count_a_repeat_of_the_previous_write_on_the_same_target(asgi_sandbox: Any) -> None:
    user = asgi_sandbox.tenant.create_user("adele@contoso.com")["id"]
    item = f"/v1.0/users/{user}/authentication/phoneMethods/{MOBILE}"

    async def main() -> None:
        async with asgi_sandbox.client() as http:
            await http.post(f"/v1.0/users/{user}/authentication/phoneMethods", json={"phoneNumber": "+1 2065550000", "phoneType": "mobile"})
            await http.patch(item, json={"phoneNumber": "+1 2065550001"})
            await http.patch(item, json={"phoneNumber": "+1 2065550002"})
            await http.patch(item, json={"phoneNumber": "+1 2065550002"})  # a retry that wrote twice
            await http.post(item + "/disableSmsSignIn")
            await http.post(item + "/enableSmsSignIn")
            await http.post(item + "/enableSmsSignIn")  # again

    asyncio.run(main())
    stats = asgi_sandbox.stats()
    assert stats["writes_succeeded"] == 7 and stats["duplicate_writes"] == 2


def test_snapshot_and_reset_with_a_snapshot(sandbox: Any) -> None:
    sample = json.loads(SAMPLE.read_text())

    async def main() -> tuple[Any, ...]:
        async with httpx.AsyncClient(base_url=sandbox.root) as http:
            loaded = await http.post("/_sandbox/reset", json={"snapshot": sample})
            info = (await http.get("/_sandbox/info")).json()
            token = sandbox.token  # now for the snapshot's tenant
            listed = await http.get(
                "/v1.0/users/megan.bowen%40contoso.com/authentication/phoneMethods", headers={"Authorization": f"Bearer {token}"}
            )
            snapshot = (await http.get("/_sandbox/snapshot")).json()
            stats = (await http.get("/_sandbox/stats")).json()
            cleared = await http.post("/_sandbox/reset")
            after = (await http.get("/_sandbox/stats")).json()
            broken = await http.post("/_sandbox/reset", json={"snapshot": {"format": "nope"}})
            return loaded, info, listed, snapshot, stats, cleared, after, broken

    loaded, info, listed, snapshot, stats, cleared, after, broken = asyncio.run(main())
    assert loaded.status_code == 200 and info["tenant_id"] == sample["tenant_id"]
    assert [p["phoneType"] for p in listed.json()["value"]] == ["mobile", "alternateMobile", "office"]
    assert snapshot["users"] == sample["users"] and snapshot["tenant_id"] == sample["tenant_id"]
    assert stats["operations"] == 1
    assert cleared.status_code == 200 and after["operations"] == 0 and after["by_status"] == {}
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "BadRequest"
    assert sandbox.tenant.to_snapshot()["users"] == sample["users"]  # a bad snapshot changes nothing
