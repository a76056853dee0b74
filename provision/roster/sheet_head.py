"""The first rows of a big worksheet as a workbook of their own, to read while calamine parses the whole sheet.

calamine parses a sheet whole before handing over its first row (~0.24 s per 100,000
rows, measured), and the worker processes that normalise phone numbers have nothing to do
meanwhile: on 2 cores, one idles for the whole parse. So while the whole sheet is parsed
in a thread (calamine holds no GIL then), the reader parses a small copy of the workbook
whose sheet holds only the sheet's first ``HEAD_BYTES`` of XML, cut after a whole row,
and sends those rows' numbers out first.

The copy keeps the parts calamine reads for a sheet (content types, relationships, the
workbook, and the shared strings and styles the workbook's relationships name) and gives
every other worksheet an empty sheet. Any surprise (a part that can't be found, no whole
row in the head, a formula in it) gives no head, and the sheet is read the usual way. The
head only changes when rows reach the workers, never what they hold: ``files`` checks the
whole parse's first rows against the head's, and the reader reads the sheet again without
a head if they differ (``files.HeadMismatch``).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

# ~9,000 rows of a typical roster sheet: a few percent of a big sheet, parsed in ~20 ms.
HEAD_BYTES = 2_000_000
# Sheets smaller than this are parsed whole in ~60 ms or less: a head isn't worth its cost.
MIN_SHEET_BYTES = 4 * HEAD_BYTES
# The head's copy parses the shared strings again, all of them: past this, that costs more
# time and memory than the head's ~9,000 rows save.
MAX_COPIED_BYTES = 16_000_000

_ROW_END = re.compile(rb"</([A-Za-z_][\w.\-]*:)?row>")
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")
# A formula tag's end: a literal first byte, which ``re`` finds by a fast scan, and rare in
# sheet XML, where "<" starts every tag (a search for b"<f" took 16 ms per 22 MB of XML, this 5).
_FORMULA_END = re.compile(rb"f[\s>/]")
# Ends looked at one by one before the search by the tag's start is cheaper (~1.6 ms per MB).
_MANY_ENDS = 2_000
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_EMPTY_SHEET = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>'
_WORKBOOK = "xl/workbook.xml"
_WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"
# The parts calamine reads for one sheet's values; other parts (images, drawings, pivot
# caches) are left out. Shared strings and styles are found by relationship type.
_KEPT = frozenset({"[Content_Types].xml", "_rels/.rels", _WORKBOOK, _WORKBOOK_RELS})
_KEPT_TYPES = ("/sharedStrings", "/styles")


def sheet_head(path: Path, title: str) -> bytes | None:
    """A workbook (bytes of an .xlsx) like ``path`` whose sheet ``title`` holds only its
    first rows; None when the sheet is small, or anything is not as expected."""
    try:
        with zipfile.ZipFile(path) as book:
            parts = _parts(book, title)
            if parts is None:
                return None
            part, kept = parts
            if book.getinfo(part).file_size < MIN_SHEET_BYTES or sum(book.getinfo(n).file_size for n in kept) > MAX_COPIED_BYTES:
                return None
            with book.open(part) as sheet:
                head = sheet.read(HEAD_BYTES)
            cut = _after_last_row(head)
            if cut is None or holds_formula(head[: cut[0]]):
                return None
            end, prefix = cut
            xml = head[:end] + b"</" + prefix + b"sheetData></" + prefix + b"worksheet>"
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
                for info in book.infolist():
                    name = info.filename
                    if name == part:
                        copy.writestr(name, xml)
                    elif name.startswith("xl/worksheets/") and name.endswith(".xml"):
                        copy.writestr(name, _EMPTY_SHEET)
                    elif name in kept:
                        copy.writestr(name, book.read(name))
            return out.getvalue()
    except Exception:  # noqa: BLE001  # any surprise (zip, compression, XML): the whole parse says what is wrong, if anything
        return None


def holds_formula(xml: bytes) -> bool:
    """Whether sheet XML holds a formula element (``<f>``, or namespaced ``<x:f>``): each
    formula tag's end, then the tag it ends (from the last "<" before it). XML full of
    text with such ends ("Head of Sales" in every row of an inline-string sheet: ~0.3 us
    each) is searched by the tag's start instead, ~1.6 ms per MB whatever it holds."""
    for n, end in enumerate(_FORMULA_END.finditer(xml)):
        if n == _MANY_ENDS:
            return (b"<f" in xml or b":f" in xml) and _FORMULA_TAG.search(xml) is not None
        at = end.start()
        start = xml.rfind(b"<", 0, at)
        if start >= 0 and _FORMULA_TAG.fullmatch(xml, start, at + 2):
            return True
    return False


def _parts(book: zipfile.ZipFile, title: str) -> tuple[str, frozenset[str]] | None:
    """The zip member holding sheet ``title``, and the members to copy with it (``_KEPT``,
    shared strings, styles), from the workbook and its relationships; None when one of
    them is missing."""
    sheets = ElementTree.fromstring(book.read(_WORKBOOK))
    rel = next((s.get(_REL_NS) for s in sheets.iterfind(".//{*}sheet") if s.get("name") == title), None)
    if rel is None:
        return None
    part = None
    kept = set(_KEPT)
    for relation in ElementTree.fromstring(book.read(_WORKBOOK_RELS)).iterfind("{*}Relationship"):
        target = relation.get("Target") or ""
        name = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        if relation.get("Id") == rel:
            part = name
        elif (relation.get("Type") or "").endswith(_KEPT_TYPES):
            kept.add(name)
    if part is None or not kept.union((part,)) <= book.NameToInfo.keys():
        return None
    return part, frozenset(kept)


def sheet_part(book: zipfile.ZipFile, title: str) -> str | None:
    """The zip member holding sheet ``title`` (``xl/worksheets/sheet1.xml``...); None when
    the workbook's parts are not as expected."""
    try:
        parts = _parts(book, title)
    except Exception:  # noqa: BLE001  # a damaged workbook part: the caller looks at every sheet
        return None
    return None if parts is None else parts[0]


def _after_last_row(head: bytes) -> tuple[int, bytes] | None:
    """Where the last whole row of ``head`` ends, and the sheet's namespace prefix
    (``b"x:"`` for ``</x:row>``, else empty); None when the head holds no whole row."""
    last = None
    for last in _ROW_END.finditer(head, max(0, len(head) - 65_536)):
        pass
    if last is None or b"sheetData" not in head[: last.start()]:
        return None
    return last.end(), last.group(1) or b""
