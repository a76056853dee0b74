"""What happened to each roster row: roster + plan + journal -> one RowResult per row.

The roster says what each row asked for (and what was wrong with it), the plan what was
decided per user, the journal what Graph answered for each change. Rows of the same user
(identical duplicates merged by the reader) share the user's outcome. Nothing here talks
to Graph: a report can be re-rendered from a run directory at any time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, Sequence

from provision.executor.journal import ChangeStatus, JournalEntry, UserVerification
from provision.model import (
    OK_ROW_OUTCOMES,
    PHONE_TYPES,
    ChangeKind,
    CurrentUser,
    PhoneType,
    RosterRow,
    RowIssue,
    RowOutcome,
    RowStatus,
    Severity,
    SmsIntent,
)
from provision.planner import Change
from provision.report.values import Action, PhoneResult, RowResult

_ACTION = {ChangeKind.CREATE: Action.CREATE, ChangeKind.UPDATE: Action.UPDATE, ChangeKind.DELETE: Action.DELETE}
_SMS_ACTION = {ChangeKind.ENABLE_SMS: "enable", ChangeKind.DISABLE_SMS: "disable"}
_NOT_UNIQUE = "phoneNumberNotUnique"


class DecidedUser(Protocol):
    """What both a fresh ``planner.UserPlan`` and a saved plan's ``SavedUser`` offer."""

    @property
    def key(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def codes(self) -> Sequence[str]: ...
    @property
    def current(self) -> CurrentUser | None: ...
    @property
    def changes(self) -> Sequence[Change]: ...


@dataclass(frozen=True, slots=True)
class _ChangeState:
    status: ChangeStatus
    http_status: int | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    sms_state_after: str | None = None


_PLANNED_ONLY = _ChangeState(ChangeStatus.PENDING)


def row_results(
    rows: Iterable[RosterRow],
    issues: Iterable[RowIssue],
    decisions: Iterable[DecidedUser],
    *,
    entries: Mapping[str, JournalEntry] | None = None,
    verifications: Mapping[str, UserVerification] | None = None,
    sms_intent: SmsIntent = SmsIntent.LEAVE,
) -> list[RowResult]:
    """One RowResult per roster row, in roster order. Without ``entries`` (plan only) every
    planned change reads as ``planned``."""
    by_row: dict[int, list[RowIssue]] = {}
    for issue in issues:
        by_row.setdefault(issue.row, []).append(issue)
    by_user = {d.key: d for d in decisions}
    states = {cid: _state(e) for cid, e in (entries or {}).items()}
    verifications = verifications or {}
    results: list[RowResult] = []
    for row in rows:
        row_issues = by_row.get(row.row, ())
        decision = by_user.get(row.key) if row.key is not None else None
        if row.status is RowStatus.ERROR or decision is None:
            results.append(_invalid(row, row_issues))
            continue
        results.append(_row_result(row, row_issues, decision, states, verifications.get(decision.key), sms_intent))
    return results


def count_outcomes(results: Iterable[RowResult]) -> tuple[int, int, Counter[str]]:
    """(rows_ok, rows_failed, rows by outcome)."""
    by_outcome: Counter[str] = Counter(r.outcome.value for r in results)
    ok = sum(n for o, n in by_outcome.items() if RowOutcome(o) in OK_ROW_OUTCOMES)
    return ok, sum(by_outcome.values()) - ok, by_outcome


def _state(e: JournalEntry) -> _ChangeState:
    return _ChangeState(e.status, e.last_http_status, e.graph_code, e.message, e.request_id, e.sms_state_after)


def _issue_text(issues: Iterable[RowIssue]) -> str | None:
    text = "; ".join(f"{i.column + ': ' if i.column else ''}{i.reason}" for i in issues)
    return text or None


def _invalid(row: RosterRow, issues: Sequence[RowIssue]) -> RowResult:
    errors = [i for i in issues if i.severity is Severity.ERROR] or list(issues)
    return RowResult(
        row=row.row,
        sheet=row.sheet,
        user=row.user,
        outcome=RowOutcome.INVALID,
        phones={t: PhoneResult(desired=v, outcome=RowOutcome.INVALID) for t, v in row.phones.items()},
        reason=_issue_text(errors) or "the row could not be used",
        error_code=errors[0].code if errors else "invalid_row",
        extra=row.extra,
    )


def _row_result(
    row: RosterRow,
    issues: Sequence[RowIssue],
    decision: DecidedUser,
    states: Mapping[str, _ChangeState],
    verification: UserVerification | None,
    job_sms: SmsIntent,
) -> RowResult:
    current = decision.current
    before = {t: p.number for t, p in current.phones.items()} if current is not None else {}
    changes = list(decision.changes)
    applied = {c.id: states.get(c.id, _PLANNED_ONLY) for c in changes}

    phones: dict[PhoneType, PhoneResult] = {}
    touched_types = {c.phone_type for c in changes if c.kind in _ACTION}
    for ptype in PHONE_TYPES:
        if ptype not in row.phones and ptype not in touched_types and ptype not in before:
            continue
        phones[ptype] = _phone_result(ptype, row.phones.get(ptype), before.get(ptype), changes, applied)

    sms_changes = [c for c in changes if c.kind in _SMS_ACTION]
    sms_action = _SMS_ACTION[sms_changes[-1].kind] if sms_changes else "none"
    sms_state = next((s.sms_state_after for s in applied.values() if s.sms_state_after), None)
    if sms_state is None and current is not None and PhoneType.MOBILE in current.phones:
        state = current.phones[PhoneType.MOBILE].sms_sign_in_state
        sms_state = state.value if state is not None else None

    outcome, failure = _outcome(decision.outcome, applied)
    wants_sms = row.sms_sign_in if row.sms_sign_in is not None else job_sms is SmsIntent.ENABLE
    reason = decision.reason
    error_code = failure.code if failure else (decision.codes[0] if decision.codes and outcome is not RowOutcome.UNCHANGED else None)
    if sms_state == _NOT_UNIQUE and wants_sms and outcome in OK_ROW_OUTCOMES:
        # The phone is saved, but SMS sign-in isn't: another user holds the number for it.
        outcome, error_code = RowOutcome.PARTIAL, _NOT_UNIQUE
        reason = "the phone was saved, but SMS sign-in is refused: another user already signs in with this number"
    warnings = _issue_text(issues)
    if warnings:
        reason = f"{reason}; {warnings}" if reason else warnings
    if failure and failure.message:
        reason = f"{reason}; {failure.message}" if reason else failure.message
    return RowResult(
        row=row.row,
        sheet=row.sheet,
        user=row.user,
        outcome=outcome,
        phones=phones,
        sms_action=sms_action,
        sms_state=sms_state,
        reason=reason,
        error_code=error_code,
        error_message=failure.message if failure else None,
        http_status=failure.http_status if failure else None,
        request_id=failure.request_id if failure else None,
        verified=verification.ok if verification is not None else None,
        extra=row.extra,
    )


def _phone_result(
    ptype: PhoneType,
    desired: str | None,
    before: str | None,
    changes: Sequence[Change],
    applied: Mapping[str, _ChangeState],
) -> PhoneResult:
    mine = [c for c in changes if c.phone_type is ptype and c.kind in _ACTION]
    if not mine:
        return PhoneResult(desired=desired, before=before, after=before, outcome=RowOutcome.UNCHANGED)
    after = before
    outcomes: list[RowOutcome] = []
    for change in mine:
        status = applied[change.id].status
        if status is ChangeStatus.DONE:
            after = change.after if change.kind != ChangeKind.DELETE else None
            outcomes.append(RowOutcome.APPLIED)
        elif status in (ChangeStatus.FAILED, ChangeStatus.SKIPPED):
            outcomes.append(RowOutcome.FAILED)
        else:
            outcomes.append(RowOutcome.PLANNED)
    return PhoneResult(
        desired=desired,
        before=before,
        after=after,
        action=_ACTION[mine[-1].kind],
        outcome=_combine(outcomes),
    )


def _combine(outcomes: Sequence[RowOutcome]) -> RowOutcome:
    kinds = set(outcomes)
    if kinds == {RowOutcome.APPLIED}:
        return RowOutcome.APPLIED
    if kinds == {RowOutcome.FAILED}:
        return RowOutcome.FAILED
    if kinds == {RowOutcome.PLANNED}:
        return RowOutcome.PLANNED
    if RowOutcome.APPLIED in kinds:
        return RowOutcome.PARTIAL
    return RowOutcome.FAILED if RowOutcome.FAILED in kinds else RowOutcome.PLANNED


def _outcome(decided: str, applied: Mapping[str, _ChangeState]) -> tuple[RowOutcome, _ChangeState | None]:
    if decided == "noop":
        return RowOutcome.UNCHANGED, None
    if decided == "skip":
        return RowOutcome.SKIPPED, None
    if decided == "error" and not applied:
        return RowOutcome.FAILED, None
    failure = next((s for s in applied.values() if s.status in (ChangeStatus.FAILED, ChangeStatus.SKIPPED)), None)
    per_change = []
    for s in applied.values():
        if s.status is ChangeStatus.DONE:
            per_change.append(RowOutcome.APPLIED)
        elif s.status in (ChangeStatus.FAILED, ChangeStatus.SKIPPED):
            per_change.append(RowOutcome.FAILED)
        else:
            per_change.append(RowOutcome.PLANNED)
    outcome = _combine(per_change)
    if decided == "error" and outcome is RowOutcome.APPLIED:
        # Part of what the roster asked for could not be planned (the reason says what).
        outcome = RowOutcome.PARTIAL
    return outcome, failure
