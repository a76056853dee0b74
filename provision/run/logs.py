"""Where log records go: run.log (JSON lines), the console's stderr, and crash files; always masked.

Code that logs is expected to mask already (``masking.mask``); the formatters here are the
safety net for what slips through (a Graph error message quoting a number, say): every
phone-number-looking run is masked with ``masking.mask_in_text``, in messages, fields and
tracebacks alike.

- ``attach_run_log(path)``: run.log for one run, JSON lines: provision's own records from
  INFO, every library's (azure-identity, msal, httpx, uvicorn...) from WARNING, Python
  warnings included, tracebacks whole.
- ``route_library_logs(stream, json_lines=...)``: libraries' warnings on the console's
  stream, as JSON lines under ``--log-format json`` or one masked line each otherwise,
  never a traceback (that goes to run.log or a crash file).
- ``record_crash(exc)``: an unexpected exception written whole (masked) to run.log when a
  run is logging, else to a crash file; returns where, for the one-line error.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import traceback
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


def attach_run_log(path: Path) -> logging.Handler:
    """Send provision's and the libraries' records to ``path`` as JSON lines; returns the handler to detach."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(_RunLogLevels())
    logging.getLogger().addHandler(handler)
    logger().setLevel(logging.INFO)
    logging.captureWarnings(True)
    _run_logs.append(path)
    return handler


def detach(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()


# The run logs this process has written (a CLI process runs one command, so one run): a
# crash that unwinds past the run's own handler still belongs in its run.log.
_run_logs: list[Path] = []


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
    if _run_logs:
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "level": "error",
            "message": mask_in_text(f"unexpected error: {type(exc).__name__}: {exc}"),
            "exception": text,
        }
        try:
            with _run_logs[-1].open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")
            return _run_logs[-1]
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
