"""What the CLI and the plan file say about a plan as a whole: counts, outcomes, top reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from provision.model import PHONE_TYPES, ChangeKind, PhoneType, UserDecision
from provision.planner.reasons import WARNING_CODES, ReasonCode
from provision.planner.values import Plan, SafetyVerdict, UserPlan

__all__ = ["PlanSummary", "summarize", "users_by_outcome"]


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """What the CLI prints: counts, top reasons, outcomes. Holds no phone numbers."""

    total_changes: int
    by_kind: Mapping[ChangeKind, int]
    by_phone_type: Mapping[PhoneType, Mapping[ChangeKind, int]]
    by_outcome: Mapping[UserDecision, int]
    top_errors: tuple[tuple[str, int], ...]
    top_warnings: tuple[tuple[str, int], ...]
    users: int = 0
    safety: SafetyVerdict | None = field(default=None)


def summarize(plan: Plan, top: int = 5) -> PlanSummary:
    """Counts by kind, by phone type and kind, users by outcome, and the top reason codes."""
    by_kind: Counter[ChangeKind] = Counter()
    by_type: dict[PhoneType, Counter[ChangeKind]] = {t: Counter() for t in PHONE_TYPES}
    for ch in plan.changes:
        by_kind[ch.kind] += 1
        by_type[ch.phone_type][ch.kind] += 1
    by_outcome: Counter[UserDecision] = Counter()
    errors: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    for up in plan.users:
        by_outcome[up.outcome] += 1
        for code in up.codes:
            if code is ReasonCode.OUT_OF_SCOPE:  # left out by the job's design, counted under skip only
                continue
            (warnings if code in WARNING_CODES else errors)[code.value] += 1
    return PlanSummary(
        total_changes=len(plan.changes),
        by_kind={k: by_kind.get(k, 0) for k in ChangeKind},
        by_phone_type={t: {k: by_type[t].get(k, 0) for k in ChangeKind} for t in PHONE_TYPES},
        by_outcome={o: by_outcome.get(o, 0) for o in UserDecision},
        top_errors=tuple(errors.most_common(top)),
        top_warnings=tuple(warnings.most_common(top)),
        users=len(plan.users),
        safety=plan.safety,
    )


def users_by_outcome(plan: Plan, outcome: UserDecision | str) -> Iterator[UserPlan]:
    """The user plans with this outcome, in plan order."""
    o = UserDecision(outcome)
    return (up for up in plan.users if up.outcome is o)
