"""Serve the sandbox over loopback HTTP with uvicorn: in the foreground (the CLI) or in a
background thread (tests, the job's embedded sandbox). Only loopback addresses are ever
bound: the sandbox must not be reachable from the network.

In the foreground, SIGINT (Ctrl-C) and SIGTERM (``kill``, a service manager, the job
stopping its embedded sandbox) both shut the server down gracefully and make
``serve_forever`` *return*, so its caller saves the tenant. Left to itself, uvicorn
re-raises the signal once it has shut down, under whatever handler was there before it:
Python's default for SIGTERM kills the process before any ``finally`` runs (the snapshot
was lost), and for SIGINT raises KeyboardInterrupt into the caller.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import signal
import socket
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Any, Callable, Iterator

import uvicorn

from provision.errors import UsageError


class NotLoopbackError(UsageError):
    """The sandbox was asked to bind to a non-loopback address."""


def check_loopback(host: str) -> None:
    """Raise NotLoopbackError unless ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NotLoopbackError(f"refusing to serve on {host!r}: the sandbox binds only to loopback (127.0.0.1, ::1)")


def _bind(host: str, port: int) -> socket.socket:
    check_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def root_url(sock: socket.socket) -> str:
    """``http://HOST:PORT`` for a bound socket (Graph bases are this + /v1.0 or /beta)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, deaf to the signals in ``ignored`` (uvicorn itself stops on SIGINT and SIGTERM)."""

    def __init__(self, config: uvicorn.Config, ignored: frozenset[int] = frozenset()) -> None:
        super().__init__(config)
        self.ignored = ignored

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig not in self.ignored:
            super().handle_exit(sig, frame)


def _server(app: Any, ignored: frozenset[int] = frozenset()) -> _Server:
    fast = importlib.util.find_spec("httptools") is not None
    config = uvicorn.Config(
        app,
        http="httptools" if fast else "h11",
        loop="uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
    )
    return _Server(config, ignored)


@contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` with uvicorn in a daemon thread; yields the root URL (``http://127.0.0.1:PORT``).

    ``port=0`` picks a free port. The server stops when the block exits.
    """
    sock = _bind(host, port)
    # No signal handlers to disable: uvicorn (>= 0.29) installs them only from the main thread.
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="sandbox-uvicorn", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the sandbox server failed to start")
            thread.join(0.01)
        yield root_url(sock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def serve_forever(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[str], None] | None = None,
    ignore_sigint: bool = False,
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then return. ``on_ready`` gets the root URL.

    ``ignore_sigint``: only SIGTERM stops the server (a child whose parent decides when it
    stops: a terminal's Ctrl-C reaches the whole process group). A second Ctrl-C during
    the shutdown stops waiting for open connections (uvicorn's own rule).
    """
    sock = _bind(host, port)
    ignored = frozenset({signal.SIGINT}) if ignore_sigint else frozenset()
    server = _server(app, ignored)
    with _stop_on_signals(server, ignored):
        if on_ready is not None:
            on_ready(root_url(sock))
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _stop_on_signals(server: uvicorn.Server, ignored: frozenset[int]) -> Iterator[None]:
    """While serving, a stop signal asks the server to exit; none kills the process.

    Installed before ``on_ready`` too: a signal sent the moment the URL is printed, before
    uvicorn has put in its own handlers, still stops the server (it exits as soon as it
    has started). uvicorn re-raises the signal under these handlers after its shutdown,
    where it does nothing more.
    """
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def stop(signum: int, frame: object) -> None:
        if signum not in ignored:
            server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["NotLoopbackError", "check_loopback", "root_url", "serve_forever", "serve_in_thread"]
