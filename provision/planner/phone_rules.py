"""Which of a user's phone types to create, update or delete.

Per mode (``PHONE_DECISIONS``), for each type the roster mentions (a type it does not
mention is never touched):

- additive: create a missing type, update a differing number, never delete;
- fill-empty: only create where the type is empty;
- authoritative: as additive, and a blank cell deletes the type.

Then Graph's mobile/alternateMobile rule, judged on the state the plan would leave behind
(``mobile_alternate_rule``): an alternateMobile needs a mobile, so a blanked mobile is kept
while an alternateMobile stays, and an alternateMobile is not written for a user who will
have no mobile.

The decisions are a ``PhoneWrites`` (type -> the number to create or update it to) and a
``PhoneDeletes`` (types to delete); a type in neither is left alone.
"""

from __future__ import annotations

from typing import AbstractSet, Callable, Mapping

from provision.model import CurrentPhone, PhoneType, PlanMode
from provision.planner.reasons import ReasonCode
from provision.planner.same_number import same_number

__all__ = ["PHONE_DECISIONS", "PhoneDecision", "PhoneDeletes", "PhoneWrites", "mobile_alternate_rule"]

PhoneWrites = dict[PhoneType, str]
PhoneDeletes = AbstractSet[PhoneType]
Wanted = Mapping[PhoneType, str | None]
Current = Mapping[PhoneType, CurrentPhone]
PhoneDecision = Callable[[Wanted, Current], tuple[PhoneWrites, PhoneDeletes]]

_MOBILE = PhoneType.MOBILE
_ALT = PhoneType.ALTERNATE_MOBILE
# Shared by every user the plan deletes nothing for: only authoritative mode builds a set.
_NO_DELETES: frozenset[PhoneType] = frozenset()


def _additive(want: Wanted, cur: Current) -> tuple[PhoneWrites, PhoneDeletes]:
    write: PhoneWrites = {}
    for t, w in want.items():
        if w is not None:
            cp = cur.get(t)
            if cp is None or not same_number(cp.number, w):
                write[t] = w
    return write, _NO_DELETES


def _fill_empty(want: Wanted, cur: Current) -> tuple[PhoneWrites, PhoneDeletes]:
    write: PhoneWrites = {}
    for t, w in want.items():
        if w is not None and cur.get(t) is None:
            write[t] = w
    return write, _NO_DELETES


def _authoritative(want: Wanted, cur: Current) -> tuple[PhoneWrites, PhoneDeletes]:
    write: PhoneWrites = {}
    delete: set[PhoneType] = set()
    for t, w in want.items():
        cp = cur.get(t)
        if w is None:
            if cp is not None:
                delete.add(t)
        elif cp is None or not same_number(cp.number, w):
            write[t] = w
    return write, delete


PHONE_DECISIONS: Mapping[PlanMode, PhoneDecision] = {
    PlanMode.ADDITIVE: _additive,
    PlanMode.FILL_EMPTY: _fill_empty,
    PlanMode.AUTHORITATIVE: _authoritative,
}


def mobile_alternate_rule(
    write: PhoneWrites, delete: PhoneDeletes, cur: Current
) -> tuple[PhoneWrites, PhoneDeletes, ReasonCode | None]:
    """Graph's rule on the state the plan would leave: no alternateMobile without a mobile.

    Returns the decisions to plan, with the code saying what was held back (if anything).
    """
    alt_after = (_ALT in write) or (_ALT in cur and _ALT not in delete)
    if alt_after:
        if _MOBILE in delete:
            return write, delete - {_MOBILE}, ReasonCode.MOBILE_DELETE_BLOCKED
        if _MOBILE not in cur and _MOBILE not in write and _ALT in write:
            return {t: w for t, w in write.items() if t is not _ALT}, delete, ReasonCode.ALTERNATE_REQUIRES_MOBILE
    return write, delete, None
