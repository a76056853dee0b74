"""How the core reports progress without printing (the CLI draws it; tests record it).

The reader, state reader, executor and report call a ``Console``; the CLI implements it
with rich (TTY) or JSON lines (no TTY), and library callers get ``NullConsole``. Every
message given to a console is already free of unmasked phone numbers.
"""

from __future__ import annotations

from typing import Any, Protocol


class Console(Protocol):
    def stage(self, name: str, total: int | None = None) -> None:
        """A long step starts: ``reading roster``, ``reading users``, ``applying``..."""

    def advance(self, name: str, done: int, total: int | None = None, **fields: Any) -> None:
        """Progress within a stage; ``fields`` carry ops_per_s, throttled, pause, eta_s..."""

    def note(self, level: str, message: str, **fields: Any) -> None:
        """A line for the log: level is debug|info|warning|error."""


class NullConsole:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, name: str, done: int, total: int | None = None, **fields: Any) -> None:
        pass

    def note(self, level: str, message: str, **fields: Any) -> None:
        pass
