"""Graph failures, and the failures of signing in to Graph, in our own terms.

Everything a Graph request raises is a ``provision.errors.GraphError``::

    GraphError              Graph (or the sandbox) answered with an error status
    ├── AuthError           401/403, or the credential could not renew a token mid-run
    └── TransportFailure    no HTTP answer at all (status 0): connect/read failures, timeouts
                            (and a login endpoint that can't be reached to renew a token)

The first sign-in of a run (``provision.run.targets.open_target``) is translated by
``sign_in_failure`` into what ends the command::

    CredentialError         (exit 4)
    └── SignInRefused       Entra refused the credential: the AADSTS code, its cause, its fix
    TargetUnreachable       (exit 5)
    └── LoginUnreachable    the login endpoint can't be reached (network, DNS, proxy, TLS)
                            or isn't answering: nothing is wrong with the credential

Well-known AADSTS codes (``AADSTS_FIXES``) are named with a cause and a fix; any other keeps
its code and Entra's description, masked, with the secrets the credential holds scrubbed.

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
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

from provision.errors import AuthError, CredentialError, GraphError, ProvisionError, TargetUnreachable
from provision.graph.credentials import CERT_PASSWORD_ENV, SECRET_ENV, CredentialKind, SignInFacts
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
    """Our GraphError for an exception from the SDK/httpx/azure-identity stack, or None.

    A token the credential can't renew mid-run comes from azure-identity: an unreachable
    login endpoint is a ``TransportFailure`` that was certainly not sent (the Graph request
    waits for its token), a refusal an ``AuthError`` 401 worded like ``sign_in_failure``.
    """
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
    down = _login_down(exc)
    if down is not None:
        return TransportFailure(
            f"the login endpoint can't be reached to renew the token: {_clean(down, (), limit=300)}",
            outcome_unknown=False,
        )
    if isinstance(exc, ClientAuthenticationError):
        refused = _refusal(exc, None)
        return AuthError(401, refused.code, str(refused))
    if isinstance(exc, KiotaAuthHTTPError):
        # kiota refuses to send a token over plain http to a non-loopback host.
        return AuthError(0, "insecureTarget", str(exc))
    return None


# --- signing in --------------------------------------------------------------------------


class SignInRefused(CredentialError):
    """Entra (or the credential's own source) refused to hand out a token (exit 4)."""

    def __init__(self, message: str, *, aadsts: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.aadsts = aadsts
        self.error = error  # OAuth2's error field: invalid_client, invalid_request...

    @property
    def code(self) -> str:
        """``AADSTS7000215``-style, or ``credentialUnavailable`` when Entra gave no code."""
        return f"AADSTS{self.aadsts}" if self.aadsts is not None else "credentialUnavailable"


class LoginUnreachable(TargetUnreachable):
    """The login endpoint can't be reached or isn't answering (exit 5: the credential may be fine)."""


_SECRET_FIX = (
    f"copy the secret's Value (not its Secret ID) from the app registration's Certificates & secrets into {SECRET_ENV}"
)
_CLOUDS_FIX = "a tenant of a national cloud needs target.cloud set to it (global, usgov, usgov-dod or china)"

# AADSTS code -> (cause, fix). Placeholders: {tenant} {client} {host} {cloud} {certificate}.
AADSTS_FIXES: Mapping[int, tuple[str, str]] = {
    7000215: (f"the client secret in {SECRET_ENV} is not a valid secret of app {{client}}", _SECRET_FIX),
    7000222: (
        "the client secret of app {client} has expired",
        f"create a new client secret in the app registration's Certificates & secrets and put its Value in {SECRET_ENV}",
    ),
    700016: (
        "no application with client_id {client} exists in tenant {tenant}",
        "check target.client_id and target.tenant_id in the job file; an app registered in another tenant "
        "needs admin consent in this one",
    ),
    90002: (
        "tenant {tenant} was not found at {host} (cloud '{cloud}')",
        f"check target.tenant_id; {_CLOUDS_FIX}",
    ),
    90038: ("tenant {tenant} belongs to another national cloud than '{cloud}'", f"set target.cloud: {_CLOUDS_FIX}"),
    900023: (
        "'{tenant}' is neither a tenant id nor a domain of a tenant",
        "set target.tenant_id to the Directory (tenant) ID from the Entra admin center",
    ),
    500011: (
        "tenant {tenant} has no service principal for Microsoft Graph of cloud '{cloud}'",
        f"check target.cloud: {_CLOUDS_FIX}",
    ),
    700027: (
        "the certificate {certificate} is not registered on app {client} (or its signature didn't verify)",
        "upload the certificate (its public part, .cer) to the app registration's Certificates & secrets, "
        "or point certificate_path at the certificate registered there",
    ),
    700024: (
        "the client assertion is outside its valid time range: this machine's clock is wrong",
        "set the system clock right (NTP), then run again",
    ),
    7000218: (
        "the app registration requires a client secret or certificate for this sign-in",
        "use credential 'secret' or 'certificate', or allow public client flows in the app registration's Authentication",
    ),
    7000112: ("app {client} is disabled in tenant {tenant}", "enable the app's enterprise application in the Entra admin center"),
    65001: (
        "app {client} has no admin consent in tenant {tenant}",
        "grant admin consent for its API permissions in the Entra admin center",
    ),
    53003: (
        "a Conditional Access policy blocked the sign-in",
        "ask the tenant's Conditional Access administrator to allow this app (or this machine's network location)",
    ),
    50034: (
        "the signed-in account does not exist in tenant {tenant}",
        "sign in with an account of tenant {tenant}, or check target.tenant_id",
    ),
    50057: ("the signed-in account is disabled", "sign in with an enabled account"),
    50053: ("the signed-in account is locked (too many failed sign-ins)", "wait for the lockout to end, or have it unlocked"),
}

# When the credential gives no AADSTS code (no managed identity here, Azure CLI not signed in...).
_KIND_FIXES: Mapping[CredentialKind, str] = {
    CredentialKind.MANAGED_IDENTITY: "run provision on an Azure host with a managed identity assigned (target.client_id "
    "names a user-assigned one), or choose another credential",
    CredentialKind.WORKLOAD_IDENTITY: "check AZURE_FEDERATED_TOKEN_FILE and the app's federated credential",
    CredentialKind.AZURE_CLI: "run 'az login --tenant {tenant}' as the account that runs provision",
    CredentialKind.DEVICE_CODE: "complete the sign-in on the verification page in time, then run again",
    CredentialKind.DEFAULT: "set target.credential to the one meant (secret, certificate, managed-identity...) so its "
    "own failure is named",
}
_GENERIC_FIX = (
    f"check target.tenant_id, target.client_id and target.cloud, and the credential ({SECRET_ENV}, the certificate "
    f"or {CERT_PASSWORD_ENV})"
)
# msal's wording when a tenant's OpenID configuration doesn't exist (device code's unknown tenant).
_NO_AUTHORITY = "Unable to get authority configuration"
_AADSTS = re.compile(r"AADSTS(\d+)")
_TRACE = re.compile(r"\s*Trace ID:\s*([0-9a-fA-F-]+).*$", re.DOTALL)


def sign_in_failure(exc: BaseException, facts: SignInFacts) -> ProvisionError | None:
    """What the first sign-in's failure ends the command with, or None (not a sign-in failure).

    An unreachable login endpoint (azure-core couldn't send the request or read an answer,
    also under msal's wrapping) or one answering 5xx is ``LoginUnreachable``; a refusal is
    ``SignInRefused``, named from its AADSTS code when Entra gave one.
    """
    from azure.core.exceptions import ClientAuthenticationError

    down = _login_down(exc)
    if down is not None:
        return login_unreachable(facts, down)
    if isinstance(exc, ClientAuthenticationError):
        return _refusal(exc, facts)
    return None


# azure-identity's words for an answer that is no OAuth2 answer at all (an outage page, a
# proxy's error page): the endpoint isn't answering as Entra, the credential wasn't judged.
_NOT_ENTRA = ("Unexpected response from Microsoft Entra ID", "No response content from Microsoft Entra ID")


def _login_down(exc: BaseException) -> str | None:
    """Why the login endpoint gave no usable answer (unreachable, 5xx, not OAuth2), or None."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    network = _network_cause(exc)
    if network is not None:
        return str(network)
    if isinstance(exc, ClientAuthenticationError):
        message = str(exc.message or exc)
        if not message.startswith(_NOT_ENTRA):
            return None
        said = message.split(": ", 1)[1][:120] if ": " in message else ""
        return "it gave no sign-in answer" + (f" ({said})" if said else "")
    if isinstance(exc, HttpResponseError) and (exc.status_code or 0) >= 500:
        return f"it answered {exc.status_code} {exc.reason or ''}".strip()
    return None


def _network_cause(exc: BaseException) -> BaseException | None:
    """The azure-core transport error behind ``exc`` (msal-based credentials wrap it)."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; a loop in one must not hang us
        if seen is None:
            return None
        if isinstance(seen, (ServiceRequestError, ServiceResponseError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def login_unreachable(facts: SignInFacts, reason: str) -> LoginUnreachable:
    """The login endpoint can't be reached, or answered nothing usable, for ``reason``."""
    host = facts.login_host
    via = _proxy_for(host)
    through = f" through the proxy {via}" if via else ""
    if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason:
        return LoginUnreachable(
            f"the login endpoint {host} can't be reached{through}: its TLS certificate isn't trusted on this machine "
            f"(a TLS-inspecting proxy?): set SSL_CERT_FILE and REQUESTS_CA_BUNDLE to a CA bundle holding that "
            f"proxy's CA, then run the command again (nothing was written)"
        )
    return LoginUnreachable(
        f"the login endpoint {host} can't be reached{through}: {_clean(reason, facts.secrets, limit=300)}: check "
        f"the network, DNS, proxy and firewall between this machine and https://{host}, then run the command again "
        f"(nothing was written)"
    )


def _proxy_for(host: str) -> str | None:
    """The proxy (scheme, host and port only: never its credentials) an https request to ``host`` takes."""
    from urllib.request import getproxies, proxy_bypass

    proxy = getproxies().get("https")
    if not proxy or proxy_bypass(host):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


@dataclass(frozen=True, slots=True)
class _Answer:
    error: str | None  # OAuth2 error: invalid_client, unauthorized_client...
    aadsts: int | None
    description: str


def _entra_answer(exc: Any) -> _Answer:
    """Entra's error body (``error``, ``error_description``, ``error_codes``), else the message."""
    body: Any = None
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = json.loads(response.text())
        except Exception:  # noqa: BLE001  (no body, not JSON, not loaded: the message still says it)
            body = None
    message = str(getattr(exc, "message", None) or exc)
    if isinstance(body, dict) and (body.get("error") or body.get("error_description")):
        description = str(body.get("error_description") or body.get("error"))
        codes = body.get("error_codes")
        code = codes[0] if isinstance(codes, list) and codes and isinstance(codes[0], int) else None
        return _Answer(str(body["error"]) if body.get("error") else None, code or _first_code(description), description)
    # azure-identity: "Microsoft Entra ID error '(invalid_client) AADSTS7000215: ...'"; msal: "Authentication failed: ..."
    found = re.search(r"\((\w+)\) (.*)'\s*$", message, re.DOTALL)
    if found:
        return _Answer(found.group(1), _first_code(found.group(2)), found.group(2))
    return _Answer(None, _first_code(message), message)


def _first_code(text: str) -> int | None:
    found = _AADSTS.search(text)
    return int(found.group(1)) if found else None


def _clean(text: str, secrets: tuple[str, ...], *, limit: int) -> str:
    """One line: the credential's secrets scrubbed, numbers masked, at most ``limit`` characters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = mask_in_text(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _refusal(exc: Any, facts: SignInFacts | None) -> SignInRefused:
    answer = _entra_answer(exc)
    secrets = facts.secrets if facts else ()
    by = f" by {facts.login_host}" if facts else ""
    code = answer.aadsts
    if code is None and _NO_AUTHORITY in answer.description:
        code = 90002  # msal found no such tenant before any token request
    label = " ".join(part for part in (f"AADSTS{code}" if code is not None else None, answer.error) if part)
    head = f"sign-in refused{by}" + (f" ({label})" if label else "")
    if code is not None and code in AADSTS_FIXES:
        cause, fix = (_fill(part, facts) for part in AADSTS_FIXES[code])
        return SignInRefused(f"{head}: {cause}; fix: {fix}", aadsts=code, error=answer.error)
    trace = _TRACE.search(answer.description)
    said = _clean(re.sub(r"^\s*AADSTS\d+:\s*", "", _TRACE.sub("", answer.description)), secrets, limit=400)
    if trace:
        said += f" (Entra trace ID {trace.group(1)})"
    if code is not None:
        fix = f"look AADSTS{code} up at https://login.microsoftonline.com/error, then {_GENERIC_FIX}"
    else:
        fix = _fill(_KIND_FIXES.get(facts.kind, _GENERIC_FIX) if facts else _GENERIC_FIX, facts)
    return SignInRefused(f"{head}: {said}; fix: {fix}", aadsts=code, error=answer.error)


def _fill(template: str, facts: SignInFacts | None) -> str:
    if facts is None:
        values = {"tenant": "(target.tenant_id)", "client": "(target.client_id)", "host": "the login endpoint",
                  "cloud": "(target.cloud)", "certificate": "in certificate_path"}
    else:
        certificate = f"in {facts.certificate_path}" if facts.certificate_path else "in certificate_path"
        if facts.thumbprint:
            certificate += f" (thumbprint {facts.thumbprint})"
        values = {"tenant": facts.tenant_id or "(target.tenant_id)", "client": facts.client_id or "(target.client_id)",
                  "host": facts.login_host, "cloud": facts.cloud.value, "certificate": certificate}
    return template.format_map(values)
