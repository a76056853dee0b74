"""The planner's values: what it is asked (``PlanPolicy``) and what it answers (``Plan``).

A ``Plan`` holds one ``UserPlan`` per roster user, each with the ordered chain of
``Change`` values the executor applies as given, and the ``SafetyVerdict`` on the whole.
All frozen; the shared closed sets they use (phone types, change kinds, decisions) live in
``provision.model``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from provision.model import (
    ChangeKind,
    CurrentUser,
    DesiredUser,
    PhoneType,
    PlanMode,
    SmsIntent,
    SmsPolicy,
    UserDecision,
)
from provision.planner.reasons import ReasonCode

__all__ = ["Change", "Plan", "PlanPolicy", "SafetyVerdict", "Threshold", "UserPlan"]


@dataclass(frozen=True, slots=True)
class Change:
    """One Graph write. ``target`` addresses the user (object id if known, else the UPN).

    ``before``/``after`` are numbers for create/update/delete (unmasked: the plan file is the
    reviewable artefact), and ``smsSignInState`` values for SMS changes (``before`` as read,
    ``None`` when the plan writes the mobile first; ``after`` the state aimed for).
    """

    id: str
    user: str
    target: str
    kind: ChangeKind
    phone_type: PhoneType
    before: str | None
    after: str | None
    depends_on: str | None
    rows: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class UserPlan:
    """The plan for one roster user. ``desired``/``current`` are the inputs (for the plan file)."""

    key: str
    user: str
    outcome: UserDecision
    changes: tuple[Change, ...]
    reason: str | None
    rows: tuple[int, ...]
    codes: tuple[ReasonCode, ...] = ()
    desired: DesiredUser | None = None
    current: CurrentUser | None = None


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    """The job's planning settings. ``mode`` accepts any equal string."""

    mode: PlanMode = PlanMode.ADDITIVE
    sms: SmsIntent = SmsIntent.LEAVE
    max_changes: int | None = None
    max_delete_percent: float | None = None
    max_update_percent: float | None = None
    retry_sms_conflicts: bool = False  # re-plan enable_sms for a mobile that reads phoneNumberNotUnique
    # The roster's own size (checked by ``safety.roster_thresholds``, not by ``plan()``):
    # fewer data rows than this is refused (None: no floor) ...
    min_roster_rows: int | None = 1
    # ... and so are fewer usable rows than this percentage of the previous run's (None: off).
    min_roster_percent: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", PlanMode(self.mode))
        object.__setattr__(self, "sms", SmsIntent(self.sms))


@dataclass(frozen=True, slots=True)
class Threshold:
    """One safety threshold a plan exceeds."""

    name: str  # max_changes | max_delete_percent | max_update_percent | min_roster_rows | min_roster_percent
    limit: float
    actual: float
    message: str  # "deletes 12.5% > max_delete_percent 5%"


@dataclass(frozen=True, slots=True)
class SafetyVerdict:
    """The thresholds a plan exceeds (none: ``ok``), see ``provision.planner.safety``."""

    exceeded: tuple[Threshold, ...]
    base_phones: int  # the percentage base: current phones of users read successfully

    @property
    def ok(self) -> bool:
        return not self.exceeded

    @property
    def message(self) -> str:
        return "; ".join(t.message for t in self.exceeded)


@dataclass(frozen=True, slots=True)
class Plan:
    """Every roster user's plan, in roster order, with the policy and SMS policy it was made under."""

    users: tuple[UserPlan, ...]
    changes: tuple[Change, ...]  # every user's chain, concatenated in user order
    policy: PlanPolicy
    safety: SafetyVerdict
    sms_policy: SmsPolicy | None = None

    def counts(self) -> Counter[ChangeKind]:
        return Counter(c.kind for c in self.changes)
