"""Groups and administrative units of the sandbox tenant: membership, pure.

A container (a group or an administrative unit) has an id, a display name and an ordered
set of member ids: user ids and group ids (nested groups; cycles are allowed and harmless).
The tenant owns the containers and knows which ids are users; this module knows how
membership is walked and paged:

- a group's *transitive* members are everyone reachable through nested groups, each once,
  in the order a depth-first walk meets them (Graph promises no order);
- an administrative unit's members are its *direct* members only (Graph: an AU-scoped role
  applies to the users in it, not to members of groups in it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence, TypeVar

# evidence: G56 (member lists are paged; the page size is the service's: 100 is our choice)
MEMBERS_PAGE_SIZE = 100

T = TypeVar("T")


@dataclass(slots=True)
class Container:
    """A group or an administrative unit."""

    id: str  # lower-case GUID
    display_name: str
    members: dict[str, None] = field(default_factory=dict)  # ordered set of lower-case ids

    def json(self) -> dict[str, str]:
        return {"id": self.id, "displayName": self.display_name}


def transitive_member_ids(groups: Mapping[str, Container], root: Container) -> list[str]:
    """Every id reachable from ``root`` through nested groups, each once, ``root`` excluded."""
    seen: dict[str, None] = {}
    visited = {root.id}
    stack = [iter(root.members)]
    while stack:
        member = next(stack[-1], None)
        if member is None:
            stack.pop()
            continue
        if member in seen or member == root.id:
            continue
        seen[member] = None
        nested = groups.get(member)
        if nested is not None and nested.id not in visited:
            visited.add(nested.id)
            stack.append(iter(nested.members))
    return list(seen)


def page_of(items: Sequence[T], cursor: str | None, size: int) -> tuple[list[T], str | None]:
    """One page of ``items`` from ``cursor`` (None: the first page), and the next page's
    cursor (None on the last). The cursor is an offset; ValueError when it isn't one of ``items``."""
    start = 0
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > len(items):
            raise ValueError(cursor)
        start = int(cursor)
    end = start + size
    return list(items[start:end]), (str(end) if end < len(items) else None)


__all__ = ["MEMBERS_PAGE_SIZE", "Container", "page_of", "transitive_member_ids"]
