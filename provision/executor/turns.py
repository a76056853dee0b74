"""Mobile numbers several users of a run are given: written in roster order.

Graph registers a new mobile for SMS sign-in only when no other user signs in with its
number, so when two roster users are given the same mobile, the one whose write lands
first signs in by SMS and the other's phone reads ``phoneNumberNotUnique``. Graph may run
a batch's items in any order, and a throttled item is sent again after later ones, so the
winner would depend on timing. ``NumberTurns`` makes it the earlier roster row (the plan
lists users in roster order): a write of a shared mobile number waits until every earlier
user's write of that number has finished (done, failed, or its user's chain ended).
"""

from __future__ import annotations

from typing import Callable, Iterable

from provision.executor.chains import ChangeItem
from provision.model import ChangeKind, PhoneType

__all__ = ["NumberTurns"]

_MOBILE_WRITES = (ChangeKind.CREATE, ChangeKind.UPDATE)


class NumberTurns:
    """The unfinished mobile writes of shared numbers, in planned order, and those waiting."""

    __slots__ = ("_queues", "_number_of", "parked")

    def __init__(self, items: Iterable[ChangeItem]) -> None:
        by_number: dict[str, list[ChangeItem]] = {}
        for item in items:
            if item.phone_type is PhoneType.MOBILE and item.kind in _MOBILE_WRITES and item.change.after:
                by_number.setdefault(item.change.after, []).append(item)
        self._queues = {n: q for n, q in by_number.items() if len({it.user.key for it in q}) > 1}
        self._number_of = {it.change.id: n for n, q in self._queues.items() for it in q}
        self.parked: list[ChangeItem] = []  # ready, waiting for an earlier user's write

    def may_send(self, item: ChangeItem, settled: Callable[[ChangeItem], bool]) -> bool:
        """Whether ``item`` may be sent now; if not, it is parked until ``unparked`` frees it."""
        number = self._number_of.get(item.change.id)
        if number is None or self._first(number, item, settled):
            return True
        self.parked.append(item)
        return False

    def unparked(self, settled: Callable[[ChangeItem], bool], *, all_: bool = False) -> list[ChangeItem]:
        """The parked items whose turn has come (``all_``: every one, nothing else can move)."""
        free = [it for it in self.parked if all_ or self._first(self._number_of[it.change.id], it, settled)]
        if free:
            self.parked = [it for it in self.parked if it not in free]
        return free

    def _first(self, number: str, item: ChangeItem, settled: Callable[[ChangeItem], bool]) -> bool:
        for earlier in self._queues[number]:
            if earlier is item:
                return True
            if not settled(earlier):
                return False
        return True
