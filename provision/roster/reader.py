"""Roster files -> desired phones per user, and every row's problems.

``read_roster`` reads a CSV or Excel roster (``provision.roster.files``), finds its columns
(``provision.roster.columns``), normalises every phone cell (``provision.roster.numbers``) and
checks the rows against each other. No row disappears: each data row is a row of the
``Roster`` (``provision.roster.result``: kept as columns, a ``RosterRow`` made when read)
and its user is in ``Roster.users`` unless the row has an error ``RowIssue``; blank rows
are counted. Row numbers are the ones a spreadsheet shows (the header is row 1 when it
is on the first line).

The file arrives in column-wise batches (``files.Batch``, ``BATCH_ROWS`` records). A
batch's distinct phone cells (cell, region, phone type, number cell) go out for
normalising (to worker processes for big files) while the next batches are read; cells
met several times in an earlier batch are not sent again (up to ``KNOWN_CELLS`` answers are
kept). Each cell's answer is read back by position (``_Prepared.first``), not by its key.
When its answers are back, every check a row's own cells decide runs over whole columns
(user keys, regions, SMS flags parsed once per distinct cell, the answers mapped back,
the warnings that need a mobile) and only rows with a problem are looked at one by one;
then the batch's columns are appended to the roster's and its new users noted, by the
position of their first row. The checks across rows (a user on several rows, a mobile
shared by users) run at the end and only touch the rows they concern.

``files`` parses the file (a CSV through pyarrow's streaming reader, a workbook through
python-calamine, a big sheet's first rows on their own: ``sheet_head``); the checks here are
plain Python over lists: the dedupe and mapping of phone cells was measured through Arrow
(join the key parts, ``dictionary_encode``, ``take`` the answers back) at 0.76 s per 1M rows
against 0.46 s for the dicts here, on a machine whose other core runs a worker. The source may also be a pandas
DataFrame (``provision.roster.files.frame_table``). The cyclic garbage collector is
paused while a roster is built; the workers are stopped before the last batch's rows are made,
and a million-row CSV peaks at about 0.65 GB for the whole process tree (bench.roster_read).
"""

from __future__ import annotations

import gc
import re
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, compress, count, repeat
from operator import attrgetter, gt, itemgetter, ne, not_
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Sequence, cast

from provision.errors import RosterReadError, UsageError
from provision.masking import mask
from provision.model import PhoneType, RowIssue, Severity, make_row_issue
from provision.roster import numbers as phones
from provision.roster.columns import PHONE_FIELDS, ColumnMap, match_columns
from provision.roster.files import (
    BATCH_ROWS,
    FRAME_PATH,
    Batch,
    HeadMismatch,
    Table,
    frame_table,
    matching,
    open_table,
    sheet_names,
)
from provision.roster.memory import give_back_freed_memory
from provision.roster.number_pool import (
    Answers,
    BatchNormaliser,
    CellKey,
    CellNote,
    PendingCells,
    default_workers,
    normalise_now,
)
from provision.roster.result import STATUS, DesiredUsers, Roster, RosterRows, RowColumns
from provision.roster.row_phones import SLOT

if TYPE_CHECKING:
    import pandas

__all__ = ["Roster", "read_roster", "user_key", "parse_sms_sign_in"]

_GUID = re.compile(r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?")
_UPN = re.compile(r"[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+")
# A UPN in printable ASCII without capitals (RE2, for ``files.matching``): ``_UPN`` matches
# it too and it is its own key, so most user cells need no look in Python.
_PLAIN_UPN = r"^[!-?\[-~]+@(?:[!-\-/-?\[-~]+\.)+[!-\-/-?\[-~]+$"
_YES = frozenset({"yes", "y", "true", "1", "on", "enable", "enabled"})
_NO = frozenset({"no", "n", "false", "0", "off", "disable", "disabled"})

# Answers kept across batches, of cells met more than once in a batch (``_remember``), so a
# number repeated across the file (a site's switchboard) is not normalised again. Bounded:
# a dict bigger than the CPU's caches is slow to fill and look up in (measured when every
# answer was kept: 200,000 of them cost the main process 0.3 s more per million rows).
KNOWN_CELLS = 50_000
# Distinct cells of a one-batch file worth sending to forked workers: ~0.1 s of work in
# this process, ~0.05 s on two workers.
POOLED_CELLS = 5_000
# A file this big (~6,000 CSV rows) may hold that many: its workers are started before it
# is read when they start forked (~6 ms each), before pyarrow or anything else may have
# started a thread that rules a fork out. Smaller, an idle fork cost more than it saved
# (measured on a 3,000-row CSV: 0.18 -> 0.21 s; 10,000 rows: 0.40 -> 0.30 s; 20,000 rows:
# 0.70 -> 0.48 s, each read in a fresh process on 2 cores).
FORKED_WARM_UP_BYTES = 300_000
# A file this big holds more than one chunk in any layout seen: its workers are started
# before it is read (a CSV row is ~50 bytes, a workbook row ~30 compressed).
WARM_UP_BYTES = 1_500_000

_OK, _WARNING, _ERROR = range(len(STATUS))  # a row's severity byte: an index into result.STATUS


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

    ``workers``: processes that normalise phone cells of files over ``BATCH_ROWS`` rows
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
            size = _size(path)
            if size >= WARM_UP_BYTES or (size >= FORKED_WARM_UP_BYTES and normaliser.forks()):
                normaliser.warm_up()  # the workers start while the file is read
            table = open_table(path, sheet)
        else:
            path = FRAME_PATH
            if len(source) > BATCH_ROWS:
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
                try:
                    return _Builder(path, table.sheet, colmap, region).build(table.batches, normaliser)
                except HeadMismatch:
                    table.close()
                    table = open_table(path, table.sheet, head=False)
                    colmap = match_columns(table.header, columns)
                    return _Builder(path, table.sheet, colmap, region).build(table.batches, normaliser)
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
    half of the main process's time, measured). Reference counting still frees them.

    When it resumes, the new objects are moved straight to the oldest generation (a
    freeze and unfreeze: two list splices). Left young, the first collection after would
    walk all of them only to promote them (~0.4 s for a million rows, measured), and again
    on their way to the oldest generation. Not done when the caller has frozen objects of
    its own: unfreezing would hand those back to the collector."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
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


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each field sits in a batch: the ColumnMap's positions, looked up once per file.
    ``phones``: (phone type, field name, position) per phone column present, in RowPhones'
    slot order."""

    user: int
    region: int | None
    sms_sign_in: int | None
    mobile: int | None
    phones: tuple[tuple[PhoneType, str, int], ...]
    extra: tuple[tuple[int, str], ...]
    types: tuple[PhoneType, ...]  # the phone columns present: every row's RowPhones keys
    column_at: Mapping[int, str]  # position -> header, for issues about any cell

    @classmethod
    def of(cls, colmap: ColumnMap) -> _Layout:
        index = colmap.index
        fields = sorted(colmap.phone_fields, key=lambda f: SLOT[PHONE_FIELDS[f]])
        return cls(
            user=index["user"],
            region=index.get("region"),
            sms_sign_in=index.get("sms_sign_in"),
            mobile=index.get("mobile"),
            phones=tuple((PHONE_FIELDS[f], f, index[f]) for f in fields),
            extra=colmap.extra,
            types=tuple(PHONE_FIELDS[f] for f in colmap.phone_fields),
            column_at={**dict(colmap.extra), **{at: colmap.names[f] for f, at in index.items()}},
        )


@dataclass(slots=True)
class _Prepared:
    """A batch whose phone cells are out for normalising: its blank records dropped, each
    record's region, and where each phone cell's answer will be.

    ``cells``: the batch's non-blank phone cells as normalisation keys, one column after
    another (``present``: each column's records holding one, ``starts``: where each
    column's cells begin); ``first``: for each cell, the position in ``cells`` of the first
    cell equal to it, where its answer is kept (an answer per distinct cell, read back by
    position, never by hashing a key again). ``sent``: the first positions of the keys
    out for normalising, in their order; ``known``: (first position, answer) of keys an
    earlier batch answered. Blank cells are left out from the start: a roster's phone
    columns are often mostly blank (an alternate mobile), and each blank cell went
    through every step below (measured on bench.roster_read's half-blank columns:
    ~0.2 s less CPU in this process per 1M rows)."""

    batch: Batch
    regions: list[str | None] | None  # None: every record has the default region
    bad_regions: list[int]
    cells: list[CellKey]
    present: list[list[int]]
    starts: list[int]
    first: list[int]
    sent: Sequence[int]
    known: list[tuple[int, _Known]]


_Found = list[tuple[int, RowIssue]]  # (index in the batch, issue)
_Known = tuple[str | None, CellNote | None]  # an answer kept for later batches: Graph form, note


class _Builder:
    """Turns batches into rows column by column, then checks rows against each other.

    Per batch: every check a row's own cells decide runs over whole columns, each row gets
    its severity byte (``_OK`` / ``_WARNING`` / ``_ERROR``), its cells join the roster's
    columns and the first row of a user without error is noted. The checks across rows
    (repeated users, shared mobiles) run at the end and only touch the rows they concern.
    """

    def __init__(self, path: Path, sheet: str | None, colmap: ColumnMap, region: str | None) -> None:
        self.path = path
        self.sheet = sheet
        self.colmap = colmap
        self.at = _Layout.of(colmap)
        self.region = region
        self.names = colmap.names
        # The rows, one list per field (``result.RowColumns``): no object per row.
        self.numbers: list[int] = []
        self.user_cells: list[str] = []
        self.keys: list[str | None] = []
        self.phone_columns: dict[PhoneType, list[str | None]] = {t: [] for t, _, _ in self.at.phones}
        self.sms: list[bool | None] | None = [] if self.at.sms_sign_in is not None else None
        self.extras: tuple[list[str], ...] = tuple([] for _ in self.at.extra)
        self.severity = bytearray()
        self.issues: list[RowIssue] = []
        self.blank_rows = 0
        # Every user key met, and those met on more than one row: sets, not a dict of
        # positions (``_note_users``); the rows of the users met again are found at the end.
        self.user_seen: set[str] = set()
        self.user_repeated: set[str] = set()
        self.merged: dict[str, tuple[int, ...]] = {}  # a user's identical rows' numbers
        self.later: list[int] = []  # their rows after the first
        # Mobiles as the rows come: where each is first, and the later rows of those met
        # again (a user's other rows, or other users': shared). Rows with an error are
        # left out only at the end, when every row's severity is known.
        self.first_at: dict[str, int] = {}
        self.again: dict[str, list[int]] = {}
        self.masked: dict[str, str] = {}  # a mobile met again -> its masked form, for the reasons
        # number -> (its rows met again when looked at, its duplicate_mobile issues by position)
        self.shared: dict[str, tuple[int, list[tuple[int, RowIssue]]]] = {}
        self.raised: list[int] = []  # rows given an issue across rows (``_raise``)
        self.region_cache: dict[str, str | None] = {"": region}
        self.sms_cache: dict[str, bool | None] = {}
        self.answered: dict[CellKey, _Known] = {}  # answers kept across batches (``_remember``)
        self.remembering = True
        self.bad_sms: set[str] = set()

    def build(self, batches: Iterator[Batch], normaliser: BatchNormaliser) -> Roster:
        # Phone cells of a batch are normalised (in worker processes for big files) while
        # the next batches are read; rows are made in file order as results come back.
        pending: deque[tuple[_Prepared, PendingCells]] = deque()
        depth = normaliser.workers + 1
        first = next(batches, None)
        second = next(batches, None)
        # A file of more than one batch sends every batch to the pool, the first included,
        # so the workers start while the rest is read. A file of one batch does so only
        # when its cells are many and the workers were started cheaply before it was read
        # (forked: ``read_roster``); spawning them (~70 ms of CPU each) would cost more
        # than they save.
        alone = second is None
        ahead = (b for b in (first, second) if b is not None)
        for batch in chain(ahead, batches):
            prepared, keys = self._prepare(batch)
            pooled = not alone or (len(keys) >= POOLED_CELLS and normaliser.started)
            pending.append((prepared, normaliser.submit(keys) if pooled else normalise_now(keys)))
            while len(pending) > depth:
                prepared, results = pending.popleft()
                self._make_rows(prepared, results())
        self.answered.clear()  # nothing more to send
        self.remembering = False
        while pending:
            prepared, results = pending.popleft()
            if not pending:
                # While the workers end the last batch: the mobiles shared so far, to redo
                # at the end only where the last rows or the user checks change them.
                self._shared_mobiles(self.again)
            answers = results()
            if not pending:  # the last answers in: the workers go before the last rows are made
                normaliser.close()
            self._make_rows(prepared, answers)
        self._check_repeats()
        self._check_shared_mobiles()
        give_back_freed_memory()  # the file's buffers and the batches' results
        return self._finish()

    # -- one batch: what each row's own cells say, column by column -------------------------

    def _prepare(self, batch: Batch) -> tuple[_Prepared, list[CellKey]]:
        """The batch without its blank records, and its distinct phone cells."""
        batch = self._without_blanks(batch)
        at = self.at
        regions: list[str | None] | None = None
        bad_regions: list[int] = []
        if at.region is not None:
            column = batch.columns[at.region]
            cache = self.region_cache
            for value in set(column).difference(cache):
                cache[value] = phones.region_for(value)
            regions = list(map(cache.__getitem__, column))
            if None in regions:
                bad_regions = [k for k, (value, region) in enumerate(zip(column, regions)) if region is None and value]
        cells: list[CellKey] = []
        present: list[list[int]] = []
        starts = [0]
        for phone_type, _, position in at.phones:
            raw = batch.columns[position]
            filled = list(compress(count(), raw))
            numbers = batch.numeric.get(position)
            flags = map(numbers.__contains__, filled) if numbers else repeat(False)
            in_region = map(regions.__getitem__, filled) if regions is not None else repeat(self.region)
            cells += zip(compress(raw, raw), in_region, repeat(phone_type), flags)
            present.append(filled)
            starts.append(len(cells))
        where: dict[CellKey, int] = {}
        first = list(map(where.setdefault, cells, count()))  # each cell -> where it is first
        seen = self.answered.keys() & where.keys()  # a set operation: over the smaller of the two
        if not seen:
            return _Prepared(batch, regions, bad_regions, cells, present, starts, first, list(where.values()), []), list(where)
        answered = self.answered
        known = [(where[key], answered[key]) for key in seen]
        fresh = list(map(not_, map(seen.__contains__, where)))
        keys = cast("list[CellKey]", list(compress(where, fresh)))
        return _Prepared(batch, regions, bad_regions, cells, present, starts, first, list(compress(where.values(), fresh)), known), keys

    def _without_blanks(self, batch: Batch) -> Batch:
        """The batch without its blank records (only counted); most rows have a user, so
        only the others are looked at cell by cell."""
        columns = batch.columns
        blank = [k for k, user in enumerate(columns[self.at.user]) if not user and not any(c[k] for c in columns)]
        if not blank:
            return batch
        self.blank_rows += len(blank)
        dropped = set(blank)
        keep = [k for k in range(len(batch.rows)) if k not in dropped]
        new = {old: k for k, old in enumerate(keep)}
        return Batch(
            [batch.rows[k] for k in keep],
            [[column[k] for k in keep] for column in columns],
            {p: frozenset(new[k] for k in ks if k in new) for p, ks in batch.numeric.items()},
            {new[k]: v for k, v in batch.uncached.items() if k in new},
            {new[k]: v for k, v in batch.overflow.items() if k in new},
        )

    def _remember(self, prepared: _Prepared, graphs: dict[int, str | None], notes: dict[int, CellNote]) -> None:
        """Keep the answers of cells met more than once in a batch for the batches after it,
        up to ``KNOWN_CELLS`` of them: a number repeated across the file (a site's
        switchboard) is met several times in each batch, and is normalised once per that
        many such cells. A cell met once in a batch is most likely met once in the file
        (or a few times: each normalised again, a few microseconds), so keeping every
        answer would cost more, in a dict bigger than the CPU's caches, than it saves."""
        if not self.remembering:
            return
        first = prepared.first
        repeated = set(compress(first, map(ne, first, count())))  # where repeated cells are first
        if len(self.answered) + len(repeated) > KNOWN_CELLS:
            self.answered.clear()
        cells = prepared.cells
        for at in repeated:
            self.answered[cells[at]] = (graphs[at], notes.get(at))

    def _make_rows(self, prepared: _Prepared, answers: Answers) -> None:
        # Each distinct cell's answer at its first position: a small dict of ints.
        sent = prepared.sent
        graphs = dict(zip(sent, answers.graphs))
        notes = dict(zip(map(sent.__getitem__, answers.notes), answers.notes.values()))
        for p, (graph, note) in prepared.known:
            graphs[p] = graph
            if note is not None:
                notes[p] = note
        self._remember(prepared, graphs, notes)
        batch = prepared.batch
        at = self.at
        rows = list(batch.rows)  # one int per row number, shared by the row, its user and issues
        columns = batch.columns
        users = columns[at.user]
        found: _Found = []
        keys = self._user_keys(users, rows, found, matching(batch, at.user, _PLAIN_UPN))
        for k in prepared.bad_regions:
            self._add(found, k, rows[k], "region", Severity.WARNING, "invalid_region", _bad_region(columns[at.region][k]))  # type: ignore[index]
        first, starts, size = prepared.first, prepared.starts, len(rows)
        phones = {
            t: self._phones(name, first[starts[n] : starts[n + 1]], prepared.present[n], size, graphs, notes, rows, found)
            for n, (t, name, _) in enumerate(at.phones)
        }
        sms = self._sms_sign_in(columns[at.sms_sign_in], rows, found) if at.sms_sign_in is not None else None
        for k in sorted(batch.uncached):
            for position in sorted(batch.uncached[k]):
                found.append((k, RowIssue(
                    rows[k], self.sheet, at.column_at.get(position), Severity.ERROR, "formula_without_value",
                    "the cell is a formula the workbook never calculated (open and save it in Excel first)",
                )))
        for k in sorted(batch.overflow):
            self._add(
                found, k, rows[k], None, Severity.ERROR, "extra_cells",
                f"the row has {batch.overflow[k]} non-empty cell(s) beyond the header's columns "
                "(an unquoted delimiter inside a value?)",
            )
        self._without_mobile(columns[at.mobile] if at.mobile is not None else None, phones, sms, rows, found)
        found.sort(key=_first)  # stable: a row's issues keep the order they were found in
        severity = bytearray(len(rows))
        for k, issue in found:
            level = _ERROR if issue.severity is Severity.ERROR else _WARNING
            if severity[k] < level:
                severity[k] = level
        self.issues.extend(map(_second, found))
        self._add_rows(batch._replace(rows=rows), keys, phones, sms, severity)

    def _add(self, found: _Found, k: int, row: int, field_name: str | None, severity: Severity, code: str, reason: str) -> None:
        column = self.names.get(field_name) if field_name else None
        found.append((k, make_row_issue(row, self.sheet, column, severity, code, reason)))

    def _user_keys(self, users: list[str], rows: Sequence[int], found: _Found, plain: list[bool] | None) -> list[str | None]:
        """Each user cell's matching key (``user_key``): the UPNs in one pass over the column,
        then the rest (object ids, errors) one by one. ``plain``: the cells known to be
        their own key already (``_PLAIN_UPN``), found in C; the others are looked at here."""
        upn = _UPN.fullmatch
        looked: Sequence[int] = range(len(users)) if plain is None else list(compress(count(), map(not_, plain)))
        texts = users if plain is None else list(map(users.__getitem__, looked))
        found_keys: list[str | None] = [
            (user if (folded := user.casefold()) == user else folded) if upn(user) else None for user in texts
        ]
        keys: list[str | None]
        if plain is None:
            keys = found_keys
        else:
            keys = list(users)
            deque(map(keys.__setitem__, looked, found_keys), maxlen=0)
        for k in [k for k, key in zip(looked, found_keys) if key is None]:
            user = users[k]
            if not user:
                self._add(found, k, rows[k], "user", Severity.ERROR, "missing_user", "the row has no user (UPN or object id)")
                continue
            keys[k] = user_key(user)
            if keys[k] is None:
                self._add(
                    found, k, rows[k], "user", Severity.ERROR, "invalid_user",
                    "the user is neither a UPN (name@domain) nor an object id (GUID)",
                )
        return keys

    def _phones(
        self,
        field_name: str,
        first: list[int],
        present: list[int],
        size: int,
        graphs: dict[int, str | None],
        notes: dict[int, CellNote],
        rows: Sequence[int],
        found: _Found,
    ) -> list[str | None]:
        """A phone column in Graph's form (None: blank or unusable), and its cells' problems;
        ``first``: where the answer of each of its non-blank cells is, ``present``: their
        records (``_Prepared``)."""
        if notes:
            sheet = self.sheet
            column = self.names.get(field_name)
            for j in compress(count(), map(notes.__contains__, first)):
                problem, reason, warning = notes[first[j]]
                k = present[j]
                found.append((k, make_row_issue(
                    rows[k], sheet, column, Severity.ERROR if problem else Severity.WARNING, problem or warning, reason,  # type: ignore[arg-type]
                )))
        values = list(map(graphs.__getitem__, first))
        if len(present) == size:
            return values
        out: list[str | None] = [None] * size  # blank cells
        deque(map(out.__setitem__, present, values), maxlen=0)
        return out

    def _sms_sign_in(self, column: list[str], rows: Sequence[int], found: _Found) -> list[bool | None]:
        """The SMS sign-in column (None: blank), each distinct cell parsed once; an
        unreadable cell is None with an error for its row."""
        cache = self.sms_cache
        for value in set(column).difference(cache):
            try:
                cache[value] = parse_sms_sign_in(value)
            except ValueError:
                cache[value] = None
                self.bad_sms.add(value)
        values = list(map(cache.__getitem__, column))
        bad = self.bad_sms
        if bad and not bad.isdisjoint(column):
            for k in [k for k, value in enumerate(column) if value in bad]:
                self._add(
                    found, k, rows[k], "sms_sign_in", Severity.ERROR, "invalid_sms_sign_in",
                    f"{_quote(column[k])} is not yes, no or blank",
                )
        return values

    def _without_mobile(
        self,
        mobile_cells: list[str] | None,
        graphs: Mapping[PhoneType, list[str | None]],
        sms: list[bool | None] | None,
        rows: Sequence[int],
        found: _Found,
    ) -> None:
        """Warnings for what needs a mobile on rows whose mobile cell is empty (or absent)."""
        sheet = self.sheet
        needs: list[tuple[Sequence[object] | None, str, str, str]] = [
            (graphs.get(PhoneType.ALTERNATE_MOBILE), "alternate_mobile", "alternate_without_mobile",
             "an alternate mobile needs a mobile first; it can only be added if the user already has one"),
            (sms, "sms_sign_in", "sms_sign_in_without_mobile",
             "SMS sign-in works only on a mobile; it can only be enabled if the user already has one"),
        ]
        for values, field_name, code, reason in needs:
            if values is None:
                continue
            column = self.names.get(field_name)
            # bool(value) > bool(mobile cell): a value, and no mobile beside it
            hits = values if mobile_cells is None else map(gt, map(bool, values), map(bool, mobile_cells))
            found.extend([
                (k, make_row_issue(rows[k], sheet, column, Severity.WARNING, code, reason)) for k in compress(count(), hits)
            ])

    def _add_rows(
        self,
        batch: Batch,
        keys: list[str | None],
        graphs: Mapping[PhoneType, list[str | None]],
        sms: list[bool | None] | None,
        severity: bytearray,
    ) -> None:
        """The batch's rows added to the columns, its new users, and what the checks
        across rows need."""
        columns = batch.columns
        base = len(self.numbers)
        self.numbers += batch.rows
        self.user_cells += columns[self.at.user]
        self.keys += keys
        for phone_type, values in graphs.items():
            self.phone_columns[phone_type] += values
        if self.sms is not None and sms is not None:
            self.sms += sms
        for (position, _), kept in zip(self.at.extra, self.extras):
            kept += columns[position]
        self.severity += severity
        self._note_users(keys)
        mobiles = graphs.get(PhoneType.MOBILE)
        if mobiles is not None:
            again = self.again
            for number, i, _ in _met_again(self.first_at, mobiles, base):
                later = again.get(number)
                if later is None:
                    again[number] = [i]
                    self.masked[number] = mask(number)  # now, while the workers still run
                else:
                    later.append(i)

    def _note_users(self, keys: list[str | None]) -> None:
        """The batch's user keys added to those met, and any met again noted. Set updates
        in C: most keys are new, and a dict of each key's first row (the way this was done
        before) cost ~0.25 s more per million users, in inserts and position objects."""
        named = cast("list[str]", list(compress(keys, keys)))
        seen = self.user_seen
        again = [] if seen.isdisjoint(named) else [key for key in named if key in seen]
        before = len(seen)
        seen.update(named)
        if len(seen) - before + len(again) != len(named):  # a new key on several rows of the batch
            again += [key for key, n in Counter(named).items() if n > 1]
        self.user_repeated.update(again)

    # -- rows against each other -----------------------------------------------------------

    def _raise(self, i: int, issue: RowIssue) -> None:
        """An issue found across rows: recorded, and the row's status raised if it must be."""
        self.issues.append(issue)
        self.raised.append(i)
        level = _ERROR if issue.severity is Severity.ERROR else _WARNING
        if self.severity[i] < level:
            self.severity[i] = level

    def _check_repeats(self) -> None:
        """A user on several rows is applied once if the rows agree; else none is applied."""
        numbers = self.numbers
        severity = self.severity
        values: list[Sequence[object]] = [*self.phone_columns.values()]
        if self.sms is not None:
            values.append(self.sms)
        column = self.names.get("user")
        self.user_seen.clear()
        repeated = self.user_repeated
        repeats: dict[str, list[int]] = {}
        if repeated:
            keys = self.keys
            for p in compress(count(), map(repeated.__contains__, keys)):
                repeats.setdefault(cast(str, keys[p]), []).append(p)
        for key, positions in repeats.items():
            first = positions[0]
            identical = all(severity[p] != _ERROR and all(v[p] == v[first] for v in values) for p in positions)
            rows = tuple(numbers[p] for p in positions)
            if identical:
                self.merged[key] = rows
                self.later += positions[1:]
                continue
            broken = any(severity[p] == _ERROR for p in positions)
            why = "one of them has errors" if broken else "with different values"
            for p in positions:
                others = ", ".join(str(r) for r in rows if r != numbers[p])
                self._raise(p, RowIssue(
                    numbers[p], self.sheet, column, Severity.ERROR, "duplicate_user_conflict",
                    f"the same user is also on row(s) {others}, {why}; none of them is applied",
                ))

    def _shared_mobiles(self, numbers: Iterable[str]) -> None:
        """The ``duplicate_mobile`` issues of these numbers, as the rows' severity stands:
        a mobile on the rows of several users, over its rows without error (a user on
        several rows may have lost them since); each number's reason written once, from
        its masked form (made as the rows came). Kept per number with the count of its
        rows met again, so that a later look redoes only the numbers that changed."""
        severity = self.severity
        numbers_of = self.numbers
        keys = self.keys
        sheet = self.sheet
        column = self.names.get("mobile")
        first_at = self.first_at
        again = self.again
        shared = self.shared
        for number in numbers:
            later = again[number]
            live = [p for p in (first_at[number], *later) if severity[p] != _ERROR]
            users = len({keys[p] for p in live})
            if users < 2:
                shared[number] = (len(later), [])
                continue
            reason = f"{self.masked[number]} is the mobile of {users} users; SMS sign-in can work for only one of them"
            shared[number] = (len(later), [(p, make_row_issue(numbers_of[p], sheet, column, Severity.WARNING, "duplicate_mobile", reason)) for p in live])

    def _check_shared_mobiles(self) -> None:
        """A mobile on the rows of several users: SMS sign-in can only work for one of them.
        Only mobiles met on more than one row are looked at. Most were already looked at
        while the workers normalised the last batch (``build``); this runs after them, on
        one core, so it redoes only the numbers met again since or on a row in error since
        (``_raise``)."""
        again = self.again
        shared = self.shared
        dirty = [number for number, later in again.items() if shared.get(number, (-1,))[0] != len(later)]
        mobiles = self.phone_columns.get(PhoneType.MOBILE)
        if mobiles is not None and self.raised:
            dirty += {number for p in self.raised if (number := mobiles[p]) is not None and number in again}
        self._shared_mobiles(dirty)
        severity = self.severity
        issues = self.issues
        for _, found in shared.values():
            for p, issue in found:
                issues.append(issue)
                if severity[p] == _OK:
                    severity[p] = _WARNING
        self.first_at.clear()
        shared.clear()

    def _finish(self) -> Roster:
        issues = sorted(self.issues, key=_row_of)  # stable: each row's issues keep their order
        self.issues.clear()
        phones = self.phone_columns
        columns = RowColumns(
            self.sheet,
            self.at.types,
            self.numbers,
            self.user_cells,
            self.keys,
            phones.get(PhoneType.MOBILE),
            phones.get(PhoneType.ALTERNATE_MOBILE),
            phones.get(PhoneType.OFFICE),
            self.sms,
            self.severity,
            tuple(name for _, name in self.at.extra),
            self.extras,
        )
        return Roster(
            path=self.path,
            sheet=self.sheet,
            columns=dict(self.names),
            extra_columns=tuple(name for _, name in self.colmap.extra),
            rows=RosterRows(columns),
            users=DesiredUsers(columns, self.later, self.merged),
            issues=tuple(issues),
            blank_rows=self.blank_rows,
            default_region=self.region,
            phone_types=tuple(PHONE_FIELDS[f] for f in self.colmap.phone_fields),
        )


def _met_again(first: dict[str, int], values: list[str | None], base: int) -> Iterator[tuple[str, int, int]]:
    """(value, position, position of its first row) for each row of a batch (its first at
    ``base``) whose value, not None, is already in ``first``; the others' positions are
    added to it. In C loops but the last: a million rows' mobiles, most of them met once."""
    present = list(compress(count(base), values))  # a value is a non-empty string or None
    named = cast("list[str]", list(compress(values, values)))
    firsts = list(map(first.setdefault, named, present))
    return compress(zip(named, present, firsts), map(ne, firsts, present))


def _bad_region(value: str) -> str:
    return (
        f"{_quote(value)} is not a country code (ISO 3166 like GB, or a calling code like +44); "
        "only numbers written with +country code can be read on this row"
    )


_first = itemgetter(0)
_second = itemgetter(1)
_row_of = attrgetter("row")
