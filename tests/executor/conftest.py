"""Fixtures for the executor's tests: an in-process sandbox on a fake clock, a GraphClient
on the real msgraph-sdk stack, a run journal, and a transport that can lose answers.

``Tamper`` sits between httpx and the sandbox app (it plays the network, not our code): it
can drop the answer of a request the sandbox already executed (a connection reset after
the work), replace a batch item's answer with 504 after the sandbox applied it, or answer
the write items of chosen users 403 without passing them on (``deny``: Graph refusing a
delegated admin one privileged user, which the sandbox does not model).

``run_virtual(make)`` (a fixture) runs a coroutine on a virtual-time event loop (``bench.pacing_sim``):
time jumps only when every task waits on a timer, so a request the sandbox never answers
costs no real time, and the timeouts and breaker bounds under test pass in virtual seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, TypeVar
from urllib.parse import quote

import httpx
import pytest
from support.clock import FakeClock
from support.sandbox import inprocess_client

from provision.executor.dispatch import (
    ExecutionResult,
    ExecutorSettings,
    ProgressEvent,
    execute,
)
from provision.executor.journal import Journal, JournalChange
from provision.graph.client import GraphClient
from provision.graph.pacing import Pacer
from provision.sandbox.app import SandboxApp, create_app
from provision.sandbox.auth import make_token

_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:  # bench/ is not an installed package
    sys.path.insert(0, str(_REPO))

from bench.pacing_sim import VirtualTimeLoop  # noqa: E402

T = TypeVar("T")

Hook = Callable[[list[dict[str, Any]]], str | None]
"""Gets a write batch's requests; returns None, "reset" (drop the answer after the
sandbox ran it), "504" (answer every item 504 after the sandbox ran it) or "reword" (keep
every answer's status, but give each error another code and message, as another Graph
version or locale might)."""


class Tamper(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.hook: Hook | None = None
        self.batches: list[list[dict[str, Any]]] = []  # every $batch's requests, as sent
        self.on_request: Callable[[list[dict[str, Any]]], None] | None = None
        self.deny: set[str] = set()  # UPNs whose write items are answered 403, unapplied

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        requests: list[dict[str, Any]] = []
        if request.url.path.endswith("/$batch"):
            body = await request.aread()
            requests = json.loads(body)["requests"]
            self.batches.append(requests)
            if self.on_request is not None:
                self.on_request(requests)
            denied = [r for r in requests if r["method"] != "GET" and self._denied(r["url"])]
            if denied:
                return await self._refuse(request, requests, denied)
        action = self.hook(requests) if (self.hook is not None and requests) else None
        response = await self.inner.handle_async_request(request)
        if action is None:
            return response
        raw = await response.aread()
        if action == "reset":
            raise httpx.ReadError("connection reset by peer")
        data = json.loads(raw)
        if action == "reword":
            for item in data["responses"]:
                if isinstance(item.get("body"), dict) and "error" in item["body"]:
                    item["body"]["error"].update(code="generalException", message="Une erreur s'est produite.")
            return httpx.Response(200, headers={"content-type": "application/json"}, content=json.dumps(data).encode())
        for item in data["responses"]:
            item["status"] = 504
            item["headers"] = {"Content-Type": "application/json"}
            item["body"] = {"error": {"code": "GatewayTimeout", "message": "The gateway timed out."}}
        return httpx.Response(200, headers={"content-type": "application/json"}, content=json.dumps(data).encode())

    def _denied(self, url: str) -> bool:
        return any(f"/users/{quote(upn, safe='')}/" in url for upn in self.deny)

    async def _refuse(
        self, request: httpx.Request, requests: list[dict[str, Any]], denied: list[dict[str, Any]]
    ) -> httpx.Response:
        """Pass on the batch without ``denied``; answer those 403 as Graph does."""
        responses: list[dict[str, Any]] = []
        passed = [r for r in requests if r not in denied]
        if passed:
            headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
            forwarded = httpx.Request("POST", request.url, headers=headers, content=json.dumps({"requests": passed}))
            answer = await self.inner.handle_async_request(forwarded)
            responses = json.loads(await answer.aread())["responses"]
        error = {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}
        responses += [{"id": r["id"], "status": 403, "headers": {"Content-Type": "application/json"},
                       "body": {"error": error}} for r in denied]
        content = json.dumps({"responses": responses}).encode()
        return httpx.Response(200, headers={"content-type": "application/json"}, content=content)


def _run_virtual(make: Callable[[VirtualTimeLoop], Awaitable[T]]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(make(loop))
    finally:
        loop.close()


@pytest.fixture
def run_virtual() -> Callable[[Callable[[VirtualTimeLoop], Awaitable[Any]]], Any]:
    """``run_virtual(lambda loop: main(loop))``: the coroutine run to completion on a fresh
    virtual-time loop."""
    return _run_virtual


@dataclass
class Harness:
    app: SandboxApp
    clock: FakeClock
    tamper: Tamper
    run_dir: Path
    token: str = field(default_factory=make_token)
    events: list[ProgressEvent] = field(default_factory=list)

    @property
    def tenant(self) -> Any:
        return self.app.sandbox.tenant

    def stats(self) -> dict[str, Any]:
        return self.app.sandbox.stats.to_json()

    def client(self) -> GraphClient:
        pacer = Pacer(clock=self.clock, sleep=self.clock.sleep)
        return inprocess_client(self.app, token=self.token, pacer=pacer, transport=self.tamper)

    def create_journal(self, changes: Iterable[Any]) -> Journal:
        items = [c if isinstance(c, JournalChange) else JournalChange.of(c) for c in changes]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return Journal.create(self.run_dir, run_meta={"job": "test"}, changes=items)

    def execute(self, journal: Journal, stop: asyncio.Event | None = None, **settings: Any) -> ExecutionResult:
        defaults: dict[str, Any] = {"settle_s": 1.0, "alternate_settle_s": 0.0, "alternate_backoff_s": 0.5}
        chosen = ExecutorSettings(**{**defaults, **settings})

        async def go() -> ExecutionResult:
            async with self.client() as client:
                return await execute(
                    client, journal, settings=chosen, progress=self.events.append, stop=stop,
                    clock=self.clock, sleep=self.clock.sleep,
                )

        return asyncio.run(go())


@pytest.fixture
def harness(tmp_path: Path) -> Callable[..., Harness]:
    """``harness(profile="unlimited")``: a fresh in-process sandbox on a fake clock."""

    def make(profile: Any = "unlimited") -> Harness:
        clock = FakeClock()
        app = create_app(profile=profile, clock=clock, sleep=clock.sleep)
        tamper = Tamper(httpx.ASGITransport(app))
        return Harness(app, clock, tamper, tmp_path / "run")

    return make
