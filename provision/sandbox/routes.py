"""The sandbox's Graph URL surface: which path and method name which operation.

One grammar for direct requests and ``$batch`` items alike: a direct request's path after
its API version, and a batch item's relative ``url``, are matched by the same ``route``.
``GET /users`` lists users a page at a time; its ``@odata.nextLink`` is a reference
relative to the request's URL naming the next page in the path (``users/$skiptoken=ID``),
since query strings never reach here. ``GET /groups``, ``/groups/{id}/transitiveMembers``, ``/directory/administrativeUnits`` and
``.../{id}/members`` page the same way. Users are addressed by id or UPN (percent-encoded or not); path segments are matched
case-insensitively, empty segments (``//``) are ignored, query strings never reach here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import unquote

API_VERSIONS = frozenset({"v1.0", "beta"})

# route name -> HTTP method -> operation name (the name auth, the service and stats use).
ROUTES: Mapping[str, Mapping[str, str]] = {
    "phoneMethods": {"GET": "listPhoneMethods", "POST": "createPhoneMethod"},
    "phoneMethod": {"GET": "getPhoneMethod", "PATCH": "updatePhoneMethod", "DELETE": "deletePhoneMethod"},
    "enableSmsSignIn": {"POST": "enableSmsSignIn"},
    "disableSmsSignIn": {"POST": "disableSmsSignIn"},
    "smsPolicy": {"GET": "getSmsPolicy", "PATCH": "updateSmsPolicy"},
    "users": {"GET": "listUsers", "POST": "createUser"},
    "usersPage": {"GET": "listUsersPage"},
    "user": {"GET": "getUser", "DELETE": "deleteUser"},
    # Lists of groups, administrative units and members: params end with the page's cursor
    # when the path names one (``.../$skiptoken=N``); the first page has none.
    "groups": {"GET": "listGroups"},
    "group": {"GET": "getGroup"},
    "groupTransitiveMembers": {"GET": "listGroupTransitiveMembers"},
    "adminUnits": {"GET": "listAdminUnits"},
    "adminUnit": {"GET": "getAdminUnit"},
    "adminUnitMembers": {"GET": "listAdminUnitMembers"},
}
UNKNOWN_ROUTE = "unknownRoute"  # the stats name of a request no route takes

# The sandbox's next-page links name the page in the path (``users/$skiptoken=...``):
# query strings never reach the routes. A user's id or UPN never starts with a "$".
SKIPTOKEN_PREFIX = "$skiptoken="

_SMS_POLICY_PATH = ("policies", "authenticationmethodspolicy", "authenticationmethodconfigurations", "sms")
_ACTIONS = {"enablesmssignin": "enableSmsSignIn", "disablesmssignin": "disableSmsSignIn"}
# A type-cast segment after a member list keeps one kind of member (``.../microsoft.graph.user``).
MEMBER_CASTS = {
    "microsoft.graph.user": "user",
    "graph.user": "user",
    "microsoft.graph.group": "group",
    "graph.group": "group",
}


@dataclass(frozen=True, slots=True)
class RouteMiss:
    """Why no operation takes a request: no such path (400 "Resource not found for the segment", stats name ``unknownRoute``) or
    a known path with another method (405, stats name: the route's)."""

    status: int
    stats_name: str


_NO_ROUTE = RouteMiss(400, UNKNOWN_ROUTE)


def split_path(path: str) -> list[str]:
    """Percent-decoded path segments; empty segments (``//``) are dropped."""
    # evidence: G14 (whether Graph honours $filter on the phone list is unknown: callers drop query strings)
    return [unquote(s) if "%" in s else s for s in path.split("/") if s]


def is_batch(segs: Sequence[str]) -> bool:
    """Whether the segments after the API version are the ``$batch`` endpoint."""
    return len(segs) == 1 and segs[0].casefold() == "$batch"


def match_route(segs: Sequence[str]) -> tuple[str, tuple[str, ...]] | None:
    """(route name, parameters) for the path segments after the API version, or None."""
    n = len(segs)
    if n == 0:
        return None
    head = segs[0].casefold()
    if head == "users":
        if n == 1:
            return "users", ()
        if n == 2:
            if segs[1].startswith(SKIPTOKEN_PREFIX):
                return "usersPage", (segs[1][len(SKIPTOKEN_PREFIX) :],)
            return "user", (segs[1],)
        if n >= 4 and segs[2].casefold() == "authentication" and segs[3].casefold() == "phonemethods":
            if n == 4:
                return "phoneMethods", (segs[1],)
            if n == 5:
                return "phoneMethod", (segs[1], segs[4])
            if n == 6:
                action = _ACTIONS.get(segs[5].casefold().removeprefix("microsoft.graph."))
                if action:
                    return action, (segs[1], segs[4])
        return None
    if n == 4 and tuple(s.casefold() for s in segs) == _SMS_POLICY_PATH:
        return "smsPolicy", ()
    if head == "groups":
        return _container_route(segs[1:], "groups", "group", "groupTransitiveMembers", "transitivemembers")
    if head == "directory" and n >= 2 and segs[1].casefold() == "administrativeunits":
        return _container_route(segs[2:], "adminUnits", "adminUnit", "adminUnitMembers", "members")
    return None


def _page_token(seg: str) -> str | None:
    return seg[len(SKIPTOKEN_PREFIX) :] if seg.startswith(SKIPTOKEN_PREFIX) else None


def _container_route(
    rest: Sequence[str], list_name: str, item_name: str, members_name: str, members_seg: str
) -> tuple[str, tuple[str, ...]] | None:
    """Routes under ``/groups`` or ``/directory/administrativeUnits`` (``rest``: the segments
    after it). Params: a list's (cursor?); an item's (id,); a member list's (id, cast, cursor?)
    where cast is "", "user" or "group"."""
    if not rest:
        return list_name, ()
    token = _page_token(rest[0])
    if token is not None:
        return (list_name, (token,)) if len(rest) == 1 else None
    if len(rest) == 1:
        return item_name, (rest[0],)
    if rest[1].casefold() != members_seg:
        return None
    tail = list(rest[2:])
    cast = ""
    if tail and tail[0].casefold() in MEMBER_CASTS:
        cast = MEMBER_CASTS[tail.pop(0).casefold()]
    if not tail:
        return members_name, (rest[0], cast)
    token = _page_token(tail[0])
    if token is not None and len(tail) == 1:
        return members_name, (rest[0], cast, token)
    return None


def unknown_segment(segs: Sequence[str]) -> str:
    """The first segment of an unmatched path that no route has there (the one Graph names
    in "Resource not found for the segment '...'"); the last one when the path stops short."""
    if not segs:
        return ""
    head = segs[0].casefold()
    if head == "users":
        for i, seg in enumerate(segs):
            folded = seg.casefold()
            if (i == 2 and folded != "authentication") or (i == 3 and folded != "phonemethods"):
                return seg
            if i == 5 and folded.removeprefix("microsoft.graph.") not in _ACTIONS or i > 5:
                return seg
        return segs[-1]
    if head in ("groups", "directory"):
        known = ("groups", "", "transitivemembers") if head == "groups" else ("directory", "administrativeunits", "", "members")
        for i, seg in enumerate(segs):
            if i >= len(known) or (known[i] and seg.casefold() != known[i]):
                return seg
        return segs[-1]
    if head == "policies":
        for i, seg in enumerate(segs):
            if i >= len(_SMS_POLICY_PATH) or seg.casefold() != _SMS_POLICY_PATH[i]:
                return seg
        return segs[-1]
    return segs[0]


def route(method: str, segs: Sequence[str]) -> tuple[str, tuple[str, ...]] | RouteMiss:
    """(operation name, path parameters) for a request, or the RouteMiss saying why none."""
    matched = match_route(segs)
    if matched is None:
        return _NO_ROUTE
    name, params = matched
    operation = ROUTES[name].get(method)
    if operation is None:
        return RouteMiss(405, name)
    return operation, params


__all__ = ["API_VERSIONS", "MEMBER_CASTS", "ROUTES", "SKIPTOKEN_PREFIX", "UNKNOWN_ROUTE", "RouteMiss", "is_batch", "match_route", "route", "split_path", "unknown_segment"]
