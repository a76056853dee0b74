"""report.html: self-contained, masked, explains every problem, caps its row table."""

from __future__ import annotations

import re
from dataclasses import replace
from html import escape
from pathlib import Path

import pytest
from report_samples import HTML_USER, NUMBERS, sample_rows, summary_for

from provision.model import RowOutcome
from provision.report import render_html, write_html
from provision.report.layout import mask_phone
from provision.report.values import RowResult, RunState, RunSummary, ThroughputSample
from provision.report.wording import known_codes, remedy_for


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number.partition("x")[0].partition(" ")[2] or number)


def test_page_loads_nothing_from_anywhere(rows: list[RowResult], summary: RunSummary) -> None:
    html = render_html(rows, summary)
    assert not re.search(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:|//|ftp:)""", html, re.I)
    assert not re.search(r"@import|url\(|<link|<img|<iframe|<object|<embed", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert """content="default-src 'none';""" in html  # the browser enforces it too
    # The only link is to the workbook beside the page (shown when the table is capped).
    assert re.findall(r'href="([^"]*)"', render_html(rows, summary, row_cap=1)) == ["results.xlsx"]


def test_no_unmasked_number_appears(tmp_path: Path, rows: list[RowResult], summary: RunSummary) -> None:
    path = tmp_path / "report.html"
    write_html(rows, summary, path)
    html = path.read_text(encoding="utf-8")
    for number in NUMBERS:
        assert number not in html, number
        assert _digits(number) not in html, number
    # Masked forms do appear where a number is shown.
    assert mask_phone("+1 2065550100") in html
    assert mask_phone("+33 612345678") in html
    assert "+1 *******100" in html
    # Numbers inside free text (Graph's message, passthrough notes) are masked too.
    assert "4255550199" not in html and "2065550123" not in html


def test_headline_totals_and_outcome_tables(rows: list[RowResult], summary: RunSummary) -> None:
    html = render_html(rows, summary)
    assert "Partly done" in html
    assert "3 of 11 rows are done or were already right; 7 need attention" in html
    for outcome in RowOutcome:
        assert f">{outcome.value}</span>" in html
    assert "Phones by type and action" in html
    assert "Mobile</td><td>add" in html and "Office</td><td>remove" in html
    assert "phoneNumberNotUnique</td><td class=num>1" in html  # SMS state table
    assert html.count("<svg") == 4  # outcomes, phones, speed, throttling
    assert "Exit code 1: some rows failed." in html


def test_every_reason_is_grouped_with_what_to_do(rows: list[RowResult], summary: RunSummary) -> None:
    html = render_html(rows, summary)
    for code in ("phoneNumberNotUnique", "numbers_masked", "invalid_number", "user_not_found",
                 "Authorization_RequestDenied", "badRequest", "sms_not_allowed_by_policy"):
        remedy = remedy_for(code)
        assert remedy.known
        assert escape(remedy.title) in html
        assert escape(remedy.action) in html
    assert "Get-MgUserAuthenticationPhoneMethod" in html  # how to find who holds a number
    unknown = remedy_for("weirdNewCode")
    assert not unknown.known and unknown.title in html and "weirdNewCode" in html
    # Lookup ignores case, and every documented reason has words.
    assert remedy_for("toomanyrequests").title == remedy_for("TooManyRequests").title
    assert {"phoneNumberNotUnique", "user_not_found", "numbers_masked", "sms_not_allowed_by_policy",
            "invalid_number", "duplicate_user_conflict", "Authorization_RequestDenied", "TooManyRequests",
            "badRequest"} <= set(known_codes())


def test_text_is_escaped(rows: list[RowResult], summary: RunSummary) -> None:
    html = render_html(rows, summary)
    assert HTML_USER not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;@contoso.com" in html
    assert html.count("<script>") == 1  # ours, at the end


def test_row_table_is_capped_and_points_to_the_workbook() -> None:
    base = sample_rows()
    rows = [replace(base[3], row=i + 2, user=f"user{i}@contoso.com") for i in range(1200)]
    html = render_html(rows, summary_for(rows), row_cap=500)
    table = html[html.index('<table id="attention">'):]
    assert table.count("<tr><td class=num>") == 500
    assert "Showing the first 500 of 1,200 rows" in html and 'href="results.xlsx"' in html
    # Reason groups list a few examples, not every user.
    assert "and 1,195 more" in html


@pytest.mark.parametrize(
    ("outcomes", "overrides", "headline"),
    [
        ((RowOutcome.APPLIED, RowOutcome.UNCHANGED), {"exit_code": 0}, "It worked"),
        ((RowOutcome.PLANNED, RowOutcome.PLANNED), {"exit_code": 0}, "Plan only: nothing was written"),
        ((RowOutcome.PLANNED,), {"exit_code": 3}, "Refused: the plan exceeded a safety limit"),
        ((RowOutcome.FAILED,), {"exit_code": 4}, "Stopped: sign-in or permission problem"),
        ((RowOutcome.FAILED, RowOutcome.FAILED), {"exit_code": 1}, "Not done"),
        ((RowOutcome.APPLIED, RowOutcome.PLANNED),
         {"exit_code": 5, "status": RunState.INTERRUPTED, "stop_reason": "interrupted", "resume_command": "provision resume r"},
         "Interrupted: the run stopped before it finished"),
        ((RowOutcome.PLANNED, RowOutcome.PLANNED),
         {"exit_code": 5, "status": RunState.FAILED, "stop_reason": "unreachable", "resume_command": "provision resume r"},
         "Stopped: Microsoft Graph could not be reached"),
    ],
)
def test_headline_answers_did_it_work(outcomes: tuple[RowOutcome, ...], overrides: dict[str, object],
                                      headline: str) -> None:
    rows = [RowResult(i + 2, None, f"u{i}@contoso.com", o) for i, o in enumerate(outcomes)]
    html = render_html(rows, summary_for(rows, **overrides))
    assert f"<strong>{headline}</strong>" in html


def test_run_without_timeline_says_so(rows: list[RowResult]) -> None:
    html = render_html(rows, summary_for(rows, timeline=()))
    assert "No timeline was recorded" in html
    assert html.count("<svg") == 2


def test_stopped_run_says_how_many_rows_it_did_not_reach_and_how_to_resume() -> None:
    outcomes = (RowOutcome.APPLIED, RowOutcome.PLANNED, RowOutcome.PLANNED)
    rows = [RowResult(i + 2, None, f"u{i}@contoso.com", o) for i, o in enumerate(outcomes)]
    summary = summary_for(rows, exit_code=5, status=RunState.INTERRUPTED, stop_reason="interrupted",
                          resume_command="provision resume reports/r1")
    html = render_html(rows, summary)
    assert "interrupted: 2 rows not reached, resume with provision resume reports/r1" in html
    assert "Partly done" not in html and "Plan only" not in html


def test_average_speed_comes_from_the_timeline_and_never_beats_the_peak(rows: list[RowResult]) -> None:
    # 1,000 operations in summary.operations (the plan's reads included, made before the
    # timeline starts) over 5 s of wall clock would claim 200/s; the timeline peaked at 10/s.
    timeline = tuple(ThroughputSample(t=float(t), operations=10 * t, succeeded=9 * t, throttled=0) for t in range(1, 6))
    html = render_html(rows, summary_for(rows, operations=1000, duration_s=5.0, timeline=timeline))
    found = re.search(r"Average ([\d,.]+) requests/s while applying, peak ([\d,.]+)/s", html)
    assert found is not None
    assert (float(found[1]), float(found[2])) == (10.0, 10.0)
