"""GraphClient: the one way the job talks to Graph (or the sandbox), for reads and writes.

Built on msgraph-sdk: a ``GraphServiceClient`` over a ``GraphRequestAdapter`` that uses
our ``httpx.AsyncClient`` (keep-alive; HTTP/2 only towards real Graph) wrapped in kiota's
middleware by ``GraphClientFactory`` with the RetryHandler switched off (it would retry
POST/PATCH on its own; retries are ``provision.graph.retry``'s job). Auth goes through
kiota_authentication_azure's provider with the target's scope and allowed host spelled
out (msgraph-core's provider is broken with current kiota).

Every method makes exactly one HTTP request and either returns our own values or raises a
``GraphError`` (see ``provision.graph.errors``). Every request passes through the pacing
controller: GETs in the read lane, everything else in the write lane. ``batch`` is the
bulk path: up to 20 ``Op`` values in one ``$batch`` request we serialise ourselves, sent
through the adapter (so auth and middleware apply), parsed with ``json.loads`` into
``OpResult`` values. An envelope that is throttled (429) or gets no answer becomes the same
error on every item, and one answered 5xx a ``BatchEnvelopeError`` on every item (each
item's outcome unknown), so callers judge items one way; only 401/403 and a malformed
batch raise.

Every HTTP request is bounded: ``timeout_s`` (default ``provision.graph.retry.request_timeout_s``,
60 s or ``PROVISION_REQUEST_TIMEOUT_S``) from sending it to the last byte of its answer,
on the event loop's clock, so a target that accepts connections and never answers costs a
request no more than that. Past it the request is a ``TransportFailure`` with an unknown
outcome, like a reset.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence, TypeVar
from urllib.parse import urljoin

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.models.authentication_phone_type import AuthenticationPhoneType
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.phone_authentication_method import (
    PhoneAuthenticationMethod,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from provision.errors import AuthError, GraphError
from provision.graph import ops as _ops
from provision.graph.batch import (
    MAX_BATCH_SIZE,
    Op,
    OpResult,
    decode_batch,
    encode_batch,
)
from provision.graph.clouds import (
    ApiVersion,
    Cloud,
    GraphEndpoint,
    cloud_target,
    url_target,
)
from provision.graph.credentials import StaticTokenCredential
from provision.graph.errors import TransportFailure, translate
from provision.graph.pacing import Lane, Pacer, Slot
from provision.graph.retry import BatchEnvelopeError, is_transient, request_timeout_s
from provision.model import (
    METHOD_IDS,
    UNREADABLE_SMS_POLICY,
    CurrentPhone,
    PhoneType,
    SmsPolicy,
)

T = TypeVar("T")

_ERROR_MAP: dict[str, Any] = {"XXX": ODataError}


@dataclass(frozen=True, slots=True)
class GraphUser:
    id: str
    user_principal_name: str | None


def _report(slot: Slot, status: int, errors: Sequence[GraphError | None]) -> None:
    """Tell the pacer how a request went. A transport failure is left unreported: the
    pacer counts it as a failed request and changes no rate."""
    if status == 0:
        return
    throttled = unavailable = 0
    retry_after: float | None = None
    for error in errors:
        if error is None or error.status not in (429, 503):
            continue
        if error.status == 429:
            throttled += 1
        else:
            unavailable += 1
        if error.retry_after is not None and (retry_after is None or error.retry_after > retry_after):
            retry_after = error.retry_after
    slot.report(status, throttled=throttled, unavailable=unavailable, retry_after=retry_after)


def _sdk_phone(phone: Any) -> CurrentPhone | None:
    if phone is None:
        return None
    return _ops.parse_phone(
        {
            "id": phone.id,
            "phoneNumber": phone.phone_number,
            "phoneType": getattr(phone.phone_type, "value", phone.phone_type),
            "smsSignInState": getattr(phone.sms_sign_in_state, "value", phone.sms_sign_in_state),
        }
    )


def _envelope_item_error(error: GraphError) -> GraphError | None:
    """The error each item of a ``$batch`` carries when the envelope failed with ``error``
    (None: the envelope's failure is raised instead)."""
    if isinstance(error, AuthError):
        return None
    if error.status >= 500:
        # Whatever its status, Graph may have run items before the envelope failed.
        return BatchEnvelopeError(
            error.status, error.code, error.message, request_id=error.request_id, retry_after=error.retry_after
        )
    return error if is_transient(error) else None


@functools.cache
def _tls_context(*, http2: bool) -> ssl.SSLContext:
    """One TLS context per process and protocol setting: building one loads the CA bundle
    (~17 ms), which a fleet worker opening a client per tenant paid a thousand times. One
    per ``http2`` value because httpcore sets the context's ALPN protocols on each connect."""
    return httpx.create_ssl_context()


class GraphClient:
    """Phone methods, users and the SMS policy over msgraph-sdk, paced and translated.

    ``transport`` replaces the network (``httpx.ASGITransport(app)`` for an in-process
    sandbox). The client owns its httpx client; use ``async with`` or ``await close()``.
    The credential stays the caller's to close. ``pacer`` is the run's shared controller
    (a fresh one when not given).
    """

    def __init__(
        self,
        target: GraphEndpoint,
        credential: Any,
        *,
        pacer: Pacer | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float | None = None,
        max_connections: int = 64,
    ) -> None:
        self.target = target
        self.pacer: Pacer = pacer if pacer is not None else Pacer()
        if timeout_s is None:
            timeout_s = request_timeout_s()
        self.timeout_s = timeout_s
        if transport is None:
            transport = httpx.AsyncHTTPTransport(
                verify=_tls_context(http2=not target.is_loopback),
                http2=not target.is_loopback,
                limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            )
        # No base_url on the httpx client: the adapter's base_url (no trailing slash) builds
        # every URL, which avoids the SDK's ".../v1.0//users" form.
        http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)))
        self._http = GraphClientFactory.create_with_default_middleware(
            client=http,
            options={RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0, should_retry=False)},
        )
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=list(target.scopes), allowed_hosts=list(target.allowed_hosts)
        )
        self.auth_provider = auth
        self.adapter = GraphRequestAdapter(auth, client=self._http)
        self.adapter.base_url = target.base_url
        self.sdk = GraphServiceClient(request_adapter=self.adapter)
        self._batch_url = f"{target.base_url}/$batch"

    @classmethod
    def for_sandbox(
        cls,
        base_url: str,
        token: str,
        *,
        pacer: Pacer | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> "GraphClient":
        """A client for a sandbox at ``base_url`` (``http://127.0.0.1:PORT/v1.0`` or ``/beta``)
        authenticating with a sandbox token (``provision.sandbox.auth.make_token()``)."""
        return cls(url_target(base_url), StaticTokenCredential(token), pacer=pacer, transport=transport)

    @classmethod
    def for_cloud(
        cls,
        credential: Any,
        cloud: Cloud | str = Cloud.GLOBAL,
        version: ApiVersion | str = ApiVersion.V1,
        *,
        pacer: Pacer | None = None,
    ) -> "GraphClient":
        """A client for a Microsoft national cloud (credential from ``make_credential``)."""
        return cls(cloud_target(cloud, version), credential, pacer=pacer)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "GraphClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # plumbing -------------------------------------------------------------------------
    async def _bounded(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` within ``timeout_s``: a request the target never answers fails like a
        read timeout (httpx's own timeouts bound each read, not the whole answer, and an
        in-process transport has none)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call()
        except TimeoutError:
            raise TransportFailure(f"no answer within {self.timeout_s:g} s", outcome_unknown=True) from None

    async def _single(self, lane: Lane, call: Callable[[], Awaitable[T]]) -> T:
        async with self.pacer.slot(lane, 1) as slot:
            try:
                result = await self._bounded(call)
            except Exception as exc:
                error = translate(exc)
                if error is None:
                    raise
                _report(slot, error.status, [error])
                raise error from exc
            slot.report(200)
            return result

    def _phone_item(self, user: str, phone_type: PhoneType) -> Any:
        return self.sdk.users.by_user_id(user).authentication.phone_methods.by_phone_authentication_method_id(
            METHOD_IDS[phone_type]
        )

    # phone methods (single calls through the SDK's request builders) --------------------
    async def list_phones(self, user: str) -> dict[PhoneType, CurrentPhone]:
        async def call() -> dict[PhoneType, CurrentPhone]:
            resp = await self.sdk.users.by_user_id(user).authentication.phone_methods.get()
            phones: dict[PhoneType, CurrentPhone] = {}
            for item in (resp.value if resp is not None else None) or ():
                phone = _sdk_phone(item)
                if phone is not None:
                    phones[phone.phone_type] = phone
            return phones

        return await self._single(Lane.READ, call)

    async def get_phone(self, user: str, phone_type: PhoneType) -> CurrentPhone | None:
        return await self._single(Lane.READ, lambda: self._get_phone(user, phone_type))

    async def _get_phone(self, user: str, phone_type: PhoneType) -> CurrentPhone | None:
        return _sdk_phone(await self._phone_item(user, phone_type).get())

    async def create_phone(self, user: str, phone_type: PhoneType, number: str) -> CurrentPhone | None:
        body = PhoneAuthenticationMethod(phone_number=number, phone_type=AuthenticationPhoneType(phone_type.value))

        async def call() -> CurrentPhone | None:
            return _sdk_phone(await self.sdk.users.by_user_id(user).authentication.phone_methods.post(body))

        return await self._single(Lane.WRITE, call)

    async def update_phone(self, user: str, phone_type: PhoneType, number: str) -> CurrentPhone | None:
        """None when Graph answers 204 (v1.0); the phone when it answers 200 (older beta)."""
        body = PhoneAuthenticationMethod(phone_number=number, phone_type=AuthenticationPhoneType(phone_type.value))

        async def call() -> CurrentPhone | None:
            return _sdk_phone(await self._phone_item(user, phone_type).patch(body))

        return await self._single(Lane.WRITE, call)

    async def delete_phone(self, user: str, phone_type: PhoneType) -> None:
        await self._single(Lane.WRITE, lambda: self._phone_item(user, phone_type).delete())

    async def enable_sms_sign_in(self, user: str) -> None:
        await self._single(Lane.WRITE, lambda: self._phone_item(user, PhoneType.MOBILE).enable_sms_sign_in.post())

    async def disable_sms_sign_in(self, user: str) -> None:
        await self._single(Lane.WRITE, lambda: self._phone_item(user, PhoneType.MOBILE).disable_sms_sign_in.post())

    # users and policy -----------------------------------------------------------------
    async def get_user(self, user: str) -> GraphUser:
        """``GET /users/{id|upn}?$select=id,userPrincipalName``."""
        builder = self.sdk.users.by_user_id(user)
        config = RequestConfiguration(
            query_parameters=builder.UserItemRequestBuilderGetQueryParameters(select=["id", "userPrincipalName"])
        )

        async def call() -> GraphUser:
            found = await builder.get(request_configuration=config)
            if found is None or not found.id:
                raise GraphError(502, "emptyResponse", "Graph returned no user object")
            return GraphUser(found.id, found.user_principal_name)

        return await self._single(Lane.READ, call)

    async def list_users_page(self, next_link: str | None = None) -> tuple[list[GraphUser], str | None]:
        """One page of the tenant's users and the link to the next page (None: the last).

        The first page (``next_link`` None) is ``GET /users?$select=id,userPrincipalName&$top=999``;
        later pages follow the previous page's ``@odata.nextLink`` as given (opaque), resolved
        against the URL it came from when it is relative. Read as raw JSON, like the policy.
        """
        if next_link is None:
            query = self.sdk.users.UsersRequestBuilderGetQueryParameters(select=["id", "userPrincipalName"], top=999)
            info = self.sdk.users.to_get_request_information(RequestConfiguration(query_parameters=query))
            url = f"{self.target.base_url}/users"
        else:
            info = RequestInformation()
            info.http_method = Method.GET
            info.url = url = next_link
        info.headers.try_add("Accept", "application/json")
        raw = await self._single(Lane.READ, lambda: self.adapter.send_primitive_async(info, "bytes", _ERROR_MAP))
        page = json.loads(raw or b"{}")
        users = [
            GraphUser(str(item["id"]), item.get("userPrincipalName"))
            for item in page.get("value") or ()
            if isinstance(item, dict) and item.get("id")
        ]
        link = page.get("@odata.nextLink")
        return users, urljoin(url, link) if isinstance(link, str) and link else None

    async def read_json(self, url: str) -> dict[str, Any]:
        """``GET url`` (absolute: ``base_url`` + a path and query, or a next link as given),
        read as raw JSON in the read lane. Directory reads (groups, administrative units and
        their members) use it: their items mix object types the caller sorts by
        ``@odata.type``."""
        info = RequestInformation()
        info.http_method = Method.GET
        info.url = url
        info.headers.try_add("Accept", "application/json")
        raw = await self._single(Lane.READ, lambda: self.adapter.send_primitive_async(info, "bytes", _ERROR_MAP))
        page = json.loads(raw or b"{}")
        return page if isinstance(page, dict) else {}

    async def read_json_page(self, url: str) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a collection at ``url``: its items and the absolute link to the next
        page (None: the last), followed as given and resolved against ``url`` when relative,
        like ``list_users_page``."""
        page = await self.read_json(url)
        items = [item for item in page.get("value") or () if isinstance(item, dict)]
        link = page.get("@odata.nextLink")
        return items, urljoin(url, link) if isinstance(link, str) and link else None

    async def read_sms_policy(self) -> tuple[SmsPolicy, str | None]:
        """The SMS authentication method policy, or (UNREADABLE_SMS_POLICY, reason) on 403.

        Read as raw JSON: the generated model drops includeTargets when the answer has no
        ``@odata.type``. Other errors raise.
        """
        builder = self.sdk.policies.authentication_methods_policy.authentication_method_configurations
        info = builder.by_authentication_method_configuration_id("sms").to_get_request_information()
        try:
            raw = await self._single(Lane.READ, lambda: self.adapter.send_primitive_async(info, "bytes", _ERROR_MAP))
        except GraphError as exc:
            if exc.status == 403:
                return UNREADABLE_SMS_POLICY, _ops.sms_policy_unreadable(exc.status, exc.code, exc.message)
            raise
        return _ops.parse_sms_policy(json.loads(raw or b"{}")), None

    # the bulk path --------------------------------------------------------------------
    async def batch(self, ops: Sequence[Op]) -> list[OpResult]:
        """Send up to 20 ops in one ``$batch`` request; one OpResult per op, in order.

        Per-item errors are in ``OpResult.error``. An envelope answered 5xx gives every item
        a ``BatchEnvelopeError`` (its outcome is unknown: some items may have run); one
        throttled (429) or unanswered (a transport failure) gives every item that error;
        401/403 (``AuthError``) and any other envelope failure (a malformed batch) raise.
        """
        if len(ops) > MAX_BATCH_SIZE:
            raise ValueError(f"a batch holds at most {MAX_BATCH_SIZE} requests, got {len(ops)}")
        info = RequestInformation()
        info.http_method = Method.POST
        info.url = self._batch_url
        info.headers.try_add("Content-Type", "application/json")
        info.headers.try_add("Accept", "application/json")
        info.content = encode_batch(ops)
        lane = Lane.READ if all(op.method == "GET" for op in ops) else Lane.WRITE
        async with self.pacer.slot(lane, len(ops)) as slot:
            try:
                raw = await self._bounded(lambda: self.adapter.send_primitive_async(info, "bytes", _ERROR_MAP))
            except Exception as exc:
                error = translate(exc)
                if error is None:
                    raise
                _report(slot, error.status, [error])
                item_error = _envelope_item_error(error)
                if item_error is None:
                    raise error from exc
                return [OpResult(op.id, error.status, {}, None, item_error) for op in ops]
            if raw is None:
                missing = TransportFailure("empty $batch answer", outcome_unknown=True)
                return [OpResult(op.id, 0, {}, None, missing) for op in ops]
            results = decode_batch(raw, ops)
            _report(slot, 200, [r.error for r in results])
        return results
