"""A loopback stand-in for Entra's token endpoint, a closed port, and app certificates.

Why a proxy: azure-identity's async credentials (secret, certificate) POST straight to
``https://<authority host>/<tenant>/oauth2/v2.0/token``, without instance discovery, but
only over https (an http authority is refused) and the authority host follows the job's
cloud. Their transport, azure-core's ``AioHttpTransport``, opens its aiohttp session with
``trust_env=True``, so it honours ``HTTPS_PROXY``/``https_proxy`` and ``NO_PROXY``. So a run
reaches this endpoint the way it reaches Entra behind a corporate proxy: ``FakeEntra`` is
an HTTP CONNECT proxy on 127.0.0.1 that never connects anywhere. It accepts a tunnel only
to a login host, ends it itself with TLS under a certificate for the login hosts signed by
a CA made for the test, and answers the OAuth2 token request with a token or an error body
shaped like Entra's. A child process trusts that CA through ``SSL_CERT_FILE`` (aiohttp's
default SSL context, made when aiohttp loads) and ``REQUESTS_CA_BUNDLE`` (requests, for the
msal-based credentials); an in-process azure-identity credential through
``connection_verify=ca_file``.

Never let a run go past a token it was given: the GraphClient's httpx transport ignores
the proxy variables, so its first Graph request would look up the real Graph host. Child
runs get refusals; a token is only handed to code that stops after signing in.

- ``FakeEntra(folder)``: ``with FakeEntra(tmp_path) as entra``; ``entra.env()`` (a child's
  environment), ``entra.answer_token()`` / ``answer_error(...)`` / ``answer_status(...)`` /
  ``answer_nothing()`` (read the request, then hold the connection silent until stopped),
  ``entra.requests`` (what was asked), ``entra.ca_file``, ``entra.proxy_url``.
- ``closed_port()``: a loopback port held bound but never listening: a connection to it is
  refused at once, and nothing else can take it while the test runs.
- ``no_network_env(port)``: every proxy variable at that port, ``NO_PROXY`` cleared: any
  outbound connection a child makes through an honouring library is refused on loopback.
- ``write_app_certificate(path, ...)``: an app's certificate file, in the forms admins have.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import json
import socket
import ssl
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provision.graph.clouds import CLOUDS

LOGIN_HOSTS = tuple(sorted({endpoints.authority_host for endpoints in CLOUDS.values()}))
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
TRACE_ID = "0c6e9c0e-1d9b-4b0f-8a0e-6c2d8f5a1e00"


@dataclass(frozen=True)
class TokenRequest:
    host: str
    method: str
    path: str  # /<tenant>/oauth2/v2.0/token
    form: dict[str, str]


@dataclass(frozen=True)
class _Answer:
    status: int  # 0: no answer at all
    content_type: str
    body: bytes


def entra_error_body(aadsts: int, description: str, error: str = "invalid_client") -> dict[str, Any]:
    """An error body as Entra's token endpoint writes it (description with its trailer lines)."""
    return {
        "error": error,
        "error_description": f"AADSTS{aadsts}: {description}\r\nTrace ID: {TRACE_ID}\r\n"
        "Correlation ID: 5e1d2c3b-aaaa-bbbb-cccc-1234567890ab\r\nTimestamp: 2026-01-05 02:00:01Z",
        "error_codes": [aadsts],
        "timestamp": "2026-01-05 02:00:01Z",
        "trace_id": TRACE_ID,
        "correlation_id": "5e1d2c3b-aaaa-bbbb-cccc-1234567890ab",
        "error_uri": f"https://login.microsoftonline.com/error?code={aadsts}",
    }


class FakeEntra:
    """Entra's token endpoint behind a loopback CONNECT proxy (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.ca_file, self._tls = _tls_for_login_hosts(folder)
        self.requests: list[TokenRequest] = []
        self._answer = _Answer(200, "application/json", b"")
        self.answer_token()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-entra", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping: asyncio.Event | None = None
        self.port = 0

    # answers -----------------------------------------------------------------------------
    def answer_token(self, token: str = "header.payload.signature") -> None:
        body = {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        self._answer = _Answer(200, "application/json; charset=utf-8", json.dumps(body).encode())

    def answer_error(self, aadsts: int, description: str, *, error: str = "invalid_client", status: int = 401) -> None:
        body = entra_error_body(aadsts, description, error)
        self._answer = _Answer(status, "application/json; charset=utf-8", json.dumps(body).encode())

    def answer_status(self, status: int, body: str = "", content_type: str = "text/html") -> None:
        self._answer = _Answer(status, content_type, body.encode())

    def answer_nothing(self) -> None:
        self._answer = _Answer(0, "", b"")

    # running -----------------------------------------------------------------------------
    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """A child's environment: every proxy variable at this endpoint, its CA trusted."""
        return {
            **{name: self.proxy_url for name in PROXY_VARIABLES},
            "NO_PROXY": "",
            "no_proxy": "",
            "SSL_CERT_FILE": str(self.ca_file),
            "REQUESTS_CA_BUNDLE": str(self.ca_file),
        }

    def __enter__(self) -> "FakeEntra":
        self._thread.start()

        async def start() -> asyncio.base_events.Server:
            self._stopping = asyncio.Event()
            return await asyncio.start_server(self._serve, "127.0.0.1", 0)

        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            assert self._server is not None and self._stopping is not None
            self._server.close()
            self._stopping.set()  # silent answers end now
            for writer in list(self._writers):
                writer.close()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target = head.decode("latin-1").split(" ", 2)[:2]
            host = target.rsplit(":", 1)[0]
            if method != "CONNECT" or host not in LOGIN_HOSTS:
                # Nothing is ever forwarded: a request for anywhere else is refused here.
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await writer.start_tls(self._tls)
            while await self._one_request(host, reader, writer):
                pass
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
            pass  # the client went away (or gave up on TLS): nothing to answer
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            writer.close()

    async def _one_request(self, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ", 2)[:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(TokenRequest(host, method, path, dict(parse_qsl(body.decode("utf-8")))))
        answer = self._answer
        if answer.status == 0:
            assert self._stopping is not None
            await self._stopping.wait()
            return False
        writer.write(
            f"HTTP/1.1 {answer.status} X\r\nContent-Type: {answer.content_type}\r\n"
            f"Content-Length: {len(answer.body)}\r\n\r\n".encode("latin-1") + answer.body
        )
        await writer.drain()
        return True


@contextmanager
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port bound (so no one else takes it) but not listening: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


def no_network_env(port: int) -> dict[str, str]:
    """Every proxy variable at the closed loopback ``port``, ``NO_PROXY`` cleared."""
    return {**{name: f"http://127.0.0.1:{port}" for name in PROXY_VARIABLES}, "NO_PROXY": "", "no_proxy": ""}


# --- certificates -----------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _tls_for_login_hosts(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA (written to ``folder/fake-entra-ca.pem``) and a server context for the login hosts."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("provision test CA"))
        .issuer_name(_name("provision test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(host) for host in LOGIN_HOSTS]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(LOGIN_HOSTS[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "fake-entra-ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain, key_file = folder / "fake-entra-login.pem", folder / "fake-entra-login.key"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key_file)
    return ca_file, context


@functools.cache
def _rsa_key(which: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class AppCertificate:
    path: Path
    thumbprint: str  # SHA-1, upper-case hex, as the app registration lists it
    certificate: x509.Certificate


def write_app_certificate(
    path: Path,
    *,
    parts: Sequence[str] = ("key", "cert"),
    password: str | None = None,
    pfx: bool = False,
    expired: bool = False,
    ec_key: bool = False,
    foreign_key: bool = False,
) -> AppCertificate:
    """An app certificate file: PEM with ``parts`` in that order ("key", "cert"), the key
    encrypted with ``password``; or PKCS#12 (``pfx``) with both. ``expired``: its validity
    ended yesterday; ``ec_key``: an EC key instead of RSA; ``foreign_key``: the file's key
    is not the certificate's."""
    key: Any = ec.generate_private_key(ec.SECP256R1()) if ec_key else _rsa_key(0)
    now = dt.datetime.now(dt.timezone.utc)
    start, end = (now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired else (now - dt.timedelta(days=1), now + dt.timedelta(days=365))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("provision-app"))
        .issuer_name(_name("provision-app"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    file_key = _rsa_key(1) if foreign_key else key
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    if pfx:
        data = pkcs12.serialize_key_and_certificates(b"provision-app", file_key, cert, None, encryption)
    else:
        blocks = {
            "key": file_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption),
            "cert": cert.public_bytes(serialization.Encoding.PEM),
        }
        data = b"".join(blocks[part] for part in parts)
    path.write_bytes(data)
    return AppCertificate(path, cert.fingerprint(hashes.SHA1()).hex().upper(), cert)
