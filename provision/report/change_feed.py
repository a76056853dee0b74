"""The change feed: ``changes.jsonl``, one JSON line per change the run sent to the tenant.

A security team that sees "Admin registered security info" in Entra's audit log needs to
tell the nightly job's writes from tampering. Each line says which change the job made,
to whom, with what answer (and Graph's request-id, to match the audit record), with the
numbers masked::

    {"time": "...", "run": "<run dir name>", "job": "...", "change": "c42",
     "user": "ada@contoso.com", "user_id": "<object id>", "phone_type": "mobile",
     "action": "update", "outcome": "done", "before": "+1 *******100",
     "after": "+1 *******200", "http_status": 204, "error": null, "request_id": "...",
     "attempts": 1}

``outcome`` is ``done``, ``failed`` or ``uncertain`` (sent, but no answer recorded: the
tenant may hold the change; ``provision resume`` reads it back). Changes never sent
(pending, or skipped after an earlier change of the user failed) have no line: they left
no trace in the tenant. ``before``/``after`` are masked numbers for phone changes and the
SMS sign-in states for SMS changes.

The file is derived from the journal alone and rewritten whole (atomically) every time
the reports are rendered, so ``resume`` and ``provision report`` keep it complete.
``ship`` appends the lines a log shipper has not been given yet to ``[audit] file``; the
digests of lines already appended are kept in the run directory (``changes.shipped``), so
a resume or a re-report never appends a line twice. A change whose outcome a resume
settled (``uncertain`` -> ``done``) is a new line and is appended with its new outcome.
Appending happens before the digests are recorded: a process killed between the two
appends those lines again on the next render (at least once, never lost).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from provision.executor.journal import ChangeStatus, JournalEntry
from provision.masking import mask, mask_in_text
from provision.model import SMS_CHANGE_KINDS
from provision.private_files import open_private, replaced_privately

__all__ = ["CHANGES_FILE", "SHIPPED_FILE", "feed_lines", "ship", "write_change_feed"]

CHANGES_FILE = "changes.jsonl"
SHIPPED_FILE = "changes.shipped"

_OUTCOME = {
    ChangeStatus.DONE: "done",
    ChangeStatus.FAILED: "failed",
    ChangeStatus.IN_FLIGHT: "uncertain",
}
_SMS_KINDS = frozenset(str(k) for k in SMS_CHANGE_KINDS)


def feed_lines(entries: Iterable[JournalEntry], *, run_id: str, job: str) -> list[str]:
    """One JSON line (no newline) per change that was sent, oldest first."""
    sent = [e for e in entries if e.status in _OUTCOME and e.attempts > 0]
    sent.sort(key=lambda e: (_when(e) or "", e.seq))
    return [json.dumps(_record(e, run_id, job), ensure_ascii=False, separators=(",", ":")) for e in sent]


def _when(e: JournalEntry) -> str | None:
    moment = e.finished or e.last_updated or e.first_started
    return moment.isoformat() if moment is not None else None


def _record(e: JournalEntry, run_id: str, job: str) -> dict[str, Any]:
    c = e.change
    return {
        "time": _when(e),
        "run": run_id,
        "job": job,
        "change": c.id,
        "user": c.user,
        "user_id": c.target if c.target != c.user else None,
        "phone_type": c.phone_type,
        "action": c.kind,
        "outcome": _OUTCOME[e.status],
        "before": _shown(c.kind, c.before),
        "after": _shown(c.kind, c.after),
        "http_status": e.last_http_status,
        "error": e.graph_code,
        "request_id": e.request_id,
        "attempts": e.attempts,
    }


def _shown(kind: str, value: str | None) -> str | None:
    if value is None:
        return None
    # SMS changes carry sign-in states ("ready"), phone changes numbers; neither leaves unmasked.
    return mask_in_text(value) if kind in _SMS_KINDS else mask(value)


def write_change_feed(run_dir: Path, lines: Sequence[str]) -> Path:
    """Rewrite ``run_dir/changes.jsonl`` (0600) with ``lines``, atomically."""
    path = run_dir / CHANGES_FILE
    with replaced_privately(path) as f:
        f.writelines(f"{line}\n" for line in lines)
    return path


def ship(run_dir: Path, lines: Sequence[str], audit_file: Path) -> int:
    """Append to ``audit_file`` (0600, ``O_APPEND``) the lines not appended before; how many."""
    marker = run_dir / SHIPPED_FILE
    try:
        shipped = set(marker.read_text(encoding="utf-8").split())
    except FileNotFoundError:
        shipped = set()
    new = [(line, _digest(line)) for line in lines]
    new = [(line, digest) for line, digest in new if digest not in shipped]
    if not new:
        return 0
    # One write: a shipper tailing the file never sees half of this run's lines.
    with open_private(audit_file, append=True) as f:
        f.write("".join(f"{line}\n" for line, _ in new))
    with open_private(marker, append=True) as f:
        f.write("".join(f"{digest}\n" for _, digest in new))
    return len(new)


def _digest(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()
