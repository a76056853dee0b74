"""Builders for the journal tests: a stepping clock and small plans of changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from provision.apply.journal import JournalChange
from provision.model import PhoneType

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class StepClock:
    """Each reading is one second after the previous one: times are exact and ordered."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def make_changes(users: int) -> list[JournalChange]:
    """Two chained changes per user (mobile, then alternateMobile), as the planner orders them."""
    changes = []
    for u in range(users):
        key = f"user{u:04d}@contoso.com"
        changes.append(
            JournalChange(
                id=f"{key}#1", user=key, target=key, kind="create", phone_type=PhoneType.MOBILE,
                before=None, after=f"+1 42555{u:05d}", depends_on=None, rows=(u + 2,),
            )
        )
        changes.append(
            JournalChange(
                id=f"{key}#2", user=key, target=key, kind="update",
                phone_type=PhoneType.ALTERNATE_MOBILE, before="+44 7700900001",
                after=f"+44 77009{u:05d}", depends_on=f"{key}#1", rows=(u + 2, u + 900),
            )
        )
    return changes
