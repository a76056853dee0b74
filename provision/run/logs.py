"""Where log records go: run.log (JSON lines), the console's stderr, and crash files; always masked.

Code that logs is expected to mask already (``masking.mask``); the formatters here are the
safety net for what slips through (a Graph error message quoting a number, say): every
phone-number-looking run is masked with ``masking.mask_in_text``, in messages, fields and
tracebacks alike.

- ``attach_run_log(path)``: run.log for one run, JSON lines: provision's own records from
  INFO, every library's (azure-identity, msal, httpx, uvicorn...) from WARNING, Python
  warnings included, tracebacks whole.
- ``run_scope()``: the records of one run, when several run in one process (a fleet worker
  runs tenants in threads side by side). A run's identity is a context variable, which
  asyncio tasks and ``asyncio.to_thread`` copy, so a record carries the run it was emitted
  in; a run.log takes its own run's records and those emitted outside any run (a library's
  warning from a thread of its own: every run.log attached then takes it), never another
  run's. ``attach_run_log`` opens a scope
  when none is open, so one run in a process (the CLI) logs exactly as before.
- ``route_library_logs(stream, json_lines=...)``: libraries' warnings on the console's
  stream, as JSON lines under ``--log-format json`` or one masked line each otherwise,
  never a traceback (that goes to run.log or a crash file).
- ``record_crash(exc)``: an unexpected exception written whole (masked) to run.log when a
  run is logging (the current scope's run, else the process's latest), else to a crash file;
  returns where, for the one-line error.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from provision.masking import mask_in_text

LOGGER_NAME = "provision"
CRASH_DIR = Path(".provision") / "crash"


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_in_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(v) for v in value]
    return value


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record; ``logger`` names the library a record came from."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": mask_in_text(record.getMessage()),
        }
        if not _is_ours(record):
            entry["logger"] = record.name
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(_mask_value(fields))
        if record.exc_info and self.with_tracebacks:
            entry["exception"] = mask_in_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)

    def __init__(self, *, with_tracebacks: bool = True) -> None:
        super().__init__()
        self.with_tracebacks = with_tracebacks


class _OneLineFormatter(logging.Formatter):
    """A library's warning on a terminal: ``warning: httpx: ...``, masked, no traceback."""

    def format(self, record: logging.LogRecord) -> str:
        first = mask_in_text(record.getMessage()).splitlines()[:1]
        return f"{record.levelname.lower()}: {record.name}: {first[0] if first else ''}"


def _is_ours(record: logging.LogRecord) -> bool:
    return record.name == LOGGER_NAME or record.name.startswith(LOGGER_NAME + ".")


class _RunLogLevels(logging.Filter):
    """run.log keeps provision's records from INFO and libraries' from WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= (logging.INFO if _is_ours(record) else logging.WARNING)


class _LibrariesOnly(logging.Filter):
    """The console shows provision's own notes through its Console; only libraries come here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _is_ours(record) and record.levelno >= logging.WARNING


def logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


class RunScope:
    """One run's identity for its log records; ``log`` is its run.log once attached."""

    __slots__ = ("log",)

    def __init__(self) -> None:
        self.log: Path | None = None


_scope: ContextVar[RunScope | None] = ContextVar("provision_run_scope", default=None)


@contextmanager
def run_scope() -> Iterator[RunScope]:
    """Mark what runs inside (and the tasks and threads it starts) as one run's, for its run.log.

    Open it before the run starts anything, so that records emitted before its run.log is
    attached (planning) are still known as this run's and kept out of other runs' logs.
    """
    scope = RunScope()
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


class _OwnRun(logging.Filter):
    """A run.log takes its run's records and those emitted outside any run, not another run's."""

    def __init__(self, scope: RunScope) -> None:
        super().__init__()
        self.scope = scope

    def filter(self, record: logging.LogRecord) -> bool:
        # Handlers run in the emitting thread, so the emitter's context is the current one.
        current = _scope.get()
        return current is None or current is self.scope


class _RunLogHandler(logging.FileHandler):
    """run.log's handler; remembers the scope ``attach_run_log`` opened, for ``detach``."""

    opened: Token[RunScope | None] | None = None


def attach_run_log(path: Path) -> logging.Handler:
    """Send provision's and the libraries' records to ``path`` as JSON lines; returns the handler to detach.

    Only the current run's records (``run_scope``; one is opened here when none is) and
    records emitted outside any run reach it.
    """
    global _last_run_log
    scope = _scope.get()
    handler = _RunLogHandler(path, encoding="utf-8")
    if scope is None:
        scope = RunScope()
        handler.opened = _scope.set(scope)
    scope.log = path
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(_RunLogLevels())
    handler.addFilter(_OwnRun(scope))
    logging.getLogger().addHandler(handler)
    logger().setLevel(logging.INFO)
    logging.captureWarnings(True)
    _last_run_log = path
    return handler


def detach(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
    opened = getattr(handler, "opened", None)
    if opened is not None:
        try:
            _scope.reset(opened)
        except ValueError:  # detached from another context than attached: the scope ends with it
            pass


# The run log this process wrote last (a CLI process runs one command, so one run): a crash
# that unwinds past the run's own handler and its scope still belongs in its run.log.
_last_run_log: Path | None = None


def route_library_logs(stream: TextIO, *, json_lines: bool) -> logging.Handler:
    """Libraries' warnings on ``stream``: JSON lines, or one masked line each; never a traceback."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter(with_tracebacks=False) if json_lines else _OneLineFormatter())
    handler.addFilter(_LibrariesOnly())
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)
    # Without any handler of its own, logging's last resort would print provision's
    # warnings a second time, unmasked; the console and run.log already carry them.
    logger().addHandler(logging.NullHandler())
    return handler


def record_crash(exc: BaseException) -> Path:
    """Write an unexpected exception whole (masked) where the admin will find it; return the path.

    The run's run.log when a run is logging, else a new crash file under ``.provision/crash/``
    in the working directory (or the system's temporary directory when that isn't writable).
    """
    text = mask_in_text("".join(traceback.format_exception(exc)))
    scope = _scope.get()
    # Inside a run's scope only its own run.log will do (a crash file if it had none yet);
    # outside any, the process's latest run (the CLI's one run).
    run_log = scope.log if scope is not None else _last_run_log
    if run_log is not None:
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "level": "error",
            "message": mask_in_text(f"unexpected error: {type(exc).__name__}: {exc}"),
            "exception": text,
        }
        try:
            with run_log.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")
            return run_log
        except OSError:
            pass
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"crash-{stamp}-{os.getpid()}.log"
    for folder in (CRASH_DIR, Path(tempfile.gettempdir()) / "provision-crash"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            return path.resolve()
        except OSError:
            continue
    return Path("<nowhere: no writable folder for a crash file>")
