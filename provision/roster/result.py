"""What ``read_roster`` returns: a ``Roster`` kept as columns, its rows and users made on demand.

A million-row roster was a million ``RosterRow``, ``RowPhones`` and ``DesiredUser`` values,
made by the reader's process while the phone workers shared its two cores: ~0.65 s of its
~4.7 s of CPU, and ~180 MB (measured on bench.roster_read). The reader now keeps one list per field
(``RowColumns``); ``Roster.rows`` is a read-only sequence of ``RosterRow`` and
``Roster.users`` a read-only mapping of ``DesiredUser``, each value made when it is asked
for. Those who read whole columns (the validation table, row counts by status, the users'
keys) read the lists.

A value made twice is equal, not identical: a ``RosterRow`` is a frozen value, and no
caller keeps rows by identity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, ItemsView, Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from itertools import compress, count, groupby, tee
from operator import attrgetter, itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import cast, overload

from provision.model import DesiredUser, PhoneType, RosterRow, RowIssue, RowStatus, Severity, make_desired_user, make_roster_row
from provision.roster.row_phones import RowPhones

__all__ = ["DesiredUsers", "Roster", "RosterRows", "RowColumns", "STATUS"]

STATUS = (RowStatus.OK, RowStatus.WARNING, RowStatus.ERROR)  # a row's severity byte -> its status
_LEVEL = {status: level for level, status in enumerate(STATUS)}
_ERROR = _LEVEL[RowStatus.ERROR]
_WANTED = bytes(int(level != _ERROR) for level in range(256))  # severity byte -> 1: a row that may give its user
_NO_EXTRA: Mapping[str, str] = MappingProxyType({})
_row_of = attrgetter("row")


@dataclass(frozen=True, slots=True)
class RowColumns:
    """Every data row of a roster, one list per field, in file order.

    ``numbers``: the rows' numbers as a spreadsheet shows them; ``keys``: each user cell's
    matching key (None: unusable); a phone list is None when the roster has no such column,
    a value None when the cell is blank or unusable; ``sms`` is None without an SMS column;
    ``severity``: a byte per row, an index into ``STATUS``; ``extras``: one list per
    passthrough column, named by ``extra_names``."""

    sheet: str | None
    types: tuple[PhoneType, ...]  # the roster's phone columns: every row's phones' keys
    numbers: list[int]
    users: list[str]
    keys: list[str | None]
    mobile: list[str | None] | None
    alternate: list[str | None] | None
    office: list[str | None] | None
    sms: list[bool | None] | None
    severity: bytearray
    extra_names: tuple[str, ...] = ()
    extras: tuple[list[str], ...] = ()

    def phones(self, i: int) -> RowPhones:
        return RowPhones(
            self.types,
            None if self.mobile is None else self.mobile[i],
            None if self.alternate is None else self.alternate[i],
            None if self.office is None else self.office[i],
        )

    def phone_column(self, phone_type: PhoneType) -> list[str | None] | None:
        if phone_type is PhoneType.MOBILE:
            return self.mobile
        return self.alternate if phone_type is PhoneType.ALTERNATE_MOBILE else self.office

    def row(self, i: int) -> RosterRow:
        extra = dict(zip(self.extra_names, (column[i] for column in self.extras))) if self.extras else _NO_EXTRA
        sms = None if self.sms is None else self.sms[i]
        return make_roster_row(
            self.numbers[i], self.sheet, self.users[i], self.keys[i], self.phones(i), sms, STATUS[self.severity[i]], extra
        )


class RosterRows(Sequence[RosterRow]):
    """A roster's data rows, each ``RosterRow`` made when it is read; ``columns`` holds them."""

    __slots__ = ("columns",)

    def __init__(self, columns: RowColumns) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns.numbers)

    @overload
    def __getitem__(self, index: int) -> RosterRow: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[RosterRow, ...]: ...
    def __getitem__(self, index: int | slice) -> RosterRow | tuple[RosterRow, ...]:
        if isinstance(index, slice):
            return tuple(map(self.columns.row, range(len(self))[index]))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("roster row index out of range")
        return self.columns.row(index)

    def __iter__(self) -> Iterator[RosterRow]:
        return map(self.columns.row, range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (RosterRows, tuple, list)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # like a list

    def __repr__(self) -> str:
        return f"<{len(self):,} roster rows>"


class DesiredUsers(Mapping[str, DesiredUser]):
    """What the roster wants per user key, in the order the users first appear; each
    ``DesiredUser`` is made from its first row's columns when it is read.

    A user is wanted when its first row ends without error: a row with an error of its own
    never gives its user (a row without a usable user key always has one), and a conflict
    between a user's rows marks all of them (first included) as errors. So the wanted
    users are the rows without error, less ``later``: the rows after the first of users on
    several identical rows, whose row numbers are in ``merged``.

    The users are found from the rows, not kept in a dict by key: the reader never builds
    one (a million users cost it ~0.25 s of inserts, measured), and the planner walks them
    once in row order. A lookup by key builds the index on its first use."""

    __slots__ = ("columns", "later", "merged", "_wanted", "_index")

    def __init__(self, columns: RowColumns, later: Collection[int], merged: dict[str, tuple[int, ...]]) -> None:
        self.columns = columns
        self.later = later
        self.merged = merged
        self._wanted: int | None = None
        self._index: dict[str, int] | None = None

    def _rows_wanted(self) -> bytearray:
        """A byte per row: 1 on the first row of each wanted user."""
        wanted = self.columns.severity.translate(_WANTED)
        for p in self.later:
            wanted[p] = 0
        return wanted

    def _positions(self) -> Iterator[int]:
        return compress(count(), self._rows_wanted())

    def _keyed(self) -> Iterator[tuple[str, int]]:
        keys, positions = tee(self._positions())
        return zip(cast("Iterator[str]", map(self.columns.keys.__getitem__, keys)), positions)

    def _made(self, key: str, i: int) -> DesiredUser:
        columns = self.columns
        rows = self.merged.get(key) or (columns.numbers[i],)
        sms = None if columns.sms is None else columns.sms[i]
        return make_desired_user(key, columns.users[i], columns.phones(i), sms, rows)

    def _all(self) -> Iterator[tuple[str, DesiredUser]]:
        # One pass over the rows: the planner walks every user once.
        made = self._made
        for key, i in self._keyed():
            yield key, made(key, i)

    def _lookup(self) -> dict[str, int]:
        if self._index is None:
            self._index = dict(self._keyed())
        return self._index

    def __getitem__(self, key: str) -> DesiredUser:
        return self._made(key, self._lookup()[key])

    def items(self) -> ItemsView[str, DesiredUser]:
        return _Items(self)

    def values(self) -> ValuesView[DesiredUser]:
        return _Values(self)

    def __contains__(self, key: object) -> bool:
        return key in self._lookup()

    def __iter__(self) -> Iterator[str]:
        return map(self.columns.keys.__getitem__, self._positions())  # type: ignore[arg-type]  # a wanted row has a key

    def __len__(self) -> int:
        if self._wanted is None:
            self._wanted = self._rows_wanted().count(1)
        return self._wanted

    def __repr__(self) -> str:
        return f"<{len(self):,} roster users>"


class _Items(ItemsView[str, DesiredUser]):
    _mapping: DesiredUsers

    def __iter__(self) -> Iterator[tuple[str, DesiredUser]]:
        return self._mapping._all()


class _Values(ValuesView[DesiredUser]):
    _mapping: DesiredUsers

    def __iter__(self) -> Iterator[DesiredUser]:
        return map(itemgetter(1), self._mapping._all())


def _no_rows() -> RosterRows:
    return RosterRows(RowColumns(None, (), [], [], [], None, None, None, None, bytearray()))


def _no_users() -> DesiredUsers:
    return DesiredUsers(_no_rows().columns, (), {})


@dataclass(frozen=True, slots=True)
class Roster:
    """A read roster. ``columns``: field -> header actually used; ``extra_columns``: the
    passthrough headers, in file order. ``issues`` are sorted by row."""

    path: Path
    sheet: str | None
    columns: Mapping[str, str]
    extra_columns: tuple[str, ...]
    rows: RosterRows = field(default_factory=_no_rows)
    users: DesiredUsers = field(default_factory=_no_users)
    issues: tuple[RowIssue, ...] = ()
    blank_rows: int = 0
    default_region: str | None = None
    phone_types: tuple[PhoneType, ...] = ()

    def count(self, status: RowStatus) -> int:
        return self.rows.columns.severity.count(_LEVEL[status])

    def status_counts(self) -> dict[RowStatus, int]:
        return {status: self.count(status) for status in RowStatus}

    def issue_counts(self, severity: Severity | None = None) -> Counter[str]:
        """How many issues of each code (optionally of one severity)."""
        return Counter(i.code for i in self.issues if severity is None or i.severity is severity)

    def issues_by_row(self) -> dict[int, tuple[RowIssue, ...]]:
        return {row: tuple(found) for row, found in groupby(self.issues, key=_row_of)}  # issues are sorted by row

