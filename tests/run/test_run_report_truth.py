"""The reports tell the truth about what Graph answered.

- Every row Graph refused (or answered with a conflict) shows the answer's HTTP status
  and request-id, the ids an admin quotes to Microsoft support.
- SMS sign-in state is the state after the run's changes, not before them.
- summary.json's ``throttled`` is what the tenant counted: each 429 once.
- report.html's average speed can't exceed its peak.
- A user Entra doesn't know is ``skipped``, in every report, as the docs promise.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from run_support import (
    apply_in_process,
    mobile,
    read_results,
    read_summary,
    report_html,
    served,
    upn,
    write_job,
    xlsx_results,
)

from provision.sandbox.app import create_app
from provision.sandbox.limits import parse_profile


def is_request_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def test_refused_and_conflicting_rows_show_graphs_status_and_request_id(tmp_path: Path) -> None:
    app = create_app()
    tenant = app.sandbox.tenant
    for i in range(3):
        tenant.create_user(upn(i))
    # user 0: the office phone to remove is the default MFA method: Graph refuses (400).
    tenant.create_phone(upn(0), "+1 2065550100", "office")
    tenant.set_default_method(upn(0), "office")
    # user 2 signs in by SMS with the number the roster gives user 1: Graph saves user 1's
    # phone but answers 409 phoneNumberNotUnique.
    tenant.create_phone(upn(2), mobile(1), "mobile")
    rows = [(upn(0), mobile(0), ""), (upn(1), mobile(1), ""), (upn(2), mobile(1), "")]
    with served(app) as url:
        job = write_job(tmp_path, url, rows, header="user,mobile,office",
                        settings='mode = "authoritative"\nsms_sign_in = "enable"')
        apply_in_process(job, tmp_path / "run")

    results = read_results(tmp_path / "run")
    refused, conflict = results[upn(0)], results[upn(1)]
    assert (refused["office_action"], refused["office_outcome"]) == ("delete", "failed")
    assert (refused["http_status"], refused["error_code"]) == ("400", "badRequest")
    assert is_request_id(refused["request_id"])
    assert (conflict["outcome"], conflict["sms_state"]) == ("partial", "phoneNumberNotUnique")
    assert (conflict["http_status"], conflict["error_code"]) == ("409", "phoneNumberNotUnique")
    assert is_request_id(conflict["request_id"])
    assert refused["request_id"] != conflict["request_id"]
    xlsx = xlsx_results(tmp_path / "run")
    assert (xlsx[upn(0)]["http_status"], xlsx[upn(0)]["request_id"]) == (400, refused["request_id"])
    assert (xlsx[upn(1)]["http_status"], xlsx[upn(1)]["request_id"]) == (409, conflict["request_id"])
    assert f"request-id {refused['request_id']}" in report_html(tmp_path / "run")


def test_sms_sign_in_state_is_the_state_after_enabling_it(tmp_path: Path) -> None:
    app = create_app()
    tenant = app.sandbox.tenant
    tenant.create_user(upn(0))
    method = tenant.create_phone(upn(0), mobile(0), "mobile")["id"]
    tenant.disable_sms_sign_in(upn(0), method)
    assert tenant.list_phones(upn(0))[0]["smsSignInState"] == "notEnabled"
    with served(app) as url:
        apply_in_process(write_job(tmp_path, url, [(upn(0), mobile(0), "yes")], header="user,mobile,sms_sign_in"),
                         tmp_path / "run")
    row = read_results(tmp_path / "run")[upn(0)]
    assert tenant.list_phones(upn(0))[0]["smsSignInState"] == "ready"
    assert (row["outcome"], row["sms_action"], row["sms_state"]) == ("applied", "enable", "ready")


def test_throttled_counts_each_429_once_and_the_average_never_beats_the_peak(tmp_path: Path) -> None:
    users = 40
    # Limits well under what the client starts at, so both the plan's reads and the
    # writes meet 429s before the pacer settles.
    profile = parse_profile({"throttle": {"reads_per_second": 10, "writes_per_second": 10, "burst_seconds": 1}},
                            "throttled")
    app = create_app(profile=profile)
    for i in range(users):
        app.sandbox.tenant.create_user(upn(i))
    with served(app) as url:
        apply_in_process(write_job(tmp_path, url, [(upn(i), mobile(i)) for i in range(users)]), tmp_path / "run")
    stats = app.sandbox.stats.to_json()
    summary = read_summary(tmp_path / "run")
    assert summary["rows_by_outcome"]["applied"] == users
    assert stats["throttled"] > 0
    assert summary["throttled"] == stats["throttled"]

    html = report_html(tmp_path / "run")
    found = re.search(r"Average ([\d,.]+) requests/s while applying, peak ([\d,.]+)/s", html)
    assert found is not None
    average, peak = (float(v.replace(",", "")) for v in found.groups())
    assert 0 < average <= peak


def test_a_user_entra_does_not_know_is_skipped_in_every_report(tmp_path: Path) -> None:
    app = create_app()
    app.sandbox.tenant.create_user(upn(0))
    ghost = "ghost.hire@contoso.example"
    with served(app) as url:
        apply_in_process(write_job(tmp_path, url, [(upn(0), mobile(0)), (ghost, mobile(1))]), tmp_path / "run")
    row = read_results(tmp_path / "run")[ghost]
    assert (row["outcome"], row["error_code"], row["mobile_outcome"]) == ("skipped", "user_not_found", "skipped")
    assert xlsx_results(tmp_path / "run")[ghost]["outcome"] == "skipped"
    summary = read_summary(tmp_path / "run")
    assert summary["rows_by_outcome"]["skipped"] == 1 and summary["rows_by_outcome"]["failed"] == 0
