"""The executor's ``$batch`` requests answer a Continuous Access Evaluation claims challenge.

``GraphClient.batch`` sends its requests through the SDK's httpx client and middleware but
not through the SDK's request adapter, so it answers Graph's claims challenge itself, as the
adapter does: a 401 with ``WWW-Authenticate: Bearer ... claims="<base64>"`` is sent again
once, with a token issued for those claims. The network in front of the sandbox issues
the challenge (the sandbox does not model CAE); the credential hands out a token only for
the claims it was asked for.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx

from provision.executor.dispatch import execute
from provision.executor.journal import Journal, JournalChange
from provision.graph.client import GraphClient
from provision.graph.clouds import url_target
from provision.model import METHOD_IDS, ChangeKind, PhoneType
from provision.sandbox.app import create_app
from provision.sandbox.auth import make_token

CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    f'error="insufficient_claims", claims="{base64.b64encode(CLAIMS.encode()).decode()}"'
)
STALE_TOKEN = "stale"


class ClaimsCredential:
    """Tokens the sandbox accepts only when asked for ``CLAIMS``; a stale one otherwise."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    async def get_token(self, *scopes: str, claims: str | None = None, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.asked.append(claims)
        return AccessToken(make_token() if claims == CLAIMS else STALE_TOKEN, int(time.time()) + 3600)


class Challenger(httpx.AsyncBaseTransport):
    """Graph's CAE gate in front of the sandbox: a stale token gets the claims challenge."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == f"Bearer {STALE_TOKEN}":
            body = {"error": {"code": "InvalidAuthenticationToken", "message": "Continuous access evaluation resulted in challenge."}}
            return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE}, json=body)
        return await self.inner.handle_async_request(request)


def test_batch_writes_land_after_a_claims_challenge(tmp_path: Any) -> None:
    app = create_app(profile="unlimited")
    users = [f"user{i}@contoso.com" for i in range(3)]
    for upn in users:
        app.sandbox.tenant.create_user(upn)
    changes = [
        JournalChange(f"{upn}#1", upn, upn, ChangeKind.CREATE, PhoneType.MOBILE, None, f"+1 206555010{i}", None)
        for i, upn in enumerate(users)
    ]
    journal = Journal.create(tmp_path, run_meta={"job": "test"}, changes=changes)
    credential = ClaimsCredential()

    result = _execute_behind_a_challenger(app, credential, journal)
    journal.close()

    assert result.counts.done == len(users)
    for i, upn in enumerate(users):
        phone = app.sandbox.tenant.get_phone(upn, METHOD_IDS[PhoneType.MOBILE])
        assert phone["phoneNumber"] == f"+1 206555010{i}"
    assert CLAIMS in credential.asked  # the challenge's claims, decoded, reached the credential
    assert app.sandbox.stats.to_json()["duplicate_writes"] == 0


def test_batch_envelope_refused_after_the_challenge_is_an_auth_error(tmp_path: Any) -> None:
    """A second 401 (the fresh token refused too) is not challenged again: the run stops on
    a permission failure with every change still pending."""
    app = create_app(profile="unlimited")
    app.sandbox.tenant.create_user("user@contoso.com")
    journal = Journal.create(
        tmp_path, run_meta={"job": "test"},
        changes=[JournalChange("c1", "user@contoso.com", "user@contoso.com", ChangeKind.CREATE, PhoneType.MOBILE,
                               None, "+1 2065550100", None)],
    )

    class AlwaysStale(ClaimsCredential):
        async def get_token(self, *scopes: str, claims: str | None = None, **kwargs: Any) -> Any:
            from azure.core.credentials import AccessToken

            self.asked.append(claims)
            return AccessToken(STALE_TOKEN, int(time.time()) + 3600)

    credential = AlwaysStale()

    result = _execute_behind_a_challenger(app, credential, journal)
    counts = journal.counts()
    journal.close()

    assert result.error is not None and result.error.status == 401
    assert counts.pending == 1 and counts.done == 0
    assert credential.asked == [None, CLAIMS]
    assert app.sandbox.tenant.list_phones("user@contoso.com") == []
    assert app.sandbox.stats.to_json()["writes_succeeded"] == 0


def _execute_behind_a_challenger(app: Any, credential: Any, journal: Journal) -> Any:
    """``execute`` against ``app`` behind the CAE gate (``Challenger``)."""

    async def run() -> Any:
        client = GraphClient(
            url_target("http://127.0.0.1/v1.0"), credential, transport=Challenger(httpx.ASGITransport(app))
        )
        async with client:
            return await execute(client, journal)

    return asyncio.run(run())
