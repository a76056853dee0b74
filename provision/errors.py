"""The exception tree and the one exit-code table.

Every error the job raises on purpose derives from ProvisionError:

    ProvisionError
    ├── Cancelled             the admin answered "no" at the confirmation  (exit 0: not an error)
    ├── UsageError            bad command line, job file or input file     (exit 2)
    │   ├── JobFileError      a job file key is wrong (names the key)
    │   └── RosterReadError   the roster can't be read at all (missing, unreadable, no header)
    ├── SafetyError           a plan exceeds a safety threshold            (exit 3)
    ├── PlanMismatchError     a saved plan no longer matches live state    (exit 3)
    ├── RunLockedError        another run of the same job and tenant is going (exit 3)
    ├── CredentialError       the credential can't be built or is refused  (exit 4)
    │   └── SignInRefused     Entra refused the sign-in (AADSTS code, cause, fix; graph.errors)
    ├── GraphError            Graph answered with an error (status, code, request-id, Retry-After)
    │   └── AuthError         401/403: authentication or permission failure (exit 4)
    └── StoppedError          the run stopped before it finished: resume it (exit 5)
        ├── InterruptedRun    SIGINT/SIGTERM
        └── TargetUnreachable Graph, the sandbox or the login endpoint can't be reached
            └── LoginUnreachable  the login endpoint in particular (graph.errors)

Anything else that escapes a command is a crash: the CLI writes it whole to run.log (or
a crash file) and exits 5, as a stopped run, with one line naming where the details are.

Row-level problems are not exceptions: they are collected as ``RowIssue`` values and
reported. ``ExitCode`` is the one table of how a run can end; each error class names its
code, and ``exit_code_for`` is the only mapping from an exception to a process exit code.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Mapping


class ExitCode(IntEnum):
    """How a command ends; README and ``--help`` list the same table."""

    OK = 0  # every row applied or already right
    ROWS_FAILED = 1  # some rows failed (row-level outcomes only)
    USAGE = 2  # bad usage, job file or unreadable roster
    REFUSED = 3  # refused by a safety threshold or a stale reviewed plan
    AUTH = 4  # authentication or permission failure
    STOPPED = 5  # the run stopped before it finished (interrupted, unreachable, crashed): resume it
    DRIFT = 6  # `plan --check` only: the tenant drifted from the roster, changes are pending

    @property
    def meaning(self) -> str:
        return EXIT_MEANINGS[self]


EXIT_MEANINGS: Mapping[ExitCode, str] = {
    ExitCode.OK: "every row was applied or was already right",
    ExitCode.ROWS_FAILED: "some rows failed",
    ExitCode.USAGE: "bad usage, job file or unreadable roster",
    ExitCode.REFUSED: "refused: a safety threshold, a stale reviewed plan, or a run in progress",
    ExitCode.AUTH: "authentication or permission failure",
    ExitCode.STOPPED: "stopped before finishing (interrupted, unreachable, crash): resume it",
    ExitCode.DRIFT: "plan --check only: changes are pending (the tenant drifted from the roster)",
}


def exit_meaning(code: int) -> str:
    """The sentence for an exit code a summary holds (``unknown exit code`` for others)."""
    try:
        return EXIT_MEANINGS[ExitCode(code)]
    except ValueError:
        return "unknown exit code"


class ProvisionError(Exception):
    """Root of every error provision raises on purpose."""

    exit_code: ExitCode = ExitCode.ROWS_FAILED


def exit_code_for(exc: ProvisionError) -> ExitCode:
    return exc.exit_code


class UsageError(ProvisionError):
    exit_code = ExitCode.USAGE


class JobFileError(UsageError):
    def __init__(self, message: str, *, key: str | None = None, path: str | None = None) -> None:
        prefix = "".join(f"{part}: " for part in (path, key) if part)
        super().__init__(f"{prefix}{message}")
        self.key = key
        self.path = path


class RosterReadError(UsageError):
    """The roster file can't be read at all; row-level problems are RowIssues instead."""


class SafetyError(ProvisionError):
    exit_code = ExitCode.REFUSED


class PlanMismatchError(ProvisionError):
    exit_code = ExitCode.REFUSED


class GraphError(ProvisionError):
    """An error answer from Graph (or the sandbox), in our own terms."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code or ''}: {message}".strip())
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after


class AuthError(GraphError):
    exit_code = ExitCode.AUTH


class RunLockedError(ProvisionError):
    """Another run of the same job against the same tenant holds the lock."""

    exit_code = ExitCode.REFUSED


class CredentialError(ProvisionError):
    """The credential can't be built (unreadable certificate, missing password...) or was refused.

    The message names the cause and the fix; it never holds a secret.
    """

    exit_code = ExitCode.AUTH


class StoppedError(ProvisionError):
    """The run stopped before it finished; ``provision resume`` (or a new apply) finishes it."""

    exit_code = ExitCode.STOPPED


class InterruptedRun(StoppedError):
    """SIGINT or SIGTERM: in-flight work was journaled before stopping."""


class TargetUnreachable(StoppedError):
    """Graph, the sandbox or the login endpoint can't be reached (network, DNS, TLS, no answer)."""


class Cancelled(ProvisionError):
    """The admin answered "no" (or Ctrl-C) at the confirmation: nothing was written, nothing failed."""

    exit_code = ExitCode.OK
