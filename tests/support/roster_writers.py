"""Real roster files for the tests: CSV in any encoding/delimiter, XLSX written by openpyxl."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import openpyxl


def write_csv(path: Path, rows: Sequence[Sequence[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    data = buffer.getvalue()
    if encoding == "utf-16":
        path.write_bytes(data.encode("utf-16"))  # Python writes the BOM
    else:
        path.write_bytes(data.encode(encoding))
    return path


def write_xlsx(
    path: Path,
    sheets: Mapping[str, Sequence[Sequence[Any]]],
    *,
    cached: Mapping[str, Any] | None = None,
) -> Path:
    """One sheet per entry. ``cached``: cell ref (first sheet) -> the value Excel would have
    saved for a formula cell; openpyxl never computes formulas, so it is patched in."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    book.save(path)
    if cached:
        _patch_cached_values(path, cached)
    return path


def _patch_cached_values(path: Path, cached: Mapping[str, Any]) -> None:
    with zipfile.ZipFile(path) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    name = "xl/worksheets/sheet1.xml"
    xml = entries[name].decode("utf-8")
    for ref, value in cached.items():
        pattern = re.compile(rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*/>')
        kind = "" if isinstance(value, (int, float)) else ' t="str"'
        xml, count = pattern.subn(lambda m: f'<c r="{ref}"{m.group(1)}{kind}><f>{m.group(2)}</f><v>{value}</v>', xml)
        assert count == 1, f"no formula cell {ref}"
    entries[name] = xml.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for entry, data in entries.items():
            z.writestr(entry, data)
