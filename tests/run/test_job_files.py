"""Job files: valid ones load with paths resolved; every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import JobFileError
from provision.model import PlanMode, SmsIntent
from provision.run.jobs import CredentialKind, SandboxTarget, TenantTarget, load_job
from provision.run.plan_stage import plan_policy


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
        ('[roster]\npath="r.csv"\n[safety]\nmin_roster_percent = 120\n', "safety.min_roster_percent: Input should be less than or equal to 100"),
        ('[roster]\npath="r.csv"\n[safety]\nmin_roster_rows = -1\n', "safety.min_roster_rows: Input should be greater than or equal to 0"),
        ('[roster]\npath="r.csv"\n[safety]\nmin_roster_pct = 50\n', "safety.min_roster_pct: unknown key (did you mean 'min_roster_percent'?)"),
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


@pytest.mark.parametrize(
    ("text", "rows", "percent"),
    [
        ('[roster]\npath="r.csv"\n', 1, None),  # additive: an empty roster refused, no comparison
        ('mode = "fill-empty"\n[roster]\npath="r.csv"\n', 1, None),
        ('mode = "authoritative"\n[roster]\npath="r.csv"\n', 1, 50.0),  # authoritative compares by default
        ('mode = "authoritative"\n[roster]\npath="r.csv"\n[safety]\nmin_roster_percent = 80\nmin_roster_rows = 1000\n', 1000, 80.0),
        ('mode = "authoritative"\n[roster]\npath="r.csv"\n[safety]\nmin_roster_percent = 0\nmin_roster_rows = 0\n', None, None),
        ('[roster]\npath="r.csv"\n[safety]\nmin_roster_percent = 60\n', 1, 60.0),  # opted in outside authoritative
    ],
)
def test_roster_size_keys_and_their_defaults_by_mode(tmp_path: Path, text: str, rows: int | None, percent: float | None) -> None:
    policy = plan_policy(load_job(write(tmp_path, text)))
    assert (policy.min_roster_rows, policy.min_roster_percent) == (rows, percent)
