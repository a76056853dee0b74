"""Hostile roster files, built from a seed: what a real tenant's HR share can hand the job.

``hostile_rosters(folder)`` writes every kind into ``folder`` and returns them as
``Hostile(path, kind)``; the same seed always gives the same bytes:

- truncations of a real workbook at many offsets (every one is unreadable: the zip's
  central directory is at its end), and random byte flips in it, anywhere and inside
  the zip's headers (some leave a readable workbook);
- members of the workbook rewritten with text damage (broken XML, cut short);
- random bytes named .xlsx and .csv; a zip that isn't a workbook; a password-protected
  workbook and a legacy .xls (OLE containers); UTF-16 and UTF-8 text that doesn't decode;
  NUL bytes; a 10 MB cell; an unclosed quote; 5,000 columns.

``NUMBERS`` are the national digits of every phone number the files hold: none of them
may appear in what the reader or the CLI says about a file.
"""

from __future__ import annotations

import io
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

from support.roster_writers import write_xlsx

SEED = 20240501
ROWS = 40
NUMBERS = tuple(f"20655{i:05d}" for i in range(ROWS))


@dataclass(frozen=True)
class Hostile:
    path: Path
    kind: str


def roster_rows() -> list[list[object]]:
    """A real roster: UPN, mobile, a note; the last column holds formulas."""
    rows: list[list[object]] = [["UserPrincipalName", "Mobile", "Note"]]
    for i in range(ROWS):
        rows.append([f"user{i}@contoso.com", f"+1 {NUMBERS[i][:3]} {NUMBERS[i][3:6]} {NUMBERS[i][6:]}", "=1+1"])
    return rows


def real_workbook(folder: Path) -> bytes:
    path = write_xlsx(folder / "real.xlsx", {"Staff": roster_rows()})
    data = path.read_bytes()
    path.unlink()
    return data


def hostile_rosters(folder: Path, *, truncations: int = 60, flips: int = 60) -> list[Hostile]:
    """Every hostile kind, written into ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    book = real_workbook(folder)
    out: list[Hostile] = []

    def add(name: str, kind: str, data: bytes) -> None:
        path = folder / name
        path.write_bytes(data)
        out.append(Hostile(path, kind))

    for n in range(truncations):
        add(f"truncated{n}.xlsx", "truncated", book[: rng.randrange(1, len(book) - 1)])
    headers = [i for i in range(len(book)) if book[i : i + 4] in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06")]
    for n in range(flips):
        data = bytearray(book)
        for _ in range(rng.randrange(1, 6)):
            at = rng.choice(headers) + rng.randrange(4, 46) if n % 2 else rng.randrange(len(data))
            data[min(at, len(data) - 1)] = rng.randrange(256)
        add(f"flipped{n}.xlsx", "flipped", bytes(data))
    for n, damaged in enumerate(_damaged_members(book, rng)):
        add(f"member{n}.xlsx", "damaged member", damaged)
    add("random.xlsx", "random bytes", rng.randbytes(50_000))
    add("random.csv", "random bytes", rng.randbytes(50_000))
    add("workbook.csv", "random bytes", b"PK\x03\x04" + rng.randbytes(5_000))  # a zip's magic, no zip
    add("not_a_workbook.xlsx", "other zip", _zip({"notes.txt": f"call +1 {NUMBERS[0]}".encode(), "a/b.xml": b"<x/>"}))
    add("document.xlsx", "other zip", _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"}))
    add("protected.xlsx", "encrypted", _ole(b"E\x00n\x00c\x00r\x00y\x00p\x00t\x00e\x00d\x00P\x00a\x00c\x00k\x00a\x00g\x00e\x00"))
    add("legacy.xls", "legacy", _ole(b"W\x00o\x00r\x00k\x00b\x00o\x00o\x00k\x00"))
    add("nul.csv", "NUL bytes", f"upn,mobile\r\nann@contoso.com,+1 {NUMBERS[1]}\x00\r\n".encode())
    add("utf16.csv", "undecodable", f"upn,mobile\r\nann@contoso.com,+1 {NUMBERS[2]}\r\n".encode("utf-16") + b"A")
    add("utf8.csv", "undecodable", f"\ufeffupn,mobile\r\nann@contoso.com,+1 {NUMBERS[3]}\r\n".encode() + b"\xff\xfe\r\n")
    add("huge_cell.csv", "huge cell", f"upn,mobile,note\r\nann@contoso.com,+1 {NUMBERS[4]},".encode() + b"A" * 10_000_000 + b"\r\n")
    add("unclosed.csv", "huge cell", _unclosed_quote())
    add("wide.csv", "wide", (",".join(["upn", "mobile", *(f"c{i}" for i in range(4_998))]) + f"\r\nann@contoso.com,+1 {NUMBERS[5]}\r\n").encode())
    return out


def _damaged_members(book: bytes, rng: random.Random) -> list[bytes]:
    """The workbook with one member's XML damaged (deflated again, so zip and zlib are fine)."""
    with zipfile.ZipFile(io.BytesIO(book)) as z:
        members = {name: z.read(name) for name in z.namelist()}
    out = []
    for name in sorted(members):
        for how in ("cut", "garble", "empty"):
            text = bytearray(members[name])
            if how == "cut":
                text = text[: rng.randrange(1, max(2, len(text)))]
            elif how == "garble":
                for _ in range(rng.randrange(1, 8)):
                    text[rng.randrange(len(text))] = rng.choice(b'<>&"/=x0')
            else:
                text = bytearray()
            out.append(_zip({**members, name: bytes(text)}))
    return out


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _ole(stream_name: bytes) -> bytes:
    """An OLE compound file's magic and a directory entry naming ``stream_name`` (enough for the sniffing)."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + stream_name.ljust(64, b"\x00") + bytes(4_000)


def _unclosed_quote() -> bytes:
    """A roster whose second row opens a quote that never closes: it swallows every row after it."""
    lines = ["upn,mobile", f'ann@contoso.com,"+1 {NUMBERS[6]}']
    lines += [f"user{i}@contoso.com,+1 {NUMBERS[i % ROWS]}" for i in range(2_000)]
    return "\r\n".join(lines).encode()
