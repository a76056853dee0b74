"""Counters the sandbox serves at GET /_sandbox/stats.

They let tests and benchmarks assert on what the service actually saw: how many HTTP
requests and Graph operations, what statuses and error codes, how many writes were
applied, and whether any applied write repeated the previous applied write on the same
target (``duplicate_writes``: a retry that wrote twice).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class WriteTarget:
    """What a write changed: ``subject`` (a user id, or "policy"/"users"), ``target`` (a
    method id, a UPN...) and ``fingerprint`` (operation + canonical request body)."""

    subject: str
    target: str
    fingerprint: str


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.http_requests = 0
        self.batches = 0
        self.operations = 0
        self.writes_succeeded = 0
        self.writes_applied = 0
        self.throttled = 0
        self.duplicate_writes = 0
        self.faults_injected = 0
        self.connection_resets = 0
        self.by_status: Counter[int] = Counter()
        self.by_operation: Counter[str] = Counter()
        self.by_error_code: Counter[str] = Counter()
        self._last_write: dict[tuple[str, str], str] = {}

    def record_operation(self, operation: str, status: int, error_code: str | None) -> None:
        self.operations += 1
        self.by_status[status] += 1
        self.by_operation[operation] += 1
        if error_code is not None:
            self.by_error_code[error_code] += 1
            if status == 429:
                self.throttled += 1

    def record_write_applied(self, write: WriteTarget, *, succeeded: bool) -> None:
        """A write changed the tenant (``succeeded``: it was also answered 2xx; a 409 that
        saved the phone, or a 504 that timed out after the work, was applied without success)."""
        self.writes_applied += 1
        if succeeded:
            self.writes_succeeded += 1
        key = (write.subject, write.target)
        if self._last_write.get(key) == write.fingerprint:
            self.duplicate_writes += 1
        self._last_write[key] = write.fingerprint

    def add(self, other: Stats) -> None:
        """Add ``other``'s counters to these (a multi-tenant sandbox's totals)."""
        self.http_requests += other.http_requests
        self.batches += other.batches
        self.operations += other.operations
        self.writes_succeeded += other.writes_succeeded
        self.writes_applied += other.writes_applied
        self.throttled += other.throttled
        self.duplicate_writes += other.duplicate_writes
        self.faults_injected += other.faults_injected
        self.connection_resets += other.connection_resets
        self.by_status.update(other.by_status)
        self.by_operation.update(other.by_operation)
        self.by_error_code.update(other.by_error_code)

    def to_json(self) -> dict[str, Any]:
        return {
            "http_requests": self.http_requests,
            "batches": self.batches,
            "operations": self.operations,
            "writes_succeeded": self.writes_succeeded,
            "writes_applied": self.writes_applied,
            "duplicate_writes": self.duplicate_writes,
            "throttled": self.throttled,
            "faults_injected": self.faults_injected,
            "connection_resets": self.connection_resets,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_operation": dict(sorted(self.by_operation.items())),
            "by_error_code": dict(sorted(self.by_error_code.items())),
        }


__all__ = ["Stats", "WriteTarget"]
