"""Graph's wire format as the sandbox speaks it: reading request bodies, writing answers.

Request bodies are read only when an operation needs one (so a bad body is a 400 after
the route, permission, throttling and fault checks). Every error is rendered in Graph's
shape, ``{"error": {"code", "message", "innerError": {date, request-id, client-request-id}}}``,
whether it answers a request or a batch item.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime, timezone
from typing import Any

from provision.sandbox.service import Reply
from provision.sandbox.tenant import TenantError

BAD_JSON_MESSAGE = (
    "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."
)
_JSON = "application/json"


def read_request_body(raw: bytes) -> Any:
    """A direct request's body as JSON (400 BadRequest when it is not JSON)."""
    try:
        return json.loads(raw)
    except ValueError:
        raise TenantError(400, "BadRequest", BAD_JSON_MESSAGE) from None


def read_item_body(body: Any) -> Any:
    """A batch item's body: JSON as an object, or a string holding JSON or base64 JSON."""
    if not isinstance(body, str):
        return body
    try:
        return json.loads(body)
    except ValueError:
        pass
    try:
        return json.loads(base64.b64decode(body, validate=True))
    except (ValueError, binascii.Error):
        raise TenantError(400, "BadRequest", "Unable to read the batch request body as JSON.") from None


def error_body(code: str, message: str, request_id: str, client_request_id: str | None) -> dict[str, Any]:
    """Graph's error shape."""
    # evidence: G54 (documented: code, message, innerError with date and request ids)
    inner: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    return {"error": {"code": code, "message": message, "innerError": inner}}


def encode_response(reply: Reply, request_id: str, crid: str | None) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A direct answer's body bytes and ASGI headers (request ids, the reply's own, content)."""
    headers = [(b"request-id", request_id.encode()), (b"client-request-id", (crid or request_id).encode("latin-1"))]
    if reply.headers:
        headers.extend((k.lower().encode(), v.encode("latin-1")) for k, v in reply.headers.items())
    if reply.error is not None:
        payload: Any = error_body(reply.error[0], reply.error[1], request_id, crid)
    else:
        payload = reply.body
    if payload is None:
        headers.append((b"content-length", b"0"))
        return b"", headers
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    return body, headers


def batch_response(item_id: str, reply: Reply, crid: str | None) -> dict[str, Any]:
    """One entry of a ``$batch`` envelope's ``responses``, with its own request id; ``crid``
    is the item's client-request-id (else the envelope's). No body: no ``body`` key."""
    request_id = str(uuid.uuid4())
    headers = {"request-id": request_id, "client-request-id": crid or request_id}
    if reply.headers:
        headers.update(reply.headers)
    entry: dict[str, Any] = {"id": item_id, "status": reply.status, "headers": headers}
    if reply.error is not None:
        headers["Content-Type"] = _JSON
        entry["body"] = error_body(reply.error[0], reply.error[1], request_id, crid)
    elif reply.body is not None:
        headers["Content-Type"] = _JSON
        entry["body"] = reply.body
    return entry


__all__ = [
    "BAD_JSON_MESSAGE",
    "batch_response",
    "encode_response",
    "error_body",
    "read_item_body",
    "read_request_body",
]
