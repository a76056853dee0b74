"""What every tabular report shows, and how a value becomes a safe cell.

The column layout is shared by results.csv and results.xlsx (and the HTML table's idea of
a row), so the three can't drift apart. Cells are built in two steps: ``row_values`` gives
plain Python values (str, int, bool or None), then ``safe_text`` neutralises formula
injection in every text cell.

The injection rule (OWASP "CSV Injection"): a text cell whose first character is ``=``,
``+``, ``-``, ``@``, tab or carriage return gets a leading single quote, so Excel and
LibreOffice show it as text instead of evaluating it. Phone cells are the exception: a
value made only of ``+``, digits, spaces, ``x`` before an extension, and the ``X``/``*``
that masked numbers use (Graph's ``+1 2065550100``, ``+44 2079460958x12``) is left as is.
Such a string can't call a function, so it can't carry a payload; anything else in a phone
column is treated as free text. Numbers in the reports are unmasked (the reports are the
admin's record, like the roster); only the HTML page, which people forward, masks them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import compress, count, repeat
from typing import Literal

from provision.masking import mask, mask_in_text
from provision.model import FIELD_BY_PHONE_TYPE, PHONE_TYPES, PhoneType, RowOutcome
from provision.report.values import PhoneResult, RowResult

__all__ = [
    "Cell",
    "Column",
    "Layout",
    "OUTCOME_COLOURS",
    "PHONE_PARTS",
    "build_layout",
    "is_phone_shaped",
    "mask_phone",
    "mask_in_text",
    "neutralise",
    "row_values",
    "safe_text",
]

Cell = str | int | float | bool | None

# First characters that make a spreadsheet treat a cell as a formula (OWASP).
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# Graph form, older unspaced form, and masked reads ("+1 XXXXXXXX00", "+1 *******100").
_PHONE_SHAPE = re.compile(r"\+[0-9][0-9 X*]{0,30}(?:x[0-9]{1,10})?")

PHONE_PARTS: tuple[str, ...] = ("desired", "before", "after", "action", "outcome")
_NUMBER_PARTS = frozenset({"desired", "before", "after"})

# Fill colours (RGB hex) by outcome, shared by the xlsx cells and the HTML page.
# PLANNED has none: it is neither good nor bad, just not done yet.
OUTCOME_COLOURS: Mapping[RowOutcome, str | None] = {
    RowOutcome.APPLIED: "C6EFCE",  # green
    RowOutcome.UNCHANGED: "E7E6E6",  # grey
    RowOutcome.PARTIAL: "FFEB9C",  # amber
    RowOutcome.FAILED: "FFC7CE",  # red
    RowOutcome.SKIPPED: "BDD7EE",  # blue
    RowOutcome.INVALID: "C00000",  # dark red (white text)
    RowOutcome.PLANNED: None,
}


ColumnKind = Literal["int", "text", "phone", "outcome", "bool", "extra"]


@dataclass(frozen=True, slots=True)
class Column:
    """One report column: its header, what kind of value it holds, a width hint for xlsx."""

    name: str
    kind: ColumnKind
    width: int
    phone_type: PhoneType | None = None
    part: str | None = None  # one of PHONE_PARTS for per-phone columns
    extra_key: str | None = None  # the passthrough column's roster name


@dataclass(frozen=True, slots=True)
class Layout:
    columns: tuple[Column, ...]

    @property
    def headers(self) -> list[str]:
        return [safe_text(c.name) for c in self.columns]


def _fixed_head() -> list[Column]:
    return [
        Column("row", "int", 7),
        Column("sheet", "text", 12),
        Column("user", "text", 34),
        Column("outcome", "outcome", 11),
        Column("reason", "text", 48),
    ]


def _phone_columns() -> list[Column]:
    cols: list[Column] = []
    for pt in PHONE_TYPES:
        prefix = FIELD_BY_PHONE_TYPE[pt]
        for part in PHONE_PARTS:
            if part in _NUMBER_PARTS:
                cols.append(Column(f"{prefix}_{part}", "phone", 18, pt, part))
            elif part == "outcome":
                cols.append(Column(f"{prefix}_{part}", "outcome", 11, pt, part))
            else:
                cols.append(Column(f"{prefix}_{part}", "text", 9, pt, part))
    return cols


def _fixed_tail() -> list[Column]:
    return [
        Column("sms_action", "text", 11),
        Column("sms_state", "text", 20),
        Column("error_code", "text", 26),
        Column("error_message", "text", 60),
        Column("http_status", "int", 11),
        Column("request_id", "text", 38),
        Column("verified", "bool", 9),
    ]


def build_layout(rows: Iterable[RowResult]) -> Layout:
    """The columns for these rows: fixed ones, then passthrough columns in first-seen order.

    A passthrough column whose name clashes with a fixed one is renamed ``extra_<name>``
    so no header appears twice.
    """
    fixed = _fixed_head() + _phone_columns() + _fixed_tail()
    taken = {c.name.casefold() for c in fixed}
    extras: dict[str, None] = {}
    for r in rows:
        for key in r.extra:
            extras.setdefault(key, None)
    extra_cols: list[Column] = []
    for key in extras:
        name = key
        while name.casefold() in taken:
            name = f"extra_{name}"
        taken.add(name.casefold())
        extra_cols.append(Column(name, "extra", max(10, min(40, len(name) + 2)), extra_key=key))
    return Layout(tuple(fixed + extra_cols))


def _plain(value: object) -> Cell:
    # StrEnum members become their wire string, so writers see only built-in types.
    if isinstance(value, Enum):
        return str(value.value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _row_value(r: RowResult, c: Column) -> Cell:
    if c.phone_type is not None and c.part is not None:
        p: PhoneResult | None = r.phones.get(c.phone_type)
        # No PhoneResult: the roster does not speak about this phone type; blank cells.
        return None if p is None else _plain(getattr(p, c.part))
    if c.extra_key is not None:
        return r.extra.get(c.extra_key)
    return _plain(getattr(r, c.name))


def row_values(r: RowResult, layout: Layout) -> list[Cell]:
    """Plain values of one row in column order; text cells already neutralised."""
    out: list[Cell] = []
    for c in layout.columns:
        v = _row_value(r, c)
        if isinstance(v, str):
            v = safe_text(v, phone=c.kind == "phone")
        out.append(v)
    return out


def is_phone_shaped(value: str) -> bool:
    return _PHONE_SHAPE.fullmatch(value) is not None


def neutralise(value: str) -> str:
    """Prefix a single quote when a spreadsheet would read the value as a formula."""
    return "'" + value if value.startswith(_FORMULA_TRIGGERS) else value


def safe_text(value: str, *, phone: bool = False) -> str:
    if phone and is_phone_shaped(value):
        return value
    return neutralise(value)


def safe_column(values: Sequence[str], *, phone: bool = False) -> list[str]:
    """``safe_text`` over a whole column: only the cells that start like a formula are
    looked at one by one (a million-row table: the rest is copied in C)."""
    out = list(values)
    for k in compress(count(), map(str.startswith, values, repeat(_FORMULA_TRIGGERS))):
        out[k] = safe_text(out[k], phone=phone)
    return out


# --- masking (the HTML page only) -------------------------------------------------------


def mask_phone(number: str | None) -> str:
    """``+1 2065550100`` -> ``+1 *******100``, the project's one masking rule (phones.mask)."""
    return mask(number) if number else ""

