"""Token credentials for Graph, built from a small config that never holds a secret.

Kinds: ``secret`` | ``certificate`` | ``managed-identity`` | ``workload-identity`` |
``azure-cli`` | ``device-code`` | ``default`` (azure-identity), and ``static`` (a bearer
token handed over as is, for the sandbox).

Secrets come only from the environment or from files the environment names:

===================== ============================================================
client secret         ``AZURE_CLIENT_SECRET`` or the file in ``AZURE_CLIENT_SECRET_FILE``
certificate password  ``AZURE_CLIENT_CERTIFICATE_PASSWORD`` or ``..._PASSWORD_FILE``
static token          ``PROVISION_TOKEN`` or the file in ``PROVISION_TOKEN_FILE``
===================== ============================================================

A config mapping that carries a secret itself (``client_secret``, ``password``,
``token``...) is refused with the key named. The caller owns the returned credential and
closes it (``await credential.close()``); azure-identity's async credentials are used
where they exist, so token refreshes never block the event loop.

azure-identity (and azure-core) load only when a credential is built or a token handed
out: the job-file schema imports this module for ``CredentialKind`` and ``SECRET_KEYS``,
and loading a job file stays cheap.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from provision.errors import UsageError
from provision.graph.clouds import CLOUDS, Cloud

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential

SECRET_KEYS = frozenset(
    {"client_secret", "secret", "password", "certificate_password", "token", "access_token", "refresh_token"}
)

SECRET_ENV = "AZURE_CLIENT_SECRET"
CERT_PASSWORD_ENV = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
TOKEN_ENV = "PROVISION_TOKEN"


class CredentialKind(StrEnum):
    SECRET = "secret"
    CERTIFICATE = "certificate"
    MANAGED_IDENTITY = "managed-identity"
    WORKLOAD_IDENTITY = "workload-identity"
    AZURE_CLI = "azure-cli"
    DEVICE_CODE = "device-code"
    DEFAULT = "default"
    STATIC = "static"


@dataclass(frozen=True, slots=True)
class CredentialConfig:
    kind: CredentialKind = CredentialKind.DEFAULT
    tenant_id: str | None = None
    client_id: str | None = None
    certificate_path: str | None = None
    cloud: Cloud = Cloud.GLOBAL

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "CredentialConfig":
        """From a job's target table (``credential`` names the kind). Unknown keys are ignored;
        secret-bearing keys are refused."""
        for key in data:
            if str(key).lower() in SECRET_KEYS:
                raise UsageError(
                    f"{key}: secrets never go in a job file; set {SECRET_ENV} / {CERT_PASSWORD_ENV} "
                    f"(or their *_FILE variants) in the environment instead"
                )
        try:
            kind = CredentialKind(str(data.get("credential", data.get("kind", CredentialKind.DEFAULT))))
            cloud = Cloud(str(data.get("cloud", Cloud.GLOBAL)))
        except ValueError as exc:
            raise UsageError(f"credential: {exc}") from None
        cert = data.get("certificate_path")
        return cls(
            kind=kind,
            tenant_id=data.get("tenant_id"),
            client_id=data.get("client_id"),
            certificate_path=str(cert) if cert is not None else None,
            cloud=cloud,
        )


class StaticTokenCredential:
    """An async token credential that always returns the same bearer token (sandbox)."""

    def __init__(self, token: str, *, lifetime_s: int = 3600) -> None:
        self._token = token
        self._lifetime_s = lifetime_s

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + self._lifetime_s)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> "StaticTokenCredential":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


def read_secret(name: str, env: Mapping[str, str]) -> str | None:
    """``env[name]``, else the content of the file named by ``env[name + '_FILE']``."""
    value = env.get(name)
    if value:
        return value
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"{name}_FILE: can't read {path}: {exc.strerror}") from None
    return None


def _need(value: str | None, what: str, kind: CredentialKind) -> str:
    if not value:
        raise UsageError(f"credential {kind.value!r} needs {what}")
    return value


def make_credential(
    config: CredentialConfig,
    *,
    env: Mapping[str, str] | None = None,
    device_code_prompt: Callable[[str, str, Any], None] | None = None,
) -> AsyncTokenCredential | TokenCredential:
    """The azure-identity credential for ``config`` (async where azure-identity has one).

    ``device_code_prompt(verification_uri, user_code, expires_on)`` shows the device-code
    instructions; library code never prints, so the CLI passes one in.
    """
    env = os.environ if env is None else env
    kind = config.kind
    authority = CLOUDS[config.cloud].authority_host
    if kind is CredentialKind.STATIC:
        token = read_secret(TOKEN_ENV, env)
        return StaticTokenCredential(_need(token, f"a token in {TOKEN_ENV} or {TOKEN_ENV}_FILE", kind))

    from azure.identity import aio

    if kind is CredentialKind.SECRET:
        secret = read_secret(SECRET_ENV, env)
        return aio.ClientSecretCredential(
            _need(config.tenant_id, "tenant_id", kind),
            _need(config.client_id, "client_id", kind),
            _need(secret, f"{SECRET_ENV} or {SECRET_ENV}_FILE in the environment", kind),
            authority=authority,
        )
    if kind is CredentialKind.CERTIFICATE:
        path = _need(config.certificate_path, "certificate_path", kind)
        if not Path(path).is_file():
            raise UsageError(f"certificate_path: no such file {path}")
        password = read_secret(CERT_PASSWORD_ENV, env)
        return aio.CertificateCredential(
            _need(config.tenant_id, "tenant_id", kind),
            _need(config.client_id, "client_id", kind),
            certificate_path=path,
            password=password.encode() if password else None,
            authority=authority,
        )
    if kind is CredentialKind.MANAGED_IDENTITY:
        return aio.ManagedIdentityCredential(client_id=config.client_id) if config.client_id else aio.ManagedIdentityCredential()
    if kind is CredentialKind.WORKLOAD_IDENTITY:
        token_file = _need(env.get("AZURE_FEDERATED_TOKEN_FILE"), "AZURE_FEDERATED_TOKEN_FILE in the environment", kind)
        return aio.WorkloadIdentityCredential(
            tenant_id=config.tenant_id or env.get("AZURE_TENANT_ID"),
            client_id=config.client_id or env.get("AZURE_CLIENT_ID"),
            token_file_path=token_file,
            authority=authority,
        )
    if kind is CredentialKind.AZURE_CLI:
        return aio.AzureCliCredential(tenant_id=config.tenant_id or "")
    if kind is CredentialKind.DEVICE_CODE:
        # azure-identity has no async device-code credential; kiota awaits either kind.
        from azure.identity import DeviceCodeCredential

        kwargs: dict[str, Any] = {"authority": authority}
        if device_code_prompt is not None:
            kwargs["prompt_callback"] = device_code_prompt
        return DeviceCodeCredential(
            client_id=_need(config.client_id, "client_id", kind), tenant_id=config.tenant_id, **kwargs
        )
    return aio.DefaultAzureCredential(authority=authority)
