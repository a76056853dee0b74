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
from typing import TYPE_CHECKING

from provision.model import FIELD_BY_PHONE_TYPE, PHONE_TYPES
from provision.roster.reader import Roster

if TYPE_CHECKING:
    import pandas

__all__ = ["roster_frame", "validation_table"]

Cell = int | str


def validation_table(roster: Roster) -> tuple[list[str], Iterator[list[Cell]]]:
    """The header and, lazily, one record per data row (phones in Graph form, blank as "")."""
    by_row = roster.issues_by_row()
    phone_fields = [FIELD_BY_PHONE_TYPE[t] for t in PHONE_TYPES]
    extra = [name for name in roster.extra_columns if name not in {"row", "user", "status", "problems", *phone_fields}]
    header = ["row", "user", *phone_fields, "status", "problems", *extra]

    def records() -> Iterator[list[Cell]]:
        for row in roster.rows:
            problems = " | ".join(
                f"{i.column + ': ' if i.column else ''}{i.reason} [{i.code}]" for i in by_row.get(row.row, ())
            )
            phones = [row.phones.get(t) or "" for t in PHONE_TYPES]
            yield [row.row, row.user, *phones, row.status.value, problems, *(row.extra.get(n, "") for n in extra)]

    return header, records()


def roster_frame(roster: Roster) -> "pandas.DataFrame":
    """``validation_table`` as a DataFrame: ``row`` as int64, every other column as pandas strings."""
    import pandas

    header, records = validation_table(roster)
    frame = pandas.DataFrame.from_records(list(records), columns=header)
    text = [name for name in header if name != "row"]
    return frame.astype({"row": "int64", **{name: "string" for name in text}})

