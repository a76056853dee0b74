"""The job's ``[scope]``: which users it may touch, read from groups and administrative units.

Each entry names a group or an administrative unit by object id (a GUID) or by display
name, matched exactly but case-insensitively (Graph's own string comparison); a name no
object has, or several objects share, is a usage error naming it. A group contributes its
transitive members (``GET /groups/{id}/transitiveMembers``: users of nested groups too,
each once); an administrative unit its direct user members (``GET
/directory/administrativeUnits/{id}/members``: an AU-scoped role applies to the users in
the unit, not to members of groups in it). Pages are followed by ``@odata.nextLink`` as
given. Every read goes through the client (the pacer's read lane); transient failures are
retried under ``provision.graph.retry``'s policy like the state reader's reads.

A 403 stops the run (``AuthError``, exit 4) naming the permission to grant: reading only
part of a scope would plan against the wrong set of users.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, TypeVar
from urllib.parse import quote

from provision.errors import AuthError, GraphError, UsageError
from provision.graph.client import GraphClient
from provision.graph.retry import DEFAULT_RETRY_POLICY, RetryPolicy
from provision.graph.state_reader import read_retried

__all__ = ["ADMIN_UNIT", "GROUP", "Scope", "ScopeKind", "read_scope"]

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_USER_TYPE = "#microsoft.graph.user"
_PAGE_SIZE = 999  # Graph's largest page for directory collections


@dataclass(frozen=True, slots=True)
class ScopeKind:
    """One kind of scope entry: where its objects live and what reading them needs."""

    noun: str  # for messages: "group", "administrative unit"
    key: str  # the job file's key
    collection: str  # path after the API version
    members: str  # the member collection under an object
    permission: str  # the least permission that reads the members


GROUP = ScopeKind("group", "scope.groups", "/groups", "transitiveMembers", "GroupMember.Read.All")
ADMIN_UNIT = ScopeKind(
    "administrative unit", "scope.admin_units", "/directory/administrativeUnits", "members", "AdministrativeUnit.Read.All"
)


@dataclass(frozen=True, slots=True)
class Scope:
    """The users a scoped job may touch: object ids (lower-case) and UPNs (case-folded, like roster keys)."""

    ids: frozenset[str]
    upns: frozenset[str]
    sources: tuple[str, ...]  # 'group "Pilot" (id)', for the run's notes
    upns_complete: bool = True  # every member came with its UPN (not Graph's "limited information" answer)

    def contains(self, key: str) -> bool:
        """Whether a roster key (a lower-case GUID or a case-folded UPN) is in scope.

        A UPN is matched against the UPN Graph lists for the member: the same user Graph
        resolves ``/users/{upn}`` to, without a lookup per roster user.
        """
        k = key.strip()
        return k.lower() in self.ids if _GUID.match(k) else k.casefold() in self.upns

    def decides(self, key: str) -> bool:
        """Whether ``contains`` can judge ``key``: an object id always; a UPN only when every
        member came with its UPN (Graph answers members the app may not read as users with
        an id alone, the "limited information" case, evidence G56)."""
        return self.upns_complete or _GUID.match(key.strip()) is not None


Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


async def read_scope(
    client: GraphClient,
    groups: Iterable[str],
    admin_units: Iterable[str],
    *,
    retry: RetryPolicy = DEFAULT_RETRY_POLICY,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> Scope:
    """Resolve every entry and collect the users of all of them (their union)."""
    reader = _ScopeReader(client, retry, clock, sleep)
    ids: set[str] = set()
    upns: set[str] = set()
    sources: list[str] = []
    upns_complete = True
    for kind, entries in ((GROUP, groups), (ADMIN_UNIT, admin_units)):
        for entry in entries:
            obj_id, name = await reader.resolve(kind, entry)
            count = 0
            async for user_id, upn in reader.users(kind, obj_id):
                ids.add(user_id)
                if upn:
                    upns.add(upn)
                else:
                    upns_complete = False
                count += 1
            sources.append(f'{kind.noun} "{name}" ({obj_id}): {count:,} user(s)')
    return Scope(frozenset(ids), frozenset(upns), tuple(sources), upns_complete)


class _ScopeReader:
    def __init__(self, client: GraphClient, retry: RetryPolicy, clock: Callable[[], float], sleep: Sleep) -> None:
        self.client = client
        self.retry = retry
        self.clock = clock
        self.sleep = sleep

    def _url(self, path: str, **query: str) -> str:
        q = "&".join(f"${k}={quote(v, safe=',')}" for k, v in query.items())
        return f"{self.client.target.base_url}{path}" + (f"?{q}" if q else "")

    async def resolve(self, kind: ScopeKind, entry: str) -> tuple[str, str]:
        """(object id, display name) of an entry: a GUID is read, a name is looked up."""
        if _GUID.match(entry):
            entry = entry.lower()
            try:
                found = await self._get(kind, self._url(f"{kind.collection}/{entry}", select="id,displayName"))
            except GraphError as exc:
                if exc.status == 404:
                    raise UsageError(f"{kind.key}: no {kind.noun} has the id {entry}") from None
                raise
            return str(found.get("id") or entry).lower(), str(found.get("displayName") or entry)
        wanted = entry.casefold()
        # The filter narrows the listing where Graph honours it; the match is ours either way.
        escaped = entry.replace("'", "''")
        url: str | None = self._url(
            kind.collection, filter=f"displayName eq '{escaped}'", select="id,displayName", top=str(_PAGE_SIZE)
        )
        matches: list[tuple[str, str]] = []
        while url is not None:
            items, url = await self._page(kind, url)
            matches += [
                (str(item["id"]).lower(), str(item["displayName"]))
                for item in items
                if item.get("id") and str(item.get("displayName") or "").casefold() == wanted
            ]
        if not matches:
            raise UsageError(f"{kind.key}: no {kind.noun} is named {entry!r}; give its exact display name or its object id")
        if len(matches) > 1:
            ids = ", ".join(m[0] for m in matches)
            raise UsageError(f"{kind.key}: {len(matches)} {kind.noun}s are named {entry!r} ({ids}); give the object id instead")
        return matches[0]

    async def users(self, kind: ScopeKind, obj_id: str) -> AsyncIterator[tuple[str, str | None]]:
        """(id, UPN) of every user member (id lower-case, UPN case-folded), following the pages."""
        url: str | None = self._url(
            f"{kind.collection}/{obj_id}/{kind.members}", select="id,userPrincipalName", top=str(_PAGE_SIZE)
        )
        while url is not None:
            items, url = await self._page(kind, url)
            for item in items:
                if item.get("@odata.type") == _USER_TYPE and item.get("id"):
                    upn = item.get("userPrincipalName")
                    yield str(item["id"]).lower(), str(upn).strip().casefold() if upn else None

    async def _get(self, kind: ScopeKind, url: str) -> dict[str, Any]:
        return await self._retried(kind, lambda: self.client.read_json(url))

    async def _page(self, kind: ScopeKind, url: str) -> tuple[list[dict[str, Any]], str | None]:
        return await self._retried(kind, lambda: self.client.read_json_page(url))

    async def _retried(self, kind: ScopeKind, call: Callable[[], Awaitable[T]]) -> T:
        def refused(exc: AuthError) -> AuthError:
            return AuthError(
                403,
                exc.code,
                f"the credential may not read the job's [scope] ({kind.noun}s and their members): grant "
                f"the app {kind.permission} (application permission) with admin consent, or remove "
                f"{kind.key} from the job file",
                request_id=exc.request_id,
            )

        return await read_retried(self.client, call, refused=refused, retry=self.retry, clock=self.clock, sleep=self.sleep)
