"""A real-tenant job's credential failures, as a scheduler sees them from `provision plan`.

Each run is a real child process (``support.cli.run_provision``) whose every outbound
connection goes to loopback: either a closed port (no network at all) or
``support.token_endpoint.FakeEntra``, which answers the token request as Entra refuses it.
No run is ever handed a token (it would go on to the real Graph host).

    no network                       exit 5, "the login endpoint ... can't be reached"
    certificate file unusable        exit 4, cause and fix, before any network call
    Entra refuses (AADSTS...)        exit 4, the code, its cause and its fix
    Entra answers no sign-in answer  exit 5 (or none within PROVISION_REQUEST_TIMEOUT_S)

Every run ends with one error line and no traceback; under ``--log-format json`` every
stderr line is JSON. Secrets never show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from cli_support import write_csv
from support.cli import Ran, run_provision
from support.token_endpoint import FakeEntra, closed_port, no_network_env, write_app_certificate

TENANT = "0b5a3f9e-8c7d-4e21-9f00-123456789abc"
CLIENT = "11111111-2222-3333-4444-555555555555"
SECRET = "Zx8Q~not-a-real-secret-4711"
PASSWORD = "pem-pass-0815"
# Nothing of the developer's environment may stand in for what a test sets.
NO_CREDENTIALS = {
    name: ""
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_SECRET_FILE", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                 "AZURE_CLIENT_CERTIFICATE_PASSWORD_FILE")
}


def tenant_job(folder: Path, credential: str = "secret", cloud: str = "global", extra: str = "") -> Path:
    write_csv(folder / "roster.csv", ["upn", "mobile"], [("paul.walker@contoso.com", "+1 425 555 0101")])
    job = folder / "tenant.toml"
    job.write_text(
        'name = "tenant"\n[roster]\npath = "roster.csv"\n[roster.columns]\nuser = "upn"\nmobile = "mobile"\n'
        '[output]\ndirectory = "reports"\n'
        f'[target]\nkind = "graph"\ntenant_id = "{TENANT}"\nclient_id = "{CLIENT}"\ncloud = "{cloud}"\n'
        f'credential = "{credential}"\n{extra}',
        encoding="utf-8",
    )
    return job


def the_error(ran: Ran, json_lines: bool = True) -> str:
    """The run's one error line (and nothing else said about the failure), no traceback."""
    assert "Traceback" not in ran.output and SECRET not in ran.output and PASSWORD not in ran.output
    if json_lines:
        events = ran.json_lines()  # fails on any line that isn't JSON
        said = [e for e in events if e.get("level") in ("warning", "error")]
        assert len(said) == 1 and said[0]["level"] == "error", ran.stderr
        assert said[0]["exit_code"] == ran.exit_code
        message: str = said[0]["message"]
    else:
        said_lines = [line for line in ran.stderr.splitlines() if "error" in line.lower()]
        assert len(said_lines) == 1, ran.stderr
        message = said_lines[0]
    assert message.startswith("error: ")
    assert not (Path("reports").exists() and any(Path("reports").iterdir()))  # no plan file was written
    return message


@pytest.fixture
def no_network() -> Iterator[dict[str, str]]:
    with closed_port() as port:
        yield {**no_network_env(port), **NO_CREDENTIALS}


@pytest.fixture
def entra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeEntra]:
    with FakeEntra(tmp_path_factory.mktemp("entra")) as endpoint:  # its CA files stay out of the run's folder
        yield endpoint


# --- no network ---------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_network_exits_5_naming_the_login_endpoint(tmp_path: Path, no_network: dict[str, str], log_format: str) -> None:
    job = tenant_job(tmp_path)
    ran = run_provision(["plan", job, "--log-format", log_format], tmp_path, {**no_network, "AZURE_CLIENT_SECRET": SECRET})
    assert ran.exit_code == 5, ran.output
    message = the_error(ran, json_lines=log_format == "json")
    assert "the login endpoint login.microsoftonline.com can't be reached" in message
    assert "then run the command again" in message


# --- the certificate file, before any network call ----------------------------------------


@pytest.mark.parametrize(
    ("arrange", "says"),
    [
        (dict(parts=("key",)), ["app.pem holds a private key but no certificate", "cat app.key app.crt > app.pem"]),
        (dict(password=PASSWORD), ["the private key is encrypted and AZURE_CLIENT_CERTIFICATE_PASSWORD is not set",
                                   "set AZURE_CLIENT_CERTIFICATE_PASSWORD"]),
    ],
    ids=["key-without-certificate", "encrypted-key-without-password"],
)
def test_an_unusable_certificate_exits_4_with_cause_and_fix(
    tmp_path: Path, no_network: dict[str, str], arrange: dict[str, Any], says: list[str]
) -> None:
    write_app_certificate(tmp_path / "app.pem", **arrange)
    job = tenant_job(tmp_path, "certificate", extra='certificate_path = "app.pem"\n')
    ran = run_provision(["plan", job, "--log-format", "json"], tmp_path, no_network)
    assert ran.exit_code == 4, ran.output
    message = the_error(ran)
    for words in says:
        assert words in message


def test_a_wrong_certificate_password_exits_4_without_showing_it(tmp_path: Path, no_network: dict[str, str]) -> None:
    write_app_certificate(tmp_path / "app.pem", password=PASSWORD)
    job = tenant_job(tmp_path, "certificate", extra='certificate_path = "app.pem"\n')
    wrong = "not-the-pem-password"
    ran = run_provision(["plan", job, "--log-format", "text"], tmp_path,
                        {**no_network, "AZURE_CLIENT_CERTIFICATE_PASSWORD": wrong})
    assert ran.exit_code == 4, ran.output
    assert "does not decrypt the private key (wrong password)" in the_error(ran, json_lines=False)
    assert wrong not in ran.output


# --- Entra's answers ----------------------------------------------------------------------


def test_a_rejected_secret_exits_4_with_the_code_and_the_fix(tmp_path: Path, entra: FakeEntra) -> None:
    entra.answer_error(7000215, f"Invalid client secret provided. Ensure the secret being sent in the request is the "
                                f"client secret value, not the client secret ID, for a secret added to app '{CLIENT}'.")
    job = tenant_job(tmp_path)
    ran = run_provision(["plan", job, "--log-format", "json"], tmp_path,
                        {**entra.env(), **NO_CREDENTIALS, "AZURE_CLIENT_SECRET": SECRET})
    assert ran.exit_code == 4, ran.output
    message = the_error(ran)
    assert message.startswith("error: sign-in refused by login.microsoftonline.com (AADSTS7000215 invalid_client)")
    assert f"not a valid secret of app {CLIENT}" in message and "fix: copy the secret's Value" in message
    [request] = entra.requests
    assert (request.host, request.path) == ("login.microsoftonline.com", f"/{TENANT}/oauth2/v2.0/token")
    assert request.form["client_id"] == CLIENT and request.form["scope"] == "https://graph.microsoft.com/.default"


def test_a_tenant_of_another_cloud_exits_4_pointing_at_target_cloud(tmp_path: Path, entra: FakeEntra) -> None:
    entra.answer_error(90002, f"Tenant '{TENANT}' not found. Check to make sure you have the correct tenant ID and are "
                              "signing into the correct cloud.", error="invalid_request", status=400)
    job = tenant_job(tmp_path, cloud="usgov")
    ran = run_provision(["plan", job, "--log-format", "json"], tmp_path,
                        {**entra.env(), **NO_CREDENTIALS, "AZURE_CLIENT_SECRET": SECRET})
    assert ran.exit_code == 4, ran.output
    message = the_error(ran)
    assert f"tenant {TENANT} was not found at login.microsoftonline.us (cloud 'usgov')" in message
    assert "target.cloud" in message
    assert [r.host for r in entra.requests] == ["login.microsoftonline.us"]  # the job's cloud was asked


def test_an_unregistered_certificate_exits_4_naming_its_thumbprint(tmp_path: Path, entra: FakeEntra) -> None:
    cert = write_app_certificate(tmp_path / "app.pem", password=PASSWORD)
    entra.answer_error(700027, "Client assertion failed signature validation.")
    job = tenant_job(tmp_path, "certificate", extra='certificate_path = "app.pem"\n')
    ran = run_provision(["plan", job, "--log-format", "json"], tmp_path,
                        {**entra.env(), **NO_CREDENTIALS, "AZURE_CLIENT_CERTIFICATE_PASSWORD": PASSWORD})
    assert ran.exit_code == 4, ran.output
    message = the_error(ran)
    assert f"(AADSTS700027 invalid_client): the certificate in {cert.path} (thumbprint {cert.thumbprint})" in message
    assert "is not registered on app" in message and "Certificates & secrets" in message


def test_a_login_endpoint_that_gives_no_sign_in_answer_exits_5(tmp_path: Path, entra: FakeEntra) -> None:
    entra.answer_status(502, "<html><body>Bad gateway</body></html>")
    job = tenant_job(tmp_path)
    ran = run_provision(["plan", job, "--log-format", "json"], tmp_path,
                        {**entra.env(), **NO_CREDENTIALS, "AZURE_CLIENT_SECRET": SECRET})
    assert ran.exit_code == 5, ran.output
    assert "the login endpoint login.microsoftonline.com can't be reached" in the_error(ran)


def test_a_login_endpoint_that_never_answers_exits_5_within_the_request_bound(tmp_path: Path, entra: FakeEntra) -> None:
    entra.answer_nothing()  # a connection accepted, then silence: azure-identity alone would wait minutes
    job = tenant_job(tmp_path)
    ran = run_provision(["plan", job, "--log-format", "json"], tmp_path,
                        {**entra.env(), **NO_CREDENTIALS, "AZURE_CLIENT_SECRET": SECRET, "PROVISION_REQUEST_TIMEOUT_S": "1"})
    assert ran.exit_code == 5, ran.output
    assert "the login endpoint login.microsoftonline.com can't be reached through the proxy" in (message := the_error(ran))
    assert "no answer within 1 s" in message
