"""Helpers for the Graph layer's tests: the real sandbox, in process or over loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from provision.graph.client import GraphClient
from provision.graph.clouds import url_target
from provision.graph.credentials import StaticTokenCredential
from provision.graph.pacing import Pacer
from provision.sandbox.app import SandboxApp, create_app
from provision.sandbox.auth import make_token
from provision.sandbox.limits import profile_toml
from provision.sandbox.server import serve_in_thread


class FakeClock:
    """A clock tests move by hand (the sandbox's throttle buckets read it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # Always move (a sleep shorter than the clock's float resolution would not) and
        # always yield, like a real sleep.
        self.now += max(1e-6, seconds)
        await asyncio.sleep(0)


def inprocess_client(
    app: SandboxApp, *, token: str | None = None, pacer: Pacer | None = None, version: str = "v1.0"
) -> GraphClient:
    """A GraphClient whose HTTP goes straight into ``app`` (httpx.ASGITransport)."""
    return GraphClient(
        url_target(f"http://127.0.0.1/{version}"),
        StaticTokenCredential(token or make_token()),
        pacer=pacer,
        transport=httpx.ASGITransport(app),
    )


def loopback_client(root_url: str, *, token: str | None = None, pacer: Pacer | None = None) -> GraphClient:
    return GraphClient(url_target(f"{root_url}/v1.0"), StaticTokenCredential(token or make_token()), pacer=pacer)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_sandbox(clock: FakeClock) -> Callable[..., SandboxApp]:
    """``make_sandbox(profile='unlimited', real_time=False)``: an in-process sandbox app."""

    def make(profile: Any = "unlimited", *, real_time: bool = False) -> SandboxApp:
        if real_time:
            return create_app(profile=profile)
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


def write_profile(path: Path, *, reads_per_second: float = 0, writes_per_second: float = 0, burst_seconds: float = 1,
                  read_ms: float = 0, write_ms: float = 0, http_503: float = 0, http_504: float = 0,
                  connection_reset: float = 0) -> Path:
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
