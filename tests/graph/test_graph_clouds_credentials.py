"""National cloud mapping and the credential factory's secret handling (certificate files and sign-in
failures: test_credential_failures.py)."""

from __future__ import annotations

import asyncio

import pytest
from azure.identity import aio

from provision.errors import CredentialError, ExitCode, UsageError, exit_code_for
from provision.graph.clouds import Cloud, cloud_target, url_target
from provision.graph.credentials import (
    CredentialConfig,
    CredentialKind,
    StaticTokenCredential,
    make_credential,
)


@pytest.mark.parametrize(
    ("cloud", "root", "authority"),
    [
        ("global", "https://graph.microsoft.com", "login.microsoftonline.com"),
        ("usgov", "https://graph.microsoft.us", "login.microsoftonline.us"),
        ("usgov-dod", "https://dod-graph.microsoft.us", "login.microsoftonline.us"),
        ("china", "https://microsoftgraph.chinacloudapi.cn", "login.chinacloudapi.cn"),
    ],
)
@pytest.mark.parametrize("version", ["v1.0", "beta"])
def test_cloud_targets(cloud: str, root: str, authority: str, version: str) -> None:
    target = cloud_target(cloud, version)
    assert target.base_url == f"{root}/{version}"
    assert target.scopes == (f"{root}/.default",)
    assert target.authority_host == authority
    assert target.allowed_hosts == (root.removeprefix("https://"),)  # bare host: kiota rejects a scheme


def test_sandbox_url_target() -> None:
    target = url_target("http://127.0.0.1:8123/v1.0/")
    assert target.base_url == "http://127.0.0.1:8123/v1.0"  # no trailing slash: no '//' in paths
    assert target.allowed_hosts == ("127.0.0.1",) and target.is_loopback and target.cloud is None
    assert target.scopes == ("https://graph.microsoft.com/.default",)
    assert url_target("http://localhost:9/beta").base_url.endswith("/beta")
    usgov = url_target("https://graph.microsoft.us/v1.0", cloud="usgov")
    assert usgov.scopes == ("https://graph.microsoft.us/.default",) and usgov.cloud is Cloud.USGOV


@pytest.mark.parametrize("url", ["http://10.0.0.5:80/v1.0", "http://127.0.0.1:80/", "ftp://127.0.0.1/v1.0"])
def test_bad_urls_refused(url: str) -> None:
    with pytest.raises(UsageError):
        url_target(url)


@pytest.mark.parametrize("key", ["client_secret", "password", "token", "certificate_password"])
def test_secrets_in_config_refused(key: str) -> None:
    with pytest.raises(UsageError, match=key):
        CredentialConfig.from_mapping({"credential": "secret", "tenant_id": "t", "client_id": "c", key: "hunter2"})


def test_secret_credential_reads_env_then_file(tmp_path) -> None:
    config = CredentialConfig.from_mapping({"credential": "secret", "tenant_id": "t", "client_id": "c", "cloud": "usgov"})
    assert config.kind is CredentialKind.SECRET and config.cloud is Cloud.USGOV
    with pytest.raises(CredentialError, match="AZURE_CLIENT_SECRET"):  # the credential can't be built: exit 4
        make_credential(config, env={})
    cred = make_credential(config, env={"AZURE_CLIENT_SECRET": "s3cret"})
    assert isinstance(cred, aio.ClientSecretCredential)
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    cred2 = make_credential(config, env={"AZURE_CLIENT_SECRET_FILE": str(secret_file)})
    assert isinstance(cred2, aio.ClientSecretCredential)
    with pytest.raises(CredentialError, match="AZURE_CLIENT_SECRET_FILE: can't read"):
        make_credential(config, env={"AZURE_CLIENT_SECRET_FILE": str(tmp_path / "missing")})
    asyncio.run(cred.close())
    asyncio.run(cred2.close())


def test_static_token_from_env_or_file(tmp_path) -> None:
    config = CredentialConfig(kind=CredentialKind.STATIC)
    with pytest.raises(CredentialError, match="PROVISION_TOKEN"):
        make_credential(config, env={})
    token_file = tmp_path / "tok"
    token_file.write_text("abc.def.\n")
    cred = make_credential(config, env={"PROVISION_TOKEN_FILE": str(token_file)})
    assert isinstance(cred, StaticTokenCredential)
    assert asyncio.run(cred.get_token("https://graph.microsoft.com/.default")).token == "abc.def."


def test_certificate_needs_existing_file(tmp_path) -> None:
    config = CredentialConfig(kind=CredentialKind.CERTIFICATE, tenant_id="t", client_id="c",
                              certificate_path=str(tmp_path / "nope.pem"))
    with pytest.raises(CredentialError, match="no such file") as caught:
        make_credential(config, env={})
    assert exit_code_for(caught.value) is ExitCode.AUTH


class RecordingCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: object):
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken("tok", 2**31)


@pytest.mark.parametrize(("cloud", "host"), [("usgov", "graph.microsoft.us"), ("china", "microsoftgraph.chinacloudapi.cn")])
def test_client_for_a_national_cloud_asks_that_cloud_for_tokens_and_no_one_else(cloud: str, host: str) -> None:
    from provision.graph.client import GraphClient

    cred = RecordingCredential()

    async def run() -> tuple[str, str, str]:
        async with GraphClient.for_cloud(cred, cloud, "beta") as client:
            provider = client.auth_provider.access_token_provider
            here = await provider.get_authorization_token(f"https://{host}/beta/users/x/authentication/phoneMethods")
            elsewhere = await provider.get_authorization_token("https://graph.microsoft.com/beta/users")
            return client.adapter.base_url, here, elsewhere

    base_url, here, elsewhere = asyncio.run(run())
    assert base_url == f"https://{host}/beta"
    assert here == "tok" and cred.scopes == [(f"https://{host}/.default",)]
    assert elsewhere == ""  # a token is never sent to another host
