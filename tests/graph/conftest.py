"""Fixtures for the Graph layer's tests (clients and profiles: ``support.sandbox``).

- ``make_sandbox(profile="unlimited", real_time=False, loop=None)``: an in-process sandbox
  app on the shared ``clock`` (``loop``: on a virtual-time loop; ``real_time``: on the real
  clock, for serving over loopback).
- ``serve(app)``: runs the app with uvicorn on 127.0.0.1 and returns its root URL.
- ``run_virtual(lambda loop: main(loop))``: a coroutine run to completion in virtual time.

Pacing tests run on a virtual-time event loop (bench/pacing_sim.py): ``asyncio.sleep``
and ``loop.time()`` are the fake sleep and clock, so nothing waits and nothing depends on
timing luck."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, TypeVar

import pytest
from support.clock import FakeClock

from provision.sandbox.app import SandboxApp, create_app
from provision.sandbox.server import serve_in_thread

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


@pytest.fixture
def make_sandbox(clock: FakeClock) -> Callable[..., SandboxApp]:
    """``make_sandbox(profile='unlimited', real_time=False, loop=None)``: an in-process sandbox
    app on the shared fake ``clock``; ``loop``: on that virtual-time loop's clock and sleep
    (``run_virtual``); ``real_time``: on the real clock (to serve it over loopback)."""

    def make(profile: Any = "unlimited", *, real_time: bool = False, loop: VirtualTimeLoop | None = None) -> SandboxApp:
        if real_time:
            return create_app(profile=profile)
        if loop is not None:
            return create_app(profile=profile, clock=loop.time, sleep=asyncio.sleep)
        return create_app(profile=profile, clock=clock, sleep=clock.sleep)

    return make


@pytest.fixture
def serve() -> Iterator[Callable[[SandboxApp], str]]:
    """``serve(app)`` runs the app with uvicorn on 127.0.0.1 and returns its root URL."""
    stack: list[Any] = []

    def start(app: SandboxApp) -> str:
        ctx = serve_in_thread(app)
        url = ctx.__enter__()
        stack.append(ctx)
        return url

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)
