"""Groups and administrative units in the sandbox: snapshot keys, membership reads, paging,
permissions.

``GET /groups/{id}/transitiveMembers`` lists every user reachable through nested groups,
each once (cycles harmless), and the nested groups; ``GET /directory/administrativeUnits/
{id}/members`` lists the unit's direct members only. Lists page by 100 with a relative
``@odata.nextLink`` naming the page in the path. Deleted users never appear. Reading
needs a group (or AU) read permission; without one: 403 ``Authorization_RequestDenied``.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from support.sandbox import odata_error, sdk_client

from provision.sandbox.groups import MEMBERS_PAGE_SIZE
from provision.sandbox.snapshot_format import SnapshotError
from provision.sandbox.tenant import Tenant, TenantError

USER = "#microsoft.graph.user"
GROUP = "#microsoft.graph.group"


def _users(tenant: Tenant, *names: str) -> list[str]:
    return [tenant.create_user(f"{name}@contoso.example")["id"] for name in names]


async def _get_all(client: httpx.AsyncClient, url: str) -> tuple[list[dict[str, Any]], int]:
    """Every item of a paged list, following next links as given (resolved against the
    request's URL, as our GraphClient does), and how many pages it took."""
    items: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        answer = await client.get(next_url)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["value"]
        pages += 1
        link = body.get("@odata.nextLink")
        next_url = str(answer.request.url.join(link)) if link else None
    return items, pages


def _read(sandbox: Any, path: str, token: str | None = None) -> tuple[list[dict[str, Any]], int]:
    async def main() -> tuple[list[dict[str, Any]], int]:
        async with sandbox.client(token) as client:
            return await _get_all(client, f"/v1.0{path}")

    return asyncio.run(main())


def _get(sandbox: Any, path: str, token: str | None = None) -> httpx.Response:
    async def main() -> httpx.Response:
        async with sandbox.client(token) as client:
            return await client.get(path)

    return asyncio.run(main())


def test_transitive_members_reach_nested_groups_once_and_skip_deleted_users(asgi_sandbox: Any) -> None:
    tenant = asgi_sandbox.tenant
    ann, bob, cy, dee, gone = _users(tenant, "ann", "bob", "cy", "dee", "gone")
    inner = tenant.create_group("Inner", members=[cy, gone, ann])
    outer = tenant.create_group("Pilot", members=[ann, inner, "bob@contoso.example"])
    tenant.add_members(inner, [outer])  # a cycle: harmless
    tenant.create_group("Other", members=[dee])
    tenant.delete_user(gone)

    items, _ = _read(asgi_sandbox, f"/groups/{outer}/transitiveMembers?$select=id,userPrincipalName")
    users = [i["id"] for i in items if i["@odata.type"] == USER]
    groups = [i["id"] for i in items if i["@odata.type"] == GROUP]
    assert sorted(users) == sorted([ann, bob, cy]) and len(users) == 3
    assert groups == [inner]
    assert {i["userPrincipalName"] for i in items if i["@odata.type"] == USER} == {
        "ann@contoso.example",
        "bob@contoso.example",
        "cy@contoso.example",
    }
    only_users, _ = _read(asgi_sandbox, f"/groups/{outer}/transitiveMembers/microsoft.graph.user")
    assert sorted(i["id"] for i in only_users) == sorted([ann, bob, cy])


def test_admin_unit_members_are_direct_members_only(asgi_sandbox: Any) -> None:
    tenant = asgi_sandbox.tenant
    ann, bob, cy = _users(tenant, "ann", "bob", "cy")
    group = tenant.create_group("Sales", members=[cy])
    unit = tenant.create_admin_unit("France", members=[ann, group])
    tenant.add_members(unit, [bob, ann])

    items, _ = _read(asgi_sandbox, f"/directory/administrativeUnits/{unit}/members")
    assert [(i["@odata.type"], i["id"]) for i in items] == [(USER, ann), (GROUP, group), (USER, bob)]
    assert _get(asgi_sandbox, f"/beta/directory/administrativeUnits/{unit}").json() == {"id": unit, "displayName": "France"}


def test_lists_and_members_page_by_100_with_next_links(asgi_sandbox: Any) -> None:
    tenant = asgi_sandbox.tenant
    ids = _users(tenant, *(f"u{i:03d}" for i in range(2 * MEMBERS_PAGE_SIZE + 5)))
    halves = [tenant.create_group(f"Half {n}", members=ids[n::2]) for n in (0, 1)]
    top = tenant.create_group("All", members=halves)
    unit = tenant.create_admin_unit("Everyone", members=ids)
    for n in range(MEMBERS_PAGE_SIZE + 1):
        tenant.create_group(f"Filler {n}")

    members, pages = _read(asgi_sandbox, f"/groups/{top}/transitiveMembers/microsoft.graph.user")
    assert pages == 3 and [m["id"] for m in members if m["id"] in ids] == [m["id"] for m in members]
    assert sorted(m["id"] for m in members) == sorted(ids)
    unit_members, pages = _read(asgi_sandbox, f"/directory/administrativeUnits/{unit}/members")
    assert pages == 3 and [m["id"] for m in unit_members] == ids
    groups, pages = _read(asgi_sandbox, "/groups")
    assert pages == 2 and len({g["id"] for g in groups}) == MEMBERS_PAGE_SIZE + 4
    units, pages = _read(asgi_sandbox, "/directory/administrativeUnits")
    assert pages == 1 and units == [{"id": unit, "displayName": "Everyone"}]


def test_reads_see_membership_changes_made_between_them(asgi_sandbox: Any) -> None:
    tenant = asgi_sandbox.tenant
    ann, bob = _users(tenant, "ann", "bob")
    inner = tenant.create_group("Inner")
    outer = tenant.create_group("Pilot", members=[ann, inner])
    unit = tenant.create_admin_unit("France", members=[ann])
    path = f"/groups/{outer}/transitiveMembers/microsoft.graph.user"
    assert [m["id"] for m in _read(asgi_sandbox, path)[0]] == [ann]
    tenant.add_members(inner, [bob])
    tenant.add_members(unit, [bob])
    assert [m["id"] for m in _read(asgi_sandbox, path)[0]] == [ann, bob]
    tenant.delete_user(ann)
    assert [m["id"] for m in _read(asgi_sandbox, path)[0]] == [bob]
    assert [m["id"] for m in _read(asgi_sandbox, f"/directory/administrativeUnits/{unit}/members")[0]] == [bob]


def test_batch_items_read_members_like_direct_requests(asgi_sandbox: Any) -> None:
    tenant = asgi_sandbox.tenant
    (ann,) = _users(tenant, "ann")
    group = tenant.create_group("Pilot", members=[ann])
    unit = tenant.create_admin_unit("France", members=[ann])
    requests = [
        {"id": "1", "method": "GET", "url": f"/groups/{group}/transitiveMembers?$select=id,userPrincipalName"},
        {"id": "2", "method": "GET", "url": f"/directory/administrativeUnits/{unit}/members"},
    ]

    async def main() -> httpx.Response:
        async with asgi_sandbox.client() as http:
            return await http.post("/v1.0/$batch", json={"requests": requests})

    answers = {r["id"]: r for r in asyncio.run(main()).json()["responses"]}
    assert [m["id"] for m in answers["1"]["body"]["value"]] == [ann]
    assert [m["id"] for m in answers["2"]["body"]["value"]] == [ann]


def test_unknown_ids_and_page_tokens_are_refused(asgi_sandbox: Any) -> None:
    tenant = asgi_sandbox.tenant
    group = tenant.create_group("Pilot", members=_users(tenant, "ann"))
    missing = "00000000-0000-4000-8000-00000000dead"
    for path in (f"/v1.0/groups/{missing}", f"/v1.0/groups/{missing}/transitiveMembers",
                 f"/v1.0/directory/administrativeUnits/{missing}/members"):
        answer = _get(asgi_sandbox, path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "Request_ResourceNotFound"
    assert _get(asgi_sandbox, f"/v1.0/groups/{group}/transitiveMembers/$skiptoken=x").status_code == 400
    assert _get(asgi_sandbox, f"/v1.0/groups/{group}/owners").status_code == 400
    with pytest.raises(TenantError) as unknown_member:
        tenant.create_group("Bad", members=[missing])
    assert unknown_member.value.status == 404
    assert tenant.group_count() == 1


@pytest.mark.parametrize(
    ("roles", "group_status", "unit_status"),
    [
        (["GroupMember.Read.All"], 200, 403),
        (["AdministrativeUnit.Read.All"], 403, 200),
        (["Directory.Read.All"], 200, 200),
        (["User.Read.All", "UserAuthenticationMethod.ReadWrite.All"], 403, 403),
    ],
)
def test_reading_needs_a_group_or_admin_unit_permission(
    asgi_sandbox: Any, roles: list[str], group_status: int, unit_status: int
) -> None:
    tenant = asgi_sandbox.tenant
    ann = _users(tenant, "ann")
    group = tenant.create_group("Pilot", members=ann)
    unit = tenant.create_admin_unit("France", members=ann)
    token = asgi_sandbox.make_token(roles=roles)
    for path, status in ((f"/v1.0/groups/{group}/transitiveMembers", group_status), ("/v1.0/groups", group_status),
                         (f"/v1.0/directory/administrativeUnits/{unit}/members", unit_status)):
        answer = _get(asgi_sandbox, path, token)
        assert answer.status_code == status
        if status == 403:
            assert answer.json()["error"]["code"] == "Authorization_RequestDenied"
    delegated = asgi_sandbox.make_token(scp="GroupMember.Read.All")  # no directory role needed
    assert _get(asgi_sandbox, f"/v1.0/groups/{group}", delegated).status_code == 200


def test_the_default_token_reads_groups_and_admin_units(asgi_sandbox: Any) -> None:
    group = asgi_sandbox.tenant.create_group("Pilot")
    unit = asgi_sandbox.tenant.create_admin_unit("France")
    assert _get(asgi_sandbox, f"/v1.0/groups/{group}/transitiveMembers").status_code == 200
    assert _get(asgi_sandbox, f"/v1.0/directory/administrativeUnits/{unit}/members").status_code == 200


def test_snapshot_round_trips_groups_and_admin_units() -> None:
    tenant = Tenant()
    ann, bob = _users(tenant, "ann", "bob")
    inner = tenant.create_group("Inner", members=[bob])
    outer = tenant.create_group("Outer", members=[ann])
    tenant.add_members(outer, [inner])
    tenant.add_members(inner, [outer])
    tenant.create_admin_unit("France", members=[ann, inner])
    tenant.delete_user(bob)
    snap = tenant.to_snapshot()
    assert [g["displayName"] for g in snap["groups"]] == ["Inner", "Outer"]
    assert snap["administrative_units"][0]["members"] == [ann, inner]

    again = Tenant.from_snapshot(json.loads(json.dumps(snap)))
    assert again.to_snapshot() == snap
    again.check_invariants()
    members, _ = again.group_transitive_members(outer)
    assert [m["id"] for m in members] == [ann, inner]  # bob is deleted: never listed


def test_snapshots_without_groups_stay_byte_identical() -> None:
    tenant = Tenant()
    _users(tenant, "ann")
    snap = tenant.to_snapshot()
    assert "groups" not in snap and "administrative_units" not in snap
    assert Tenant.from_snapshot(snap).to_snapshot() == snap


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([{"id": "00000000-0000-4000-8000-0000000000g1", "displayName": "A"}], "groups[0] (A): Invalid value"),
        ([{"id": "00000000-0000-4000-8000-000000000001", "displayName": "A", "members": ["nobody"]}], "is no user's"),
        ([{"id": "00000000-0000-4000-8000-000000000001", "displayName": "A", "owner": "x"}], "unknown key"),
        ([{"id": "00000000-0000-4000-8000-000000000001", "displayName": ""}], "displayName"),
    ],
)
def test_bad_group_entries_are_refused_naming_the_field(groups: list[dict[str, Any]], message: str) -> None:
    snap = Tenant().to_snapshot()
    with pytest.raises(SnapshotError, match=re.escape(message)):
        Tenant.from_snapshot({**snap, "groups": groups})


def test_the_sdk_parses_transitive_members_over_loopback(sandbox: Any) -> None:
    tenant = sandbox.tenant
    ann, bob = _users(tenant, "ann", "bob")
    inner = tenant.create_group("Inner", members=[bob])
    outer = tenant.create_group("Pilot", members=[ann, inner])

    async def main() -> tuple[Any, Any, Any]:
        client, http = sdk_client(sandbox.v1, sandbox.token)
        try:
            members = await client.groups.by_group_id(outer).transitive_members.get()
            unit_error = await odata_error(
                client.directory.administrative_units.by_administrative_unit_id(outer).members.get()
            )
            group = await client.groups.by_group_id(outer).get()
            return members, unit_error, group
        finally:
            await http.aclose()

    members, unit_error, group = asyncio.run(main())
    from msgraph.generated.models.group import Group
    from msgraph.generated.models.user import User

    users = {m.id: m.user_principal_name for m in members.value if isinstance(m, User)}
    assert users == {ann: "ann@contoso.example", bob: "bob@contoso.example"}
    assert [m.id for m in members.value if isinstance(m, Group)] == [inner]
    assert members.odata_next_link is None
    assert unit_error.response_status_code == 404
    assert group.display_name == "Pilot"
