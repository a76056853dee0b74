"""From a reviewed plan to a finished journal: create the journal, execute, log.

``apply_planned`` starts a run (journal created from the plan, then the executor), and
``resume_run`` continues one from its journal. Both record how the run ended (meta
``status``: the executor's ``RunStatus`` value), its figures and its timeline in the
journal's meta, where ``provision.run.run_report`` finds them to write the reports.

Throttled answers are counted once: the client's pacer sees every answer, so the plan's
reads are what it counted before the executor started (meta ``read_throttled``) and each
execution adds what it counted while running (meta ``throttled``, summed over resumes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from typing import Callable

from provision.errors import AuthError, CredentialError, InterruptedRun, TargetUnreachable
from provision.executor.dispatch import (
    ExecutionResult,
    ExecutorSettings,
    ProgressEvent,
    RunStatus,
    execute,
    journal_changes,
)
from provision.executor.journal import ChangeStatus, Journal
from provision.graph.errors import TransportFailure
from provision.graph.pacing import Lane
from provision.masking import mask
from provision.report.values import ThroughputSample
from provision.run.console import Console, NullConsole
from provision.run.logs import logger
from provision.run.plan_stage import PlannedRun, save_plan, utc_now
from provision.run.rundir import RunDir
from provision.run.targets import Target

MAX_TIMELINE_POINTS = 600
LOG_PROGRESS_EVERY_S = 10.0
MAX_LOGGED_FAILURES = 1000


class _Timeline:
    """Progress events -> chart points (cumulative over every execution of the run), thinned
    to a bounded size.

    The bases turn an execution's figures into the run's: ``base_ops`` and ``base_done``
    continue the previous timeline, ``base_throttled`` too, minus what the client's pacer
    had counted before this execution (the plan's reads, which happened before t = 0).
    Points are at least a second apart, so no interval's rate is a fluke of a few ms.
    """

    def __init__(self, offset_s: float = 0.0, base_ops: int = 0, base_done: int = 0, base_throttled: int = 0) -> None:
        self.points: list[ThroughputSample] = []
        self._offset, self._ops, self._done, self._thr = offset_s, base_ops, base_done, base_throttled
        self._last_t = -1.0

    def add(self, event: ProgressEvent, rate: float | None) -> None:
        t = self._offset + event.elapsed_s
        close = t - self._last_t < 1.0
        if close and not event.finished:
            return
        if close and self.points:
            self.points.pop()  # the final figures replace a point taken a moment earlier
        else:
            self._last_t = t
        self.points.append(
            ThroughputSample(t, self._ops + event.operations, self._done + event.done, self._thr + event.throttled, rate)
        )

    def thinned(self, previous: list[ThroughputSample]) -> tuple[ThroughputSample, ...]:
        points = previous + self.points
        step = max(1, len(points) // MAX_TIMELINE_POINTS)
        kept = points[::step]
        if points and kept[-1] is not points[-1]:
            kept.append(points[-1])
        return tuple(kept)


def _progress(console: Console, timeline: _Timeline, target: Target) -> Callable[[ProgressEvent], None]:
    last_logged = [-LOG_PROGRESS_EVERY_S]
    last_pause: list[str | None] = [None]

    def on_event(event: ProgressEvent) -> None:
        write_lane = target.client.pacer.snapshot().lanes.get(Lane.WRITE)
        rate = write_lane.rate_limit if write_lane is not None else None
        timeline.add(event, rate)
        if event.pause_reason != last_pause[0]:
            last_pause[0] = event.pause_reason
            if event.pause_reason:
                logger().info("paused: %s", event.pause_reason, extra={"fields": {"throttled": event.throttled}})
        if event.finished or event.elapsed_s - last_logged[0] >= LOG_PROGRESS_EVERY_S:
            last_logged[0] = event.elapsed_s
            logger().info(
                "progress: %d of %d changes finished (%d done, %d failed, %d skipped)",
                event.finished_changes, event.total, event.done, event.failed, event.skipped,
                extra={"fields": {"operations": event.operations, "ops_per_s": round(event.operations_per_s, 1),
                                  "throttled": event.throttled, "eta_s": event.eta_s}},
            )
        console.advance(
            "applying",
            event.finished_changes,
            event.total,
            ops_per_s=round(event.operations_per_s, 1),
            throttled=event.throttled,
            pause=event.pause_reason,
            eta_s=round(event.eta_s) if event.eta_s is not None else None,
        )

    return on_event


async def apply_planned(
    planned: PlannedRun,
    target: Target,
    run: RunDir,
    *,
    verify: bool = False,
    console: Console | None = None,
    stop: asyncio.Event | None = None,
    settings: ExecutorSettings | None = None,
) -> ExecutionResult:
    console = console or NullConsole()
    save_plan(planned, run.plan_file)
    started = utc_now()
    kinds = Counter(str(c.kind) for c in planned.plan.changes)
    logger().info(
        "plan: %d changes for %d users (%s), checksum %s",
        len(planned.plan.changes), len(planned.plan.users),
        ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none", planned.checksum,
        extra={"fields": {"job": planned.job.name, "target": planned.target, "mode": planned.job.mode.value}},
    )
    journal = await asyncio.to_thread(
        Journal.create,
        run.journal_file,
        run_meta={
            "job": planned.job.name,
            "target": planned.target,
            "mode": planned.job.mode.value,
            "plan_checksum": planned.checksum,
            "started": started.isoformat(),
            "read_operations": str(planned.read_notes.operations),
            # The pacer also saw the single calls (the SMS policy); the reader's own count
            # stands in when this client did not make the plan's reads.
            "read_throttled": str(max(planned.read_notes.throttled, _throttled_so_far(target))),
        },
        changes=journal_changes(planned.plan.changes),
    )
    return await _execute(journal, target, console, verify=verify, stop=stop, settings=settings)


async def resume_run(
    run: RunDir,
    target: Target,
    *,
    verify: bool = False,
    console: Console | None = None,
    stop: asyncio.Event | None = None,
    settings: ExecutorSettings | None = None,
) -> ExecutionResult | None:
    """Continue a run; None when every change was already finished."""
    console = console or NullConsole()
    journal = await asyncio.to_thread(Journal.open, run.journal_file)
    counts = journal.counts()
    if counts.pending == 0 and counts.in_flight == 0:
        journal.close()
        return None
    console.note("info", f"resuming: {counts.done} done, {counts.in_flight} to read back, {counts.pending} to send")
    return await _execute(journal, target, console, verify=verify, stop=stop, settings=settings)


async def _execute(
    journal: Journal,
    target: Target,
    console: Console,
    *,
    verify: bool,
    stop: asyncio.Event | None,
    settings: ExecutorSettings | None,
) -> ExecutionResult:
    meta = journal.meta()
    previous = load_timeline(meta)
    base = previous[-1] if previous else None
    offset = float(meta.get("elapsed_s", "0"))
    counts = journal.counts()
    throttled_before = _throttled_so_far(target)
    # The executor's figures count from its own start (done: every done change, earlier
    # runs' included); the timeline continues the previous one, or starts at zero after
    # a kill that left none.
    timeline = _Timeline(
        offset,
        base.operations if base else 0,
        (base.succeeded if base else 0) - counts.done,
        (base.throttled if base else 0) - throttled_before,
    )
    console.stage("applying", counts.total)
    settings = settings or ExecutorSettings()
    if verify and not settings.verify:
        settings = dataclasses.replace(settings, verify=True)
    try:
        try:
            result = await execute(
                target.client, journal, settings=settings, progress=_progress(console, timeline, target), stop=stop
            )
        except BaseException as exc:
            _record_stop(journal, exc)
            raise
        journal.set_meta("operations", str(int(meta.get("operations", "0")) + result.write_operations + result.read_operations))
        # The pacer's count, not the result's: it counts from this execution's start.
        throttled = max(0, _throttled_so_far(target) - throttled_before)
        journal.set_meta("throttled", str(int(meta.get("throttled", "0")) + throttled))
        journal.set_meta("elapsed_s", f"{offset + result.elapsed_s:.3f}")
        journal.set_meta("status", result.status.value)
        journal.set_meta("finished", utc_now().isoformat())
        journal.set_meta("timeline", json.dumps([list(_sample_tuple(p)) for p in timeline.thinned(previous)]))
        _log_failures(journal)
    finally:
        await asyncio.to_thread(journal.close)
    console.note("warning" if result.status is not RunStatus.COMPLETED else "info", result.message)
    return result


def _throttled_so_far(target: Target) -> int:
    """429 answers the target's client has had, reads and writes (its pacer sees them all)."""
    return target.client.pacer.snapshot().throttled


# How a run the executor ended by raising is recorded (meta ``status``), in the executor's
# own words; the first matching class wins.
_STOPPED_BY: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    ((InterruptedRun, asyncio.CancelledError, KeyboardInterrupt), "interrupted"),
    ((TargetUnreachable, TransportFailure), "unreachable"),
    ((AuthError, CredentialError), "aborted"),
    (Exception, "crashed"),
)


def _record_stop(journal: Journal, exc: BaseException) -> None:
    """Leave in the journal how the run stopped when the executor raised instead of
    returning, so that the reports say so (and give the right exit code) instead of guessing."""
    status = next((name for kinds, name in _STOPPED_BY if isinstance(exc, kinds)), None)
    if status is None:
        return
    try:
        journal.set_meta("status", status)
        journal.set_meta("finished", utc_now().isoformat())
    except Exception:  # noqa: BLE001 - the exception being raised matters more than this note
        logger().warning("could not record how the run stopped (%s) in the journal", status)


def _log_failures(journal: Journal) -> None:
    """One log line per failed change (numbers masked), so run.log alone explains a bad night."""
    for n, e in enumerate(journal.by_status(ChangeStatus.FAILED)):
        if n == MAX_LOGGED_FAILURES:
            logger().warning("... more failed changes: see results.xlsx")
            break
        c = e.change
        logger().warning(
            "failed: %s %s %s for %s: %s %s %s",
            c.id.rsplit("#", 1)[-1], c.kind, c.phone_type, c.user, e.last_http_status or "", e.graph_code or "",
            e.message or "",
            extra={"fields": {"change": c.id, "attempts": e.attempts, "request_id": e.request_id,
                              "before": mask(c.before) if c.before and c.before.startswith("+") else c.before,
                              "after": mask(c.after) if c.after and c.after.startswith("+") else c.after}},
        )


def _sample_tuple(p: ThroughputSample) -> tuple[float, int, int, int, float | None]:
    return (round(p.t, 2), p.operations, p.succeeded, p.throttled, p.rate_limit)


def load_timeline(meta: dict[str, str]) -> list[ThroughputSample]:
    raw = meta.get("timeline")
    if not raw:
        return []
    return [ThroughputSample(*point) for point in json.loads(raw)]
