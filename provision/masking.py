"""Masked phone numbers: the one rule for showing a number to a person, and the one rule
for recognising a number Graph itself masked.

Phone numbers are personal data. Every number that reaches a log line, a console, an
error message or a report cell a human reads goes through ``mask`` (a number on its own)
or ``mask_in_text`` (numbers inside free text: Graph's error messages, passthrough
cells, log lines). Both apply the same rule, so a number reads the same wherever it shows:
``+1 2065550100`` -> ``+1 *******100``; a number without a country code keeps only its last
three digits, and none when it has fewer than seven; an extension keeps no digit.

``is_masked`` answers the other question: did Graph hand us a masked number (callers
without full read rights see ``+1 XXXXXXX100`` or ``+1 *******100``)? The state reader,
the planner and the executor's read-back all ask it, so they never diff against, or
judge a write by, a number nobody can see.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

__all__ = ["fold", "is_masked", "mask", "mask_in_text"]

_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_DIGITS = re.compile(r"\d")
_KEEP_LAST = 3
_MIN_SHOWN = 7  # fewer national digits than this: show none of them

# Runs of 7+ digits with at most two separators between them, optionally "+"-led, with an
# optional extension: phone-number-looking text inside free text (messages, passthrough).
# Letters may touch it on either side ("Tel2065550100", "number+12065550100"): a number
# glued to a word is still a number. A run never starts inside a longer digit run's tail.
_PHONE_IN_TEXT = re.compile(
    r"(?<![\d+])\+?\d(?:[ \u00a0.\-/()]{0,2}\d){6,}(?:\s?(?i:x|ext\.?|#)\s?\d{1,8}(?!\d))?"
)

# Digit-bearing text that is not a phone number, found first and left whole, so a phone
# match can neither start inside it nor run into it: GUIDs (request ids, object ids), long
# hex ids and hashes, 0x-hex (HRESULTs, addresses), Entra sign-in error codes
# (``AADSTS7000215``), ISO dates and timestamps (also the compact ``20240501T020000Z`` of
# run directories), clock times, day/month/year dates, IPv4 addresses and "1-200 of 3000".
_NOT_A_PHONE = re.compile(
    r"(?=[0-9A-Fa-f])(?:"  # every form starts so: other positions fail at once
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?<![0-9A-Za-z])0[xX][0-9a-fA-F]+|AADSTS\d+"
    r"|(?<![0-9A-Za-z])(?=(?:[0-9]*[a-fA-F]){3})[0-9a-fA-F]{20,}(?![0-9A-Za-z])"
    r"|(?<!\d)\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?(?!\d)"
    r"|(?<!\d)\d{8}T\d{4,6}(?:[.,]\d+)?Z?(?!\d)"
    r"|(?<!\d)\d{1,2}:\d\d(?::\d\d)?(?:[.,]\d+)?(?!\d)"
    r"|(?<!\d)\d{1,2}([/.-])\d{1,2}\1\d{4}(?!\d)|(?<!\d)\d{4}/\d\d/\d\d(?!\d)"
    r"|(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"
    r"|(?<![\d+])\d+ ?[-\u2013] ?\d+ of \d+(?!\d)"
    r")"
)
_TEXT_EXTENSION = re.compile(r"\s?(?i:x|ext\.?|#)\s?\d{1,8}$")
# The x of an extension (x12, X12, " x 12"), not the X's of a Graph mask (+1 XXXXXXX100).
_EXTENSION_MARK = re.compile(r"(?<=[\d\s])[xX](?=\s?\d)")


def fold(text: str) -> str:
    """NFKC for non-ASCII text: full-width digits become ASCII, no-break spaces spaces."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def mask(number: str) -> str:
    """A number fit for logs and consoles: country code and last three digits only.

    ``+1 2065550100`` -> ``+1 *******100``; ``+44 2079460958x12`` -> ``+44 *******958x**``.
    Anything else (national forms, garbage) keeps at most its last three digits.
    """
    # Graph's own form (``+1 2065550100``), most numbers masked (a roster's shared mobiles:
    # tens of thousands per million rows), is cut at its space: ~0.6 us against 2-4 us for the
    # general rule below, whose answer it is (tests.test_masking).
    code, space, rest = number.partition(" ")
    if space and number.isascii() and rest.isdigit() and code.startswith("+") and code[1:].isdigit() and int(code[1:]) in _COUNTRY_CODES:
        return f"{code} {_hidden(rest)}"
    return _mask_any(number)


def _hidden(digits: str) -> str:
    """National digits as shown: the last three of seven or more, the others starred."""
    shown = digits[-_KEEP_LAST:] if len(digits) >= _MIN_SHOWN else ""
    return "*" * (len(digits) - len(shown)) + shown


def _mask_any(number: str) -> str:
    text = fold(number).strip()
    mark = _EXTENSION_MARK.search(text) if text.startswith("+") else None
    main, ext = (text[: mark.start()], text[mark.end() :]) if mark else (text, "")
    digits = "".join(_DIGITS.findall(main))
    if not digits:
        return "***"
    suffix = "x" + "*" * len(_DIGITS.findall(ext)) if ext else ""
    cc = _country_code(main, digits) if text.startswith("+") else ""
    hidden = _hidden(digits[len(cc) :])
    return f"+{cc} {hidden}{suffix}" if cc else f"{hidden}{suffix}"


def is_masked(number: str) -> bool:
    """Whether Graph masked this number (``+1 XXXXXXX100``, ``+1 *******100``, ``+1 xxxxxxx100``).

    A mask repeats its character; a real number never holds two x's in a row, whatever
    spelling its extension has (``x12``, ``X12``, ``ext. 12``).
    """
    return "*" in number or "xx" in number.lower()


def mask_in_text(text: str) -> str:
    """Every phone-number-looking run inside free text, masked by ``mask``'s rule.

    An extension keeps its spelling (``ext. 12`` -> ``ext. **``); a number glued to letters
    is masked too (``Tel2065550100`` -> ``Tel*******100``). GUIDs, hex ids, dates, ISO
    timestamps, clock times, IPv4 addresses, "1-200 of 3000" and short digit runs are left
    alone.
    """
    if _PHONE_IN_TEXT.search(text) is None:  # most text: no 7-digit run at all
        return text
    parts: list[str] = []
    end = 0
    for kept in _NOT_A_PHONE.finditer(text):
        parts.append(_PHONE_IN_TEXT.sub(_mask_match, text[end : kept.start()]))
        parts.append(kept.group(0))
        end = kept.end()
    parts.append(_PHONE_IN_TEXT.sub(_mask_match, text[end:]))
    return "".join(parts)


def _mask_match(m: re.Match[str]) -> str:
    raw = m.group(0)
    ext = _TEXT_EXTENSION.search(raw)
    if ext is None:
        return mask(raw)
    tail = "".join("*" if ch.isdigit() else ch for ch in ext.group(0))
    return mask(raw[: ext.start()]) + tail


def _country_code(main: str, digits: str) -> str:
    head = main[1:].split(" ", 1)[0] if " " in main else ""
    if head.isdigit() and int(head) in _COUNTRY_CODES:
        return head
    return next((digits[:n] for n in (1, 2, 3) if len(digits) > n and int(digits[:n]) in _COUNTRY_CODES), "")
