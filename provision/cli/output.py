"""Console output for the commands: rich on a terminal, JSON lines otherwise.

``exits_on_error`` is the one error handler every command runs inside: a ``ProvisionError``
becomes one error line on the command's console and the exit code ``provision.errors``
assigns it (see ``ExitCode``); Ctrl-C outside a run's own graceful stop is exit 5; any
other exception is a crash: written whole (masked) to run.log or a crash file, one line
naming where, exit 5. No traceback reaches the console. Everything printed passes
``masking.mask_in_text`` first: a phone number that slipped into a message is masked
before it reaches a screen or a scheduler's log.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Iterator, Protocol, TextIO

import typer
from rich.console import Console as RichTerminal
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from provision.errors import Cancelled, ExitCode, ProvisionError, exit_code_for
from provision.masking import mask_in_text
from provision.run.logs import logger, record_crash, route_library_logs

# Without a handler, logging's last resort would print every warning/error a second time,
# unmasked and not as JSON, on stderr; run.log is attached per run (logs.attach_run_log).
logger().addHandler(logging.NullHandler())

def for_people(*, stderr: bool = False) -> RichTerminal:
    """A rich console for people. On a terminal rich wraps long lines at word boundaries
    itself (the terminal would cut them mid-word at its edge); piped or redirected, lines
    stay whole, for log files and grep."""
    console = RichTerminal(stderr=stderr, highlight=False)
    console.soft_wrap = not console.is_terminal
    return console


class LogFormat(StrEnum):
    AUTO = "auto"
    TEXT = "text"
    JSON = "json"


class JsonConsole:
    """JSON lines on stderr, for schedulers and log collectors. Progress at most once a second."""

    def __init__(self, stream: TextIO | None = None, *, min_interval_s: float = 1.0) -> None:
        self._stream = stream or sys.stderr
        self._min_interval = min_interval_s
        self._last: dict[str, float] = {}

    def _emit(self, event: str, **fields: Any) -> None:
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event}
        entry.update({k: mask_in_text(v) if isinstance(v, str) else v for k, v in fields.items()})
        self._stream.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        self._stream.flush()

    def stage(self, name: str, total: int | None = None) -> None:
        self._emit("stage", stage=name, total=total)

    def advance(self, name: str, done: int, total: int | None = None, **fields: Any) -> None:
        now = time.monotonic()
        if total is not None and done < total and now - self._last.get(name, 0.0) < self._min_interval:
            return
        self._last[name] = now
        self._emit("progress", stage=name, done=done, total=total, **fields)

    def note(self, level: str, message: str, **fields: Any) -> None:
        self._emit("log", level=level, message=message, **fields)
        logger().log(_LEVELS.get(level, 20), message, extra={"fields": fields} if fields else None)

    def result(self, **fields: Any) -> None:
        self._emit("result", **fields)


class RichConsole:
    """A progress bar per long stage, notes as coloured lines, on stderr."""

    def __init__(self, terminal: RichTerminal | None = None) -> None:
        self.terminal = terminal or for_people(stderr=True)
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._live = False

    @contextmanager
    def live(self) -> Iterator["RichConsole"]:
        """Inside, each stage draws a progress bar (bars start with the first stage)."""
        self._live = True
        try:
            yield self
        finally:
            self._live = False
            self.end_bars()

    def end_bars(self) -> None:
        """Stop drawing the current bars (before a summary or a question); later stages start new ones."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()

    def _bars(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=self.terminal,
                transient=False,
            )
            self._progress.start()
        return self._progress

    def stage(self, name: str, total: int | None = None) -> None:
        if not self._live:
            self.terminal.print(f"[dim]{name}...[/]")
            return
        self._tasks[name] = self._bars().add_task(name, total=total, info="")

    def advance(self, name: str, done: int, total: int | None = None, **fields: Any) -> None:
        if not self._live:
            return
        bars = self._bars()
        task = self._tasks.get(name)
        if task is None:
            task = self._tasks[name] = bars.add_task(name, total=total, info="")
        info = "  ".join(_field_text(k, v) for k, v in fields.items() if v not in (None, "", 0))
        bars.update(task, completed=done, total=total, info=mask_in_text(info))

    def note(self, level: str, message: str, **fields: Any) -> None:
        style = {"error": "red", "warning": "yellow", "debug": "dim"}.get(level, "")
        text = mask_in_text(message)
        self.terminal.print(f"[{style}]{escape(text)}[/]" if style else escape(text), markup=True, highlight=False)
        logger().log(_LEVELS.get(level, 20), message, extra={"fields": fields} if fields else None)


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _field_text(key: str, value: Any) -> str:
    if key == "ops_per_s":
        return f"{value:.0f} ops/s"
    if key == "throttled":
        return f"{value} throttled"
    if key == "pause":
        return f"paused: {value}"
    if key == "eta_s":
        return ""
    return f"{key}={value}"


def use_json(fmt: LogFormat) -> bool:
    if fmt is LogFormat.JSON:
        return True
    if fmt is LogFormat.TEXT:
        return False
    return not sys.stderr.isatty()


class PlainConsole:
    """Notes as plain lines on a rich terminal, for commands without progress (validate, sandbox)."""

    def __init__(self, terminal: RichTerminal | None = None) -> None:
        self.terminal = terminal or for_people(stderr=True)

    def note(self, level: str, message: str, **fields: Any) -> None:
        style = {"error": "red", "warning": "yellow"}.get(level)
        text = escape(mask_in_text(message))
        self.terminal.print(f"[{style}]{text}[/]" if style else text)


class Notes(Protocol):
    def note(self, level: str, message: str, **fields: Any) -> None: ...


@contextmanager
def exits_on_error(console: Notes) -> Iterator[None]:
    """Run a command's body: every way it can fail ends with one line and its exit code."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except Cancelled as exc:
        console.note("info", str(exc), exit_code=int(exit_code_for(exc)))
        raise typer.Exit(int(exit_code_for(exc))) from None
    except ProvisionError as exc:
        code = exit_code_for(exc)
        console.note("error", f"error: {exc}", exit_code=int(code))
        raise typer.Exit(int(code)) from None
    except KeyboardInterrupt:
        console.note("error", "error: interrupted before any write; run the command again", exit_code=int(ExitCode.STOPPED))
        raise typer.Exit(int(ExitCode.STOPPED)) from None
    except Exception as exc:  # noqa: BLE001  (the last line of defence: no traceback on the console)
        where = record_crash(exc)
        console.note(
            "error",
            f"error: unexpected {type(exc).__name__}: {_first_line(exc)}; the details are in {where}. "
            "Nothing more was written; resume the run (or run the command again) once the cause is fixed",
            exit_code=int(ExitCode.STOPPED),
        )
        raise typer.Exit(int(ExitCode.STOPPED)) from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else "(no message)"


def console_for(fmt: "LogFormat") -> "JsonConsole | RichConsole":
    """The console a command speaks through, with libraries' warnings routed the same way."""
    if use_json(fmt):
        route_library_logs(sys.stderr, json_lines=True)
        return JsonConsole()
    route_library_logs(sys.stderr, json_lines=False)
    return RichConsole()
