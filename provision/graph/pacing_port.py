"""The seam between GraphClient and the pacing controller.

The client only needs: "give me a slot in this lane for n operations", and afterwards
"here is what happened to each of them". ``Pacer`` is that contract; ``UnpacedPacer``
lets a client run without pacing (single tool calls, tests of the wire format).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from enum import StrEnum
from typing import AsyncContextManager, AsyncIterator, Protocol, Sequence

from provision.errors import GraphError


class Lane(StrEnum):
    READ = "read"
    WRITE = "write"


class Slot(Protocol):
    def report(self, errors: Sequence[GraphError | None]) -> None:
        """One entry per operation in the request: None for success, else its error."""


class Pacer(Protocol):
    def slot(self, lane: Lane, n: int) -> AsyncContextManager[Slot]:
        """Wait until a request of ``n`` operations may be dispatched in ``lane``."""


class _NullSlot:
    def report(self, errors: Sequence[GraphError | None]) -> None:
        return None


class UnpacedPacer:
    """No pacing: every request goes out at once."""

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[Slot]:
        yield _NullSlot()

    def slot(self, lane: Lane, n: int) -> AsyncContextManager[Slot]:
        return self._slot()
