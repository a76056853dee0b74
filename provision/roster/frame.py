"""A checked roster as a table: the rows ``provision validate --out`` writes, and the same
rows as a pandas DataFrame for scripts, notebooks and schedulers.

``validation_table(roster)`` is the one definition of that table (columns ``row, user,
mobile, alternate_mobile, office, status, problems`` and the passthrough columns, phones in
Graph form); the CLI's CSV and ``provision.api.validate`` both render it. This module imports
pandas only when a DataFrame is asked for (a CSV roster's cells are parsed through pandas by
``provision.roster.files``, which imports it when it opens one; a workbook is read without it).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import repeat
from typing import TYPE_CHECKING

from provision.model import FIELD_BY_PHONE_TYPE, PHONE_TYPES
from provision.roster.reader import Roster

if TYPE_CHECKING:
    import pandas

__all__ = ["roster_frame", "validation_table"]

Cell = int | str


def validation_table(roster: Roster) -> tuple[list[str], Iterator[list[Cell]]]:
    """The header and, lazily, one record per data row (phones in Graph form, blank as "").
    Read from the roster's columns: no ``RosterRow`` is made."""
    by_row = roster.issues_by_row()
    columns = roster.rows.columns
    phone_fields = [FIELD_BY_PHONE_TYPE[t] for t in PHONE_TYPES]
    extra = [name for name in roster.extra_columns if name not in {"row", "user", "status", "problems", *phone_fields}]
    header = ["row", "user", *phone_fields, "status", "problems", *extra]
    # A header named twice keeps its last column's cells, as a row's ``extra`` mapping does.
    kept = dict(zip(columns.extra_names, columns.extras))
    blank = repeat("")
    phones = [_text(columns.phone_column(t)) if t in columns.types else blank for t in PHONE_TYPES]
    extras = [kept[name] if name in kept else blank for name in extra]

    def problems(row: int) -> str:
        return " | ".join(f"{i.column + ': ' if i.column else ''}{i.reason} [{i.code}]" for i in by_row.get(row, ()))

    def records() -> Iterator[list[Cell]]:
        statuses = (status.value for status in columns.statuses())
        extra_cells: Iterator[tuple[str, ...]] = zip(*extras) if extras else repeat(())
        for row, user, phone_cells, status, more in zip(columns.numbers, columns.users, zip(*phones), statuses, extra_cells):
            yield [row, user, *phone_cells, status, problems(row), *more]

    return header, records()


def _text(values: list[str | None] | None) -> Iterator[str]:
    return repeat("") if values is None else (value or "" for value in values)


def roster_frame(roster: Roster) -> "pandas.DataFrame":
    """``validation_table`` as a DataFrame: ``row`` as int64, every other column as pandas strings."""
    import pandas

    header, records = validation_table(roster)
    frame = pandas.DataFrame.from_records(list(records), columns=header)
    text = [name for name in header if name != "row"]
    return frame.astype({"row": "int64", **{name: "string" for name in text}})

