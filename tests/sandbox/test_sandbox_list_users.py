"""`GET /users` in the sandbox: Graph's paging shape, followed by our GraphClient over loopback.

Pages hold at most 999 users (what ``$top=999`` asks; the sandbox sees no query options),
each ``{"id", "userPrincipalName"}``; every page but the last has an ``@odata.nextLink``
(relative to the request's URL) that the client follows to the next page. Soft-deleted users
are not listed. Listing needs a user-read permission (User.Read.All, Directory.Read.All...).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from support.sandbox import loopback_client

from provision.errors import AuthError
from provision.sandbox.operations import USERS_PAGE_SIZE

USERS = 2 * USERS_PAGE_SIZE + 102


def _populate(sandbox: Any) -> set[str]:
    tenant = sandbox.tenant
    ids = {tenant.create_user(f"user{i:05d}@contoso.example")["id"] for i in range(USERS)}
    gone = tenant.create_user("gone@contoso.example")["id"]
    tenant.delete_user(gone)
    return ids


def test_client_follows_next_links_through_every_page(sandbox: Any) -> None:
    ids = _populate(sandbox)

    async def read_all() -> tuple[list[Any], int]:
        async with loopback_client(sandbox.root, token=sandbox.make_token(roles=["User.Read.All"])) as client:
            users, link, pages = [], None, 0
            while True:
                page, link = await client.list_users_page(link)
                users += page
                pages += 1
                if link is None:
                    return users, pages

    users, pages = asyncio.run(read_all())
    assert pages == 3
    assert [u.id for u in users] == list(dict.fromkeys(u.id for u in users))  # no user twice
    assert {u.id for u in users} == ids
    assert all(u.user_principal_name and u.user_principal_name.startswith("user") for u in users)
    assert sandbox.stats()["by_operation"] == {"listUsers": 1, "listUsersPage": 2}


def test_pages_have_graphs_shape(sandbox: Any) -> None:
    _populate(sandbox)
    headers = {"Authorization": f"Bearer {sandbox.make_token(roles=['Directory.Read.All'])}"}
    first = httpx.get(f"{sandbox.v1}/users?$select=id,userPrincipalName&$top=999", headers=headers).json()
    assert len(first["value"]) == USERS_PAGE_SIZE and set(first["value"][0]) == {"id", "userPrincipalName"}
    assert first["@odata.context"].endswith("$metadata#users(id,userPrincipalName)")
    second_url = httpx.URL(f"{sandbox.v1}/users").join(first["@odata.nextLink"])
    second = httpx.get(second_url, headers=headers).json()
    third = httpx.get(second_url.join(second["@odata.nextLink"]), headers=headers).json()
    assert len(third["value"]) == USERS - 2 * USERS_PAGE_SIZE and "@odata.nextLink" not in third
    assert not {u["id"] for u in first["value"]} & {u["id"] for u in second["value"]}


def test_a_skiptoken_naming_no_user_is_a_bad_request(sandbox: Any) -> None:
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    answer = httpx.get(f"{sandbox.v1}/users/$skiptoken=00000000-0000-0000-0000-000000000001", headers=headers)
    assert answer.status_code == 400


@pytest.mark.parametrize("roles", [["UserAuthenticationMethod.Read.All"], ["Policy.Read.All"]])
def test_listing_users_needs_a_user_read_permission(sandbox: Any, roles: list[str]) -> None:
    _populate(sandbox)

    async def first_page() -> None:
        async with loopback_client(sandbox.root, token=sandbox.make_token(roles=roles)) as client:
            await client.list_users_page()

    with pytest.raises(AuthError) as denied:
        asyncio.run(first_page())
    assert denied.value.status == 403
