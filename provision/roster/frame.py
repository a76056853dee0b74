"""A checked roster as a table: the rows ``provision validate --out`` writes, and the same
rows as a pandas DataFrame for scripts, notebooks and schedulers.

``validation_table(roster)`` is the one definition of that table (columns ``row, user,
mobile, alternate_mobile, office, status, problems`` and the passthrough columns, phones in
Graph form); the CLI's CSV and ``provision.api.validate`` both render it. This module imports
pandas only when a DataFrame is asked for (a CSV roster's cells are parsed through pandas by
``provision.roster.files``, which imports it when it opens one; a workbook is read without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby, repeat
from operator import attrgetter
from typing import TYPE_CHECKING

from provision.model import FIELD_BY_PHONE_TYPE, PHONE_TYPES, RowIssue
from provision.roster.reader import Roster
from provision.roster.result import STATUS

if TYPE_CHECKING:
    import pandas

__all__ = ["roster_frame", "validation_table"]

Cell = int | str


def validation_table(roster: Roster) -> tuple[list[str], list[Sequence[Cell]]]:
    """The header and the table's columns, one list per column, each a row per data row:
    ``row`` holds ints, the others text (a blank phone or passthrough cell is ""). Made from
    the roster's columns: no ``RosterRow`` is made, and a column is read whole. Some columns
    are the roster's own lists: read them, don't change them."""
    columns = roster.rows.columns
    size = len(columns.numbers)
    phone_fields = [FIELD_BY_PHONE_TYPE[t] for t in PHONE_TYPES]
    extra = [name for name in roster.extra_columns if name not in {"row", "user", "status", "problems", *phone_fields}]
    header = ["row", "user", *phone_fields, "status", "problems", *extra]
    # A header named twice keeps its last column's cells, as a row's ``extra`` mapping does.
    kept = dict(zip(columns.extra_names, columns.extras))
    phones = [_text(columns.phone_column(t), size) for t in PHONE_TYPES]
    texts = [status.value for status in STATUS]
    statuses = list(map(texts.__getitem__, columns.severity))
    said = {row: " | ".join(map(_said, issues)) for row, issues in groupby(roster.issues, key=attrgetter("row"))}
    problems = list(map(said.get, columns.numbers, repeat("")))
    extras = [kept[name] if name in kept else [""] * size for name in extra]
    return header, [columns.numbers, columns.users, *phones, statuses, problems, *extras]  # the roster's own lists: read only


def _said(issue: RowIssue) -> str:
    return f"{issue.column + ': ' if issue.column else ''}{issue.reason} [{issue.code}]"


def _text(values: list[str | None] | None, size: int) -> list[str]:
    return [""] * size if values is None else [value or "" for value in values]


def roster_frame(roster: Roster) -> "pandas.DataFrame":
    """``validation_table`` as a DataFrame: ``row`` as int64, every other column as pandas strings."""
    import pandas

    header, columns = validation_table(roster)
    frame = pandas.DataFrame(dict(enumerate(columns)))  # by position: a passthrough name may repeat
    frame.columns = pandas.Index(header)
    return frame.astype({"row": "int64", **{name: "string" for name in header if name != "row"}})
