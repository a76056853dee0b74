"""Driving a Pacer by hand in virtual time, as a window server's clients would."""

from __future__ import annotations

import asyncio

from bench.pacing_sim import VirtualTimeLoop
from provision.graph.pacing import Lane, Pacer


async def fill_window(pacer: Pacer, loop: VirtualTimeLoop, quota: int) -> float:
    """Four workers send 10-write batches, all admitted, until ``quota`` got through.
    Returns the first request's time."""
    first = loop.time()
    admitted = 0

    async def worker() -> None:
        nonlocal admitted
        while admitted < quota:
            async with pacer.slot(Lane.WRITE, 10) as slot:
                admitted += 10
                await asyncio.sleep(0.2)
                slot.report(200)

    await asyncio.gather(*(worker() for _ in range(4)))
    return first
