"""When two spellings of a phone number are the same number.

Numbers compare by digits and extension only: Graph echoes ``+1 2065550100``, older entries
may read ``+12065550100`` or ``+1 (206) 555-0100``, and none of these differences is a change.
"""

from __future__ import annotations

from provision.roster.numbers import canonical_digits

__all__ = ["same_handset", "same_number"]

# Fast paths before provision.roster.numbers.canonical_digits (regex based): identical strings, then
# the same string once spaces/punctuation go; only genuinely different spellings pay more.
_CANON_TABLE = str.maketrans({**{c: None for c in " +-()./\t"}, "X": "x"})


def _canonical(number: str) -> str:
    t = number.translate(_CANON_TABLE)
    main, _, ext = t.partition("x")
    if main.isascii() and main.isdigit() and (not ext or (ext.isascii() and ext.isdigit())):
        return t  # already digits[x digits]: what canonical_digits would return
    return canonical_digits(number)


def same_number(a: str, b: str) -> bool:
    """Same digits and same extension, however each is spelled."""
    return a == b or _canonical(a) == _canonical(b)


def same_handset(a: str, b: str) -> bool:
    """Same number apart from the extension: a write Graph doesn't treat as a new SMS number."""
    return _canonical(a).partition("x")[0] == _canonical(b).partition("x")[0]
