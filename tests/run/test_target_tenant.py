"""A job names its tenant and its own secret's variable: what a fleet gives each tenant.

``target.tenant_id`` puts that tenant in the sandbox token; ``target.token_env`` names the
variable holding a token instead of PROVISION_TOKEN; ``target.secret_env`` names the variable
holding a graph target's client secret instead of AZURE_CLIENT_SECRET.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from run_support import served, tenant_with_users, upn

from provision.errors import AuthError
from provision.graph.credentials import SECRET_ENV, CredentialKind, make_credential
from provision.run.jobs import SandboxTarget, TenantTarget, load_job
from provision.run.targets import _credential_config, _credential_env, open_target
from provision.sandbox.auth import make_token


def _job_at(folder: Path, url: str, target_extra: str) -> Path:
    (folder / "roster.csv").write_text(f"user,mobile\n{upn(0)},+1 4253000000\n", encoding="utf-8")
    job = folder / "job.toml"
    job.write_text(f'name = "t"\n[roster]\npath = "roster.csv"\n[target]\nurl = "{url}"\n{target_extra}\n', encoding="utf-8")
    return job


def _read_phones(job_file: Path) -> list[object]:
    job = load_job(job_file)

    async def go() -> list[object]:
        async with open_target(job) as target:
            return list(await target.client.list_phones(upn(0)))

    return asyncio.run(go())


def test_a_token_for_another_tenant_named_by_token_env_is_refused_with_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tenant_with_users(1)
    with served(app) as url:
        own = app.sandbox.tenant_id
        ok = _job_at(tmp_path, url, f'tenant_id = "{own}"')
        assert _read_phones(ok) == []  # minted for the named tenant: admitted
        monkeypatch.setenv("TENANT_B_TOKEN", make_token(tid="00000000-0000-0000-0000-00000000000b"))
        other = tmp_path / "other"
        other.mkdir()
        bad = _job_at(other, url, 'token_env = "TENANT_B_TOKEN"')  # no tenant named: the sandbox judges the token
        with pytest.raises(AuthError) as refused:
            _read_phones(bad)
        assert refused.value.exit_code == 4


def test_secret_env_stands_in_for_the_client_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "the-fleet-default")
    monkeypatch.setenv("FABRIKAM_SECRET", "fabrikam-own")
    spec = TenantTarget(kind="graph", tenant_id="fabrikam.onmicrosoft.com", client_id="app", credential=CredentialKind.SECRET,
                        secret_env="FABRIKAM_SECRET")
    env = _credential_env(spec)
    assert env[SECRET_ENV] == "fabrikam-own"
    credential = make_credential(_credential_config(spec), env=env)
    assert credential is not None
    unset = TenantTarget(kind="graph", tenant_id="t.onmicrosoft.com", client_id="app", credential=CredentialKind.SECRET,
                         secret_env="NOT_SET_ANYWHERE")
    assert SECRET_ENV not in _credential_env(unset)  # never falls back to the fleet default silently


def test_token_env_and_secret_env_take_variable_names_only() -> None:
    with pytest.raises(ValueError):
        SandboxTarget(token_env="eyJhbGciOi.x.y")
    with pytest.raises(ValueError):
        TenantTarget(kind="graph", tenant_id="t", secret_env="s3cr3t value")


def test_a_job_without_tenant_id_refuses_a_sandbox_serving_several_tenants(tmp_path: Path) -> None:
    from provision.errors import UsageError
    from provision.sandbox.app import create_multi_app
    from provision.sandbox.tenant import Tenant

    first, second = Tenant(tenant_id="11111111-1111-1111-1111-111111111111"), Tenant(tenant_id="22222222-2222-2222-2222-222222222222")
    second.create_user(upn(0))
    app = create_multi_app([first, second])
    with served(app) as url:
        with pytest.raises(UsageError, match="serves 2 tenants: name one with target.tenant_id"):
            _read_phones(_job_at(tmp_path, url, ""))
        named = tmp_path / "named"
        named.mkdir()
        assert _read_phones(_job_at(named, url, f'tenant_id = "{second.tenant_id}"')) == []


def test_a_token_for_another_tenant_the_sandbox_serves_is_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provision.errors import CredentialError
    from provision.sandbox.app import create_multi_app
    from provision.sandbox.tenant import Tenant

    first, second = Tenant(tenant_id="11111111-1111-1111-1111-111111111111"), Tenant(tenant_id="22222222-2222-2222-2222-222222222222")
    second.create_user(upn(0))
    app = create_multi_app([first, second])
    monkeypatch.setenv("TENANT_ONE_TOKEN", make_token(tid=first.tenant_id))  # the admin pasted tenant one's token
    with served(app) as url:
        with pytest.raises(CredentialError, match="is for tenant 11111111-.*set TENANT_ONE_TOKEN to a token for 2222") as refused:
            _read_phones(_job_at(tmp_path, url, f'tenant_id = "{second.tenant_id}"\ntoken_env = "TENANT_ONE_TOKEN"'))
        assert refused.value.exit_code == 4
    assert app.tenant_router.total_stats().http_requests == 0  # refused before any request reached either tenant
