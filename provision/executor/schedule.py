"""What the executor has to send next: writes ready now, read-backs due now, and both
kinds waiting for their time (a retry's wait, a read-back's settle time)."""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Callable

from provision.executor.answers import Purpose
from provision.executor.chains import ChangeItem, UserChain

__all__ = ["Schedule"]


class Schedule:
    """Queues of ready writes and due read-backs, and a timer heap feeding them."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.writes: deque[ChangeItem] = deque()
        self.reads: deque[UserChain] = deque()
        self.timers: list[tuple[float, int, ChangeItem | UserChain]] = []  # (due, tiebreak, what)
        self._tiebreak = itertools.count()

    def __bool__(self) -> bool:
        """Anything left to send, now or later."""
        return bool(self.writes or self.reads or self.timers)

    @property
    def due(self) -> bool:
        """Anything to send now."""
        return bool(self.writes or self.reads)

    @property
    def next_time(self) -> float | None:
        """When the first waiting write or read-back becomes due."""
        return self.timers[0][0] if self.timers else None

    def write(self, item: ChangeItem, delay: float = 0.0) -> None:
        """Send ``item`` after ``delay`` seconds (at once when 0)."""
        if delay <= 0:
            self.writes.append(item)
        else:
            self.write_at(self.clock() + delay, item)

    def write_at(self, due: float, item: ChangeItem) -> None:
        heapq.heappush(self.timers, (due, next(self._tiebreak), item))

    def read(self, user: UserChain, purpose: Purpose, due: float) -> None:
        """Read ``user``'s phones back at ``due`` (a fresh read: its attempts start at 0)."""
        user.purpose = purpose
        user.read_attempts = 0
        if due <= self.clock():
            self.reads.append(user)
        else:
            heapq.heappush(self.timers, (due, next(self._tiebreak), user))

    def release(self, now: float) -> None:
        """Move everything due by ``now`` to its queue."""
        timers = self.timers
        while timers and timers[0][0] <= now:
            _, _, what = heapq.heappop(timers)
            if isinstance(what, ChangeItem):
                self.writes.append(what)
            else:
                self.reads.append(what)

    def take_reads(self, limit: int) -> list[UserChain]:
        return [self.reads.popleft() for _ in range(min(limit, len(self.reads)))]

    def take_writes(self, limit: int) -> list[ChangeItem]:
        return [self.writes.popleft() for _ in range(min(limit, len(self.writes)))]
