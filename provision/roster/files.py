"""A roster file's cells, as text, one record at a time, with their spreadsheet row numbers.

Delimited text (.csv/.tsv/.txt, delimiter sniffed among ``,`` ``;`` tab ``|``; UTF-8
with or without BOM, UTF-16 with BOM, else cp1252) goes through the csv module: it
hands over each record as it is, so a ragged row becomes a row problem rather than a
skipped or fatal line, and memory stays flat for a million rows. Excel workbooks
(.xlsx/.xlsm) go through openpyxl in read-only mode with cached formula values; numbers
come out as their digits (never ``2065550100.0``) and are marked so a lost ``+`` can be
recovered. Whatever the extension says, the first bytes decide the format.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Protocol

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from provision.errors import RosterReadError

DELIMITERS = (",", ";", "\t", "|")
_NO_INDEXES: frozenset[int] = frozenset()
_SNIFF_CHARS = 64 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[ >/]")

# csv's default limit (128 KiB) is about the only thing that could stop a real roster.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class Record:
    """One row of the file. ``numeric``: positions of spreadsheet number cells;
    ``uncached``: formula cells with no saved value; ``overflow``: non-empty cells past
    the header's width."""

    row: int
    cells: tuple[str, ...]
    numeric: frozenset[int] = _NO_INDEXES
    uncached: frozenset[int] = _NO_INDEXES
    overflow: int = 0


class _Closable(Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Table:
    """An open roster file: its header, and its records as they are read. ``close()`` it."""

    header: tuple[str, ...]
    header_row: int
    records: Iterator[Record]
    sheet: str | None
    encoding: str | None = None
    delimiter: str | None = None
    closables: tuple[_Closable, ...] = ()

    def close(self) -> None:
        """Release the file (also needed when ``records`` was never started)."""
        for closable in self.closables:
            closable.close()


def open_table(path: Path, sheet: str | int | None = None) -> Table:
    """Open a roster file; raise RosterReadError when it can't be read at all."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise RosterReadError(f"roster file not found: {path}") from None
    except IsADirectoryError:
        raise RosterReadError(f"the roster path is a folder, not a file: {path}") from None
    except OSError as exc:
        raise RosterReadError(f"can't read the roster file {path}: {exc.strerror or exc}") from None
    if magic == _ZIP_MAGIC:
        return _open_workbook(path, sheet)
    if magic == _OLE_MAGIC:
        raise RosterReadError(f"{path.name} is a legacy .xls workbook; save it as .xlsx or CSV")
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        raise RosterReadError(f"{path.name} is not a valid Excel workbook")
    return _open_delimited(path)


# -- delimited text -----------------------------------------------------------------------


def _open_delimited(path: Path) -> Table:
    encoding = _detect_encoding(path)
    f = path.open("r", encoding=encoding, newline="")
    try:
        sample = f.read(_SNIFF_CHARS)
        if "\x00" in sample:
            raise RosterReadError(f"{path.name} looks like a binary file, not a CSV roster")
        delimiter = _sniff_delimiter(sample, prefer_tab=path.suffix.lower() == ".tsv")
        f.seek(0)
        reader = csv.reader(f, delimiter=delimiter)
        header_row, first = _first_nonblank(reader)
    except BaseException:
        f.close()
        raise
    if first is None:
        f.close()
        raise RosterReadError(f"{path.name} has no header row (the file is empty)")
    header = tuple(h.strip() for h in first)
    return Table(
        header=header,
        header_row=header_row,
        records=_delimited_records(reader, header_row, len(header)),
        sheet=None,
        encoding=encoding,
        delimiter=delimiter,
        closables=(f,),
    )


def _detect_encoding(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        if _decodes(f, "utf-8"):
            return "utf-8"
        # cp1252 leaves five bytes undefined; latin-1 decodes anything.
        return "cp1252" if _decodes(f, "cp1252") else "latin-1"


def _decodes(f: BinaryIO, encoding: str) -> bool:
    """Whether the whole file decodes in ``encoding`` (read in 1 MiB steps, not at once)."""
    f.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while chunk := f.read(1 << 20):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _sniff_delimiter(sample: str, *, prefer_tab: bool) -> str:
    lines = sample.splitlines()[:-1] if len(sample) >= _SNIFF_CHARS else sample.splitlines()
    lines = [line for line in lines if line.strip()][:50]
    if not lines:
        return "\t" if prefer_tab else ","
    best, best_score = ("\t" if prefer_tab else ","), (0, 0.0, 0)
    for delimiter in DELIMITERS:
        rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
        width = len(rows[0]) if rows else 0
        if width < 2:
            continue
        consistent = sum(1 for r in rows if len(r) == width) / len(rows)
        # A delimiter that splits the header and keeps rows the header's width wins.
        score = (1, consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _first_nonblank(reader: Iterator[list[str]]) -> tuple[int, list[str] | None]:
    for number, record in enumerate(reader, start=1):
        if any(cell.strip() for cell in record):
            return number, record
    return 0, None


def _delimited_records(reader: Iterator[list[str]], header_row: int, width: int) -> Iterator[Record]:
    # csv.reader yields [] for an empty line, so record n is spreadsheet row n.
    row = header_row
    for cells in reader:
        row += 1
        count = len(cells)
        if count == width:
            yield Record(row, tuple([c.strip() for c in cells]))
        elif count < width:
            yield Record(row, tuple([c.strip() for c in cells] + [""] * (width - count)))
        else:
            stripped = [c.strip() for c in cells]
            overflow = sum(1 for c in stripped[width:] if c)
            yield Record(row, tuple(stripped[:width]), overflow=overflow)


# -- Excel --------------------------------------------------------------------------------


def _open_workbook(path: Path, sheet: str | int | None) -> Table:
    # A file object, not the path: openpyxl refuses paths whose extension isn't .xlsx,
    # and a workbook saved as "roster.csv" is still a workbook.
    handles = [path.open("rb")]
    try:
        values_book = openpyxl.load_workbook(handles[0], read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, InvalidFileException) as exc:
        handles[0].close()
        raise RosterReadError(f"{path.name} is not a readable Excel workbook ({exc})") from None
    try:
        title = _pick_sheet(values_book.sheetnames, sheet, path)
    except RosterReadError:
        values_book.close()
        handles[0].close()
        raise
    values = values_book[title]
    values.reset_dimensions()  # some exporters write a wrong <dimension>; don't trust it
    books = [values_book]
    formulas_sheet = None
    if _has_formulas(path):
        # The cached value and the formula live in two different openpyxl modes: a formula
        # with no cached value reads as an empty cell unless the formulas are read too.
        handles.append(path.open("rb"))
        books.append(openpyxl.load_workbook(handles[-1], read_only=True, data_only=False))
        formulas_sheet = books[-1][title]
        formulas_sheet.reset_dimensions()
    rows = _sheet_records(values.iter_rows(values_only=True), formulas_sheet)
    header_row, header_values = 0, None
    for record in rows:
        if any(record.cells):
            header_row, header_values = record.row, record.cells
            break
    if header_values is None:
        for closable in (*books, *handles):
            closable.close()
        raise RosterReadError(f"sheet {title!r} of {path.name} has no header row (the sheet is empty)")
    header = tuple(header_values)
    return Table(
        header=header,
        header_row=header_row,
        records=_fit(rows, len(header)),
        sheet=title,
        closables=(*books, *handles),
    )


def _pick_sheet(names: list[str], sheet: str | int | None, path: Path) -> str:
    available = ", ".join(repr(n) for n in names)
    if sheet is None:
        return names[0]
    if isinstance(sheet, str):
        if sheet in names:
            return sheet
        folded = [n for n in names if n.casefold() == sheet.strip().casefold()]
        if folded:
            return folded[0]
        if not sheet.strip().isdigit():
            raise RosterReadError(f"{path.name} has no sheet {sheet!r}; sheets: {available}")
        sheet = int(sheet)
    if not 0 <= sheet < len(names):
        raise RosterReadError(f"{path.name} has no sheet number {sheet} (0-based); sheets: {available}")
    return names[sheet]


def _has_formulas(path: Path) -> bool:
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                with z.open(name) as f:
                    tail = b""
                    while chunk := f.read(1 << 20):
                        if _FORMULA_TAG.search(tail + chunk):
                            return True
                        tail = chunk[-8:]
    return False


def _sheet_records(values: Iterator[tuple[object, ...]], formulas_sheet: Any) -> Iterator[Record]:
    """Records of the values sheet; ``formulas_sheet`` (an openpyxl worksheet, or None when the
    workbook has no formula) marks formula cells that have no cached value."""
    formulas = formulas_sheet.iter_rows(values_only=True) if formulas_sheet is not None else None
    for number, row in enumerate(values, start=1):
        cells: list[str] = []
        numeric: set[int] = set()
        for i, value in enumerate(row):
            text, is_number = cell_text(value)
            cells.append(text)
            if is_number:
                numeric.add(i)
        uncached: frozenset[int] = _NO_INDEXES
        if formulas is not None:
            formula_row = next(formulas, ())
            missing = {
                i
                for i, f in enumerate(formula_row)
                if (i >= len(row) or row[i] is None) and _is_formula(f)
            }
            uncached = frozenset(missing) if missing else _NO_INDEXES
            for i in missing:
                if i >= len(cells):
                    cells.extend([""] * (i + 1 - len(cells)))
        yield Record(number, tuple(cells), frozenset(numeric) if numeric else _NO_INDEXES, uncached)


def _is_formula(value: object) -> bool:
    return isinstance(value, (ArrayFormula, DataTableFormula)) or (isinstance(value, str) and value.startswith("="))


def _fit(rows: Iterator[Record], width: int) -> Iterator[Record]:
    for record in rows:
        count = len(record.cells)
        if count == width:
            yield record
        elif count < width:
            yield Record(record.row, record.cells + ("",) * (width - count), record.numeric, record.uncached)
        else:
            overflow = sum(1 for c in record.cells[width:] if c)
            yield Record(
                record.row,
                record.cells[:width],
                frozenset(i for i in record.numeric if i < width),
                frozenset(i for i in record.uncached if i < width),
                overflow,
            )


def cell_text(value: object) -> tuple[str, bool]:
    """A cell's text, and whether it was a number (so its digits may lack a ``+``)."""
    if value is None:
        return "", False
    if isinstance(value, str):
        return value.strip(), False
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e17:
            return str(int(value)), True
        return repr(value), True
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat(), False
    return str(value).strip(), False
