"""The merged fleet report: exit code ranking, every row of every tenant in fleet.xlsx,
tenants needing attention first, links to tenant reports, no number on the shareable files,
0600 files, and a fleet of many tenants (scaled by PROVISION_FLEET_REPORT_SCALE=TENANTSxROWS).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from provision.errors import ExitCode
from provision.executor.journal import Journal
from provision.fleet.report import fleet_exit_code, fleet_summary, write_fleet_reports
from provision.fleet.report_xlsx import write_fleet_xlsx
from provision.model import PhoneType, RowOutcome
from provision.report.csv_writer import write_csv
from provision.report.values import Action, PhoneResult, RowResult

M, OFF = PhoneType.MOBILE, PhoneType.OFFICE
HOSTILE = "=cmd|' /C calc'!A0"


def _number(tenant: int, row: int) -> str:
    return f"+1 20655{tenant:02d}{row:03d}"


def _rows(tenant: int, n: int, extra: dict[str, str]) -> list[RowResult]:
    out = []
    for i in range(n):
        number = _number(tenant, i)
        outcome = RowOutcome.FAILED if i % 5 == 4 else RowOutcome.APPLIED
        out.append(RowResult(
            i + 2, None, f"user{i}@t{tenant}.example", outcome,
            {M: PhoneResult(number, None, number if outcome is RowOutcome.APPLIED else None, Action.CREATE,
                            outcome),
             OFF: PhoneResult(None, "+44 2079460958x12", "+44 2079460958x12", Action.NONE, RowOutcome.UNCHANGED)},
            reason=f"Graph refused {number}" if outcome is RowOutcome.FAILED else None,
            error_code="badRequest" if outcome is RowOutcome.FAILED else None,
            http_status=400 if outcome is RowOutcome.FAILED else None,
            verified=outcome is RowOutcome.APPLIED,
            extra=extra,
        ))
    return out


def _result(key: str, status: str, exit_code: int, **overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "schema": 1, "tenant_id": f"{key}.onmicrosoft.com", "name": f"Tenant {key}", "key": key,
        "groups": ["smb"], "action": "apply", "status": status, "exit_code": exit_code, "message": "",
        "run_dir": None, "plan_file": None, "rows_total": 0, "rows_ok": 0, "rows_failed": 0,
        "rows_by_outcome": {}, "changes": {}, "changes_done": {}, "writes_failed": 0, "operations": 0,
        "throttled": 0, "attempts": 1, "started": "2026-12-04T02:00:00+00:00",
        "finished": "2026-12-04T02:01:00+00:00", "duration_s": 60.0, "worker": "host:1",
    }
    result.update(overrides)
    return result


def _tenant_dir(fleet: Path, key: str, rows: list[RowResult] | None, *, report: bool = False) -> str:
    tdir = fleet / "tenants" / key
    (tdir / "run").mkdir(parents=True)
    if rows is not None:
        write_csv(rows, tdir / "results.csv")
    if report:
        (tdir / "run" / "report.html").write_text("<html></html>", encoding="utf-8")
        (tdir / "run" / "journal.sqlite").write_bytes(b"")
    return f"tenants/{key}/run"


MANIFEST = {"name": "msp-nightly", "action": "apply", "started": "2026-12-04T02:00:00+00:00",
            "executor": "embedded LocalCluster, 2 workers", "excluded": [{"tenant_id": "x.example",
                                                                         "reason": "excluded"}]}

# One tenant per status, in the order the reader must meet them.
ORDER = ["auth_failed", "stopped", "lost", "bad_input", "refused", "quarantined", "rows_failed", "drift", "ok"]
CODES = {"auth_failed": 4, "stopped": 5, "lost": 5, "bad_input": 2, "refused": 3, "quarantined": 1,
         "rows_failed": 1, "drift": 6, "ok": 0}


@pytest.fixture
def fleet(tmp_path: Path) -> tuple[Path, list[dict[str, Any]], dict[str, list[RowResult]]]:
    fleet_dir = tmp_path / "fleet-msp-nightly-20261204T020000Z"
    rows_by_key: dict[str, list[RowResult]] = {}
    results: list[dict[str, Any]] = []
    for i, status in enumerate(reversed(ORDER)):  # written healthy first: the report must reorder
        key = f"t{i:02d}"
        extra = ({"Department": "-Sales", "tenant": "clash"} if i % 2 else {"Cost Center": "@42", "Department": "Ops"})
        rows = _rows(i, 6 + i, extra) if status != "bad_input" else None  # a roster that couldn't be read
        has_run = status not in ("bad_input", "auth_failed", "lost")
        run_dir = _tenant_dir(fleet_dir, key, rows, report=has_run)
        if status == "stopped":  # a run that started writing: its journal is a real one
            (fleet_dir / run_dir / "journal.sqlite").unlink()
            Journal.create(fleet_dir / run_dir, run_meta={"job": "nightly"}, changes=[]).close()
        if rows is not None:
            rows_by_key[key] = rows
        message = f"refused: user {_number(i, 0)} would lose a phone" if status == "refused" else status
        results.append(_result(
            key, status, CODES[status], message=message, run_dir=run_dir if has_run else None,
            rows_total=len(rows or ()), rows_failed=sum(r.outcome is RowOutcome.FAILED for r in rows or ()),
            rows_by_outcome={"applied": 5}, changes={"create": 3}, changes_done={"create": 2}, throttled=1,
        ))
    return fleet_dir, results, rows_by_key


def test_a_stopped_tenant_whose_journal_creation_was_cut_off_resumes_through_the_fleet(fleet: Any) -> None:
    # Killed inside Journal.create: nothing was sent, and `provision resume` would only say
    # "apply again"; the fleet re-dispatches such a tenant afresh.
    fleet_dir, results, _ = fleet
    stopped = next(r for r in results if r["status"] == "stopped")
    (fleet_dir / stopped["run_dir"] / "journal.sqlite").write_bytes(b"")

    write_fleet_reports(fleet_dir, results, MANIFEST)

    summary = json.loads((fleet_dir / "fleet_summary.json").read_text(encoding="utf-8"))
    by_status = {t["status"]: t for t in summary["tenants"]}
    assert by_status["stopped"]["resume_command"] == summary["resume_command"] == f"provision fleet resume {fleet_dir}"


@pytest.mark.parametrize(("codes", "expected"), [
    ([], 0),
    ([0, 0], 0),
    ([0, 6], 6),
    ([6, 1, 0], 1),
    ([1, 3], 3),
    ([3, 2], 2),
    ([2, 4], 4),
    ([4, 5, 1], 5),
    ([0, 6, 1, 3, 2, 4, 5], 5),
])
def test_the_fleet_ends_with_its_worst_tenant(codes: list[int], expected: int) -> None:
    results = [{"status": "x", "exit_code": c} for c in codes]
    assert fleet_exit_code(results) == ExitCode(expected)
    assert fleet_exit_code(reversed(results)) == ExitCode(expected)


def test_a_result_without_a_usable_code_counts_by_its_status() -> None:
    assert fleet_exit_code([{"status": "quarantined"}, {"status": "ok", "exit_code": 0}]) == ExitCode.ROWS_FAILED
    assert fleet_exit_code([{"status": "lost", "exit_code": None}]) == ExitCode.STOPPED
    assert fleet_exit_code([{"status": "who knows", "exit_code": 99}]) == ExitCode.STOPPED


def _rows_sheet(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    wb = load_workbook(path, read_only=True)
    values = list(wb["Rows"].iter_rows(values_only=True))
    wb.close()
    return [str(h) for h in values[0]], values[1:]


def test_fleet_xlsx_holds_every_row_of_every_tenant(fleet: Any) -> None:
    fleet_dir, results, rows_by_key = fleet
    results[0]["name"] = HOSTILE  # tenants.csv is free text too
    report = write_fleet_reports(fleet_dir, results, MANIFEST)

    headers, rows = _rows_sheet(fleet_dir / "fleet.xlsx")
    assert headers[:4] == ["tenant", "tenant_id", "row", "sheet"]
    # The union of every tenant's columns, a clash with the leading columns renamed.
    assert {"Department", "Cost Center", "extra_tenant"} <= set(headers)
    col = {h: i for i, h in enumerate(headers)}
    expected = {(f"{k}.onmicrosoft.com", r.row, r.user) for k, rs in rows_by_key.items() for r in rs}
    got = {(row[col["tenant_id"]], row[col["row"]], row[col["user"]]) for row in rows}
    assert got == expected and len(rows) == len(expected) == report.rows_total
    for row in rows:
        key = str(row[col["tenant_id"]]).split(".")[0]
        source = next(r for r in rows_by_key[key] if r.row == row[col["row"]])
        # Numbers stay text, in Graph form; typed columns get their types back.
        assert row[col["mobile_desired"]] == source.phones[M].desired
        assert row[col["outcome"]] == source.outcome.value
        assert row[col["verified"]] is source.verified
        assert row[col["http_status"]] == source.http_status
        # Formula injection stays neutralised in passthrough columns.
        for name in ("Department", "Cost Center"):
            cell = row[col[name]]
            assert cell is None or not str(cell).startswith(("=", "+", "-", "@"))

    wb = load_workbook(fleet_dir / "fleet.xlsx", read_only=True)
    tenants = list(wb["Tenants"].iter_rows(values_only=True))
    # Outcome cells keep results.xlsx's colours, row after row.
    fills = {(row[col["outcome"]].value, row[col["outcome"]].fill.fgColor.rgb)
             for row in wb["Rows"].iter_rows(min_row=2)}
    wb.close()
    assert fills == {("applied", "00C6EFCE"), ("failed", "00FFC7CE")}
    assert [t[3] for t in tenants[1:]] == ORDER  # status column, attention first
    assert tenants[-1][0] == "'" + HOSTILE
    assert {row[0] for row in rows if row[1] == results[0]["tenant_id"]} == {"'" + HOSTILE}
    assert report.exit_code == ExitCode.STOPPED
    assert report.tenants_by_status == dict.fromkeys(ORDER, 1)


def test_tenants_needing_attention_come_first_worst_first(fleet: Any) -> None:
    fleet_dir, results, _ = fleet
    write_fleet_reports(fleet_dir, results, MANIFEST)

    summary = json.loads((fleet_dir / "fleet_summary.json").read_text(encoding="utf-8"))
    assert [t["status"] for t in summary["tenants"]] == ORDER
    assert summary["exit_code"] == 5 and summary["tenants_by_status"] == dict.fromkeys(ORDER, 1)
    assert summary["tenants_needing_attention"] == 7
    assert summary["resume_command"] == f"provision fleet resume {fleet_dir}"
    by_status = {t["status"]: t for t in summary["tenants"]}
    # A stopped tenant with a run resumes by itself; a lost one with none through the fleet.
    assert by_status["stopped"]["resume_command"] == f"provision resume {fleet_dir / by_status['stopped']['run_dir']}"
    assert by_status["lost"]["resume_command"] == summary["resume_command"]
    assert by_status["ok"]["resume_command"] is None
    assert summary["totals"]["rows_total"] == sum(t["rows_total"] for t in results)
    assert summary["totals"]["changes_done"] == {"create": 2 * len(results)}
    assert summary["duration_s"] == 60.0

    page = (fleet_dir / "report.html").read_text(encoding="utf-8")
    attention = page[page.index('<table id="attention"'):]
    attention, healthy = attention[: attention.index("</table>")], attention[attention.index("</table>"):]
    positions = [attention.find(f">Tenant {t['key']}<") for t in summary["tenants"][:7]]
    assert -1 not in positions and positions == sorted(positions)
    assert all(f">Tenant {t['key']}<" in healthy for t in summary["tenants"][7:])


def test_the_page_escapes_tenant_text(fleet: Any) -> None:
    fleet_dir, results, _ = fleet
    results[1]["name"] = "<script>alert(1)</script>"
    results[2]["message"] = "<b>bold</b> refusal"
    write_fleet_reports(fleet_dir, results, MANIFEST)
    page = (fleet_dir / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt; refusal" in page


def test_links_go_only_to_tenant_reports_that_exist(fleet: Any) -> None:
    fleet_dir, results, _ = fleet
    write_fleet_reports(fleet_dir, results, MANIFEST)
    page = (fleet_dir / "report.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+)"', page))
    existing = {p.relative_to(fleet_dir).as_posix() for p in fleet_dir.glob("tenants/*/run/report.html")}
    assert links == existing and len(existing) == 6
    assert all((fleet_dir / link).is_file() for link in links)


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number.split("x")[0])[1:]  # the national number, without country code


def test_no_number_reaches_the_page_or_the_summary(fleet: Any) -> None:
    fleet_dir, results, rows_by_key = fleet
    write_fleet_reports(fleet_dir, results, MANIFEST)
    numbers = {p.desired or p.before or "" for rs in rows_by_key.values() for r in rs for p in r.phones.values()}
    numbers |= {_number(i, 0) for i in range(len(ORDER))}  # the refused tenant's message held one
    shared = [(fleet_dir / n).read_text(encoding="utf-8") for n in ("report.html", "fleet_summary.json")]
    for number in filter(None, numbers):
        for text in shared:
            assert _digits(number) not in text, number
    # fleet.xlsx is the record: it carries the numbers, as results.csv does.
    _, rows = _rows_sheet(fleet_dir / "fleet.xlsx")
    assert any(_number(0, 0) in row for row in rows)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_every_report_file_is_private_whatever_the_umask(fleet: Any, umask_zero: None) -> None:
    fleet_dir, results, _ = fleet
    report = write_fleet_reports(fleet_dir, results, MANIFEST)
    report = write_fleet_reports(fleet_dir, results, MANIFEST)  # re-rendered over existing files
    assert {p.name for p in report.paths} == {"fleet_summary.json", "fleet.xlsx", "report.html"}
    for path in report.paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not list(fleet_dir.glob(".*.tmp"))


def test_a_damaged_results_file_costs_only_its_own_cells(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    run_dir = _tenant_dir(fleet_dir, "a", _rows(1, 3, {}))
    path = fleet_dir / "tenants" / "a" / "results.csv"
    path.write_bytes(path.read_bytes().replace(b"user1@", b"us\xffer1@"))  # not UTF-8
    write_fleet_reports(fleet_dir, [_result("a", "ok", 0, run_dir=run_dir)], MANIFEST)
    headers, rows = _rows_sheet(fleet_dir / "fleet.xlsx")
    assert [row[headers.index("user")] for row in rows] == [
        "user0@t1.example", "us\ufffder1@t1.example", "user2@t1.example"]


def test_rows_past_a_sheets_limit_continue_on_the_next_sheet(fleet: Any) -> None:
    fleet_dir, results, rows_by_key = fleet
    summary = fleet_summary(fleet_dir, results, MANIFEST)
    with (fleet_dir / "small.xlsx").open("wb") as fh:
        written = write_fleet_xlsx(fh, summary["tenants"], fleet_dir, max_rows=11)
    wb = load_workbook(fleet_dir / "small.xlsx", read_only=True)
    sheets = [list(wb[name].iter_rows(values_only=True)) for name in wb.sheetnames[1:]]
    wb.close()
    total = sum(len(rs) for rs in rows_by_key.values())
    assert written == total and [len(s) - 1 for s in sheets] == [10] * (total // 10) + [total % 10]
    assert all(s[0] == sheets[0][0] for s in sheets)  # each with the header


def _scale() -> tuple[int, int]:
    tenants, rows = os.environ.get("PROVISION_FLEET_REPORT_SCALE", "200x50").split("x")
    return int(tenants), int(rows)


def test_a_large_fleet_reports_every_row_on_a_small_page(tmp_path: Path) -> None:
    """200 tenants x 50 rows in the suite; PROVISION_FLEET_REPORT_SCALE=1000x100 for the full size."""
    n_tenants, n_rows = _scale()
    fleet_dir = tmp_path / "fleet"
    sample = tmp_path / "sample.csv"
    write_csv(_rows(7, n_rows, {"Department": "Sales"}), sample)
    data = sample.read_bytes()
    results = []
    for i in range(n_tenants):
        key = f"tenant{i:04d}"
        run_dir = _tenant_dir(fleet_dir, key, None, report=True)
        (fleet_dir / "tenants" / key / "results.csv").write_bytes(data)
        status = "rows_failed" if i % 50 == 0 else "ok"
        results.append(_result(key, status, CODES[status], run_dir=run_dir, rows_total=n_rows,
                               changes={"create": n_rows}, changes_done={"create": n_rows}))

    report = write_fleet_reports(fleet_dir, results, MANIFEST)

    assert report.rows_total == n_tenants * n_rows
    assert report.exit_code == ExitCode.ROWS_FAILED
    page = (fleet_dir / "report.html").stat().st_size
    assert page < 1_000_000 * n_tenants / 1000  # under 1 MB for 1,000 tenants, in proportion
    summary = json.loads((fleet_dir / "fleet_summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["rows_total"] == n_tenants * n_rows
    assert summary["tenants_by_status"]["rows_failed"] == len(range(0, n_tenants, 50))
