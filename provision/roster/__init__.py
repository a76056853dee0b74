"""Roster files -> a ``Roster``: what each user's phones should be, and every row's problems.

The first stage of the pipeline, and the only one that reads HR files:

``files``        a CSV/TSV file (pyarrow), an Excel workbook (calamine) or a DataFrame as records
``columns``      which column holds which field (the job's mapping, then known headers)
``numbers``      one typed phone number -> Graph's ``+CC NSN[xEXT]`` form, or why not
``number_pool``  many phone cells normalised at once, in worker processes for big files
``row_phones``   a row's phones as a compact read-only mapping
``memory``       handing freed memory back to the OS after the big steps
``reader``       ``read_roster``: all of the above, plus the checks across rows
``result``       the ``Roster`` it returns: columns, its rows and users made when read

Callers use ``read_roster`` and ``Roster``; the planner and the executor compare numbers
with ``canonical_digits``. The names below are loaded on first use, so importing one
submodule (the planner imports ``numbers``; worker processes import ``number_pool``)
does not load the reader. pyarrow, pandas and openpyxl are imported only when a file
needs them. Nothing here imports the Graph SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provision.roster.numbers import canonical_digits, normalise, region_for
    from provision.roster.reader import read_roster
    from provision.roster.result import Roster

__all__ = ["Roster", "canonical_digits", "normalise", "read_roster", "region_for"]

_HOMES = {
    "Roster": "provision.roster.result",
    "read_roster": "provision.roster.reader",
    "canonical_digits": "provision.roster.numbers",
    "normalise": "provision.roster.numbers",
    "region_for": "provision.roster.numbers",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # later lookups don't come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
