"""Graph failures in our own terms.

Everything the Graph layer raises is a ``provision.errors.GraphError``::

    GraphError              Graph (or the sandbox) answered with an error status
    ├── AuthError           401/403, or the credential could not produce a token
    └── TransportFailure    no HTTP answer at all (status 0): connect/read failures, timeouts

``TransportFailure.outcome_unknown`` tells the executor whether the request may have
reached the server: False only when it certainly did not (connection refused, connect or
pool timeout); True otherwise (reset mid-response, read timeout...). A write whose outcome
is unknown must be read back before it is retried.

Messages are Graph's own (they feed logs and reports), with anything that looks like a
phone number masked on the way in.

httpx, kiota and azure-core are imported by the functions that translate their
exceptions, not with this module: the ``$batch`` codec (``batch``, ``ops``) imports it
and stays cheap to import, and by the time such an exception exists they are loaded.
"""

from __future__ import annotations

import email.utils
import time
from typing import TYPE_CHECKING, Any, Mapping

from provision.errors import AuthError, GraphError
from provision.masking import mask_in_text

if TYPE_CHECKING:
    import httpx
    from kiota_abstractions.api_error import APIError

TRANSPORT_ERROR_CODE = "transportError"


class TransportFailure(GraphError):
    """No HTTP answer: the connection failed, was reset, or timed out (status 0)."""

    def __init__(self, message: str, *, outcome_unknown: bool) -> None:
        super().__init__(0, TRANSPORT_ERROR_CODE, message)
        self.outcome_unknown = outcome_unknown


def mask_numbers(text: str) -> str:
    """Mask every phone-number-looking run in free text (Graph messages may quote numbers)."""
    return mask_in_text(text)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value.split(",")[0]))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        lname = name.lower()
        for k, v in headers.items():
            if k.lower() == lname:
                return v
    return value


def make_error(
    status: int,
    code: str | None,
    message: str | None,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> GraphError:
    """The right GraphError subclass for an HTTP status."""
    cls = AuthError if status in (401, 403) else GraphError
    return cls(status, code, mask_numbers(message or ""), request_id=request_id, retry_after=retry_after)


def from_error_body(status: int, headers: Mapping[str, str] | None, body: Any) -> GraphError:
    """Translate a Graph error answer (status, headers, parsed JSON body) - e.g. a $batch item."""
    code = message = request_id = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = err.get("code")
        message = err.get("message")
        inner = err.get("innerError") or err.get("innererror")
        if isinstance(inner, dict):
            request_id = inner.get("request-id")
    elif isinstance(body, str):
        message = body[:200]
    return make_error(
        status,
        code,
        message or f"HTTP {status}",
        request_id=request_id or _header(headers, "request-id"),
        retry_after=parse_retry_after(_header(headers, "Retry-After")),
    )


def from_api_error(exc: APIError) -> GraphError:
    """Translate kiota's APIError / msgraph's ODataError."""
    status = exc.response_status_code or 0
    headers = exc.response_headers or {}
    code = message = request_id = None
    main = getattr(exc, "error", None)
    if main is not None:
        code = main.code
        message = main.message
        inner = main.inner_error
        if inner is not None:
            request_id = inner.request_id
    return make_error(
        status,
        code,
        message or exc.message or f"HTTP {status}",
        request_id=request_id or _header(headers, "request-id"),
        retry_after=parse_retry_after(_header(headers, "Retry-After")),
    )


def from_transport_error(exc: httpx.TransportError) -> TransportFailure:
    import httpx  # here, not with the module (see the module docstring)

    # httpx errors raised before any byte of the request could have reached the server.
    not_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
    kind = type(exc).__name__
    detail = str(exc) or kind
    return TransportFailure(f"{kind}: {detail}", outcome_unknown=not isinstance(exc, not_sent))


def translate(exc: BaseException) -> GraphError | None:
    """Our GraphError for an exception from the SDK/httpx/azure-identity stack, or None."""
    if isinstance(exc, GraphError):
        return exc
    # Imported here, not with the module (see the module docstring).
    import httpx
    from azure.core.exceptions import ClientAuthenticationError
    from kiota_abstractions.api_error import APIError
    from kiota_authentication_azure._exceptions import HTTPError as KiotaAuthHTTPError

    if isinstance(exc, APIError):
        return from_api_error(exc)
    if isinstance(exc, httpx.TransportError):
        return from_transport_error(exc)
    if isinstance(exc, ClientAuthenticationError):
        return AuthError(401, "credentialUnavailable", str(exc.message or exc))
    if isinstance(exc, KiotaAuthHTTPError):
        # kiota refuses to send a token over plain http to a non-loopback host.
        return AuthError(0, "insecureTarget", str(exc))
    return None
