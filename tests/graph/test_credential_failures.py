"""Credential failures name their cause and their fix, with the exit code that fits.

- A certificate file is checked before any network call: every way it can be unusable is a
  CredentialError (exit 4) naming the file, the cause and the fix, never the password.
- Entra's refusals, produced by azure-identity itself against a loopback token endpoint
  (``support.token_endpoint.FakeEntra``), become SignInRefused (exit 4) named from their
  AADSTS code; an unreachable or not-answering login endpoint is LoginUnreachable (exit 5).
- From a job file to a token: ``open_target`` signs in (in a child process that trusts the
  endpoint's CA) with the job's certificate, and the client assertion Entra receives is
  signed by that certificate's key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import aio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from support.cli import SUBPROCESS_TIMEOUT_S, child_env
from support.token_endpoint import (
    TRACE_ID,
    FakeEntra,
    closed_port,
    no_network_env,
    write_app_certificate,
)

from provision.errors import AuthError, CredentialError, ExitCode, TargetUnreachable, UsageError, exit_code_for
from provision.graph.credentials import (
    CredentialConfig,
    CredentialKind,
    SignInFacts,
    make_credential,
    sign_in_facts,
)
from provision.graph.errors import LoginUnreachable, SignInRefused, TransportFailure, sign_in_failure, translate

TENANT = "contoso.onmicrosoft.com"
CLIENT = "11111111-2222-3333-4444-555555555555"
SECRET = "Zx8Q~not-a-real-secret-4711"
PASSWORD = "pfx-pass-0815"
SCOPE = "https://graph.microsoft.com/.default"


def cert_config(path: Path) -> CredentialConfig:
    return CredentialConfig(kind=CredentialKind.CERTIFICATE, tenant_id=TENANT, client_id=CLIENT, certificate_path=str(path))


def refused_build(path: Path, env: dict[str, str]) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        make_credential(cert_config(path), env=env)
    error = caught.value
    assert exit_code_for(error) is ExitCode.AUTH
    assert "\n" not in str(error) and PASSWORD not in str(error)
    return error


# --- the certificate file, before any network call ---------------------------------------------


@pytest.mark.parametrize(
    ("arrange", "env", "says"),
    [
        (dict(parts=("key",)), {}, ["holds a private key but no certificate", "cat app.key app.crt > app.pem"]),
        (dict(parts=("cert",)), {}, ["holds a certificate but no private key", "one file holding both"]),
        (dict(password=PASSWORD), {}, ["private key is encrypted", "AZURE_CLIENT_CERTIFICATE_PASSWORD is not set", "set"]),
        (dict(password=PASSWORD), {"AZURE_CLIENT_CERTIFICATE_PASSWORD": "wrong"}, ["does not decrypt the private key", "wrong password"]),
        (dict(pfx=True, password=PASSWORD), {}, ["PKCS#12 without a password", "set AZURE_CLIENT_CERTIFICATE_PASSWORD"]),
        (dict(pfx=True, password=PASSWORD), {"AZURE_CLIENT_CERTIFICATE_PASSWORD": "wrong"}, ["does not open this PKCS#12 file"]),
        (dict(ec_key=True), {}, ["private key is not RSA", "create an RSA certificate"]),
        (dict(foreign_key=True), {}, ["does not belong to the certificate", "thumbprint"]),
        (dict(expired=True), {}, ["expired on", "add it to the app registration's Certificates & secrets"]),
    ],
    ids=["key-only", "cert-only", "encrypted-no-password", "wrong-password", "pfx-no-password", "pfx-wrong-password",
         "ec-key", "foreign-key", "expired"],
)
def test_unusable_certificate_files_are_refused_with_cause_and_fix(
    tmp_path: Path, arrange: dict[str, Any], env: dict[str, str], says: list[str]
) -> None:
    cert = write_app_certificate(tmp_path / ("app.pfx" if arrange.get("pfx") else "app.pem"), **arrange)
    message = str(refused_build(cert.path, env))
    assert str(cert.path) in message
    for words in says:
        assert words in message
    if "thumbprint" in says:
        assert cert.thumbprint in message


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.mkdir(), p)[1], "can't read"),
        (lambda p: (p.write_text("not a certificate at all"), p)[1], "neither a PEM nor a PKCS#12"),
        (lambda p: (p.write_text("-----BEGIN SOMETHING-----\nAAAA\n-----END SOMETHING-----\n"), p)[1], "neither a certificate nor a private key"),
    ],
    ids=["missing", "directory", "garbage", "pem-without-either"],
)
def test_missing_or_foreign_files_are_refused(tmp_path: Path, make: Any, says: str) -> None:
    path = make(tmp_path / "app.pem")
    message = str(refused_build(path, {}))
    assert says in message and str(path) in message


@pytest.mark.parametrize(
    ("arrange", "env"),
    [
        (dict(), {}),
        (dict(parts=("cert", "key")), {}),
        (dict(password=PASSWORD), {"AZURE_CLIENT_CERTIFICATE_PASSWORD": PASSWORD}),
        (dict(pfx=True, password=PASSWORD), {"AZURE_CLIENT_CERTIFICATE_PASSWORD": PASSWORD}),
        (dict(pfx=True), {}),
        # A password left in the environment for a key that has none does no harm.
        (dict(), {"AZURE_CLIENT_CERTIFICATE_PASSWORD": "left-over"}),
    ],
    ids=["pem", "cert-then-key", "encrypted-pem", "pfx", "pfx-no-password", "stray-password"],
)
def test_usable_certificate_files_build_azure_identitys_credential(tmp_path: Path, arrange: dict[str, Any], env: dict[str, str]) -> None:
    cert = write_app_certificate(tmp_path / "app.cert", **arrange)
    credential = make_credential(cert_config(cert.path), env=env)
    assert isinstance(credential, aio.CertificateCredential)
    asyncio.run(credential.close())
    assert sign_in_facts(cert_config(cert.path), env=env).thumbprint == cert.thumbprint


def test_a_missing_secret_is_a_credential_error_and_a_bad_tenant_id_a_job_file_error() -> None:
    config = CredentialConfig(kind=CredentialKind.SECRET, tenant_id=TENANT, client_id=CLIENT)
    with pytest.raises(CredentialError, match="AZURE_CLIENT_SECRET .*is not set") as caught:
        make_credential(config, env={})
    assert exit_code_for(caught.value) is ExitCode.AUTH
    with pytest.raises(UsageError, match="target.tenant_id: 'contoso tenant' is not a tenant id"):
        make_credential(CredentialConfig(kind=CredentialKind.SECRET, tenant_id="contoso tenant", client_id=CLIENT),
                        env={"AZURE_CLIENT_SECRET": SECRET})


# --- Entra's answers, through azure-identity itself --------------------------------------------


@pytest.fixture
def entra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEntra]:
    """FakeEntra, reached through this process's proxy variables (aiohttp reads them per request)."""
    with FakeEntra(tmp_path) as endpoint:
        for name, value in endpoint.env().items():
            if name not in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):  # trusted via connection_verify instead
                monkeypatch.setenv(name, value)
        yield endpoint


def secret_facts(cloud: str = "global") -> SignInFacts:
    config = CredentialConfig.from_mapping({"credential": "secret", "tenant_id": TENANT, "client_id": CLIENT, "cloud": cloud})
    return sign_in_facts(config, env={"AZURE_CLIENT_SECRET": SECRET})


def first_token_failure(facts: SignInFacts, *, verify: str | None) -> BaseException:
    """What azure-identity's ClientSecretCredential raises for the first token (no retries)."""

    async def sign_in() -> None:
        kwargs: dict[str, Any] = {"connection_verify": verify} if verify else {}
        async with aio.ClientSecretCredential(TENANT, CLIENT, SECRET, authority=facts.login_host, retry_total=0, **kwargs) as cred:
            await cred.get_token(SCOPE)

    with pytest.raises(Exception) as caught:
        asyncio.run(sign_in())
    return caught.value


KNOWN = [
    (7000215, "Invalid client secret provided.", ["the client secret in AZURE_CLIENT_SECRET is not a valid secret of app " + CLIENT,
                                                  "fix: copy the secret's Value (not its Secret ID)"]),
    (7000222, "The provided client secret keys for app are expired.", ["has expired", "create a new client secret"]),
    (700016, f"Application with identifier '{CLIENT}' was not found in the directory.", ["no application with client_id " + CLIENT,
                                                                                          "check target.client_id and target.tenant_id"]),
    (90002, f"Tenant '{TENANT}' not found.", [f"tenant {TENANT} was not found at login.microsoftonline.com (cloud 'global')",
                                              "target.cloud"]),
    (90038, "Tenant is in a national cloud.", ["belongs to another national cloud", "set target.cloud"]),
    (700027, "Client assertion failed signature validation.", ["is not registered on app", "Certificates & secrets"]),
    (53003, "Access has been blocked by Conditional Access policies.", ["Conditional Access", "allow this app"]),
]


@pytest.mark.parametrize(("aadsts", "description", "says"), KNOWN, ids=[str(k[0]) for k in KNOWN])
def test_well_known_aadsts_codes_name_cause_and_fix(entra: FakeEntra, aadsts: int, description: str, says: list[str]) -> None:
    entra.answer_error(aadsts, description, error="invalid_request" if aadsts == 90002 else "invalid_client", status=400)
    error = sign_in_failure(first_token_failure(secret_facts(), verify=str(entra.ca_file)), secret_facts())
    assert isinstance(error, SignInRefused) and exit_code_for(error) is ExitCode.AUTH
    assert error.aadsts == aadsts and error.code == f"AADSTS{aadsts}"
    message = str(error)
    assert message.startswith(f"sign-in refused by login.microsoftonline.com (AADSTS{aadsts} ")
    for words in says:
        assert words in message
    assert "\n" not in message and SECRET not in message
    assert [(r.host, r.path) for r in entra.requests] == [("login.microsoftonline.com", f"/{TENANT}/oauth2/v2.0/token")]


def test_an_unknown_aadsts_code_keeps_code_and_message_masked_and_scrubbed(entra: FakeEntra) -> None:
    entra.answer_error(
        4999999, f"Something new went wrong for the user with phone +1 425 555 0101 and secret {SECRET}.", error="invalid_grant"
    )
    error = sign_in_failure(first_token_failure(secret_facts(), verify=str(entra.ca_file)), secret_facts())
    assert isinstance(error, SignInRefused) and error.aadsts == 4999999 and error.error == "invalid_grant"
    message = str(error)
    assert "(AADSTS4999999 invalid_grant): Something new went wrong" in message
    assert "+1 *******101" in message and "425 555 0101" not in message
    assert SECRET not in message and "secret ***." in message
    assert f"(Entra trace ID {TRACE_ID})" in message and "Correlation ID" not in message
    assert "look AADSTS4999999 up at https://login.microsoftonline.com/error" in message


def test_the_national_clouds_authority_is_asked_and_named(entra: FakeEntra) -> None:
    facts = secret_facts("usgov")
    entra.answer_error(90002, f"Tenant '{TENANT}' not found.", error="invalid_request", status=400)
    error = sign_in_failure(first_token_failure(facts, verify=str(entra.ca_file)), facts)
    assert "not found at login.microsoftonline.us (cloud 'usgov')" in str(error)
    assert [r.host for r in entra.requests] == ["login.microsoftonline.us"]


def test_an_answer_that_is_no_sign_in_answer_means_the_endpoint_is_down(entra: FakeEntra) -> None:
    entra.answer_status(503, "<html><body>Service Unavailable</body></html>")
    error = sign_in_failure(first_token_failure(secret_facts(), verify=str(entra.ca_file)), secret_facts())
    assert isinstance(error, LoginUnreachable) and exit_code_for(error) is ExitCode.STOPPED
    assert "the login endpoint login.microsoftonline.com can't be reached" in str(error)


def test_an_untrusted_tls_certificate_is_named_with_its_fix(entra: FakeEntra, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without connection_verify the fake endpoint's CA is not trusted: as behind a TLS-inspecting proxy.
    error = sign_in_failure(first_token_failure(secret_facts(), verify=None), secret_facts())
    assert isinstance(error, LoginUnreachable)
    assert "TLS certificate isn't trusted" in str(error) and "SSL_CERT_FILE" in str(error)


def test_no_network_is_login_unreachable_naming_the_host_and_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with closed_port() as port:
        for name, value in no_network_env(port).items():
            monkeypatch.setenv(name, value)
        error = sign_in_failure(first_token_failure(secret_facts(), verify=None), secret_facts())
    assert isinstance(error, LoginUnreachable) and isinstance(error, TargetUnreachable)
    assert exit_code_for(error) is ExitCode.STOPPED
    message = str(error)
    assert message.startswith(f"the login endpoint login.microsoftonline.com can't be reached through the proxy http://127.0.0.1:{port}")
    assert "check the network, DNS, proxy and firewall" in message


def test_mid_run_token_failures_become_graph_errors(entra: FakeEntra, monkeypatch: pytest.MonkeyPatch) -> None:
    entra.answer_error(7000222, "The provided client secret keys for app are expired.")
    refused = translate(first_token_failure(secret_facts(), verify=str(entra.ca_file)))
    assert isinstance(refused, AuthError) and refused.status == 401 and refused.code == "AADSTS7000222"
    assert "has expired" in refused.message
    with closed_port() as port:
        for name, value in no_network_env(port).items():
            monkeypatch.setenv(name, value)
        unreachable = translate(first_token_failure(secret_facts(), verify=None))
    # The Graph request waited for its token: it was certainly not sent.
    assert isinstance(unreachable, TransportFailure) and unreachable.outcome_unknown is False
    assert "the login endpoint can't be reached to renew the token" in unreachable.message
    assert translate(ClientAuthenticationError("DefaultAzureCredential failed")).code == "credentialUnavailable"


def test_no_code_from_the_credential_names_the_fix_for_its_kind() -> None:
    config = CredentialConfig(kind=CredentialKind.AZURE_CLI, tenant_id=TENANT)
    error = sign_in_failure(ClientAuthenticationError("Please run 'az login' to set up an account"), sign_in_facts(config, env={}))
    assert isinstance(error, SignInRefused) and error.aadsts is None
    assert f"fix: run 'az login --tenant {TENANT}'" in str(error)


# --- from a job file to a token ----------------------------------------------------------------

SIGN_IN = """
import asyncio, sys
from provision.run.jobs import load_job
from provision.run.targets import open_target

async def main():
    async with open_target(load_job(sys.argv[1])) as target:  # signs in, then closes: no Graph request
        print(target.kind, target.description)

asyncio.run(main())
"""


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_a_job_files_certificate_signs_the_assertion_entra_receives(tmp_path: Path) -> None:
    cert = write_app_certificate(tmp_path / "app.pem", password=PASSWORD)
    job = tmp_path / "job.toml"
    job.write_text(
        f'name = "j"\n[roster]\npath = "r.csv"\n[target]\nkind = "graph"\ntenant_id = "{TENANT}"\n'
        f'client_id = "{CLIENT}"\ncredential = "certificate"\ncertificate_path = "app.pem"\n',
        encoding="utf-8",
    )
    with FakeEntra(tmp_path) as entra:
        env = child_env({**entra.env(), "AZURE_CLIENT_CERTIFICATE_PASSWORD": PASSWORD, "AZURE_CLIENT_CERTIFICATE_PASSWORD_FILE": ""})
        done = subprocess.run([sys.executable, "-c", SIGN_IN, str(job)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=SUBPROCESS_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"graph Microsoft Graph global tenant {TENANT} (v1.0)"
    [request] = entra.requests
    assert (request.host, request.path) == ("login.microsoftonline.com", f"/{TENANT}/oauth2/v2.0/token")
    assert request.form["grant_type"] == "client_credentials" and request.form["scope"] == SCOPE
    assert request.form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    header, claims, signature = request.form["client_assertion"].split(".")
    # azure-identity signs with PS256 and names the certificate by its SHA-256 thumbprint.
    named = json.loads(_b64(header))
    assert (named["alg"], _b64(named["x5t#S256"].rstrip("="))) == ("PS256", cert.certificate.fingerprint(hashes.SHA256()))
    assert json.loads(_b64(claims))["sub"] == CLIENT
    public = cert.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    public.verify(_b64(signature), f"{header}.{claims}".encode(), pss, hashes.SHA256())  # raises if not signed by it
