"""`provision export`: the live phone methods of many users, written as a roster.

Reads, never writes: no lock, no run directory. The users are the job roster's (default),
those of a roster-like file (``users_file``: any file the roster reader opens, with a user
column; phone columns are not needed), or every user of the tenant (``all_users``: the
paged ``GET /users?$select=id,userPrincipalName&$top=999``). Their phones are read by the
planner's own bulk reader (``graph.state_reader``), and written as a roster the reader
reads back (``user, mobile, alternate_mobile, office, sms_sign_in, note``): numbers in
full (the file is the admin's data, created 0600), ``sms_sign_in`` true when the mobile
reads ``ready``. A user whose numbers Graph masks is written with ``note = masked`` and
no numbers (so no later import can write a mask); a user Graph doesn't know is left out
and named in the result.

``snapshot`` also writes a sandbox snapshot (``sandbox.snapshot_format``) of the same
users and phones, to rehearse a job against a copy (``provision sandbox serve --snapshot``).
Users read masked are left out of it (their numbers are unknown). Nothing here prints;
numbers reach the console only through the CLI's masking.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from provision.errors import AuthError, RosterReadError, UsageError
from provision.graph.client import GraphClient, GraphUser
from provision.graph.retry import DEFAULT_RETRY_POLICY, RetryPolicy
from provision.graph.state_reader import read_current_state, read_retried, refuse_if_denied_everywhere
from provision.model import (
    PHONE_TYPES,
    CurrentUser,
    PhoneType,
    ReadStatus,
    SmsPolicy,
    SmsSignInState,
)
from provision.roster.columns import ALIASES, header_key
from provision.roster.files import open_table
from provision.roster.reader import user_key
from provision.run.console import Console, NullConsole
from provision.run.jobs import Job, SandboxTarget
from provision.run.plan_stage import load_roster
from provision.run.targets import open_target
from provision.sandbox.auth import SANDBOX_TENANT_ID
from provision.sandbox.snapshot_format import (
    SmsRegistration,
    SnapshotError,
    SnapshotPhone,
    SnapshotUser,
    TenantSnapshot,
)

EXPORT_COLUMNS = ("user", "mobile", "alternate_mobile", "office", "sms_sign_in", "note")
MASKED_NOTE = "masked"
OUT_SUFFIXES = (".csv", ".xlsx")
_COLUMN_OF = {PhoneType.MOBILE: "mobile", PhoneType.ALTERNATE_MOBILE: "alternate_mobile", PhoneType.OFFICE: "office"}
_REGISTRATION = {
    SmsSignInState.READY: SmsRegistration.REGISTERED,
    SmsSignInState.NOT_ENABLED: SmsRegistration.DISABLED,
    SmsSignInState.PHONE_NUMBER_NOT_UNIQUE: SmsRegistration.NOT_UNIQUE,
}


@dataclass(frozen=True, slots=True)
class ExportOptions:
    out: Path
    users_file: Path | None = None
    all_users: bool = False
    snapshot: Path | None = None


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export wrote and whom it left out (user names only: never a number)."""

    out: Path
    snapshot: Path | None
    target: str
    users: int  # rows written
    phones: dict[str, int]  # column -> numbers written
    masked: tuple[str, ...]  # users written with the masked marker
    not_found: tuple[str, ...]  # users Graph doesn't know (left out)
    failed: tuple[tuple[str, str], ...]  # (user, why) whose phones could not be read (left out)
    invalid: tuple[str, ...] = ()  # cells of the users file that name no user
    snapshot_users: int = 0
    remarks: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class _Subject:
    key: str  # what the phones are read by (id, UPN or the roster's key)
    name: str  # the file's user cell


def check_options(options: ExportOptions) -> None:
    """Refuse what can't work before anything is read (exit 2)."""
    if options.all_users and options.users_file is not None:
        raise UsageError("--users and --all-users can't be used together: pick one set of users")
    if options.out.suffix.lower() not in OUT_SUFFIXES:
        raise UsageError(f"--out must end in .csv or .xlsx, not {options.out.name!r}")
    if options.snapshot is not None and options.snapshot.suffix.lower() != ".json":
        raise UsageError(f"--snapshot must end in .json, not {options.snapshot.name!r}")
    for path in (options.out, options.snapshot):
        if path is not None and not path.parent.is_dir():
            raise UsageError(f"{path}: no such folder {path.parent}")


async def export_job(job: Job, options: ExportOptions, *, console: Console | None = None) -> ExportResult:
    """Read the chosen users' phones from the job's target and write the export (and snapshot)."""
    console = console or NullConsole()
    check_options(options)
    invalid: tuple[str, ...] = ()
    subjects: list[_Subject] = []
    if not options.all_users:
        subjects, invalid = _listed_subjects(job, options.users_file)
    async with open_target(job) as target:
        directory: list[GraphUser] | None = None
        if options.all_users or options.snapshot is not None:
            console.stage("listing users")
            directory = await list_all_users(target.client, progress=lambda n: console.advance("listing users", n))
        if options.all_users:
            assert directory is not None
            subjects = [_Subject(u.id.lower(), u.user_principal_name or u.id) for u in directory]
        console.stage("reading users", len(subjects))
        current, policy, _ = await read_current_state(
            target.client,
            [s.key for s in subjects],
            policy_needs_ids=False,
            progress=lambda done, total: console.advance("reading users", done, total),
        )
        description = target.description
    refuse_if_denied_everywhere(current, "UserAuthenticationMethod.Read.All")
    result = await asyncio.to_thread(
        _write, job, options, subjects, current, policy, directory, description, invalid
    )
    return result


# -- which users --------------------------------------------------------------------------


def _listed_subjects(job: Job, users_file: Path | None) -> tuple[list[_Subject], tuple[str, ...]]:
    """The job roster's users, or the users file's; and the user cells that name no user."""
    if users_file is None:
        roster = load_roster(job)
        cells = list(zip(roster.rows.columns.keys, roster.rows.columns.users))
    else:
        cells = [(user_key(cell), cell) for cell in _user_cells(users_file)]
    subjects: dict[str, _Subject] = {}
    invalid: list[str] = []
    for key, cell in cells:
        if key is None:
            if cell.strip():
                invalid.append(cell.strip()[:80])
            continue
        subjects.setdefault(key, _Subject(key, cell.strip()))
    return list(subjects.values()), tuple(invalid)


def _user_cells(path: Path) -> list[str]:
    """The user column's cells of a roster-like file (the roster reader's files and user
    column names; phone columns may be absent)."""
    if not path.is_file():
        raise RosterReadError(f"{path}: no such users file")
    table = open_table(path)
    try:
        keys = [header_key(h) for h in table.header]
        at = next((keys.index(alias) for alias in ALIASES["user"] if alias in keys), None)
        if at is None:
            raise RosterReadError(f"{path.name}: no user column (a UPN or object id, headed e.g. user, upn, userPrincipalName)")
        return [record.cells[at] for record in table.records if any(record.cells)]
    finally:
        table.close()


async def list_all_users(
    client: GraphClient,
    *,
    progress: Callable[[int], None] | None = None,
    retry: RetryPolicy = DEFAULT_RETRY_POLICY,
    clock: Callable[[], float] = time.monotonic,
) -> list[GraphUser]:
    """Every user of the tenant, following ``@odata.nextLink``; a page that fails for a
    transient reason is read again. 403/401 raise ``AuthError`` (exit 4); no answer for the
    circuit breaker's bound raises ``TargetUnreachable`` (exit 5)."""
    users: list[GraphUser] = []
    link: str | None = None
    while True:
        page, link = await _page(client, link, retry, clock)
        users.extend(page)
        if progress is not None:
            progress(len(users))
        if link is None:
            return users


async def _page(
    client: GraphClient, link: str | None, retry: RetryPolicy, clock: Callable[[], float]
) -> tuple[list[GraphUser], str | None]:
    def refused(exc: AuthError) -> AuthError:
        return AuthError(
            403, exc.code, "the credential may not list the tenant's users; grant the app User.Read.All "
            "(or Directory.Read.All) with admin consent", request_id=exc.request_id,
        )

    return await read_retried(client, lambda: client.list_users_page(link), refused=refused, retry=retry, clock=clock)


# -- writing ------------------------------------------------------------------------------


def _row(subject: _Subject, user: CurrentUser) -> dict[str, str]:
    row = dict.fromkeys(EXPORT_COLUMNS, "")
    row["user"] = subject.name
    if user.masked:
        row["note"] = MASKED_NOTE
        return row
    for phone_type, phone in user.phones.items():
        row[_COLUMN_OF[phone_type]] = phone.number
    mobile = user.phones.get(PhoneType.MOBILE)
    ready = mobile is not None and mobile.sms_sign_in_state is SmsSignInState.READY
    row["sms_sign_in"] = "true" if ready else "false"
    return row


def _write(
    job: Job,
    options: ExportOptions,
    subjects: Sequence[_Subject],
    current: dict[str, CurrentUser],
    policy: SmsPolicy,
    directory: list[GraphUser] | None,
    description: str,
    invalid: tuple[str, ...],
) -> ExportResult:
    rows: list[dict[str, str]] = []
    masked: list[str] = []
    not_found: list[str] = []
    failed: list[tuple[str, str]] = []
    for subject in subjects:
        user = current[subject.key]
        if user.status is ReadStatus.NOT_FOUND:
            not_found.append(subject.name)
        elif user.status is ReadStatus.FAILED:
            failed.append((subject.name, user.error_code or "notRead"))
        else:
            rows.append(_row(subject, user))
            if user.masked:
                masked.append(subject.name)
    write_export(options.out, rows)
    snapshot_users = 0
    remarks: list[str] = []
    if options.snapshot is not None:
        assert directory is not None
        snapshot_users, remark = _write_snapshot(job, options.snapshot, subjects, current, policy, directory)
        remarks.extend(remark)
    phones = {column: sum(1 for r in rows if r[column]) for column in _COLUMN_OF.values()}
    return ExportResult(
        out=options.out, snapshot=options.snapshot, target=description, users=len(rows), phones=phones,
        masked=tuple(masked), not_found=tuple(not_found), failed=tuple(failed), invalid=invalid,
        snapshot_users=snapshot_users, remarks=tuple(remarks),
    )


def _private(path: Path) -> Path:
    """A new, empty file beside ``path`` only its owner can read (0600), to rename over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return tmp


def write_export(path: Path, rows: Iterable[dict[str, str]]) -> None:
    """The export file (.csv UTF-8, or .xlsx with every cell text), 0600, written atomically."""
    tmp = _private(path)
    try:
        if path.suffix.lower() == ".xlsx":
            _write_xlsx(tmp, rows)
        else:
            with tmp.open("w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, EXPORT_COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_xlsx(path: Path, rows: Iterable[dict[str, str]]) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    sheet = wb.create_sheet("Export")
    sheet.append(list(EXPORT_COLUMNS))
    for row in rows:
        cells = []
        for column in EXPORT_COLUMNS:
            cell = WriteOnlyCell(sheet, value=row[column])
            cell.data_type = "s"  # text: "+1 2065550100" must never become a number or a formula
            cell.number_format = "@"
            cells.append(cell)
        sheet.append(cells)
    wb.save(path)


# -- the snapshot -------------------------------------------------------------------------


def _snapshot_phones(user: CurrentUser) -> tuple[SnapshotPhone, ...]:
    phones = []
    for phone_type in PHONE_TYPES:
        phone = user.phones.get(phone_type)
        if phone is None:
            continue
        sms = SmsRegistration.NONE
        if phone_type is PhoneType.MOBILE and phone.sms_sign_in_state is not None:
            sms = _REGISTRATION.get(phone.sms_sign_in_state, SmsRegistration.NONE)
        phones.append(SnapshotPhone(phone_type, phone.number, sms))
    return tuple(phones)


def _policy_json(policy: SmsPolicy) -> dict[str, Any] | None:
    """The policy as Graph JSON, as far as it was read (None: unreadable, the default stays)."""
    if not policy.readable:
        return None
    includes: list[dict[str, Any]] = []
    if policy.include_all_users:
        includes.append({"targetType": "group", "id": "all_users", "isRegistrationRequired": False, "isUsableForSignIn": True})
    for kind, ids in (("user", policy.include_ids), ("group", policy.include_group_ids)):
        includes += [{"targetType": kind, "id": i, "isRegistrationRequired": False, "isUsableForSignIn": True} for i in sorted(ids)]
    excludes = [{"targetType": "user", "id": i} for i in sorted(policy.exclude_ids)]
    excludes += [{"targetType": "group", "id": i} for i in sorted(policy.exclude_group_ids)]
    state = "enabled" if policy.enabled else "disabled"
    return {"state": state, "includeTargets": includes, "excludeTargets": excludes}


def _write_snapshot(
    job: Job,
    path: Path,
    subjects: Sequence[_Subject],
    current: dict[str, CurrentUser],
    policy: SmsPolicy,
    directory: list[GraphUser],
) -> tuple[int, list[str]]:
    """The snapshot of the exported users (masked ones left out); its users and remarks."""
    from provision.sandbox.tenant import Tenant

    by_key: dict[str, GraphUser] = {}
    for listed in directory:
        by_key[listed.id.lower()] = listed
        if listed.user_principal_name:
            by_key[listed.user_principal_name.casefold()] = listed
    users: list[SnapshotUser] = []
    left_out = 0
    for subject in subjects:
        user, entry = current[subject.key], by_key.get(subject.key)
        if user.status is not ReadStatus.OK or user.masked or entry is None or not entry.user_principal_name:
            left_out += user.status is ReadStatus.OK
            continue
        users.append(SnapshotUser(entry.id.lower(), entry.user_principal_name, None, phones=_snapshot_phones(user)))
    tenant_id = job.target.tenant_id if not isinstance(job.target, SandboxTarget) else SANDBOX_TENANT_ID
    remarks = [f"{left_out} exported user(s) left out of the snapshot (numbers read masked, or not in the tenant's user list)"] if left_out else []
    data = TenantSnapshot(tenant_id, tuple(users), None, _policy_json(policy)).to_json()
    del data["sms_registrations"]  # derived from the mobiles' "registered" marks when loaded
    try:
        Tenant.from_snapshot(data)
    except SnapshotError:
        data["sms_policy"] = None  # a policy the sandbox can't hold: the default instead
        remarks.append("the SMS policy could not be copied into the snapshot; it holds the default policy")
        Tenant.from_snapshot(data)
    if policy.readable is False:
        remarks.append("the SMS policy could not be read; the snapshot holds the default policy")
    tmp = _private(path)
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(users), remarks


__all__ = ["EXPORT_COLUMNS", "MASKED_NOTE", "ExportOptions", "ExportResult", "check_options", "export_job", "list_all_users", "write_export"]
