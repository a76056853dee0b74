"""Fleet files and tenants.csv: every structural error stops the fleet naming its key or line;
a bad per-tenant value fails only that tenant; groups, exclude and --only select."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import ExitCode, JobFileError, UsageError
from provision.fleet.config import FleetGraphTarget, load_fleet, tenant_key, with_sandbox_url
from provision.model import PlanMode, SmsIntent
from provision.run.jobs import SandboxTarget, TenantTarget

TEMPLATE = """\
name = "nightly"
mode = "authoritative"
[roster]
path = "ignored.csv"
default_region = "US"
[roster.columns]
user = "upn"
[safety]
max_changes = 200
[output]
directory = "elsewhere"
[target]
kind = "sandbox"
snapshot = "nowhere.json"
"""

FLEET = """\
name = "msp"
job_template = "jobs/template.toml"
tenants = "tenants.csv"
{extra}
[target]
kind = "sandbox"
url = "http://127.0.0.1:8999/v1.0"
[output]
directory = "reports"
"""


def write_fleet(tmp_path: Path, csv: str, *, extra: str = "", fleet: str | None = None) -> Path:
    (tmp_path / "jobs").mkdir(exist_ok=True)
    (tmp_path / "jobs" / "template.toml").write_text(TEMPLATE, encoding="utf-8")
    (tmp_path / "tenants.csv").write_text(csv, encoding="utf-8")
    path = tmp_path / "fleet.toml"
    path.write_text(fleet if fleet is not None else FLEET.format(extra=extra), encoding="utf-8")
    return path


CSV = """\
tenant_id,name,roster,groups,enabled,mode,sms_sign_in,max_changes,token_env,notes
contoso.onmicrosoft.com,Contoso,rosters/contoso.csv,smb;us,yes,,,,,
fabrikam.onmicrosoft.com,,rosters/fabrikam.csv,enterprise,,additive,enable,5,FABRIKAM_TOKEN,approved
northwind.onmicrosoft.com,Northwind,/abs/northwind.csv,smb,no,,,,,
"""


def test_each_tenant_gets_the_template_with_its_overrides_target_and_output(tmp_path: Path) -> None:
    fleet = load_fleet(write_fleet(tmp_path, CSV))

    assert fleet.name == "msp"
    assert [t.tenant_id for t in fleet.tenants] == ["contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com"]
    assert [(e.tenant_id, e.reason) for e in fleet.excluded] == [("northwind.onmicrosoft.com", "enabled = no in the tenants file")]
    contoso, fabrikam = fleet.tenants
    assert contoso.name == "Contoso" and fabrikam.name == "fabrikam.onmicrosoft.com"
    assert contoso.groups == ("smb", "us") and contoso.line == 2 and fabrikam.line == 3
    assert contoso.problem is None and contoso.job is not None and fabrikam.job is not None
    # the template's keys, its roster columns kept, the roster path the CSV's (against its folder)
    assert contoso.job.mode is PlanMode.AUTHORITATIVE and contoso.job.safety.max_changes == 200
    assert contoso.job.roster.path == tmp_path / "rosters" / "contoso.csv"
    assert contoso.job.roster.columns == {"user": "upn"} and contoso.job.roster.default_region == "US"
    # [target] and [output] are the fleet's, with the tenant's id
    assert isinstance(contoso.job.target, SandboxTarget)
    assert contoso.job.target.url == "http://127.0.0.1:8999/v1.0" and contoso.job.target.snapshot is None
    assert contoso.job.target.tenant_id == "contoso.onmicrosoft.com"
    assert contoso.job.output.directory == tmp_path / "reports"
    assert (contoso.job.fleet_key, fabrikam.job.fleet_key) == (contoso.key, fabrikam.key)  # where their history is
    # the overrides
    assert fabrikam.job.mode is PlanMode.ADDITIVE and fabrikam.job.sms_sign_in is SmsIntent.ENABLE
    assert fabrikam.job.safety.max_changes == 5
    assert isinstance(fabrikam.job.target, SandboxTarget) and fabrikam.job.target.token_env == "FABRIKAM_TOKEN"
    assert fabrikam.job.source == tmp_path / "jobs" / "template.toml"


def test_groups_exclude_and_only_select_tenants(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, CSV.replace(",no,", ",yes,"), extra='groups = ["smb"]\nexclude = ["CONTOSO.onmicrosoft.com"]')
    fleet = load_fleet(path)
    assert [t.tenant_id for t in fleet.tenants] == ["northwind.onmicrosoft.com"]
    assert {e.tenant_id: e.reason for e in fleet.excluded} == {
        "contoso.onmicrosoft.com": "excluded by the fleet file",
        "fabrikam.onmicrosoft.com": "not in group smb",
    }
    # --group replaces the file's groups; --only takes ids or keys
    fleet = load_fleet(path, groups=("enterprise",))
    assert [t.tenant_id for t in fleet.tenants] == ["fabrikam.onmicrosoft.com"]
    fleet = load_fleet(path, only=("northwind.onmicrosoft.com",), groups=("smb", "enterprise"))
    assert [t.tenant_id for t in fleet.tenants] == ["northwind.onmicrosoft.com"]
    with pytest.raises(UsageError, match="--only: no tenant 'nobody'"):
        load_fleet(path, only=("nobody",))
    with pytest.raises(UsageError, match="no tenant to run"):
        load_fleet(path, only=("contoso.onmicrosoft.com",))


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        ("mode", "bogus", "column mode (mode):"),
        ("max_changes", "lots", "column max_changes (safety.max_changes):"),
        ("sms_sign_in", "maybe", "column sms_sign_in (sms_sign_in):"),
        ("client_id", "abc", "column client_id: only for a graph fleet"),
    ],
)
def test_a_bad_override_fails_only_that_tenant_naming_line_and_column(tmp_path: Path, column: str, value: str, named: str) -> None:
    csv = f"tenant_id,roster,{column}\ngood.example,a.csv,\nbad.example,b.csv,{value}\n"
    fleet = load_fleet(write_fleet(tmp_path, csv))
    good, bad = fleet.tenants
    assert good.job is not None and good.problem is None
    assert bad.job is None and bad.problem is not None
    assert bad.problem.startswith("tenants.csv line 3: ") and named in bad.problem


def test_a_tenant_job_template_that_does_not_parse_fails_only_that_tenant(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "odd.toml").write_text('name = "odd"\nmode = "sideways"\n', encoding="utf-8")
    csv = "tenant_id,roster,job\ngood.example,a.csv,\nodd.example,b.csv,jobs/odd.toml\nmissing.example,c.csv,jobs/none.toml\n"
    fleet = load_fleet(write_fleet(tmp_path, csv))
    good, odd, missing = fleet.tenants
    assert good.job is not None
    assert odd.job is None and odd.problem is not None and "line 3: column job:" in odd.problem and "odd.toml: mode:" in odd.problem
    assert missing.job is None and missing.problem is not None and "line 4: column job" in missing.problem and "not found" in missing.problem


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("tenant_id,roster,colour\na,a.csv,red\n", "line 1: unknown column 'colour'"),
        ("tenant_id,name\na,A\n", "line 1: the required column 'roster' is missing"),
        ("tenant_id,roster\na,a.csv\n,b.csv\n", "line 3: tenant_id is empty"),
        ("tenant_id,roster\na,a.csv\nb,\n", "line 3: roster is empty"),
        ("tenant_id,roster\nA.example,a.csv\nb,b.csv\na.EXAMPLE,c.csv\n", "line 4: duplicate tenant_id 'a.EXAMPLE' (first on line 2)"),
        ("tenant_id,roster,enabled\na,a.csv,perhaps\n", "line 2: enabled must be yes or no"),
        ("tenant_id,roster\n", "no tenants"),
        ("", "line 1: no header row"),
    ],
)
def test_a_broken_tenants_file_stops_the_fleet_naming_the_line(tmp_path: Path, csv: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_fleet(write_fleet(tmp_path, csv))
    assert caught.value.exit_code is ExitCode.USAGE
    assert message in str(caught.value) and "tenants.csv" in str(caught.value)


@pytest.mark.parametrize(
    ("fleet", "message"),
    [
        ('name = "x"\ntenants = "tenants.csv"\n[target]\nkind = "sandbox"\nurl = "http://127.0.0.1:1/v1.0"\n',
         "job_template: required key is missing"),
        (FLEET.format(extra="[executor]\nthreads_per_worker = 0"), "executor.threads_per_worker: Input should be greater than or equal to 1"),
        (FLEET.format(extra="[executor]\nworkers = 2\nthreads_per_workr = 3"), "executor.threads_per_workr: unknown key (did you mean 'threads_per_worker'?)"),
        (FLEET.format(extra='[executor]\ncluster = "10.0.0.5:8786"'), "executor.cluster: Value error, a Dask scheduler address"),
        (FLEET.format(extra="[quarantine]\nfailed_percent = 150"), "quarantine.failed_percent: Input should be less than or equal to 100"),
        (FLEET.format(extra='colour = "red"'), "colour: unknown key"),
        (FLEET.format(extra="").replace('url = "http://127.0.0.1:8999/v1.0"', 'url = "http://10.1.1.1:8999/v1.0"'), "target.url: "),
        (FLEET.format(extra="").replace('url = "http://127.0.0.1:8999/v1.0"', ""), "a sandbox fleet names either url"),
        (FLEET.format(extra="").replace('kind = "sandbox"', 'kind = "graph"\ncredential = "certificate"\nsecrets = "x"').replace('url = "http://127.0.0.1:8999/v1.0"', ""),
         "target.secrets: unknown key"),
        (FLEET.format(extra="").replace('job_template = "jobs/template.toml"', 'job_template = "jobs/none.toml"'), "job_template: job template "),
        ("name = [", "not valid TOML"),
    ],
)
def test_a_broken_fleet_file_names_the_key(tmp_path: Path, fleet: str, message: str) -> None:
    with pytest.raises(JobFileError) as caught:
        load_fleet(write_fleet(tmp_path, "tenant_id,roster\na,a.csv\n", fleet=fleet))
    assert caught.value.exit_code is ExitCode.USAGE
    assert message in str(caught.value)


def test_a_broken_job_template_stops_the_fleet(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, "tenant_id,roster\na,a.csv\n")
    (tmp_path / "jobs" / "template.toml").write_text('name = "t"\n[safety]\nmax_changes = -1\n', encoding="utf-8")
    with pytest.raises(JobFileError, match="safety.max_changes"):
        load_fleet(path)


def test_a_graph_fleet_gives_each_tenant_the_app_and_its_own_credential_columns(tmp_path: Path) -> None:
    fleet_toml = FLEET.format(extra="").replace(
        'kind = "sandbox"\nurl = "http://127.0.0.1:8999/v1.0"',
        'kind = "graph"\nclient_id = "11111111-2222-3333-4444-555555555555"\ncredential = "certificate"\n'
        'certificate_path = "certs/msp.pem"',
    )
    csv = "tenant_id,roster,credential,secret_env,client_id\na.example,a.csv,,,\nb.example,b.csv,secret,B_SECRET,99999999-0000-0000-0000-000000000000\n"
    fleet = load_fleet(write_fleet(tmp_path, csv, fleet=fleet_toml))
    assert isinstance(fleet.target, FleetGraphTarget)
    a, b = (t.job for t in fleet.tenants)
    assert a is not None and isinstance(a.target, TenantTarget)
    assert a.target.tenant_id == "a.example" and a.target.certificate_path == tmp_path / "certs" / "msp.pem"
    assert b is not None and isinstance(b.target, TenantTarget)
    assert b.target.credential.value == "secret" and b.target.secret_env == "B_SECRET"
    assert b.target.client_id == "99999999-0000-0000-0000-000000000000"


def test_keys_are_directory_safe_and_unique() -> None:
    taken: set[str] = set()
    assert tenant_key("Contoso.OnMicrosoft.com", taken) == "contoso.onmicrosoft.com"
    assert tenant_key("../etc/passwd", taken) == "etc_passwd"
    assert tenant_key("a b", taken) == "a_b"
    assert tenant_key("a/b", taken) == "a_b-2"
    assert tenant_key("...", taken) == "tenant"


def test_a_later_started_sandbox_url_reaches_every_sandbox_job(tmp_path: Path) -> None:
    fleet = load_fleet(write_fleet(tmp_path, CSV))
    job = fleet.tenants[0].job
    assert job is not None
    moved = with_sandbox_url(job, "http://127.0.0.1:4242/v1.0/")
    assert isinstance(moved.target, SandboxTarget)
    assert moved.target.url == "http://127.0.0.1:4242/v1.0" and moved.target.tenant_id == "contoso.onmicrosoft.com"


def test_the_shipped_fleet_rehearsal_loads_with_every_tenant_runnable() -> None:
    repo = Path(__file__).resolve().parents[2]
    fleet = load_fleet(repo / "jobs" / "msp_fleet.toml")
    assert len(fleet.tenants) == 6 and not fleet.excluded
    assert all(t.problem is None and t.job is not None and t.job.roster.path.is_file() for t in fleet.tenants)
    assert all(t.job is not None and t.job.mode is PlanMode.AUTHORITATIVE for t in fleet.tenants)  # nightly_reconcile's
