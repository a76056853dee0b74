"""The sandbox as tests talk to it: a handle on a served app, and clients aimed at it.

- ``SandboxHandle``: a sandbox app served over loopback or in process (the root
  conftest's ``sandbox`` / ``asgi_sandbox`` fixtures hand one out).
- ``inprocess_client(app, transport=None)``: our ``GraphClient`` whose HTTP goes straight
  into ``app`` (httpx.ASGITransport), or through ``transport`` (a wrapper around one).
- ``loopback_client(root)``: our ``GraphClient`` on a served sandbox (``http://127.0.0.1:PORT``).
- ``sdk_client(base_url, token, transport)``: a bare msgraph-sdk ``GraphServiceClient``
  (static bearer token, kiota's RetryHandler off) and the httpx client to close.
- ``write_profile(path, ...)``: a sandbox profile TOML with the given limits.
- ``odata_error(call)``: awaits an msgraph-sdk call that must fail; returns its ODataError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable

import httpx
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from provision.graph.client import GraphClient
from provision.graph.clouds import url_target
from provision.graph.credentials import StaticTokenCredential
from provision.graph.pacing import Pacer
from provision.sandbox.app import SandboxApp
from provision.sandbox.auth import make_token
from provision.sandbox.limits import profile_toml
from provision.sandbox.state import build_sandbox
from provision.sandbox.tenant import Tenant


@dataclass
class SandboxHandle:
    """A sandbox a test talks to (loopback or in process).

    ``.v1`` / ``.beta`` (Graph base URLs), ``.root``, ``.token`` (app token for the tenant),
    ``.tenant`` (the live ``Tenant``, for arranging state and asserting on it), ``.stats()``,
    ``.client()`` (httpx on the root), and ``.configure(profile=..., snapshot=..., tenant=...,
    clock=..., sleep=..., seed=...)`` to swap in other state or limits.
    """

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


def inprocess_client(
    app: SandboxApp, *, token: str | None = None, pacer: Pacer | None = None, version: str = "v1.0",
    transport: httpx.AsyncBaseTransport | None = None,
) -> GraphClient:
    """A GraphClient whose HTTP goes straight into ``app`` (or through ``transport``, which
    must end in it: a recorder or a network simulation around ``httpx.ASGITransport(app)``)."""
    return GraphClient(
        url_target(f"http://127.0.0.1/{version}"),
        StaticTokenCredential(token or make_token()),
        pacer=pacer,
        transport=transport or httpx.ASGITransport(app),
    )


def loopback_client(root_url: str, *, token: str | None = None, pacer: Pacer | None = None) -> GraphClient:
    """A GraphClient on the sandbox served at ``root_url`` (no server there: connection refused)."""
    return GraphClient(url_target(f"{root_url}/v1.0"), StaticTokenCredential(token or make_token()), pacer=pacer)


def sdk_client(base_url: str, token: str, transport: httpx.AsyncBaseTransport | None = None) -> tuple[Any, httpx.AsyncClient]:
    """A msgraph-sdk ``GraphServiceClient`` on ``base_url`` with a static bearer token and no
    SDK retries (tests see every 429/503 themselves), and the httpx client to close after."""
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


async def odata_error(call: Awaitable[Any]) -> ODataError:
    """The ``ODataError`` an msgraph-sdk call raises; fails the test if it succeeds."""
    try:
        await call
    except ODataError as exc:
        return exc
    raise AssertionError("the call succeeded; an ODataError was expected")


def write_profile(path: Path, *, reads_per_second: float = 0, writes_per_second: float = 0, burst_seconds: float = 1,
                  read_ms: float = 0, write_ms: float = 0, http_503: float = 0, http_504: float = 0,
                  connection_reset: float = 0) -> Path:
    """A sandbox profile TOML at ``path`` (named "test") with these limits; returns ``path``."""
    path.write_text(
        profile_toml(
            "test",
            throttle={"reads_per_second": reads_per_second, "writes_per_second": writes_per_second, "burst_seconds": burst_seconds},
            latency={"read_ms": read_ms, "write_ms": write_ms},
            faults={"http_503": http_503, "http_504": http_504, "connection_reset": connection_reset},
        ),
        encoding="utf-8",
    )
    return path
