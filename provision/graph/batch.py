"""The ``$batch`` wire format, written and read by hand.

msgraph-core's batch classes drop JSON response bodies and serialise dependencies as
``depends_on`` (Graph ignores it), and going through the SDK's generated models costs
about 3 ms of CPU per item. So a batch is plain JSON here: ``Op`` values in, ``OpResult``
values out, one ``json.dumps`` and one ``json.loads`` per batch.

Graph's rules (reference §3): at most 20 requests, unique ids, relative urls, a
``Content-Type`` header whenever there is a body, ``dependsOn`` naming one earlier id
(a failed dependency answers 424); responses come in any order and are matched by id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from provision.errors import GraphError
from provision.graph.errors import TransportFailure, from_error_body

MAX_BATCH_SIZE = 20

_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Op:
    """One request inside a batch. ``url`` is relative to the version root (``/users/...``)."""

    id: str
    method: str
    url: str
    body: Mapping[str, Any] | None = None
    depends_on: str | None = None

    @property
    def is_read(self) -> bool:
        return self.method == "GET"


@dataclass(frozen=True, slots=True)
class OpResult:
    """The answer to one ``Op``: status, headers (lower-cased names), parsed body, our error."""

    id: str
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    error: GraphError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def retry_after(self) -> float | None:
        return self.error.retry_after if self.error is not None else None


def encode_batch(ops: Sequence[Op]) -> bytes:
    """The JSON body of ``POST /$batch`` for up to 20 ops."""
    if not ops:
        raise ValueError("a batch needs at least one request")
    if len(ops) > MAX_BATCH_SIZE:
        raise ValueError(f"a batch holds at most {MAX_BATCH_SIZE} requests, got {len(ops)}")
    seen: set[str] = set()
    requests: list[dict[str, Any]] = []
    for op in ops:
        key = op.id.lower()  # Graph compares ids case-insensitively
        if key in seen:
            raise ValueError(f"duplicate batch request id {op.id!r}")
        if op.depends_on is not None and op.depends_on.lower() not in seen:
            raise ValueError(f"request {op.id!r} depends on {op.depends_on!r}, which is not earlier in the batch")
        seen.add(key)
        item: dict[str, Any] = {"id": op.id, "method": op.method, "url": op.url}
        if op.body is not None:
            item["headers"] = _JSON_HEADERS
            item["body"] = op.body
        if op.depends_on is not None:
            item["dependsOn"] = [op.depends_on]
        requests.append(item)
    return json.dumps({"requests": requests}, separators=(",", ":")).encode()


def _decode_item(item: Mapping[str, Any]) -> OpResult:
    status = int(item.get("status", 0))
    raw_headers = item.get("headers") or {}
    headers = {str(k).lower(): str(v) for k, v in raw_headers.items()}
    body = item.get("body")
    if isinstance(body, str) and headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(body)
        except ValueError:
            pass
    error: GraphError | None = None
    if status >= 400:
        error = from_error_body(status, headers, body)  # Retry-After: the item's own header
    return OpResult(id=str(item.get("id")), status=status, headers=headers, body=body, error=error)


def decode_batch(raw: bytes | str, ops: Sequence[Op]) -> list[OpResult]:
    """Per-op results, in the order of ``ops``.

    An op the server did not answer becomes a ``TransportFailure`` with an unknown outcome:
    nothing says whether it ran.
    """
    data = json.loads(raw)
    by_id: dict[str, OpResult] = {}
    for item in data.get("responses") or ():
        answer = _decode_item(item)
        by_id[answer.id.lower()] = answer
    return [_result_for(op, by_id.get(op.id.lower())) for op in ops]


def _result_for(op: Op, answer: OpResult | None) -> OpResult:
    """``op``'s result under ``op``'s own id (ids match case-insensitively), or an unknown outcome."""
    if answer is None:
        missing = TransportFailure(f"no response for batch request {op.id!r}", outcome_unknown=True)
        return OpResult(id=op.id, status=0, error=missing)
    if answer.id != op.id:
        return OpResult(op.id, answer.status, answer.headers, answer.body, answer.error)
    return answer
