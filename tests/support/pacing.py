"""Driving a Pacer by hand in virtual time, as a window server's clients would."""

from __future__ import annotations

import asyncio

from bench.pacing_sim import VirtualTimeLoop
from provision.graph.pacing import Lane, Pacer


async def admit_all(
    pacer: Pacer, loop: VirtualTimeLoop, *, workers: int, batch: int, until: float | None = None, quota: int | None = None
) -> list[float]:
    """``workers`` send ``batch``-write requests through the write lane, each admitted 0.2 s
    later, until the clock reaches ``until`` or ``quota`` writes got through. Returns each
    write's send time."""
    sent: list[float] = []

    def going() -> bool:
        return (until is None or loop.time() < until) and (quota is None or len(sent) < quota)

    async def worker() -> None:
        while going():
            async with pacer.slot(Lane.WRITE, batch) as slot:
                sent.extend([loop.time()] * batch)
                await asyncio.sleep(0.2)
                slot.report(200)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return sent


async def fill_window(pacer: Pacer, loop: VirtualTimeLoop, quota: int) -> float:
    """Four workers send 10-write batches, all admitted, until ``quota`` got through.
    Returns the first request's time."""
    first = loop.time()
    await admit_all(pacer, loop, workers=4, batch=10, quota=quota)
    return first
