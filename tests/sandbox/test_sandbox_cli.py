"""`provision sandbox serve | token | snapshot`."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
from support.cli import start_provision
from typer.testing import CliRunner

from provision.cli import app
from provision.sandbox.auth import SANDBOX_TENANT_ID, decode_token

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "sandbox_tenant.json"
runner = CliRunner()


def test_token_prints_application_and_delegated_tokens() -> None:
    app_token = runner.invoke(app, ["sandbox", "token", "--roles", "User.Read.All, Policy.Read.All"])
    assert app_token.exit_code == 0
    principal = decode_token(app_token.stdout.strip())
    assert not principal.delegated and principal.permissions == {"user.read.all", "policy.read.all"}
    assert principal.tenant_id == SANDBOX_TENANT_ID

    delegated = runner.invoke(
        app, ["sandbox", "token", "--scp", "UserAuthenticationMethod.Read.All User.Read", "--wids", "a,b", "--tid", "t-1"]
    )
    principal = decode_token(delegated.stdout.strip())
    assert principal.delegated and principal.wids == {"a", "b"} and principal.tenant_id == "t-1"
    assert principal.permissions == {"userauthenticationmethod.read.all", "user.read"}

    default = decode_token(runner.invoke(app, ["sandbox", "token"]).stdout.strip())
    assert "userauthenticationmethod.readwrite.all" in default.permissions

    both = runner.invoke(app, ["sandbox", "token", "--roles", "x", "--scp", "y"])
    assert both.exit_code == 2


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_serve_refuses_non_loopback_hosts(host: str) -> None:
    result = runner.invoke(app, ["sandbox", "serve", "--host", host])
    assert result.exit_code == 2
    assert "loopback" in result.stderr


def test_snapshot_refuses_non_loopback_urls(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sandbox", "snapshot", "--url", "http://10.0.0.1:8080/v1.0", "--out", str(tmp_path / "s.json")])
    assert result.exit_code == 2 and not (tmp_path / "s.json").exists()


def test_serve_prints_urls_serves_snapshots_and_saves_on_interrupt(tmp_path: Path) -> None:
    saved = tmp_path / "saved.json"
    process = start_provision("sandbox", "serve", "--port", "0", "--snapshot", SAMPLE, "--save", saved, "--profile", "strict", cwd=tmp_path)
    try:
        assert process.stdout is not None
        v1 = process.stdout.readline().strip()
        beta = process.stdout.readline().strip()
        assert v1.startswith("http://127.0.0.1:") and v1.endswith("/v1.0")
        assert beta == v1.removesuffix("/v1.0") + "/beta"

        token = runner.invoke(app, ["sandbox", "token", "--url", v1]).stdout.strip()
        assert decode_token(token).tenant_id == json.loads(SAMPLE.read_text())["tenant_id"]
        created = httpx.post(
            f"{v1}/users/adele.vance%40contoso.com/authentication/phoneMethods",
            json={"phoneNumber": "+1 2065550199", "phoneType": "office"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201

        fetched = tmp_path / "fetched.json"
        result = runner.invoke(app, ["sandbox", "snapshot", "--url", v1, "--out", str(fetched)])
        assert result.exit_code == 0
        adele = next(u for u in json.loads(fetched.read_text())["users"] if u["upn"] == "adele.vance@contoso.com")
        assert adele["phones"] == [{"phoneType": "office", "phoneNumber": "+1 2065550199", "sms": "none"}]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    assert json.loads(saved.read_text()) == json.loads(fetched.read_text())
