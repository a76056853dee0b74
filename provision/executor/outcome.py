"""How a run ended: its status, figures and the sentence (and resume command) that say so."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from provision.errors import GraphError
from provision.executor.journal import StatusCounts

__all__ = ["ExecutionResult", "RunStatus", "ending_message"]


class RunStatus(StrEnum):
    COMPLETED = "completed"  # every change is done, failed or skipped (or unresolved, see below)
    INTERRUPTED = "interrupted"  # stopped on request: resume continues it
    ABORTED = "aborted"  # authentication/permission failure: nothing else could succeed
    UNREACHABLE = "unreachable"  # the target answered nothing for the breaker's bound: resume continues it


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """How the run ended. Per-change and per-user detail is in the journal:
    ``journal.changes()`` (status, HTTP status, Graph code, message, request-id, attempts,
    ``sms_state_after``, ``verified``) and ``journal.verifications()`` (``--verify``)."""

    status: RunStatus
    counts: StatusCounts
    unresolved: tuple[str, ...]
    """Changes whose outcome could not be established (their read-back failed past
    retrying): left ``in_flight`` so that resume reads them back."""
    write_operations: int
    read_operations: int
    batches: int
    throttled: int
    elapsed_s: float
    run_dir: str
    resume_command: str | None
    message: str
    error: GraphError | None = None


def ending_message(
    status: RunStatus, counts: StatusCounts, run_dir: str, *, fatal: GraphError | None, unresolved: int,
    target: str | None = None, silence_s: float = 0.0,
) -> tuple[str, str | None]:
    """The run's closing sentence, and the command that continues it (None: nothing to continue).

    ``target`` and ``silence_s``: what could not be reached, and for how long (``UNREACHABLE``)."""
    resume = f"provision resume {run_dir}"
    if status is RunStatus.INTERRUPTED:
        return (
            f"interrupted: {counts.done} of {counts.total} changes done, {counts.in_flight} in flight "
            f"(read back on resume), {counts.pending} not started; continue with: {resume}"
        ), resume
    if status is RunStatus.ABORTED:
        return f"stopped: {fatal}; fix the credential or permissions, then: {resume}", resume
    if status is RunStatus.UNREACHABLE:
        return (
            f"stopped: the tenant can't be reached{f' ({target})' if target else ''}: nothing answered for "
            f"{silence_s:.0f} s; {counts.done} of {counts.total} changes done, {counts.in_flight} to read back, "
            f"{counts.pending} not sent, none failed for it; once it answers, continue with: {resume}"
        ), resume
    message = f"{counts.done} done, {counts.failed} failed, {counts.skipped} skipped of {counts.total} changes"
    if unresolved:
        return f"{message}; {unresolved} could not be read back (resume reads them again: {resume})", resume
    return message, None
