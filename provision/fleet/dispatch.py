"""Running a fleet's tenants on Dask: an embedded cluster, or an existing scheduler by address.

``run_fleet(tasks, ...)`` sends each ``TenantTask`` to ``run_tenant`` on a Dask worker and
gathers the results as they arrive:

- **Where.** ``cluster=None``: an embedded ``LocalCluster`` of worker processes sized to the
  machine (``workers=0``: one per core), torn down at the end; nothing to install or start.
  ``cluster="tcp://HOST:8786"``: the workers of an existing scheduler (``dask scheduler`` and
  ``dask worker`` on other machines, which need provision installed and the fleet directory
  on shared storage at the same path).
- **How many at once.** Never more than ``max_parallel`` tenants in flight: the first
  ``max_parallel`` are submitted, and each finished one lets the next in. Each tenant has its
  own Graph throttle budget, so the cap bounds this machine's sockets and CPU, not Graph's.
- **Lost workers.** A worker process that dies (killed, out of memory, a machine gone) loses
  the tenant it was running. The embedded scheduler is told to give up on a task at its first
  lost worker (``allowed-failures`` 0) so that the dispatcher counts every attempt itself; it
  re-dispatches the tenant up to ``retries`` times, which is safe: ``run_tenant`` resumes the
  tenant's journal (or re-plans against live state), so nothing is written twice. A tenant
  whose every attempt was lost ends ``lost`` (exit 5): ``provision fleet resume`` finishes it.
- **Timeouts.** ``run_tenant`` stops a tenant at its ``timeout_s``, at a clean point; one
  still unanswered ``TIMEOUT_GRACE_S`` later is given up on (``stopped``, exit 5) so the
  fleet ends. Its thread can't be killed; while it runs it holds the tenant's run lock, so
  a ``fleet resume`` of it is refused (exit 3) rather than run twice.
- **Results.** Each result is written to ``tenants/<key>/tenant.json`` here as well (a worker
  on another machine may not share the disk), with ``attempts`` filled in, and handed to
  ``on_result`` in the calling thread as it arrives.
- **Logs.** Dask's own logging (scheduler, nanny, workers) goes to ``log_file`` (the fleet's
  fleet.log), never to the console; embedded worker processes write their stray output there
  too, so no traceback ever reaches the console.

Worker processes are not daemonic (``distributed.worker.daemon`` false): a tenant with a
roster bigger than the reader's batch normalises its numbers in a process pool of its own,
and a daemonic process may not start children. With ``dask worker`` on other machines, set
``DASK_DISTRIBUTED__WORKER__DAEMON=False`` in the workers' environment for the same reason.
Their statistical profiler is off (``distributed.worker.profile.enabled``): it samples every
thread's frames every 10 ms, which can deadlock CPython before 3.11.9 (gh-106883) in a worker
whose tenant threads start and end all the time; remote workers want
``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False`` too.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import time
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from distributed.diagnostics.plugin import WorkerPlugin

from provision.errors import ExitCode, StoppedError, UsageError
from provision.fleet.rundir import relative_to_fleet, write_tenant_result
from provision.run.logs import JsonLineFormatter

if TYPE_CHECKING:
    from distributed import Client

    from provision.fleet.tenant_run import TenantTask

__all__ = ["Executor", "lost_result", "open_executor", "run_fleet", "stopped_result"]

_DASK_LOGGERS = ("distributed", "tornado", "bokeh")
# Connecting to a scheduler by address: how long to wait for it before exit 5.
CONNECT_TIMEOUT_S = 30.0
# run_tenant stops a tenant at its timeout, at a clean point; past this much more, the
# dispatcher stops waiting for it.
TIMEOUT_GRACE_S = 600.0
# How often the dispatcher looks at its tenants' deadlines while none finishes.
_WAKE_S = 5.0

TaskFn = Callable[["TenantTask"], dict[str, Any]]
OnResult = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Executor:
    """A connected Dask client and what to call it in the manifest and on the console."""

    client: Client
    description: str
    embedded: bool
    started_in_s: float


def run_fleet(
    tasks: Sequence[TenantTask],
    *,
    cluster: str | None = None,
    workers: int = 0,
    threads_per_worker: int = 8,
    max_parallel: int = 16,
    retries: int = 2,
    on_result: OnResult | None = None,
    log_file: Path | None = None,
    executor: Executor | None = None,
    fn: TaskFn | None = None,
    timeout_grace_s: float = TIMEOUT_GRACE_S,
) -> list[dict[str, Any]]:
    """Run every task (``fn``, default ``run_tenant``) on Dask; the results in ``tasks``' order.

    A task still unanswered ``timeout_grace_s`` after its ``timeout_s`` is given up on: it
    ends ``stopped`` (exit 5) and the fleet goes on.

    ``executor``: an already open one (``open_executor``); else one is opened for this call
    (embedded, or ``cluster``'s scheduler) and closed at the end.
    """
    if fn is None:
        from provision.fleet.tenant_run import run_tenant

        fn = run_tenant
    if not tasks:
        return []
    with ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(
                open_executor(cluster, workers=workers, threads_per_worker=threads_per_worker, log_file=log_file)
            )
        try:
            return _dispatch(executor.client, list(tasks), fn, max_parallel=max_parallel, retries=retries,
                             on_result=on_result, grace_s=timeout_grace_s)
        except (OSError, TimeoutError) as exc:  # the scheduler went away (CommClosedError is an OSError)
            raise StoppedError(
                f"lost the Dask scheduler ({type(exc).__name__}: {_first_line(str(exc))}); tenants that did not "
                "finish are resumed by `provision fleet resume`"
            ) from None


@contextmanager
def open_executor(
    cluster: str | None, *, workers: int = 0, threads_per_worker: int = 8, log_file: Path | None = None
) -> Iterator[Executor]:
    """A Dask client: on an embedded ``LocalCluster`` (``cluster`` None) or on ``cluster``'s scheduler."""
    import dask

    started = time.monotonic()
    with ExitStack() as stack:
        stack.enter_context(_dask_logs_to(log_file))
        from distributed import Client, LocalCluster

        if cluster:
            try:
                client = stack.enter_context(Client(cluster, timeout=CONNECT_TIMEOUT_S, set_as_default=False))  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as exc:
                raise StoppedError(f"no Dask scheduler answers at {cluster}: {exc}") from None
            except ValueError as exc:
                raise UsageError(f"--cluster {cluster}: {exc}") from None
            n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            description = f"Dask scheduler {cluster} ({n} workers when connected)"
            embedded = False
        else:
            n_workers = workers or _cores()
            stack.enter_context(
                dask.config.set(
                    {
                        # Count every lost worker as an attempt here (see the module's docstring).
                        "distributed.scheduler.allowed-failures": 0,
                        "distributed.worker.daemon": False,
                        # Dask's profiler samples every thread's frames (sys._current_frames)
                        # every 10 ms; on CPython before 3.11.9 that can deadlock a process
                        # whose threads come and go (gh-106883): bench.fleet saw worker hangs
                        # and crashes at 16-32 tenant threads per worker with it on.
                        "distributed.worker.profile.enabled": False,
                    }
                )
            )
            local = stack.enter_context(
                LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=n_workers,
                    threads_per_worker=threads_per_worker,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(local, set_as_default=False))  # type: ignore[no-untyped-call]
            client.register_plugin(_WorkerOutput(str(log_file or os.devnull)), name="provision-fleet-output")
            description = f"embedded Dask cluster: {n_workers} worker processes x {threads_per_worker} threads"
            embedded = True
        took = time.monotonic() - started
        logging.getLogger("provision.fleet").info("%s, ready in %.2f s", description, took)
        yield Executor(client, description, embedded, took)


def _dispatch(
    client: Client, tasks: list[TenantTask], fn: TaskFn, *, max_parallel: int, retries: int, on_result: OnResult | None,
    grace_s: float,
) -> list[dict[str, Any]]:
    arrived: queue.Queue[Any] = queue.Queue()  # futures, as they finish (Dask calls back from a thread of its own)
    results: dict[int, dict[str, Any]] = {}
    attempts = [0] * len(tasks)
    started = [_now()] * len(tasks)
    waiting = list(range(len(tasks)))[::-1]  # popped from the end: tasks' order
    in_flight: dict[Any, tuple[int, float | None]] = {}  # future -> (task, give up at)

    def submit(i: int) -> None:
        attempts[i] += 1
        if attempts[i] == 1:
            started[i] = _now()
        future = client.submit(fn, tasks[i], key=f"tenant-{tasks[i].spec.key}-{os.getpid()}-{attempts[i]}-{time.time_ns()}",
                               pure=False)
        timeout = tasks[i].timeout_s
        in_flight[future] = (i, None if timeout is None else time.monotonic() + timeout + grace_s)
        future.add_done_callback(arrived.put)  # type: ignore[no-untyped-call]

    def finish(i: int, result: dict[str, Any]) -> None:
        result["attempts"] = attempts[i]
        write_tenant_result(tasks[i].tenant_dir, result)
        results[i] = result
        if on_result is not None:
            on_result(result)
        if waiting:
            submit(waiting.pop())

    wake_s = min(_WAKE_S, max(0.05, grace_s / 4))
    for _ in range(min(max_parallel, len(waiting))):
        submit(waiting.pop())
    while in_flight:
        try:
            future = arrived.get(timeout=wake_s)
        except queue.Empty:
            future = None
        if future is not None and future in in_flight:  # not one given up on meanwhile
            i, _deadline = in_flight.pop(future)
            result = _result_of(future, tasks[i], attempts[i], retries, started[i])
            future.release()
            if result is None:  # lost its worker; try again
                submit(i)
            else:
                finish(i, result)
        now = time.monotonic()
        for future, (i, deadline) in list(in_flight.items()):
            if deadline is not None and now > deadline:
                # run_tenant stops itself at its timeout; one that doesn't answer long after is
                # given up on so the fleet ends. Its thread can't be killed: if it still runs,
                # it holds the tenant's run lock, so `fleet resume` is refused rather than doubled.
                del in_flight[future]
                future.cancel()
                finish(i, stopped_result(tasks[i], attempts=attempts[i], started=started[i], message=(
                    f"no answer {grace_s:g} s after the tenant timeout; "
                    f"finish it with `provision fleet resume {tasks[i].fleet_dir}`")))
    return [results[i] for i in range(len(tasks))]


def _result_of(future: Any, task: TenantTask, attempt: int, retries: int, started: str) -> dict[str, Any] | None:
    """The task's result dict; None to re-dispatch; a ``lost`` result when no attempt is left."""
    log = logging.getLogger("provision.fleet")
    try:
        result = future.result()
    except Exception as exc:  # noqa: BLE001  (a lost worker, a cancelled task, or a crash in the task)
        log.warning("tenant %s: attempt %d of %d failed: %s: %s", task.spec.tenant_id, attempt, retries + 1,
                    type(exc).__name__, exc)
        if attempt <= retries:
            return None
        return lost_result(task, attempts=attempt, started=started, cause=f"{type(exc).__name__}: {exc}")
    if not isinstance(result, dict):
        return lost_result(task, attempts=attempt, started=started, cause=f"the task returned {type(result).__name__}")
    return result


def lost_result(task: TenantTask, *, attempts: int, started: str, cause: str) -> dict[str, Any]:
    """The TenantResult of a tenant whose every dispatch attempt was lost (exit 5)."""
    message = (
        f"every attempt ({attempts}) lost its worker ({_first_line(cause)}); "
        f"finish it with `provision fleet resume {task.fleet_dir}`"
    )
    return {**stopped_result(task, attempts=attempts, started=started, message=message), "status": "lost"}


def stopped_result(task: TenantTask, *, attempts: int, started: str, message: str) -> dict[str, Any]:
    """A TenantResult the dispatcher writes for a tenant that never returned one (exit 5)."""
    spec = task.spec
    run = task.tenant_dir / "run"
    return {
        "schema": 1,
        "tenant_id": spec.tenant_id,
        "name": spec.name,
        "key": spec.key,
        "groups": list(spec.groups),
        "action": task.action,
        "status": "stopped",
        "exit_code": int(ExitCode.STOPPED),
        "message": message,
        "run_dir": relative_to_fleet(run, task.fleet_dir) if run.is_dir() else None,
        "plan_file": None,
        "rows_total": 0,
        "rows_ok": 0,
        "rows_failed": 0,
        "rows_by_outcome": {},
        "changes": {},
        "changes_done": {},
        "writes_failed": 0,
        "operations": 0,
        "throttled": 0,
        "attempts": attempts,
        "started": started,
        "finished": _now(),
        "duration_s": _seconds_since(started),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


class _WorkerOutput(WorkerPlugin):
    """A Dask worker plugin: an embedded worker process's stdout/stderr and Dask logging go to
    the fleet's log, and the process dies with the fleet process (so a killed fleet leaves no
    worker holding a tenant's run lock when ``fleet resume`` starts)."""

    def __init__(self, log_file: str) -> None:
        self.log_file = log_file

    def setup(self, worker: Any) -> None:
        _die_with_parent()
        try:
            # A terminal's Ctrl-C reaches the whole process group: the fleet process stops
            # the cluster itself; a worker dying of it on its own would count as lost.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread: the fleet's shutdown still stops it
            pass
        fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        handler = _FileLog(Path(self.log_file))
        for name in _DASK_LOGGERS:
            log = logging.getLogger(name)
            for old in [h for h in log.handlers if isinstance(h, logging.StreamHandler)]:
                log.removeHandler(old)
            log.addHandler(handler)
            log.propagate = False



class _FileLog(logging.Handler):
    """JSON lines appended to a file. Not a ``logging.StreamHandler``: Dask's ``silence_logs``
    turns every StreamHandler of its loggers down to errors, and this one must keep warnings."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = logging.FileHandler(path, encoding="utf-8")
        self._file.setFormatter(JsonLineFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self._file.emit(record)

    def close(self) -> None:
        self._file.close()
        super().close()


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the cluster's own shutdown stops its workers


@contextmanager
def _dask_logs_to(log_file: Path | None) -> Iterator[None]:
    """Dask's loggers in this process write to ``log_file`` only (none: nowhere) for the duration."""
    saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
    handler: logging.Handler = logging.NullHandler()
    if log_file is not None:
        handler = _FileLog(log_file)
        handler.setLevel(logging.INFO)
    for name in _DASK_LOGGERS:
        log = logging.getLogger(name)
        saved.append((log, list(log.handlers), log.propagate))
        for stream in [h for h in log.handlers if isinstance(h, logging.StreamHandler)]:
            log.removeHandler(stream)
        log.addHandler(handler)
        log.propagate = False
    fleet_log = logging.getLogger("provision.fleet")
    fleet_log.addHandler(handler)
    fleet_log.setLevel(logging.INFO)
    fleet_propagate = fleet_log.propagate
    fleet_log.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"distributed(\..*)?")
            yield
    finally:
        fleet_log.removeHandler(handler)
        fleet_log.propagate = fleet_propagate
        for log, handlers, propagate in saved:
            log.removeHandler(handler)
            for old in handlers:
                if old not in log.handlers:
                    log.addHandler(old)
            log.propagate = propagate
        handler.close()


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _seconds_since(iso: str) -> float:
    try:
        return round((datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds(), 3)
    except ValueError:
        return 0.0


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""
