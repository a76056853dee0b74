"""The planner: what must change so each roster user's phones match the roster.

Pure: no I/O, no clock, no randomness. ``plan(desired, current, sms_policy, policy)``
turns the roster's desired phones and Graph's current phones into a ``Plan``: for every
roster user exactly one ``UserPlan`` (outcome ``change``/``noop``/``skip``/``error``), each
holding an ordered chain of ``Change`` values the executor applies as given.

Order inside a user (never breaks a Graph rule, see design.md "Domain rules"):

1. creates/updates: mobile, then alternateMobile, then office (an alternateMobile needs a
   mobile, so a new mobile comes first);
2. deletes: office, then alternateMobile, then mobile (a mobile can't go while an
   alternateMobile exists; a number moving between types is thereby create-new, delete-old);
3. the SMS sign-in change, last, so a refused SMS change (409 phoneNumberNotUnique, policy)
   can't block the phone writes chained before it.

Each change's ``depends_on`` is the previous change of the same user, for ``$batch`` dependsOn.

Numbers compare by digits and extension only (Graph echoes ``+1 2065550100``, older entries
may read ``+12065550100``). A type the roster does not mention is never touched.

SMS sign-in (job default ``SmsIntent``, overridden per row by ``DesiredUser.sms_sign_in``),
judged against the mobile the user will have after the plan:

- enable: nothing when the unchanged mobile is already ``ready``. Policy says no (or the
  mobile reads ``notAllowedByPolicy`` while the policy is unreadable): no change, warning
  ``sms_not_allowed_by_policy``. A mobile with an extension: no change, warning
  ``sms_mobile_has_extension`` (SMS can't dial extensions). Policy allows and the plan
  creates the mobile or changes its digits: no change, because Graph registers such a
  mobile for SMS sign-in by itself. Otherwise (mobile unchanged and not ready, only its
  extension/spelling changes while not ready, or policy unknown) ``enable_sms`` after the
  mobile write.
- disable: ``disable_sms`` when the unchanged mobile reads ``ready``, or when the plan
  writes the mobile and policy allows or is unknown (the write may auto-register it).
- leave: nothing.

Both are idempotent: once applied, the mobile reads ``ready`` (enable) or not (disable),
and planning again yields no SMS change.

Safety: ``max_changes`` bounds the number of changes; ``max_delete_percent`` and
``max_update_percent`` bound deletes and updates as a percentage of the phones currently
registered to the roster users whose read succeeded (``status == ok``, masked included).
``check_safety(plan, force)`` raises ``SafetyError`` naming every exceeded threshold.
"""

from __future__ import annotations

import gc
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Iterable, Iterator, Mapping

from provision.errors import SafetyError
from provision.model import (
    PHONE_TYPES,
    ChangeKind,
    CurrentPhone,
    CurrentUser,
    DesiredUser,
    PhoneType,
    PlanMode,
    ReadStatus,
    SmsIntent,
    SmsPolicy,
    SmsSignInState,
    UserDecision,
)
from provision.roster.numbers import canonical_digits

__all__ = [
    "Change",
    "Plan",
    "PlanPolicy",
    "PlanSummary",
    "ReasonCode",
    "SafetyVerdict",
    "Threshold",
    "UserPlan",
    "check_safety",
    "gc_paused",
    "plan",
    "summarize",
    "users_by_outcome",
]


class ReasonCode(StrEnum):
    """Stable reason codes on a UserPlan; ``WARNING_CODES`` don't make the outcome an error."""

    USER_NOT_FOUND = "user_not_found"
    READ_FAILED = "read_failed"
    NOT_READ = "not_read"
    NUMBERS_MASKED = "numbers_masked"
    ALTERNATE_REQUIRES_MOBILE = "alternate_requires_mobile"
    MOBILE_DELETE_BLOCKED = "mobile_delete_blocked_by_alternate"
    SMS_NOT_ALLOWED = "sms_not_allowed_by_policy"
    SMS_NEEDS_MOBILE = "sms_needs_mobile"
    SMS_EXTENSION = "sms_mobile_has_extension"
    SMS_NOT_UNIQUE = "sms_number_not_unique"


WARNING_CODES: frozenset[ReasonCode] = frozenset(
    {ReasonCode.SMS_NOT_ALLOWED, ReasonCode.SMS_NEEDS_MOBILE, ReasonCode.SMS_EXTENSION, ReasonCode.SMS_NOT_UNIQUE}
)

_SENTENCES: Mapping[ReasonCode, str] = {
    ReasonCode.USER_NOT_FOUND: "Graph has no such user (404); nothing planned.",
    ReasonCode.READ_FAILED: "the user's phone methods could not be read; nothing planned.",
    ReasonCode.NOT_READ: "no current state was read for this user; nothing planned.",
    ReasonCode.NUMBERS_MASKED: "Graph returned masked numbers; the planner never diffs against masked numbers.",
    ReasonCode.ALTERNATE_REQUIRES_MOBILE: "an alternateMobile needs a mobile, and the user has none and the roster gives none; alternateMobile not written.",
    ReasonCode.MOBILE_DELETE_BLOCKED: "the roster blanks the mobile but keeps an alternateMobile, which Graph forbids; mobile kept.",
    ReasonCode.SMS_NOT_ALLOWED: "the SMS policy does not let this user sign in with SMS; SMS sign-in not changed.",
    ReasonCode.SMS_NEEDS_MOBILE: "SMS sign-in wanted but the user will have no mobile.",
    ReasonCode.SMS_EXTENSION: "SMS sign-in wanted but the mobile has an extension, which SMS can't dial.",
    ReasonCode.SMS_NOT_UNIQUE: "SMS sign-in wanted but another user already signs in with this number (phoneNumberNotUnique); not retried.",
}


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", PlanMode(self.mode))
        object.__setattr__(self, "sms", SmsIntent(self.sms))


@dataclass(frozen=True, slots=True)
class Threshold:
    name: str  # max_changes | max_delete_percent | max_update_percent
    limit: float
    actual: float
    message: str  # "deletes 12.5% > max_delete_percent 5%"


@dataclass(frozen=True, slots=True)
class SafetyVerdict:
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
    users: tuple[UserPlan, ...]
    changes: tuple[Change, ...]  # every user's chain, concatenated in user order
    policy: PlanPolicy
    safety: SafetyVerdict
    sms_policy: SmsPolicy | None = None

    def counts(self) -> Counter[ChangeKind]:
        return Counter(c.kind for c in self.changes)


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


# -- number comparison -------------------------------------------------------------------
# Fast paths before provision.roster.numbers.canonical_digits (regex based): identical strings, then
# the same string once spaces/punctuation go; only genuinely different spellings pay more.
_CANON_TABLE = str.maketrans({**{c: None for c in " +-()./\t"}, "X": "x"})


def _canonical(number: str) -> str:
    t = number.translate(_CANON_TABLE)
    main, _, ext = t.partition("x")
    if main.isascii() and main.isdigit() and (not ext or (ext.isascii() and ext.isdigit())):
        return t  # already digits[x digits]: what canonical_digits would return
    return canonical_digits(number)


def _same_number(a: str, b: str) -> bool:
    return a == b or _canonical(a) == _canonical(b)


def _same_handset(a: str, b: str) -> bool:
    """Same number apart from the extension: a write Graph doesn't treat as a new SMS number."""
    return _canonical(a).partition("x")[0] == _canonical(b).partition("x")[0]


# -- the per-user planner ----------------------------------------------------------------
_MOBILE = PhoneType.MOBILE
_ALT = PhoneType.ALTERNATE_MOBILE
_OFFICE = PhoneType.OFFICE
_CREATE = ChangeKind.CREATE
_UPDATE = ChangeKind.UPDATE
_DELETE = ChangeKind.DELETE
_READY = SmsSignInState.READY
_NOT_ALLOWED_STATE = SmsSignInState.NOT_ALLOWED_BY_POLICY
_NOT_UNIQUE_STATE = SmsSignInState.PHONE_NUMBER_NOT_UNIQUE
_DELETE_ORDER = (_OFFICE, _ALT, _MOBILE)
_EMPTY: Mapping[PhoneType, CurrentPhone] = {}


_REASON_TEXT: Mapping[ReasonCode, str] = {code: f"{code.value}: {text}" for code, text in _SENTENCES.items()}
_ONE_CODE: Mapping[ReasonCode, tuple[ReasonCode, ...]] = {code: (code,) for code in ReasonCode}


def _reason(codes: Iterable[ReasonCode]) -> str:
    return " ".join(_REASON_TEXT[c] for c in codes)


def _terminal(d: DesiredUser, c: CurrentUser | None, outcome: UserDecision, code: ReasonCode) -> UserPlan:
    return UserPlan(d.key, d.user, outcome, (), _REASON_TEXT[code], d.rows, _ONE_CODE[code], d, c)


def _plan_user(
    d: DesiredUser,
    c: CurrentUser,
    mode: PlanMode,
    job_sms: SmsIntent,
    sms_policy: SmsPolicy,
    retry_conflicts: bool = False,
) -> UserPlan:
    cur = c.phones or _EMPTY
    want = d.phones
    authoritative = mode is PlanMode.AUTHORITATIVE
    fill_empty = mode is PlanMode.FILL_EMPTY

    # action per type: create/update (to `write[t]`) or delete; absent = leave alone
    write: dict[PhoneType, str] = {}
    delete: set[PhoneType] = set()
    for t, w in want.items():
        cp = cur.get(t)
        if w is None:
            if authoritative and cp is not None:
                delete.add(t)
        elif cp is None:
            write[t] = w
        elif not fill_empty and not _same_number(cp.number, w):
            write[t] = w

    codes: list[ReasonCode] = []
    # Graph's mobile/alternateMobile rule on the state the plan would leave behind.
    alt_after = (_ALT in write) or (_ALT in cur and _ALT not in delete)
    if alt_after:
        if _MOBILE in delete:
            delete.discard(_MOBILE)
            codes.append(ReasonCode.MOBILE_DELETE_BLOCKED)
        elif _MOBILE not in cur and _MOBILE not in write and _ALT in write:
            del write[_ALT]
            codes.append(ReasonCode.ALTERNATE_REQUIRES_MOBILE)

    target = c.id or d.user
    key = d.key
    rows = d.rows
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
        for t in _DELETE_ORDER:
            if t in delete:
                n += 1
                cid = f"{key}#{n}"
                changes.append(Change(cid, key, target, _DELETE, t, cur[t].number, None, prev, rows))
                prev = cid

    # SMS sign-in, judged against the mobile the user will have after the plan.
    sms = d.sms_sign_in
    intent = job_sms if sms is None else (SmsIntent.ENABLE if sms else SmsIntent.DISABLE)
    if intent is not SmsIntent.LEAVE:
        mobile_cp = cur.get(_MOBILE)
        mobile_written = _MOBILE in write
        has_mobile = mobile_written or (mobile_cp is not None and _MOBILE not in delete)
        state = mobile_cp.sms_sign_in_state if mobile_cp is not None else None
        sms_kind: ChangeKind | None = None
        if intent is SmsIntent.ENABLE:
            if not has_mobile:
                codes.append(ReasonCode.SMS_NEEDS_MOBILE)
            elif not mobile_written and state == _READY:
                pass
            elif not mobile_written and state == _NOT_UNIQUE_STATE and not retry_conflicts:
                # Retrying would fail the same way every run until the other user's number
                # is freed; report the conflict instead (the job can opt into retries).
                codes.append(ReasonCode.SMS_NOT_UNIQUE)
            else:
                allowed = sms_policy.allows(c.id)
                if allowed is None and state == _NOT_ALLOWED_STATE:
                    allowed = False  # the unreadable policy shows through the mobile's state
                mobile_number = write[_MOBILE] if mobile_written else mobile_cp.number  # type: ignore[union-attr]
                if allowed is False:
                    codes.append(ReasonCode.SMS_NOT_ALLOWED)
                elif "x" in mobile_number or "X" in mobile_number:
                    codes.append(ReasonCode.SMS_EXTENSION)
                elif allowed is None or not mobile_written or (
                    mobile_cp is not None and state != _READY and _same_handset(mobile_cp.number, mobile_number)
                ):
                    # a write only auto-registers a new handset (created, or other digits)
                    sms_kind = ChangeKind.ENABLE_SMS
        elif has_mobile:  # disable
            if not mobile_written:
                if state == _READY:
                    sms_kind = ChangeKind.DISABLE_SMS
            else:
                allowed = sms_policy.allows(c.id)
                if allowed is None and state == _NOT_ALLOWED_STATE:
                    allowed = False
                if allowed is not False:
                    sms_kind = ChangeKind.DISABLE_SMS
        if sms_kind is not None:
            n += 1
            cid = f"{key}#{n}"
            before = None if mobile_written else (state.value if state is not None else None)
            after = _READY.value if sms_kind is ChangeKind.ENABLE_SMS else SmsSignInState.NOT_ENABLED.value
            changes.append(Change(cid, key, target, sms_kind, _MOBILE, before, after, prev, rows))

    if codes:
        is_error = any(code not in WARNING_CODES for code in codes)
        outcome = UserDecision.ERROR if is_error else (UserDecision.CHANGE if changes else UserDecision.NOOP)
        return UserPlan(key, d.user, outcome, tuple(changes), _reason(codes), rows, tuple(codes), d, c)
    if changes:
        return UserPlan(key, d.user, UserDecision.CHANGE, tuple(changes), None, rows, (), d, c)
    return UserPlan(key, d.user, UserDecision.NOOP, (), None, rows, (), d, c)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building or reading a large plan.

    A million-user plan is millions of small acyclic objects: the collector's passes over
    them find nothing and cost ~40% of the run (bench/plan_1m). Reference counting still
    frees everything; the collector resumes (if it was on) when the block ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _has_masked_number(c: CurrentUser) -> bool:
    # Masked reads look like "+1 *******100" or "+1 XXXXXXXX00" even if the reader missed it.
    for cp in c.phones.values():
        n = cp.number
        if "*" in n or "XX" in n:
            return True
    return False


def plan(
    desired: Mapping[str, DesiredUser],
    current: Mapping[str, CurrentUser],
    sms_policy: SmsPolicy,
    policy: PlanPolicy,
) -> Plan:
    """Plan every roster user; users appear in ``desired``'s order, one UserPlan each."""
    with gc_paused():
        return _plan(desired, current, sms_policy, policy)


def _plan(
    desired: Mapping[str, DesiredUser],
    current: Mapping[str, CurrentUser],
    sms_policy: SmsPolicy,
    policy: PlanPolicy,
) -> Plan:
    mode = policy.mode
    job_sms = policy.sms
    retry_conflicts = policy.retry_sms_conflicts
    users: list[UserPlan] = []
    append = users.append
    all_changes: list[Change] = []
    extend = all_changes.extend
    base_phones = 0
    ok = ReadStatus.OK
    for key, d in desired.items():
        c = current.get(key)
        if c is None:
            append(_terminal(d, None, UserDecision.ERROR, ReasonCode.NOT_READ))
            continue
        status = c.status
        if status is not ok and status != ok:
            if status == ReadStatus.NOT_FOUND:
                append(_terminal(d, c, UserDecision.ERROR, ReasonCode.USER_NOT_FOUND))
            else:
                append(_terminal(d, c, UserDecision.ERROR, ReasonCode.READ_FAILED))
            continue
        phones = c.phones
        base_phones += len(phones)
        if c.masked or (phones and _has_masked_number(c)):
            append(_terminal(d, c, UserDecision.SKIP, ReasonCode.NUMBERS_MASKED))
            continue
        up = _plan_user(d, c, mode, job_sms, sms_policy, retry_conflicts)
        append(up)
        if up.changes:
            extend(up.changes)

    changes = tuple(all_changes)
    safety = _safety(changes, base_phones, policy)
    return Plan(tuple(users), changes, policy, safety, sms_policy)


# -- safety ------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _safety(changes: tuple[Change, ...], base_phones: int, policy: PlanPolicy) -> SafetyVerdict:
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


# -- summaries for the CLI ---------------------------------------------------------------
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
