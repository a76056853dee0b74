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

A credential that can't be built raises ``CredentialError`` (exit 4) naming the cause and
the fix, before any network call: a missing secret, and a certificate file checked the
way azure-identity will read it (``check_certificate``: PEM with certificate and private
key, or PKCS#12; the right password; an RSA key that belongs to an unexpired
certificate). Refusals at sign-in are translated by ``provision.graph.errors`` with the
``SignInFacts`` of the credential. A job file value that can't be right (a tenant id
azure-identity would refuse) is a ``UsageError`` naming its key.

azure-identity (and azure-core) load only when a credential is built or a token handed
out: the job-file schema imports this module for ``CredentialKind`` and ``SECRET_KEYS``,
and loading a job file stays cheap (``cryptography`` loads with the certificate check).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from provision.errors import CredentialError, UsageError
from provision.graph.clouds import CLOUDS, Cloud

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

SECRET_KEYS = frozenset(
    {"client_secret", "secret", "password", "certificate_password", "token", "access_token", "refresh_token"}
)

SECRET_ENV = "AZURE_CLIENT_SECRET"
CERT_PASSWORD_ENV = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
TOKEN_ENV = "PROVISION_TOKEN"

# What azure-identity accepts as a tenant: a GUID or a domain (it refuses anything else).
_TENANT_ID = re.compile(r"^[A-Za-z0-9.-]+$")


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
            raise CredentialError(
                f"{name}_FILE: can't read {path} ({exc.strerror}): point {name}_FILE at a readable file "
                f"holding the value, or set {name} itself"
            ) from None
    return None


# --- certificates ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertificateFile:
    """A certificate file azure-identity will accept, as checked before any sign-in."""

    path: str
    thumbprint: str  # SHA-1, upper-case hex: what the app registration lists
    not_after: datetime
    key_encrypted: bool  # the private key needs AZURE_CLIENT_CERTIFICATE_PASSWORD


_PEM_KEY = re.compile(rb"-----BEGIN (?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----")
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
_FIX_PAIR = (
    "point target.certificate_path at one file holding both (PEM: the private key and the certificate one "
    "after the other, e.g. cat app.key app.crt > app.pem; or the .pfx exported with its private key)"
)


def check_certificate(path: str, password: bytes | None, *, now: datetime | None = None) -> CertificateFile:
    """Read the certificate file as azure-identity will (PEM if it holds ``-----BEGIN``, else
    PKCS#12) and refuse, naming the cause and the fix, what would fail later: no such file,
    no certificate, no private key, a missing or wrong password, a key that isn't RSA
    (azure-identity signs client assertions with RSA only) or doesn't belong to the
    certificate, an expired certificate. The password never appears in a message."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CredentialError(
            f"certificate_path: no such file {path}: point target.certificate_path at the app's certificate file"
        ) from None
    except OSError as exc:
        raise CredentialError(
            f"certificate_path: can't read {path} ({exc.strerror}): let the account running provision read it"
        ) from None
    if b"-----BEGIN" in data:
        cert, key, encrypted = _read_pem(path, data, password)
    else:
        cert, key, encrypted = _read_pkcs12(path, data, password)
    return _checked(path, cert, key, encrypted, now or datetime.now(timezone.utc))


def _read_pem(path: str, data: bytes, password: bytes | None) -> tuple[x509.Certificate, PrivateKeyTypes, bool]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    has_key, has_cert = bool(_PEM_KEY.search(data)), _PEM_CERT in data
    if not has_cert and not has_key:
        raise CredentialError(f"{path} holds neither a certificate nor a private key (PEM): {_FIX_PAIR}")
    if not has_cert:
        raise CredentialError(f"{path} holds a private key but no certificate: {_FIX_PAIR}")
    if not has_key:
        raise CredentialError(
            f"{path} holds a certificate but no private key (the app signs in with the key; the certificate alone "
            f"is what the app registration gets): {_FIX_PAIR}"
        )
    try:
        cert = x509.load_pem_x509_certificate(data)  # the first one, as azure-identity reads it
    except ValueError:
        raise CredentialError(f"{path}: the certificate in it is damaged: export it again; {_FIX_PAIR}") from None
    try:
        return cert, load_pem_private_key(data, None), False
    except TypeError:  # encrypted: needs the password
        pass
    except ValueError:
        raise CredentialError(f"{path}: the private key in it is damaged or of an unknown kind: export it again") from None
    if password is None:
        raise CredentialError(
            f"{path}: the private key is encrypted and {CERT_PASSWORD_ENV} is not set: set {CERT_PASSWORD_ENV} "
            f"(or {CERT_PASSWORD_ENV}_FILE) in the environment to the key's password"
        )
    try:
        return cert, load_pem_private_key(data, password), True
    except ValueError:
        raise CredentialError(
            f"{path}: {CERT_PASSWORD_ENV} does not decrypt the private key (wrong password): set it to the "
            f"password the key was exported with"
        ) from None


def _read_pkcs12(path: str, data: bytes, password: bytes | None) -> tuple[x509.Certificate, PrivateKeyTypes, bool]:
    from cryptography.hazmat.primitives.serialization import pkcs12

    if not data.startswith(b"\x30"):  # DER: a PKCS#12 file starts with a SEQUENCE
        raise CredentialError(f"{path} is neither a PEM nor a PKCS#12 (.pfx) certificate file: {_FIX_PAIR}")
    encrypted = False
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, None)
    except ValueError:
        # PKCS#12 can't tell a missing password from a wrong one or a damaged file.
        if password is None:
            raise CredentialError(
                f"{path} can't be opened as PKCS#12 without a password: set {CERT_PASSWORD_ENV} (or "
                f"{CERT_PASSWORD_ENV}_FILE) to the .pfx password; if it has none, the file is damaged: export it again"
            ) from None
        try:
            key, cert, _ = pkcs12.load_key_and_certificates(data, password)
        except ValueError:
            raise CredentialError(
                f"{path}: {CERT_PASSWORD_ENV} does not open this PKCS#12 file (wrong password, or a damaged "
                f"file): set it to the .pfx export password, or export the file again"
            ) from None
        encrypted = True
    if cert is None:
        raise CredentialError(f"{path} (PKCS#12) holds no certificate: {_FIX_PAIR}")
    if key is None:
        raise CredentialError(f"{path} (PKCS#12) holds no private key: export the .pfx with its private key")
    return cert, key, encrypted


def _checked(
    path: str, cert: x509.Certificate, key: PrivateKeyTypes, encrypted: bool, now: datetime
) -> CertificateFile:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialError(
            f"{path}: the private key is not RSA ({type(key).__name__.lstrip('_')}); azure-identity signs its client "
            f"assertions to Entra with RSA only: create an RSA certificate for the app"
        )
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey) or public.public_numbers() != key.public_key().public_numbers():
        raise CredentialError(
            f"{path}: the private key does not belong to the certificate (thumbprint {thumbprint}): put the "
            f"certificate's own key in the file"
        )
    not_after = cert.not_valid_after_utc
    if not_after <= now:
        raise CredentialError(
            f"{path}: the certificate (thumbprint {thumbprint}) expired on {not_after:%Y-%m-%d}: create a new "
            f"certificate, add it to the app registration's Certificates & secrets, and point certificate_path at it"
        )
    return CertificateFile(path, thumbprint, not_after, encrypted)


# --- building credentials --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignInFacts:
    """What a sign-in failure message may name: never a secret, only where to scrub one."""

    kind: CredentialKind
    cloud: Cloud
    login_host: str
    tenant_id: str | None
    client_id: str | None
    certificate_path: str | None = None
    thumbprint: str | None = None
    secrets: tuple[str, ...] = ()  # values to scrub from any text shown


def sign_in_facts(config: CredentialConfig, *, env: Mapping[str, str] | None = None) -> SignInFacts:
    """The facts about ``config``'s sign-in that its failures are explained with."""
    env = os.environ if env is None else env
    secrets: list[str] = []
    for name in (SECRET_ENV, CERT_PASSWORD_ENV, TOKEN_ENV):
        try:
            value = read_secret(name, env)
        except CredentialError:
            value = None
        if value:
            secrets.append(value)
    thumbprint = None
    if config.kind is CredentialKind.CERTIFICATE and config.certificate_path:
        try:
            password = read_secret(CERT_PASSWORD_ENV, env)
            thumbprint = check_certificate(config.certificate_path, password.encode() if password else None).thumbprint
        except CredentialError:
            thumbprint = None
    return SignInFacts(
        kind=config.kind,
        cloud=config.cloud,
        login_host=CLOUDS[config.cloud].authority_host,
        tenant_id=config.tenant_id,
        client_id=config.client_id,
        certificate_path=config.certificate_path,
        thumbprint=thumbprint,
        secrets=tuple(secrets),
    )


def _need(value: str | None, what: str, kind: CredentialKind) -> str:
    if not value:
        raise UsageError(f"credential {kind.value!r} needs {what}")
    return value


def _need_secret(value: str | None, name: str, kind: CredentialKind) -> str:
    if not value:
        raise CredentialError(
            f"credential {kind.value!r} needs its secret: {name} (or {name}_FILE naming a file that holds it) is not "
            f"set in the environment: set it (see the app registration's Certificates & secrets)"
        )
    return value


def _tenant(config: CredentialConfig, kind: CredentialKind) -> str:
    tenant = _need(config.tenant_id, "tenant_id", kind)
    if not _TENANT_ID.match(tenant):
        raise UsageError(
            f"target.tenant_id: {tenant!r} is not a tenant id: use the Directory (tenant) ID from the Entra admin "
            f"center, or the tenant's domain (contoso.onmicrosoft.com)"
        )
    return tenant


def make_credential(
    config: CredentialConfig,
    *,
    env: Mapping[str, str] | None = None,
    device_code_prompt: Callable[[str, str, Any], None] | None = None,
) -> AsyncTokenCredential | TokenCredential:
    """The azure-identity credential for ``config`` (async where azure-identity has one).

    ``device_code_prompt(verification_uri, user_code, expires_on)`` shows the device-code
    instructions; library code never prints, so the CLI passes one in. Raises
    ``CredentialError`` when the credential can't be built (see the module docstring).
    """
    env = os.environ if env is None else env
    kind = config.kind
    authority = CLOUDS[config.cloud].authority_host
    if kind is CredentialKind.STATIC:
        return StaticTokenCredential(_need_secret(read_secret(TOKEN_ENV, env), TOKEN_ENV, kind))

    from azure.identity import aio

    if kind is CredentialKind.SECRET:
        return aio.ClientSecretCredential(
            _tenant(config, kind),
            _need(config.client_id, "client_id", kind),
            _need_secret(read_secret(SECRET_ENV, env), SECRET_ENV, kind),
            authority=authority,
        )
    if kind is CredentialKind.CERTIFICATE:
        return _certificate_credential(config, env, authority)
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


def _certificate_credential(config: CredentialConfig, env: Mapping[str, str], authority: str) -> AsyncTokenCredential:
    from azure.identity import aio

    kind = CredentialKind.CERTIFICATE
    tenant, client = _tenant(config, kind), _need(config.client_id, "client_id", kind)
    path = _need(config.certificate_path, "certificate_path", kind)
    password = read_secret(CERT_PASSWORD_ENV, env)
    password_bytes = password.encode() if password else None
    checked = check_certificate(path, password_bytes)
    return aio.CertificateCredential(
        tenant,
        client,
        certificate_path=path,
        # azure-identity refuses a password for a key that has none; a leftover variable is harmless.
        password=password_bytes if checked.key_encrypted else None,
        authority=authority,
    )
