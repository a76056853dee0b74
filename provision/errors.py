"""The exception tree. Every error the job raises on purpose derives from ProvisionError.

    ProvisionError
    ├── UsageError            bad command line, job file or input file     (exit 2)
    │   ├── JobFileError      a job file key is wrong (names the key)
    │   └── RosterReadError   the roster can't be read at all (missing, unreadable, no header)
    ├── SafetyError           a plan exceeds a safety threshold            (exit 3)
    ├── PlanMismatchError     a saved plan no longer matches live state    (exit 3)
    └── GraphError            Graph answered with an error (status, code, request-id, Retry-After)
        └── AuthError         401/403: authentication or permission failure (exit 4)

Row-level problems are not exceptions: they are collected as ``RowIssue`` values and
reported. The CLI maps this tree to exit codes in one place.
"""

from __future__ import annotations


class ProvisionError(Exception):
    """Root of every error provision raises on purpose."""

    exit_code: int = 1


class UsageError(ProvisionError):
    exit_code = 2


class JobFileError(UsageError):
    def __init__(self, message: str, *, key: str | None = None, path: str | None = None) -> None:
        prefix = "".join(f"{part}: " for part in (path, key) if part)
        super().__init__(f"{prefix}{message}")
        self.key = key
        self.path = path


class RosterReadError(UsageError):
    """The roster file can't be read at all; row-level problems are RowIssues instead."""


class SafetyError(ProvisionError):
    exit_code = 3


class PlanMismatchError(ProvisionError):
    exit_code = 3


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
    exit_code = 4
