"""Safety thresholds: stop a truncated or corrupt roster from rewriting a tenant's phones.

Two groups, both pure (counts in, verdict out):

- the plan's changes (``safety_verdict``, run by ``plan()``): ``max_changes`` bounds the
  number of changes; ``max_delete_percent`` and ``max_update_percent`` bound deletes and
  updates as a percentage of the phones currently registered to the roster users whose
  read succeeded (``status == ok``, masked included);
- the roster's size (``roster_thresholds``, run where the plan is made, which knows the
  job's history): ``min_roster_rows`` refuses a roster with fewer data rows (an empty or
  header-only extract: 1 by default, in every mode), and ``min_roster_percent`` one whose
  usable rows (rows without an error) fell below that percentage of the latest finished
  run of the same job and target (50 by default in authoritative mode).

``with_roster_thresholds`` adds the second group to a plan's verdict, so ``plan`` shows it
and ``apply`` refuses it like any other; ``check_safety(plan, force)`` raises
``SafetyError`` naming every exceeded threshold and how to override it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from provision.errors import SafetyError
from provision.model import ChangeKind
from provision.planner.values import Change, Plan, PlanPolicy, SafetyVerdict, Threshold

__all__ = ["RosterSize", "check_safety", "roster_thresholds", "safety_verdict", "with_roster_thresholds"]

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


@dataclass(frozen=True, slots=True)
class RosterSize:
    """How big the roster is, and how big the job's previous roster was.

    ``rows``: data rows read (blank rows not counted); ``usable``: rows without an error
    (their users get planned). ``previous_usable``: the usable rows of the latest finished
    run of the same job and target (None: no such run), ``previous_run`` its name.
    """

    rows: int
    usable: int
    previous_usable: int | None = None
    previous_run: str | None = None


def roster_thresholds(size: RosterSize, policy: PlanPolicy) -> tuple[Threshold, ...]:
    """The roster-size thresholds of ``policy`` this roster falls below."""
    exceeded: list[Threshold] = []
    floor = policy.min_roster_rows
    if floor is not None and size.rows < floor:
        what = "no data rows (an empty or header-only extract?)" if size.rows == 0 else f"{size.rows:,} data rows"
        exceeded.append(
            Threshold(
                "min_roster_rows",
                floor,
                size.rows,
                f"the roster has {what}, fewer than min_roster_rows {floor:,} "
                "(to go ahead anyway: --force, or set [safety] min_roster_rows in the job file)",
            )
        )
    percent = policy.min_roster_percent
    previous = size.previous_usable
    if percent is not None and previous:  # no previous run (or an empty one): nothing to compare
        pct = 100.0 * size.usable / previous
        run = f"run {size.previous_run}" if size.previous_run else "run"
        if pct < percent:
            exceeded.append(
                Threshold(
                    "min_roster_percent",
                    percent,
                    pct,
                    f"the roster has {size.usable:,} usable rows, {_fmt(pct)}% of the {previous:,} of the previous "
                    f"{run} (same job and target), below min_roster_percent {_fmt(percent)}% "
                    "(if the roster really shrank: --force, after which later runs compare against this one, "
                    "or lower [safety] min_roster_percent in the job file)",
                )
            )
    return tuple(exceeded)


def with_roster_thresholds(plan: Plan, size: RosterSize) -> Plan:
    """``plan`` with the roster-size thresholds its policy sets added to its safety verdict."""
    exceeded = roster_thresholds(size, plan.policy)
    if not exceeded:
        return plan
    verdict = plan.safety
    return replace(plan, safety=SafetyVerdict(exceeded + verdict.exceeded, verdict.base_phones))


def check_safety(plan: Plan, force: bool = False) -> None:
    """Refuse an unsafe plan unless forced: raise SafetyError naming each exceeded threshold."""
    if plan.safety.exceeded and not force:
        raise SafetyError(f"plan refused: {plan.safety.message}; review it, then re-run with --force to apply anyway")
