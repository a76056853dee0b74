"""results.csv: one RFC 4180 record per roster row, UTF-8 with a BOM so Excel reads it right.

Columns and cell rules come from ``provision.report.layout`` (formula injection is
neutralised there; phone cells in Graph form are left intact).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TextIO

from provision.report.layout import Cell, build_layout, row_values
from provision.report.sinks import text_sink
from provision.report.values import RowResult

__all__ = ["write_csv"]

# Excel only detects UTF-8 in a CSV by its byte order mark.
_BOM = "\ufeff"


def _text(v: Cell) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def write_csv(rows: Sequence[RowResult], dest: str | Path | TextIO | IO[str]) -> int:
    """Write results.csv to a path, or to a text stream opened with ``newline=""``.

    Returns the number of data records written (always ``len(rows)``).
    """
    layout = build_layout(rows)
    with text_sink(dest) as fh:
        fh.write(_BOM)
        # The excel dialect is RFC 4180: CRLF records, fields quoted when they hold a
        # delimiter, quote or line break, quotes doubled.
        out = csv.writer(fh, dialect="excel")
        out.writerow(layout.headers)
        n = 0
        for r in rows:
            out.writerow([_text(v) for v in row_values(r, layout)])
            n += 1
    return n
