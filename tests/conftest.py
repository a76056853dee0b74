"""Shared fixtures: the sandbox (over loopback and in process), a real msgraph-sdk client, the fake clock.

- ``sandbox``: a fresh, empty sandbox (``unlimited`` profile) served by uvicorn on
  127.0.0.1 (one server per test session; its state is replaced for every test).
- ``asgi_sandbox``: the same, in process (no socket): use ``asgi_sandbox.transport`` with
  httpx, or ``graph_client(asgi_sandbox.v1, transport=asgi_sandbox.transport)``.
- Both are ``support.sandbox.SandboxHandle``: ``.v1`` / ``.beta`` (Graph base URLs), ``.root``,
  ``.token`` (app token for the tenant), ``.tenant`` (the live ``Tenant``, for arranging
  state and asserting on it), ``.stats()``, and ``.configure(profile=..., snapshot=...,
  tenant=..., clock=..., sleep=..., seed=...)`` to swap in other state or limits.
- ``graph_client``: ``async with graph_client(base_url, token=None, transport=None) as client``
  yields a ``GraphServiceClient`` aimed at the sandbox (static bearer token, kiota's
  RetryHandler disabled so tests see every 429/503 themselves).
- ``fake_clock`` (also requested as ``clock``: the same object): a ``support.clock.FakeClock``
  at 1000.0 that only moves when told to or slept on; pass it as ``clock=`` and its
  ``.sleep`` as ``sleep=``.
- ``utc_clock``: a wall-clock ``datetime`` source for the run journal: ``T0 + 1 s`` at the
  first reading, one second later at each next one (``support.clock.T0``).

Helpers live in ``tests/support`` (``from support.x import y``); sub-folders add their own
conftest for their area.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, AsyncIterator, Callable, Iterator

import httpx
import pytest

pytest.register_assert_rewrite("support")

from support.clock import FakeClock  # noqa: E402
from support.sandbox import SandboxHandle, sdk_client  # noqa: E402

from provision.sandbox.app import SandboxApp, create_app  # noqa: E402
from provision.sandbox.server import serve_in_thread  # noqa: E402


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[tuple[SandboxApp, str]]:
    app = create_app()
    with serve_in_thread(app) as root:
        yield app, root


@pytest.fixture
def sandbox(_sandbox_server: tuple[SandboxApp, str]) -> SandboxHandle:
    """A fresh empty sandbox (profile ``unlimited``) over loopback HTTP."""
    app, root = _sandbox_server
    handle = SandboxHandle(app, root)
    return handle.configure()


@pytest.fixture
def asgi_sandbox() -> SandboxHandle:
    """A fresh empty sandbox (profile ``unlimited``) in process, through httpx.ASGITransport."""
    app = create_app()
    return SandboxHandle(app, "http://sandbox", transport=httpx.ASGITransport(app=app))


@pytest.fixture
def fake_clock() -> FakeClock:
    """A manual monotonic clock at 1000.0; ``sleep`` advances it (inject both for zero-wait tests)."""
    return FakeClock()


@pytest.fixture
def clock(fake_clock: FakeClock) -> FakeClock:
    """``fake_clock`` by its other name (the Graph tests' sandbox and client share it)."""
    return fake_clock


@pytest.fixture
def utc_clock() -> Callable[[], datetime]:
    """The journal's wall clock: each reading one second after the last (``T0 + 1 s`` first)."""
    return FakeClock.utc_from().utc


@pytest.fixture
def graph_client(request: pytest.FixtureRequest) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with graph_client(sandbox.v1[, token][, transport=...]) as client:`` -> GraphServiceClient.

    Without a token, the test's ``sandbox`` (or ``asgi_sandbox``) app token is used.
    """

    @contextlib.asynccontextmanager
    async def make(base_url: str, token: str | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[Any]:
        if token is None:
            handle_name = "asgi_sandbox" if transport is not None else "sandbox"
            token = request.getfixturevalue(handle_name).token
        client, http = sdk_client(base_url, token, transport)
        try:
            yield client
        finally:
            await http.aclose()

    return make
