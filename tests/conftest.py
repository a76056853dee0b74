"""Shared fixtures: the sandbox (over loopback and in process) and a real msgraph-sdk client.

- ``sandbox``: a fresh, empty sandbox (``unlimited`` profile) served by uvicorn on
  127.0.0.1 (one server per test session; its state is replaced for every test).
- ``asgi_sandbox``: the same, in process (no socket): use ``asgi_sandbox.transport`` with
  httpx, or ``graph_client(asgi_sandbox.v1, transport=asgi_sandbox.transport)``.
- Both are ``SandboxHandle``: ``.v1`` / ``.beta`` (Graph base URLs), ``.root``,
  ``.token`` (app token for the tenant), ``.tenant`` (the live ``Tenant``, for arranging
  state and asserting on it), ``.stats()``, and ``.configure(profile=..., snapshot=...,
  tenant=..., clock=..., sleep=..., seed=...)`` to swap in other state or limits.
- ``graph_client``: ``async with graph_client(base_url, token=None, transport=None) as client``
  yields a ``GraphServiceClient`` aimed at the sandbox (static bearer token, kiota's
  RetryHandler disabled so tests see every 429/503 themselves).

Sub-folders add their own conftest for their area.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterator

import httpx
import pytest

from provision.sandbox.app import SandboxApp, build_sandbox, create_app
from provision.sandbox.server import serve_in_thread
from provision.sandbox.tenant import Tenant


@dataclass
class SandboxHandle:
    """A sandbox a test talks to (loopback or in process)."""

    app: SandboxApp
    root: str  # http://127.0.0.1:PORT, or http://sandbox in process
    transport: httpx.AsyncBaseTransport | None = None  # set in process only
    _defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def v1(self) -> str:
        return self.root + "/v1.0"

    @property
    def beta(self) -> str:
        return self.root + "/beta"

    @property
    def tenant(self) -> Tenant:
        return self.app.sandbox.tenant

    @property
    def token(self) -> str:
        """Application token with the job's default permissions, for this tenant."""
        return self.app.sandbox.token()

    def make_token(self, **claims: Any) -> str:
        """``provision.sandbox.auth.make_token`` for this tenant (roles=, scp=, wids=, appid=...)."""
        return self.app.sandbox.token(**claims)

    def stats(self) -> dict[str, Any]:
        return self.app.sandbox.stats.to_json()

    def configure(self, **kwargs: Any) -> "SandboxHandle":
        """Replace the served state: ``build_sandbox`` arguments (tenant, profile, snapshot,
        clock, sleep, rng, seed, wall_clock). Do it between requests."""
        self.app.sandbox = build_sandbox(**{**self._defaults, **kwargs})
        return self

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx client on the sandbox root with a bearer token (default ``self.token``)."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.AsyncClient(base_url=self.root, transport=self.transport, headers=headers, timeout=30, **kwargs)


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


class FakeClock:
    """A manual monotonic clock; ``sleep`` advances it (inject both for zero-wait tests)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


def _build_graph_client(base_url: str, token: str, transport: httpx.AsyncBaseTransport | None) -> tuple[Any, httpx.AsyncClient]:
    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
    )
    from kiota_abstractions.authentication.base_bearer_token_authentication_provider import (
        BaseBearerTokenAuthenticationProvider,
    )
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory

    class StaticTokenProvider(AccessTokenProvider):
        async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] | None = None) -> str:
            return token

        def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
            return AllowedHostsValidator([])

    http = httpx.AsyncClient(transport=transport, timeout=30)
    http = GraphClientFactory.create_with_default_middleware(
        client=http, options={RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0)}
    )
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticTokenProvider()), client=http)
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter), http


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
        client, http = _build_graph_client(base_url, token, transport)
        try:
            yield client
        finally:
            await http.aclose()

    return make
