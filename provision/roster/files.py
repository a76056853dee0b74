"""A roster's cells, as text, with their spreadsheet row numbers: in column-wise batches
(``Table.batches``, what the reader works on) or one record at a time (``Table.records``).

Delimited text (.csv/.tsv/.txt, delimiter sniffed among ``,`` ``;`` tab ``|``; UTF-8
with or without BOM, UTF-16 with BOM, else cp1252; a PowerShell ``#TYPE`` line above the
header skipped) is parsed by pyarrow's streaming CSV reader (``pyarrow.csv.open_csv``), a
block of about ``BATCH_ROWS`` lines at a time: every cell kept as text (no NA words, blank
lines kept as rows, line breaks inside quotes kept in their cell) and turned into Python
strings a batch at a time. From the first block pyarrow refuses as it is (a row wider or
narrower than the header, a runaway cell) to the end, the file is read by the csv module
instead: it hands over each record as it is, so a ragged row becomes a row problem with its
row number rather than a skipped or fatal line. Excel workbooks (.xlsx/.xlsm) are read by
python-calamine (the library pandas' ``read_excel(engine="calamine")`` wraps), which keeps
the cell types: numbers come out as their digits (never ``2065550100.0``) and are marked so
a lost ``+`` or leading zero can be recovered; openpyxl only looks at the formulas of a
workbook that has some; a workbook without formulas is converted column by column. A
DataFrame (``frame_table``) is read as if it were a sheet. Whatever the extension says, the
first bytes decide the format.

Why not ``pandas.read_csv(engine="pyarrow")``, measured on the bench's million-row CSV
(``bench/roster_read``): it parses the whole file before handing over a row (the worker
processes idled ~0.5 s at the start), it can't ask pyarrow for ``newlines_in_values`` (a
line break inside quotes at a block edge was split silently, so every quoted file was
pre-scanned), and its import costs ~0.25 s of CPU and ~85 MB per process. The same parser
called directly streams: the first batch is out after ~10 ms and the main process spends
~1 s less CPU per million rows. Workbooks skip pandas too: on the bench's 100,000-row
workbook ``read_excel(engine="calamine", dtype=object)`` took ~0.5 s of CPU against ~0.3 s
for calamine's own parse and rows (the same cells), and the whole read peaked at ~240 MB in
the main process through pandas, ~150 MB without. pandas carries rosters and results in
and out of the Python API as DataFrames (``provision.api``, ``frame_table``).

A file that can't be read as a roster at all (damaged or truncated workbook, a zip that is
no workbook, a password-protected or legacy workbook, binary data, text that doesn't
decode, a header wider than ``MAX_COLUMNS``, a cell longer than ``MAX_CELL_CHARS``)
raises ``RosterReadError`` naming the file, the row when it is known, and the reason,
whenever the damage shows: at open, or half-way through the rows. Only the exceptions the
csv module, zipfile/zlib, the XML parser, calamine and openpyxl raise on bad input are
translated, and only around their own calls.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import lzma
import warnings
import zipfile
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain, islice, repeat
from pathlib import Path
from typing import Any, BinaryIO, Callable, Generator, Iterator, NamedTuple, Protocol, Sequence, TypeVar
from xml.etree.ElementTree import ParseError

import python_calamine

from provision.errors import RosterReadError
from provision.masking import mask_in_text
from provision.roster.sheet_head import holds_formula, sheet_head, sheet_part

DELIMITERS = (",", ";", "\t", "|")
# Excel's own limit for one cell: no roster cell typed or exported by Excel is longer, so a
# longer one is damage (in a CSV, usually an unclosed quote that swallowed the rows after
# it) and the file is refused rather than read without the rows it hides.
MAX_CELL_CHARS = 32_767
# Real HR extracts have tens of columns, a few hundred at most; every other column is
# carried per row as passthrough, so a far wider header would cost memory for nothing.
MAX_COLUMNS = 1_000
_NO_INDEXES: frozenset[int] = frozenset()
_SNIFF_CHARS = 64 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls, or an encrypted (password-protected) .xlsx
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")  # the OLE stream of an encrypted workbook
# Records per Batch: big enough that per-batch costs vanish, small enough that the first
# batch's phone cells reach the worker processes early and the last one's rows are quick.
BATCH_ROWS = 20_000
EDGE_ROWS = 5_000  # a workbook's first and last batches (``_batch_sizes``)
_HEADER_SEARCH_ROWS = 1_000  # rows of a sheet searched for a header when only that is wanted
_REASON_CHARS = 160  # of a library's error message, in ours
_T = TypeVar("_T")

# The csv module enforces the cell bound itself, at no cost per row, and a runaway field
# stops growing there (bounded memory). No other module of provision parses CSV.
csv.field_size_limit(MAX_CELL_CHARS)

# What the libraries raise on a damaged workbook, and only that: zipfile (bad or truncated
# archive, unsupported compression, RuntimeError for a member flagged encrypted), zlib/lzma
# (corrupt compressed data; bz2 raises OSError), the XML parser, openpyxl (its own error,
# and ValueError/TypeError/IndexError/KeyError from its parsers and typed descriptors fed
# malformed values or missing parts), EOFError/OSError on a short member.
_DAMAGED_WORKBOOK: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    RuntimeError,
    zlib.error,
    lzma.LZMAError,
    ParseError,
    python_calamine.CalamineError,
    NotImplementedError,
    EOFError,
    OSError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
)
# A head copy of a workbook (``sheet_head``) calamine can't read: the whole parse says why, if it fails too.
_HEAD_UNREADABLE: tuple[type[BaseException], ...] = (RosterReadError, *_DAMAGED_WORKBOOK)
# What the csv module and the text decoder raise on a file that isn't delimited text.
_DAMAGED_TEXT: tuple[type[BaseException], ...] = (csv.Error, UnicodeDecodeError, OSError)

# openpyxl warns on stderr about parts it drops from odd workbooks; those lines are not
# ours to show (and could quote cell text), and the reader reports real damage itself.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")


class Record(NamedTuple):
    """One row of the file. ``numeric``: positions of spreadsheet number cells;
    ``uncached``: formula cells with no saved value; ``overflow``: non-empty cells past
    the header's width. A named tuple: a million of them are made per million rows."""

    row: int
    cells: tuple[str, ...]
    numeric: frozenset[int] = _NO_INDEXES
    uncached: frozenset[int] = _NO_INDEXES
    overflow: int = 0


class Batch(NamedTuple):
    """Consecutive records, column-wise: what the reader works on. ``rows``: their spreadsheet
    row numbers; ``columns``: one list of cell texts per header column; the rest is sparse:
    ``numeric``: column position -> indexes (in this batch) of spreadsheet number cells;
    ``uncached``: index -> positions of formula cells with no saved value; ``overflow``:
    index -> non-empty cells past the header's width."""

    rows: Sequence[int]
    columns: list[list[str]]
    numeric: dict[int, frozenset[int]]
    uncached: dict[int, frozenset[int]]
    overflow: dict[int, int]
    arrow: Any = None  # the same columns as pyarrow arrays, when pyarrow parsed them (``matching``)


def matching(batch: Batch, position: int, pattern: str) -> list[bool] | None:
    """Whether each cell of a column matches an RE2 ``pattern`` (``^``/``$`` anchored), in
    C over the batch's pyarrow column; None when the batch has none (a workbook, a
    DataFrame, the tolerant CSV path): the caller then checks the cells itself. For a
    check the reader would otherwise run per cell in Python: 1M cells in ~0.05 s."""
    if batch.arrow is None:
        return None
    import pyarrow.compute as pc

    found: list[bool] = pc.match_substring_regex(batch.arrow[position], pattern).to_pylist()
    return found


def batched(records: Iterator[Record], width: int, size: int = BATCH_ROWS) -> Iterator[Batch]:
    """Records (each ``width`` cells) as batches of ``size``: for the sources read row by row."""
    while chunk := list(islice(records, size)):
        columns = [list(column) for column in zip(*(r.cells for r in chunk))] or [[] for _ in range(width)]
        numeric: dict[int, set[int]] = {}
        uncached: dict[int, frozenset[int]] = {}
        overflow: dict[int, int] = {}
        for k, record in enumerate(chunk):
            for at in record.numeric:
                numeric.setdefault(at, set()).add(k)
            if record.uncached:
                uncached[k] = record.uncached
            if record.overflow:
                overflow[k] = record.overflow
        rows = [r.row for r in chunk]
        del chunk
        yield Batch(rows, columns, {at: frozenset(ks) for at, ks in numeric.items()}, uncached, overflow)


def records_of(batches: Iterator[Batch]) -> Iterator[Record]:
    """Batches as records again, for the callers that look at a few cells of each row."""
    for batch in batches:
        numbers: dict[int, set[int]] = {}
        for at, ks in batch.numeric.items():
            for k in ks:
                numbers.setdefault(k, set()).add(at)
        for k, cells in enumerate(zip(*batch.columns)):
            yield Record(
                batch.rows[k],
                cells,
                frozenset(numbers[k]) if k in numbers else _NO_INDEXES,
                batch.uncached.get(k, _NO_INDEXES),
                batch.overflow.get(k, 0),
            )


class HeadMismatch(Exception):
    """A sheet read head first whose whole parse doesn't start with the head's rows: most
    likely a cell right of the first rows' columns further down (the header is then wider:
    blank-named columns, read as passthrough), which the rows already handed over lack.
    The caller reads the sheet again with ``open_table(..., head=False)``; the whole parse
    is done by then, so that costs the head's rows again (rare: a stray cell)."""


class _Closable(Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Table:
    """An open roster file: its header, and its records as they are read, in batches
    (``batches``) or one by one (``records``; either, once). ``close()`` it."""

    header: tuple[str, ...]
    header_row: int
    batches: Iterator[Batch]
    sheet: str | None
    encoding: str | None = None
    delimiter: str | None = None
    closables: tuple[_Closable, ...] = ()

    @property
    def records(self) -> Iterator[Record]:
        return records_of(self.batches)

    def close(self) -> None:
        """Release the file (also needed when ``records`` was never started)."""
        for closable in self.closables:
            closable.close()


FRAME_PATH = Path("<DataFrame>")


def open_table(path: Path, sheet: str | int | None = None, *, header_only: bool = False, head: bool = True) -> Table:
    """Open a roster file; raise RosterReadError when it can't be read at all.
    ``header_only``: a workbook sheet's first rows only (to look for a header).
    ``head``: a big sheet's first rows may be read on their own while the whole sheet is
    parsed (``sheet_head``); its batches may then raise ``HeadMismatch``."""
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
        return _open_workbook(path, sheet, header_only, head)
    if magic == _OLE_MAGIC:
        if _is_encrypted(path):
            raise RosterReadError(f"{path.name} is a password-protected workbook; save a copy without the password")
        raise RosterReadError(f"{path.name} is a legacy .xls workbook; save it as .xlsx or CSV")
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        raise RosterReadError(f"{path.name} is not a valid Excel workbook (it is not a zip archive)")
    return _open_delimited(path)


def _is_encrypted(path: Path) -> bool:
    """An OLE file holding an EncryptedPackage stream: Excel's password-protected .xlsx."""
    with path.open("rb") as f:
        tail = b""
        while chunk := f.read(1 << 20):
            if _ENCRYPTED_STREAM in tail + chunk:
                return True
            tail = chunk[-len(_ENCRYPTED_STREAM) :]
    return False


def _library_reason(exc: BaseException) -> str:
    """A library's error message fit for ours: one line, short, numbers masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > _REASON_CHARS:
        text = text[: _REASON_CHARS - 1] + "…"
    return mask_in_text(text)


def _too_long(path: Path, row: int | None, chars: int | None = None) -> RosterReadError:
    where = f" at row {row:,}" if row is not None else ""
    size = f"holds {chars:,} characters, past" if chars is not None else "is longer than"
    return RosterReadError(
        f"{path.name} can't be read{where}: a cell {size} Excel's limit of {MAX_CELL_CHARS:,} characters "
        "(an unclosed quote, or not a roster)"
    )


def _checked_header(values: tuple[str, ...], path: Path, row: int) -> tuple[str, ...]:
    """The header, refused when wider than MAX_COLUMNS.

    A header made wide only by blank cells at its end (a formatted row, trailing
    delimiters) is cut to its last named column when it would pass the bound otherwise.
    """
    if len(values) > MAX_COLUMNS:
        used = max((i + 1 for i, v in enumerate(values) if v), default=0)
        if used > MAX_COLUMNS:
            raise RosterReadError(
                f"{path.name}: the header (row {row}) has {used:,} columns; a roster may have at most "
                f"{MAX_COLUMNS:,} (is the file a roster, and its first non-empty row the header?)"
            )
        values = values[:used]
    return values


# -- a DataFrame ---------------------------------------------------------------------------


def frame_table(frame: Any) -> Table:
    """A pandas DataFrame as if it were a sheet with its header on row 1: the column names
    are the headers, rows are 2..n+1, every value is text (NaN/None/NA blank), and an
    int or float value counts as a spreadsheet number cell (its ``+`` may be lost)."""
    header = _checked_header(tuple(str(name).strip() for name in frame.columns), FRAME_PATH, 1)
    width = len(header)
    texts: list[list[str]] = []
    numeric: list[list[bool]] = []
    for i in range(width):
        pairs = [_frame_cell(v) for v in frame.iloc[:, i].tolist()]
        texts.append([t for t, _ in pairs])
        numeric.append([n for _, n in pairs])
    return Table(header=header, header_row=1, batches=_frame_batches(texts, numeric), sheet=None)


def _frame_batches(texts: list[list[str]], numeric: list[list[bool]]) -> Iterator[Batch]:
    total = len(texts[0]) if texts else 0
    for start in range(0, total, BATCH_ROWS):
        end = min(start + BATCH_ROWS, total)
        flags = {
            at: frozenset(k - start for k in range(start, end) if column[k])
            for at, column in enumerate(numeric)
            if any(column[start:end])
        }
        yield Batch(range(start + 2, end + 2), [column[start:end] for column in texts], flags, {}, {})


def _frame_cell(value: object) -> tuple[str, bool]:
    if value is None or value is _pandas_na():
        return "", False
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":  # numpy scalar -> Python value
        value = item()
    if isinstance(value, float) and value != value:  # NaN
        return "", False
    if type(value).__name__ in {"NaTType"}:
        return "", False
    return cell_text(value)


def _pandas_na() -> object:
    import pandas

    return pandas.NA


# -- delimited text -----------------------------------------------------------------------


def _open_delimited(path: Path) -> Table:
    encoding = _detect_encoding(path)
    f = path.open("r", encoding=encoding, newline="")
    try:
        try:
            sample = f.read(_SNIFF_CHARS)
            if "\x00" in sample:
                raise RosterReadError(f"{path.name} looks like a binary file (it holds NUL bytes), not a CSV roster")
            delimiter = _sniff_delimiter(sample, prefer_tab=path.suffix.lower() == ".tsv")
            f.seek(0)
            reader = csv.reader(f, delimiter=delimiter)
            header_row, first = _first_nonblank(reader)
        except _DAMAGED_TEXT as exc:
            raise _unreadable_text(path, exc, None) from None
        if first is None:
            raise RosterReadError(f"{path.name} has no header row (the file is empty)")
        header = _checked_header(tuple(h.strip() for h in first), path, header_row)
    except BaseException:
        f.close()
        raise
    # Only the #TYPE line may sit above the header on the fast path: pyarrow would not count
    # blank lines there the way the spreadsheet row numbers do.
    typed = sample.lstrip("\ufeff").startswith("#TYPE")
    fast = header_row == 1 or (header_row == 2 and typed)
    width = len(header)
    tolerant = _tolerant_from(reader, header_row, width, path)
    if fast:
        batches = _arrow_batches(path, encoding, delimiter, header_row, width, _block_size(sample, encoding), tolerant)
    else:
        batches = tolerant(0)
    return Table(
        header=header,
        header_row=header_row,
        batches=batches,
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
    lines = [line for line in lines if line.strip() and not line.lstrip().startswith("#TYPE")][:50]
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
        if number == 1 and _is_type_line(record):
            continue
        if any(cell.strip() for cell in record):
            return number, record
    return 0, None


def _is_type_line(record: list[str]) -> bool:
    """PowerShell's ``Export-Csv`` (Windows PowerShell 5.1, ``-IncludeTypeInformation`` later)
    writes ``#TYPE <.NET type>`` above the header: not a header, and not a data row."""
    return len(record) == 1 and record[0].lstrip().startswith("#TYPE")


def _unreadable_text(path: Path, exc: BaseException, row: int | None) -> RosterReadError:
    where = f" at row {row:,}" if row is not None else ""
    if isinstance(exc, csv.Error) and "field larger than field limit" in str(exc):
        return _too_long(path, row)
    if isinstance(exc, UnicodeDecodeError):
        return RosterReadError(f"{path.name} can't be read{where}: its text does not decode as {exc.encoding}")
    return RosterReadError(f"{path.name} can't be read{where}: {_library_reason(exc)}")


def _delimited_records(reader: Iterator[list[str]], header_row: int, width: int, path: Path) -> Iterator[Record]:
    # csv.reader yields [] for an empty line, so record n is spreadsheet row n. Only the
    # reader's own errors are caught: the loop body can't raise csv.Error or a decode error.
    row = header_row
    try:
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
    except _DAMAGED_TEXT as exc:
        raise _unreadable_text(path, exc, row + 1) from None


def _arrow_batches(
    path: Path, encoding: str, delimiter: str, header_row: int, width: int, block_size: int, tolerant: Callable[[int], Iterator[Batch]]
) -> Iterator[Batch]:
    """The data records through pyarrow's streaming CSV reader: one block of the file
    parsed at a time (every cell as text, no NA words, a blank line kept as a row, a line
    break inside quotes kept in its cell), so the first batch goes out a few milliseconds
    in, whatever the file's size. Blocks are handed over as they are parsed; a block
    pyarrow refuses (a row wider or narrower than the header, text that doesn't decode, a
    cell past ``MAX_CELL_CHARS``) and everything after it is read by ``tolerant(done)``
    instead, the csv-module path from record ``done`` on, which reports each malformed row
    by its number. The first block is cut into two batches of ``EDGE_ROWS`` and the rest,
    the last one's final ``EDGE_ROWS`` made a batch of their own (``_batch_sizes``)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    names = [f"c{i}" for i in range(width)]
    # The system allocator hands a block's buffers back once its rows are built (pyarrow's
    # default pool, mimalloc, kept ~115 MB at 1M rows).
    pool = pa.system_memory_pool()
    unfit = (pa.ArrowException, ValueError, LookupError, UnicodeError, OSError)
    done = 0
    try:
        stream = pa_csv.open_csv(
            str(path),
            read_options=pa_csv.ReadOptions(
                skip_rows=header_row, column_names=names, block_size=block_size, use_threads=False,
                encoding="utf8" if encoding in {"utf-8", "utf-8-sig"} else encoding,
            ),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names}, null_values=[], strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
            memory_pool=pool,
        )
    except unfit:
        yield from tolerant(0)
        return

    def batches_of(block: Any, cuts: Sequence[int]) -> Iterator[Batch]:
        nonlocal done
        at = 0
        for size in (*cuts, block.num_rows):
            if size <= at:
                continue
            piece = block.slice(at, size - at)
            trimmed = [pc.utf8_trim_whitespace(column, memory_pool=pool) for column in piece.columns]
            row = header_row + 1 + done
            yield Batch(range(row, row + piece.num_rows), [column.to_pylist() for column in trimmed], {}, {}, {}, trimmed)
            done += piece.num_rows
            at = size

    held = None  # the block before the one just parsed: the last one is cut differently
    first = True
    try:
        while True:
            try:
                block = stream.read_next_batch()
            except StopIteration:
                break
            except unfit:
                block = None
            if block is not None and max((pc.max(pc.utf8_length(c)).as_py() or 0 for c in block.columns), default=0) > MAX_CELL_CHARS:
                block = None
            if block is None:  # refused: what was parsed before it stands, the rest is read the tolerant way
                if held is not None:
                    yield from batches_of(held, ())
                yield from tolerant(done)
                return
            if held is not None:
                yield from batches_of(held, (EDGE_ROWS, 2 * EDGE_ROWS) if first else ())
                first = False
            held = block
        if held is not None:
            last = held.num_rows - EDGE_ROWS
            yield from batches_of(held, () if first else (last,) if last > 0 else ())
    finally:
        stream.close()


def _block_size(sample: str, encoding: str) -> int:
    """Bytes per pyarrow block: about ``BATCH_ROWS`` lines of the file, judged by its first ones."""
    lines = max(1, sample.count("\n"))
    per_line = len(sample) / lines * (2 if encoding == "utf-16" else 1.1)
    return max(1 << 16, min(1 << 24, int(per_line * BATCH_ROWS)))


def _tolerant_from(
    reader: Iterator[list[str]], header_row: int, width: int, path: Path
) -> Callable[[int], Iterator[Batch]]:
    """The csv-module path from data record ``done`` on (the reader stands just below the header)."""

    def resume(done: int) -> Iterator[Batch]:
        try:
            deque(islice(reader, done), maxlen=0)
        except _DAMAGED_TEXT as exc:
            raise _unreadable_text(path, exc, None) from None
        return batched(_delimited_records(reader, header_row + done, width, path), width)

    return resume


# -- Excel --------------------------------------------------------------------------------


def _open_workbook(path: Path, sheet: str | int | None, header_only: bool, head: bool) -> Table:
    closables: list[_Closable] = []
    try:
        return _workbook_table(path, sheet, closables, header_only, head)
    except BaseException:
        for closable in reversed(closables):
            closable.close()
        raise


def sheet_names(path: Path) -> list[str]:
    """A workbook's worksheet names, in order."""
    book = _calamine_workbook(path)
    try:
        return _worksheet_names(book)
    finally:
        book.close()


def _calamine_workbook(path: Path) -> python_calamine.CalamineWorkbook:
    """calamine's workbook, opened by its path: a damaged file fails as calamine says
    (truncated, a part missing) rather than as an unknown format, and a workbook saved as
    "roster.csv" is still a workbook."""
    return _guard(path, lambda: python_calamine.CalamineWorkbook.from_path(str(path)))


def _worksheet_names(book: python_calamine.CalamineWorkbook) -> list[str]:
    # Worksheets only: a chart sheet or a macro sheet holds no rows (pandas' calamine
    # engine lists the same).
    return [s.name for s in book.sheets_metadata if s.typ == python_calamine.SheetTypeEnum.WorkSheet]


def _workbook_table(path: Path, sheet: str | int | None, closables: list[_Closable], header_only: bool, head: bool) -> Table:
    """The workbook's Table; everything opened is added to ``closables`` as it opens.

    calamine reads the cached values with their types: a number cell stays a number (so a
    lost ``+`` or leading zero shows), a text cell stays text. It can't see formulas, so a
    workbook holding any is also read by openpyxl in formula mode, to tell a formula with
    no cached value from an empty cell.
    """
    book = _calamine_workbook(path)
    closables.append(book)
    title = _pick_sheet(_worksheet_names(book), sheet, path)
    if header_only:
        return _workbook_rows_table(path, title, _sheet_rows(book, title, path), None, closables)
    # calamine parses the sheet without holding the GIL, so the formula check (a second
    # unzip of the sheets) and, on a big sheet, the parse of its first rows alone
    # (``sheet_head``) run meanwhile: the worker processes get numbers to normalise
    # while the rest of the sheet is parsed.
    pool = ThreadPoolExecutor(2, thread_name_prefix="roster-sheet")
    try:
        formulas = pool.submit(_has_formulas, path, title)
        whole = pool.submit(_sheet_rows, book, title, path)
        # calamine's workbook can't be closed while it parses ("Already borrowed"): whoever
        # closes it, on any path, waits for the parse first.
        closables[closables.index(book)] = _ClosedAfter(whole, book)
        first = sheet_head(path, title) if head else None
        table = _head_first_table(path, title, first, whole, formulas, closables) if first is not None else None
        return table or _workbook_rows_table(path, title, whole.result(), formulas, closables)
    finally:
        pool.shutdown(wait=False)  # the batches wait for the whole parse when they need it


class _ClosedAfter:
    """``closable``, closed once a background step using it is done (that step's outcome is
    reported by whoever waits for it, if anyone still does)."""

    def __init__(self, step: Future[Any], closable: _Closable) -> None:
        self.step = step
        self.closable = closable

    def close(self) -> None:
        try:
            self.step.result()
        except Exception:  # noqa: BLE001
            pass
        self.closable.close()


def _head_first_table(
    path: Path,
    title: str,
    head: bytes,
    whole: Future[tuple[Iterator[list[Any]], int]],
    formulas: Future[bool],
    closables: list[_Closable],
) -> Table | None:
    """The Table of a sheet whose first rows come from ``head`` (``sheet_head``'s copy of the
    workbook, which holds no formula) and the rest from the whole parse (``whole``) once it
    is done, read the formula way if the workbook holds any; None (read the whole parse
    alone) when the header isn't among the head's rows."""
    try:
        book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(head))
        try:
            rows, count = _sheet_rows(book, title, path)
            values = _guard(path, lambda: list(rows))
        finally:
            book.close()
    except _HEAD_UNREADABLE:
        return None  # the whole parse alone
    found = _sheet_header(iter(values), path)
    if found is None:
        return None
    header_row, header = found
    width = len(header)

    def batches() -> Generator[Batch, None, None]:
        # The head in two batches: the reader sends a batch out once it holds the next one.
        half = header_row + (count - header_row) // 2
        yield from _row_batches(iter(values[header_row:half]), half - header_row, header_row, width, path)
        yield from _row_batches(iter(values[half:count]), count - half, half, width, path)
        rest, total = _guard(path, whole.result)
        for k, row in enumerate(_guarded(islice(rest, count), path)):  # the head's rows: skipped, and checked
            if row != values[k]:  # a cell right of the head's columns further down (its header is wider)
                raise HeadMismatch(title)
        opened: list[_Closable] = []  # the formula way's openpyxl book, opened after the Table was made
        try:
            yield from _batches_below(rest, total, count, width, path, title, _guard(path, formulas.result), opened)
        finally:
            for closable in reversed(opened):
                closable.close()

    rest = batches()
    return Table(header=header, header_row=header_row, batches=rest, sheet=title, closables=(*closables, rest))


def _sheet_rows(book: python_calamine.CalamineWorkbook, title: str, path: Path) -> tuple[Iterator[list[Any]], int]:
    """The sheet's rows from A1, whatever its first used cell (row and column positions are
    the sheet's own), converted to Python values as they are taken; and how many there are."""
    sheet = _guard(path, lambda: book.get_sheet_by_name(title))
    start, end = sheet.start, sheet.end
    if start is None or end is None:  # an empty sheet
        return iter(()), 0
    rows: Iterator[list[Any]] = sheet.iter_rows()  # the rows above the first used one come blank
    if start[1]:  # not the columns left of the first used one
        left = [""] * start[1]
        rows = (left + row for row in rows)
    return rows, end[0] + 1


def _workbook_rows_table(
    path: Path,
    title: str,
    sheet_rows: tuple[Iterator[list[Any]], int],
    formulas: Future[bool] | None,
    closables: list[_Closable],
) -> Table:
    """The Table of a sheet's rows (calamine's values, and their count); ``formulas``:
    whether the workbook holds any formula (None: not asked, only the header is wanted,
    within the first ``_HEADER_SEARCH_ROWS`` rows)."""
    rows, total = sheet_rows
    if formulas is None:
        rows, total = islice(rows, _HEADER_SEARCH_ROWS), min(total, _HEADER_SEARCH_ROWS)
    found = _sheet_header(_guarded(rows, path), path)  # calamine converts cells as they are taken; takes one row at a time
    if found is None:
        raise RosterReadError(f"sheet {title!r} of {path.name} has no header row (the sheet is empty)")
    header_row, header = found
    holds = formulas is not None and _guard(path, formulas.result)
    batches = _batches_below(rows, total, header_row, len(header), path, title, holds, closables)
    return Table(header=header, header_row=header_row, batches=batches, sheet=title, closables=tuple(closables))


def _sheet_header(rows: Iterator[list[Any]], path: Path) -> tuple[int, tuple[str, ...]] | None:
    """The first non-blank row of a sheet's values (taken from ``rows``) as its header, and
    its spreadsheet row number; None when every row is blank."""
    at, first = next(((k, row) for k, row in enumerate(rows) if any(_workbook_cell(v)[0] for v in row)), (None, None))
    if at is None or first is None:
        return None
    header = _checked_header(tuple(_workbook_cell(v)[0] for v in first), path, at + 1)
    _check_lengths([[name] for name in header], at + 1, path)
    return at + 1, header


def _batches_below(
    rows: Iterator[list[Any]], total: int, after: int, width: int, path: Path, title: str, formulas: bool, closables: list[_Closable]
) -> Iterator[Batch]:
    """Batches of a sheet's values (``total`` rows in all) below row ``after``: straight from
    calamine's values, or, when the sheet holds a formula, the formula way: openpyxl (added
    to ``closables``) marks formula cells with no cached value."""
    if not formulas:
        return _row_batches(rows, total - after, after, width, path)
    formulas_sheet = _guard(path, lambda: _load_formulas(path, closables=closables)[title])
    formulas_sheet.reset_dimensions()  # some exporters write a wrong <dimension>; don't trust it
    return batched(_fit(_sheet_records(_guarded(rows, path), formulas_sheet, path, after), width), width)


def _workbook_cell(value: object) -> tuple[str, bool]:
    """``cell_text`` of a cell as calamine gives it; a date-and-time at midnight (how some
    workbooks store a plain date) reads as the date."""
    if type(value) is str:
        return value.strip(), False
    if type(value) is dt.datetime and value.tzinfo is None and value.time() == dt.time():
        value = value.date()
    return cell_text(value)


def _row_batches(rows: Iterator[list[Any]], total: int, header_row: int, width: int, path: Path) -> Iterator[Batch]:
    """The ``total`` rows of a sheet's values below its header, as batches (``_batch_sizes``),
    each batch's rows taken and turned into columns in turn: most cells are text and only
    need trimming, the others (numbers, dates, booleans) go through ``_workbook_cell``."""
    row = header_row + 1
    for size in chain(_batch_sizes(total), repeat(BATCH_ROWS)):
        values = _guard(path, lambda: list(zip(*islice(rows, size))))  # calamine converts cells as they are taken
        count = len(values[0]) if values else 0
        if not count:
            return
        texts: list[list[str]] = []
        numeric: dict[int, frozenset[int]] = {}
        for at, cells in enumerate(values):
            try:
                texts.append(list(map(str.strip, cells)))  # a column of text cells (an empty cell is ""): in C
                continue
            except TypeError:  # a number, date or boolean cell among them
                pass
            column: list[Any] = [v.strip() if type(v) is str else v for v in cells]
            numbers: set[int] = set()
            for k in [k for k, v in enumerate(column) if type(v) is not str]:
                value = column[k]
                if type(value) is float and value.is_integer() and -1e17 < value < 1e17:
                    column[k] = str(int(value))  # cell_text's answer for the usual phone number cell
                    numbers.add(k)
                    continue
                column[k], is_number = _workbook_cell(value)
                if is_number:
                    numbers.add(k)
            if numbers and at < width:
                numeric[at] = frozenset(numbers)
            texts.append(column)
        del values
        _check_lengths(texts, row, path)
        overflow: dict[int, int] = {}
        for column in texts[width:]:
            for k in [k for k, v in enumerate(column) if v]:
                overflow[k] = overflow.get(k, 0) + 1
        yield Batch(range(row, row + count), texts[:width], numeric, {}, overflow)
        row += count


def _batch_sizes(total: int) -> list[int]:
    """Batch sizes for a sheet's ``total`` rows (known before they are read): one batch up to
    ``BATCH_ROWS``; past that, the first two and the last ``EDGE_ROWS`` long. The reader
    sends a batch's phone cells to the worker processes once it holds two batches, so small
    first ones start the workers soon after the parse; and the last batch's rows are the
    ones still to make once the workers are done, so a small last one ends the read soon
    after them."""
    if total <= BATCH_ROWS:
        return [total] if total else []
    middle = total - 3 * EDGE_ROWS
    return [EDGE_ROWS, EDGE_ROWS, *[min(BATCH_ROWS, middle - at) for at in range(0, middle, BATCH_ROWS)], EDGE_ROWS]


def _check_lengths(columns: list[list[str]], first_row: int, path: Path) -> None:
    """``MAX_CELL_CHARS`` over a batch's columns: the first row holding a longer cell is refused."""
    worst: int | None = None
    for column in columns:
        if max(map(len, column), default=0) > MAX_CELL_CHARS:
            k = next(k for k, v in enumerate(column) if len(v) > MAX_CELL_CHARS)
            worst = k if worst is None else min(worst, k)
    if worst is not None:
        raise _too_long(path, first_row + worst, max(len(column[worst]) for column in columns))


def _load_formulas(path: Path, *, closables: list[_Closable]) -> Any:
    import openpyxl

    # A file object, not the path: openpyxl refuses paths whose extension isn't .xlsx,
    # and a workbook saved as "roster.csv" is still a workbook.
    handle = path.open("rb")
    closables.append(handle)
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = _guard(path, lambda: openpyxl.load_workbook(handle, read_only=True, data_only=False))
    except InvalidFileException as exc:
        raise _damaged(path, exc) from None
    closables.append(book)
    return book


def _damaged(path: Path, exc: BaseException) -> RosterReadError:
    # zipfile: "There is no item named 'xl/workbook.xml' in the archive"; calamine: "File not found '_rels/.rels'"
    if isinstance(exc, KeyError) or (isinstance(exc, python_calamine.CalamineError) and "not found" in str(exc)):
        return RosterReadError(f"{path.name} is not a readable Excel workbook (a part is missing: {_library_reason(exc)})")
    if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError, python_calamine.ZipError)):
        return RosterReadError(f"{path.name} is not a readable Excel workbook: it is damaged or truncated ({_library_reason(exc)})")
    return RosterReadError(f"{path.name} is not a readable Excel workbook ({_library_reason(exc)})")


def _guard(path: Path, call: Callable[[], _T]) -> _T:
    """One call into zipfile/openpyxl, a damaged workbook's error as RosterReadError."""
    try:
        return call()
    except _DAMAGED_WORKBOOK as exc:
        raise _damaged(path, exc) from None


def _guarded(rows: Iterator[_T], path: Path) -> Iterator[_T]:
    """openpyxl's rows, its errors on a damaged sheet as RosterReadError (only around ``next``)."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except _DAMAGED_WORKBOOK as exc:
            raise _damaged(path, exc) from None
        yield row


def _pick_sheet(names: list[str], sheet: str | int | None, path: Path) -> str:
    if not names:
        raise RosterReadError(f"{path.name} is not a readable Excel workbook (it has no sheet)")
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


# Bytes of a chunk kept for the next, so a tag cut by the chunks' border is seen whole (a
# namespace prefix is a few letters).
_TAG_OVERLAP = 64


def _has_formulas(path: Path, title: str) -> bool:
    """Whether sheet ``title`` holds a formula (every worksheet is looked at when its part
    can't be told). Only that sheet: a summary sheet of COUNTIFs beside the roster would
    otherwise send the roster through openpyxl's formula mode (100,000 rows beside a
    one-formula sheet: 4.7 s that way against 1.7 s, measured)."""
    with zipfile.ZipFile(path) as z:
        part = sheet_part(z, title)
        every = [n for n in z.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        for name in [part] if part is not None else every:
            with z.open(name) as f:
                tail = b""
                while chunk := f.read(1 << 20):
                    if holds_formula(tail + chunk):
                        return True
                    tail = chunk[-_TAG_OVERLAP:]
    return False


def _sheet_records(values: Iterator[Sequence[object]], formulas_sheet: Any, path: Path, after: int) -> Iterator[Record]:
    """Records of the values sheet's rows below row ``after``; ``formulas_sheet`` (an openpyxl
    worksheet) marks formula cells that have no cached value."""
    formulas = _guarded(formulas_sheet.iter_rows(min_row=after + 1, values_only=True), path)
    for number, row in enumerate(values, start=after + 1):
        cells: list[str] = []
        numeric: set[int] = set()
        for i, value in enumerate(row):
            if type(value) is str:  # most cells: no call needed
                cells.append(value.strip())
                continue
            text, is_number = _workbook_cell(value)
            cells.append(text)
            if is_number:
                numeric.add(i)
        if sum(map(len, cells)) > MAX_CELL_CHARS:  # a cheap test per row; the bound per cell
            longest = max(map(len, cells))
            if longest > MAX_CELL_CHARS:
                raise _too_long(path, number, longest)
        missing = {
            i
            for i, f in enumerate(next(formulas, ()))
            if (i >= len(row) or row[i] is None or row[i] == "") and _is_formula(f)
        }
        for i in missing:
            if i >= len(cells):
                cells.extend([""] * (i + 1 - len(cells)))
        uncached = frozenset(missing) if missing else _NO_INDEXES
        yield Record(number, tuple(cells), frozenset(numeric) if numeric else _NO_INDEXES, uncached)


def _is_formula(value: object) -> bool:
    from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

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
