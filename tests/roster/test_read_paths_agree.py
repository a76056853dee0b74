"""Every way a roster reaches the reader gives the same ``Roster``: a seeded differential test.

Random but realistic rosters (blank rows and cells, users spelled every way, a user on
several rows with the same or other values, mobiles shared by users, numbers in every style
people type, countries, SMS flags, unicode passthrough cells) are read through each path
the reader has, and every read must give the reference's rows, issues (in order), users
and blank rows:

- a CSV parsed by pyarrow (user cells matched by RE2), the reference, read in one batch;
  the same CSV again, in worker processes, and with its blank rows as empty lines;
- the same cells in CSVs pyarrow refuses (rows without their trailing empty cells, as
  some exporters write them) from the first block, or only half-way (pyarrow's blocks
  first, then the csv module); with the header on row 3 (csv module only); as a
  PowerShell export (``#TYPE`` line, every cell quoted), both ways;
- DataFrames of the same cells (rows 2..n+1), blanks as "" or as missing values;
- .xlsx workbooks of the same cells as text, inline (openpyxl) or shared (Excel) strings,
  parsed whole and head first (``sheet_head``), one with its header on row 3.

All but the reference read with batches, pyarrow blocks, worker pieces and the answers
kept across batches made tiny, so a few hundred rows cross every batch edge the checks
across rows (repeated users, shared mobiles, remembered cells, blank rows) must see
through. Rows a header further down are compared with their row numbers moved; failures
show the first difference of each part, with numbers masked.
"""

from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from dataclasses import dataclass, fields, is_dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import pytest
from support.roster_writers import write_xlsx

from provision.masking import mask_in_text
from provision.model import DesiredUser, RosterRow, RowIssue, Severity
from provision.roster import files, number_pool, reader, sheet_head
from provision.roster.reader import Roster, read_roster

HEADER = [
    "User Principal Name", "Mobile Phone", "Département", "Alternate Mobile", "Office Phone", "Country", "SMS sign-in", "Notes",
]
USER, MOBILE, DEPARTMENT, ALTERNATE, OFFICE, COUNTRY, SMS, NOTES = range(len(HEADER))
SHEET = "Staff"


# -- the rosters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A valid number: calling code, trunk prefix, national groups."""

    cc: str
    trunk: str
    groups: tuple[str, ...]

    def spelled(self, style: str) -> str:
        spaced = " ".join(self.groups)
        national = self.trunk + spaced
        return {
            "e164": f"+{self.cc}{''.join(self.groups)}",
            "intl": f"+{self.cc} {spaced}",
            "intl_trunk": f"+{self.cc} ({self.trunk or '1'}) {spaced}",
            "national": national,
            "dotted": self.trunk + ".".join(self.groups),
            "dashed": self.trunk + "-".join(self.groups),
            "parenthesised": f"({self.trunk}{self.groups[0]}) {' '.join(self.groups[1:])}",
            "idd00": f"00{self.cc} {spaced}",
            "idd011": f"011 {self.cc} {spaced}",
            "tel": f"tel:+{self.cc}-{'-'.join(self.groups)}",
            "fullwidth": f"+{self.cc} {spaced}".translate(_FULLWIDTH),  # typed with a Japanese IME
            "padded": f"  +{self.cc} {spaced}\t",
        }[style]


_FULLWIDTH = str.maketrans("+0123456789", "＋０１２３４５６７８９")
INTERNATIONAL = ("e164", "intl", "idd00", "tel", "fullwidth", "padded")
STYLES = (*INTERNATIONAL, "intl_trunk", "national", "national", "dotted", "dashed", "parenthesised", "idd011")
EXTENSIONS = (" ext. 12", " x5", " #7", ";ext=3", " extension 40")
GARBAGE = (
    "n/a", "N/A", "TBD", "call reception", "-", "none", "555", "12345", "+44 7911 12345O", "1-800-FLOWERS",
    "4.47911E+11", "+999 1234 5678", "0791", "+44 7911 123456 123456", "ask HR", "mobile: see Teams", "?",
)
REGIONS = ("GB", "US", "DE", "FR")
CALLING = {"GB": "44", "US": "1", "DE": "49", "FR": "33"}
BAD_REGIONS = ("Atlantis", "ZZ", "+999", "United Kingdom", "Europe/London")
SMS_CELLS = ("yes", "Yes", "Y", "no", "NO", "n", "true", "FALSE", "1", "0", "enabled", "off", " yes ", "\tNo")
BAD_SMS = ("maybe", "sí", "2", "yes please", "ja")
BLANKISH = ("", "", "", "", " ", "\xa0", "\t")  # what a blank cell may hold
NAMES = (
    "ann", "ben.okafor", "chloé", "dmitri", "zoë", "jürgen", "straße", "o'neil", "li_wei", "maría-josé",
    "sam+mfa", "ÅSA", "priya.n", "kenji", "fatima", "noah", "ewa", "lukas", "amélie", "tom-lee",
)
DOMAINS = ("contoso.com", "Fabrikam.co.uk", "corp.example.org", "tailspin.de")
INVALID_USERS = (
    "ann", "ann@", "@contoso.com", "ann@@contoso.com", "ann lee@contoso.com", "contoso\\ann", "ann@contoso",
    "ann@contoso..com", "{3F2504E0-4F89-11D3-9A0C-0305E82C330}", "\u200b", "n/a", "ann@contoso.com; ben@contoso.com",
)
DEPARTMENTS = (
    "", "", "Ventes", "Éditions", "Straße & Wege", "東京オフィス", "Zoë's team", "R&D, Europe", 'the "A" team',
    "Ops; night",
    "Help desk | L2", "two\nlines", " padded ", "Кадры", "🚀 growth", "\u200bhidden",
)
# Line breaks as "\n" only: a workbook's XML turns "\r\n" into "\n", so the cells would differ.
NOTES_CELLS = (
    "", "", "", "", "VIP", "left 2023", "ñandú", 'see: "HR" file', "a,b,c", "tab\there", "line one\nline two",
    "😀", "¿qué?",
)


def mobile_number(rng: random.Random, region: str, reserved: bool = False) -> Number:
    """A valid mobile (by libphonenumber) of ``region``; ``reserved``: from a range the
    random rows never use, for the planted rows."""
    n = rng.randrange(200_000, 300_000) if reserved else rng.randrange(200_000)  # 07911 3xxxxx on are not valid
    d = f"{n:06d}"
    if region == "GB" or reserved:
        return Number("44", "0", ("7911", d))
    if region == "DE":
        return Number("49", "0", ("151", "23" + d[:2], d[2:]))
    if region == "FR":
        return Number("33", "0", ("6", "12", "34", d[2:4], d[4:]))
    return Number("1", "", (rng.choice(("206", "425")), "555", d[2:]))


def office_number(rng: random.Random, region: str) -> Number:
    d = f"{rng.randrange(10_000):04d}"
    if region == "GB":
        return Number("44", "0", ("20", "7946", d))
    if region == "FR":
        return Number("33", "0", ("1", "40", d[:2], d[2:], "00"))
    if region == "DE":
        return Number("49", "0", ("30", "1234" + d))
    return Number("1", "", ("425", "555", d))


@dataclass
class Identity:
    """One person: a UPN (``local@domain``) or an object id; ``last``: its latest row."""

    local: str | None
    domain: str
    guid: str | None = None
    last: list[str] | None = None

    def spelled(self, rng: random.Random) -> str:
        if self.guid is not None:
            return rng.choice((self.guid, self.guid.upper(), "{" + self.guid.upper() + "}", f" {{{self.guid}}} "))
        upn = f"{self.local}@{self.domain}"
        lower = upn.lower()
        return rng.choice((lower, lower, lower, upn, upn.upper(), f"  {lower} ", f"\t{lower}", f"{lower}\xa0", upn.title()))


@dataclass
class Generated:
    """A roster's data rows (each as wide as ``HEADER``) and what was planted in it."""

    rows: list[list[str]]
    default_region: str | None
    merged: tuple[str, str] = ("", "")  # user cells of a user's two identical rows
    conflict: tuple[str, str] = ("", "")  # a user's two rows with different mobiles
    shared: tuple[str, str] = ("", "")  # two users with one mobile


class Generator:
    """A seed's roster. A few mobiles go to many people (shared mobiles, across batches),
    and two switchboard numbers fill a fifth of the office cells: cells met again and again,
    whose answers the reader keeps across batches (``reader.KNOWN_CELLS``)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.identities: list[Identity] = []
        self.shared = [mobile_number(self.rng, self.rng.choice(REGIONS)) for _ in range(6)]
        self.switchboards = [office_number(self.rng, region) for region in ("GB", "US")]

    def identity(self) -> Identity:
        rng = self.rng
        k = len(self.identities)
        if rng.random() < 0.12:
            guid = "%08x-%04x-%04x-%04x-%012x" % tuple(rng.getrandbits(b) for b in (32, 16, 16, 16, 48))
            found = Identity(None, "", guid)
        else:
            found = Identity(f"{rng.choice(NAMES)}{k}", rng.choice(DOMAINS))
        self.identities.append(found)
        return found

    def phone(self, number: Number, region_cell: str) -> str:
        """``number`` typed some way; national ways mostly beside its own country."""
        rng = self.rng
        style = rng.choice(STYLES if region_cell.strip() else INTERNATIONAL)
        text = number.spelled(style)
        return text + rng.choice(EXTENSIONS) if rng.random() < 0.05 else text

    def region_cell(self, home: str) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return rng.choice(BLANKISH)
        if roll < 0.22:
            return rng.choice(BAD_REGIONS)
        if roll < 0.28:
            home = rng.choice(REGIONS)  # a country other than the numbers'
        return rng.choice((home, home.lower(), f"+{CALLING[home]}", CALLING[home], f" {home} ", "UK" if home == "GB" else home))

    def phones(self) -> tuple[str, str, str, str, str]:
        """(mobile, alternate, office, country, sms) of a row of a random person."""
        rng = self.rng
        home = rng.choice(REGIONS)
        country = self.region_cell(home)
        roll = rng.random()
        if roll < 0.25:
            mobile = rng.choice(BLANKISH)
        elif roll < 0.35:
            mobile = rng.choice(GARBAGE)
        elif roll < 0.45:
            mobile = rng.choice(self.shared).spelled(rng.choice(INTERNATIONAL))
        else:
            mobile = self.phone(mobile_number(rng, home), country)
        alternate = rng.choice(BLANKISH)
        if rng.random() < 0.15:
            alternate = self.phone(mobile_number(rng, home), country) if rng.random() < 0.8 else rng.choice(GARBAGE)
        roll = rng.random()
        if roll < 0.45:
            office = rng.choice(BLANKISH)
        elif roll < 0.65:
            office = rng.choice(self.switchboards).spelled(rng.choice(("intl", "e164")))  # repeated cells
        else:
            office = self.phone(office_number(rng, home), country)
        roll = rng.random()
        sms = rng.choice(BLANKISH) if roll < 0.5 else rng.choice(SMS_CELLS) if roll < 0.93 else rng.choice(BAD_SMS)
        return mobile, alternate, office, country, sms

    def row(self) -> list[str]:
        rng = self.rng
        roll = rng.random()
        person: Identity | None = None
        if roll < 0.05:
            user = rng.choice(INVALID_USERS)
        elif roll < 0.08:
            user = rng.choice(BLANKISH)  # phones without a user
        else:
            repeat = self.identities and rng.random() < 0.2
            person = rng.choice(self.identities) if repeat else self.identity()
            user = person.spelled(rng)
        if person is not None and person.last is not None and rng.random() < 0.5:
            mobile, alternate, office, country, sms = (person.last[i] for i in (MOBILE, ALTERNATE, OFFICE, COUNTRY, SMS))
        else:
            mobile, alternate, office, country, sms = self.phones()
        cells = [user, mobile, rng.choice(DEPARTMENTS), alternate, office, country, sms, rng.choice(NOTES_CELLS)]
        if person is not None:
            person.last = cells
        return cells

    def filled_row(self) -> list[str]:
        while is_blank(cells := self.row()):
            pass
        return cells

    def blank_rows(self) -> list[list[str]]:
        """One or a run of blank rows (a run can fill a whole tiny batch); some hold spaces."""
        rng = self.rng
        return [
            [rng.choice(BLANKISH) if rng.random() < 0.2 else "" for _ in HEADER] for _ in range(rng.choice((1, 1, 1, 2, 5)))
        ]

    def roster(self, encoding: str) -> Generated:
        rng = self.rng
        rows: list[list[str]] = []
        for _ in range(rng.randint(230, 320)):
            rows.extend(self.blank_rows() if rng.random() < 0.03 else [self.row()])
        first = self.filled_row()
        first[NOTES] = ""  # a trailing empty cell in the first row: see ``csv_text``
        rows[0:0] = [first]
        rows.append(self.filled_row())  # a workbook keeps no blank row after its last used one
        generated = Generated(rows, rng.choice((None, None, "GB", "US")))
        self.plant(generated)
        generated.rows = in_encoding(generated.rows, encoding)
        return generated

    def plant(self, generated: Generated) -> None:
        """Rows whose fate is known (their cells are clean), at random places."""
        rng = self.rng
        one, two, three = (mobile_number(rng, "GB", reserved=True) for _ in range(3))

        def clean(user: str, mobile: str, country: str = "GB", sms: str = "yes") -> list[str]:
            return [user, mobile, rng.choice(DEPARTMENTS), "", "", country, sms, rng.choice(NOTES_CELLS)]

        planted = [
            clean("planted.merge@contoso.com", one.spelled("intl")),
            clean("Planted.Merge@Contoso.com", one.spelled("national"), country="gb", sms="Y"),  # the same values
            clean("planted.conflict@contoso.com", two.spelled("e164")),
            # the merged user's mobile, on a row in error: it shares it with nobody
            clean(" PLANTED.CONFLICT@contoso.com", one.spelled("e164"), sms=""),
            clean("planted.share1@contoso.com", three.spelled("e164"), sms=""),
            clean("planted.share2@fabrikam.co.uk", three.spelled("idd00"), country=""),
        ]
        generated.merged = (planted[0][USER], planted[1][USER])
        generated.conflict = (planted[2][USER], planted[3][USER])
        generated.shared = (planted[4][USER], planted[5][USER])
        rows = generated.rows
        for row in planted:
            rows.insert(rng.randrange(1, len(rows)), row)


# -- the same cells, written every way -----------------------------------------------------


def is_blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


@dataclass(frozen=True)
class Layout:
    """How a CSV lays out the same cells.

    ``short_from``: rows from this one on lose their trailing empty cells (some exporters
    write them so): pyarrow refuses a row narrower than the header, the csv module reads it
    padded, the cells the same. The first row ends in an empty cell, so ``short_from=0``
    sends the whole file to the csv module. ``stray``: rows given a cell past the header
    (an unquoted delimiter in a value). ``blank_above``: empty lines above the header (its
    row number then differs). ``powershell``: ``Export-Csv``'s ``#TYPE`` line above the
    header and every cell quoted. ``empty_lines``: a row of empty cells as an empty line
    (pyarrow reads it as such a row)."""

    short_from: int | None = None
    stray: frozenset[int] = frozenset()
    blank_above: int = 0
    powershell: bool = False
    empty_lines: bool = False


def csv_text(rows: list[list[str]], case: Case, layout: Layout) -> str:
    out = io.StringIO()
    end = case.newline
    if layout.powershell:
        out.write("#TYPE System.Management.Automation.PSCustomObject" + end)
    out.write(end * layout.blank_above)
    quoting = csv.QUOTE_ALL if layout.powershell else csv.QUOTE_MINIMAL
    writer = csv.writer(out, delimiter=case.delimiter, lineterminator=end, quoting=quoting)
    writer.writerow(HEADER)
    for k, cells in enumerate(rows):
        if k in layout.stray:
            cells = [*cells, "", "stray"]
        elif layout.short_from is not None and k >= layout.short_from:
            width = max((i + 1 for i, cell in enumerate(cells) if cell), default=0)
            cells = cells[:width]
        elif layout.empty_lines and not any(cells):
            cells = []
        writer.writerow(cells)
    return out.getvalue()


def write_csv_as(path: Path, rows: list[list[str]], case: Case, layout: Layout = Layout()) -> Path:
    path.write_bytes(csv_text(rows, case, layout).encode(case.encoding))  # utf-16 and utf-8-sig write their BOM
    return path


def in_encoding(rows: list[list[str]], encoding: str) -> list[list[str]]:
    """The rows as a file in ``encoding`` can hold them (cp1252: no CJK, no emoji)."""
    return [[cell.encode(encoding, "replace").decode(encoding) for cell in cells] for cells in rows]


def frame_of(rows: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=HEADER, dtype=object)


def frame_with_missing(rows: list[list[str]]) -> pd.DataFrame:
    """The same cells in pandas' string dtype, an empty cell missing (NA), as ``read_csv`` gives them."""
    return pd.DataFrame(rows, columns=HEADER, dtype="string").replace("", pd.NA)


def workbook_of(path: Path, rows: list[list[str]], blank_above: int = 0) -> Path:
    """The same cells as text cells; an empty one left out, as Excel leaves it."""
    above: list[list[str | None]] = [[] for _ in range(blank_above)]
    return write_xlsx(path, {SHEET: [*above, HEADER, *([cell or None for cell in cells] for cells in rows)]})


_INLINE = re.compile(
    rb'<c r="([A-Z]+[0-9]+)" t="inlineStr"(?: ?/>|><is>(<t(?: xml:space="preserve")?>.*?</t>)</is></c>)', re.DOTALL
)
_RELATIONS = b"http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def with_shared_strings(path: Path, out: Path) -> Path:
    """The workbook as Excel saves it, its text in a shared strings part (openpyxl writes
    each text inline): the head's copy of the workbook must carry that part along."""
    with zipfile.ZipFile(path) as book:
        parts = {name: book.read(name) for name in book.namelist()}
    strings: dict[bytes, int] = {}

    def shared(cell: re.Match[bytes]) -> bytes:
        if cell.group(2) is None:
            return b""  # an empty text cell: Excel keeps none
        return b'<c r="%s" t="s"><v>%d</v></c>' % (cell.group(1), strings.setdefault(cell.group(2), len(strings)))

    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = _INLINE.sub(shared, parts[sheet])
    assert b"inlineStr" not in parts[sheet]
    items = b"".join(b"<si>%s</si>" % text for text in strings)
    parts["xl/sharedStrings.xml"] = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">%s</sst>'
        % (len(strings), len(strings), items)
    )
    rels = "xl/_rels/workbook.xml.rels"
    parts[rels] = parts[rels].replace(
        b"</Relationships>",
        b'<Relationship Type="%s/sharedStrings" Target="sharedStrings.xml" Id="rIdStrings" /></Relationships>' % _RELATIONS,
    )
    types = "[Content_Types].xml"
    parts[types] = parts[types].replace(
        b"</Types>",
        b'<Override PartName="/xl/sharedStrings.xml" '
        b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml" /></Types>',
    )
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for name, data in parts.items():
            book.writestr(name, data)
    return out


# -- comparing rosters, numbers masked -----------------------------------------------------


IssueKey = tuple[int, str | None, Severity, str, str]


@dataclass(frozen=True)
class Outcome:
    """What a read gave, the sheet name left out (a workbook's rows and issues carry it)."""

    columns: dict[str, str]
    extra_columns: tuple[str, ...]
    rows: tuple[RosterRow, ...]
    issues: tuple[IssueKey, ...]
    users: tuple[tuple[str, DesiredUser], ...]
    blank_rows: int


def outcome(roster: Roster) -> Outcome:
    return Outcome(
        dict(roster.columns),
        roster.extra_columns,
        tuple(replace(row, sheet=None) for row in roster.rows),
        tuple(issue_key(issue) for issue in roster.issues),
        tuple(roster.users.items()),
        roster.blank_rows,
    )


def issue_key(issue: RowIssue) -> IssueKey:
    return (issue.row, issue.column, issue.severity, issue.code, issue.reason)


_ROWS_IN_REASON = re.compile(r"(?<=row\(s\) )\d+(?:, \d+)*")


def moved(found: Outcome, by: int) -> Outcome:
    """``found`` as if its rows were ``by`` rows further down (a header below row 1)."""

    def reason(text: str) -> str:
        return _ROWS_IN_REASON.sub(lambda m: ", ".join(str(int(n) + by) for n in m.group(0).split(", ")), text)

    return replace(
        found,
        rows=tuple(replace(row, row=row.row + by) for row in found.rows),
        issues=tuple((row + by, column, severity, code, reason(text)) for row, column, severity, code, text in found.issues),
        users=tuple((key, replace(user, rows=tuple(row + by for row in user.rows))) for key, user in found.users),
    )


def masked(value: object) -> str:
    """A value for a failure message: numbers masked, and no digit run long enough to be one."""
    return re.sub(r"\d{5,}", lambda m: "*" * len(m.group(0)), mask_in_text(repr(value)))


def differences(expected: Outcome, got: Outcome) -> list[str]:
    """Where ``got`` differs from ``expected``: the first difference of each part, masked."""
    found: list[str] = []
    for part in ("columns", "extra_columns", "blank_rows"):
        if getattr(expected, part) != getattr(got, part):
            found.append(f"{part}: {masked(getattr(expected, part))} != {masked(getattr(got, part))}")
    for part in ("rows", "issues", "users"):
        mine: tuple[object, ...] = getattr(expected, part)
        theirs: tuple[object, ...] = getattr(got, part)
        at = next((k for k, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
        if at < len(mine) or at < len(theirs):
            a = mine[at] if at < len(mine) else None
            b = theirs[at] if at < len(theirs) else None
            found.append(f"{part} ({len(mine)} vs {len(theirs)}), first difference at #{at}: {unlike(a, b)}")
    return found


def unlike(a: object, b: object) -> str:
    """Two values' differing fields (a user's item: its key, then its fields), masked."""
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) == 2 and a[0] == b[0]:
        return f"{masked(a[0])}: {unlike(a[1], b[1])}"
    if is_dataclass(a) and type(a) is type(b):
        named = [(f.name, getattr(a, f.name), getattr(b, f.name)) for f in fields(a)]
        return ", ".join(f"{name} {masked(x)} != {masked(y)}" for name, x, y in named if x != y)
    return f"{masked(a)} != {masked(b)}"


# -- the reads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tiny:
    """The batching constants made small: rows per batch (DataFrame, workbook, csv module)
    and per edge batch; pyarrow's block bytes (its batches); cells per worker piece;
    answers kept across batches; and the share of the sheet's XML read first."""

    batch_rows: int
    edge_rows: int
    block_bytes: int
    piece_cells: int
    known_cells: int
    head_share: float


@dataclass(frozen=True)
class Case:
    seed: int
    delimiter: str
    encoding: str
    tiny: Tiny
    newline: str = "\r\n"

    def __str__(self) -> str:
        return f"seed{self.seed}"


# Chosen, not drawn, so each extreme is met: one row per batch; an edge batch longer than
# a pyarrow block; a head of only a few rows, and one holding the whole sheet.
CASES = [
    Case(11, ",", "utf-8", Tiny(1, 1, 1_500, 1, 1, 0.05)),
    Case(23, ";", "utf-8-sig", Tiny(3, 1, 2_000, 2, 3, 0.3)),
    Case(42, "\t", "utf-16", Tiny(7, 3, 4_000, 8, 4, 0.5)),
    Case(77, "|", "utf-8", Tiny(16, 8, 1_500, 1, 12, 0.9), newline="\n"),
    Case(101, ",", "utf-16", Tiny(40, 25, 2_500, 3, 1, 0.2)),
    Case(256, ";", "utf-8", Tiny(2, 1, 3_000, 5, 2, 1.5)),
    Case(1009, ",", "utf-8-sig", Tiny(11, 5, 1_200, 4, 6, 0.7), newline="\n"),
    Case(4242, "\t", "utf-8", Tiny(5, 2, 2_000, 1, 1, 0.4)),
    Case(31, ";", "cp1252", Tiny(4, 2, 1_800, 2, 3, 0.6)),
]


def use_tiny_batches(monkeypatch: pytest.MonkeyPatch, tiny: Tiny) -> None:
    """Every constant the batching reads at call time, small. ``batched`` (the csv-module
    path's batches) binds ``BATCH_ROWS`` as a default when defined, so it is wrapped;
    ``_block_size`` never goes below 64 KiB, so pyarrow's blocks are set directly."""
    monkeypatch.setattr(files, "BATCH_ROWS", tiny.batch_rows)
    monkeypatch.setattr(files, "EDGE_ROWS", tiny.edge_rows)
    monkeypatch.setattr(files, "batched", partial(_batched, files.batched, tiny.batch_rows))
    monkeypatch.setattr(files, "_block_size", lambda sample, encoding: tiny.block_bytes)
    monkeypatch.setattr(number_pool, "PIECE_CELLS", tiny.piece_cells)
    monkeypatch.setattr(reader, "KNOWN_CELLS", tiny.known_cells)


def _batched(
    original: Callable[[Iterator[files.Record], int, int], Iterator[files.Batch]],
    size: int,
    records: Iterator[files.Record],
    width: int,
    _: int = 0,
) -> Iterator[files.Batch]:
    return original(records, width, size)


def read_head_first(path: Path, share: float, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Roster:
    """The workbook read with its sheet's first ``share`` of XML as the head."""
    with zipfile.ZipFile(path) as book:
        size = book.getinfo("xl/worksheets/sheet1.xml").file_size
    with monkeypatch.context() as patched:
        patched.setattr(sheet_head, "HEAD_BYTES", int(size * share))
        patched.setattr(sheet_head, "MIN_SHEET_BYTES", 0)
        assert sheet_head.sheet_head(path, SHEET) is not None  # the fixture holds a head to read first
        return read_roster(path, **options)


# -- what every read must say --------------------------------------------------------------


def check_facts(roster: Roster, generated: Generated) -> None:
    """What the generated rows say the roster is, whichever way it was read (no phone shown)."""
    kept = [(number, cells) for number, cells in enumerate(generated.rows, start=2) if not is_blank(cells)]
    assert [row.row for row in roster.rows] == [number for number, _ in kept]
    assert roster.blank_rows == len(generated.rows) - len(kept)
    assert [row.user for row in roster.rows] == [cells[USER].strip() for _, cells in kept]
    assert [dict(row.extra) for row in roster.rows] == [
        {"Département": cells[DEPARTMENT].strip(), "Notes": cells[NOTES].strip()} for _, cells in kept
    ]
    errors = {issue.row for issue in roster.issues if issue.severity is Severity.ERROR}
    users = roster.users
    # A row without error gives its user (merged or alone); a row with one never does.
    astray = [
        row.row for row in roster.rows
        if (row.row in errors) == (row.key is not None and row.key in users and row.row in users[row.key].rows)
    ]
    assert astray == []
    by_row: dict[int, set[str]] = {}
    for issue in roster.issues:
        by_row.setdefault(issue.row, set()).add(issue.code)
    number_of = {cells[USER]: number for number, cells in kept}
    merged = tuple(sorted(number_of[user] for user in generated.merged))
    assert users["planted.merge@contoso.com"].rows == merged and not by_row.keys() & set(merged)
    assert "planted.conflict@contoso.com" not in users
    assert all("duplicate_user_conflict" in by_row.get(number_of[user], ()) for user in generated.conflict)
    assert all(by_row.get(number_of[user]) == {"duplicate_mobile"} for user in generated.shared)
    counts = roster.issue_counts()
    common = ("invalid_user", "missing_user", "invalid_region", "invalid_sms_sign_in", "not_a_number", "extension_not_allowed")
    assert [code for code in common if not counts[code]] == []
    assert any(len(user.rows) > 1 for key, user in users.items() if not key.startswith("planted."))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_read_path_gives_the_same_roster(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generated = Generator(case.seed).roster(case.encoding)
    rows = generated.rows
    options: dict[str, Any] = {"default_region": generated.default_region}
    half = len(rows) // 2
    fast = write_csv_as(tmp_path / "fast.csv", rows, case)
    book = workbook_of(tmp_path / "roster.xlsx", rows)
    excel_book = with_shared_strings(book, tmp_path / "excel.xlsx")

    reference = read_roster(fast, workers=0, **options)  # one batch: nothing crosses a batch's edge
    check_facts(reference, generated)
    expected = outcome(reference)

    tiny = case.tiny
    use_tiny_batches(monkeypatch, tiny)

    def csv_read(name: str, layout: Layout, workers: int = 0) -> Callable[[], Roster]:
        return lambda: read_roster(write_csv_as(tmp_path / f"{name}.csv", rows, case, layout), workers=workers, **options)

    def head_first(path: Path, workers: int) -> Callable[[], Roster]:
        return lambda: read_head_first(path, tiny.head_share, monkeypatch, workers=workers, **options)

    # name -> (the read, how many rows further down its header is than the reference's)
    reads: dict[str, tuple[Callable[[], Roster], int]] = {
        "csv, pyarrow, 2 workers": (lambda: read_roster(fast, workers=2, **options), 0),
        "csv, pyarrow": (lambda: read_roster(fast, workers=0, **options), 0),
        "csv, empty lines, pyarrow": (csv_read("empty_lines", Layout(empty_lines=True)), 0),
        "csv, csv module": (csv_read("tolerant", Layout(short_from=0)), 0),
        "csv, pyarrow then csv module": (csv_read("switched", Layout(short_from=half)), 0),
        "csv, header on row 3 (csv module)": (csv_read("below", Layout(blank_above=2)), 2),
        "PowerShell csv, pyarrow": (csv_read("typed", Layout(powershell=True)), 1),
        "PowerShell csv, csv module": (csv_read("typed_tolerant", Layout(short_from=0, powershell=True)), 1),
        "DataFrame": (lambda: read_roster(frame_of(rows), workers=0, **options), 0),
        "DataFrame, blanks missing": (lambda: read_roster(frame_with_missing(rows), workers=0, **options), 0),
        "xlsx": (lambda: read_roster(book, workers=0, **options), 0),
        "xlsx, head first": (head_first(book, workers=0), 0),
        "xlsx, shared strings": (lambda: read_roster(excel_book, workers=0, **options), 0),
        "xlsx, shared strings, head first, 2 workers": (head_first(excel_book, workers=2), 0),
        "xlsx, header on row 3, head first": (head_first(workbook_of(tmp_path / "below.xlsx", rows, blank_above=2), 0), 2),
    }
    disagreements = {name: differences(moved(expected, by), outcome(read())) for name, (read, by) in reads.items()}
    # Rows wider than the header: pyarrow refuses them, so only the csv module reads them,
    # from the start or from a block half-way; each such row is an error of its own.
    stray = frozenset(random.Random(case.seed).sample([k for k in range(half, len(rows)) if not is_blank(rows[k])], 3))
    wide = csv_read("wide", Layout(short_from=0, stray=stray))()
    assert [i.row for i in wide.issues if i.code == "extra_cells"] == sorted(k + 2 for k in stray)
    assert [r.row for r in wide.rows] == [r.row for r in reference.rows]
    disagreements["csv with stray cells, pyarrow then csv module"] = differences(
        outcome(wide), outcome(csv_read("wide_switched", Layout(short_from=half, stray=stray))())
    )
    shown = [f"{name}:\n" + "\n".join(found) for name, found in disagreements.items() if found]
    if shown:
        pytest.fail(f"{case} ({case.delimiter!r}, {case.encoding}), {tiny}:\n" + "\n".join(shown), pytrace=False)
