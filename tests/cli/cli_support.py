"""Helpers for the CLI tests: run `provision` in process (typer's CliRunner), write job files
aimed at a running sandbox, read reports, find unmasked numbers. (As a real subprocess:
``support.cli.run_provision`` / ``start_provision``.)

- ``cli(args, env=None)``: CliRunner in process, returns ``support.cli.Ran`` (exit code, stdout, stderr).
- ``shipped_job(dir, name, url)``: a copy of jobs/<name>.toml (aimed at ``url`` if given).
- ``leaked_numbers(text)``: the personal numbers (tenant and rosters) that appear unmasked.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import httpx
from openpyxl import load_workbook
from support.cli import REPO, Ran
from typer.testing import CliRunner

from provision.cli import app
from provision.run.jobs import load_job
from provision.run.plan_stage import load_roster

JOBS = REPO / "jobs"
SAMPLE = REPO / "sample_data"
CONTOSO = SAMPLE / "contoso_tenant.json"
CONTOSO_TENANT_ID: str = json.loads(CONTOSO.read_text(encoding="utf-8"))["tenant_id"]
SHIPPED_JOBS = ("onboarding", "legacy_mfa_migration", "nightly_reconcile")

_runner = CliRunner()


def cli(args: Sequence[str], env: Mapping[str, str] | None = None) -> Ran:
    """`provision ARGS` in process; an exception that isn't an exit fails the test."""
    result = _runner.invoke(app, [str(a) for a in args], env=dict(env) if env else None)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def shipped_job(directory: Path, name: str, url: str | None = None) -> Path:
    """jobs/<name>.toml copied into ``directory``: sample paths absolute, reports under
    ``directory/reports``, and (with ``url``) aimed at that running sandbox."""
    text = (JOBS / f"{name}.toml").read_text(encoding="utf-8")
    text = text.replace('"../sample_data/', f'"{SAMPLE.as_posix()}/').replace('directory = "../reports"', 'directory = "reports"')
    if url is not None:
        text = text[: text.index("\n[target]")] + f'\n[target]\nurl = "{url}"\n'
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def write_job(directory: Path, body: str, *, url: str, name: str = "job") -> Path:
    path = directory / f"{name}.toml"
    path.write_text(f'name = "{name}"\n{body.strip()}\n\n[output]\ndirectory = "reports"\n\n[target]\nurl = "{url}"\n', encoding="utf-8")
    return path


CLEAN_ROWS: tuple[tuple[str, str], ...] = (
    ("paul.walker@contoso.com", "+1 425 555 0101"),
    ("nina.patel@contoso.com", "+44 7911 123460"),
    ("tom.becker@contoso.com", "+49 151 23456781"),
)


def clean_job(directory: Path, url: str, rows: Sequence[Sequence[str]] = CLEAN_ROWS, extra: str = "") -> Path:
    """An additive job over a small valid roster of sample-tenant users without phones."""
    write_csv(directory / "clean.csv", ["upn", "mobile"], rows)
    body = f'mode = "additive"\n{extra}\n[roster]\npath = "clean.csv"\n[roster.columns]\nuser = "upn"\nmobile = "mobile"\n'
    return write_job(directory, body, url=url, name="clean")


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def xlsx_results(path: Path) -> list[dict[str, Any]]:
    """The Results sheet as dicts (header row -> values)."""
    wb = load_workbook(path, read_only=True)
    rows = list(wb["Results"].iter_rows(values_only=True))
    wb.close()
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, r)) for r in rows[1:]]


def tenant_snapshot(handle: Any) -> dict[str, Any]:
    response = httpx.get(handle.root + "/_sandbox/snapshot", timeout=30)
    response.raise_for_status()
    return response.json()


def phones_of(snapshot: Mapping[str, Any], upn: str) -> dict[str, str]:
    """phoneType -> number for one user of a tenant snapshot."""
    for user in snapshot["users"]:
        if user["upn"] == upn:
            return {p["phoneType"]: p["phoneNumber"] for p in user["phones"]}
    raise KeyError(upn)


def upn(name: str) -> str:
    return f"{name}@contoso.com"


# --- personal numbers -------------------------------------------------------------------

_SEPARATORS = r"[\s().\-/]*"


@functools.cache
def personal_numbers() -> tuple[str, ...]:
    """National digits of every number in the sample tenant and the shipped rosters
    (normalised Graph forms, plus the raw digits of cells that didn't normalise)."""
    numbers: set[str] = set()
    tenant = json.loads(CONTOSO.read_text(encoding="utf-8"))
    for user in tenant["users"]:
        for phone in user["phones"]:
            numbers.add(phone["phoneNumber"].split(" ", 1)[1])
    for name in SHIPPED_JOBS:
        roster = load_roster(load_job(JOBS / f"{name}.toml"))
        for row in roster.rows:
            for number in row.phones.values():
                if number:
                    numbers.add(number.split(" ", 1)[1].split("x")[0])
    for raw in _raw_phone_cells():
        digits = re.sub(r"\D", "", re.split(r"x|ext", raw)[0]).lstrip("0")
        if len(digits) >= 8:
            numbers.add(digits)
    return tuple(sorted(numbers))


def _raw_phone_cells() -> Iterator[str]:
    wb = load_workbook(SAMPLE / "new_hires.xlsx", read_only=True)
    for row in wb["New hires"].iter_rows(min_row=2, values_only=True):
        for cell in (row[4], row[5]):
            if cell not in (None, ""):
                yield str(cell)
    wb.close()
    with (SAMPLE / "msonline_export.csv").open(encoding="utf-8-sig", newline="") as f:
        for r in csv.DictReader(f):
            yield from (r["PhoneNumber"], r["AlternativePhoneNumber"])
    with (SAMPLE / "hr_extract.csv").open(encoding="utf-8-sig", newline="") as f:
        for r in csv.DictReader(f, delimiter=";"):
            yield from (r["mobile"], r["office"])


@functools.cache
def _number_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((n, re.compile(_SEPARATORS.join(n))) for n in personal_numbers())


def leaked_numbers(text: str) -> list[str]:
    """Personal numbers whose every digit appears (any spacing/punctuation) in ``text``."""
    return [n for n, pattern in _number_patterns() if pattern.search(text)]
