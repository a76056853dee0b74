"""The one fake clock of the test suite: manual monotonic time, a sleep that only moves it.

``FakeClock()`` is what code under test takes as ``clock=`` (it is callable and returns
``now``) and its ``sleep`` as ``sleep=``; nothing ever waits on the real clock.

- ``clock()``: the time now (seconds, a float; starts at ``start``, 1000.0 by default).
  With ``step=s`` every reading first moves the clock on by ``s``, so successive readings
  are distinct and exactly predictable (``start + s``, ``start + 2 s``, ...).
- ``clock.advance(seconds)`` / ``clock.now += seconds``: move the clock by hand.
- ``await clock.sleep(seconds)``: records ``seconds`` in ``clock.slept``, moves the clock
  on by it (at least ``MIN_SLEEP_S``, never backwards: a sleep shorter than the float
  resolution of ``now`` would not move it, and a loop "sleep until the deadline" would
  spin forever), then yields to the event loop once, like a real sleep.
- ``clock.utc()``: a reading (stepping like ``clock()``) as an aware UTC ``datetime``,
  ``now`` being seconds since the epoch; for code that takes a wall-clock datetime source
  (the run journal). ``FakeClock.utc_from(T0, step=1)`` starts such a clock at ``T0``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Callable

MIN_SLEEP_S = 1e-6
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""The default wall-clock start (``FakeClock.utc_from()``): a Monday morning, whole seconds."""
UtcClock = Callable[[], datetime]
"""A wall-clock datetime source, as the journal takes it (the ``utc_clock`` fixture is one)."""


class FakeClock:
    """A manual monotonic clock; ``sleep`` advances it (inject both for zero-wait tests)."""

    def __init__(self, start: float = 1000.0, *, step: float = 0.0) -> None:
        self.now = start
        self.step = step
        self.slept: list[float] = []

    @classmethod
    def utc_from(cls, start: datetime = T0, *, step: float = 1.0) -> "FakeClock":
        """A clock whose ``utc()`` readings are ``start + step``, ``start + 2 step``, ..."""
        return cls(start.timestamp(), step=step)

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self(), UTC)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(MIN_SLEEP_S, seconds)
        await asyncio.sleep(0)
