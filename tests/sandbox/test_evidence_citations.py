"""Every sandbox default cites its row of docs/graph-evidence.md, and every cited row exists.

Read from the files themselves: the doc's table rows (``| G01 | ... |``) and the
``# evidence: Gxx[, Gyy] (why)`` comments in provision/sandbox/ (Python and profiles).
A row whose "Sandbox default" cell says the behaviour is not modelled (or n/a) has no code
to cite it.
"""

from __future__ import annotations

import re
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
_DOC = _REPO / "docs" / "graph-evidence.md"
_SANDBOX = _REPO / "provision" / "sandbox"

_ROW_ID = re.compile(r"G\d{2}")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")  # "\|" inside a cell is a literal pipe
_CITATION = re.compile(r"#\s*evidence:\s*(G\d{2}(?:\s*,\s*G\d{2})*)\b")
_NO_SANDBOX_DEFAULT = ("not modelled", "n/a")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in _CELL_SPLIT.split(line.strip())[1:-1]]


def _rows() -> dict[str, str]:
    """Row id -> its "Sandbox default" cell, from every table of the doc."""
    rows: dict[str, str] = {}
    column: int | None = None
    for line in _DOC.read_text("utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        if "Sandbox default" in cells:
            column = cells.index("Sandbox default")
        elif column is not None and cells and _ROW_ID.fullmatch(cells[0]):
            assert cells[0] not in rows, f"row {cells[0]} appears twice"
            rows[cells[0]] = cells[column]
    return rows


def _evidence_comments() -> dict[str, list[str]]:
    """``file:line`` -> the row ids its ``# evidence:`` comment cites ([] when it cites none)."""
    found: dict[str, list[str]] = {}
    for path in sorted([*_SANDBOX.rglob("*.py"), *_SANDBOX.rglob("*.toml")]):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if "# evidence:" not in line:
                continue
            match = _CITATION.search(line)
            ids = _ROW_ID.findall(match.group(1)) if match else []
            found[f"{path.relative_to(_REPO)}:{number}"] = ids
    return found


def test_the_doc_numbers_its_rows_without_gaps() -> None:
    ids = sorted(_rows())
    assert len(ids) > 50
    assert ids == [f"G{n:02d}" for n in range(1, len(ids) + 1)]


def test_every_evidence_comment_cites_rows_that_exist() -> None:
    rows = _rows()
    comments = _evidence_comments()
    uncited = [where for where, ids in comments.items() if not ids]
    unknown = {where: ids for where, ids in comments.items() if set(ids) - rows.keys()}
    assert uncited == [], "an '# evidence:' comment must start with the row id(s) it rests on"
    assert unknown == {}


def test_every_sandbox_default_cites_its_row() -> None:
    cited = {row for ids in _evidence_comments().values() for row in ids}
    rows = _rows()
    not_modelled = {row for row, default in rows.items() if default.casefold().startswith(_NO_SANDBOX_DEFAULT)}
    assert not_modelled <= rows.keys() and len(not_modelled) < len(rows) // 4
    assert sorted(rows.keys() - not_modelled - cited) == []
