"""A user's changes as one ordered chain, in the order that never breaks a Graph rule.

Order inside a user (see design.md "Domain rules"):

1. creates/updates: mobile, then alternateMobile, then office (``PHONE_TYPES``: an
   alternateMobile needs a mobile, so a new mobile comes first);
2. deletes: office, then alternateMobile, then mobile (``DELETE_ORDER``: a mobile can't go
   while an alternateMobile exists; a number moving between types is thereby create-new,
   delete-old);
3. the SMS sign-in change, last, so a refused SMS change (409 phoneNumberNotUnique, policy)
   can't block the phone writes chained before it.

Change ids are ``<user key>#<n>`` counting from 1, and each change's ``depends_on`` is the
previous change of the same user, for ``$batch`` dependsOn.
"""

from __future__ import annotations

from typing import Mapping

from provision.model import DELETE_ORDER, PHONE_TYPES, ChangeKind, CurrentPhone, PhoneType
from provision.planner.phone_rules import PhoneDeletes, PhoneWrites
from provision.planner.values import Change

__all__ = ["append_sms_change", "phone_chain"]

_MOBILE = PhoneType.MOBILE
_CREATE = ChangeKind.CREATE
_UPDATE = ChangeKind.UPDATE
_DELETE = ChangeKind.DELETE


def phone_chain(
    key: str,
    target: str,
    rows: tuple[int, ...],
    write: PhoneWrites,
    delete: PhoneDeletes,
    cur: Mapping[PhoneType, CurrentPhone],
) -> list[Change]:
    """The user's phone writes: creates/updates in ``PHONE_TYPES`` order, then deletes."""
    changes: list[Change] = []
    prev: str | None = None
    n = 0
    if write:
        for t in PHONE_TYPES:
            w = write.get(t)
            if w is not None:
                cp = cur.get(t)
                n += 1
                cid = f"{key}#{n}"
                if cp is None:
                    changes.append(Change(cid, key, target, _CREATE, t, None, w, prev, rows))
                else:
                    changes.append(Change(cid, key, target, _UPDATE, t, cp.number, w, prev, rows))
                prev = cid
    if delete:
        for t in DELETE_ORDER:
            if t in delete:
                n += 1
                cid = f"{key}#{n}"
                changes.append(Change(cid, key, target, _DELETE, t, cur[t].number, None, prev, rows))
                prev = cid
    return changes


def append_sms_change(
    changes: list[Change],
    key: str,
    target: str,
    rows: tuple[int, ...],
    kind: ChangeKind,
    before: str | None,
    after: str,
) -> None:
    """Chain the user's SMS sign-in change (on the mobile) after their phone writes."""
    prev = changes[-1].id if changes else None
    changes.append(Change(f"{key}#{len(changes) + 1}", key, target, kind, _MOBILE, before, after, prev, rows))
