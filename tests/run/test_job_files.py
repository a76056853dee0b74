"""Job files: valid ones load with paths resolved; every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import JobFileError
from provision.model import PlanMode, SmsIntent
from provision.run.jobs import CredentialKind, SandboxTarget, TenantTarget, load_job


def write(tmp_path: Path, text: str, name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_job_defaults_to_embedded_sandbox(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, '[roster]\npath = "hires.csv"\n', "onboarding.toml"))
    assert job.name == "onboarding"
    assert job.mode is PlanMode.ADDITIVE
    assert job.sms_sign_in is SmsIntent.LEAVE
    assert isinstance(job.target, SandboxTarget) and job.target.url is None
    assert job.roster.path == tmp_path / "hires.csv"
    assert job.output.directory == tmp_path / "reports"


def test_full_graph_job(tmp_path: Path) -> None:
    job = load_job(
        write(
            tmp_path,
            """
name = "nightly"
mode = "authoritative"
sms_sign_in = "enable"
[roster]
path = "/data/hr.csv"
sheet = 0
default_region = "gb"
[roster.columns]
user = "Work Email"
mobile = "Mobile Phone"
[safety]
max_changes = 500
max_delete_percent = 2.5
[target]
kind = "graph"
tenant_id = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
cloud = "usgov"
credential = "certificate"
certificate_path = "certs/app.pem"
""",
        )
    )
    assert job.mode is PlanMode.AUTHORITATIVE
    assert job.roster.path == Path("/data/hr.csv") and job.roster.default_region == "GB"
    assert job.roster.columns == {"user": "Work Email", "mobile": "Mobile Phone"}
    assert job.safety.max_delete_percent == 2.5 and job.safety.max_update_percent is None
    assert isinstance(job.target, TenantTarget)
    assert job.target.credential is CredentialKind.CERTIFICATE
    assert job.target.certificate_path == tmp_path / "certs/app.pem"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[roster]\npath="r.csv"\n[safety]\nmax_delete_pcent = 5\n', "safety.max_delete_pcent: unknown key (did you mean 'max_delete_percent'?)"),
        ('mode = "authoritive"\n[roster]\npath="r.csv"\n', "mode: Input should be"),
        ('[roster]\npath="r.csv"\n[roster.columns]\nmobil = "M"\n', "roster.columns: Value error, unknown roster field 'mobil' (did you mean 'mobile'?)"),
        ('[safety]\nmax_changes = 3\n', "roster: required key is missing"),
        ('[roster]\npath="r.csv"\n[safety]\nmax_delete_percent = 150\n', "safety.max_delete_percent: Input should be less than or equal to 100"),
        ('[roster]\npath="r.csv"\n[target]\nkind="graph"\ntenant_id="t"\ncloud="germany"\n', "target.cloud: Input should be"),
        ('[roster]\npath="r.csv"\n[target]\nkind="graph"\ntenant_id="t"\ncredential="secret"\n', "credential 'secret' needs client_id"),
        ('[roster]\npath="r.csv"\n[target]\nurl="http://10.0.0.5:8080/v1.0"\n', "target.url: Value error, a sandbox url must be a loopback address"),
        ('[roster]\npath="r.csv"\n[target]\nkind="graph"\ntenant_id="t"\nclient_secret="hunter2"\n', "target.client_secret: secrets never go in a job file"),
        ('[roster]\npath="r.csv"\n[target]\nurl="http://127.0.0.1:8000"\n', "target.url: Value error, a sandbox url ends with the API version"),
        ('[roster\npath="r.csv"\n', "not valid TOML"),
    ],
)
def test_mistakes_name_their_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(JobFileError) as caught:
        load_job(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "hunter2" not in message


def test_missing_job_file(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match="job file not found"):
        load_job(tmp_path / "nope.toml")
