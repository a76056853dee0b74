"""Safety thresholds: stop a truncated or corrupt roster from rewriting a tenant's phones.

``max_changes`` bounds the number of changes; ``max_delete_percent`` and
``max_update_percent`` bound deletes and updates as a percentage of the phones currently
registered to the roster users whose read succeeded (``status == ok``, masked included).
``check_safety(plan, force)`` raises ``SafetyError`` naming every exceeded threshold.
"""

from __future__ import annotations

from provision.errors import SafetyError
from provision.model import ChangeKind
from provision.planner.values import Change, Plan, PlanPolicy, SafetyVerdict, Threshold

__all__ = ["check_safety", "safety_verdict"]

_UPDATE = ChangeKind.UPDATE
_DELETE = ChangeKind.DELETE


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def safety_verdict(changes: tuple[Change, ...], base_phones: int, policy: PlanPolicy) -> SafetyVerdict:
    """Every threshold of ``policy`` these changes exceed; ``base_phones`` is the percentage base."""
    exceeded: list[Threshold] = []
    total = len(changes)
    if policy.max_changes is not None and total > policy.max_changes:
        exceeded.append(
            Threshold("max_changes", policy.max_changes, total, f"changes {total} > max_changes {policy.max_changes}")
        )
    if policy.max_delete_percent is not None or policy.max_update_percent is not None:
        deletes = updates = 0
        for ch in changes:
            if ch.kind is _DELETE:
                deletes += 1
            elif ch.kind is _UPDATE:
                updates += 1
        # No current phones means nothing can be updated or deleted: 0%.
        for name, noun, count, limit in (
            ("max_delete_percent", "deletes", deletes, policy.max_delete_percent),
            ("max_update_percent", "updates", updates, policy.max_update_percent),
        ):
            if limit is None:
                continue
            pct = 100.0 * count / base_phones if base_phones else 0.0
            if pct > limit:
                exceeded.append(
                    Threshold(
                        name,
                        limit,
                        pct,
                        f"{noun} {_fmt(pct)}% > {name} {_fmt(limit)}% ({count} of {base_phones} current phones)",
                    )
                )
    return SafetyVerdict(tuple(exceeded), base_phones)


def check_safety(plan: Plan, force: bool = False) -> None:
    """Refuse an unsafe plan unless forced: raise SafetyError naming each exceeded threshold."""
    if plan.safety.exceeded and not force:
        raise SafetyError(f"plan refused: {plan.safety.message}; review it, then re-run with --force to apply anyway")
