"""What happened to every roster row: the values the report writers render.

One ``RowResult`` per data row of the roster, always, whatever happened to it (invalid,
skipped, applied, failed, not reached). ``RunSummary`` is the run-level account that
schedulers read from summary.json, including how the run ended (``RunState``). Writers in
``provision.report`` only render these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Mapping

from provision.model import PhoneType, RowOutcome


class RunState(StrEnum):
    """How a run ended, as summary.json's ``status`` says it."""

    COMPLETED = "completed"  # every change was tried: rows tell the rest
    INTERRUPTED = "interrupted"  # stopped on request (Ctrl-C, SIGTERM) or killed: resume it
    FAILED = "failed"  # stopped by the target: unreachable, or authentication refused


class Action(StrEnum):
    NONE = "none"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """One phone type of one row. Numbers are in Graph form; writers decide on masking."""

    desired: str | None = None
    before: str | None = None
    after: str | None = None
    action: Action = Action.NONE
    outcome: RowOutcome = RowOutcome.UNCHANGED


@dataclass(frozen=True, slots=True)
class RowResult:
    row: int
    sheet: str | None
    user: str
    outcome: RowOutcome
    phones: Mapping[PhoneType, PhoneResult] = field(default_factory=dict)
    sms_action: str = "none"  # none | enable | disable
    sms_state: str | None = None  # smsSignInState after the run (read back), when known
    reason: str | None = None  # why skipped/failed/invalid: a sentence without unmasked numbers
    error_code: str | None = None  # Graph error code, or our own reason code
    error_message: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    verified: bool | None = None  # --verify read-back result for the user
    extra: Mapping[str, str] = field(default_factory=dict)  # roster passthrough columns


@dataclass(frozen=True, slots=True)
class ThroughputSample:
    """One point of the run's timeline, for the report's charts."""

    t: float  # seconds since the run started
    operations: int  # cumulative operations sent
    succeeded: int  # cumulative changes done
    throttled: int  # cumulative 429 answers
    rate_limit: float | None = None  # the pacer's current rate (operations/s)


@dataclass(frozen=True, slots=True)
class RunSummary:
    job: str
    target: str
    started: str  # ISO 8601 UTC
    finished: str
    duration_s: float
    rows_total: int
    rows_ok: int
    rows_failed: int
    changes: Mapping[str, int]  # by change kind: planned/done counts, see `changes_done`
    changes_done: Mapping[str, int]
    operations: int  # Graph operations sent (batch items count one each)
    throttled: int
    exit_code: int
    mode: str = ""
    run_dir: str = ""
    rows_by_outcome: Mapping[str, int] = field(default_factory=dict)
    timeline: tuple[ThroughputSample, ...] = ()
    status: RunState = RunState.COMPLETED
    resume_command: str | None = None  # set while changes are left to send or read back
    stop_reason: str = ""  # why a run that isn't completed stopped: interrupted | aborted | unreachable

    @property
    def rows_not_reached(self) -> int:
        """Rows the run stopped before reaching (outcome ``planned``)."""
        return int(self.rows_by_outcome.get(RowOutcome.PLANNED.value, 0))
