"""Fixtures for the Graph layer's tests (helpers live in graph_sandbox.py).

Pacing tests run on a virtual-time event loop (bench/pacing_sim.py): ``asyncio.sleep``
and ``loop.time()`` are the fake sleep and clock, so nothing waits and nothing depends on
timing luck."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import pytest
from graph_sandbox import clock, make_sandbox, serve  # noqa: F401  (fixtures)

_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:  # bench/ is not an installed package
    sys.path.insert(0, str(_REPO))

from bench.pacing_sim import VirtualTimeLoop  # noqa: E402

T = TypeVar("T")


@pytest.fixture
def run_virtual() -> Callable[[Callable[[VirtualTimeLoop], Awaitable[T]]], T]:
    """``run_virtual(lambda loop: main(loop))`` runs a coroutine to completion in virtual time."""

    def run(make: Callable[[VirtualTimeLoop], Awaitable[Any]]) -> Any:
        loop = VirtualTimeLoop()
        try:
            return loop.run_until_complete(make(loop))
        finally:
            loop.close()

    return run
