"""Sample results for the report tests: every outcome, every known reason, hostile text."""

from __future__ import annotations

from provision.model import OK_ROW_OUTCOMES, PhoneType, RowOutcome
from provision.report.values import (
    Action,
    PhoneResult,
    RowResult,
    RunSummary,
    ThroughputSample,
)

M, A, OFF = PhoneType.MOBILE, PhoneType.ALTERNATE_MOBILE, PhoneType.OFFICE

# Every full number the sample holds anywhere; none may appear unmasked in report.html.
NUMBERS = (
    "+1 2065550100",
    "+1 2065550101",
    "+1 4255550199",
    "+44 2079460958x12",
    "+33 612345678",
    "+81 312345678",
    "+49 15123456789",
    "+1 2065550123",
    "+61 412345678",
)

HOSTILE_USER = "=cmd|' /C calc'!A0"
HTML_USER = "<script>alert('x')</script>@contoso.com"


def sample_rows() -> list[RowResult]:
    return [
        RowResult(
            2, "Hires", "alice@contoso.com", RowOutcome.APPLIED,
            {M: PhoneResult("+1 2065550100", None, "+1 2065550100", Action.CREATE, RowOutcome.APPLIED)},
            sms_action="enable", sms_state="ready", verified=True,
            extra={"Department": "Sales", "Notes": "=HYPERLINK(\"x\",\"click\")"},
        ),
        RowResult(
            3, "Hires", "bob@contoso.com", RowOutcome.UNCHANGED,
            {
                M: PhoneResult("+1 2065550101", "+1 2065550101", "+1 2065550101", Action.NONE, RowOutcome.UNCHANGED),
                OFF: PhoneResult("+44 2079460958x12", "+44 2079460958x12", "+44 2079460958x12",
                               Action.NONE, RowOutcome.UNCHANGED),
            },
            sms_state="notAllowedByPolicy",
            extra={"Department": "-Finance", "Notes": "call him on +1 4255550199, ext 4"},
        ),
        RowResult(
            4, "Hires", "carol@contoso.com", RowOutcome.PARTIAL,
            {
                M: PhoneResult("+33 612345678", "+33 600000000", "+33 612345678", Action.UPDATE, RowOutcome.APPLIED),
                A: PhoneResult("+81 312345678", None, None, Action.CREATE, RowOutcome.FAILED),
            },
            reason="the alternate mobile was refused", error_code="badRequest",
            error_message="Invalid phone number format", http_status=400,
            request_id="93b6f17e-452a-4535-a601-69e0a90e3aa2", verified=False,
            extra={"Department": "@Ops"},
        ),
        RowResult(
            5, "Hires", HOSTILE_USER, RowOutcome.FAILED,
            {M: PhoneResult("+1 2065550123", None, "+1 2065550123", Action.CREATE, RowOutcome.FAILED)},
            sms_action="enable", sms_state="phoneNumberNotUnique",
            reason="SMS sign-in was not enabled", error_code="phoneNumberNotUnique",
            error_message="Phone number +1 2065550123 is already used, see\r\nsupport \"ticket\", 42",
            http_status=409, request_id="a1b2c3d4-0000-4000-8000-000000000005",
        ),
        RowResult(
            6, "Hires", "dave@contoso.com", RowOutcome.SKIPPED,
            {M: PhoneResult("+49 15123456789", "+49 XXXXXXXXX89", None, Action.NONE, RowOutcome.SKIPPED)},
            reason="numbers_masked: Graph returned masked numbers", error_code="numbers_masked",
        ),
        RowResult(
            7, "Hires", "erin@contoso.com", RowOutcome.INVALID,
            {M: PhoneResult(None, None, None, Action.NONE, RowOutcome.INVALID),
             OFF: PhoneResult(None, "=2+5", None, Action.NONE, RowOutcome.INVALID)},
            reason="mobile: not a phone number", error_code="invalid_number",
            extra={"Notes": "\tsneaky", "Department": "+SUM(1,2)"},
        ),
        RowResult(
            8, "Hires", "frank@contoso.com", RowOutcome.PLANNED,
            {M: PhoneResult("+61 412345678", None, None, Action.CREATE, RowOutcome.PLANNED)},
        ),
        RowResult(
            9, "Hires", HTML_USER, RowOutcome.FAILED,
            {OFF: PhoneResult(None, "+1 2065550100", "+1 2065550100", Action.DELETE, RowOutcome.FAILED)},
            reason="Graph refused", error_code="weirdNewCode", error_message="Something odd", http_status=500,
        ),
        RowResult(
            10, "Hires", "grace@contoso.com", RowOutcome.FAILED,
            {M: PhoneResult("+1 2065550101", None, None, Action.CREATE, RowOutcome.FAILED)},
            error_code="Authorization_RequestDenied",
            error_message="Insufficient privileges to complete the operation.",
            http_status=403,
        ),
        RowResult(
            11, "Hires", "nobody@contoso.com", RowOutcome.SKIPPED,
            {M: PhoneResult("+1 2065550100", None, None, Action.NONE, RowOutcome.SKIPPED)},
            reason="user_not_found: Graph has no such user (404); nothing planned.", error_code="user_not_found",
            extra={"user": "clash with a fixed column"},
        ),
        RowResult(
            12, "Hires", "heidi@contoso.com", RowOutcome.APPLIED,
            {OFF: PhoneResult(None, "+1 4255550199", None, Action.DELETE, RowOutcome.APPLIED)},
            sms_action="enable", sms_state="notAllowedByPolicy", error_code="sms_not_allowed_by_policy",
            reason="sms_not_allowed_by_policy: the SMS policy does not let this user sign in with SMS",
        ),
    ]


def summary_for(rows: list[RowResult], **overrides: object) -> RunSummary:
    by_outcome: dict[str, int] = {}
    for r in rows:
        by_outcome[r.outcome.value] = by_outcome.get(r.outcome.value, 0) + 1
    ok = sum(1 for r in rows if r.outcome in OK_ROW_OUTCOMES)
    failed = sum(1 for r in rows if r.outcome in (RowOutcome.FAILED, RowOutcome.PARTIAL))
    # A run that speeds up, gets throttled around 8-12 s, backs off and recovers.
    ops = (4, 12, 22, 33, 40, 45, 52, 62, 74, 90)
    done = (3, 10, 18, 27, 31, 33, 38, 46, 56, 68)
    thr = (0, 0, 0, 1, 4, 6, 6, 6, 6, 6)
    limit = (2.0, 4.0, 5.0, 6.0, 3.0, 2.5, 3.5, 5.0, 6.0, 8.0)
    timeline = tuple(
        ThroughputSample(t=2.0 * (i + 1), operations=ops[i], succeeded=done[i], throttled=thr[i],
                         rate_limit=limit[i])
        for i in range(10)
    )
    values: dict[str, object] = dict(
        job="onboarding", target="sandbox", started="2026-11-23T12:00:00Z", finished="2026-11-23T12:00:20Z",
        duration_s=20.0, rows_total=len(rows), rows_ok=ok, rows_failed=failed,
        changes={"create": 5, "update": 1, "delete": 2, "enable_sms": 1},
        changes_done={"create": 1, "update": 1, "delete": 1, "enable_sms": 0},
        operations=90, throttled=6, exit_code=1, mode="additive", run_dir="reports/onboarding-20261123T120000Z",
        rows_by_outcome=by_outcome, timeline=timeline,
    )
    values.update(overrides)
    return RunSummary(**values)  # type: ignore[arg-type]
