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
    SmsSignInState,
)
from provision.planner import Change
from provision.planner.reasons import ReasonCode
from provision.report.values import Action, PhoneResult, RowResult

_ACTION = {ChangeKind.CREATE: Action.CREATE, ChangeKind.UPDATE: Action.UPDATE, ChangeKind.DELETE: Action.DELETE}
_SMS_ACTION = {ChangeKind.ENABLE_SMS: "enable", ChangeKind.DISABLE_SMS: "disable"}
_NOT_UNIQUE = SmsSignInState.PHONE_NUMBER_NOT_UNIQUE.value
_OUT_OF_SCOPE = ReasonCode.OUT_OF_SCOPE.value
# What a successful SMS change leaves when Graph's answer (204, no body) says nothing more.
_SMS_STATE_AFTER = {ChangeKind.ENABLE_SMS: SmsSignInState.READY.value, ChangeKind.DISABLE_SMS: SmsSignInState.NOT_ENABLED.value}
# Planner codes for a user the run deliberately leaves alone: the row is ``skipped``, as
# model.RowOutcome and README promise, even where the planner files the user under errors.
_SKIPPED_CODES = frozenset({ReasonCode.USER_NOT_FOUND.value})
# Error answers worth reporting on a change that did not fail: a conflict Graph answered
# while saving the phone (409, confirmed by read-back), and a refusal (401/403) that
# stopped the run with the change still to send.
_NOTABLE_ANSWERS = {ChangeStatus.DONE: frozenset({409}), ChangeStatus.PENDING: frozenset({401, 403}),
                    ChangeStatus.IN_FLIGHT: frozenset({401, 403})}


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
    """(rows_ok, rows_failed, rows by outcome); ok as ``row_is_ok`` says. A row the job's
    ``[scope]`` leaves out is skipped by design, not a row needing attention, so a scoped job
    whose roster is wider than its scope still ends with exit 0."""
    by_outcome: Counter[str] = Counter()
    ok = 0
    for r in results:
        by_outcome[r.outcome.value] += 1
        ok += row_is_ok(r)
    return ok, sum(by_outcome.values()) - ok, by_outcome


def row_is_ok(r: RowResult) -> bool:
    """Done, already right, or left out by the job's ``[scope]`` by design."""
    return r.outcome in OK_ROW_OUTCOMES or (r.outcome is RowOutcome.SKIPPED and r.error_code == _OUT_OF_SCOPE)


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

    outcome, failure = _outcome(decision.outcome, decision.codes, applied)
    phones: dict[PhoneType, PhoneResult] = {}
    touched_types = {c.phone_type for c in changes if c.kind in _ACTION}
    for ptype in PHONE_TYPES:
        if ptype not in row.phones and ptype not in touched_types and ptype not in before:
            continue
        untouched = RowOutcome.SKIPPED if outcome is RowOutcome.SKIPPED else RowOutcome.UNCHANGED
        phones[ptype] = _phone_result(ptype, row.phones.get(ptype), before.get(ptype), changes, applied, untouched)

    sms_changes = [c for c in changes if c.kind in _SMS_ACTION]
    sms_action = _SMS_ACTION[sms_changes[-1].kind] if sms_changes else "none"
    sms_state = _sms_state(current, changes, applied, verification)
    answer = _reported_answer(failure, applied)

    wants_sms = row.sms_sign_in if row.sms_sign_in is not None else job_sms is SmsIntent.ENABLE
    reason = decision.reason
    coded = failure or answer
    error_code = coded.code if coded is not None else None
    if error_code is None and decision.codes and outcome is not RowOutcome.UNCHANGED:
        error_code = decision.codes[0]
    if sms_state == _NOT_UNIQUE and wants_sms and outcome in OK_ROW_OUTCOMES:
        # The phone is saved, but SMS sign-in isn't: another user holds the number for it.
        outcome, error_code = RowOutcome.PARTIAL, _NOT_UNIQUE
        reason = "the phone was saved, but SMS sign-in is refused: another user already signs in with this number"
    warnings = _issue_text(issues)
    if warnings:
        reason = f"{reason}; {warnings}" if reason else warnings
    explained = failure or (answer if answer is not None and answer.status is not ChangeStatus.DONE else None)
    if explained is not None and explained.message:
        reason = f"{reason}; {explained.message}" if reason else explained.message
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
        error_message=answer.message if answer else None,
        http_status=answer.http_status if answer else None,
        request_id=answer.request_id if answer else None,
        verified=verification.ok if verification is not None else None,
        extra=row.extra,
    )


def _reported_answer(failure: _ChangeState | None, applied: Mapping[str, _ChangeState]) -> _ChangeState | None:
    """The Graph answer a row's error columns show (status, message, request-id).

    The failure's own answer when Graph gave one; otherwise a notable answer to a change
    that did not fail (``_NOTABLE_ANSWERS``); otherwise the failure as journaled (a change
    skipped because an earlier one failed has no answer of its own).
    """
    if failure is not None and failure.http_status:
        return failure
    notable = next(
        (s for s in applied.values() if s.http_status in _NOTABLE_ANSWERS.get(s.status, frozenset())), None
    )
    return notable or failure


def _sms_state(
    current: CurrentUser | None,
    changes: Sequence[Change],
    applied: Mapping[str, _ChangeState],
    verification: UserVerification | None,
) -> str | None:
    """smsSignInState after the run: read back by --verify, else what the run's changes left.

    Walks the changes in order from the state read before the run, so the last change
    that says anything wins: an SMS state Graph returned or a read-back recorded, or for a
    successful enable/disable (answered 204, no body) the state it produces.
    """
    seen = verification.detail.get("sms_state") if verification is not None else None
    if isinstance(seen, str) and seen:
        return seen
    state: str | None = None
    mobile = current.phones.get(PhoneType.MOBILE) if current is not None else None
    if mobile is not None and mobile.sms_sign_in_state is not None:
        state = mobile.sms_sign_in_state.value
    for change in changes:
        s = applied[change.id]
        if s.sms_state_after:
            state = s.sms_state_after
        elif s.status is ChangeStatus.DONE and change.kind in _SMS_STATE_AFTER:
            state = _SMS_STATE_AFTER[change.kind]
        elif s.status is ChangeStatus.DONE and change.kind is ChangeKind.DELETE and change.phone_type is PhoneType.MOBILE:
            state = None  # no mobile, no SMS sign-in
    return state


def _phone_result(
    ptype: PhoneType,
    desired: str | None,
    before: str | None,
    changes: Sequence[Change],
    applied: Mapping[str, _ChangeState],
    untouched: RowOutcome,
) -> PhoneResult:
    mine = [c for c in changes if c.phone_type is ptype and c.kind in _ACTION]
    if not mine:
        return PhoneResult(desired=desired, before=before, after=before, outcome=untouched)
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


def _outcome(
    decided: str, codes: Sequence[str], applied: Mapping[str, _ChangeState]
) -> tuple[RowOutcome, _ChangeState | None]:
    if decided == "noop":
        return RowOutcome.UNCHANGED, None
    if decided == "skip" or (not applied and _SKIPPED_CODES.intersection(codes)):
        return RowOutcome.SKIPPED, None
    if decided == "error" and not applied:
        return RowOutcome.FAILED, None
    # The change that failed, before the ones skipped because of it.
    failure = next((s for s in applied.values() if s.status is ChangeStatus.FAILED), None) or next(
        (s for s in applied.values() if s.status is ChangeStatus.SKIPPED), None
    )
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
