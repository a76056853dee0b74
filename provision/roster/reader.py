"""Roster files -> desired phones per user, and every row's problems.

``read_roster`` reads a CSV or Excel roster (``provision.roster.files``), finds its columns
(``provision.roster.columns``), normalises every phone cell (``provision.roster.numbers``) and
checks the rows against each other. No row disappears: each data row is a ``RosterRow``
and its user is in ``Roster.users`` unless the row has an error ``RowIssue``; blank rows
are counted. Row numbers are the ones a spreadsheet shows (the header is row 1 when it
is on the first line).

The file streams in ``CHUNK_ROWS`` records at a time: a chunk's distinct phone cells are
normalised ahead (in worker processes for big files), its rows are built, and its records
are dropped. Each row stays a plain draft tuple until the checks across rows (repeated
users, shared mobiles) have run, and only then becomes a ``RosterRow``.

The source may also be a pandas DataFrame (``provision.roster.files.frame_table``). The
cyclic garbage collector is paused while a roster is built, and memory the build freed
is handed back before the rows are made: a million rows fit in about 1 GB with workers.
"""

from __future__ import annotations

import gc
import re
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, islice
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Iterator, Mapping

from provision.errors import RosterReadError, UsageError
from provision.masking import mask
from provision.model import (
    DesiredUser,
    PhoneType,
    RosterRow,
    RowIssue,
    RowStatus,
    Severity,
)
from provision.roster import numbers as phones
from provision.roster.columns import PHONE_FIELDS, ColumnMap, match_columns
from provision.roster.files import FRAME_PATH, Record, Table, frame_table, open_table, sheet_names
from provision.roster.memory import give_back_freed_memory
from provision.roster.number_pool import (
    BatchNormaliser,
    CellKey,
    CellResult,
    PendingCells,
    default_workers,
    normalise_now,
)
from provision.roster.row_phones import SLOT, RowPhones

if TYPE_CHECKING:
    import pandas

__all__ = ["Roster", "read_roster", "user_key", "parse_sms_sign_in"]

_GUID = re.compile(r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?")
_UPN = re.compile(r"[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+")
_YES = frozenset({"yes", "y", "true", "1", "on", "enable", "enabled"})
_NO = frozenset({"no", "n", "false", "0", "off", "disable", "disabled"})
_NO_EXTRA: Mapping[str, str] = MappingProxyType({})

CHUNK_ROWS = 20_000
# A file this big holds more than one chunk in any layout seen: its workers are started
# before it is read (a CSV row is ~50 bytes, a workbook row ~30 compressed).
WARM_UP_BYTES = 1_500_000

_OK, _WARNING, _ERROR = 0, 1, 2
# (row, user, key, phones, sms_sign_in, passthrough): a row until its status is final.
_Draft = tuple[int, str, str | None, Mapping[PhoneType, str | None], bool | None, Mapping[str, str]]
_STATUS = (RowStatus.OK, RowStatus.WARNING, RowStatus.ERROR)
_FREED: _Draft = (0, "", None, {}, None, _NO_EXTRA)


@dataclass(frozen=True, slots=True)
class Roster:
    """A read roster. ``columns``: field -> header actually used; ``extra_columns``: the
    passthrough headers, in file order. ``issues`` are sorted by row."""

    path: Path
    sheet: str | None
    columns: Mapping[str, str]
    extra_columns: tuple[str, ...]
    rows: tuple[RosterRow, ...]
    users: Mapping[str, DesiredUser]
    issues: tuple[RowIssue, ...]
    blank_rows: int
    default_region: str | None = None
    phone_types: tuple[PhoneType, ...] = field(default=())

    def count(self, status: RowStatus) -> int:
        return sum(1 for r in self.rows if r.status is status)

    def status_counts(self) -> dict[RowStatus, int]:
        counts = Counter(r.status for r in self.rows)
        return {s: counts.get(s, 0) for s in RowStatus}

    def issue_counts(self, severity: Severity | None = None) -> Counter[str]:
        """How many issues of each code (optionally of one severity)."""
        return Counter(i.code for i in self.issues if severity is None or i.severity is severity)

    def issues_by_row(self) -> dict[int, tuple[RowIssue, ...]]:
        grouped: dict[int, list[RowIssue]] = {}
        for issue in self.issues:
            grouped.setdefault(issue.row, []).append(issue)
        return {row: tuple(found) for row, found in grouped.items()}


def user_key(value: str) -> str | None:
    """The matching key for a user cell: a case-folded UPN or a lower-case GUID."""
    text = value.strip()
    guid = _GUID.fullmatch(text)
    if guid:
        return guid.group(1).lower()
    if _UPN.fullmatch(text):
        folded = text.casefold()
        return text if folded == text else folded  # one string, not two, for a lower-case UPN
    return None


def parse_sms_sign_in(value: str) -> bool | None:
    """yes/no/true/false/1/0/enable(d)/disable(d)/on/off; blank -> None; else ValueError."""
    text = value.strip().casefold()
    if not text:
        return None
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ValueError(value)


def read_roster(
    source: str | Path | "pandas.DataFrame",
    *,
    columns: Mapping[str, str] | None = None,
    default_region: str | None = None,
    sheet: str | int | None = None,
    workers: int | None = None,
) -> Roster:
    """Read a roster file, or a DataFrame laid out like one. Raises RosterReadError when it
    can't be read at all (missing, unreadable, no header, no user column or no phone
    column), UsageError for an unknown default region or field name. Everything else is a
    ``RowIssue``.

    A DataFrame's column names are the headers and its rows are numbered 2..n+1, as if it
    were a sheet with its header on row 1; ``Roster.path`` is then ``<DataFrame>``.
    A workbook read without ``sheet`` whose first sheet has no roster header (a cover
    page) is read from the one sheet that has one; with several, the error names them.

    ``workers``: processes that normalise phone cells of files over ``CHUNK_ROWS`` rows
    (``None``: one per CPU, up to 4; ``0``: all in this process). The result is the same.
    """
    region = None
    if default_region:
        region = phones.region_for(default_region)
        if region is None:
            raise UsageError(f"unknown default region {default_region!r}: use an ISO 3166 code such as US, GB, DE")
    with BatchNormaliser(default_workers() if workers is None else workers) as normaliser:
        if isinstance(source, (str, PathLike)):
            path = Path(source)
            if _size(path) >= WARM_UP_BYTES:
                normaliser.warm_up()  # the workers start (~0.3 s each) while the file is read
            table = open_table(path, sheet)
        else:
            path = FRAME_PATH
            if len(source) > CHUNK_ROWS:
                normaliser.warm_up()
            table = frame_table(source)
        try:
            try:
                colmap = match_columns(table.header, columns)
            except RosterReadError as exc:
                if table.sheet is None or sheet is not None:
                    raise RosterReadError(f"{_where(path, table.sheet)}: {exc}") from None
                replacement = _roster_sheet(path, table.sheet, columns, exc)
                table.close()
                table = replacement
                colmap = match_columns(table.header, columns)
            with _no_cycle_collection():
                return _Builder(path, table.sheet, colmap, region).build(table.records, normaliser)
        finally:
            table.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # open_table says what is wrong with it


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while a roster is built: a million rows are
    millions of new, acyclic objects, and each full collection walks all of them (about
    half of the main process's time, measured). Reference counting still frees them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _where(path: Path, sheet: str | None) -> str:
    """The file (and sheet) an error is about: the one line must say which roster."""
    return f"{path.name} [sheet {sheet}]" if sheet else path.name


def _roster_sheet(path: Path, first: str, columns: Mapping[str, str] | None, why: RosterReadError) -> Table:
    """The one sheet of a workbook whose header names a user and a phone column, when the
    first sheet's doesn't (a cover page, a read-me); else an error naming the candidates."""
    found: list[str] = []
    for name in sheet_names(path):
        if name == first:
            continue
        try:
            table = open_table(path, name, header_only=True)  # an empty sheet raises too
            try:
                match_columns(table.header, columns)
            finally:
                table.close()
        except RosterReadError:
            continue
        found.append(name)
    if len(found) == 1:
        return open_table(path, found[0])
    listed = ", ".join(repr(n) for n in found)
    if found:
        hint = f"sheets {listed} hold a user and a phone column; pick one with --sheet (or the job's sheet setting)"
    else:
        hint = "no other sheet holds a user and a phone column either"
    raise RosterReadError(f"{_where(path, first)}: {why}; {hint}")


def _quote(value: str) -> str:
    """A cell for a reason sentence: masked when it could be a phone number."""
    if sum(c.isdigit() for c in value) >= 4:
        return mask(value)
    return repr(value[:20])


def _chunks(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while chunk := list(islice(records, size)):
        yield chunk


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each field sits in a record: the ColumnMap's positions, looked up once per file.
    ``phones``: (phone type, field name, position) per phone column present."""

    user: int
    region: int | None
    sms_sign_in: int | None
    mobile: int | None
    phones: tuple[tuple[PhoneType, str, int], ...]
    extra: tuple[tuple[int, str], ...]
    types: tuple[PhoneType, ...]  # the phone columns present: every row's RowPhones keys
    slots: tuple[tuple[int, PhoneType, str, int], ...]  # (RowPhones slot, type, field, position)

    @classmethod
    def of(cls, colmap: ColumnMap) -> _Layout:
        index = colmap.index
        return cls(
            user=index["user"],
            region=index.get("region"),
            sms_sign_in=index.get("sms_sign_in"),
            mobile=index.get("mobile"),
            phones=tuple((PHONE_FIELDS[f], f, index[f]) for f in colmap.phone_fields),
            extra=colmap.extra,
            types=tuple(PHONE_FIELDS[f] for f in colmap.phone_fields),
            slots=tuple((SLOT[PHONE_FIELDS[f]], PHONE_FIELDS[f], f, index[f]) for f in colmap.phone_fields),
        )


class _Builder:
    """Turns records into rows, then checks rows against each other.

    Per row it keeps a draft and a severity byte (``_OK`` / ``_WARNING`` / ``_ERROR``,
    only ever raised); the cross-row checks read and raise those, and ``_finish`` turns
    drafts into ``RosterRow`` values and the users whose rows have no error.
    """

    def __init__(self, path: Path, sheet: str | None, colmap: ColumnMap, region: str | None) -> None:
        self.path = path
        self.sheet = sheet
        self.colmap = colmap
        self.at = _Layout.of(colmap)
        self.region = region
        self.names = colmap.names
        self.issues: list[RowIssue] = []
        self.severity = bytearray()
        self.blank_rows = 0
        self.drafts: list[_Draft] = []
        self.first_by_key: dict[str, int] = {}
        self.repeats: dict[str, list[int]] = {}  # key -> draft positions, for users on several rows
        self.region_cache: dict[str, str | None] = {}

    def issue(self, i: int, row: int, field_name: str | None, severity: Severity, code: str, reason: str) -> None:
        column = self.names.get(field_name) if field_name else None
        self.issues.append(RowIssue(row, self.sheet, column, severity, code, reason))
        level = _ERROR if severity is Severity.ERROR else _WARNING
        if self.severity[i] < level:
            self.severity[i] = level

    def build(self, records: Iterator[Record], normaliser: BatchNormaliser) -> Roster:
        # Phone cells of a chunk are normalised (in worker processes for big files) while
        # the next chunks are read; rows are built in file order as results come back.
        pending: deque[tuple[list[Record], list[str | None], PendingCells]] = deque()
        depth = normaliser.workers + 1
        chunks = _chunks(records, CHUNK_ROWS)
        first = next(chunks, [])
        second = next(chunks, [])
        # A file of one chunk never starts a pool; a bigger one sends every chunk to it,
        # the first included, so the workers start while the rest is read.
        alone = not second
        for chunk in chain((first,), (second,) if second else (), chunks):
            regions, keys = self._phone_keys(chunk)
            results = normalise_now(keys) if alone else normaliser.submit(keys)
            pending.append((chunk, regions, results))
            while len(pending) > depth:
                chunk, regions, results = pending.popleft()
                self._rows(chunk, regions, results())
        while pending:
            chunk, regions, results = pending.popleft()
            self._rows(chunk, regions, results())
        self.first_by_key.clear()  # a million entries, not needed past here: freed before the users are made
        self._check_repeats()
        self._check_shared_mobiles()
        give_back_freed_memory()  # the file's buffers and the chunks' results, before the rows are made
        return self._finish()

    # -- one chunk of records --------------------------------------------------------------

    def _region(self, value: str) -> str | None:
        cache = self.region_cache
        if value not in cache:
            cache[value] = phones.region_for(value)
        return cache[value]

    def _phone_keys(self, chunk: list[Record]) -> tuple[list[str | None], list[CellKey]]:
        """Each record's region and the chunk's distinct phone cells."""
        region_at = self.at.region
        phone_at = self.at.phones
        default_region = self.region
        regions: list[str | None] = []
        keys: dict[CellKey, None] = {}
        for record in chunk:
            cells = record.cells
            region = default_region
            if region_at is not None and cells[region_at]:
                region = self._region(cells[region_at])
            regions.append(region)
            for phone_type, _, at in phone_at:
                raw = cells[at]
                if raw:
                    keys[(raw, region, phone_type, at in record.numeric)] = None
        return regions, list(keys)

    def _rows(self, chunk: list[Record], regions: list[str | None], results: Mapping[CellKey, CellResult]) -> None:
        """A draft per non-blank record of the chunk; blank records are only counted."""
        for record, region in zip(chunk, regions):
            if any(record.cells):
                self._add_row(record, region, results)
            else:
                self.blank_rows += 1

    # -- one row: what its own cells say -----------------------------------------------------

    def _add_row(self, record: Record, region: str | None, results: Mapping[CellKey, CellResult]) -> None:
        """The record's draft, and every problem the record shows on its own.

        A row's issues are recorded in a fixed order (user, region, phones, SMS sign-in,
        cells, then what needs a mobile), which ``Roster.issues`` keeps within the row.
        """
        at = self.at
        cells = record.cells
        row = record.row
        i = len(self.drafts)
        self.severity.append(_OK)
        user = cells[at.user]
        key = self._user_key(i, row, user)
        if region is None and at.region is not None and cells[at.region]:
            self._bad_region(i, row, cells[at.region])
        numbers = self._numbers(i, record, region, results)
        sms = self._sms_sign_in(i, row, cells[at.sms_sign_in]) if at.sms_sign_in is not None else None
        if record.uncached:
            self._uncached(i, row, record.uncached)
        if record.overflow:
            self._overflow(i, row, record.overflow)
        if (sms or numbers.get(PhoneType.ALTERNATE_MOBILE)) and (at.mobile is None or not cells[at.mobile]):
            self._without_mobile(i, row, numbers, sms)
        passthrough = {name: cells[position] for position, name in at.extra} if at.extra else _NO_EXTRA
        if key is not None:
            self._note_user(key, i)
        self.drafts.append((row, user, key, numbers, sms, passthrough))

    def _user_key(self, i: int, row: int, user: str) -> str | None:
        """The user cell's matching key, or None with an error for the row."""
        if not user:
            self.issue(i, row, "user", Severity.ERROR, "missing_user", "the row has no user (UPN or object id)")
            return None
        key = user_key(user)
        if key is None:
            self.issue(
                i, row, "user", Severity.ERROR, "invalid_user",
                "the user is neither a UPN (name@domain) nor an object id (GUID)",
            )
        return key

    def _bad_region(self, i: int, row: int, value: str) -> None:
        self.issue(
            i, row, "region", Severity.WARNING, "invalid_region",
            f"{_quote(value)} is not a country code (ISO 3166 like GB, or a calling code like +44); "
            "only numbers written with +country code can be read on this row",
        )

    def _numbers(
        self, i: int, record: Record, region: str | None, results: Mapping[CellKey, CellResult]
    ) -> RowPhones:
        """The row's phones in Graph's form (None: blank or unusable), and their problems."""
        cells = record.cells
        found: list[str | None] = [None, None, None]
        for slot, phone_type, field_name, at in self.at.slots:
            raw = cells[at]
            if not raw:
                continue
            graph, problem, reason, warning = results[(raw, region, phone_type, at in record.numeric)]
            found[slot] = graph
            if problem:
                self.issue(i, record.row, field_name, Severity.ERROR, problem, reason)
            elif warning:
                self.issue(i, record.row, field_name, Severity.WARNING, warning, reason)
        return RowPhones(self.at.types, found[0], found[1], found[2])

    def _sms_sign_in(self, i: int, row: int, value: str) -> bool | None:
        """The SMS sign-in cell (None: blank), or None with an error for the row."""
        try:
            return parse_sms_sign_in(value)
        except ValueError:
            self.issue(
                i, row, "sms_sign_in", Severity.ERROR, "invalid_sms_sign_in",
                f"{_quote(value)} is not yes, no or blank",
            )
            return None

    def _uncached(self, i: int, row: int, positions: frozenset[int]) -> None:
        by_position = {at: f for f, at in self.colmap.index.items()}
        for at in sorted(positions):
            field_name = by_position.get(at)
            column = self.names.get(field_name) if field_name else dict(self.colmap.extra).get(at)
            self.issues.append(
                RowIssue(
                    row, self.sheet, column, Severity.ERROR, "formula_without_value",
                    "the cell is a formula the workbook never calculated (open and save it in Excel first)",
                )
            )
            self.severity[i] = _ERROR

    def _overflow(self, i: int, row: int, overflow: int) -> None:
        self.issue(
            i, row, None, Severity.ERROR, "extra_cells",
            f"the row has {overflow} non-empty cell(s) beyond the header's columns "
            "(an unquoted delimiter inside a value?)",
        )

    def _without_mobile(self, i: int, row: int, numbers: Mapping[PhoneType, str | None], sms: bool | None) -> None:
        """Warnings for what needs a mobile on a row whose mobile cell is empty (or absent)."""
        if numbers.get(PhoneType.ALTERNATE_MOBILE):
            self.issue(
                i, row, "alternate_mobile", Severity.WARNING, "alternate_without_mobile",
                "an alternate mobile needs a mobile first; it can only be added if the user already has one",
            )
        if sms:
            self.issue(
                i, row, "sms_sign_in", Severity.WARNING, "sms_sign_in_without_mobile",
                "SMS sign-in works only on a mobile; it can only be enabled if the user already has one",
            )

    def _note_user(self, key: str, i: int) -> None:
        """Remember where each user is, so users on several rows can be checked at the end."""
        first = self.first_by_key.setdefault(key, i)
        if first != i:
            self.repeats.setdefault(key, [first]).append(i)

    # -- rows against each other -----------------------------------------------------------

    def _check_repeats(self) -> None:
        """A user on several rows is applied once if the rows agree; else none is applied."""
        drafts = self.drafts
        severity = self.severity
        for positions in self.repeats.values():
            first = drafts[positions[0]]
            identical = all(
                severity[p] != _ERROR and drafts[p][3] == first[3] and drafts[p][4] == first[4] for p in positions
            )
            if identical:
                continue
            rows = [drafts[p][0] for p in positions]
            broken = any(severity[p] == _ERROR for p in positions)
            why = "one of them has errors" if broken else "with different values"
            for p in positions:
                others = ", ".join(str(r) for r in rows if r != drafts[p][0])
                self.issue(
                    p, drafts[p][0], "user", Severity.ERROR, "duplicate_user_conflict",
                    f"the same user is also on row(s) {others}, {why}; none of them is applied",
                )

    def _check_shared_mobiles(self) -> None:
        """A mobile on the rows of several users: SMS sign-in can only work for one of them."""
        drafts = self.drafts
        severity = self.severity
        mobile = PhoneType.MOBILE
        owner: dict[str, str] = {}
        shared: dict[str, set[str]] = {}
        for i, (_, _, key, numbers, _, _) in enumerate(drafts):
            number = numbers.get(mobile)
            if number is None or key is None or severity[i] == _ERROR:
                continue
            first = owner.setdefault(number, key)
            if first != key:
                shared.setdefault(number, {first}).add(key)
        if not shared:
            return
        for i, (row, _, _, numbers, _, _) in enumerate(drafts):
            number = numbers.get(mobile)
            if number is not None and number in shared and severity[i] != _ERROR:
                self.issue(
                    i, row, "mobile", Severity.WARNING, "duplicate_mobile",
                    f"{mask(number)} is the mobile of {len(shared[number])} users; "
                    "SMS sign-in can work for only one of them",
                )

    def _finish(self) -> Roster:
        drafts = self.drafts
        sheet = self.sheet
        severity = self.severity
        rows: list[RosterRow] = []
        users: dict[str, DesiredUser] = {}
        for i in range(len(drafts)):
            row, user, key, numbers, sms, passthrough = drafts[i]
            level = severity[i]
            rows.append(RosterRow(row, sheet, user, key, numbers, sms, _STATUS[level], passthrough))
            if key is not None and level != _ERROR and key not in users:
                positions = self.repeats.get(key)  # this row's and later ones: none freed yet
                row_numbers = tuple(drafts[p][0] for p in positions) if positions else (row,)
                users[key] = DesiredUser(key, user, numbers, sms, row_numbers)
            drafts[i] = _FREED  # its memory goes to the rows being made, not on top of them
        drafts.clear()
        issues = sorted(self.issues, key=lambda issue: issue.row)
        return Roster(
            path=self.path,
            sheet=sheet,
            columns=dict(self.names),
            extra_columns=tuple(name for _, name in self.colmap.extra),
            rows=tuple(rows),
            users=users,
            issues=tuple(issues),
            blank_rows=self.blank_rows,
            default_region=self.region,
            phone_types=tuple(PHONE_FIELDS[f] for f in self.colmap.phone_fields),
        )
