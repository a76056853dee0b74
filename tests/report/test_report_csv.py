"""results.csv: one record per roster row, the documented columns, safe and lossless text."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from report_samples import HOSTILE_USER

from provision.report import write_csv
from provision.report.values import RowResult

EXPECTED_HEADER = [
    "row", "sheet", "user", "outcome", "reason",
    "mobile_desired", "mobile_before", "mobile_after", "mobile_action", "mobile_outcome",
    "alternate_mobile_desired", "alternate_mobile_before", "alternate_mobile_after",
    "alternate_mobile_action", "alternate_mobile_outcome",
    "office_desired", "office_before", "office_after", "office_action", "office_outcome",
    "sms_action", "sms_state", "error_code", "error_message", "http_status", "request_id", "verified",
    # passthrough columns, first-seen order; "user" clashes with a fixed column
    "Department", "Notes", "extra_user",
]


def _read(path: Path) -> tuple[bytes, list[dict[str, str]], list[str]]:
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    records = list(reader)
    return raw, records, list(reader.fieldnames or [])


def test_csv_has_bom_header_and_one_record_per_row(tmp_path: Path, rows: list[RowResult]) -> None:
    path = tmp_path / "results.csv"
    assert write_csv(rows, path) == len(rows)
    raw, records, header = _read(path)
    assert raw.startswith(b"\xef\xbb\xbf")
    assert header == EXPECTED_HEADER
    assert len(records) == len(rows)
    assert [int(r["row"]) for r in records] == [r.row for r in rows]
    assert {r["outcome"] for r in records} == {"applied", "unchanged", "partial", "failed", "skipped",
                                                "invalid", "planned"}


def test_csv_phone_numbers_are_full_and_intact(tmp_path: Path, rows: list[RowResult]) -> None:
    path = tmp_path / "results.csv"
    write_csv(rows, path)
    _, records, _ = _read(path)
    alice, bob, carol = records[0], records[1], records[2]
    assert alice["mobile_desired"] == "+1 2065550100"
    assert alice["mobile_after"] == "+1 2065550100"
    assert alice["mobile_action"] == "create" and alice["mobile_outcome"] == "applied"
    assert bob["office_before"] == "+44 2079460958x12"
    assert carol["mobile_before"] == "+33 600000000" and carol["alternate_mobile_outcome"] == "failed"
    # Types the roster doesn't speak about stay blank.
    assert alice["office_desired"] == alice["office_action"] == alice["office_outcome"] == ""
    # A masked number as Graph returned it is still phone-shaped.
    assert records[4]["mobile_before"] == "+49 XXXXXXXXX89"


def test_csv_neutralises_formula_injection_in_free_text_only(tmp_path: Path, rows: list[RowResult]) -> None:
    path = tmp_path / "results.csv"
    write_csv(rows, path)
    _, records, _ = _read(path)
    assert records[3]["user"] == "'" + HOSTILE_USER
    assert records[0]["Notes"] == "'=HYPERLINK(\"x\",\"click\")"
    assert records[1]["Department"] == "'-Finance"
    assert records[2]["Department"] == "'@Ops"
    assert records[5]["Notes"] == "'\tsneaky"
    assert records[5]["Department"] == "'+SUM(1,2)"
    # Something in a phone column that isn't a phone number is neutralised like free text.
    assert records[5]["office_before"] == "'=2+5"
    # No cell of any record starts with a trigger unless it is a phone-shaped number.
    phone_columns = {n for n in records[0] if n.endswith(("_desired", "_before", "_after"))}
    for rec in records:
        for name, value in rec.items():
            if value[:1] in ("=", "-", "@", "\t", "\r") or (value[:1] == "+" and name not in phone_columns):
                raise AssertionError(f"{name}={value!r} can be read as a formula")


def test_csv_quotes_per_rfc4180_and_round_trips(tmp_path: Path, rows: list[RowResult]) -> None:
    path = tmp_path / "results.csv"
    write_csv(rows, path)
    raw, records, _ = _read(path)
    # Records end in CRLF; the embedded CRLF of the message lives inside a quoted field.
    assert raw.endswith(b"\r\n")
    assert b'"Phone number +1 2065550123 is already used, see\r\nsupport ""ticket"", 42"' in raw
    assert records[3]["error_message"] == rows[3].error_message
    assert records[3]["http_status"] == "409"
    assert records[0]["verified"] == "true" and records[2]["verified"] == "false" and records[1]["verified"] == ""


def test_csv_writes_to_an_open_text_stream(rows: list[RowResult]) -> None:
    buf = io.StringIO(newline="")
    write_csv(rows, buf)
    text = buf.getvalue()
    assert text.startswith("\ufeffrow,sheet,user,")
    assert len(list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))) == len(rows) + 1


def test_csv_of_no_rows_is_just_the_header(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    assert write_csv([], path) == 0
    _, records, header = _read(path)
    assert records == [] and header == EXPECTED_HEADER[:-3]
